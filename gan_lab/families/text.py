"""The text family: PassGAN (IWGAN on characters), SeqGAN and its maximum-likelihood baseline.

Token data only (``DataInfo.modality == "tokens"``: ``passwords``, ``words``, ``text_lines``,
``oracle_lstm``); samples are int64 token ids ``(n, L)``, decoded by ``DataInfo.vocab``.

* :class:`PassGAN` (``model=passgan``): the adversarial family (:class:`AdversarialGAN`) with the
  IWGAN-text networks of :mod:`gan_lab.networks.text` (``model.net.arch=conv1d``): the critic
  sees one-hot real and softmax fake sequences ``(B, L, V)``; WGAN-GP by default. Samples
  decode by argmax.
* :class:`SequenceLM` (``model=mle_lstm``): SeqGAN's LSTM generator trained by maximum
  likelihood only (one update ``g_mle`` per batch, the step).
* :class:`SeqGAN` (``model=seqgan``): the same generator, and a CNN discriminator, in three
  phases (lengths in batches; a phase of length 0 is left out):

  ========== ============================== ==================================================
  phase      updates per batch              what
  ========== ============================== ==================================================
  pretrain_g ``g_mle`` (step)               MLE on the real batch
  pretrain_d ``d_pre`` (step)               D on the real batch vs negatives from G
  adversarial ``d`` every batch, then       D as above; every ``d_steps_per_g``-th batch one
             ``g_pg`` every                 REINFORCE update of G (the step) with Monte-Carlo
             ``d_steps_per_g`` (step)       rollout rewards, then the rollout copy moves
                                            towards G (delay δ) and the negatives go stale
  ========== ============================== ==================================================

  A step is one run of ``g_mle``, ``d_pre`` or ``g_pg``, so ``trainer.max_steps`` =
  ``pretrain_g_steps + pretrain_d_steps +`` the G updates of the adversarial phase.
  Negatives come from a pool of ``negatives.pool`` sequences sampled from G, read ``epochs``
  times in shuffled order and then sampled again, and always sampled again after a G update
  (SeqGAN: 10,000 negatives, 3 epochs); ``pool: null`` samples fresh negatives for every D
  update. The rollout copy is a frozen module of the family (``rollout``, in the state dict,
  never DDP-wrapped); the pool is family state: a run stopped in any phase resumes exactly.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_lab import checks
from gan_lab.app import log
from gan_lab.data.batch import Batch
from gan_lab.data.info import DataInfo
from gan_lab.engine import LabModule, OptimGroup, Phase, RunOptions, Update
from gan_lab.errors import UserError
from gan_lab.families.adversarial import AdversarialGAN
from gan_lab.losses.text import make_rollout, mle_loss, reinforce_loss, rollout_rewards, update_rollout_
from gan_lab.metrics.text import ScoredSamples
from gan_lab.networks.text import SeqDiscriminator, SeqGenerator, argmax_decode, one_hot

TEXT_DATA = "data=passwords, words, text_lines or oracle_lstm"
SEQGAN_G_OPTIMIZER = {"name": "adam", "lr": 0.01, "betas": [0.9, 0.999]}
SEQGAN_D_OPTIMIZER = {"name": "adam", "lr": 1.0e-4, "betas": [0.9, 0.999]}


def require_tokens(name: str, info: DataInfo) -> None:
    """A text model on other data: one line, before anything is built."""
    if info.modality != "tokens":
        raise UserError(f"model={name} is a text model: it needs token data ({TEXT_DATA}), but data {info.name} "
                        f"is {info.modality} data; use an image model for it")


def _settings(cfg: Any, key: str, allowed: tuple[str, ...]) -> dict:
    cfg = dict(checks.mapping(cfg, key) or {})
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise UserError(f"{key} has no setting {unknown[0]!r}; it takes: {', '.join(allowed)}")
    return cfg


# ------------------------------------------------------------------------------------------------
# PassGAN
# ------------------------------------------------------------------------------------------------
class PassGAN(AdversarialGAN):
    """IWGAN for text (Gulrajani et al. 2017) as PassGAN uses it (Hitaj et al. 2019); every
    option of :class:`AdversarialGAN` applies (loss, penalty, n_critic, optimizers, EMA)."""

    family = "text"

    def __init__(self, name: str, data_info: DataInfo, run: RunOptions | None = None, **kwargs) -> None:
        require_tokens(name, data_info)
        if kwargs.get("pack", 1) != 1:
            raise UserError(f"model={name} takes no PacGAN packing: model.pack must be 1, got {kwargs['pack']!r}")
        super().__init__(name, data_info, run, **kwargs)
        self.vocab_size = len(data_info.vocab)

    def build_networks(self, net: dict | None):
        arch = (net or {}).get("arch", "auto")
        if arch not in ("auto", "conv1d"):
            raise UserError(f"model={self.name} takes the text networks only: model.net.arch=conv1d (or auto), "
                            f"got {arch}")
        return super().build_networks(net)

    def prepare_batch(self, batch: Batch) -> Batch:
        """Real sequences as the critic sees them: one-hot ``(B, L, V)`` floats."""
        batch = super().prepare_batch(batch)
        if not batch.x.dtype.is_floating_point:
            batch.x = one_hot(batch.x, self.vocab_size)
        return batch

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, **options) -> Batch:
        """Token ids ``(n, L)``: the argmax of G's softmax at every position."""
        probs = super().sample(n, generator, condition, use_ema=use_ema, **options).x
        return Batch(argmax_decode(probs))


