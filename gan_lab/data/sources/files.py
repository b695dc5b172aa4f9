"""File-backed sets read by torchvision's readers of the official on-disk formats.

MNIST and Fashion-MNIST (idx files), CIFAR-10 (python batches) and aligned CelebA. Offline the
files must already be under the data root; a missing or malformed file is one clear line.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets
from torchvision import transforms

from gan_lab.data.datasets import ConvertImage, UInt8ImageDataset, check_image_size
from gan_lab.data.info import DIGIT_NAMES, DataInfo
from gan_lab.data.sources.base import DEFAULT_DATA_ROOT_ENV, Source, _one_line, default_data_root
from gan_lab.errors import UserError


FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot")


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

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        return (self if split == self.split else self.with_split(split))._load()

    def _load(self) -> tuple[Dataset, DataInfo]:  # pragma: no cover - abstract
        raise NotImplementedError

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

    def _load(self) -> tuple[Dataset, DataInfo]:
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
        names = DIGIT_NAMES if self.tv_name == "MNIST" else FASHION_NAMES
        info = DataInfo(self.name, "image", (1, self.image_size, self.image_size), num_classes=10, class_names=names)
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

    def _load(self) -> tuple[Dataset, DataInfo]:
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
        info = DataInfo(self.name, "image", (3, self.image_size, self.image_size), num_classes=num_classes,
                        class_names=tuple(tv.classes))
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

    def _load(self) -> tuple[Dataset, DataInfo]:
        tv = self._checked_construct()
        if len(tv) == 0:
            raise UserError(f"celeba: the {self.split} split in {self.folder().resolve()} holds no images")
        info = DataInfo(self.name, "image", (3, self.image_size, self.image_size), num_classes=0)
        return tv, info
