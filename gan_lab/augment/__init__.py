"""Augmentation of the discriminator's inputs for small data sets (``augment=<name>``, a config
group: ``gan_lab/conf/augment/``).

* ``none`` (default): D sees the images as they are.
* ``diffaugment``: :class:`~gan_lab.augment.diffaugment.DiffAugment`, a fixed differentiable
  policy (colour, translation, cutout) on real and fake images, in D's and G's updates.
* ``ada``: :class:`~gan_lab.augment.ada.AdaptiveAugment`, the StyleGAN2-ADA pipeline whose
  probability ``p`` follows the sign of D's outputs on real images (target 0.6).

The engine builds the augmenter from the run's ``augment`` config (:class:`LabModule`
``.augmenter``); a family whose discriminator can take augmented images says so
(``augmentable = True``) and passes D's inputs through :meth:`LabModule.augment_images` and D's
real logits to :meth:`LabModule.observe_real_logits`. Only image data can be augmented.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gan_lab import checks
from gan_lab.errors import UserError

AUGMENTS = ("none", "diffaugment", "ada")


def check_ada_loss(augmenter, loss: str) -> None:
    """ADA reads sign(D(real)) as "D thinks it is real": true of logit and hinge discriminators, not
    of a Wasserstein critic (any shift of it is the same critic) nor of a relativistic one (only
    differences of its outputs mean something). One line for those."""
    if getattr(augmenter, "adaptive", False) and (loss == "wasserstein" or loss.startswith("ragan")):
        raise UserError(f"augment=ada adjusts p from the sign of D's output on real images, which loss={loss} does "
                        "not give meaning to; use augment=diffaugment")


def build_augment(cfg: dict[str, Any] | None, info, model: str, augmentable: bool) -> nn.Module | None:
    """The augmenter of ``cfg`` (``{name: ..., settings}``) for a model on data ``info``, or None;
    one-line errors for data that are not images and models that cannot take it."""
    cfg = dict(checks.mapping(cfg, "augment"))
    name = cfg.pop("name", "none")
    if name in (None, "none"):
        return None
    checks.choice(name, "augment", AUGMENTS)
    if info.modality != "image":
        raise UserError(f"augment={name} transforms images; data {info.name} is {info.modality} data "
                        f"(leave augment=none)")
    if not augmentable:
        raise UserError(f"model={model} does not take augment={name} (it applies to the image GANs: the adversarial, "
                        "conditional, stylegan and translation models)")
    if name == "diffaugment":
        from gan_lab.augment.diffaugment import POLICIES, DiffAugment

        policy = cfg.get("policy", list(POLICIES))
        if isinstance(policy, str):
            policy = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = [p for p in policy if p not in POLICIES]
        if unknown or not policy:
            raise UserError(f"augment.policy takes a list of {', '.join(POLICIES)}, got {policy!r}")
        return DiffAugment(policy, checks.number(cfg.get("translation_ratio", 0.125), "augment.translation_ratio",
                                                 minimum=0),
                           checks.number(cfg.get("cutout_ratio", 0.5), "augment.cutout_ratio", minimum=0))
    from gan_lab.augment.ada import AdaptiveAugment

    target = cfg.pop("target", 0.6)
    if target is not None:
        target = checks.number(target, "augment.target", minimum=-1)
        if target >= 1:
            raise UserError(f"augment.target must be below 1 (sign(D(real)) averages to at most 1), got {target}")
    initial_p = checks.number(cfg.pop("initial_p", 0.0), "augment.initial_p", minimum=0)
    if initial_p > 1:
        raise UserError(f"augment.initial_p is a probability in [0, 1], got {initial_p}")
    settings = {
        "interval": checks.integer(cfg.pop("interval", 4), "augment.interval", minimum=1),
        "speed_kimg": checks.number(cfg.pop("speed_kimg", 500), "augment.speed_kimg", positive=True),
    }
    strengths = ("xint_max", "scale_std", "rotate_max", "aniso_std", "xfrac_std", "brightness_std", "contrast_std",
                 "hue_max", "saturation_std")
    unknown = sorted(set(cfg) - set(strengths))
    if unknown:
        raise UserError(f"unknown setting augment.{unknown[0]}; ada takes target, initial_p, interval, speed_kimg, "
                        f"{', '.join(strengths)}")
    settings.update({k: checks.number(cfg[k], f"augment.{k}", minimum=0) for k in strengths if k in cfg})
    return AdaptiveAugment(target=target, initial_p=initial_p, **settings)