# ------------------------------------------------------------------------------------------------
# SeqGAN's generator trained by maximum likelihood (mle_lstm), and SeqGAN
# ------------------------------------------------------------------------------------------------
def resolve_pad_mode(pad_mode: str, info: DataInfo) -> str:
    """``auto``: ``forbid`` for data without padding (the oracle), else ``end`` (padding ends a
    sequence: passwords, words, lines)."""
    pad_mode = checks.choice(pad_mode, "model.pad_mode", ("auto", "end", "forbid"))
    if pad_mode == "auto":
        return "forbid" if "oracle" in info.extras else "end"
    return pad_mode


class SequenceLM(LabModule):
    """An LSTM language model over the data's tokens (SeqGAN's generator), trained by maximum
    likelihood: ``model=mle_lstm``, SeqGAN's baseline, and the base of :class:`SeqGAN`."""

    family = "text"

    def __init__(self, name: str, data_info: DataInfo, run: RunOptions | None = None,
                 generator: dict | None = None, g_optimizer: dict | None = None, grad_clip: float | None = 5.0,
                 pad_mode: str = "auto", lr_schedule: str = "constant", lr_warmup: int = 0,
                 lr_schedule_steps: int | None = None) -> None:
        require_tokens(name, data_info)
        super().__init__(name, data_info, run)
        self.pad_mode = resolve_pad_mode(pad_mode, data_info)
        g_cfg = _settings(generator, "model.generator", ("emb_dim", "hidden_dim", "init_std"))
        self.add_net("generator", SeqGenerator(len(data_info.vocab), int(data_info.shape[0]),
                                               pad_mode=self.pad_mode, **g_cfg))
        self.grad_clip = checks.optional_number(grad_clip, "model.grad_clip", positive=True)
        self.g_optimizer = dict(checks.mapping(g_optimizer, "model.g_optimizer") or SEQGAN_G_OPTIMIZER)
        self.schedule_args = {"schedule": lr_schedule,
                              "warmup": checks.integer(lr_warmup, "model.lr_warmup", minimum=0),
                              "schedule_steps": lr_schedule_steps}
        self.declare_training()

    def declare_training(self) -> None:
        self.declare(groups=[OptimGroup("g_mle", ("generator",), self.g_optimizer, self.grad_clip)],
                     updates=[Update("g_mle", "g_mle", "mle_update", step=True)], **self.schedule_args)

    @property
    def generator(self) -> SeqGenerator:
        return self.nets["generator"]

    # ------------------------------------------------------------------ updates

    def mle_update(self, batch: Batch) -> tuple[Tensor, dict]:
        """Teacher-forced maximum likelihood on the real batch (nats per scored token)."""
        x = batch.x
        log_probs = self.fwd("generator")(x)
        loss = mle_loss(log_probs, self.generator.scored_mask(x))
        return loss, {"g_loss": loss, "mle_nll": loss.detach()}

    # ------------------------------------------------------------------ sampling

    def sample(self, n: int, generator: torch.Generator | None = None, condition: Any = None, *,
               use_ema: bool = True, **options) -> Batch:
        self.check_sample_options(options)
        if condition is not None:
            raise UserError(f"model={self.name} is unconditional: it takes no labels or other condition")
        g = self.generator
        with self.sampling_mode(g):
            return Batch(g.sample(n, generator))

    def log_prob(self, tokens: Tensor, batch_size: int = 1024) -> Tensor:
        """``(N,)`` float64 ``log G(x)`` in nats of token rows ``x`` (on any device)."""
        g = self.generator
        out = []
        with self.sampling_mode(g):
            for part in tokens.split(batch_size):
                out.append(g.sequence_log_prob(part.to(self.device).long()).double().cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    def evaluation_sample(self, n: int, generator: torch.Generator, data: Any = None, *, use_ema: bool = True,
                          **options) -> Batch:
        """Samples that carry the model's likelihood, for ``nll_test``."""
        x = self.sample(n, generator, use_ema=use_ema, **options).x
        return ScoredSamples(x, log_prob=self.log_prob)


class NegativePool:
    """SeqGAN's negative examples for D: ``size`` sequences sampled from G, served ``epochs``
    times over in a shuffled order, then sampled again; :meth:`invalidate` (after every G update)
    makes the next request sample again. ``size=None``: every request gets fresh samples.
    Draws from the global RNG (which checkpoints restore); its own state is :meth:`state_dict`."""

    def __init__(self, size: int | None, epochs: int) -> None:
        self.size, self.epochs = size, epochs
        self.samples: Tensor | None = None
        self.order: Tensor | None = None
        self.cursor = 0
        self.passes = 0

    def invalidate(self) -> None:
        self.samples = self.order = None
        self.cursor = self.passes = 0

    def take(self, n: int, sample: Callable[[int], Tensor]) -> Tensor:
        if self.size is None:
            return sample(n)
        if self.samples is None:
            self.samples = sample(self.size)
            self.order = torch.randperm(self.size)
            self.cursor = self.passes = 0
        elif self.cursor + n > self.size:  # the pass is over
            self.passes += 1
            if self.passes >= self.epochs:
                self.invalidate()
                return self.take(n, sample)
            self.order = torch.randperm(self.size)
            self.cursor = 0
        index = self.order[self.cursor:self.cursor + n]
        self.cursor += n
        return self.samples[index.to(self.samples.device)]

    def state_dict(self) -> dict:
        return {"samples": self.samples, "order": self.order, "cursor": self.cursor, "passes": self.passes}

    def load_state_dict(self, state: dict) -> None:
        self.samples, self.order = state.get("samples"), state.get("order")
        self.cursor, self.passes = int(state.get("cursor", 0)), int(state.get("passes", 0))


class SeqGAN(SequenceLM):
    """SeqGAN (Yu et al. 2017): MLE pre-training, D pre-training, then REINFORCE with rollout
    rewards (module docstring)."""

    def __init__(self, name: str, data_info: DataInfo, run: RunOptions | None = None,
                 generator: dict | None = None, discriminator: dict | None = None,
                 g_optimizer: dict | None = None, pg_optimizer: dict | None = None, d_optimizer: dict | None = None,
                 grad_clip: float | None = 5.0, d_l2: float = 0.2, pad_mode: str = "auto",
                 pretrain_g_steps: int = 1000, pretrain_d_steps: int = 200, d_steps_per_g: int = 5,
                 rollouts: int = 16, rollout_delay: float = 0.8, negatives: dict | None = None,
                 pg_reduction: str = "sum", lr_schedule: str = "constant", lr_warmup: int = 0,
                 lr_schedule_steps: int | None = None) -> None:
        require_tokens(name, data_info)
        self.pretrain_g_steps = checks.integer(pretrain_g_steps, "model.pretrain_g_steps", minimum=0)
        self.pretrain_d_steps = checks.integer(pretrain_d_steps, "model.pretrain_d_steps", minimum=0)
        self.d_steps_per_g = checks.integer(d_steps_per_g, "model.d_steps_per_g", minimum=1)
        self.rollouts = checks.integer(rollouts, "model.rollouts", minimum=1)
        self.rollout_delay = checks.number(rollout_delay, "model.rollout_delay", minimum=0)
        if self.rollout_delay > 1:
            raise UserError(f"model.rollout_delay must be a number in [0, 1], got {rollout_delay!r}")
        self.d_l2 = checks.number(d_l2, "model.d_l2", minimum=0)
        self.pg_reduction = checks.choice(pg_reduction, "model.pg_reduction", ("mean", "sum"))
        neg = _settings(negatives, "model.negatives", ("pool", "epochs"))
        pool = neg.get("pool", 10_000)
        pool = None if pool is None else checks.integer(pool, "model.negatives.pool", minimum=1)
        self._pool_args = (pool, checks.integer(neg.get("epochs", 3), "model.negatives.epochs", minimum=1))
        self.pg_optimizer = dict(checks.mapping(pg_optimizer, "model.pg_optimizer") or
                                 checks.mapping(g_optimizer, "model.g_optimizer") or SEQGAN_G_OPTIMIZER)
        self.d_optimizer = dict(checks.mapping(d_optimizer, "model.d_optimizer") or SEQGAN_D_OPTIMIZER)
        self._d_cfg = _settings(discriminator, "model.discriminator",
                                ("emb_dim", "filter_widths", "num_filters", "dropout", "highway"))
        super().__init__(name, data_info, run, generator=generator, g_optimizer=g_optimizer, grad_clip=grad_clip,
                         pad_mode=pad_mode, lr_schedule=lr_schedule, lr_warmup=lr_warmup,
                         lr_schedule_steps=lr_schedule_steps)
        pretraining = self.pretrain_g_steps + self.pretrain_d_steps
        if self.max_steps < pretraining:
            log.warning(f"gan_lab: warning: model={name}: trainer.max_steps={self.max_steps} ends in pre-training "
                        f"(pretrain_g_steps={self.pretrain_g_steps} + pretrain_d_steps={self.pretrain_d_steps} "
                        f"steps come first); the adversarial phase needs trainer.max_steps > {pretraining}")

    def declare_training(self) -> None:
        info = self.data_info
        cfg = self._d_cfg
        if "filter_widths" in cfg:
            cfg["filter_widths"] = list(cfg["filter_widths"])
        if "num_filters" in cfg:
            cfg["num_filters"] = list(cfg["num_filters"])
        self.add_net("discriminator", SeqDiscriminator(len(info.vocab), int(info.shape[0]), **cfg))
        # the rollout network: a frozen copy of G, a module of the family (saved in the state
        # dict) but not a network of the engine (never trained, never DDP-wrapped)
        self.rollout = make_rollout(self.generator)
        self.negatives = NegativePool(*self._pool_args)
        phases = []
        if self.pretrain_g_steps:
            phases.append(Phase("pretrain_g", ("g_mle",), self.pretrain_g_steps))
        if self.pretrain_d_steps:
            phases.append(Phase("pretrain_d", ("d_pre",), self.pretrain_d_steps))
        phases.append(Phase("adversarial", ("d", "g_pg")))
        self.declare(
            groups=[OptimGroup("g_mle", ("generator",), self.g_optimizer, self.grad_clip),
                    OptimGroup("g_pg", ("generator",), self.pg_optimizer, self.grad_clip),
                    OptimGroup("d", ("discriminator",), self.d_optimizer)],
            updates=[Update("g_mle", "g_mle", "mle_update", step=True),
                     Update("d_pre", "d", "discriminator_update", step=True),
                     Update("d", "d", "discriminator_update"),
                     Update("g_pg", "g_pg", "policy_gradient_update", every=self.d_steps_per_g, step=True,
                            after="after_policy_step")],
            phases=phases,
            **self.schedule_args,
        )

    @property
    def discriminator(self) -> SeqDiscriminator:
        return self.nets["discriminator"]

    # ------------------------------------------------------------------ checks before training

    def on_fit_start(self) -> None:
        super().on_fit_start()
        # every group's LR schedule is a function of the step and steps with it, also in phases
        # where the group's optimizer has not stepped yet: torch's order warning does not apply
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
        pool = self.negatives.size
        batch_size = getattr(getattr(self.trainer, "datamodule", None), "batch_size", None)
        if pool is not None and batch_size is not None and pool < batch_size:
            raise UserError(f"model.negatives.pool={pool} is smaller than data.batch_size={batch_size}: "
                            "a D batch takes as many negatives as real sequences")

    # ------------------------------------------------------------------ phases

    def on_phase_start(self, phase: Phase) -> None:
        if phase.name == "adversarial":  # SeqGAN builds its rollout network from the pre-trained G
            self.rollout.load_state_dict(self.generator.state_dict())
        self.negatives.invalidate()  # negatives of the G of the new phase

    # ------------------------------------------------------------------ updates

    @torch.no_grad()
    def _generate(self, n: int, chunk: int = 1024) -> Tensor:
        g = self.generator
        return torch.cat([g.sample(min(chunk, n - i)) for i in range(0, n, chunk)])

    def discriminator_update(self, batch: Batch) -> tuple[Tensor, dict]:
        """Binary cross-entropy of D on the real batch (label 1) and as many negatives (label 0),
        plus ``d_l2`` times the L2 of D's output layer (SeqGAN's ``l2_reg_lambda``)."""
        real = batch.x
        fake = self.negatives.take(len(real), self._generate).to(real.device)
        logits = self.fwd("discriminator")(torch.cat([real, fake]))
        target = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).to(logits.device, logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, target)
        loss = bce + self.d_l2 * self.discriminator.l2_penalty() if self.d_l2 else bce
        accuracy = ((logits.detach() > 0).to(target.dtype) == target).float().mean()
        return loss, {"d_loss": bce, "d_accuracy": accuracy}

    def policy_gradient_update(self, batch: Batch) -> tuple[Tensor, dict]:
        """REINFORCE on ``B`` fresh samples of G, rewarded per token by D through Monte-Carlo
        rollouts of the rollout network."""
        samples = self._generate(len(batch))
        rewards = rollout_rewards(samples, self.rollout, self.discriminator, self.rollouts)
        log_probs = self.fwd("generator")(samples)
        loss = reinforce_loss(log_probs, rewards, reduction=self.pg_reduction)
        scored = self.generator.scored_mask(samples)
        reward = (rewards * scored).sum() / scored.sum().clamp_min(1.0)
        return loss, {"g_loss": loss, "reward": reward, "sample_nll": -(log_probs.detach() * scored).sum()
                      / scored.sum().clamp_min(1.0)}

    def after_policy_step(self) -> None:
        """The rollout copy moves towards G by ``1 − δ``; D then trains on fresh negatives."""
        update_rollout_(self.rollout, self.generator, self.rollout_delay)
        self.negatives.invalidate()

    # ------------------------------------------------------------------ state

    def family_state(self) -> dict:
        return {"negatives": self.negatives.state_dict()}

    def load_family_state(self, state: dict) -> None:
        if "negatives" in state:
            self.negatives.load_state_dict(state["negatives"])


__all__ = ["NegativePool", "PassGAN", "SeqGAN", "SequenceLM", "require_tokens", "resolve_pad_mode"]
