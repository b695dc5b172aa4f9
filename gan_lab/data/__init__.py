"""Data sets for gan_lab: a Lightning data module over pluggable sources.

``GANDataModule(source, batch_size, num_workers, seed)`` serves ``(x, y)`` batches; the sources
live in :mod:`gan_lab.data.sources` and are chosen with ``data=<name>`` (``conf/data/<name>.yaml``).
"""

from gan_lab.data.base import (
    BatchedPair,
    DataInfo,
    GANDataModule,
    TensorBatchDataset,
    TensorPairDataset,
    collate_pairs,
)

__all__ = [
    "BatchedPair",
    "DataInfo",
    "GANDataModule",
    "TensorBatchDataset",
    "TensorPairDataset",
    "collate_pairs",
]
