"""Adversarial losses as small pure functions, and their registry (``loss=<name>``).

Every loss takes the discriminator's raw outputs (logits / critic values) on a real and a fake
batch and returns a scalar. Generator losses take the real outputs too, so that relativistic
losses (which compare fake against real) fit the same signature; the others ignore them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch.nn.functional as F
from torch import Tensor

from gan_lab.errors import UserError

def minimax_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """-[log D(x) + log(1 - D(G(z)))] with D = sigmoid(logit), computed stably."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_g_loss(real: Tensor, fake: Tensor) -> Tensor:
    """The original saturating generator loss: minimise log(1 - D(G(z)))."""
    return -F.softplus(fake).mean()


def non_saturating_g_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Goodfellow's fix: maximise log D(G(z)), i.e. minimise -log sigmoid(fake)."""
    return F.softplus(-fake).mean()


def least_squares_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """LSGAN (a=0, b=1): 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()


def least_squares_g_loss(real: Tensor, fake: Tensor) -> Tensor:
    """LSGAN (c=1): 1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def wasserstein_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """The critic maximises E[D(x)] - E[D(G(z))]; we minimise the negative."""
    return fake.mean() - real.mean()


def wasserstein_g_loss(real: Tensor, fake: Tensor) -> Tensor:
    return -fake.mean()


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g_loss(real: Tensor, fake: Tensor) -> Tensor:
    return -fake.mean()


# Relativistic average losses (Jolicoeur-Martineau 2018). The discriminator judges whether a
# real sample is more realistic than the average fake one, and vice versa.


def _relativistic(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    return real - fake.mean(), fake - real.mean()


def ragan_sgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    r, f = _relativistic(real, fake)
    return F.softplus(-r).mean() + F.softplus(f).mean()


def ragan_sgan_g_loss(real: Tensor, fake: Tensor) -> Tensor:
    r, f = _relativistic(real, fake)
    return F.softplus(r).mean() + F.softplus(-f).mean()


def ragan_lsgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    r, f = _relativistic(real, fake)
    return ((r - 1.0) ** 2).mean() + ((f + 1.0) ** 2).mean()


def ragan_lsgan_g_loss(real: Tensor, fake: Tensor) -> Tensor:
    r, f = _relativistic(real, fake)
    return ((f - 1.0) ** 2).mean() + ((r + 1.0) ** 2).mean()


def ragan_hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    r, f = _relativistic(real, fake)
    return F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()


def ragan_hinge_g_loss(real: Tensor, fake: Tensor) -> Tensor:
    r, f = _relativistic(real, fake)
    return F.relu(1.0 - f).mean() + F.relu(1.0 + r).mean()


@dataclass(frozen=True)
class AdversarialLoss:
    """A named pair of D and G losses.

    ``g_uses_real`` says whether the generator loss needs D's output on real data (relativistic
    losses), so the training loop only spends that extra forward pass when it matters.
    ``wasserstein`` marks critic-style outputs, for which E[D(x)] - E[D(G(z))] is a meaningful
    estimate worth logging.
    """

    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor, Tensor], Tensor]
    g_uses_real: bool = False
    wasserstein: bool = False


LOSSES: dict[str, AdversarialLoss] = {
    loss.name: loss
    for loss in [
        AdversarialLoss("non_saturating", minimax_d_loss, non_saturating_g_loss),
        AdversarialLoss("minimax", minimax_d_loss, minimax_g_loss),
        AdversarialLoss("least_squares", least_squares_d_loss, least_squares_g_loss),
        AdversarialLoss("wasserstein", wasserstein_d_loss, wasserstein_g_loss, wasserstein=True),
        AdversarialLoss("hinge", hinge_d_loss, hinge_g_loss, wasserstein=True),
        AdversarialLoss("ragan_sgan", ragan_sgan_d_loss, ragan_sgan_g_loss, g_uses_real=True),
        AdversarialLoss("ragan_lsgan", ragan_lsgan_d_loss, ragan_lsgan_g_loss, g_uses_real=True),
        AdversarialLoss("ragan_hinge", ragan_hinge_d_loss, ragan_hinge_g_loss, g_uses_real=True),
    ]
}


def get_loss(name: str) -> AdversarialLoss:
    try:
        return LOSSES[name]
    except KeyError:
        raise UserError(f"unknown loss '{name}'; choose one of: {', '.join(LOSSES)}") from None


# Top-k training (Sinha et al. 2020, "Top-k Training of GANs: Improving GAN Performance by
# Throwing Away Bad Samples"): the generator's loss is taken over only the k fakes the
# discriminator rates most real. The gradients of the worst-rated fakes point towards the nearest
# mode rather than along the data, so dropping them sharpens samples; k shrinks as training goes on.


def top_k_fraction(t: float, decay: float, min_fraction: float) -> float:
    """The share of the fake batch kept after ``t`` decay periods: ``max(decay^t, min_fraction)``
    (the paper: decay 0.99 per epoch, floor 0.5 or 0.75)."""
    return max(decay ** t, min_fraction)


def top_k_outputs(fake: Tensor, fraction: float) -> Tensor:
    """The ``ceil(fraction * n)`` largest of D's outputs ``fake`` (shape ``(n,)`` or ``(n, 1)``:
    higher = rated more real for every loss here), at least one."""
    flat = fake.reshape(fake.shape[0], -1)
    if flat.shape[1] != 1:
        raise ValueError(f"top-k needs one output per sample, got shape {tuple(fake.shape)}")
    k = max(1, math.ceil(fraction * flat.shape[0] - 1e-9))
    return flat[:, 0].topk(k).values
