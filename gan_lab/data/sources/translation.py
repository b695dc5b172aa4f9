"""Image-to-image translation sets: paired (Pix2Pix) and unpaired (CycleGAN), embedded and folders.

Batch contract
--------------
Every sample is an image ``(C, H, W)`` in [-1, 1] (``DataInfo.modality == "image"``).

* **Paired** (``DataInfo.pairing == "paired"``): ``Batch(x=input, target=target, y=label|None,
  index=i)``. ``DataInfo.shape`` is the input side, ``DataInfo.shape_b`` the target side.
* **Unpaired** (``DataInfo.pairing == "unpaired"``): ``Batch(x=a, x_b=b, y=label_a, y_b=label_b,
  index=i)``; ``shape`` is domain A, ``shape_b`` domain B. Labels (where a set has them) are for
  evaluation only: a translation family never trains on them.

  Item ``i`` of an unpaired set holds A image ``i % n_A`` and B image ``perm_B[i % n_B]``, where
  ``perm_B`` is a fixed permutation of B drawn from ``seed`` (:func:`unpaired_partner`); the set
  has ``max(n_A, n_B)`` items, so one epoch visits every image of the larger domain once and the
  smaller one cyclically. The B partner is thus a pure function of ``(i, seed)``: a resumed run
  sees the same pairs, and the shuffled sampler still varies which pairs share a batch. (The
  CycleGAN losses treat the two sides independently, so the fixed partner is harmless.)
  ``dataset.domain("a"|"b")`` is one domain alone as a plain labelled image set (each image once:
  for evaluation and for training a domain's classifier).

Jitter (Pix2Pix's "resize to load_size, random crop to crop_size, random mirror") is not done
here: the family applies :func:`gan_lab.losses.translation.paired_jitter` (paired) or
:func:`~gan_lab.losses.translation.jitter` (each unpaired side) in its training step, with a
generator it checkpoints. ``DataInfo.extras`` says how: ``load_size``, ``crop_size``, ``flip``
(the same in every split's info). ``DataInfo.shape`` is always the network's size,
``crop_size``. Folder sources deliver the **train** split at ``load_size`` (to be cropped) and
the other splits resized straight to ``crop_size`` (what the original test script does:
load_size = crop_size there); the embedded sets deliver every split at ``image_size`` (=
``crop_size``), and jitter, when configured, resizes them to ``load_size`` first. Jitter is off
when ``load_size == crop_size`` and ``flip`` is false.

Sources
-------
* :class:`Edges2MNIST5k` ``edges2mnist_5k`` (paired, embedded): input = edge map of an MNIST-5k
  digit (:func:`edge_map`), target = the digit, y = its label; MNIST-5k's fixed split (train
  4,500 / test 500, 50 per digit, seed 0).
* :class:`MNIST2Digits` ``mnist2digits`` (unpaired, embedded): A = MNIST-5k (its split), B =
  scikit-learn's 8x8 digits put in MNIST's frame (:func:`digits_in_mnist_frame`); B's split:
  50 per digit to test (500), the other 1,297 to train (seed 0).
* :class:`Pix2PixFolder` ``pix2pix_folder``: ``root/{train,val,test}/`` of side-by-side images,
  A left and B right, each half square (width = 2 x height); ``direction`` AtoB (x = A) or BtoA.
* :class:`UnpairedFolder` ``unpaired_folder``: ``root/{trainA,trainB,testA,testB}/`` (searched
  recursively, like the original).
* Presets under the data root (``$GAN_LAB_DATA`` or ``./data``), the folder names of the
  originals' download scripts: :func:`facades` (BtoA: labels -> photo, as the paper),
  :func:`maps` (AtoB: aerial -> map), :func:`edges2shoes` (AtoB), :func:`horse2zebra`.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from gan_lab.data.batch import Batch
from gan_lab.data.datasets import (
    IMAGE_EXTENSIONS,
    TensorBatchDataset,
    TensorDataset,
    check_image_size,
    resize_images,
    scan_image_folder,
    to_unit_range,
)
from gan_lab.data.info import DIGIT_NAMES, DataInfo
from gan_lab.data.sources.base import Source, default_data_root
from gan_lab.data.sources.embedded import MNIST5k, _mnist_5k_raw, mnist_5k_images, stratified_split
from gan_lab.errors import UserError

DIRECTIONS = ("AtoB", "BtoA")
SOBEL_THRESHOLD = 0.5
DIGITS_BOX = 20  # MNIST digits fit a 20x20 box inside the 28x28 frame
MNIST_FRAME = 28
DIGITS_TEST_PER_CLASS = 50


# ------------------------------------------------------------------------------------------------
# shared checks
# ------------------------------------------------------------------------------------------------
def _check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{what} must be true or false, got {value!r}")
    return value


def _check_seed(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{what} must be an integer, got {value!r}")
    return value


def _check_channels(value: object, what: str) -> int:
    if value not in (1, 3) or isinstance(value, bool):
        raise UserError(f"{what} must be 1 or 3, got {value!r}")
    return int(value)


def _check_crop(name: str, crop_size: object) -> int:
    if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 1:
        raise UserError(f"{name}: data.source.crop_size must be a positive integer, got {crop_size!r}")
    return crop_size


def _jitter_sizes(name: str, crop_size: int, load_size: object) -> int:
    """``load_size`` (``None``: ``crop_size``), checked to be >= ``crop_size``."""
    if load_size is None:
        return crop_size
    if isinstance(load_size, bool) or not isinstance(load_size, int) or load_size < crop_size:
        raise UserError(
            f"{name}: data.source.load_size must be an integer >= the crop size {crop_size} "
            f"(resize to load_size, then crop), got {load_size!r}"
        )
    return load_size


def _extras(load_size: int, crop_size: int, flip: bool, **more: object) -> dict:
    return {"load_size": load_size, "crop_size": crop_size, "flip": flip, **more}


# ------------------------------------------------------------------------------------------------
# in-memory translation sets
# ------------------------------------------------------------------------------------------------
class PairedTensorDataset(TensorBatchDataset):
    """Pairs ``(x[i], target[i])`` (and labels) held in memory."""

    def __init__(self, x: Tensor, target: Tensor, y: Tensor | None = None) -> None:
        if len(x) != len(target) or (y is not None and len(y) != len(x)):
            raise ValueError(f"{len(x)} inputs, {len(target)} targets, {None if y is None else len(y)} labels")
        self.x, self.target = x.float(), target.float()
        self.y = None if y is None else y.long()

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: Tensor) -> Batch:
        return Batch(self.x[index], None if self.y is None else self.y[index], index=index, target=self.target[index])


def unpaired_partner(index: Tensor, n_b: int, seed: int) -> Tensor:
    """The domain-B index paired with item ``index`` of an unpaired set: ``perm_B[index % n_b]``
    with ``perm_B = randperm(n_b)`` from a generator seeded with ``seed`` (a pure function)."""
    perm = torch.randperm(n_b, generator=torch.Generator().manual_seed(seed))
    return perm[torch.as_tensor(index, dtype=torch.int64) % n_b]


class UnpairedTensorDataset(TensorBatchDataset):
    """Two domains held in memory; item ``i`` = (A ``i % n_A``, B ``perm_B[i % n_B]``)."""

    def __init__(self, a: Tensor, b: Tensor, y_a: Tensor | None = None, y_b: Tensor | None = None,
                 seed: int = 0) -> None:
        if len(a) == 0 or len(b) == 0:
            raise ValueError("both domains need at least one image")
        self.a, self.b = a.float(), b.float()
        self.y_a = None if y_a is None else y_a.long()
        self.y_b = None if y_b is None else y_b.long()
        self.seed = seed
        self._perm_b = torch.randperm(len(b), generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def take(self, index: Tensor) -> Batch:
        ia = index % len(self.a)
        ib = self._perm_b[index % len(self.b)]
        return Batch(self.a[ia], None if self.y_a is None else self.y_a[ia], index=index,
                     x_b=self.b[ib], y_b=None if self.y_b is None else self.y_b[ib])

    def domain(self, side: str) -> TensorDataset:
        """Domain ``"a"`` or ``"b"`` alone, every image once, in stored order."""
        if side == "a":
            return TensorDataset(self.a, self.y_a)
        if side == "b":
            return TensorDataset(self.b, self.y_b)
        raise ValueError(f"side must be 'a' or 'b', got {side!r}")


# ------------------------------------------------------------------------------------------------
# edges2mnist_5k
# ------------------------------------------------------------------------------------------------
def edge_map(images: Tensor, threshold: float = SOBEL_THRESHOLD) -> Tensor:
    """Binary edge maps of ``uint8`` digits ``(N, 1, H, W)`` (0..255), as bool ``(N, 1, H, W)``.

    The rule: scale to [0, 1]; Sobel derivatives with the kernels divided by 4 (so an ideal
    0 -> 1 step has gradient magnitude 1), on the image padded by replicating its border; a pixel
    is an edge when the magnitude ``sqrt(gx^2 + gy^2) >= threshold`` (0.5). On MNIST's 28 px
    digits this outlines each stroke on both sides (thin strokes come out solid).
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"edge_map takes uint8 (N, 1, H, W) images, got {images.dtype} {tuple(images.shape)}")
    u = images.to(torch.float64) / 255.0
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64) / 4.0
    weight = torch.stack([kx, kx.t()]).unsqueeze(1)  # (2, 1, 3, 3): d/dx, d/dy
    grad = F.conv2d(F.pad(u, (1, 1, 1, 1), mode="replicate"), weight)
    return grad.pow(2).sum(dim=1, keepdim=True).sqrt() >= threshold


