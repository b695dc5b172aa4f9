"""What a family declares to the engine: optimizer groups, updates, phases, EMA copies.

A *tick* is one training batch. In every tick the engine runs, in declared order, each update of
the current phase that is due: update ``u`` runs at tick ``t`` (0-based, counted within the
phase) when ``(t + 1) % u.every == 0``. So ``Update("d", every=1)`` runs every batch and
``Update("g", every=5)`` after every fifth D update (WGAN's n_critic = 5).

A *step* (what ``trainer.max_steps``, logs, checkpoints and LR schedules count) is one run of an
update marked ``step=True``: for GANs the generator update. Phases run one after another; a phase
with a ``length`` ends after that many ticks, the last one runs until ``max_steps`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OptimGroup:
    """One optimizer (and one LR schedule, logged as ``lr/<name>``) over the parameters of ``nets``."""

    name: str
    nets: tuple[str, ...]
    optimizer: dict[str, Any]
    """``{"name": "adam", "lr": ..., "betas": [...], ...}`` (see :func:`gan_lab.engine.optim.build_optimizer`)."""
    clip_grad_norm: float | None = None
    """Clip the group's gradient norm to this value before stepping (``None``: no clipping)."""


@dataclass(frozen=True)
class Update:
    """One optimizer step of one group, computed by the family method named ``loss``.

    ``loss`` names a method ``(batch) -> (loss tensor, logs dict)``. While it runs, every network
    outside ``group`` is frozen (no parameter gradients, no DDP gradient sync). ``after`` names an
    optional method called after the optimizer step (WGAN's weight clipping). ``also`` names
    further groups stepped from the same backward pass (joint optimisation: GLO's generator with
    its table of per-image codes, each with its own optimizer).
    """

    name: str
    group: str
    loss: str
    every: int = 1
    step: bool = False
    after: str | None = None
    also: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if int(self.every) < 1:
            raise ValueError(f"update {self.name}: every must be >= 1, got {self.every}")
        object.__setattr__(self, "also", tuple(self.also))

    @property
    def groups(self) -> tuple[str, ...]:
        """Every optimizer group this update steps: ``group`` first, then ``also``."""
        return (self.group, *self.also)


@dataclass(frozen=True)
class Phase:
    """An ordered stage of training (SeqGAN's MLE pre-training, say): its updates and its length
    in ticks (``None``: until ``max_steps``)."""

    name: str
    updates: tuple[str, ...]
    length: int | None = None


@dataclass(frozen=True)
class EMASpec:
    """An exponential moving average of network ``net``, used for sampling where it exists.

    Before ``start`` steps the copy follows the network exactly. With ``rampup="tf"`` the decay
    grows as ``(1 + t) / (10 + t)`` (TensorFlow's num_updates rule) up to ``decay``, so early
    weights are forgotten quickly; with ``None`` it is ``decay`` from the start. Families with
    their own schedule (StyleGAN's half-life in images) override ``LabModule.ema_decay``.
    """

    net: str
    decay: float
    start: int = 0
    rampup: str | None = "tf"


@dataclass(frozen=True)
class RunOptions:
    """Run-level settings every family gets from the run config (not from ``model.*``)."""

    max_steps: int = 1000
    log_every: int = 50
    divergence: str = "stop"
    compile: bool = False
    compile_backend: str = "inductor"
    channels_last: bool = False
    augment: dict | None = None
    """The ``augment`` config (``{name: none|diffaugment|ada, ...}``): what D's inputs go through."""
    meta: dict = field(default_factory=dict, compare=False)
    """The run's config and data info, saved in every checkpoint."""
