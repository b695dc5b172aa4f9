"""Pix2Pix and CycleGAN objectives, the CycleGAN history buffer and Pix2Pix's random jitter.

Pure functions of tensors, plus :class:`ImagePool`, a small stateful helper the CycleGAN family
owns (``state_dict()``-able for exact resume).

Adversarial terms
-----------------
The adversarial part uses the lab's losses (:mod:`gan_lab.losses`, chosen by name with ``loss=``)
on the PatchGAN's logit maps; those losses average over every element, i.e. over samples and
patches, as the original code does. :class:`TranslationAdversarial` adds the two scale factors
that make the lab's losses equal the originals' objectives term for term (which matters,
because λ_L1 = 100 and λ_cycle = 10 are weights *relative to* the adversarial term):

* the originals halve D's objective, ``0.5 * (loss(D(real), 1) + loss(D(fake), 0))`` (Pix2Pix:
  "we divide the objective by 2 while optimizing D"); the lab's ``least_squares`` D loss already
  carries that 1/2, every other lab D loss gets ``d_scale = 0.5``;
* the originals' generator term is ``loss(D(G(x)), 1)``: for ``non_saturating`` that is the lab's
  loss as is; for ``least_squares`` (CycleGAN's default) it is ``MSE(D(G(x)), 1)``, twice the lab's
  ``1/2 E[(D(G(x)) - 1)^2]``, so ``g_scale = 2``. Other losses keep ``g_scale = 1``.

``scale="lab"`` gives the lab's losses unscaled.

Pix2Pix (Isola et al. 2017): ``G: adv_g(D(x, G(x))) + λ_L1 * |y - G(x)|_1`` with λ_L1 = 100,
``D: d_scale * adv_d(D(x, y), D(x, G(x)))``. L1 is the mean absolute error over all elements.

CycleGAN (Zhu et al. 2017), with G_AB: A -> B, G_BA: B -> A, D_A judging domain A and D_B domain B
(the original code names them by the generator they train against: its D_A is our D_B):
``G: adv_g(D_B(G_AB(a))) + adv_g(D_A(G_BA(b)))
+ λ_cycle * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)
+ λ_identity * λ_cycle * (|G_AB(b) - b|_1 + |G_BA(a) - a|_1)``, λ_cycle = 10, λ_identity = 0.5;
``D_A: d_scale * adv_d(D_A(a), D_A(pool_A(G_BA(b))))`` and the same for D_B.

The history buffer (:class:`ImagePool`) and the jitter (:func:`paired_jitter`, :func:`jitter`)
draw all their randomness from a ``torch.Generator``; the family keeps that generator's state
in its checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_lab.errors import UserError
from gan_lab.losses import AdversarialLoss, get_loss

LAMBDA_L1 = 100.0
LAMBDA_CYCLE = 10.0
LAMBDA_IDENTITY = 0.5
POOL_SIZE = 50
SCALES = ("original", "lab")


def _check_weight(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise UserError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------------------
# adversarial terms
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TranslationAdversarial:
    """One of the lab's adversarial losses with the originals' scale (module docstring).

    ``g(real, fake)`` and ``d(real, fake)`` take D's outputs (logit maps) on real and generated
    images; ``g`` needs ``real`` only when ``uses_real`` (relativistic losses), else pass ``None``.
    """

    loss: AdversarialLoss
    g_scale: float = 1.0
    d_scale: float = 1.0

    @property
    def name(self) -> str:
        return self.loss.name

    @property
    def uses_real(self) -> bool:
        """Whether the generator term needs D's output on real images."""
        return self.loss.g_uses_real

    def g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        if real is None:
            if self.uses_real:
                raise ValueError(f"the {self.name} generator loss needs D's outputs on real images")
            real = fake.detach()
        return self.g_scale * self.loss.g_loss(real, fake)

    def d(self, real: Tensor, fake: Tensor) -> Tensor:
        return self.d_scale * self.loss.d_loss(real, fake)


