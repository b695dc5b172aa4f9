"""StyleGAN2 (Karras et al. 2020) on the engine: a style-based generator with controllable generation.

Networks (:mod:`gan_lab.networks.stylegan`): ``mapping`` (z -> w, with the tracked ``w_avg``),
``synthesis`` (ws -> image) and ``discriminator``. Declared to the engine as

* optimizer groups ``g`` (mapping + synthesis) and ``d``, Adam with the paper's betas (0, 0.99);
  the learning rate and betas of a group with a lazy regulariser are corrected by
  ``k / (k + 1)`` (:func:`gan_lab.losses.stylegan.lazy_regularization`);
* updates per batch, in the original's order: ``g`` (the non-saturating logistic loss; a step),
  ``g_reg`` every ``path_length.every`` batches (path-length regularisation, weighted by that
  interval), ``d`` (the logistic loss), ``d_reg`` every ``r1.every`` batches (R1 on reals times
  gamma/2, times that interval). A regulariser switched off (weight or gamma 0) is not declared;
* EMA copies of mapping and synthesis with a half-life of ``ema.kimg`` thousand images (and the
  StyleGAN2-ADA ramp-up), through :meth:`ema_decay`.

Style mixing regularisation: with probability ``style_mixing`` a minibatch's ws switch from one z's
w to another's at a random layer. Regularisers run in float32 under mixed precision.
``augment=diffaugment|ada`` applies to every D input (reals, fakes and R1's points).

Sampling takes ``truncation=psi`` (in W, towards ``w_avg``) and ``noise=fixed|random|zero`` (the
per-layer noise inputs: the constant images saved with the weights, fresh draws, or none); the
style-mixing grids and latent interpolations of ``gan_lab.style_mix`` / ``gan_lab.interpolate``
and the PPL metric's path pairs are methods here.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from gan_lab import checks
from gan_lab.augment import check_ada_loss
from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.engine import EMASpec, LabModule, OptimGroup, RunOptions, Update
from gan_lab.errors import UserError
from gan_lab.losses import get_loss
from gan_lab.losses.penalties import r1_penalty
from gan_lab.losses.stylegan import ema_beta, lazy_regularization, path_length_penalty, path_lengths
from gan_lab.networks.stylegan import (
    Discriminator,
    MappingNetwork,
    SynthesisNetwork,
    broadcast_ws,
    check_resolution,
    mix_styles,
    mixing_cutoff,
    slerp,
    truncate,
)

DEFAULT_OPTIMIZER = {"name": "adam", "lr": 0.0025, "betas": [0.0, 0.99], "eps": 1e-8}
NOISE = {"fixed": "const", "random": "random", "zero": "none"}
# the paper's layer groups for style mixing, by resolution (two ws per resolution)
LAYER_GROUPS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}


def _settings(given: Any, key: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with the user's mapping ``given``; an unknown key is one line."""
    given = checks.mapping(given, key)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UserError(f"unknown setting {key}.{unknown[0]}; it takes: {', '.join(defaults)}")
    return {**defaults, **given}