@functools.lru_cache(maxsize=1)
def _mnist_5k_edges() -> Tensor:
    """Edge maps of the 5,000 MNIST-5k digits as images: edge pixels +1 (white, like MNIST's
    strokes), others -1 (computed once per process)."""
    raw, _ = _mnist_5k_raw()
    return edge_map(raw).float().mul_(2.0).sub_(1.0)


class Edges2MNIST5k(Source):
    """Paired: the edge map of an MNIST-5k digit (input) and the digit (target); labels kept.

    Edges are computed on the 28 px digit (:func:`edge_map`), then both sides are resized to
    ``image_size`` (bilinear, :func:`gan_lab.data.datasets.resize_images`) when it is not 28.
    Splits: MNIST-5k's (``train`` 4,500 / ``test`` 500). ``load_size`` and ``flip`` set the
    training jitter the family applies (default none: ``load_size = image_size``, no flip,
    since mirrored digits are not digits).
    """

    name = "edges2mnist_5k"
    splits = ("train", "test")

    def __init__(self, image_size: int = 28, split: str = "train", load_size: int | None = None,
                 flip: bool = False) -> None:
        self.image_size = check_image_size(image_size, f"{self.name}: data.source")
        if split not in self.splits:
            raise UserError(f"{self.name}: data.source.split must be one of {', '.join(self.splits)}; got {split!r}")
        self.split = split
        self.load_size = _jitter_sizes(self.name, self.image_size, load_size)
        self.flip = _check_bool(flip, f"{self.name}: data.source.flip")

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        raw, y = _mnist_5k_raw()
        edges = _mnist_5k_edges().clone()
        digits = to_unit_range(raw, 255.0)
        if self.image_size != MNIST_FRAME:
            edges, digits = resize_images(edges, self.image_size), resize_images(digits, self.image_size)
        train, test = stratified_split(y, MNIST5k.TEST_PER_CLASS)
        keep = train if split == "train" else test
        shape = (1, self.image_size, self.image_size)
        info = DataInfo(self.name, "image", shape, num_classes=10, class_names=DIGIT_NAMES, pairing="paired",
                        shape_b=shape, extras=_extras(self.load_size, self.image_size, self.flip))
        return PairedTensorDataset(edges[keep], digits[keep], y[keep].clone()), info


