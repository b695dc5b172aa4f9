"""Losses and helpers of the sequence GANs (SeqGAN; MLE for ``mle_lstm`` and SeqGAN's pre-training).

PassGAN needs nothing new: it is WGAN-GP (:mod:`gan_lab.losses`) with the critic on one-hot real
and softmax fake sequences ``(B, L, V)``; the penalty interpolates between those float tensors.

SeqGAN (Yu et al. 2017) in the notation of its code (``generator.py``, ``rollout.py``):

* :func:`mle_loss`: ``−mean`` over the scored tokens of ``log G(y_t | y_<t)`` (SeqGAN's
  ``pretrain_loss`` divides the sum by ``L·B``; with padding, forced positions are left out).
* :func:`rollout_rewards`: ``Q(y_<t, y_t)`` for every position of every sequence ``(B, L)``: for
  ``t < L``, the mean over ``N`` rollouts (16) that keep ``y_1..y_t`` and let the rollout network
  complete the rest, of ``D``'s probability that the completion is real; at ``t = L``, ``D``'s
  probability for the sequence itself. Values in [0, 1].
* :func:`reinforce_loss`: ``−Σ_t log G(y_t | y_<t) · Q(y_<t, y_t)`` per sequence, rewards held
  constant; its gradient is the REINFORCE estimate of ``−∇ E_G[Q]``.
* :func:`update_rollout_`: the rollout network is a delayed copy of G. SeqGAN's
  ``update_params`` computes ``θ_roll ← 0.8 · θ_roll + 0.2 · θ_G``: the 0.8 (``update_rate``,
  δ here) weights the OLD rollout parameters. Two facts of that TensorFlow code, for anyone
  comparing: its embedding is copied without delay (``tf.identity``), and its rollout graph is
  built once in the constructor from ``tf.identity`` reads of G's variables, so the rollouts
  there actually always use the current G (``update_params`` builds new tensors the graph never
  reads). We implement the stated rule for every parameter (embedding included); ``delta=0``
  gives the behaviour the original code ran with.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_lab.errors import UserError


def mle_loss(token_log_probs: Tensor, mask: Tensor | None = None) -> Tensor:
    """Maximum-likelihood loss: ``−Σ mask·log p / Σ mask`` (mean NLL per scored token, nats).

    ``token_log_probs``: ``(B, L)`` from ``SeqGenerator.token_log_probs``; ``mask``: float
    ``(B, L)``, 1 where the token was a choice of the model (``SeqGenerator.scored_mask``),
    ``None`` for all positions."""
    if mask is None:
        return -token_log_probs.mean()
    return -(token_log_probs * mask).sum() / mask.sum().clamp_min(1.0)


def reinforce_loss(token_log_probs: Tensor, rewards: Tensor, baseline: Tensor | float | None = None,
                   reduction: str = "mean") -> Tensor:
    """SeqGAN's policy-gradient loss ``−Σ_t log G(y_t | y_<t) · (Q_t − b)``.

    ``token_log_probs`` ``(B, L)`` carries the gradient; ``rewards`` ``(B, L)`` (from
    :func:`rollout_rewards`) and the optional ``baseline`` are detached. The per-sequence sums are
    averaged over the batch (``reduction="mean"``) or summed (``"sum"``, SeqGAN's code, whose loss
    is the sum over the whole batch: 64 times larger, which matters only through its gradient
    clipping at norm 5). SeqGAN uses no baseline.
    """
    if reduction not in ("mean", "sum"):
        raise UserError(f"reinforce reduction must be 'mean' or 'sum', got {reduction!r}")
    if token_log_probs.shape != rewards.shape:
        raise ValueError(f"log-probs {tuple(token_log_probs.shape)} and rewards {tuple(rewards.shape)} differ in shape")
    advantage = rewards.detach().to(token_log_probs.dtype)
    if baseline is not None:
        advantage = advantage - (baseline.detach() if torch.is_tensor(baseline) else baseline)
    per_sequence = -(token_log_probs * advantage).sum(dim=1)
    return per_sequence.mean() if reduction == "mean" else per_sequence.sum()


@torch.no_grad()
def rollout_rewards(x: Tensor, rollout: nn.Module, discriminator: nn.Module, num_rollouts: int = 16,
                    generator: torch.Generator | None = None) -> Tensor:
    """Monte-Carlo rewards ``Q`` of SeqGAN, float32 ``(B, L)`` in [0, 1].

    ``rollout`` must have ``sample(n, generator, prefix=...)`` (a :class:`SeqGenerator`);
    ``discriminator(x)`` returns real/fake logits ``(B,)``. Column ``t − 1`` (``t = 1..L−1``) is the
    mean over ``num_rollouts`` completions of ``x[:, :t]`` of ``sigmoid(D(completion))``; column
    ``L − 1`` is ``sigmoid(D(x))``. The discriminator is scored in eval mode (SeqGAN feeds
    dropout keep-probability 1.0 here) and its training flag is restored afterwards. The rollouts
    draw from ``generator`` (``None``: the global RNG, which the engine checkpoints).
    """
    if isinstance(num_rollouts, bool) or not isinstance(num_rollouts, int) or num_rollouts < 1:
        raise UserError(f"seqgan: num_rollouts must be an integer >= 1, got {num_rollouts!r}")
    B, L = x.shape
    was_training = discriminator.training
    discriminator.eval()
    try:
        rewards = torch.empty(B, L, dtype=torch.float32, device=x.device)
        for t in range(1, L):
            prefix = x[:, :t].repeat(num_rollouts, 1)  # rollout-major: row k·B + b
            done = rollout.sample(num_rollouts * B, generator, prefix=prefix)
            p_real = torch.sigmoid(discriminator(done).float()).view(num_rollouts, B)
            rewards[:, t - 1] = p_real.mean(dim=0)
        rewards[:, L - 1] = torch.sigmoid(discriminator(x).float())
    finally:
        discriminator.train(was_training)
    return rewards


@torch.no_grad()
def update_rollout_(rollout: nn.Module, generator: nn.Module, delta: float = 0.8) -> None:
    """In place: ``θ_roll ← δ · θ_roll + (1 − δ) · θ_G`` for every parameter (buffers copied).

    ``delta`` = 0.8 is SeqGAN's ``update_rate``; it weights the old rollout parameters."""
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta <= 1:
        raise UserError(f"seqgan: rollout delta must be a number in [0, 1], got {delta!r}")
    params_r = dict(rollout.named_parameters())
    params_g = dict(generator.named_parameters())
    if params_r.keys() != params_g.keys():
        raise ValueError("the rollout network and the generator have different parameters")
    for name, p in params_r.items():
        p.mul_(delta).add_(params_g[name].detach().to(p.dtype), alpha=1.0 - delta)
    buffers_g = dict(generator.named_buffers())
    for name, b in rollout.named_buffers():
        b.copy_(buffers_g[name])


def make_rollout(generator: nn.Module) -> nn.Module:
    """The rollout network at the start of the adversarial phase: a frozen copy of G (no
    gradients; never wrap it in DDP)."""
    import copy

    rollout = copy.deepcopy(generator)
    rollout.requires_grad_(False)
    return rollout


__all__ = ["make_rollout", "mle_loss", "reinforce_loss", "rollout_rewards", "update_rollout_"]
