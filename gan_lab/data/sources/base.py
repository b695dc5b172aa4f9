"""The source contract and the checks every source shares.

A *source* builds one data set: ``load(split=None) -> (Dataset, DataInfo)``. ``split=None`` is the
split the source was configured to train on; ``"test"`` (where ``splits`` has it) is the held-out
split that evaluation uses. A source may also have ``prepare()``, which fetches files (run once,
on the main process only).
"""

from __future__ import annotations

import copy
import math
import os

from torch.utils.data import Dataset

from gan_lab.data.info import DataInfo
from gan_lab.errors import UserError

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
    """Base class of the data sources; subclasses set ``name`` and ``splits`` and implement
    :meth:`load_split`. ``splits[0]`` is what ``load()`` gives unless the source was configured
    otherwise (a ``split`` attribute)."""

    name: str = "source"
    splits: tuple[str, ...] = ("train",)

    def load(self, split: str | None = None) -> tuple[Dataset, DataInfo]:
        """The data set of ``split`` (``None``: the configured training split) and its info."""
        if split is None:
            split = getattr(self, "split", None) or self.splits[0]
        if split not in self.splits:
            raise UserError(
                f"{self.name} has no {split!r} split (it has: {', '.join(self.splits)})"
            )
        return self.load_split(split)

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:  # pragma: no cover - abstract
        raise NotImplementedError

    def with_split(self, split: str) -> "Source":
        """A copy of this source configured for ``split``."""
        other = copy.copy(self)
        other.split = split
        return other

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
