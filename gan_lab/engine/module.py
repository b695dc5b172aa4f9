"""The engine: one LightningModule that owns the training loop of every family.

A family (``gan_lab/families/``) subclasses :class:`LabModule`, builds its networks with
:meth:`LabModule.add_net` and declares its optimizer groups, updates, phases and EMA copies with
:meth:`LabModule.declare` (see :mod:`gan_lab.engine.spec`); then it implements the loss methods
its updates name and :meth:`LabModule.sample`. Everything else lives here, once:

* the schedule of updates per tick, the phase, the step count and ``max_steps``;
* freezing the networks outside the current update and ``no_sync`` of their DDP wrappers;
* the NaN/Inf guard (losses, gradient norms, weights; stop or skip, agreed across ranks),
  gradient-norm logging and clipping, mixed precision through Lightning's manual backward;
* EMA copies, LR schedules (one per optimizer group, a function of the step), logging;
* DDP wrappers per network (:mod:`gan_lab.engine.ddp`), ``torch.compile``, channels_last;
* the checkpointed state: counters, phase, RNG streams, family state.
"""

from __future__ import annotations

import random
import warnings
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any, Callable, Iterable

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.engine.ema import ema_update, make_copy, scheduled_decay
from gan_lab.engine.guard import DIVERGENCE_MODES, first_non_finite, total_norm
from gan_lab.engine.optim import build_optimizer, schedule_factor
from gan_lab.engine.spec import EMASpec, OptimGroup, Phase, RunOptions, Update
from gan_lab.errors import NonFiniteError, UserError

CHECKPOINT_FORMAT = 2
GRID_SEED = 1234  # sample grids draw from this seed every time, so a run's grids are comparable


