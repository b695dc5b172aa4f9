"""Checks that keep NaN/Inf out of a run: losses, gradient norms and weights.

Every check costs one device sync; under DDP all ranks agree before anyone skips or stops, since
a rank that skips an update alone would hang the others in the gradient all-reduce.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor

DIVERGENCE_MODES = ("stop", "skip")


def total_norm(tensors: Iterable[Tensor | None]) -> Tensor:
    """The 2-norm of many tensors as one 0-d tensor (NaN/Inf if any element is)."""
    tensors = [t.detach() for t in tensors if t is not None]
    if not tensors:
        return torch.zeros(())
    # _foreach_norm computes all norms in one C++ call: this runs on every update
    norms = torch._foreach_norm(tensors) if hasattr(torch, "_foreach_norm") else [
        torch.linalg.vector_norm(t) for t in tensors
    ]
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


def first_non_finite(values: dict) -> tuple[bool, str | None]:
    """(all finite?, a description of the first bad term) with a single device sync."""
    items = [(k, v.detach()) for k, v in values.items() if torch.is_tensor(v)]
    if not items:
        return True, None
    flags = torch.stack([torch.isfinite(v).all() for _, v in items])
    if bool(flags.all()):
        return True, None
    key, value = next((k, v) for (k, v), good in zip(items, flags.tolist()) if not good)
    first_bad = value.float().flatten()[~torch.isfinite(value.float().flatten())][0]
    return False, f"{key} is {float(first_bad)}"
