"""The adversarial family: one generator against one discriminator (today's nine variants).

GAN, DCGAN, LSGAN, WGAN, WGAN-GP, WGAN-div, WGAN-LP, RaGAN and SNGAN are configs of
:class:`AdversarialGAN` (``conf/model/<name>.yaml``): a loss from :mod:`gan_lab.losses`, a
network architecture, ``n_critic``, optimizers, an optional penalty, weight clipping, EMA and
PacGAN packing. Declared to the engine as

* networks ``generator``, ``discriminator``; optimizer groups ``g`` and ``d``;
* update ``d`` every batch, then update ``g`` after every ``n_critic``-th ``d`` (a step);
* an EMA copy of the generator when ``ema`` is set (sampling uses it).

The Improved-Techniques switches (``model.tricks.*``: feature matching, minibatch
discrimination, historical averaging, one-sided label smoothing, virtual batch norm) apply to
every variant through :class:`gan_lab.families.tricks.Tricks`; with all of them off (the
default) a run is exactly what it was without them.

Subclasses (conditional models) override the small hooks :meth:`build_networks`,
:meth:`generator_inputs`, :meth:`discriminate` and the two loss methods rather than the loop.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gan_lab import checks
from gan_lab.augment import check_ada_loss
from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.engine import EMASpec, LabModule, OptimGroup, RunOptions, Update
from gan_lab.errors import UserError
from gan_lab.families.tricks import Tricks, capture_output
from gan_lab.losses import get_loss, get_penalty
from gan_lab.losses.adversarial import top_k_fraction, top_k_outputs
from gan_lab.losses.conditional import check_truncation, truncated_normal
from gan_lab.networks import select_arch

DEFAULT_OPTIMIZER = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}


def build_pair(net: dict, info: DataInfo, latent_dim: int, **kwargs) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(G, D)`` from a ``model.net`` config: ``arch`` picks one of the per-architecture
    builders (instantiated partials of :mod:`gan_lab.networks`)."""
    net = dict(net or {})
    arch = net.pop("arch", "auto")
    net.pop("d_norm", None)  # shared default, already interpolated into each architecture
    builders = {k: v for k, v in net.items() if callable(v)}
    return builders[select_arch(arch, info, builders)](info, latent_dim, **kwargs)


TOP_K_DEFAULTS = {"decay": 0.99, "min_fraction": 0.5, "every": None}


def parse_top_k(value: Any) -> dict | None:
    """``model.top_k``: null/false off; true the paper's schedule; a mapping with ``enabled`` and
    the settings of :data:`TOP_K_DEFAULTS` (unknown keys are a one-line error)."""
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    settings = dict(checks.mapping(value, "model.top_k"))
    enabled = settings.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise UserError(f"model.top_k.enabled must be true or false, got {enabled!r}")
    unknown = sorted(set(settings) - set(TOP_K_DEFAULTS))
    if unknown:
        raise UserError(f"unknown setting model.top_k.{unknown[0]}; it takes: enabled, {', '.join(TOP_K_DEFAULTS)}")
    if not enabled:
        return None
    s = {**TOP_K_DEFAULTS, **settings}
    s["decay"] = checks.number(s["decay"], "model.top_k.decay", positive=True)
    if s["decay"] > 1:
        raise UserError(f"model.top_k.decay must be in (0, 1], got {s['decay']}")
    s["min_fraction"] = checks.number(s["min_fraction"], "model.top_k.min_fraction", positive=True)
    if s["min_fraction"] > 1:
        raise UserError(f"model.top_k.min_fraction must be in (0, 1], got {s['min_fraction']}")
    if s["every"] is not None:
        s["every"] = checks.number(s["every"], "model.top_k.every", positive=True)
    return s


