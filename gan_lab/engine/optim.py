"""Optimizer and learning-rate schedule construction from plain config dicts."""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from gan_lab.errors import UserError

# Which config keys each optimizer understands; the others are left out so that switching
# ``name`` from adam to rmsprop does not trip over Adam's ``betas``.
_OPTIMIZERS = {
    "adam": (torch.optim.Adam, ("lr", "betas", "eps", "weight_decay")),
    "adamw": (torch.optim.AdamW, ("lr", "betas", "eps", "weight_decay")),
    "rmsprop": (torch.optim.RMSprop, ("lr", "alpha", "eps", "weight_decay", "momentum")),
    "sgd": (torch.optim.SGD, ("lr", "momentum", "weight_decay", "nesterov")),
}


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: dict[str, Any]) -> torch.optim.Optimizer:
    cfg = dict(cfg)
    name = str(cfg.pop("name", "adam")).lower()
    if name not in _OPTIMIZERS:
        raise UserError(f"unknown optimizer '{name}'; choose one of: {', '.join(_OPTIMIZERS)}")
    cls, keys = _OPTIMIZERS[name]
    kwargs = {k: v for k, v in cfg.items() if k in keys and v is not None}
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    return cls(params, **kwargs)


SCHEDULES = ("constant", "linear", "cosine")


def schedule_factor(name: str, max_steps: int, warmup: int = 0):
    """A multiplicative lr factor as a function of the generator step.

    ``linear`` decays to 0 at ``max_steps`` (as in the WGAN-GP and SNGAN reference setups);
    ``cosine`` follows half a cosine to 0. Both can start with a linear warm-up.
    """
    if name not in SCHEDULES:
        raise UserError(f"unknown lr schedule '{name}'; choose one of: {', '.join(SCHEDULES)}")

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if name == "constant" or max_steps <= 0:
            return 1.0
        t = min(1.0, step / max_steps)
        if name == "linear":
            return 1.0 - t
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return factor