class LabModule(L.LightningModule):
    """The training loop, parametrised by what a family declares.

    Args:
        name: the model's name (``model=<name>``), stored in checkpoints.
        data_info: the data set the model is built for.
        run: run-level settings (``max_steps``, logging interval, divergence policy, speed switches).
    """

    family = "base"
    sample_options: tuple[str, ...] = ()
    """Keyword options :meth:`sample` accepts (``truncation``, ...); others are a clear error."""
    augmentable = False
    """Whether the family passes D's inputs through :meth:`augment_images` (``augment=`` applies)."""

    def __init__(self, name: str, data_info: DataInfo, run: RunOptions | None = None) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.name = name
        self.data_info = data_info
        run = run or RunOptions()
        if run.divergence not in DIVERGENCE_MODES:
            raise UserError(f"divergence must be one of {', '.join(DIVERGENCE_MODES)}, got {run.divergence!r}")
        self.max_steps, self.log_every = int(run.max_steps), int(run.log_every)
        self.divergence = run.divergence
        self.compile, self.compile_backend = bool(run.compile), run.compile_backend
        self.channels_last = bool(run.channels_last) and data_info.modality == "image"
        self.lab_meta: dict[str, Any] = dict(run.meta)  # config + data info, saved in checkpoints
        from gan_lab.augment import build_augment

        # a submodule: ADA's p and its statistics are buffers, saved and restored with the weights
        self.augmenter = build_augment(run.augment, data_info, name, self.augmentable)

        self.nets = nn.ModuleDict()
        self.ema = nn.ModuleDict()
        self.groups: dict[str, OptimGroup] = {}
        self.updates: dict[str, Update] = {}
        self.phases: list[Phase] = []
        self.ema_specs: dict[str, EMASpec] = {}
        self.schedule, self.warmup, self.schedule_steps, self.schedule_hold = "constant", 0, self.max_steps, 0.0
        self.counters: dict[str, int] = {"tick": 0, "step": 0, "phase": 0, "phase_tick": 0}
        self.skipped_steps = 0  # updates skipped for NaN/Inf (divergence=skip)
        self.last_metrics: dict[str, float] = {}
        # Forward paths, kept outside the module registry so that state_dict keys never depend
        # on the strategy: DDP wrappers (strategy.configure_ddp) and torch.compile'd versions.
        self._ddp: dict[str, nn.Module] = {}
        self._compiled: dict[str, Callable] = {}

    # ------------------------------------------------------------------ declarations

    def add_net(self, name: str, module: nn.Module) -> nn.Module:
        self.nets[name] = module
        return module

    def declare(self, groups: Iterable[OptimGroup], updates: Iterable[Update], phases: Iterable[Phase] | None = None,
                ema: Iterable[EMASpec] = (), schedule: str = "constant", warmup: int = 0,
                schedule_steps: int | None = None, schedule_hold: float = 0.0) -> None:
        """What the family trains, how and when. Without ``phases`` there is one phase running
        every update in declared order until ``max_steps``. ``schedule`` (constant, linear,
        cosine; with ``warmup`` steps) is the LR factor of every group as a function of the
        step; it reaches its end at ``schedule_steps`` (``None``: ``max_steps``), holding the full
        rate for the ``schedule_hold`` fraction of them first."""
        self.groups = {g.name: g for g in groups}
        self.updates = {u.name: u for u in updates}
        self.phases = list(phases) if phases is not None else [Phase("train", tuple(self.updates))]
        self.schedule, self.warmup = schedule, int(warmup)
        if schedule_steps is not None and (isinstance(schedule_steps, bool) or int(schedule_steps) < 1):
            raise UserError(f"model.lr_schedule_steps must be a positive integer or null, got {schedule_steps!r}")
        self.schedule_steps = int(schedule_steps) if schedule_steps is not None else self.max_steps
        self.schedule_hold = schedule_hold
        schedule_factor(schedule, self.schedule_steps, warmup, schedule_hold)  # validates the name and hold
        for g in self.groups.values():
            missing = [n for n in g.nets if n not in self.nets]
            if missing:
                raise ValueError(f"optimizer group {g.name} names unknown networks {missing}")
        for u in self.updates.values():
            for g in u.groups:
                if g not in self.groups:
                    raise ValueError(f"update {u.name} names unknown optimizer group {g}")
            for method in (u.loss, u.after):
                if method is not None and not callable(getattr(self, method, None)):
                    raise ValueError(f"update {u.name} names {method}, which {type(self).__name__} does not have")
            self.counters.setdefault(u.name, 0)
        if not any(u.step for u in self.updates.values()):
            raise ValueError("no update is marked step=True: nothing would count the run's steps")
        for i, p in enumerate(self.phases):
            unknown = [u for u in p.updates if u not in self.updates]
            if unknown:
                raise ValueError(f"phase {p.name} names unknown updates {unknown}")
            if p.length is None and i < len(self.phases) - 1:
                raise ValueError(f"phase {p.name} has no length but is not the last phase")
            if p.length is None and not any(self.updates[u].step for u in p.updates):
                raise ValueError(f"phase {p.name} has no length and no step update: it would never end")
        for spec in ema:
            if spec.net not in self.nets:
                raise ValueError(f"EMA of unknown network {spec.net}")
            self.ema_specs[spec.net] = spec
            self.ema[spec.net] = make_copy(self.nets[spec.net])

    # ------------------------------------------------------------------ counters

    @property
    def step(self) -> int:
        """Steps done: runs of the updates marked ``step=True`` (for GANs, generator updates)."""
        return self.counters["step"]

    @property
    def phase(self) -> Phase:
        return self.phases[self.counters["phase"]]

    def at_step_boundary(self) -> bool:
        """True when the last tick completed a step (periodic checkpoints are taken there)."""
        return self._last_tick_stepped

    _last_tick_stepped = False

    def describe_position(self, update: Update | None = None) -> str:
        where = f"step {self.step + 1}"
        if update is not None:
            where += f" ({update.name} update {self.counters[update.name] + 1})"
        if len(self.phases) > 1:
            where += f", phase {self.phase.name}"
        return where

    # ------------------------------------------------------------------ forward paths

    def fwd(self, name: str, compiled: bool = True) -> Callable:
        """The callable to train network ``name`` with: compiled (``compile=true``) or its DDP
        wrapper or the network itself. ``compiled=False`` for paths that need double backward
        (gradient penalties), which compiled graphs do not support."""
        if compiled and name in self._compiled:
            return self._compiled[name]
        return self._ddp.get(name, self.nets[name])

    def trainable_nets(self) -> list[str]:
        """Networks with parameters to train (cached once training starts: this runs every update)."""
        if self._trainable is not None:
            return self._trainable
        return [n for n, m in self.nets.items() if any(p.requires_grad for p in m.parameters())]

    _trainable: list[str] | None = None

    def wrap_for_ddp(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Wrap every trainable network in DDP on its own, so each backward syncs exactly the
        networks it trains (called by :class:`gan_lab.engine.ddp.GANDDPStrategy`)."""
        self._ddp = {name: wrap(self.nets[name]) for name in self.trainable_nets()}
        self._compiled = {}

    def setup(self, stage: str) -> None:
        if self.channels_last:  # before the optimizers are built and DDP wraps the networks
            for module in list(self.nets.values()) + list(self.ema.values()):
                module.to(memory_format=torch.channels_last)
        trainer = self._trainer
        if stage == "fit" and trainer is not None and trainer.world_size > 1:
            # Every process was seeded alike, so the networks start identical. From here on each
            # process must draw its own latents (and other noise): otherwise every rank would
            # generate the very same fake batch and N processes would train on 1/N of the fakes
            # a batch of that global size should see. Rank 0 keeps the single-process stream.
            # A resumed run replaces these states with the ones saved for each rank.
            reseed_for_rank(trainer.global_rank)

    def on_fit_start(self) -> None:
        from lightning.pytorch.plugins.precision import MixedPrecision, Precision

        plugin = self.trainer.precision_plugin
        # the plain and the bf16 autocast plugins only call backward() and step(); fp16's scales
        # the loss and unscales before stepping, and other plugins do more: those keep Lightning's path
        self._direct = type(plugin) in (Precision, MixedPrecision) and getattr(plugin, "scaler", None) is None
        self._trainable = None
        self._trainable = self.trainable_nets()
        self._group_params = {g: [p for n in self.groups[g].nets for p in self.nets[n].parameters()] for g in self.groups}
        self._frozen_params = {
            groups: [p for n in self._trainable if n not in self._update_nets(groups) for p in self.nets[n].parameters()
                     if p.requires_grad]
            for groups in {(g,) for g in self.groups} | {u.groups for u in self.updates.values()}
        }
        if self.compile:  # after DDP wrapping (strategy.setup), so the wrappers get compiled
            self._compiled = {n: torch.compile(self.fwd(n, compiled=False), backend=self.compile_backend)
                              for n in self.trainable_nets()}

    # ------------------------------------------------------------------ optimizers

    def configure_optimizers(self):
        optimizers = []
        for g in self.groups.values():
            params = [p for n in g.nets for p in self.nets[n].parameters()]
            optimizers.append(build_optimizer(params, g.optimizer))
        factor = schedule_factor(self.schedule, self.schedule_steps, self.warmup, self.schedule_hold)
        schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in optimizers]
        return optimizers, schedulers

    def _optimizer(self, group: str):
        optimizers = self.optimizers()
        if not isinstance(optimizers, (list, tuple)):
            optimizers = [optimizers]
        return optimizers[list(self.groups).index(group)]

    def _schedulers(self) -> list:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return list(schedulers) if isinstance(schedulers, (list, tuple)) else [schedulers]

    def group_parameters(self, group: str) -> list[nn.Parameter]:
        if self._group_params is not None:
            return self._group_params[group]
        return [p for n in self.groups[group].nets for p in self.nets[n].parameters()]

    _group_params: dict[str, list] | None = None
    _frozen_params: dict[tuple[str, ...], list] | None = None

    # ------------------------------------------------------------------ the loop

    def prepare_batch(self, batch: Batch) -> Batch:
        """Hook: adjust a batch before the updates see it (memory format here; families may
        add checks)."""
        if self.channels_last and batch.x.dim() == 4:
            batch.x = batch.x.contiguous(memory_format=torch.channels_last)
        return batch

    def on_train_batch_start(self, batch, batch_idx):
        if self.step >= self.max_steps:
            self.trainer.should_stop = True
            return -1

    def training_step(self, batch, batch_idx):
        batch = self.prepare_batch(Batch.of(batch))
        phase = self.phase
        tick = self.counters["phase_tick"]
        due = [self.updates[u] for u in phase.updates if (tick + 1) % self.updates[u].every == 0]
        steps = sum(1 for u in due if u.step)
        will_log = steps > 0 and self.log_due(self.step + steps)
        logs: dict[str, Tensor | float] = {}
        for update in due:
            logs.update(self.apply_update(update, batch, will_log))
        self.counters["tick"] += 1
        self.counters["phase_tick"] += 1
        if phase.length is not None and self.counters["phase_tick"] >= phase.length:
            self.counters["phase"] += 1
            self.counters["phase_tick"] = 0
            self.on_phase_start(self.phase)
        self._last_tick_stepped = steps > 0
        if steps:
            for scheduler in self._schedulers():
                scheduler.step()
            self.update_ema()
            if will_log:
                self.record_metrics(logs)
        if self.step >= self.max_steps:
            self.trainer.should_stop = True

    def on_phase_start(self, phase: Phase) -> None:
        """Hook: called when training enters a new phase (after the first)."""

    def log_due(self, step: int) -> bool:
        """Whether the losses of ``step`` are logged: every ``log_every`` steps, and always the
        run's final step."""
        return step % self.log_every == 0 or step == self.max_steps

    def _update_nets(self, groups: tuple[str, ...]) -> set[str]:
        return {n for g in groups for n in self.groups[g].nets}

    def apply_update(self, update: Update, batch: Batch, will_log: bool) -> dict:
        """One optimizer step of ``update``'s group(s): the loss with every other network frozen,
        the guard, the step, the after-step hook."""
        trained = self._update_nets(update.groups)
        optimizers = [self._optimizer(g) for g in update.groups]
        frozen = [n for n in self.trainable_nets() if n not in trained]
        if self._frozen_params is not None:
            was_trainable = self._frozen_params[update.groups]
        else:
            was_trainable = [p for n in frozen for p in self.nets[n].parameters() if p.requires_grad]
        for p in was_trainable:
            p.requires_grad_(False)
        try:
            with ExitStack() as stack:
                for name in frozen:  # their wrappers must not expect a gradient all-reduce
                    wrapper = self._ddp.get(name)
                    if wrapper is not None and hasattr(wrapper, "no_sync"):
                        stack.enter_context(wrapper.no_sync())
                loss, logs = getattr(self, update.loss)(batch)
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                # backward unconditionally: a NaN/Inf loss gives NaN/Inf gradients, and the guard
                # below checks loss terms and gradient norm with one device sync
                self.backward_loss(loss)
        finally:
            for p in was_trainable:
                p.requires_grad_(True)
        terms = {f"{update.name}_loss": loss, **logs}
        skipped = self.skipped_steps
        for name, optimizer in zip(update.groups, optimizers):
            self.guarded_step(update, self.groups[name], optimizer, terms, logs if will_log else None)
        self.skipped_steps = min(self.skipped_steps, skipped + 1)  # one update skipped, however many groups
        if update.after is not None:
            getattr(self, update.after)()
        self.counters[update.name] += 1
        if update.step:
            self.counters["step"] += 1
        return logs

    # ------------------------------------------------------------------ divergence guard

    def guarded_step(self, update: Update, group: OptimGroup, optimizer, terms: dict, logs: dict | None) -> None:
        """Step ``optimizer`` unless a loss term or the gradients are NaN/Inf (one device sync for
        all of them; under DDP all ranks agree); clip the gradient norm if the group asks.

        Weights are checked where a bad value could be kept: before every checkpoint and at every
        logged step (:meth:`check_weights`); NaN/Inf weights between those points make the next
        update's loss NaN/Inf, which stops or skips here."""
        params = self.group_parameters(group.name)
        norm = total_norm(p.grad for p in params)
        if logs is not None:
            # an update stepping several groups logs one norm per extra group
            key = update.name if group.name == update.group else f"{update.name}_{group.name}"
            logs[f"{key}_grad_norm"] = norm
        scaler = getattr(getattr(self._trainer, "precision_plugin", None), "scaler", None)
        # under fp16 loss scaling Inf gradients are expected: the scaler skips those steps
        flags = [] if scaler is not None else [torch.isfinite(norm)]
        flags += [torch.isfinite(v.detach()).all() for v in terms.values() if torch.is_tensor(v)]
        ok = bool(torch.stack(flags).all()) if flags else True
        bad = None if ok else self.describe_non_finite(update, terms, norm)
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            # losses differ per rank: all ranks must agree to skip or stop, or DDP would hang
            if trainer.strategy.reduce_boolean_decision(not ok, all=False):
                bad = bad or "a loss or gradient is NaN/Inf on another process"
        if bad is not None:
            self.skip_update(update, optimizer, bad)
            return
        if group.clip_grad_norm:
            self.clip_gradients(optimizer, gradient_clip_val=group.clip_grad_norm, gradient_clip_algorithm="norm")
        if self._direct:
            optimizer.optimizer.step()
        else:
            optimizer.step()

    _direct = False

    def backward_loss(self, loss: Tensor) -> None:
        """Backward through Lightning's precision plugin, or directly where that plugin would do
        nothing but call it (no loss scaler): with small networks Lightning's per-update wrappers
        cost several percent of a step (benchmarks/speed_loop.py)."""
        if self._direct:
            loss.backward()
        else:
            self.manual_backward(loss)

    @staticmethod
    def describe_non_finite(update: Update, terms: dict, norm: Tensor) -> str:
        ok, what = first_non_finite(terms)
        return what if not ok else f"{update.name} gradient norm is {float(norm)}"

    def check_weights(self) -> None:
        """NaN/Inf weights cannot be skipped: stop (called before checkpoints and at logged steps)."""
        for name in self.trainable_nets():
            norm = total_norm(self.nets[name].parameters())
            if not bool(torch.isfinite(norm)):
                raise NonFiniteError(f"diverged at step {self.step}: {name} weights are {float(norm)} (norm)")

    def skip_update(self, update: Update, optimizer, what: str) -> None:
        if self.divergence == "stop":
            raise NonFiniteError(f"diverged at {self.describe_position(update)}: {what}")
        optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        warnings.warn(f"divergence=skip: skipped the update at {self.describe_position(update)}: {what}",
                      stacklevel=2)

    # ------------------------------------------------------------------ augmentation

    def augment_images(self, *images: Tensor):
        """D's inputs through the run's augmentation (``augment=``; unchanged without one). Every
        tensor gets the same random draws (an image and its condition stay aligned)."""
        if self.augmenter is None:
            return images[0] if len(images) == 1 else images
        return self.augmenter(*images)

    def observe_real_logits(self, logits: Tensor) -> None:
        """D's real/fake logits on a real batch, for ADA's heuristic (a no-op otherwise)."""
        if self.augmenter is not None:
            self.augmenter.observe(logits)

    # ------------------------------------------------------------------ EMA

    def ema_decay(self, spec: EMASpec, step: int) -> float:
        """The decay of an EMA copy after ``step`` steps; families with their own schedule override it."""
        return scheduled_decay(spec, step)

    def update_ema(self) -> None:
        for name, spec in self.ema_specs.items():
            ema_update(self.ema[name], self.nets[name], self.ema_decay(spec, self.step))

    # ------------------------------------------------------------------ logging

    def record_metrics(self, logs: dict) -> None:
        self.check_weights()
        metrics = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in logs.items()}
        for key, value in metrics.items():
            if not np.isfinite(value) and self.divergence == "stop":  # skip: a skipped update logs NaN
                raise NonFiniteError(f"diverged at step {self.step}: {key} is {value}")
        for group, scheduler in zip(self.groups, self._schedulers()):
            metrics[f"lr/{group}"] = scheduler.get_last_lr()[0]
        if self.skipped_steps:
            metrics["skipped_steps"] = float(self.skipped_steps)
        if self.augmenter is not None:
            metrics.update(self.augmenter.log_values())
        self.last_metrics = metrics
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.step)

    def on_train_end(self) -> None:
        if self.trainer.world_size > 1:
            self.check_ranks_in_sync()

    def check_ranks_in_sync(self) -> float:
        """Compare all weights across ranks; they must be identical after data-parallel
        training. Writes ``ddp_sync.json`` in the run directory and warns on any difference."""
        import json

        flat = torch.cat([p.detach().flatten() for p in self.parameters()])
        # the plain collective: Lightning's all_gather goes through the autograd-aware one
        # (deprecated in torch, with a warning on every rank), and no gradient is wanted here
        gathered = [torch.empty_like(flat) for _ in range(self.trainer.world_size)]
        torch.distributed.all_gather(gathered, flat)
        gathered = torch.stack(gathered)
        diff = float((gathered - gathered[0]).abs().max())
        if self.trainer.is_global_zero:
            path = f"{self.trainer.default_root_dir}/ddp_sync.json"
            with open(path, "w") as f:
                json.dump({"world_size": self.trainer.world_size, "max_abs_weight_diff": diff, "step": self.step}, f)
            if diff > 0:
                warnings.warn(f"weights differ across DDP ranks by up to {diff:g}")
        return diff

    # ------------------------------------------------------------------ sampling

    def sampling_net(self, name: str, use_ema: bool = True) -> nn.Module:
        """The EMA copy of network ``name`` where there is one (and ``use_ema``), else the network."""
        return self.ema[name] if use_ema and name in self.ema else self.nets[name]

    @contextmanager
    def sampling_mode(self, *modules: nn.Module, train: bool = False):
        """Run ``modules`` in eval mode (or train mode) without gradients, restoring their modes."""
        modes = [m.training for m in modules]
        for m in modules:
            m.train(train)
        try:
            with torch.no_grad():
                yield
        finally:
            for m, mode in zip(modules, modes):
                m.train(mode)

    def check_sample_options(self, options: dict) -> None:
        unknown = [k for k, v in options.items() if v is not None and k not in self.sample_options]
        if unknown:
            takes = ", ".join(self.sample_options) or "none"
            raise UserError(f"model={self.name} does not take {', '.join(unknown)} when sampling (it takes: {takes})")

    def condition_for(self, labels: Any, n: int) -> Any:
        """The condition ``sample`` takes for a user's ``labels=`` request (all | k | [k1, ...]);
        only conditional families have one."""
        raise UserError(f"model={self.name} is unconditional: labels= applies to conditional models only")

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, **options) -> Batch:
        """``n`` samples as a :class:`Batch` (``x``; ``y`` the labels they were drawn for, for
        conditional models). The same ``generator`` state gives the same samples: every random
        draw comes from it, never from the training streams."""
        raise NotImplementedError

    def evaluation_sample(self, n: int, generator: torch.Generator, data: Any = None, *, use_ema: bool = True,
                          **options) -> Batch:
        """What the metrics score: by default ``n`` fresh samples. Families whose samples depend on
        data (translations of test inputs, reconstructions) override it and read ``data`` (the data
        module)."""
        return self.sample(n, generator, use_ema=use_ema, **options)

    def grid(self, generator: torch.Generator) -> tuple[Batch, int | None, list[str] | None]:
        """What a sample grid shows: (samples, images per row, a label per row). Families with
        rows of meaning (classes, translation triplets) override it."""
        from gan_lab.modalities import get_modality

        count = getattr(get_modality(self.data_info), "figure_samples", 64)
        return self.sample(count, generator), None, None

    def figures(self, directory: str, step: int) -> dict[str, str]:
        """Hook: pictures beyond the sample grid, written into ``directory`` at every grid
        (reconstructions, code scatters, interpolations); returns ``{logger key: path}``. Like
        :meth:`grid` it must draw from generators of its own and leave training state untouched."""
        return {}

    # ------------------------------------------------------------------ checkpoint state

    def family_state(self) -> dict:
        """Hook: family state that is neither a parameter nor a buffer (saved in checkpoints)."""
        return {}

    def load_family_state(self, state: dict) -> None:
        """Hook: restore :meth:`family_state`."""

    def rank_state(self) -> dict:
        """What differs between DDP processes and a checkpoint must hold for each of them: the
        random streams and the family state (CycleGAN's image pools, jitter streams)."""
        return {
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
            "family_state": self.family_state(),
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        mine = self.rank_state()
        trainer = self._trainer
        per_rank = None
        if trainer is not None and trainer.world_size > 1:
            # every process takes part in a save (the lab's checkpoints are written from a
            # collective call), so each one's streams can be gathered into rank 0's file
            per_rank = [None] * trainer.world_size
            torch.distributed.all_gather_object(per_rank, mine)
        checkpoint["gan_lab"] = {
            **self.lab_meta,
            "format": CHECKPOINT_FORMAT,
            "model": self.name,
            "family": self.family,
            "counters": dict(self.counters),
            "phase": self.phase.name,
            "skipped_steps": self.skipped_steps,
            # rank 0's, also what a run on another number of processes resumes from
            "family_state": mine["family_state"],
            "rng": mine["rng"],
            "per_rank": per_rank,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        meta = checkpoint.get("gan_lab", {})
        self.load_counters(meta)
        self.skipped_steps = int(meta.get("skipped_steps", 0))
        trainer = self._trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        per_rank = meta.get("per_rank")
        own = per_rank[rank] if per_rank and len(per_rank) == world else None
        state = own or {"rng": meta.get("rng"), "family_state": meta.get("family_state")}
        self.load_family_state(state.get("family_state") or {})
        # Lightning restores the checkpoint after run() seeded everything and before the first
        # batch; nothing draws from these generators in between, so the resumed run continues
        # the uninterrupted run's random streams exactly (tests/test_resume.py), on every rank
        # when the number of processes is the one that saved it.
        rng = state.get("rng")
        if rng:
            torch.set_rng_state(rng["torch"])
            if rng.get("cuda") is not None and torch.cuda.is_available():
                try:
                    torch.cuda.set_rng_state_all(rng["cuda"])
                except (RuntimeError, IndexError):  # another number of GPUs: keep the seeded state
                    pass
            np.random.set_state(rng["numpy"])
            random.setstate(rng["python"])
        if own is None and rank > 0:
            # another number of processes than the one that saved: every rank got rank 0's
            # streams, so give the others their own again (no longer an exact continuation)
            reseed_for_rank(rank, salt=self.counters["tick"])

    def load_counters(self, meta: dict) -> None:
        counters = meta.get("counters") or {}
        for key in self.counters:
            self.counters[key] = int(counters.get(key, 0))


def reseed_for_rank(rank: int, salt: int = 0) -> None:
    """Give DDP process ``rank`` (> 0) random streams of its own, derived from the run's seed;
    rank 0 keeps its streams, so its draws are those of a single-process run."""
    if rank == 0:
        return
    seed = (torch.initial_seed() + 1_000_003 * rank + 7_919 * salt) % 2**32
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
