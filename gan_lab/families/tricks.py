"""The Improved-Techniques switches (Salimans et al. 2016) of every G-vs-D model: ``model.tricks.<name>``.

One small object, :class:`Tricks`, used by :class:`~gan_lab.families.adversarial.AdversarialGAN`
and the conditional family alike. Each trick is off by default; with every trick off nothing
here touches the networks, the losses or the random streams, so a run is bit-identical to one
without this module.

========================== ================================================== ==================================
trick                      what it does                                       applies to
========================== ================================================== ==================================
feature_matching           G's loss becomes ``||mean f(x) - mean f(G(z))||^2``  every variant (built into ssgan)
                           over D's hidden layer ``layer`` (plus
                           ``adversarial_weight`` x the usual G loss)
minibatch_discrimination   a minibatch-discrimination layer (``kernels`` x      variants without a gradient
                           ``kernel_dim``) right before D's head                penalty (not wgan_gp/lp/div, r1)
historical_averaging       ``weight * ||theta - mean of past theta||^2`` added  every variant
                           to each network's loss
one_sided_label_smoothing  real targets ``alpha`` (fakes stay 0) in D's         the cross-entropy losses:
                           cross-entropy                                        non_saturating, minimax
virtual_batch_norm         G's batch norms normalised with a reference batch    generators with batch norm
                           fixed at the start (``reference_size`` latents)
========================== ================================================== ==================================

A trick that does not apply to the chosen model is a one-line :class:`~gan_lab.errors.UserError`
at construction, before any training.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Any, Callable

import torch
from torch import Tensor, nn

from gan_lab.errors import UserError

TRICKS = ("feature_matching", "minibatch_discrimination", "historical_averaging", "one_sided_label_smoothing",
          "virtual_batch_norm")

# The settings of each trick and their defaults (conf/base/tricks.yaml documents the same values).
DEFAULTS: dict[str, dict[str, Any]] = {
    "feature_matching": {"layer": -1, "adversarial_weight": 0.0},
    "minibatch_discrimination": {"kernels": 100, "kernel_dim": 5},
    "historical_averaging": {"weight": 1.0e-4},
    "one_sided_label_smoothing": {"alpha": 0.9},
    "virtual_batch_norm": {"reference_size": 64, "seed": 0},
}

APPLIES = {
    "feature_matching": "every G-vs-D model",
    "minibatch_discrimination": "models without a gradient penalty",
    "historical_averaging": "every G-vs-D model",
    "one_sided_label_smoothing": "the cross-entropy losses (non_saturating, minimax)",
    "virtual_batch_norm": "generators with batch norm",
}


def _parse_one(name: str, value: Any) -> dict[str, Any] | None:
    """``False``/``None``: off; ``True``: on with the defaults; a mapping: on when its ``enabled``
    is true, with its settings."""
    if value is None or value is False:
        return None
    if value is True:
        return dict(DEFAULTS[name])
    if not isinstance(value, dict):
        raise UserError(f"model.tricks.{name} must be true, false or a mapping of its settings, got {value!r}")
    settings = dict(value)
    enabled = settings.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise UserError(f"model.tricks.{name}.enabled must be true or false, got {enabled!r}")
    unknown = sorted(set(settings) - set(DEFAULTS[name]))
    if unknown:
        raise UserError(f"unknown setting model.tricks.{name}.{unknown[0]}; it takes: enabled, "
                        f"{', '.join(DEFAULTS[name])}")
    return {**DEFAULTS[name], **settings} if enabled else None


def _number(value: Any, key: str, minimum: float | None = None, positive: bool = False) -> float:
    from gan_lab import checks

    return checks.number(value, key, positive=positive, minimum=minimum)


def _integer(value: Any, key: str, minimum: int) -> int:
    from gan_lab import checks

    return checks.integer(value, key, minimum=minimum)


# ------------------------------------------------------------------ D's hidden layers


def hidden_layers(discriminator: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are D's hidden features, in forward order: the trunk stages of
    the conditional discriminators, the residual blocks of the ResNet/BigGAN/projection ones, the
    activations of the MLP and DCGAN ones."""
    trunk = getattr(discriminator, "trunk", None)
    if trunk is not None and hasattr(trunk, "stages"):
        return list(trunk.stages)
    blocks = getattr(discriminator, "blocks", None)
    if isinstance(blocks, (nn.ModuleList, nn.Sequential)):
        return list(blocks)
    features = getattr(discriminator, "features", None)
    if isinstance(features, nn.Sequential):
        acts = [m for m in features if isinstance(m, (nn.LeakyReLU, nn.ReLU))]
        if acts:
            return acts
    raise UserError(f"model.tricks.feature_matching: cannot find the hidden layers of {type(discriminator).__name__}")


