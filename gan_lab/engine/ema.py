"""Exponential moving averages of networks (the EMA generator, SeqGAN's rollout copy, ...)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from gan_lab.engine.spec import EMASpec


def make_copy(net: nn.Module) -> nn.Module:
    """A frozen copy of ``net`` to hold its average."""
    return copy.deepcopy(net).requires_grad_(False)


def scheduled_decay(spec: EMASpec, step: int) -> float:
    """The decay of ``spec`` after ``step`` steps (0: the copy follows the network)."""
    t = step - spec.start
    if t <= 0:
        return 0.0
    if spec.rampup == "tf":
        return min(spec.decay, (1.0 + t) / (10.0 + t))
    return spec.decay


@torch.no_grad()
def ema_update(average: nn.Module, net: nn.Module, decay: float) -> None:
    """``average ← decay · average + (1 − decay) · net`` for parameters; buffers are copied."""
    for a, p in zip(average.parameters(), net.parameters()):
        a.lerp_(p, 1.0 - decay)
    for a, b in zip(average.buffers(), net.buffers()):
        a.copy_(b)
