"""Penalties on the discriminator's input gradients (Lipschitz constraints and R1).

A penalty takes the discriminator (a callable), the real and fake batches and returns a scalar
that the discriminator minimises together with its loss. They are shape-generic: images, points
and one-hot token sequences alike.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_lab.errors import UserError


def _input_gradients(discriminator: Callable[[Tensor], Tensor], points: Tensor) -> Tensor:
    """dD/dx at ``points``, flattened per sample, with a graph so the penalty can be trained."""
    points = points.detach().requires_grad_(True)
    out = discriminator(points)
    (grad,) = torch.autograd.grad(out.sum(), points, create_graph=True)
    return grad.flatten(1)


def _interpolates(real: Tensor, fake: Tensor) -> Tensor:
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, device=real.device, dtype=real.dtype)
    return alpha * real.detach() + (1.0 - alpha) * fake.detach()


def gradient_penalty(discriminator, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] on random interpolates."""
    grad = _input_gradients(discriminator, _interpolates(real, fake))
    return ((grad.norm(2, dim=1) - 1.0) ** 2).mean()


def lipschitz_penalty(discriminator, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-LP (Petzka et al. 2018): one-sided E[max(0, ||grad D(x_hat)|| - 1)^2]."""
    grad = _input_gradients(discriminator, _interpolates(real, fake))
    return (F.relu(grad.norm(2, dim=1) - 1.0) ** 2).mean()


def wasserstein_div_penalty(discriminator, real: Tensor, fake: Tensor, p: float = 6.0) -> Tensor:
    """WGAN-div (Wu et al. 2018): E[||grad D(x)||^p] on real and on fake points.

    The coefficient k (2 in the paper) is the penalty weight. The paper's reference code sums
    the real and fake terms; we do the same.
    """
    grad_real = _input_gradients(discriminator, real)
    grad_fake = _input_gradients(discriminator, fake)
    return grad_real.norm(2, dim=1).pow(p).mean() + grad_fake.norm(2, dim=1).pow(p).mean()


def r1_penalty(discriminator, real: Tensor, fake: Tensor | None = None) -> Tensor:
    """R1 (Mescheder et al. 2018): 1/2 E[||grad D(x)||^2] on real data. The weight is gamma."""
    grad = _input_gradients(discriminator, real)
    return 0.5 * grad.pow(2).sum(dim=1).mean()


PENALTIES = {
    "gp": gradient_penalty,
    "lp": lipschitz_penalty,
    "div": wasserstein_div_penalty,
    "r1": r1_penalty,
}


def get_penalty(name: str | None):
    if name in (None, "none"):
        return None
    try:
        return PENALTIES[name]
    except KeyError:
        raise UserError(
            f"unknown penalty '{name}'; choose one of: none, {', '.join(PENALTIES)}"
        ) from None