def translation_adversarial(name: str, scale: str = "original") -> TranslationAdversarial:
    """The lab's loss ``name`` (``non_saturating`` for Pix2Pix, ``least_squares`` for CycleGAN)
    scaled as the originals (``scale="original"``) or not (``"lab"``)."""
    loss = get_loss(name)
    if scale not in SCALES:
        raise UserError(f"the translation loss scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if scale == "lab":
        return TranslationAdversarial(loss)
    if loss.name == "least_squares":
        return TranslationAdversarial(loss, g_scale=2.0, d_scale=1.0)
    return TranslationAdversarial(loss, g_scale=1.0, d_scale=0.5)


# ------------------------------------------------------------------------------------------------
# reconstruction terms
# ------------------------------------------------------------------------------------------------
def l1_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference over all elements (``nn.L1Loss``)."""
    if output.shape != target.shape:
        raise ValueError(f"L1 between shapes {tuple(output.shape)} and {tuple(target.shape)}")
    return (output - target).abs().mean()


def cycle_loss(real: Tensor, reconstructed: Tensor) -> Tensor:
    """``|F(G(x)) - x|_1`` (mean): how far the round trip lands from the start."""
    return l1_loss(reconstructed, real)


def identity_loss(real: Tensor, mapped: Tensor) -> Tensor:
    """``|G(y) - y|_1`` (mean) for ``y`` already in G's output domain."""
    return l1_loss(mapped, real)


# ------------------------------------------------------------------------------------------------
# Pix2Pix
# ------------------------------------------------------------------------------------------------
def pix2pix_g_loss(adv: TranslationAdversarial, d_fake: Tensor, fake: Tensor, target: Tensor,
                   d_real: Tensor | None = None, lambda_l1: float = LAMBDA_L1) -> tuple[Tensor, dict[str, Tensor]]:
    """Generator objective ``adv.g(D(x, y), D(x, G(x))) + lambda_l1 * L1(G(x), y)``.

    ``d_fake``: D's logits on ``(input, fake)``; ``d_real`` on ``(input, target)`` (needed only
    for relativistic losses). ``lambda_adv`` is implied 1; with ``lambda_l1 = 0`` it is the cGAN
    alone. Returns the total and the detached parts ``g_adv``, ``g_l1``.
    """
    lambda_l1 = _check_weight(lambda_l1, "lambda_l1")
    adv_term = adv.g(d_real, d_fake)
    l1 = l1_loss(fake, target)
    total = adv_term + lambda_l1 * l1
    return total, {"g_adv": adv_term.detach(), "g_l1": l1.detach()}


def pix2pix_l1_only_loss(fake: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """The paper's "L1 alone" ablation: the generator minimises ``L1(G(x), y)`` only."""
    l1 = l1_loss(fake, target)
    return l1, {"g_l1": l1.detach()}


def translation_d_loss(adv: TranslationAdversarial, d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Discriminator objective ``adv.d(D(real), D(fake))`` (Pix2Pix's D on pairs, or one of
    CycleGAN's two Ds); ``d_fake`` must come from detached fakes. Returns the loss and the mean
    logits ``d_real``, ``d_fake`` for logging."""
    loss = adv.d(d_real, d_fake)
    return loss, {"d_loss": loss.detach(), "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}


# ------------------------------------------------------------------------------------------------
# CycleGAN
# ------------------------------------------------------------------------------------------------
def cyclegan_g_loss(adv: TranslationAdversarial, *, real_a: Tensor, real_b: Tensor, rec_a: Tensor, rec_b: Tensor,
                    d_b_fake: Tensor, d_a_fake: Tensor, same_a: Tensor | None = None, same_b: Tensor | None = None,
                    d_b_real: Tensor | None = None, d_a_real: Tensor | None = None,
                    lambda_cycle: float = LAMBDA_CYCLE, lambda_identity: float = LAMBDA_IDENTITY,
                    ) -> tuple[Tensor, dict[str, Tensor]]:
    """Both generators' objective (one optimizer step updates G_AB and G_BA together).

    Args:
        real_a, real_b: the batch of each domain.
        rec_a: ``G_BA(G_AB(real_a))``; rec_b: ``G_AB(G_BA(real_b))``.
        d_b_fake: ``D_B(G_AB(real_a))``; d_a_fake: ``D_A(G_BA(real_b))`` (not from the pool).
        same_a: ``G_BA(real_a)``; same_b: ``G_AB(real_b)`` (the identity mappings; needed only
            when ``lambda_identity > 0``).
        d_b_real, d_a_real: D's outputs on real images, for relativistic losses only.
        lambda_cycle: weight of both cycle terms (10); 0 turns them off.
        lambda_identity: identity weight as a fraction of ``lambda_cycle`` (0.5); 0 turns it off.

    Returns the total and detached parts ``g_adv_ab``, ``g_adv_ba``, ``cycle_a``, ``cycle_b``,
    ``idt_a``, ``idt_b`` (the raw L1 means, unweighted).
    """
    lambda_cycle = _check_weight(lambda_cycle, "lambda_cycle")
    lambda_identity = _check_weight(lambda_identity, "lambda_identity")
    adv_ab = adv.g(d_b_real, d_b_fake)
    adv_ba = adv.g(d_a_real, d_a_fake)
    cyc_a, cyc_b = cycle_loss(real_a, rec_a), cycle_loss(real_b, rec_b)
    total = adv_ab + adv_ba + lambda_cycle * (cyc_a + cyc_b)
    logs = {"g_adv_ab": adv_ab.detach(), "g_adv_ba": adv_ba.detach(), "cycle_a": cyc_a.detach(),
            "cycle_b": cyc_b.detach()}
    if lambda_identity > 0 and lambda_cycle > 0:
        if same_a is None or same_b is None:
            raise ValueError("lambda_identity > 0 needs same_a = G_BA(real_a) and same_b = G_AB(real_b)")
        idt_a, idt_b = identity_loss(real_a, same_a), identity_loss(real_b, same_b)
        total = total + lambda_identity * lambda_cycle * (idt_a + idt_b)
        logs.update(idt_a=idt_a.detach(), idt_b=idt_b.detach())
    return total, logs


# ------------------------------------------------------------------------------------------------
# the history buffer
# ------------------------------------------------------------------------------------------------
class ImagePool:
    """CycleGAN's buffer of previously generated images (Shrivastava et al. 2017), from which the
    discriminators are updated.

    ``query(images)`` goes through the batch in order. While fewer than ``size`` images are
    stored, each image is stored and returned as is. Once full, each image is, with probability
    1/2, swapped for a uniformly chosen stored one (the stored one is returned, the new one takes
    its slot), and otherwise returned as is. ``size = 0`` returns the batch untouched.

    Randomness: per image of a full pool, one ``torch.rand`` (swap when < 0.5) and, when
    swapping, one ``torch.randint(size)``, both from ``generator`` (a CPU ``torch.Generator``,
    seeded with ``seed`` unless one is passed). Stored images are detached copies kept on the
    device of the images. :meth:`state_dict` holds the stored images and the generator state, so
    a restored pool returns exactly what the original would have.
    """

    def __init__(self, size: int = POOL_SIZE, generator: torch.Generator | None = None, seed: int = 0) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise UserError(f"the image pool size must be an integer >= 0, got {size!r}")
        self.size = size
        if generator is None:
            generator = torch.Generator().manual_seed(seed)
        elif generator.device.type != "cpu":
            raise ValueError("ImagePool takes a CPU torch.Generator")
        self.generator = generator
        self.images: Tensor | None = None  # (size, C, H, W) once the first batch came
        self.count = 0

    def __len__(self) -> int:
        return self.count

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """The batch D is trained on in place of ``images`` (same shape, detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
        elif self.images.shape[1:] != images.shape[1:]:
            raise ValueError(f"pool holds {tuple(self.images.shape[1:])} images, got {tuple(images.shape[1:])}")
        if self.images.device != images.device or self.images.dtype != images.dtype:
            self.images = self.images.to(device=images.device, dtype=images.dtype)
        out = images.clone()
        for i in range(images.shape[0]):
            if self.count < self.size:
                self.images[self.count] = images[i]
                self.count += 1
                continue
            if torch.rand((), generator=self.generator).item() < 0.5:
                slot = int(torch.randint(self.size, (), generator=self.generator))
                out[i] = self.images[slot]
                self.images[slot] = images[i]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "count": self.count,
            "images": None if self.images is None else self.images[: self.count].detach().clone(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["size"]) != self.size:
            raise UserError(f"the checkpoint's image pool holds {state['size']} images, this run's {self.size}")
        self.count = int(state["count"])
        stored = state["images"]
        if stored is None:
            self.images = None
        else:
            self.images = stored.new_empty((self.size, *stored.shape[1:]))
            self.images[: self.count] = stored
        self.generator.set_state(state["generator"])


# ------------------------------------------------------------------------------------------------
# random jitter
# ------------------------------------------------------------------------------------------------
def _check_jitter(load_size: int, crop_size: int) -> None:
    for name, value in (("load_size", load_size), ("crop_size", crop_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")
    if crop_size > load_size:
        raise UserError(f"crop_size ({crop_size}) must not exceed load_size ({load_size})")


def _resize(x: Tensor, size: int) -> Tensor:
    if tuple(x.shape[-2:]) == (size, size):
        return x
    shrink = size < x.shape[-1] or size < x.shape[-2]
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=shrink).clamp(-1.0, 1.0)


def jitter_params(batch_size: int, load_size: int, crop_size: int, flip: bool,
                  generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample crop offsets ``top``, ``left`` (uniform in ``0..load_size - crop_size``) and
    ``flips`` (bool, each with probability 1/2 when ``flip``), drawn from ``generator`` in that
    order: ``randint`` for tops, ``randint`` for lefts, ``rand`` for flips (only when ``flip``)."""
    _check_jitter(load_size, crop_size)
    span = load_size - crop_size + 1
    top = torch.randint(span, (batch_size,), generator=generator)
    left = torch.randint(span, (batch_size,), generator=generator)
    flips = torch.rand(batch_size, generator=generator) < 0.5 if flip else torch.zeros(batch_size, dtype=torch.bool)
    return top, left, flips


def apply_jitter(x: Tensor, load_size: int, crop_size: int, top: Tensor, left: Tensor, flips: Tensor) -> Tensor:
    """Resize ``x`` ``(B, C, H, W)`` to ``load_size`` square (bicubic, as the original's PIL
    resize; antialiased when shrinking; clamped to [-1, 1]), crop ``crop_size`` at the given
    offsets and mirror the flagged samples left-right."""
    x = _resize(x, load_size)
    if load_size == crop_size and not bool(flips.any()):
        return x
    rows = []
    for i in range(x.shape[0]):
        t, l = int(top[i]), int(left[i])
        patch = x[i, :, t : t + crop_size, l : l + crop_size]
        rows.append(patch.flip(-1) if bool(flips[i]) else patch)
    return torch.stack(rows)


def paired_jitter(x: Tensor, target: Tensor, generator: torch.Generator, load_size: int, crop_size: int,
                  flip: bool = True) -> tuple[Tensor, Tensor]:
    """Pix2Pix's random jitter on a batch of pairs: resize both sides to ``load_size``, crop the
    same random ``crop_size`` window of both, and mirror both with probability 1/2 (``flip``).

    ``x`` and ``target`` are ``(B, C, H, W)`` / ``(B, C', H, W)`` in [-1, 1]; the draws come from
    ``generator`` (:func:`jitter_params`) and are the same for both sides. The paper: 286 -> 256.
    """
    if x.shape[0] != target.shape[0] or x.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"pair sides differ: {tuple(x.shape)} vs {tuple(target.shape)}")
    top, left, flips = jitter_params(x.shape[0], load_size, crop_size, flip, generator)
    return (apply_jitter(x, load_size, crop_size, top, left, flips),
            apply_jitter(target, load_size, crop_size, top, left, flips))


def jitter(x: Tensor, generator: torch.Generator, load_size: int, crop_size: int, flip: bool = True) -> Tensor:
    """The same jitter on one side alone (CycleGAN jitters its two domains independently)."""
    top, left, flips = jitter_params(x.shape[0], load_size, crop_size, flip, generator)
    return apply_jitter(x, load_size, crop_size, top, left, flips)


__all__ = [
    "ImagePool",
    "LAMBDA_CYCLE",
    "LAMBDA_IDENTITY",
    "LAMBDA_L1",
    "POOL_SIZE",
    "TranslationAdversarial",
    "apply_jitter",
    "cycle_loss",
    "cyclegan_g_loss",
    "identity_loss",
    "jitter",
    "jitter_params",
    "l1_loss",
    "paired_jitter",
    "pix2pix_g_loss",
    "pix2pix_l1_only_loss",
    "translation_adversarial",
    "translation_d_loss",
]
