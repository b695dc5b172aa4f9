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


def schedule_factor(name: str, max_steps: int, warmup: int = 0, hold: float = 0.0):
    """A multiplicative lr factor as a function of the step.

    ``linear`` decays to 0 at ``max_steps`` (as in the WGAN-GP and SNGAN reference setups);
    ``cosine`` follows half a cosine to 0. Both can start with a linear warm-up, and both can
    ``hold`` the full rate for that fraction of ``max_steps`` first and decay over the rest (the
    Pix2Pix/CycleGAN schedule: constant for the first half, then linear to 0 is ``hold=0.5``).
    """
    if name not in SCHEDULES:
        raise UserError(f"unknown lr schedule '{name}'; choose one of: {', '.join(SCHEDULES)}")
    if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not 0.0 <= hold < 1.0:
        raise UserError(f"model.lr_hold must be a fraction in [0, 1), got {hold!r}")

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if name == "constant" or max_steps <= 0:
            return 1.0
        start = hold * max_steps
        t = min(1.0, max(0.0, step - start) / (max_steps - start))
        if name == "linear":
            return 1.0 - t
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return factor