def _all_ranks_mean(value: Tensor) -> Tensor:
    """The mean of ``value`` over DDP processes (itself in one process), so that running
    statistics (w_avg, the path-length mean) stay identical on every rank."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


class StyleGAN2(LabModule):
    """StyleGAN2 with lazy R1 and path-length regularisation, style mixing and the half-life EMA.

    Args:
        latent_dim / w_dim: sizes of z and w (the paper: 512 each).
        mapping: ``{layers, lr_multiplier, w_avg_beta}`` of the mapping network.
        channels: ``{base, max}``: channels at resolution r are ``min(base // r, max)``.
        mbstd: ``{group_size, channels}`` of D's minibatch standard-deviation layer.
        r1: ``{gamma, every}``; ``gamma: auto`` is StyleGAN2-ADA's heuristic
            ``0.0002 * resolution^2 / batch`` (the global batch), 0 switches R1 off.
        path_length: ``{weight, every, batch_shrink, decay}``; weight 0 switches it off.
        style_mixing: the probability of mixing two ws in a minibatch.
        ema: ``{kimg, rampup}``: the EMA half-life in thousands of images and the ramp-up
            coefficient (half-life at most rampup x images seen; null: none); ``null`` for no EMA.
    """

    family = "stylegan"
    augmentable = True
    sample_options = ("truncation", "noise")

    def __init__(
        self,
        name: str,
        data_info: DataInfo,
        run: RunOptions | None = None,
        loss: str = "non_saturating",
        latent_dim: int = 512,
        w_dim: int = 512,
        mapping: dict | None = None,
        channels: dict | None = None,
        mbstd: dict | None = None,
        g_optimizer: dict | None = None,
        d_optimizer: dict | None = None,
        r1: dict | None = None,
        path_length: dict | None = None,
        style_mixing: float = 0.9,
        ema: dict | None = None,
        lr_schedule: str = "constant",
        lr_warmup: int = 0,
        lr_schedule_steps: int | None = None,
        size_for_28px_data: int | None = None,  # read by the data configs (conf/data/mnist*.yaml), not here
    ):
        if data_info.modality != "image":
            raise UserError(f"model={name} generates images; data {data_info.name} is {data_info.modality} data")
        img_channels, resolution = check_resolution(tuple(data_info.shape), f"model={name}")
        super().__init__(name, data_info, run)
        self.loss = get_loss(loss)
        check_ada_loss(self.augmenter, self.loss.name)
        self.resolution = resolution
        self.latent_dim = checks.integer(latent_dim, "model.latent_dim", minimum=1)
        self.w_dim = checks.integer(w_dim, "model.w_dim", minimum=1)
        m = _settings(mapping, "model.mapping", {"layers": 8, "lr_multiplier": 0.01, "w_avg_beta": 0.995})
        c = _settings(channels, "model.channels", {"base": 32768, "max": 512})
        s = _settings(mbstd, "model.mbstd", {"group_size": 4, "channels": 1})
        r = _settings(r1, "model.r1", {"gamma": "auto", "every": 16})
        p = _settings(path_length, "model.path_length", {"weight": 2.0, "every": 4, "batch_shrink": 2, "decay": 0.01})
        base = checks.integer(c["base"], "model.channels.base", minimum=1)
        cmax = checks.integer(c["max"], "model.channels.max", minimum=1)
        self.add_net("mapping", MappingNetwork(
            self.latent_dim, self.w_dim, checks.integer(m["layers"], "model.mapping.layers", minimum=1),
            checks.number(m["lr_multiplier"], "model.mapping.lr_multiplier", positive=True),
            checks.number(m["w_avg_beta"], "model.mapping.w_avg_beta", minimum=0)))
        self.add_net("synthesis", SynthesisNetwork(self.w_dim, resolution, img_channels, base, cmax))
        self.add_net("discriminator", Discriminator(
            resolution, img_channels, base, cmax,
            checks.integer(s["group_size"], "model.mbstd.group_size", minimum=1),
            checks.integer(s["channels"], "model.mbstd.channels", minimum=0)))
        self.num_ws = self.nets["synthesis"].num_ws
        self.style_mixing = checks.number(style_mixing, "model.style_mixing", minimum=0)
        if self.style_mixing > 1:
            raise UserError(f"model.style_mixing is a probability in [0, 1], got {style_mixing}")

        self.r1_gamma = r["gamma"] if r["gamma"] == "auto" else checks.number(r["gamma"], "model.r1.gamma", minimum=0)
        self.r1_every = checks.integer(r["every"], "model.r1.every", minimum=1)
        self.pl_weight = checks.number(p["weight"], "model.path_length.weight", minimum=0)
        self.pl_every = checks.integer(p["every"], "model.path_length.every", minimum=1)
        self.pl_batch_shrink = checks.integer(p["batch_shrink"], "model.path_length.batch_shrink", minimum=1)
        self.pl_decay = checks.number(p["decay"], "model.path_length.decay", minimum=0)
        self.register_buffer("pl_mean", torch.zeros(()))  # the running mean path length a
        r1_on = self.r1_gamma == "auto" or self.r1_gamma > 0

        g_opt = dict(checks.mapping(g_optimizer, "model.g_optimizer") or DEFAULT_OPTIMIZER)
        d_opt = dict(checks.mapping(d_optimizer, "model.d_optimizer") or g_opt)
        if self.pl_weight > 0:
            g_opt = lazy_regularization(g_opt, self.pl_every)
        if r1_on:
            d_opt = lazy_regularization(d_opt, self.r1_every)
        updates = [Update("g", "g", "generator_loss", step=True)]
        if self.pl_weight > 0:
            updates.append(Update("g_reg", "g", "path_length_loss", every=self.pl_every))
        updates.append(Update("d", "d", "discriminator_loss"))
        if r1_on:
            updates.append(Update("d_reg", "d", "r1_loss", every=self.r1_every))

        self.ema_settings = None
        ema_specs = []
        if ema is not None:
            e = _settings(ema, "model.ema", {"kimg": 10.0, "rampup": 0.05})
            self.ema_settings = (checks.number(e["kimg"], "model.ema.kimg", positive=True),
                                 checks.optional_number(e["rampup"], "model.ema.rampup", positive=True))
            # the decay per step comes from ema_decay (the half-life schedule); the spec's is unused
            ema_specs = [EMASpec(net, decay=1.0, rampup=None) for net in ("mapping", "synthesis")]
        self.images_per_step = 0  # the global batch, set at the first update
        self.declare(
            groups=[OptimGroup("g", ("mapping", "synthesis"), g_opt), OptimGroup("d", ("discriminator",), d_opt)],
            updates=updates, ema=ema_specs, schedule=lr_schedule,
            warmup=checks.integer(lr_warmup, "model.lr_warmup", minimum=0), schedule_steps=lr_schedule_steps,
        )

    # ------------------------------------------------------------------ generation in training

    def world_size(self) -> int:
        trainer = self._trainer
        return trainer.world_size if trainer is not None else 1

    def generate(self, n: int, track: bool = True) -> tuple[Tensor, Tensor]:
        """(images, ws) of ``n`` fresh latents, with style mixing at a random crossover (drawn from
        the training streams); ``track`` updates ``w_avg`` with the batch's mean w (all ranks)."""
        cutoff = mixing_cutoff(self.num_ws, self.style_mixing) if self.style_mixing > 0 else self.num_ws
        mixed = cutoff < self.num_ws
        z = torch.randn(2 * n if mixed else n, self.latent_dim, device=self.device)
        w = self.fwd("mapping")(z)  # one pass for both latents of a mixed batch
        if track:
            self.nets["mapping"].track(_all_ranks_mean(w[:n].detach().mean(dim=0)))
        ws = broadcast_ws(w[:n], self.num_ws)
        if mixed:
            ws = mix_styles(ws, broadcast_ws(w[n:], self.num_ws), cutoff)
        return self.fwd("synthesis")(ws), ws

    def discriminate(self, x: Tensor, penalty: bool = False) -> Tensor:
        """D's logits on ``x`` after the run's augmentation; ``penalty=True`` for the double-backward
        path (never compiled)."""
        return self.fwd("discriminator", compiled=not penalty)(self.augment_images(x))

    def prepare_batch(self, batch: Batch) -> Batch:
        batch = super().prepare_batch(batch)
        if not self.images_per_step:
            self.images_per_step = len(batch) * self.world_size()
        return batch

    # ------------------------------------------------------------------ the four updates

    def generator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        fake, _ = self.generate(len(batch))
        loss = self.loss.g_loss(None, self.discriminate(fake))
        return loss, {"g_loss": loss}

    def path_length_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        n = max(1, len(batch) // self.pl_batch_shrink)
        with torch.autocast(self.device.type, enabled=False):  # differentiates through G: float32
            fake, ws = self.generate(n, track=False)
            lengths = path_lengths(fake.float(), ws)
            penalty, a = path_length_penalty(lengths, self.pl_mean, self.pl_decay,
                                             _all_ranks_mean(lengths.detach().mean()))
        self.pl_mean.copy_(a.detach())
        # "+ 0 x an output pixel" puts every generator weight in the graph (the Jacobian does not
        # depend on the last biases): DDP expects a gradient for each, as in the original
        loss = penalty.mean() * (self.pl_weight * self.pl_every) + fake[:, 0, 0, 0].sum() * 0
        return loss, {"pl_penalty": penalty.mean().detach(), "pl_mean": a.detach()}

    def discriminator_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        with torch.no_grad():
            fake, _ = self.generate(len(batch))
        d_real = self.discriminate(batch.x)
        d_fake = self.discriminate(fake)
        self.observe_real_logits(d_real)
        loss = self.loss.d_loss(d_real, d_fake)
        return loss, {"d_loss": loss, "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}

    def r1_gamma_for(self, batch_size: int) -> float:
        """gamma, or for ``auto`` StyleGAN2-ADA's ``0.0002 * resolution^2 / global batch``."""
        if self.r1_gamma != "auto":
            return float(self.r1_gamma)
        return 0.0002 * self.resolution**2 / (batch_size * self.world_size())

    def r1_loss(self, batch: Batch) -> tuple[Tensor, dict]:
        gamma = self.r1_gamma_for(len(batch))
        logits = []

        def judge(t: Tensor) -> Tensor:
            logits.append(self.discriminate(t, penalty=True))
            return logits[-1]

        with torch.autocast(self.device.type, enabled=False):
            penalty = r1_penalty(judge, batch.x.float())
        # r1_penalty is 1/2 E||grad||^2, so this is gamma/2 E||grad||^2, times the interval; "+ 0 x the
        # logits" puts D's last bias in the graph for DDP, as the original does
        return penalty * (gamma * self.r1_every) + logits[0].sum() * 0, {"r1_penalty": penalty.detach()}

    # ------------------------------------------------------------------ EMA: the half-life schedule

    def ema_decay(self, spec: EMASpec, step: int) -> float:
        if self.ema_settings is None or not self.images_per_step:
            return 0.0
        kimg, rampup = self.ema_settings
        return ema_beta(self.images_per_step, step * self.images_per_step, kimg, rampup)

    # ------------------------------------------------------------------ sampling

    def check_sample_options(self, options: dict) -> None:
        super().check_sample_options(options)
        psi = options.get("truncation")
        if psi is not None and (isinstance(psi, bool) or not isinstance(psi, (int, float)) or not math.isfinite(psi)
                                or psi < 0):
            raise UserError(f"truncation must be a number psi >= 0 (1: off, 0: the average w), got {psi!r}")
        noise = options.get("noise")
        if noise is not None and noise not in NOISE:
            raise UserError(f"noise must be one of {', '.join(NOISE)}, got {noise!r}")

    def latents(self, n: int, generator: torch.Generator | None) -> Tensor:
        if generator is None:
            return torch.randn(n, self.latent_dim, device=self.device)
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def seed_latents(self, seeds: Sequence[int]) -> Tensor:
        """One z per seed (``torch.Generator().manual_seed(seed)``): the same seed, the same z."""
        return torch.cat([torch.randn(1, self.latent_dim, generator=torch.Generator().manual_seed(int(s)))
                          for s in seeds]).to(self.device)

    def to_w(self, z: Tensor, truncation: float | None = None, use_ema: bool = True) -> Tensor:
        """w of each z (B, w_dim), truncated towards ``w_avg`` by ``truncation``."""
        mapping = self.sampling_net("mapping", use_ema)
        with self.sampling_mode(mapping):
            w = mapping(z)
            if truncation is not None and truncation != 1:
                w = truncate(w, mapping.w_avg, truncation)
        return w

    def synthesize(self, ws: Tensor, noise: str | None = None, generator: torch.Generator | None = None,
                   use_ema: bool = True) -> Tensor:
        """Images of ``ws`` (B, num_ws, w_dim) or ``w`` (B, w_dim); ``noise`` fixed | random | zero."""
        if ws.dim() == 2:
            ws = broadcast_ws(ws, self.num_ws)
        synthesis = self.sampling_net("synthesis", use_ema)
        with self.sampling_mode(synthesis):
            return synthesis(ws, noise_mode=NOISE[noise or "random"], generator=generator)

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, truncation: float | None = None, noise: str | None = None, **options) -> Batch:
        self.check_sample_options({"truncation": truncation, "noise": noise, **options})
        if condition is not None:
            raise UserError(f"model={self.name} is unconditional: it takes no labels or other condition")
        w = self.to_w(self.latents(n, generator), truncation, use_ema)
        return Batch(self.synthesize(w, noise, generator, use_ema))

    def grid(self, generator: torch.Generator):
        batch = self.sample(64, generator, noise="fixed")  # the constant noise: grids differ by training only
        return batch, None, None

    def evaluation_sample(self, n: int, generator: torch.Generator, data: Any = None, *, use_ema: bool = True,
                          **options) -> Batch:
        """Samples that also carry :meth:`path_pairs` (bound to the evaluation's generator), which the
        ``ppl`` metric draws from."""
        from gan_lab.metrics.ppl import SamplesWithPaths

        batch = self.sample(n, generator, use_ema=use_ema, **options)
        return SamplesWithPaths(batch.x, lambda m, **kw: self.path_pairs(m, generator, use_ema=use_ema,
                                                                          truncation=options.get("truncation"), **kw))

    # ------------------------------------------------------------------ controllable generation

    def layer_indices(self, layers: Any) -> list[int]:
        """The w indices of ``layers``: coarse (4-8 px), middle (16-32 px), fine (64 px and up), an
        index ``i`` or a range ``i-j`` (inclusive) of ``0 .. num_ws - 1``."""
        resolutions = self.nets["synthesis"].layer_resolutions()
        last = self.num_ws - 1
        if isinstance(layers, str) and layers in LAYER_GROUPS:
            lo, hi = LAYER_GROUPS[layers]
            picked = [i for i, r in enumerate(resolutions) if lo <= r <= hi]
            if not picked:
                raise UserError(f"layers={layers}: a {self.resolution} px model has no {layers} layers "
                                f"({lo}+ px); its layers are 0-{last} (give layers=<i-j>)")
            return picked
        text = str(layers).strip()
        try:
            if "-" in text:
                lo, hi = (int(t) for t in text.split("-", 1))
            else:
                lo = hi = int(text)
        except ValueError:
            raise UserError(f"layers must be coarse, middle, fine, <i> or <i-j>, got {layers!r}") from None
        if not 0 <= lo <= hi <= last:
            raise UserError(f"layers={text} is out of range: this {self.resolution} px model has layers 0-{last} "
                            f"(coarse {self._group_text('coarse')}, middle {self._group_text('middle')}, "
                            f"fine {self._group_text('fine')})")
        return list(range(lo, hi + 1))

    def _group_text(self, group: str) -> str:
        lo, hi = LAYER_GROUPS[group]
        picked = [i for i, r in enumerate(self.nets["synthesis"].layer_resolutions()) if lo <= r <= hi]
        return f"{picked[0]}-{picked[-1]}" if picked else "none"

    def style_mix_grid(self, row_seeds: Sequence[int], col_seeds: Sequence[int], layers: list[int],
                       truncation: float | None = None, noise: str = "fixed", use_ema: bool = True) -> Tensor:
        """The paper's style-mixing figure as ``(1 + rows) x (1 + cols)`` images: the top row the
        column sources, the left column the row sources, and at (r, c) the row source's ws with the
        ``layers`` taken from column source c (the top-left corner blank)."""
        w_rows = self.to_w(self.seed_latents(row_seeds), truncation, use_ema)
        w_cols = self.to_w(self.seed_latents(col_seeds), truncation, use_ema)
        gen = torch.Generator().manual_seed(0)
        rows = self.synthesize(w_rows, noise, gen, use_ema)
        cols = self.synthesize(w_cols, noise, gen, use_ema)
        index = torch.tensor(layers, device=w_rows.device)
        images = [torch.full_like(rows[0], -1.0), *cols]
        for i in range(len(row_seeds)):
            ws = broadcast_ws(w_rows[i:i + 1].expand(len(col_seeds), -1), self.num_ws).clone()
            ws[:, index] = broadcast_ws(w_cols, self.num_ws)[:, index]
            images += [rows[i], *self.synthesize(ws, noise, gen, use_ema)]
        return torch.stack(images)

    def interpolation(self, seeds: Sequence[int], steps: int, space: str = "w", truncation: float | None = None,
                      noise: str = "fixed", use_ema: bool = True) -> Tensor:
        """``steps`` images from each seed to the next (the endpoints included once each): linear in
        W, spherical in Z. Returns (frames, C, H, W)."""
        z = self.seed_latents(seeds)
        t = torch.linspace(0, 1, steps, device=z.device)
        frames = []
        for k in range(len(seeds) - 1):
            ts = t if k == 0 else t[1:]
            if space == "z":
                zs = slerp(z[k:k + 1].expand(len(ts), -1), z[k + 1:k + 2].expand(len(ts), -1), ts)
                w = self.to_w(zs, truncation, use_ema)
            else:
                w0, w1 = self.to_w(z[k:k + 2], truncation, use_ema)
                w = w0[None].lerp(w1[None], ts[:, None])
            frames.append(self.synthesize(w, noise, torch.Generator().manual_seed(0), use_ema))
        return torch.cat(frames)

    def path_pairs(self, n: int, generator: torch.Generator, space: str = "w", epsilon: float = 1e-4,
                   sampling: str = "full", use_ema: bool = True, truncation: float | None = None) -> tuple[Tensor, Tensor]:
        """The image pairs of perceptual path length (Karras et al. 2019): for ``n`` pairs of latents
        and ``t`` uniform in [0, 1] (``sampling=end``: t = 0), the images at ``t`` and ``t + epsilon``
        along the path between them, linear in W (``space=w``: between their ws) or spherical in
        Z; the constant noise; all draws from ``generator``."""
        z = torch.randn(2 * n, self.latent_dim, generator=generator).to(self.device)
        t = torch.rand(n, generator=generator).to(self.device) * (sampling == "full")
        if space == "z":
            a, b = z[:n], z[n:]
            zt = torch.cat([slerp(a, b, t), slerp(a, b, t + epsilon)])
            w = self.to_w(zt, truncation, use_ema)
        else:
            w = self.to_w(z, truncation, use_ema)
            w0, w1 = w[:n], w[n:]
            w = torch.cat([w0.lerp(w1, t[:, None]), w0.lerp(w1, t[:, None] + epsilon)])
        images = self.synthesize(w, "fixed", None, use_ema)
        return images[:n], images[n:]
