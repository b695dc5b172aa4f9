"""Data for gan_lab: sources, the batch type and the Lightning data module.

* :mod:`.info`: :class:`DataInfo`, what a model needs to know about a data set (its modality);
* :mod:`.batch`: :class:`Batch`, the one batch type every family trains on;
* :mod:`.datasets`: in-memory and image-folder data sets;
* :mod:`.sampler`: the resumable shuffled order;
* :mod:`.module`: :class:`GANDataModule`, chosen with ``data=<name>`` (``conf/data/<name>.yaml``);
* :mod:`.sources`: the data sets themselves, one module per kind of origin.
"""

from gan_lab.data.batch import Batch, collate
from gan_lab.data.datasets import TensorBatchDataset, TensorDataset
from gan_lab.data.info import MODALITIES, DataInfo
from gan_lab.data.module import GANDataModule
from gan_lab.data.sampler import ResumableSampler

__all__ = [
    "Batch",
    "DataInfo",
    "GANDataModule",
    "MODALITIES",
    "ResumableSampler",
    "TensorBatchDataset",
    "TensorDataset",
    "collate",
]
