"""The one batch type every family trains on: :class:`Batch`.

A data set hands out whole batches (``TensorBatchDataset.take``) or single items; either way
the data module delivers a :class:`Batch` to the training step. Only ``x`` is always present:

========== ========================================================================================
field      what
========== ========================================================================================
``x``      the sample: images ``(B, C, H, W)`` in [-1, 1], points ``(B, D)``, tokens ``(B, L)``
           int64; for translation sets the input side (paired) or domain A (unpaired)
``y``      int64 class labels ``(B,)``, or ``None`` for unlabelled sets
``index``  int64 position of every sample in its data set ``(B,)`` (GLO keeps a code per image)
``target`` paired translation: the target side of each ``x``
``x_b``    unpaired translation: a batch of domain B (``y_b`` its labels, for evaluation only)
``labeled``bool ``(B,)``: which labels a semi-supervised model may train on
========== ========================================================================================

It is a plain mutable dataclass so that Lightning moves it between devices field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import default_collate


@dataclass
class Batch:
    x: Tensor
    y: Tensor | None = None
    index: Tensor | None = None
    target: Tensor | None = None
    x_b: Tensor | None = None
    y_b: Tensor | None = None
    labeled: Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def select(self, rows: Tensor | slice) -> "Batch":
        """The same fields restricted to ``rows`` (a slice, an index or a bool mask)."""
        return Batch(**{f.name: (None if (v := getattr(self, f.name)) is None else v[rows]) for f in fields(self)})

    @classmethod
    def of(cls, value: Any) -> "Batch":
        """A :class:`Batch` from a batch in any form a data set may give: a Batch, an
        ``(x, y)`` pair, ``(x,)`` or a bare tensor."""
        if isinstance(value, Batch):
            return value
        if torch.is_tensor(value):
            return cls(value)
        if isinstance(value, (tuple, list)) and 1 <= len(value) <= 2:
            x = value[0]
            y = value[1] if len(value) == 2 else None
            return cls(x, None if y is None else torch.as_tensor(y, dtype=torch.int64))
        raise TypeError(f"cannot make a Batch of a {type(value).__name__}")


class WholeBatch:
    """Marks a value that already holds a whole batch (a data set's ``__getitems__`` result), so
    :func:`collate` passes it on instead of collating items."""

    __slots__ = ("batch",)

    def __init__(self, batch: Batch) -> None:
        self.batch = batch


def collate(items: Any) -> Batch:
    """The data loaders' collate function: whole batches pass through; single items ((x, y)
    pairs or :class:`Batch` items of one sample each) are stacked with torch's default_collate."""
    if isinstance(items, WholeBatch):
        return items.batch
    first = items[0]
    if isinstance(first, Batch):
        stacked = {}
        for f in fields(Batch):
            values = [getattr(item, f.name) for item in items]
            stacked[f.name] = None if values[0] is None else default_collate(values)
        return Batch(**stacked)
    return Batch.of(default_collate(items))
