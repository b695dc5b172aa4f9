"""The one LightningModule that owns the alternating discriminator/generator loop.

A "step" in gan_lab is one generator update. Each training batch drives one discriminator
update; every ``n_critic``-th batch is followed by a generator update. So ``max_steps=1000``
with ``n_critic=5`` means 1000 G updates and 5000 D updates, whatever the variant. (Lightning's
own ``global_step`` counts every optimizer step, which is why the lab keeps its own counter.)

Variants are configs of this class. A family whose step really differs (conditional, encoder
based, translation, text) subclasses it and overrides the small hooks below
(``sample_latent``, ``generator_inputs``, ``discriminate``, ``discriminator_loss``,
``generator_loss``) rather than copying the loop.
"""

from __future__ import annotations

import copy
import random
from contextlib import nullcontext
from dataclasses import asdict
from typing import Any, Callable

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from gan_lab.data import DataInfo
from gan_lab.errors import UserError
from gan_lab.losses import get_loss, get_penalty
from gan_lab.models.optim import build_optimizer, schedule_factor
from gan_lab.networks import NetConfig, build_networks


class NonFiniteError(RuntimeError):
    """A loss, gradient or weight became NaN/Inf."""


def _total_norm(tensors) -> Tensor:
    """The 2-norm of many tensors as one 0-d tensor (NaN/Inf if any element is): one sync to read."""
    tensors = [t.detach() for t in tensors]
    if not tensors:
        return torch.zeros(())
    # _foreach_norm computes all norms in one C++ call: this check runs on every update
    norms = torch._foreach_norm(tensors) if hasattr(torch, "_foreach_norm") else [
        torch.linalg.vector_norm(t) for t in tensors
    ]
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


def _grad_norm(params) -> float:
    return float(_total_norm([p.grad for p in params if p.grad is not None]))


DIVERGENCE_MODES = ("stop", "skip")


