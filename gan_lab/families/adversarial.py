"""The adversarial family: one generator against one discriminator (today's nine variants).

GAN, DCGAN, LSGAN, WGAN, WGAN-GP, WGAN-div, WGAN-LP, RaGAN and SNGAN are configs of
:class:`AdversarialGAN` (``conf/model/<name>.yaml``): a loss from :mod:`gan_lab.losses`, a
network architecture, ``n_critic``, optimizers, an optional penalty, weight clipping, EMA and
PacGAN packing. Declared to the engine as

* networks ``generator``, ``discriminator``; optimizer groups ``g`` and ``d``;
* update ``d`` every batch, then update ``g`` after every ``n_critic``-th ``d`` (a step);
* an EMA copy of the generator when ``ema`` is set (sampling uses it).

Subclasses (conditional models) override the small hooks :meth:`generator_inputs`,
:meth:`discriminate` and the two loss methods rather than the loop.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gan_lab import checks
from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.engine import EMASpec, LabModule, OptimGroup, RunOptions, Update
from gan_lab.errors import UserError
from gan_lab.losses import get_loss, get_penalty
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


class AdversarialGAN(LabModule):
    family = "adversarial"

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
        penalty: dict | None = None,
        ema: dict | None = None,
        pack: int = 1,
        sample_mode: str = "eval",
    ):
        super().__init__(name, data_info, run)
        self.loss = get_loss(loss)
        self.latent_dim = checks.integer(latent_dim, "model.latent_dim", minimum=1)
        self.n_critic = checks.integer(n_critic, "model.n_critic", minimum=1)
        self.pack = checks.integer(pack, "model.pack", minimum=1)
        self.clip_value = checks.optional_number(clip_value, "model.clip_value", positive=True)
        penalty = checks.mapping(penalty, "model.penalty")
        self.penalty_fn = get_penalty(penalty.pop("name", None))
        self.penalty_weight = checks.number(penalty.pop("weight", 10.0), "model.penalty.weight", minimum=0)
        self.penalty_kwargs = penalty
        self.sample_mode = checks.choice(sample_mode, "model.sample_mode", ("eval", "train"))
        generator, discriminator = self.build_networks(net)
        self.add_net("generator", generator)
        self.add_net("discriminator", discriminator)
        g_opt = dict(checks.mapping(g_optimizer, "model.g_optimizer") or DEFAULT_OPTIMIZER)
        d_opt = dict(checks.mapping(d_optimizer, "model.d_optimizer") or g_opt)
        ema = checks.mapping(ema, "model.ema")
        ema_specs = []
        if ema.get("decay"):
            ema_specs.append(EMASpec("generator", checks.number(ema["decay"], "model.ema.decay", positive=True),
                                     checks.integer(ema.get("start", 0), "model.ema.start", minimum=0)))
        self.declare(
            groups=[OptimGroup("g", ("generator",), g_opt), OptimGroup("d", ("discriminator",), d_opt)],
            updates=[
                Update("d", "d", "discriminator_loss", after="clip_weights" if self.clip_value else None),
                Update("g", "g", "generator_loss", every=self.n_critic, step=True),
            ],
            ema=ema_specs,
            schedule=lr_schedule,
            warmup=checks.integer(lr_warmup, "model.lr_warmup", minimum=0),
            schedule_steps=lr_schedule_steps,
        )

    # ------------------------------------------------------------------ construction hooks

    def build_networks(self, net: dict | None):
        return build_pair(net, self.data_info, self.latent_dim, pack=self.pack)

    @property
    def generator(self) -> torch.nn.Module:
        return self.nets["generator"]

    @property
    def discriminator(self) -> torch.nn.Module:
        return self.nets["discriminator"]

    # ------------------------------------------------------------------ hooks for subclasses

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        if generator is None:
            return torch.randn(n, self.latent_dim, device=self.device)
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def generator_inputs(self, n: int, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """(z, y) for a fake batch of the training step. Unconditional models ignore labels."""
        return self.sample_latent(n), None

    def discriminate(self, x: Tensor, y: Tensor | None = None, penalty: bool = False) -> Tensor:
        """D's output per packed group of ``pack`` samples (PacGAN). ``penalty=True`` for the
        gradient-penalty path, which needs double backward (never compiled)."""
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
        loss = self.loss.d_loss(d_real, d_fake)
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
        return loss, logs

    def generator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        real, y_real = batch.x, batch.y
        z, y_fake = self.generator_inputs(real.shape[0], batch)
        fake = self.fwd("generator")(z, y_fake)
        d_fake = self.discriminate(fake, y_fake)
        d_real = None
        if self.loss.g_uses_real:
            with torch.no_grad():
                d_real = self.discriminate(real, y_real)
        loss = self.loss.g_loss(d_real, d_fake)
        return loss, {"g_loss": loss}

    def clip_weights(self) -> None:
        """WGAN's weight clipping of the critic to [-c, c], after every critic update."""
        with torch.no_grad():
            for p in self.discriminator.parameters():
                p.clamp_(-self.clip_value, self.clip_value)

    # ------------------------------------------------------------------ sampling

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, **options) -> Batch:
        self.check_sample_options(options)
        if condition is not None:
            raise UserError(f"model={self.name} is unconditional: it takes no labels or other condition")
        z = self.sample_latent(n, generator)
        g = self.sampling_net("generator", use_ema)
        with self.sampling_mode(g, train=self.sample_mode == "train"):
            return Batch(g(z, None))
