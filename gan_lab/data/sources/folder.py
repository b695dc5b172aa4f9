"""Any folder of images, with first-level subfolders as classes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from torch.utils.data import Dataset

from gan_lab.data.datasets import IMAGE_EXTENSIONS, ImageFolderDataset, check_image_size, scan_image_folder
from gan_lab.data.info import DataInfo
from gan_lab.data.sources.base import Source
from gan_lab.errors import UserError


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

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
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
        info = DataInfo(self.name, "image", (self.channels, self.image_size, self.image_size), num_classes=num_classes,
                        class_names=tuple(self.classes) if num_classes else None)
        return dataset, info