# ------------------------------------------------------------------------------------------------
# mnist2digits
# ------------------------------------------------------------------------------------------------
def digits_in_mnist_frame(images: Tensor) -> Tensor:
    """scikit-learn's 8x8 digits (values 0..16, ``(N, 8, 8)`` or ``(N, 1, 8, 8)``) as 28 px images
    in [-1, 1], laid out like MNIST: bilinearly upsampled (``align_corners=False``) to the 20x20
    box MNIST's digits are fitted into, then padded with background (-1) by 4 px on every side
    to the 28x28 frame."""
    x = images.float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.shape[-3:] != (1, 8, 8):
        raise ValueError(f"expected 8x8 digits, got {tuple(images.shape)}")
    x = F.interpolate(to_unit_range(x, 16.0), size=(DIGITS_BOX, DIGITS_BOX), mode="bilinear", align_corners=False)
    pad = (MNIST_FRAME - DIGITS_BOX) // 2
    return F.pad(x.clamp(-1.0, 1.0), (pad, pad, pad, pad), value=-1.0)


def _digits_raw() -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (torch.from_numpy(np.asarray(bunch.images, dtype=np.float32)),
            torch.from_numpy(np.asarray(bunch.target, dtype=np.int64)))


class MNIST2Digits(Source):
    """Unpaired: domain A = MNIST-5k digits, domain B = scikit-learn's 8x8 digits in MNIST's frame
    (:func:`digits_in_mnist_frame`). Two handwriting styles of the same ten digits; labels of
    both kept, for evaluation only.

    Splits: A uses MNIST-5k's (4,500 / 500); B puts 50 of every digit (500, seed 0) in ``test``
    and the other 1,297 in ``train``. ``seed`` fixes B's partner permutation (module docstring).
    Both sides are resized to ``image_size`` when it is not 28.
    """

    name = "mnist2digits"
    splits = ("train", "test")

    def __init__(self, image_size: int = 28, split: str = "train", seed: int = 0, load_size: int | None = None,
                 flip: bool = False) -> None:
        self.image_size = check_image_size(image_size, f"{self.name}: data.source")
        if split not in self.splits:
            raise UserError(f"{self.name}: data.source.split must be one of {', '.join(self.splits)}; got {split!r}")
        self.split = split
        self.seed = _check_seed(seed, f"{self.name}: data.source.seed")
        self.load_size = _jitter_sizes(self.name, self.image_size, load_size)
        self.flip = _check_bool(flip, f"{self.name}: data.source.flip")

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        a, y_a = mnist_5k_images(self.image_size)
        train_a, test_a = stratified_split(y_a, MNIST5k.TEST_PER_CLASS)
        raw_b, y_b = _digits_raw()
        b = digits_in_mnist_frame(raw_b)
        if self.image_size != MNIST_FRAME:
            b = resize_images(b, self.image_size)
        train_b, test_b = stratified_split(y_b, DIGITS_TEST_PER_CLASS)
        ka, kb = (train_a, train_b) if split == "train" else (test_a, test_b)
        dataset = UnpairedTensorDataset(a[ka], b[kb], y_a[ka], y_b[kb], seed=self.seed)
        shape = (1, self.image_size, self.image_size)
        info = DataInfo(self.name, "image", shape, num_classes=10, class_names=DIGIT_NAMES, pairing="unpaired",
                        shape_b=shape, extras=_extras(self.load_size, self.image_size, self.flip,
                                                      size_a=len(ka), size_b=len(kb)))
        return dataset, info


