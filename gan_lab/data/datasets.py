"""Data set classes behind the sources: in-memory tensors and folders of image files.

In-memory sets derive from :class:`TensorBatchDataset` and fetch a whole batch with one indexing
operation (:meth:`TensorBatchDataset.take` returns a :class:`~gan_lab.data.batch.Batch`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from gan_lab.data.batch import Batch, WholeBatch
from gan_lab.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")


class TensorBatchDataset(Dataset):
    """A map-style data set that fetches many indices at once with tensor indexing.

    Subclasses implement :meth:`take`; batches (``__getitems__``, which the ``DataLoader`` uses
    when present) and single items are both served by it, so no per-item Python work is done
    for in-memory data. ``take`` fills ``Batch.index`` with the indices it was given.
    """

    def take(self, index: Tensor) -> Batch:  # pragma: no cover - abstract
        """The samples at a 1-D ``int64`` tensor of indices, as a :class:`Batch`."""
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> Batch:
        """One sample: a :class:`Batch` whose fields have no batch dimension."""
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a data set of {len(self)} items")
        return self.take(torch.tensor([index], dtype=torch.int64)).select(0)

    def __getitems__(self, indices: list[int]) -> WholeBatch:
        return WholeBatch(self.take(torch.as_tensor(indices, dtype=torch.int64)))


class TensorDataset(TensorBatchDataset):
    """Samples (and optional int64 labels) held as tensors in memory."""

    def __init__(self, x: Tensor, y: Tensor | None = None) -> None:
        if y is not None and len(x) != len(y):
            raise ValueError(f"{len(x)} samples but {len(y)} labels")
        self.x = x if not x.is_floating_point() else x.float()
        self.y = None if y is None else y.long()

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: Tensor) -> Batch:
        return Batch(self.x[index], None if self.y is None else self.y[index], index=index)


def check_image_size(image_size: object, where: str) -> int:
    """Validate a user-given image size (a positive integer)."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise UserError(f"{where}.image_size must be a positive integer, got {image_size!r}")
    return image_size


def resize_images(x: Tensor, size: int) -> Tensor:
    """Bilinear resize of a float batch ``(N, C, H, W)`` in ``[-1, 1]`` to ``size`` × ``size``.

    Downscaling uses antialiasing, so thin strokes are averaged rather than skipped.
    """
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < x.shape[-1] or size < x.shape[-2]
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    return y.clamp_(-1.0, 1.0)


def to_unit_range(x: Tensor, max_value: float) -> Tensor:
    """Map values in ``[0, max_value]`` to ``[-1, 1]`` as float32."""
    return x.float().mul(2.0 / max_value).sub_(1.0)


class UInt8ImageDataset(TensorBatchDataset):
    """Images kept as ``uint8`` ``(N, C, H, W)``; scaled to ``[-1, 1]`` (and resized) per batch.

    Used for the file-backed sets that fit in memory (MNIST, Fashion-MNIST, CIFAR-10), so a batch
    costs one gather and one interpolate instead of per-item PIL work.
    """

    def __init__(self, data: Tensor, targets: Tensor, image_size: int) -> None:
        if data.dtype != torch.uint8 or data.dim() != 4:
            raise ValueError(f"expected uint8 images (N, C, H, W), got {data.dtype} {tuple(data.shape)}")
        if len(data) != len(targets):
            raise ValueError(f"{len(data)} images but {len(targets)} labels")
        self.data = data.contiguous()
        self.targets = targets.long()
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.data)

    def take(self, index: Tensor) -> Batch:
        x = resize_images(to_unit_range(self.data[index], 255.0), self.image_size)
        return Batch(x, self.targets[index], index=index)


class StackedDataset(TensorBatchDataset):
    """Stacked MNIST: every sample is three base digits used as the three colour channels.

    Only the base images and an ``(N, 3)`` table of base indices are stored; samples are
    assembled on demand. Label = ``100 * d_red + 10 * d_green + d_blue``.
    """

    def __init__(self, base_x: Tensor, base_y: Tensor, picks: Tensor) -> None:
        if base_x.dim() != 4 or base_x.shape[1] != 1:
            raise ValueError(f"base images must be (M, 1, H, W), got {tuple(base_x.shape)}")
        self.base_x = base_x[:, 0].float()  # (M, H, W)
        self.base_y = base_y.long()
        self.picks = picks.long()  # (N, 3)
        digits = self.base_y[self.picks]
        self.labels = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]

    def __len__(self) -> int:
        return len(self.picks)

    def take(self, index: Tensor) -> Batch:
        return Batch(self.base_x[self.picks[index]], self.labels[index], index=index)


class ConvertImage:
    """Picklable transform: ``PIL.Image.convert(mode)``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, image):  # noqa: ANN001 - a PIL image
        return image.convert(self.mode)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.mode!r})"


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def scan_image_folder(root: Path, extensions: Iterable[str]) -> list[Path]:
    """All image files under ``root`` (recursively, sorted, hidden entries skipped)."""
    exts = tuple(e.lower() for e in extensions)
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            if not _is_hidden(name) and name.lower().endswith(exts):
                found.append(Path(dirpath) / name)
    return found


class ImageFolderDataset(Dataset):
    """Image files read one by one, resized (shorter side), center-cropped and scaled to [-1, 1].

    Files that fail to decode while training are replaced by the next readable file, with a
    warning per file, so one bad file cannot stop a long run.
    """

    def __init__(self, files: list[Path], labels: list[int], image_size: int, channels: int) -> None:
        from torchvision import transforms

        self.files = files
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.channels = channels
        self.mode = "RGB" if channels == 3 else "L"
        self.transform = transforms.Compose(
            [
                transforms.Resize(image_size, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
                transforms.CenterCrop(image_size),
                transforms.ToTensor(),
                transforms.Normalize([0.5] * channels, [0.5] * channels),
            ]
        )
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, index: int) -> Tensor:
        from PIL import Image

        with Image.open(self.files[index]) as image:
            return self.transform(image.convert(self.mode))

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        n = len(self.files)
        for step in range(n):
            j = (int(index) + step) % n
            if j in self._bad:
                continue
            try:
                return self._read(j), self.labels[j]
            except (OSError, ValueError, SyntaxError) as err:
                self._bad.add(j)
                warnings.warn(f"image_folder: cannot decode {self.files[j]} ({err}); using another image instead")
        raise UserError("image_folder: none of the images could be decoded; check the files under data.source.root")
