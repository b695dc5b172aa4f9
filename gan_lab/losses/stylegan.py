"""StyleGAN2's regularisers and training schedules as small pure functions.

* :func:`path_lengths` / :func:`path_length_penalty`: the path-length regulariser (Karras et al.
  2020, eq. 4): ``E_{w,y} (||J_w^T y||_2 - a)^2`` with ``y`` Gaussian image-space noise scaled by
  ``1/sqrt(H*W)`` and ``a`` a running mean of the lengths.
* :func:`lazy_regularization`: the optimizer settings of a network whose regulariser runs only
  every ``k`` minibatches (learning rate times ``k/(k+1)``, betas to the power ``k/(k+1)``).
* :func:`ema_beta`: the EMA decay per step for a half-life given in thousands of images, with
  StyleGAN2-ADA's optional ramp-up.

The logistic loss is the lab's ``non_saturating`` pair and R1 the lab's ``r1_penalty``
(:mod:`gan_lab.losses.adversarial`, :mod:`gan_lab.losses.penalties`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


def path_lengths(images: Tensor, ws: Tensor, noise: Tensor | None = None) -> Tensor:
    """``||J_w^T y||_2`` per sample, with a graph: ``y = noise / sqrt(H * W)`` (``noise``: standard
    normal like ``images``, drawn here when None) and ``J_w`` the Jacobian of the images with
    respect to ``ws`` (B, L, D). The squared gradient is summed over D and averaged over the L
    layers, as in StyleGAN2."""
    if noise is None:
        noise = torch.randn_like(images)
    y = noise / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(lengths: Tensor, pl_mean: Tensor, decay: float,
                        batch_mean: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``((lengths - a)^2 per sample, a)`` with ``a = pl_mean + decay * (mean(lengths) - pl_mean)``,
    the updated running mean (it keeps its graph through ``mean(lengths)``, as the original).
    ``batch_mean`` replaces ``mean(lengths)`` in the value only (the mean over all DDP ranks)."""
    mean = lengths.mean()
    if batch_mean is not None:
        mean = mean + (batch_mean - mean).detach()
    a = pl_mean.lerp(mean, decay)
    return (lengths - a).square(), a


def lazy_regularization(optimizer: dict[str, Any], every: int) -> dict[str, Any]:
    """Optimizer settings for a network regularised every ``every`` minibatches: the regulariser's
    step is folded into the schedule of ``every + 1`` steps, so lr and Adam's betas are corrected by
    ``c = every / (every + 1)``: ``lr * c`` and ``beta ** c`` (StyleGAN2, appendix B)."""
    cfg = dict(optimizer)
    if every <= 1:
        return cfg
    c = every / (every + 1)
    if "lr" in cfg:
        cfg["lr"] = float(cfg["lr"]) * c
    if cfg.get("betas") is not None:
        cfg["betas"] = [float(b) ** c for b in cfg["betas"]]
    return cfg


def ema_beta(images_per_step: float, images_seen: float, half_life_kimg: float, rampup: float | None) -> float:
    """The EMA decay of one step of ``images_per_step`` images for a half-life of
    ``half_life_kimg`` thousand images: ``0.5 ** (images_per_step / half_life)``; with ``rampup``
    the half-life is at most ``rampup * images_seen`` (so early weights fade quickly)."""
    half_life = half_life_kimg * 1000.0
    if rampup is not None:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (images_per_step / max(half_life, 1e-8))
