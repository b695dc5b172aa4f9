"""Losses, regularisers and small stateful helpers of the class-conditional family and of the
Improved-Techniques toolbox, as pure functions of network outputs.

* ACGAN (Odena et al. 2017): :func:`acgan_d_loss`, :func:`acgan_g_loss`.
* BigGAN (Brock et al. 2019): :func:`orthogonal_regularization` (the off-diagonal form),
  :func:`truncated_normal` (the truncation trick's latent sampler).
* Improved Techniques (Salimans et al. 2016): :func:`feature_matching_loss`,
  :func:`smoothed_d_loss` with :func:`check_label_smoothing` (one-sided label smoothing),
  :class:`HistoricalAverage`, and the semi-supervised GAN's :func:`ssgan_d_loss` with the
  (K+1)-way logit trick (:func:`ssgan_real_logit`).

Functions that return a loss also return a dict of its parts (detached 0-d tensors) for logging.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.errors import UserError
from gan_lab.losses.adversarial import minimax_d_loss, non_saturating_g_loss

Logs = dict[str, Tensor]

# ---------------------------------------------------------------------------------------------
# ACGAN
# ---------------------------------------------------------------------------------------------


def acgan_d_loss(
    adv_real: Tensor,
    adv_fake: Tensor,
    cls_real: Tensor,
    cls_fake: Tensor,
    y_real: Tensor,
    y_fake: Tensor,
    *,
    adv_loss: Callable[[Tensor, Tensor], Tensor] = minimax_d_loss,
    real_class_weight: float = 1.0,
    fake_class_weight: float = 1.0,
) -> tuple[Tensor, Logs]:
    """ACGAN's discriminator loss: ``adv_loss(adv_real, adv_fake) + w_r CE(cls_real, y_real)
    + w_f CE(cls_fake, y_fake)``.

    ``adv_*`` (B,) are real/fake logits, ``cls_*`` (B, K) class logits, ``y_fake`` the labels the
    fakes were generated for. CE is the mean softmax cross-entropy. Odena et al. maximise
    L_S + L_C with both class terms weighted 1 (the defaults); ``fake_class_weight=0`` gives the
    variant that trains D's classifier on real data only.
    """
    adv = adv_loss(adv_real, adv_fake)
    ce_real = F.cross_entropy(cls_real, y_real)
    ce_fake = F.cross_entropy(cls_fake, y_fake)
    loss = adv + real_class_weight * ce_real + fake_class_weight * ce_fake
    logs = {"d_adv": adv.detach(), "d_class_real": ce_real.detach(), "d_class_fake": ce_fake.detach()}
    return loss, logs


def acgan_g_loss(
    adv_real: Tensor | None,
    adv_fake: Tensor,
    cls_fake: Tensor,
    y_fake: Tensor,
    *,
    adv_loss: Callable[[Tensor, Tensor], Tensor] = non_saturating_g_loss,
    class_weight: float = 1.0,
) -> tuple[Tensor, Logs]:
    """ACGAN's generator loss: ``adv_loss(adv_real, adv_fake) + w CE(cls_fake, y_fake)`` (G wants
    its samples judged real *and* of the class it was asked for). ``adv_real`` is passed to
    ``adv_loss`` for relativistic losses; the others ignore it (``None`` is fine then)."""
    adv = adv_loss(adv_real, adv_fake)
    ce = F.cross_entropy(cls_fake, y_fake)
    return adv + class_weight * ce, {"g_adv": adv.detach(), "g_class": ce.detach()}


# ---------------------------------------------------------------------------------------------
# BigGAN: orthogonal regularisation and truncation
# ---------------------------------------------------------------------------------------------

#: BigGAN's orthogonal-regularisation strength.
ORTHO_BETA = 1e-4


def orthogonal_regularization(params: Iterable[Tensor], beta: float = ORTHO_BETA) -> Tensor:
    """BigGAN's off-diagonal orthogonal regulariser, summed over weight tensors:

    ``R = beta * sum_W || W^T W ⊙ (1 - I) ||_F^2``

    where each weight is viewed as a matrix with one column per output unit/filter (a PyTorch
    weight ``(out, ...)`` reshaped to ``w = (out, fan_in)`` gives ``W^T W = w w^T``, the Gram
    matrix of the filters). Only the filters' mutual inner products are penalised, not their norms.
    Tensors with fewer than 2 dimensions are skipped. For a BigGAN generator pass
    ``G.orthogonal_reg_parameters()`` (all weights except the shared embedding, as BigGAN's code).

    Scale note: BigGAN-PyTorch adds the hand-written gradient ``2 beta (w w^T ⊙ (1 - I)) w``,
    which is the gradient of ``beta / 2`` times the norm above; this function follows the paper's
    formula (gradient ``4 beta (w w^T ⊙ (1 - I)) w``).
    """
    total = None
    for p in params:
        if p.dim() < 2:
            continue
        w = p.reshape(p.shape[0], -1)
        gram = w @ w.T
        off = gram - torch.diag_embed(torch.diagonal(gram))
        term = (off * off).sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return beta * total


def check_truncation(psi: float) -> float:
    """The truncation threshold must be a positive number (``inf`` = no truncation)."""
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or math.isnan(psi) or psi <= 0:
        raise UserError(f"truncation must be a positive number (e.g. 1.0, 0.5), got {psi!r}")
    return float(psi)


def truncated_normal(
    shape: tuple[int, ...] | torch.Size,
    psi: float,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Standard normal samples with every entry whose magnitude exceeds ``psi`` redrawn until none
    does (BigGAN's truncation trick), so every value lies in ``[-psi, psi]``.

    Draws from ``generator`` (on its device; the result is moved to ``device``), never from the
    global RNG unless ``generator`` is ``None``. ``psi <= 0`` is a :class:`UserError`;
    ``psi = inf`` gives plain normal samples.
    """
    psi = check_truncation(psi)
    gen_device = generator.device if generator is not None else (device or "cpu")
    z = torch.randn(tuple(shape), generator=generator, device=gen_device, dtype=dtype)
    if math.isfinite(psi):
        bad = z.abs() > psi
        while bool(bad.any()):
            z[bad] = torch.randn(int(bad.sum()), generator=generator, device=gen_device, dtype=dtype)
            bad = z.abs() > psi
    return z.to(device) if device is not None else z


# ---------------------------------------------------------------------------------------------
# Improved Techniques (Salimans et al. 2016)
# ---------------------------------------------------------------------------------------------


def feature_matching_loss(real_features: Tensor, fake_features: Tensor, *, reduction: str = "sum",
                          detach_real: bool = True) -> Tensor:
    """``|| mean_x f(x) - mean_z f(G(z)) ||_2^2`` over the batch means of D's hidden features.

    ``reduction="sum"`` is the paper's squared norm; ``"mean"`` divides by the number of features
    (what the authors' code does). Real features are detached by default: only G trains on it.
    """
    if real_features.shape[1:] != fake_features.shape[1:]:
        raise ValueError(f"feature shapes differ: {tuple(real_features.shape)} vs {tuple(fake_features.shape)}")
    real_mean = real_features.flatten(1).mean(0)
    if detach_real:
        real_mean = real_mean.detach()
    diff = real_mean - fake_features.flatten(1).mean(0)
    sq = diff * diff
    if reduction == "sum":
        return sq.sum()
    if reduction == "mean":
        return sq.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


#: Adversarial losses (names of :data:`gan_lab.losses.LOSSES`) that are sigmoid cross-entropies
#: against 1/0 targets, the only ones where one-sided label smoothing has a meaning.
SMOOTHABLE_LOSSES = ("non_saturating", "minimax")


def check_label_smoothing(loss_name: str, alpha: float) -> float:
    """Raise :class:`UserError` unless one-sided label smoothing applies: a cross-entropy loss
    (``non_saturating`` or ``minimax``) and ``0.5 < alpha <= 1``."""
    if loss_name not in SMOOTHABLE_LOSSES:
        raise UserError(
            f"one_sided_label_smoothing works with the cross-entropy losses ({', '.join(SMOOTHABLE_LOSSES)}), "
            f"not with loss={loss_name}"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.5 < alpha <= 1:
        raise UserError(f"one_sided_label_smoothing alpha must be in (0.5, 1] (e.g. 0.9), got {alpha!r}")
    return float(alpha)


def smoothed_d_loss(real: Tensor, fake: Tensor, alpha: float = 0.9) -> Tensor:
    """The cross-entropy D loss with real targets ``alpha`` and fake targets 0 (one-sided):

    ``mean BCE(sigmoid(real), alpha) + mean BCE(sigmoid(fake), 0)``, where
    ``BCE(sigmoid(l), t) = t softplus(-l) + (1 - t) softplus(l)``. ``alpha = 1`` is
    :func:`gan_lab.losses.minimax_d_loss`. Fake targets stay 0: smoothing them too would reward
    samples where the data density is zero (section 3.4 of the paper).
    """
    return (alpha * F.softplus(-real) + (1.0 - alpha) * F.softplus(real)).mean() + F.softplus(fake).mean()


class HistoricalAverage:
    """Historical averaging: ``weight * sum_theta || theta - mean_t theta[t] ||^2`` for one network.

    The running mean is over the snapshots recorded with :meth:`update` (the family calls it after
    each optimizer step of that network; the first call records the starting point). Before any
    snapshot the penalty is 0. The mean is kept in float64 on the parameters' device and enters
    the penalty as a constant. Keys are parameter names, so :meth:`state_dict` /
    :meth:`load_state_dict` resume it exactly.
    """

    def __init__(self, weight: float):
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise UserError(f"historical_averaging weight must be a number >= 0, got {weight!r}")
        self.weight = float(weight)
        self.count = 0
        self.average: dict[str, Tensor] = {}

    @staticmethod
    def _params(module: nn.Module) -> dict[str, Tensor]:
        return {name: p for name, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Add the current parameters to the running mean."""
        self.count += 1
        for name, p in self._params(module).items():
            if name not in self.average:
                self.average[name] = p.detach().to(torch.float64).clone()
            else:
                avg = self.average[name]
                avg.add_((p.detach().to(torch.float64) - avg) / self.count)

    def penalty(self, module: nn.Module) -> Tensor:
        """``weight * sum ||theta - mean||^2`` (differentiable in theta), 0 before any update."""
        params = self._params(module)
        device = next(iter(params.values())).device if params else torch.device("cpu")
        total = torch.zeros((), device=device)
        if self.count == 0:
            return total
        for name, p in params.items():
            avg = self.average.get(name)
            if avg is None:
                raise KeyError(f"historical average has no entry for parameter {name!r}")
            total = total + ((p - avg.to(device=p.device, dtype=p.dtype)) ** 2).sum()
        return self.weight * total

    def state_dict(self) -> dict:
        return {"weight": self.weight, "count": self.count,
                "average": {k: v.detach().cpu().clone() for k, v in self.average.items()}}

    def load_state_dict(self, state: dict, device: torch.device | str | None = None) -> None:
        self.weight = float(state["weight"])
        self.count = int(state["count"])
        self.average = {k: v.detach().clone().to(device) if device is not None else v.detach().clone()
                        for k, v in state["average"].items()}


# ---------------------------------------------------------------------------------------------
# Semi-supervised GAN (Salimans et al. 2016, section 5)
# ---------------------------------------------------------------------------------------------


def ssgan_real_logit(class_logits: Tensor) -> Tensor:
    """The real/fake logit of a K-way classifier whose fake logit is fixed at 0.

    With ``Z(x) = sum_k exp(l_k)``, ``p(fake | x) = 1 / (Z + 1)`` and
    ``D(x) = 1 - p(fake | x) = Z / (Z + 1) = sigmoid(logsumexp_k l_k)``.
    """
    return torch.logsumexp(class_logits, dim=1)


def ssgan_d_loss(
    real_logits: Tensor,
    fake_logits: Tensor,
    y: Tensor | None,
    labeled: Tensor | None,
    *,
    unsupervised_weight: float = 1.0,
) -> tuple[Tensor, Logs]:
    """The semi-supervised GAN's D loss, ``L_sup + unsupervised_weight * L_unsup``.

    * ``L_sup = -mean_{labelled} log p(y | x, y <= K)``: softmax cross-entropy over the K class
      logits on the rows of ``real_logits`` where ``labeled`` is true (0 if there are none).
    * ``L_unsup = -mean_{all real} log D(x) - mean_{fake} log(1 - D(G(z)))`` with
      ``D = sigmoid(logsumexp l)`` (:func:`ssgan_real_logit`): every real row counts as unlabelled
      data, labelled or not.

    ``real_logits`` (B, K), ``fake_logits`` (B', K); ``y`` (B,) labels (only labelled rows are read),
    ``labeled`` (B,) bool. The paper's loss is the plain sum (weight 1); the authors' code
    halves the unsupervised part (weight 0.5).
    """
    if labeled is not None and bool(labeled.any()):
        if y is None:
            raise ValueError("labelled rows need labels y")
        sup = F.cross_entropy(real_logits[labeled], y[labeled])
    else:
        sup = real_logits.sum() * 0.0  # keeps the graph (and DDP) happy when a batch has no labels
    real_l, fake_l = ssgan_real_logit(real_logits), ssgan_real_logit(fake_logits)
    unsup = F.softplus(-real_l).mean() + F.softplus(fake_l).mean()
    loss = sup + unsupervised_weight * unsup
    n_lab = int(labeled.sum()) if labeled is not None else 0
    return loss, {"d_sup": sup.detach(), "d_unsup": unsup.detach(),
                  "labeled_rows": torch.tensor(float(n_lab))}


#: G's loss in the semi-supervised GAN is feature matching on D's hidden features.
ssgan_g_loss = feature_matching_loss