# ------------------------------------------------------------------------------------------------
# folders
# ------------------------------------------------------------------------------------------------
def _read_image(path: Path, channels: int, size: int, box: tuple[int, int, int, int] | None = None) -> Tensor:
    """One image file (optionally the ``box`` part of it) as ``(channels, size, size)`` in [-1, 1];
    resized with bicubic interpolation like the original's PIL pipeline."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        if box is not None:
            image = image.crop(box)
        if channels == 1:
            image = image.convert("L")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BICUBIC)
        pixels = np.asarray(image, dtype=np.float32)
    tensor = torch.from_numpy(pixels.copy())
    tensor = tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1)
    return tensor.div_(127.5).sub_(1.0)


def _image_sizes(files: list[Path]) -> tuple[list[Path], list[tuple[int, int]], list[Path]]:
    """(readable files, their (width, height), unreadable files): only headers are parsed."""
    from PIL import Image

    good, sizes, bad = [], [], []
    for path in files:
        try:
            with Image.open(path) as image:
                sizes.append(image.size)
            good.append(path)
        except (OSError, ValueError, SyntaxError):
            bad.append(path)
    return good, sizes, bad


class _FileItems(Dataset):
    """Per-item file reading; a file that fails to decode is replaced by the next readable item
    with one warning per file (as :class:`gan_lab.data.datasets.ImageFolderDataset`)."""

    what = "translation folder"

    def __init__(self) -> None:
        self._bad: set[int] = set()

    def _item(self, index: int) -> Batch:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> Batch:
        n = len(self)
        for step in range(n):
            j = (int(index) + step) % n
            if j in self._bad:
                continue
            try:
                return self._item(j)
            except (OSError, ValueError, SyntaxError) as err:
                self._bad.add(j)
                warnings.warn(f"{self.what}: cannot decode item {j} ({err}); using another one instead")
        raise UserError(f"{self.what}: none of the images could be decoded; check the files under data.source.root")


class PairedFolderDataset(_FileItems):
    """Side-by-side files: the left half is A, the right half B; ``direction`` picks which is
    the input ``x``. Items are single-sample :class:`Batch` es (``x``, ``target``)."""

    what = "pix2pix_folder"

    def __init__(self, files: list[Path], sizes: list[tuple[int, int]], direction: str, size: int,
                 input_channels: int, target_channels: int) -> None:
        super().__init__()
        self.files, self.sizes = files, sizes
        self.direction, self.size = direction, size
        self.input_channels, self.target_channels = input_channels, target_channels

    def __len__(self) -> int:
        return len(self.files)

    def _item(self, index: int) -> Batch:
        path = self.files[index]
        w, h = self.sizes[index]
        half = w // 2
        boxes = ((0, 0, half, h), (half, 0, w, h))
        box_x, box_t = boxes if self.direction == "AtoB" else boxes[::-1]
        x = _read_image(path, self.input_channels, self.size, box_x)
        target = _read_image(path, self.target_channels, self.size, box_t)
        return Batch(x, target=target)


class UnpairedFolderDataset(_FileItems):
    """Two lists of files; item ``i`` = (A ``i % n_A``, B ``perm_B[i % n_B]``)."""

    what = "unpaired_folder"

    def __init__(self, files_a: list[Path], files_b: list[Path], size: int, channels_a: int, channels_b: int,
                 seed: int = 0) -> None:
        super().__init__()
        self.files_a, self.files_b = files_a, files_b
        self.size, self.channels_a, self.channels_b = size, channels_a, channels_b
        self.seed = seed
        self._perm_b = torch.randperm(len(files_b), generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def _item(self, index: int) -> Batch:
        a = _read_image(self.files_a[index % len(self.files_a)], self.channels_a, self.size)
        b = _read_image(self.files_b[int(self._perm_b[index % len(self.files_b)])], self.channels_b, self.size)
        return Batch(a, x_b=b)

    def domain(self, side: str) -> Dataset:
        """Domain ``"a"`` or ``"b"`` alone (items ``(image, 0)``), every image once."""
        if side not in ("a", "b"):
            raise ValueError(f"side must be 'a' or 'b', got {side!r}")
        files, channels = (self.files_a, self.channels_a) if side == "a" else (self.files_b, self.channels_b)
        return _DomainFiles(files, channels, self.size)


class _DomainFiles(Dataset):
    def __init__(self, files: list[Path], channels: int, size: int) -> None:
        self.files, self.channels, self.size = files, channels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return _read_image(self.files[index], self.channels, self.size), torch.tensor(0)


def _resolve_root(root: object, default_folder: str | None) -> str | None:
    if root is None:
        return None if default_folder is None else os.path.join(default_data_root(), default_folder)
    return os.path.expanduser(str(root))


class Pix2PixFolder(Source):
    """The original Pix2Pix layout: ``root/train/``, ``root/val/``, ``root/test/``, each image the
    input and the target side by side (A | B, width = 2 x height).

    Args:
        root: the folder holding ``train/`` etc.
        direction: ``AtoB`` (x = left half) or ``BtoA`` (x = right half).
        load_size, crop_size: the training jitter (286 -> 256 in the paper); the train split is
            delivered at ``load_size``, the others at ``crop_size``.
        flip: random mirroring in the training jitter.
        input_channels, target_channels: 3 (RGB) or 1 (grayscale) for each side after direction.
        split: the split ``load()`` gives by default.
    """

    name = "pix2pix_folder"
    splits = ("train", "val", "test")
    layout = "root/train/, root/val/, root/test/ holding side-by-side A|B images (width = 2 x height)"

    def __init__(self, root: str | os.PathLike | None = None, direction: str = "AtoB", load_size: int = 286,
                 crop_size: int = 256, flip: bool = True, input_channels: int = 3, target_channels: int = 3,
                 split: str = "train", name: str | None = None, _default_folder: str | None = None) -> None:
        if name is not None:
            self.name = str(name)
        self.root = _resolve_root(root, _default_folder)
        if direction not in DIRECTIONS:
            raise UserError(f"{self.name}: data.source.direction must be AtoB or BtoA, got {direction!r}")
        self.direction = direction
        self.crop_size = _check_crop(self.name, crop_size)
        self.load_size = _jitter_sizes(self.name, self.crop_size, load_size)
        self.flip = _check_bool(flip, f"{self.name}: data.source.flip")
        self.input_channels = _check_channels(input_channels, f"{self.name}: data.source.input_channels")
        self.target_channels = _check_channels(target_channels, f"{self.name}: data.source.target_channels")
        if split not in self.splits:
            raise UserError(f"{self.name}: data.source.split must be one of {', '.join(self.splits)}; got {split!r}")
        self.split = split

    def _root(self) -> Path:
        if self.root is None:
            raise UserError(f"{self.name}: no folder given; set data.source.root to a folder with {self.layout}")
        root = Path(self.root)
        if not root.is_dir():
            raise UserError(f"{self.name}: folder {root.resolve()} does not exist; expected {self.layout}")
        return root

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        folder = self._root() / split
        if not folder.is_dir():
            raise UserError(f"{self.name}: no folder {folder.resolve()}; expected {self.layout}")
        files, sizes, bad = _image_sizes(scan_image_folder(folder, IMAGE_EXTENSIONS))
        if bad:
            warnings.warn(f"{self.name}: skipped {len(bad)} unreadable file(s) under {folder.resolve()}, e.g. {bad[0]}")
        if not files:
            raise UserError(f"{self.name}: no images in {folder.resolve()}; expected {self.layout}")
        for path, (w, h) in zip(files, sizes):
            if w != 2 * h:
                raise UserError(
                    f"{self.name}: {path.resolve()} is {w}x{h}, not two square halves side by side; "
                    f"expected {self.layout}"
                )
        size = self.load_size if split == "train" else self.crop_size
        dataset = PairedFolderDataset(files, sizes, self.direction, size, self.input_channels, self.target_channels)
        info = DataInfo(self.name, "image", (self.input_channels, self.crop_size, self.crop_size), pairing="paired",
                        shape_b=(self.target_channels, self.crop_size, self.crop_size),
                        extras=_extras(self.load_size, self.crop_size, self.flip, direction=self.direction))
        return dataset, info


class UnpairedFolder(Source):
    """The CycleGAN layout: ``root/trainA/``, ``root/trainB/``, ``root/testA/``, ``root/testB/``
    (images found recursively). Unlabelled; ``domain("a"|"b")`` gives one domain alone.

    Args: ``root``; ``load_size``/``crop_size``/``flip`` as :class:`Pix2PixFolder` (applied to each
    domain independently by the family); ``channels_a``, ``channels_b`` (3 or 1); ``seed`` for the
    B partner permutation; ``split``.
    """

    name = "unpaired_folder"
    splits = ("train", "test")
    layout = "root/trainA/, root/trainB/, root/testA/, root/testB/ holding the images of domains A and B"

    def __init__(self, root: str | os.PathLike | None = None, load_size: int = 286, crop_size: int = 256,
                 flip: bool = True, channels_a: int = 3, channels_b: int = 3, seed: int = 0, split: str = "train",
                 name: str | None = None, _default_folder: str | None = None) -> None:
        if name is not None:
            self.name = str(name)
        self.root = _resolve_root(root, _default_folder)
        self.crop_size = _check_crop(self.name, crop_size)
        self.load_size = _jitter_sizes(self.name, self.crop_size, load_size)
        self.flip = _check_bool(flip, f"{self.name}: data.source.flip")
        self.channels_a = _check_channels(channels_a, f"{self.name}: data.source.channels_a")
        self.channels_b = _check_channels(channels_b, f"{self.name}: data.source.channels_b")
        self.seed = _check_seed(seed, f"{self.name}: data.source.seed")
        if split not in self.splits:
            raise UserError(f"{self.name}: data.source.split must be one of {', '.join(self.splits)}; got {split!r}")
        self.split = split

    def _domain_files(self, root: Path, folder_name: str) -> list[Path]:
        folder = root / folder_name
        if not folder.is_dir():
            raise UserError(f"{self.name}: no folder {folder.resolve()}; expected {self.layout}")
        files, _, bad = _image_sizes(scan_image_folder(folder, IMAGE_EXTENSIONS))
        if bad:
            warnings.warn(f"{self.name}: skipped {len(bad)} unreadable file(s) under {folder.resolve()}, e.g. {bad[0]}")
        if not files:
            raise UserError(f"{self.name}: no images in {folder.resolve()} (domain {folder_name[-1]} is empty); "
                            f"expected {self.layout}")
        return files

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        if self.root is None:
            raise UserError(f"{self.name}: no folder given; set data.source.root to a folder with {self.layout}")
        root = Path(self.root)
        if not root.is_dir():
            raise UserError(f"{self.name}: folder {root.resolve()} does not exist; expected {self.layout}")
        files_a = self._domain_files(root, f"{split}A")
        files_b = self._domain_files(root, f"{split}B")
        size = self.load_size if split == "train" else self.crop_size
        dataset = UnpairedFolderDataset(files_a, files_b, size, self.channels_a, self.channels_b, seed=self.seed)
        info = DataInfo(self.name, "image", (self.channels_a, self.crop_size, self.crop_size), pairing="unpaired",
                        shape_b=(self.channels_b, self.crop_size, self.crop_size),
                        extras=_extras(self.load_size, self.crop_size, self.flip, size_a=len(files_a),
                                       size_b=len(files_b)))
        return dataset, info


# ------------------------------------------------------------------------------------------------
# presets (folder names as the originals' download scripts create them)
# ------------------------------------------------------------------------------------------------
def facades(root: str | os.PathLike | None = None, direction: str = "BtoA", **options) -> Pix2PixFolder:
    """CMP Facades in ``<data root>/facades``; BtoA (label map -> photo), as the paper trains it."""
    return Pix2PixFolder(root, direction=direction, name="facades", _default_folder="facades", **options)


def maps(root: str | os.PathLike | None = None, direction: str = "AtoB", **options) -> Pix2PixFolder:
    """Google maps in ``<data root>/maps`` (train/ and val/ only); AtoB: aerial photo -> map."""
    return Pix2PixFolder(root, direction=direction, name="maps", _default_folder="maps", **options)


def edges2shoes(root: str | os.PathLike | None = None, direction: str = "AtoB", **options) -> Pix2PixFolder:
    """edges2shoes in ``<data root>/edges2shoes`` (train/ and val/); AtoB: edges -> shoe."""
    return Pix2PixFolder(root, direction=direction, name="edges2shoes", _default_folder="edges2shoes", **options)


def horse2zebra(root: str | os.PathLike | None = None, **options) -> UnpairedFolder:
    """horse2zebra in ``<data root>/horse2zebra``: A = horses, B = zebras."""
    return UnpairedFolder(root, name="horse2zebra", _default_folder="horse2zebra", **options)


PRESETS = {"facades": facades, "maps": maps, "edges2shoes": edges2shoes, "horse2zebra": horse2zebra}

__all__ = [
    "Edges2MNIST5k",
    "MNIST2Digits",
    "PRESETS",
    "PairedFolderDataset",
    "PairedTensorDataset",
    "Pix2PixFolder",
    "UnpairedFolder",
    "UnpairedFolderDataset",
    "UnpairedTensorDataset",
    "digits_in_mnist_frame",
    "edge_map",
    "edges2shoes",
    "facades",
    "horse2zebra",
    "maps",
    "unpaired_partner",
]
