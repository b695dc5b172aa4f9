"""Label helpers shared by semi-supervised models (the SSGAN, the semi-supervised AAE).

:func:`labeled_subset` picks the fixed, seeded subset of a data set whose labels a
semi-supervised model may train on (``data.labeled_per_class``); the rest count as unlabelled.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_lab.errors import UserError


def labeled_subset(y: Tensor, per_class: int, seed: int = 0, num_classes: int | None = None) -> Tensor:
    """A bool mask over ``y`` (N,) marking ``per_class`` examples of every class.

    The pick is a function of ``(y, per_class, seed)`` only: for each class in increasing order a
    permutation of its members is drawn from one ``torch.Generator`` seeded with ``seed`` and the
    first ``per_class`` are kept (the global RNG is not touched; every process of a DDP run gets
    the same mask). Classes are ``0 .. num_classes - 1`` when ``num_classes`` is given (a class
    without examples is then an error), else the labels present in ``y``.

    ``per_class`` larger than the smallest class is a :class:`UserError` that names that class
    and its size.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise UserError(f"data.labeled_per_class must be a positive integer, got {per_class!r}")
    y = torch.as_tensor(y).long().cpu()
    if y.ndim != 1 or y.numel() == 0:
        raise UserError("data.labeled_per_class needs a labelled data set")
    classes = list(range(num_classes)) if num_classes is not None else torch.unique(y).tolist()
    counts = {c: int((y == c).sum()) for c in classes}
    smallest = min(classes, key=lambda c: (counts[c], c))
    if counts[smallest] == 0:
        raise UserError(f"data.labeled_per_class: class {smallest} has no examples in this data set")
    if per_class > counts[smallest]:
        raise UserError(
            f"data.labeled_per_class={per_class} exceeds the smallest class: class {smallest} has "
            f"{counts[smallest]} examples; choose at most {counts[smallest]}"
        )
    generator = torch.Generator().manual_seed(int(seed))
    mask = torch.zeros(len(y), dtype=torch.bool)
    for c in classes:
        members = torch.nonzero(y == c).flatten()
        mask[members[torch.randperm(len(members), generator=generator)[:per_class]]] = True
    return mask


def labelled_pool(datamodule, device) -> tuple[Tensor, Tensor] | None:
    """The labelled subset of a semi-supervised run (``data.labeled_per_class``) as ``(x, y)``
    tensors on ``device``, from which a model draws its supervised batches; ``None`` without that
    setting."""
    from gan_lab.data.module import take

    mask = getattr(datamodule, "labeled_mask", None) if datamodule is not None else None
    if mask is None:
        return None
    batch = take(datamodule.dataset, torch.nonzero(mask).flatten())
    return batch.x.to(device), batch.y.long().to(device)


def parse_labels(spec: object, num_classes: int) -> list[int]:
    """The classes a ``labels=`` request names: ``"all"`` (every class), one class ``k`` or a list
    ``"k1,k2,..."`` (or a Python list/tuple of ints). A class outside ``0 .. num_classes - 1``, or
    asking an unconditional model (``num_classes == 0``), is a :class:`UserError`."""
    if num_classes < 1:
        raise UserError("labels= needs a class-conditional model; this checkpoint is unconditional")
    if isinstance(spec, str) and spec.strip().lower() == "all":
        return list(range(num_classes))
    if isinstance(spec, bool):
        raise UserError(f"labels must be 'all', a class index or a list of them, got {spec!r}")
    if isinstance(spec, int):
        items = [spec]
    elif isinstance(spec, str):
        try:
            items = [int(part) for part in spec.split(",") if part.strip()]
        except ValueError:
            raise UserError(f"labels must be 'all', a class index or a comma-separated list, got {spec!r}") from None
    elif isinstance(spec, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in spec):
        items = list(spec)
    else:
        raise UserError(f"labels must be 'all', a class index or a list of them, got {spec!r}")
    if not items:
        raise UserError("labels names no class")
    bad = [k for k in items if not 0 <= k < num_classes]
    if bad:
        raise UserError(f"labels={bad[0]} is not a class of this model; it has {num_classes} classes (0..{num_classes - 1})")
    return items


def cycle_labels(n: int, classes: list[int] | tuple[int, ...]) -> Tensor:
    """``n`` int64 labels cycling through ``classes`` in order: sample i gets ``classes[i % len]``
    (``labels=all`` gives 0, 1, ..., K-1, 0, 1, ...: every class equally often up to one)."""
    if not classes:
        raise ValueError("cycle_labels needs at least one class")
    return torch.as_tensor(list(classes), dtype=torch.int64)[torch.arange(n) % len(classes)]