@contextmanager
def capture_output(module: nn.Module):
    """``with capture_output(layer) as out: net(x)`` leaves ``layer``'s output in ``out["x"]``."""
    out: dict[str, Tensor] = {}

    def hook(_module, _inputs, output):
        out["x"] = output

    handle = module.register_forward_hook(hook)
    try:
        yield out
    finally:
        handle.remove()


# ------------------------------------------------------------------ minibatch discrimination


class MinibatchHead(nn.Module):
    """D's head preceded by a minibatch-discrimination layer: ``head([h, o(h)], y)``."""

    def __init__(self, layer: nn.Module, head: nn.Module):
        super().__init__()
        self.minibatch = layer
        self.head = head

    def forward(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        return self.head(self.minibatch(h), y)


def attach_minibatch_discrimination(discriminator: nn.Module, kernels: int, kernel_dim: int) -> nn.Module:
    """Put a :class:`~gan_lab.networks.improved.MinibatchDiscrimination` layer right before D's
    head (a :class:`~gan_lab.networks.layers.ProjectionHead`, rebuilt for the wider input with the
    same normalisation). Discriminators built with the layer (the conditional ones) are returned
    as they are."""
    from gan_lab.networks.improved import MinibatchDiscrimination
    from gan_lab.networks.layers import ProjectionHead

    if getattr(discriminator, "minibatch", None) is not None:
        return discriminator
    head = getattr(discriminator, "head", None)
    if not isinstance(head, ProjectionHead):
        raise UserError(f"model.tricks.minibatch_discrimination: {type(discriminator).__name__} has no head "
                        "to put the layer before")
    features = head.linear.in_features
    layer = MinibatchDiscrimination(features, kernels, kernel_dim)
    spectral = hasattr(head.linear, "parametrizations")
    num_classes = 0 if head.embed is None else head.embed.num_embeddings
    new = ProjectionHead(layer.out_features, num_classes, "spectral" if spectral else "none")
    discriminator.head = MinibatchHead(layer, new)
    return discriminator


# ------------------------------------------------------------------ the switches


class Tricks:
    """The parsed ``model.tricks`` of one model, and what each trick changes.

    Args:
        cfg: ``{name: false | true | {enabled: ..., <settings>}}`` (missing names are off).
        model: the model's name, for messages.
    """

    def __init__(self, cfg: dict | None, model: str):
        if cfg is not None and not isinstance(cfg, dict):
            raise UserError(f"model.tricks must be a mapping of {', '.join(TRICKS)}, got {cfg!r}")
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(TRICKS))
        if unknown:
            raise UserError(f"unknown trick model.tricks.{unknown[0]}; the tricks are: {', '.join(TRICKS)}")
        self.model = model
        self.settings: dict[str, dict[str, Any]] = {}
        for name in TRICKS:
            parsed = _parse_one(name, cfg.get(name))
            if parsed is not None:
                self.settings[name] = parsed
        self._check_values()
        self.fm_layer: nn.Module | None = None  # a plain attribute: not registered as a submodule
        self.history: dict[str, Any] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.settings

    def __bool__(self) -> bool:
        return bool(self.settings)

    def on(self) -> list[str]:
        return list(self.settings)

    def _check_values(self) -> None:
        s = self.settings
        if "feature_matching" in s:
            fm = s["feature_matching"]
            if isinstance(fm["layer"], bool) or not isinstance(fm["layer"], int):
                raise UserError(f"model.tricks.feature_matching.layer must be an integer (-1: D's last hidden "
                                f"layer), got {fm['layer']!r}")
            fm["adversarial_weight"] = _number(fm["adversarial_weight"],
                                               "model.tricks.feature_matching.adversarial_weight", minimum=0)
        if "minibatch_discrimination" in s:
            mb = s["minibatch_discrimination"]
            mb["kernels"] = _integer(mb["kernels"], "model.tricks.minibatch_discrimination.kernels", 1)
            mb["kernel_dim"] = _integer(mb["kernel_dim"], "model.tricks.minibatch_discrimination.kernel_dim", 1)
        if "historical_averaging" in s:
            s["historical_averaging"]["weight"] = _number(s["historical_averaging"]["weight"],
                                                          "model.tricks.historical_averaging.weight", minimum=0)
        if "virtual_batch_norm" in s:
            vbn = s["virtual_batch_norm"]
            vbn["reference_size"] = _integer(vbn["reference_size"], "model.tricks.virtual_batch_norm.reference_size", 2)
            vbn["seed"] = _integer(vbn["seed"], "model.tricks.virtual_batch_norm.seed", 0)

    # -------------------------------------------------------------- what applies where

    def check_applies(self, loss_name: str, penalty_name: str | None, refused: dict[str, str] | None = None) -> None:
        """One line for a trick that does not apply: label smoothing with a loss that is not a
        cross-entropy, minibatch discrimination with a gradient penalty, and the family's own
        ``refused`` tricks (name -> why)."""
        for name, why in (refused or {}).items():
            if name in self.settings:
                raise UserError(f"model.tricks.{name} does not apply to model={self.model}: {why}")
        if "one_sided_label_smoothing" in self.settings:
            from gan_lab.losses.conditional import SMOOTHABLE_LOSSES

            alpha = self.settings["one_sided_label_smoothing"]["alpha"]
            if loss_name not in SMOOTHABLE_LOSSES:
                raise UserError(
                    f"model.tricks.one_sided_label_smoothing applies to the cross-entropy losses "
                    f"({', '.join(SMOOTHABLE_LOSSES)}), not to loss={loss_name} of model={self.model}")
            if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.5 < alpha <= 1:
                raise UserError(f"model.tricks.one_sided_label_smoothing.alpha must be in (0.5, 1] (e.g. 0.9), "
                                f"got {alpha!r}")
        if "minibatch_discrimination" in self.settings and penalty_name:
            raise UserError(
                f"model.tricks.minibatch_discrimination makes D's output depend on the whole batch, which the "
                f"per-sample gradient penalty model.penalty.name={penalty_name} of model={self.model} assumes it "
                f"does not; turn one of them off")

    # -------------------------------------------------------------- networks

    def apply(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int,
              reference_labels: Callable[[int], Tensor | None]) -> tuple[nn.Module, nn.Module]:
        """The networks with the tricks that change them: minibatch discrimination in D, virtual
        batch norm in G (its reference batch drawn from its own seeded generator, never from the
        training streams), and the feature-matching layer picked. Off: the same networks."""
        if "minibatch_discrimination" in self.settings:
            mb = self.settings["minibatch_discrimination"]
            discriminator = attach_minibatch_discrimination(discriminator, mb["kernels"], mb["kernel_dim"])
        if "virtual_batch_norm" in self.settings:
            from gan_lab.networks.improved import VirtualBatchNormGenerator

            vbn = self.settings["virtual_batch_norm"]
            gen = torch.Generator().manual_seed(vbn["seed"])
            ref_z = torch.randn(vbn["reference_size"], latent_dim, generator=gen)
            try:
                generator = VirtualBatchNormGenerator(generator, ref_z, reference_labels(vbn["reference_size"]))
            except UserError as err:
                # the 2-D defaults (conf/data_model) drop batch norm from the MLP generator
                raise UserError(f"model.tricks.virtual_batch_norm does not apply to model={self.model}: "
                                f"{err} (the MLP generator has it with model.net.mlp.g_batch_norm=true)") from None
        if "feature_matching" in self.settings:
            layers = hidden_layers(discriminator)
            index = self.settings["feature_matching"]["layer"]
            if not -len(layers) <= index < len(layers):
                raise UserError(f"model.tricks.feature_matching.layer must be in [{-len(layers)}, {len(layers) - 1}]: "
                                f"the discriminator of model={self.model} has {len(layers)} hidden layers; got {index}")
            self.fm_layer = layers[index]
        return generator, discriminator

    # -------------------------------------------------------------- losses

    def d_adversarial_loss(self, loss) -> Callable[[Tensor, Tensor], Tensor]:
        """D's adversarial loss: ``loss.d_loss``, or its one-sided smoothed form."""
        if "one_sided_label_smoothing" in self.settings:
            from gan_lab.losses.conditional import smoothed_d_loss

            return partial(smoothed_d_loss, alpha=float(self.settings["one_sided_label_smoothing"]["alpha"]))
        return loss.d_loss

    @property
    def feature_matching(self) -> dict | None:
        return self.settings.get("feature_matching")

    def start_history(self, nets: dict[str, nn.Module]) -> None:
        """Historical averages of ``nets`` (name -> network), when the trick is on."""
        if "historical_averaging" in self.settings:
            from gan_lab.losses.conditional import HistoricalAverage

            weight = self.settings["historical_averaging"]["weight"]
            self.history = {name: HistoricalAverage(weight) for name in nets}

    def history_penalty(self, name: str, net: nn.Module, logs: dict) -> Tensor | None:
        """``weight * ||theta - mean||^2`` of network ``name`` (None when the trick is off)."""
        average = self.history.get(name)
        if average is None:
            return None
        penalty = average.penalty(net)
        logs[f"hist_avg_{name[0]}"] = penalty.detach()  # hist_avg_g, hist_avg_d
        return penalty

    def record_history(self, name: str, net: nn.Module) -> None:
        average = self.history.get(name)
        if average is not None:
            average.update(net)

    def state_dict(self) -> dict:
        return {"historical_average": {k: v.state_dict() for k, v in self.history.items()}} if self.history else {}

    def load_state_dict(self, state: dict, device) -> None:
        for name, saved in (state.get("historical_average") or {}).items():
            if name in self.history:
                self.history[name].load_state_dict(saved, device=device)