class GANModule(L.LightningModule):
    def __init__(
        self,
        name: str,
        data_info: DataInfo,
        loss: str = "non_saturating",
        net: dict | None = None,
        latent_dim: int = 100,
        n_critic: int = 1,
        g_optimizer: dict | None = None,
        d_optimizer: dict | None = None,
        lr_schedule: str = "constant",
        lr_warmup: int = 0,
        clip_value: float | None = None,
        penalty: dict | None = None,
        ema: dict | None = None,
        pack: int = 1,
        max_steps: int = 1000,
        log_every: int = 50,
        num_fixed_samples: int = 64,
        sample_mode: str = "eval",
        divergence: str = "stop",
        compile: bool = False,
        compile_backend: str = "inductor",
        channels_last: bool = False,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.name = name
        self.data_info = data_info
        self.loss = get_loss(loss)
        self.latent_dim = latent_dim
        if n_critic < 1:
            raise UserError(f"model.n_critic must be >= 1, got {n_critic}")
        if pack < 1:
            raise UserError(f"model.pack must be >= 1, got {pack}")
        self.n_critic, self.pack = n_critic, pack
        self.g_optimizer_cfg = dict(g_optimizer or {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]})
        self.d_optimizer_cfg = dict(d_optimizer or self.g_optimizer_cfg)
        self.lr_schedule, self.lr_warmup = lr_schedule, lr_warmup
        schedule_factor(lr_schedule, max_steps, lr_warmup)  # validate the name early
        self.clip_value = clip_value
        penalty = dict(penalty or {})
        self.penalty_fn = get_penalty(penalty.pop("name", None))
        self.penalty_weight = float(penalty.pop("weight", 10.0))
        self.penalty_kwargs = penalty
        self.max_steps, self.log_every = max_steps, log_every
        if sample_mode not in ("eval", "train"):
            raise UserError(f"model.sample_mode must be eval or train, got {sample_mode}")
        self.sample_mode = sample_mode
        if divergence not in DIVERGENCE_MODES:
            raise UserError(f"divergence must be one of {', '.join(DIVERGENCE_MODES)}, got {divergence!r}")
        self.divergence = divergence
        self.skipped_steps = 0  # optimizer steps skipped for NaN/Inf (divergence=skip)
        self.compile, self.compile_backend = bool(compile), compile_backend
        self.channels_last = bool(channels_last) and data_info.kind == "image"

        self.net_cfg = NetConfig(**(net or {}))
        self.generator, self.discriminator = self.build_networks()
        self.ema_decay = None
        self.generator_ema = None
        if ema and ema.get("decay"):
            self.ema_decay = float(ema["decay"])
            self.ema_start = int(ema.get("start", 0))
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        # Forward paths; replaced by DDP wrappers under data-parallel training (see strategy.py).
        # Kept outside the module registry so state_dict keys never depend on the strategy.
        object.__setattr__(self, "_g_forward", self.generator)
        object.__setattr__(self, "_d_forward", self.discriminator)
        # What the losses call: the forwards above, or torch.compile'd versions (compile=true).
        # Gradient penalties always use the plain _d_forward (compiled graphs have no double
        # backward).
        object.__setattr__(self, "_g_fast", self._g_forward)
        object.__setattr__(self, "_d_fast", self._d_forward)

        g = torch.Generator().manual_seed(1234)
        self.register_buffer("fixed_z", torch.randn(num_fixed_samples, latent_dim, generator=g))
        self.g_step = 0  # generator updates done (the lab's step)
        self.d_step = 0  # discriminator updates done
        self.last_metrics: dict[str, float] = {}
        self.lab_meta: dict[str, Any] = {}  # config + data info, saved in every checkpoint

    # ------------------------------------------------------------------ construction hooks

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        info = self.data_info
        return build_networks(
            self.net_cfg, self.latent_dim, info.shape, info.kind, info.name, pack=self.pack
        )

    def wrap_for_ddp(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Wrap G and D in DDP separately so each backward syncs exactly one network."""
        object.__setattr__(self, "_g_forward", wrap(self.generator))
        object.__setattr__(self, "_d_forward", wrap(self.discriminator))
        object.__setattr__(self, "_g_fast", self._g_forward)
        object.__setattr__(self, "_d_fast", self._d_forward)

    def setup(self, stage: str) -> None:
        if self.channels_last:  # before the optimizers are built and DDP wraps the networks
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
            if self.generator_ema is not None:
                self.generator_ema.to(memory_format=torch.channels_last)

    def on_fit_start(self) -> None:
        if self.compile:  # after DDP wrapping (strategy.setup), so the wrappers get compiled
            object.__setattr__(self, "_g_fast", torch.compile(self._g_forward, backend=self.compile_backend))
            object.__setattr__(self, "_d_fast", torch.compile(self._d_forward, backend=self.compile_backend))

    def configure_optimizers(self):
        opt_g = build_optimizer(self.generator.parameters(), self.g_optimizer_cfg)
        opt_d = build_optimizer(self.discriminator.parameters(), self.d_optimizer_cfg)
        factor = schedule_factor(self.lr_schedule, self.max_steps, self.lr_warmup)
        sched = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in (opt_g, opt_d)]
        return [opt_g, opt_d], sched

    # ------------------------------------------------------------------ hooks for families

    def sample_latent(self, n: int) -> Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)

    def generator_inputs(self, n: int, batch_labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """(z, y) for a fake batch. Unconditional models ignore labels."""
        return self.sample_latent(n), None

    def generate(self, z: Tensor, y: Tensor | None = None, training: bool = True) -> Tensor:
        return self._g_fast(z, y) if training else self.generator(z, y)

    def discriminate(self, x: Tensor, y: Tensor | None = None, penalty: bool = False) -> Tensor:
        """D's output per packed group of ``pack`` samples (PacGAN). ``penalty=True`` for the
        gradient-penalty path, which needs double backward (never compiled)."""
        if self.pack > 1:
            x = x.reshape(x.shape[0] // self.pack, self.pack * x.shape[1], *x.shape[2:])
            y = None  # packed groups have no single label
        return (self._d_forward if penalty else self._d_fast)(x, y)

    def discriminator_loss(self, real: Tensor, y_real, fake: Tensor, y_fake) -> tuple[Tensor, dict]:
        d_real = self.discriminate(real, y_real)
        d_fake = self.discriminate(fake, y_fake)
        loss = self.loss.d_loss(d_real, d_fake)
        logs = {"d_loss": loss}
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

    def generator_loss(self, real: Tensor, y_real, fake: Tensor, y_fake) -> tuple[Tensor, dict]:
        d_fake = self.discriminate(fake, y_fake)
        d_real = None
        if self.loss.g_uses_real:
            with torch.no_grad():
                d_real = self.discriminate(real, y_real)
        loss = self.loss.g_loss(d_real, d_fake)
        return loss, {"g_loss": loss}

    # ------------------------------------------------------------------ the loop

    def on_train_batch_start(self, batch, batch_idx):
        if self.g_step >= self.max_steps:
            self.trainer.should_stop = True
            return -1
        if self.pack > 1 and batch[0].shape[0] % self.pack:
            raise UserError(
                f"data.batch_size={batch[0].shape[0]} is not divisible by model.pack={self.pack}"
            )

    def training_step(self, batch, batch_idx):
        real, y_real = batch
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]
        will_log = (self.d_step + 1) % self.n_critic == 0 and (self.g_step + 1) % self.log_every == 0
        logs: dict[str, Tensor | float] = {}

        # Discriminator update: G runs without a graph, so only D's weights get gradients.
        z, y_fake = self.generator_inputs(n, y_real)
        with torch.no_grad():
            fake = self.generate(z, y_fake)
        d_loss, d_logs = self.discriminator_loss(real, y_real, fake, y_fake)
        opt_d.zero_grad(set_to_none=True)
        bad = self.check_finite({"d_loss": d_loss, **d_logs})
        if bad is None:
            self.manual_backward(d_loss)
        self.guarded_step("discriminator", self.discriminator, opt_d, bad, logs if will_log else None, "d_grad_norm")
        if self.clip_value is not None:
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-self.clip_value, self.clip_value)
        self.d_step += 1
        logs.update(d_logs)

        if self.d_step % self.n_critic == 0:
            logs.update(self.generator_step(real, y_real, opt_g, will_log))
            self.g_step += 1
            for sched in self.lr_schedulers():
                sched.step()
            self.update_ema()
            if will_log:
                self.record_metrics(logs)
        if self.g_step >= self.max_steps:
            self.trainer.should_stop = True

    def generator_step(self, real, y_real, opt_g, will_log: bool) -> dict:
        # D's weights need no gradients here; D's DDP wrapper must not sync (no_sync).
        self.discriminator.requires_grad_(False)
        sync_ctx = getattr(self._d_forward, "no_sync", nullcontext)
        try:
            with sync_ctx():
                z, y_fake = self.generator_inputs(real.shape[0], y_real)
                fake = self.generate(z, y_fake)
                g_loss, logs = self.generator_loss(real, y_real, fake, y_fake)
                opt_g.zero_grad(set_to_none=True)
                bad = self.check_finite({"g_loss": g_loss, **logs})
                if bad is None:
                    self.manual_backward(g_loss)
        finally:
            self.discriminator.requires_grad_(True)
        self.guarded_step("generator", self.generator, opt_g, bad, logs if will_log else None, "g_grad_norm")
        return logs

    # ------------------------------------------------------------------ divergence guard

    def guarded_step(self, label: str, net: nn.Module, optimizer, bad: str | None, logs: dict | None,
                     key: str) -> None:
        """Step ``optimizer`` unless the loss (``bad``) or the gradients are NaN/Inf; then check
        the new weights. Logs the gradient norm under ``key`` when ``logs`` is given."""
        if bad is None:
            bad = self.check_grads(label, net, logs, key)
        if bad is not None:
            self.skip_step(optimizer, bad)
            return
        optimizer.step()
        self.check_weights(label, net)

    def _where(self) -> str:
        return f"step {self.g_step + 1} (D update {self.d_step + 1})"

    def check_finite(self, values: dict) -> str | None:
        """None when every loss term is finite, else a description of the first bad one.
        All terms are tested with one device sync."""
        items = [(k, v.detach()) for k, v in values.items() if torch.is_tensor(v)]
        flags = torch.stack([torch.isfinite(v).all() for _, v in items])
        ok = bool(flags.all())
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            # losses differ per rank: all ranks must agree to skip or stop, or DDP would hang
            if trainer.strategy.reduce_boolean_decision(not ok, all=False):
                if ok:
                    return "a loss is NaN/Inf on another process"
            else:
                return None
        if ok:
            return None
        key, value = next((k, v) for (k, v), good in zip(items, flags.tolist()) if not good)
        first_bad = value.float().flatten()[~torch.isfinite(value.flatten())][0]
        return f"{key} is {float(first_bad)}"

    def check_grads(self, label: str, net: nn.Module, logs: dict | None, key: str) -> str | None:
        """Check the gradients of ``net`` after backward (and log their norm when asked)."""
        norm = _total_norm([p.grad for p in net.parameters() if p.grad is not None])
        if logs is not None:
            logs[key] = norm
        scaler = getattr(getattr(self._trainer, "precision_plugin", None), "scaler", None)
        if scaler is not None:
            return None  # fp16 loss scaling: Inf gradients are expected, the scaler skips those steps
        return None if bool(torch.isfinite(norm)) else f"{label} gradient norm is {float(norm)}"

    def check_weights(self, label: str, net: nn.Module) -> None:
        """After an optimizer step: weights that are NaN/Inf cannot be skipped; always stop."""
        norm = _total_norm(list(net.parameters()))
        if not bool(torch.isfinite(norm)):
            raise NonFiniteError(f"diverged at {self._where()}: {label} weights are {float(norm)} (norm)")

    def skip_step(self, optimizer, what: str) -> None:
        """A NaN/Inf loss or gradient: stop (``divergence=stop``) or skip this update."""
        if self.divergence == "stop":
            raise NonFiniteError(f"diverged at {self._where()}: {what}")
        optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        import warnings

        warnings.warn(f"divergence=skip: skipped the update at {self._where()}: {what}", stacklevel=2)

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.generator_ema is None:
            return
        # Before ``start`` the EMA copies G; after it, the decay ramps up as (1+t)/(10+t) (the
        # num_updates rule of TensorFlow's ExponentialMovingAverage) so that early, poor weights
        # are forgotten quickly instead of lingering for ~1/(1-decay) steps.
        t = self.g_step - self.ema_start
        decay = min(self.ema_decay, (1.0 + t) / (10.0 + t)) if t > 0 else 0.0
        for e, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            e.lerp_(p, 1.0 - decay)
        for e, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            e.copy_(b)

    def record_metrics(self, logs: dict) -> None:
        metrics = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in logs.items()}
        for key, value in metrics.items():
            if not np.isfinite(value) and self.divergence == "stop":  # skip: a skipped update logs NaN
                raise NonFiniteError(f"diverged at step {self.g_step}: {key} is {value}")
        metrics["lr_g"] = self.lr_schedulers()[0].get_last_lr()[0]
        if self.skipped_steps:
            metrics["skipped_steps"] = float(self.skipped_steps)
        self.last_metrics = metrics
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.g_step)

    def on_train_end(self) -> None:
        if self.trainer.world_size > 1:
            self.check_ranks_in_sync()

    def check_ranks_in_sync(self) -> float:
        """Compare G and D weights across ranks; they must be identical after data-parallel
        training. Writes ``ddp_sync.json`` in the run directory and warns on any difference."""
        import json
        import warnings

        flat = torch.cat([p.detach().flatten() for p in self.parameters()])
        gathered = self.all_gather(flat)
        diff = float((gathered - gathered[0]).abs().max())
        if self.trainer.is_global_zero:
            path = f"{self.trainer.default_root_dir}/ddp_sync.json"
            with open(path, "w") as f:
                json.dump({"world_size": self.trainer.world_size, "max_abs_weight_diff": diff,
                           "g_step": self.g_step}, f)
            if diff > 0:
                warnings.warn(f"weights differ across DDP ranks by up to {diff:g}")
        return diff

    # ------------------------------------------------------------------ sampling

    @property
    def sampling_generator(self) -> nn.Module:
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def sample(self, z: Tensor, y: Tensor | None = None, use_ema: bool = True) -> Tensor:
        """Samples from the EMA generator where there is one, in ``sample_mode``."""
        g = self.sampling_generator if use_ema else self.generator
        was_training = g.training
        g.train(self.sample_mode == "train")
        try:
            return g(z, y)
        finally:
            g.train(was_training)

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        """Labels for conditional sampling; None for unconditional models."""
        return None

    # ------------------------------------------------------------------ checkpoint state

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan_lab"] = {
            **self.lab_meta,
            "model": self.name,
            "g_step": self.g_step,
            "d_step": self.d_step,
            "skipped_steps": self.skipped_steps,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        meta = checkpoint.get("gan_lab", {})
        self.g_step = int(meta.get("g_step", 0))
        self.d_step = int(meta.get("d_step", 0))  # d_step % n_critic: the n_critic phase
        self.skipped_steps = int(meta.get("skipped_steps", 0))
        # Lightning restores the checkpoint after run() seeded everything and before the first
        # batch; nothing draws from these generators in between, so the resumed run continues
        # the uninterrupted run's random streams exactly (tests/test_resume.py).
        rng = meta.get("rng")
        if rng:
            torch.set_rng_state(rng["torch"])
            if rng.get("cuda") is not None and torch.cuda.is_available():
                try:
                    torch.cuda.set_rng_state_all(rng["cuda"])
                except (RuntimeError, IndexError):  # another number of GPUs: keep the seeded state
                    pass
            np.random.set_state(rng["numpy"])
            random.setstate(rng["python"])


def data_info_to_dict(info: DataInfo) -> dict:
    d = asdict(info)
    if info.modes is not None:
        d["modes"] = info.modes.tolist()
    d["shape"] = list(info.shape)
    return d


def data_info_from_dict(d: dict) -> DataInfo:
    d = dict(d)
    if d.get("modes") is not None:
        d["modes"] = torch.tensor(d["modes"], dtype=torch.float32)
    d["shape"] = tuple(d["shape"])
    return DataInfo(**d)