class AdversarialGAN(LabModule):
    family = "adversarial"
    augmentable = True  # augment=diffaugment|ada: D's inputs (real, fake, penalty points) go through it
    conditional = False
    """Whether samples carry the labels they were generated for (class-conditional metrics need them)."""
    has_classifier = False
    """Whether the model has a classifier of real data (``classify``), which ``test_acc`` scores."""
    sample_options = ("truncation",)
    """``truncation=psi``: latent entries beyond ``±psi`` redrawn (the truncation trick, BigGAN), which
    trades variety for fidelity in any generator of a normal latent."""

    def __init__(
        self,
        name: str,
        data_info: DataInfo,
        run: RunOptions | None = None,
        loss: str = "non_saturating",
        net: dict | None = None,
        latent_dim: int = 100,
        n_critic: int = 1,
        g_optimizer: dict | None = None,
        d_optimizer: dict | None = None,
        lr_schedule: str = "constant",
        lr_warmup: int = 0,
        lr_schedule_steps: int | None = None,
        clip_value: float | None = None,
        clip_biases: bool = True,
        penalty: dict | None = None,
        ema: dict | None = None,
        pack: int = 1,
        sample_mode: str = "eval",
        tricks: dict | None = None,
        top_k: dict | None = None,
    ):
        super().__init__(name, data_info, run)
        self.loss = get_loss(loss)
        check_ada_loss(self.augmenter, self.loss.name)
        self.latent_dim = checks.integer(latent_dim, "model.latent_dim", minimum=1)
        self.n_critic = checks.integer(n_critic, "model.n_critic", minimum=1)
        self.pack = checks.integer(pack, "model.pack", minimum=1)
        self.clip_value = checks.optional_number(clip_value, "model.clip_value", positive=True)
        self.clip_biases = checks.boolean(clip_biases, "model.clip_biases")
        penalty = checks.mapping(penalty, "model.penalty")
        self.penalty_name = penalty.pop("name", None)
        self.penalty_fn = get_penalty(self.penalty_name)
        self.penalty_weight = checks.number(penalty.pop("weight", 10.0), "model.penalty.weight", minimum=0)
        self.penalty_kwargs = penalty
        self.sample_mode = checks.choice(sample_mode, "model.sample_mode", ("eval", "train"))
        self.tricks = Tricks(checks.mapping(tricks, "model.tricks"), name)
        self.top_k = parse_top_k(top_k)
        if self.top_k and self.tricks.feature_matching is not None and not self.tricks.feature_matching["adversarial_weight"]:
            raise UserError("model.top_k selects fakes for the adversarial G loss, which feature matching with "
                            "adversarial_weight 0 does not use; set model.tricks.feature_matching.adversarial_weight "
                            "or leave model.top_k off")
        self.tricks.check_applies(self.loss.name, self.penalty_fn and self.penalty_name, self.refused_tricks())
        self.check_metrics()
        generator, discriminator = self.build_networks(net)
        generator, discriminator = self.tricks.apply(generator, discriminator, self.latent_dim, self.reference_labels)
        self.add_net("generator", generator)
        self.add_net("discriminator", discriminator)
        self.tricks.start_history(self.nets)
        self.d_adv_loss = self.tricks.d_adversarial_loss(self.loss)
        g_opt = dict(checks.mapping(g_optimizer, "model.g_optimizer") or DEFAULT_OPTIMIZER)
        d_opt = dict(checks.mapping(d_optimizer, "model.d_optimizer") or g_opt)
        ema = checks.mapping(ema, "model.ema")
        ema_specs = []
        if ema.get("decay"):
            rampup = checks.choice(ema.get("rampup", "tf") or "none", "model.ema.rampup", ("tf", "none"))
            ema_specs.append(EMASpec("generator", checks.number(ema["decay"], "model.ema.decay", positive=True),
                                     checks.integer(ema.get("start", 0), "model.ema.start", minimum=0),
                                     rampup=None if rampup == "none" else rampup))
        self.declare(
            groups=[OptimGroup("g", ("generator",), g_opt), OptimGroup("d", ("discriminator",), d_opt)],
            updates=[
                Update("d", "d", "discriminator_loss", after=self._after("d")),
                Update("g", "g", "generator_loss", every=self.n_critic, step=True, after=self._after("g")),
            ],
            ema=ema_specs,
            schedule=lr_schedule,
            warmup=checks.integer(lr_warmup, "model.lr_warmup", minimum=0),
            schedule_steps=lr_schedule_steps,
        )

    # ------------------------------------------------------------------ construction hooks

    def build_networks(self, net: dict | None):
        return build_pair(net, self.data_info, self.latent_dim, pack=self.pack)

    def refused_tricks(self) -> dict[str, str]:
        """Tricks this model cannot take (name -> why); the conditional family refuses some."""
        return {}

    def reference_labels(self, n: int) -> Tensor | None:
        """The labels of virtual batch norm's reference batch (conditional generators only)."""
        return None

    def check_metrics(self) -> None:
        """Metrics chosen for training that this model cannot feed (class-conditional metrics for
        an unconditional model, a classifier's accuracy without a classifier): one line now,
        not at the first evaluation."""
        from gan_lab.metrics.conditional import check_model_metrics

        check_model_metrics(self, (self.lab_meta.get("config") or {}).get("metrics"))

    def _after(self, update: str) -> str | None:
        """The method run after each step of ``update``: WGAN's clipping, historical averages."""
        if "historical_averaging" in self.tricks:
            return f"after_{update}_step"
        if update == "d" and self.clip_value:
            return "clip_weights"
        return None

    @property
    def generator(self) -> torch.nn.Module:
        return self.nets["generator"]

    @property
    def discriminator(self) -> torch.nn.Module:
        return self.nets["discriminator"]

    # ------------------------------------------------------------------ hooks for subclasses

    def sample_latent(self, n: int, generator: torch.Generator | None = None,
                      truncation: float | None = None) -> Tensor:
        if truncation is not None:
            return truncated_normal((n, self.latent_dim), truncation, generator, device=self.device)
        if generator is None:
            return torch.randn(n, self.latent_dim, device=self.device)
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def generator_inputs(self, n: int, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """(z, y) for a fake batch of the training step. Unconditional models ignore labels."""
        return self.sample_latent(n), None

    def discriminate(self, x: Tensor, y: Tensor | None = None, penalty: bool = False) -> Tensor:
        """D's output per packed group of ``pack`` samples (PacGAN). ``penalty=True`` for the
        gradient-penalty path, which needs double backward (never compiled). With ``augment=``
        every image is augmented first (differentiably, so penalties see D of the augmented point)."""
        x = self.augment_images(x)
        if self.pack > 1:
            x = x.reshape(x.shape[0] // self.pack, self.pack * x.shape[1], *x.shape[2:])
            y = None  # packed groups have no single label
        return self.fwd("discriminator", compiled=not penalty)(x, y)

    def prepare_batch(self, batch: Batch) -> Batch:
        if self.pack > 1 and len(batch) % self.pack:
            raise UserError(f"data.batch_size={len(batch)} is not divisible by model.pack={self.pack}")
        return super().prepare_batch(batch)

    # ------------------------------------------------------------------ the two updates

    def discriminator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        real, y_real = batch.x, batch.y
        # G runs without a graph: only D's weights get gradients
        z, y_fake = self.generator_inputs(real.shape[0], batch)
        with torch.no_grad():
            fake = self.fwd("generator")(z, y_fake)
        d_real = self.discriminate(real, y_real)
        d_fake = self.discriminate(fake, y_fake)
        self.observe_real_logits(d_real)
        loss = self.d_adv_loss(d_real, d_fake)
        logs: dict[str, Any] = {"d_loss": loss}
        if self.loss.wasserstein:
            logs["wasserstein"] = d_real.mean() - d_fake.mean()
        if self.penalty_fn is not None:
            # in full precision whatever trainer.precision is: the penalty differentiates D's
            # gradient, which half precision under- and overflows
            with torch.autocast(real.device.type, enabled=False):
                pen = self.penalty_fn(
                    lambda t: self.discriminate(t, y_real, penalty=True), real.float(), fake.float(),
                    **self.penalty_kwargs,
                )
            loss = loss + self.penalty_weight * pen
            logs["penalty"] = pen
        return self.with_history("discriminator", loss, logs), logs

    def generator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        real, y_real = batch.x, batch.y
        z, y_fake = self.generator_inputs(real.shape[0], batch)
        fake = self.fwd("generator")(z, y_fake)
        if self.tricks.feature_matching is None:
            d_fake = self.discriminate(fake, y_fake)
        else:
            d_fake, fm = self.feature_matching_loss(real, y_real, fake, y_fake)
            weight = self.tricks.feature_matching["adversarial_weight"]
            logs = {"feature_matching": fm.detach()}
            loss = fm
            if weight:
                adv = self.loss.g_loss(self._real_for_g(real, y_real), self.select_top_k(d_fake, logs))
                logs["g_adv"] = adv.detach()
                loss = loss + weight * adv
            logs["g_loss"] = loss
            return self.with_history("generator", loss, logs), logs
        logs = {}
        loss = self.loss.g_loss(self._real_for_g(real, y_real), self.select_top_k(d_fake, logs))
        logs["g_loss"] = loss
        return self.with_history("generator", loss, logs), logs

    def select_top_k(self, d_fake: Tensor, logs: dict) -> Tensor:
        """D's outputs on the fakes that enter G's adversarial loss: all of them, or with
        ``model.top_k`` the share the schedule keeps at this step (logged as ``top_k``)."""
        if not self.top_k:
            return d_fake
        fraction = top_k_fraction(self.step / self.top_k_period(), self.top_k["decay"], self.top_k["min_fraction"])
        logs["top_k"] = torch.tensor(fraction)
        return top_k_outputs(d_fake, fraction)

    def top_k_period(self) -> float:
        """G steps per decay of the top-k share: ``model.top_k.every``, or one pass over the
        training data (the paper decays once per epoch)."""
        if self.top_k["every"]:
            return float(self.top_k["every"])
        batches = self.trainer.num_training_batches if self._trainer is not None else float("inf")
        if not math.isfinite(batches):
            raise UserError("model.top_k.every=null needs an epoch length; give model.top_k.every=<G steps>")
        return max(batches / self.n_critic, 1.0)

    def _real_for_g(self, real: Tensor, y_real: Tensor | None) -> Tensor | None:
        """D's output on the real batch where the G loss compares against it (relativistic losses)."""
        if not self.loss.g_uses_real:
            return None
        with torch.no_grad():
            return self.discriminate(real, y_real)

    # ------------------------------------------------------------------ tricks

    def feature_matching_loss(self, real: Tensor, y_real: Tensor | None, fake: Tensor,
                              y_fake: Tensor | None) -> tuple[Any, Tensor]:
        """(D's output on ``fake``, the feature-matching loss ``||mean f(real) - mean f(fake)||^2``
        over D's hidden layer ``model.tricks.feature_matching.layer``). D runs uncompiled here:
        the layer's output is read with a forward hook."""
        from gan_lab.losses.conditional import feature_matching_loss

        layer = self.tricks.fm_layer
        with capture_output(layer) as fake_features:
            d_fake = self.discriminate(fake, y_fake, penalty=True)
        with torch.no_grad(), capture_output(layer) as real_features:
            self.discriminate(real, y_real, penalty=True)
        return d_fake, feature_matching_loss(real_features["x"], fake_features["x"])

    def with_history(self, net: str, loss: Tensor, logs: dict) -> Tensor:
        """``loss`` plus the historical-averaging penalty of ``net`` where that trick is on."""
        penalty = self.tricks.history_penalty(net, self.nets[net], logs)
        return loss if penalty is None else loss + penalty

    def after_d_step(self) -> None:
        if self.clip_value:
            self.clip_weights()
        self.tricks.record_history("discriminator", self.nets["discriminator"])

    def after_g_step(self) -> None:
        self.tricks.record_history("generator", self.nets["generator"])

    def family_state(self) -> dict:
        return self.tricks.state_dict()

    def load_family_state(self, state: dict) -> None:
        self.tricks.load_state_dict(state, self.device)

    def clip_weights(self) -> None:
        """WGAN's weight clipping of the critic to [-c, c], after every critic update; with
        ``clip_biases`` false the biases (of linear, convolution and normalisation layers) stay
        free. Biases do not change a network's slope, so leaving them free keeps the Lipschitz
        bound that clipping is for, while letting the critic's ReLU kinks sit anywhere: with both
        clipped to [-c, c], a first-layer unit whose weights sit at the bound has its kink line
        ``w.x + b = 0`` within ``|b| / |w|``, at most 1/sqrt(2) for 2-D input, of the origin."""
        with torch.no_grad():
            for name, p in self.discriminator.named_parameters():
                if self.clip_biases or not name.endswith("bias"):
                    p.clamp_(-self.clip_value, self.clip_value)

    # ------------------------------------------------------------------ sampling

    def check_sample_options(self, options: dict) -> None:
        super().check_sample_options(options)
        if options.get("truncation") is not None:
            check_truncation(options["truncation"])

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, **options) -> Batch:
        self.check_sample_options(options)
        if condition is not None:
            raise UserError(f"model={self.name} is unconditional: it takes no labels or other condition")
        z = self.sample_latent(n, generator, options.get("truncation"))
        g = self.sampling_net("generator", use_ema)
        with self.sampling_mode(g, train=self.sample_mode == "train"):
            return Batch(g(z, None))
