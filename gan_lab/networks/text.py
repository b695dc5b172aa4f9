"""Networks of the text GANs: PassGAN / IWGAN-text (residual 1-D CNNs) and SeqGAN (LSTM G, CNN D).

Token ids follow :mod:`gan_lab.modalities.tokens`: int64 ``(B, L)``, id 0 is padding.

PassGAN / IWGAN for text (Gulrajani et al. 2017, ``gan_language.py``; Hitaj et al. 2019)
---------------------------------------------------------------------------------------
* :class:`PassGANGenerator`: ``z (B, 128)`` -> linear to ``dim·L`` -> ``(B, dim, L)`` -> 5 residual
  blocks -> 1x1 convolution to ``V`` -> softmax over the vocabulary at every position: returns
  probabilities ``(B, L, V)``. :func:`argmax_decode` turns them into token ids.
* :class:`PassGANCritic`: ``(B, L, V)`` one-hot (real) or softmax (fake) sequences -> 1x1
  convolution to ``dim`` -> 5 residual blocks -> linear from ``dim·L`` to one critic value ``(B,)``.
* A residual block (both nets): ``x + 0.3 · conv5(relu(conv5(relu(x))))``, kernel 5, "same"
  padding, ``dim`` 128 channels, no normalisation (the gradient penalty needs none).
  Initialisation: PyTorch's defaults (the original uses its ``tflib`` uniform He/Glorot init).

SeqGAN (Yu et al. 2017, ``generator.py`` / ``discriminator.py``)
---------------------------------------------------------------
* :class:`SeqGenerator`: embedding (32) -> one LSTM layer (32) -> linear to ``V`` logits; the
  first input is a learned start vector (SeqGAN feeds the embedding of its token 0; id 0 is
  padding here). Every parameter starts from N(0, 0.1²) like SeqGAN's generator.
  ``token_log_probs(x)`` (teacher forcing, for MLE and REINFORCE), ``sample(n, generator,
  prefix=None)`` (ancestral sampling; with a prefix: the rollout continuation).
* :class:`SeqDiscriminator`: token embedding -> one 1-D convolution per filter width (ReLU,
  max over time) -> concatenation -> highway layer -> dropout -> linear to one real/fake logit.
  SeqGAN's values (``SEQGAN_D``): embedding 64, widths 1..10, 15, 20 with 100, 200, 200, 200,
  200, 100, 100, 100, 100, 100, 160, 160 filters (1,720 features), dropout keep 0.75 (p = 0.25),
  highway gate bias 0, L2 0.2 on the output layer, Adam 1e-4. The defaults here are CPU-sized:
  embedding 64, widths (1, 2, 3, 4, 5) with 32, 64, 64, 64, 32 filters.

How padding behaves in :class:`SeqGenerator` (``pad_mode``)
----------------------------------------------------------
* ``"end"`` (passwords, words, lines): id 0 ends the sequence. Sampling writes 0 at every position
  after the first 0; in ``token_log_probs`` those positions are forced (log-probability 0, no
  gradient) and :meth:`SeqGenerator.scored_mask` leaves them out. The first 0 is scored: it is the
  end-of-sequence choice. A full-length sequence has no end token (nothing is left to choose).
* ``"forbid"`` (the oracle, which has no padding): the logit of id 0 is ``-inf``; 0 is never
  sampled and a sequence holding it has log-probability ``-inf``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.errors import UserError

PAD = 0
PAD_MODES = ("end", "forbid")

SEQGAN_D = {
    "emb_dim": 64,
    "filter_widths": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20),
    "num_filters": (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160),
    "dropout": 0.25,
    "l2_lambda": 0.2,
}
"""SeqGAN's discriminator settings (``sequence_gan.py``), for the paper's configuration."""


def _check_int(value: object, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_rate(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UserError(f"{what} must be a number in [0, 1), got {value!r}")
    return float(value)


def one_hot(tokens: Tensor, vocab_size: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """int64 ``(B, L)`` -> float ``(B, L, V)`` one-hot (what the PassGAN critic sees of real data)."""
    return F.one_hot(tokens.long(), vocab_size).to(dtype)


def argmax_decode(probs: Tensor) -> Tensor:
    """``(B, L, V)`` probabilities (or logits) -> int64 ``(B, L)`` token ids (PassGAN's decoding)."""
    return probs.argmax(dim=-1)


# ------------------------------------------------------------------------------------------------
# PassGAN / IWGAN text
# ------------------------------------------------------------------------------------------------
class ResBlock1d(nn.Module):
    """``x + scale · conv(relu(conv(relu(x))))`` with two ``dim``->``dim`` 1-D convolutions."""

    def __init__(self, dim: int, kernel_size: int = 5, scale: float = 0.3) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.scale * self.conv2(F.relu(self.conv1(F.relu(x))))


def _check_conv_sizes(where: str, seq_len: int, vocab_size: int, dim: int, num_blocks: int, kernel_size: int) -> None:
    _check_int(seq_len, f"{where}: seq_len")
    _check_int(vocab_size, f"{where}: vocab_size", 2)
    _check_int(dim, f"{where}: dim")
    _check_int(num_blocks, f"{where}: num_blocks", 0)
    _check_int(kernel_size, f"{where}: kernel_size")
    if kernel_size % 2 == 0:
        raise UserError(f"{where}: kernel_size must be odd (same-length convolutions), got {kernel_size}")


class PassGANGenerator(nn.Module):
    """IWGAN-text generator: ``forward(z, y=None)`` -> probabilities ``(B, L, V)`` (each position's
    row sums to 1). ``logits(z)`` gives the pre-softmax values."""

    def __init__(self, seq_len: int, vocab_size: int, z_dim: int = 128, dim: int = 128, num_blocks: int = 5,
                 kernel_size: int = 5, res_scale: float = 0.3) -> None:
        super().__init__()
        _check_conv_sizes("passgan generator", seq_len, vocab_size, dim, num_blocks, kernel_size)
        self.z_dim = _check_int(z_dim, "passgan generator: z_dim")
        self.seq_len, self.vocab_size, self.dim = seq_len, vocab_size, dim
        self.fc = nn.Linear(z_dim, dim * seq_len)
        self.blocks = nn.Sequential(*[ResBlock1d(dim, kernel_size, res_scale) for _ in range(num_blocks)])
        self.out = nn.Conv1d(dim, vocab_size, 1)

    def logits(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(-1, self.dim, self.seq_len)
        return self.out(self.blocks(h)).transpose(1, 2)  # (B, L, V)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.softmax(self.logits(z), dim=-1)


class PassGANCritic(nn.Module):
    """IWGAN-text critic: ``forward(x)`` with ``x`` float ``(B, L, V)`` (one-hot or softmax) or
    int64 token ids ``(B, L)`` (one-hot encoded here) -> critic values ``(B,)``."""

    def __init__(self, seq_len: int, vocab_size: int, dim: int = 128, num_blocks: int = 5, kernel_size: int = 5,
                 res_scale: float = 0.3) -> None:
        super().__init__()
        _check_conv_sizes("passgan critic", seq_len, vocab_size, dim, num_blocks, kernel_size)
        self.seq_len, self.vocab_size, self.dim = seq_len, vocab_size, dim
        self.inp = nn.Conv1d(vocab_size, dim, 1)
        self.blocks = nn.Sequential(*[ResBlock1d(dim, kernel_size, res_scale) for _ in range(num_blocks)])
        self.fc = nn.Linear(dim * seq_len, 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        if not x.dtype.is_floating_point:
            x = one_hot(x, self.vocab_size, self.inp.weight.dtype)
        if x.shape[1:] != (self.seq_len, self.vocab_size):
            raise ValueError(f"passgan critic expects (B, {self.seq_len}, {self.vocab_size}), got {tuple(x.shape)}")
        h = self.blocks(self.inp(x.transpose(1, 2)))
        return self.fc(h.flatten(1)).squeeze(1)


# ------------------------------------------------------------------------------------------------
# SeqGAN
# ------------------------------------------------------------------------------------------------
def sample_categorical(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw per row of ``softmax(logits)`` (``(..., V)`` -> int64 ``(...)``) by inverting the
    cumulative distribution at one uniform per row from ``generator`` (on its own device).

    Several times faster than ``torch.multinomial`` for wide vocabularies on the CPU. The
    cumulative sum is float32: a token's probability is off by at most a few 1e-6 for 5,000
    tokens; tokens of probability 0 (``-inf`` logits) are never drawn.
    """
    shape = logits.shape[:-1]
    probs = torch.softmax(logits.detach().reshape(-1, logits.shape[-1]).float(), dim=-1)
    cdf = probs.cumsum(dim=-1)
    # the uniforms come from ``generator`` on its own device: a CPU generator can drive sampling
    # on a GPU (sample grids and evaluation seed CPU generators)
    device = generator.device if generator is not None else cdf.device
    u = torch.rand(len(cdf), 1, generator=generator, device=device).to(cdf.device) * cdf[:, -1:]
    index = torch.searchsorted(cdf, u, right=True).clamp_(max=logits.shape[-1] - 1)
    return index.reshape(shape)


class SeqGenerator(nn.Module):
    """SeqGAN's generator (and the ``mle_lstm`` baseline): an LSTM language model over ``V``
    token ids, sequences of fixed length ``seq_len`` (see the module docstring for ``pad_mode``).
    """

    def __init__(self, vocab_size: int, seq_len: int, emb_dim: int = 32, hidden_dim: int = 32,
                 pad_mode: str = "end", init_std: float = 0.1) -> None:
        super().__init__()
        self.vocab_size = _check_int(vocab_size, "seqgan generator: vocab_size", 2)
        self.seq_len = _check_int(seq_len, "seqgan generator: seq_len")
        self.emb_dim = _check_int(emb_dim, "seqgan generator: emb_dim")
        self.hidden_dim = _check_int(hidden_dim, "seqgan generator: hidden_dim")
        if pad_mode not in PAD_MODES:
            raise UserError(f"seqgan generator: pad_mode must be one of {', '.join(PAD_MODES)}; got {pad_mode!r}")
        self.pad_mode = pad_mode
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.start = nn.Parameter(torch.zeros(emb_dim))
        self.lstm = nn.LSTM(emb_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
        if init_std > 0:
            for p in self.parameters():
                nn.init.normal_(p, 0.0, init_std)

    # -- teacher forcing -------------------------------------------------------------------------
    def _inputs(self, x: Tensor) -> Tensor:
        """Embeddings of [start, x_1, ..., x_{L-1}]: ``(B, L, E)``."""
        start = self.start.expand(x.shape[0], 1, -1)
        return torch.cat([start, self.embedding(x[:, :-1])], dim=1)

    def _mask_logits(self, logits: Tensor) -> Tensor:
        if self.pad_mode == "forbid":
            logits = logits.clone()
            logits[..., PAD] = float("-inf")
        return logits

    def logits(self, x: Tensor) -> Tensor:
        """Teacher-forced next-token logits ``(B, L, V)``: position ``t`` predicts ``x_t`` from ``x_<t``."""
        if x.dim() != 2 or x.shape[1] != self.seq_len:
            raise ValueError(f"expected tokens (B, {self.seq_len}), got {tuple(x.shape)}")
        h, _ = self.lstm(self._inputs(x.long()))
        return self._mask_logits(self.out(h))

    def forced_mask(self, x: Tensor) -> Tensor:
        """bool ``(B, L)``: positions after the first padding (``pad_mode="end"``), which are not a
        choice of the model."""
        if self.pad_mode != "end":
            return torch.zeros_like(x, dtype=torch.bool)
        is_pad = x == PAD
        before = torch.cumsum(is_pad.long(), dim=1) - is_pad.long()  # pads strictly before t
        return before > 0

    def scored_mask(self, x: Tensor) -> Tensor:
        """float ``(B, L)``: 1 where the token is a choice of the model, 0 where forced."""
        return (~self.forced_mask(x)).float()

    def token_log_probs(self, x: Tensor) -> Tensor:
        """``(B, L)`` natural-log ``log G(x_t | x_<t)`` (teacher forcing; forced positions are 0)."""
        lp = torch.log_softmax(self.logits(x).float(), dim=-1).gather(2, x.long().unsqueeze(2)).squeeze(2)
        return lp.masked_fill(self.forced_mask(x), 0.0)

    def forward(self, x: Tensor) -> Tensor:
        """``token_log_probs(x)``: what training differentiates (through DDP wrappers, which call
        ``forward``)."""
        return self.token_log_probs(x)

    def sequence_log_prob(self, x: Tensor) -> Tensor:
        """``(B,)`` ``log G(x)`` in nats (the sum over positions)."""
        return self.token_log_probs(x).sum(dim=1)

    # -- sampling --------------------------------------------------------------------------------
    def _step(self, inp: Tensor, state):
        h, state = self.lstm(inp.unsqueeze(1), state)
        return self._mask_logits(self.out(h.squeeze(1))), state

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, prefix: Tensor | None = None) -> Tensor:
        """int64 ``(n, L)`` by ancestral sampling with ``generator`` (on this module's device).

        ``prefix`` (int64 ``(n, t)``, ``0 <= t <= L``) is kept as the first ``t`` tokens and the
        rest is sampled given it (a Monte-Carlo rollout)."""
        dev = self.start.device
        if prefix is None:
            prefix = torch.zeros(n, 0, dtype=torch.int64, device=dev)
        prefix = prefix.to(dev).long()
        if prefix.dim() != 2 or len(prefix) != n or prefix.shape[1] > self.seq_len:
            raise ValueError(f"prefix must be (n={n}, t <= {self.seq_len}), got {tuple(prefix.shape)}")
        t0 = prefix.shape[1]
        if t0 == self.seq_len:
            return prefix.clone()
        inputs = torch.cat([self.start.expand(n, 1, -1), self.embedding(prefix)], dim=1)  # (n, t0+1, E)
        h, state = self.lstm(inputs)
        logits = self._mask_logits(self.out(h[:, -1]))
        ended = (prefix == PAD).any(dim=1) if self.pad_mode == "end" else torch.zeros(n, dtype=torch.bool, device=dev)
        out = [prefix]
        for t in range(t0, self.seq_len):
            tok = sample_categorical(logits, generator)
            if self.pad_mode == "end":
                tok = tok.masked_fill(ended, PAD)
                ended = ended | (tok == PAD)
            out.append(tok.unsqueeze(1))
            if t + 1 < self.seq_len:
                logits, state = self._step(self.embedding(tok), state)
        return torch.cat(out, dim=1)


class Highway(nn.Module):
    """One highway layer: ``t · relu(W_h x + b_h) + (1 − t) · x`` with gate
    ``t = sigmoid(W_t x + b_t + gate_bias)`` (SeqGAN calls it with ``gate_bias = 0``)."""

    def __init__(self, size: int, gate_bias: float = 0.0) -> None:
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)
        self.gate_bias = gate_bias

    def forward(self, x: Tensor) -> Tensor:
        t = torch.sigmoid(self.gate(x) + self.gate_bias)
        return t * F.relu(self.transform(x)) + (1 - t) * x


class SeqDiscriminator(nn.Module):
    """SeqGAN's CNN discriminator: ``forward(x)`` int64 ``(B, L)`` -> real/fake logits ``(B,)``
    (``sigmoid`` = probability of real). ``l2_penalty()`` is SeqGAN's ``l2_loss`` of the output
    layer (``(‖W‖² + ‖b‖²) / 2``), to be weighted by ``l2_lambda`` (0.2 in SeqGAN)."""

    def __init__(self, vocab_size: int, seq_len: int, emb_dim: int = 64,
                 filter_widths: Sequence[int] = (1, 2, 3, 4, 5), num_filters: Sequence[int] = (32, 64, 64, 64, 32),
                 dropout: float = 0.25, highway: bool = True) -> None:
        super().__init__()
        self.vocab_size = _check_int(vocab_size, "seqgan discriminator: vocab_size", 2)
        self.seq_len = _check_int(seq_len, "seqgan discriminator: seq_len")
        _check_int(emb_dim, "seqgan discriminator: emb_dim")
        widths, counts = list(filter_widths), list(num_filters)
        if not widths or len(widths) != len(counts):
            raise UserError(f"seqgan discriminator: filter_widths and num_filters need the same (non-zero) length, "
                            f"got {len(widths)} and {len(counts)}")
        for w in widths:
            _check_int(w, "seqgan discriminator: every filter width")
            if w > seq_len:
                raise UserError(f"seqgan discriminator: filter width {w} is longer than the sequences ({seq_len}); "
                                f"use widths <= {seq_len}")
        for c in counts:
            _check_int(c, "seqgan discriminator: every filter count")
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, c, w) for w, c in zip(widths, counts))
        features = sum(counts)
        self.highway = Highway(features, 0.0) if highway else nn.Identity()
        self.dropout = nn.Dropout(_check_rate(dropout, "seqgan discriminator: dropout"))
        self.out = nn.Linear(features, 1)

    def features(self, x: Tensor) -> Tensor:
        e = self.embedding(x.long()).transpose(1, 2)  # (B, E, L)
        pooled = [F.relu(conv(e)).amax(dim=2) for conv in self.convs]
        return self.highway(torch.cat(pooled, dim=1))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.seq_len:
            raise ValueError(f"seqgan discriminator expects tokens (B, {self.seq_len}), got {tuple(x.shape)}")
        return self.out(self.dropout(self.features(x))).squeeze(1)

    def l2_penalty(self) -> Tensor:
        return 0.5 * (self.out.weight.square().sum() + self.out.bias.square().sum())


# ------------------------------------------------------------------------------------------------
# Builders (``model.net.conv1d`` of passgan)
# ------------------------------------------------------------------------------------------------
def passgan_pair(info, latent_dim: int, *, dim: int = 128, num_blocks: int = 5, kernel_size: int = 5,
                 res_scale: float = 0.3, pack: int = 1, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """IWGAN-text ``(G, critic)`` for token data ``info`` (``(L,)`` sequences over ``info.vocab``)."""
    if info.modality != "tokens":
        raise UserError(f"model.net.arch=conv1d (the text networks) needs token data, but data {info.name} is "
                        f"{info.modality} data; use an image model (e.g. model=wgan_gp) or a text data set")
    if pack != 1 or num_classes:
        raise UserError("the text networks (model.net.arch=conv1d) take neither model.pack > 1 nor class labels")
    seq_len, vocab_size = int(info.shape[0]), len(info.vocab)
    g = PassGANGenerator(seq_len, vocab_size, latent_dim, dim, num_blocks, kernel_size, res_scale)
    d = PassGANCritic(seq_len, vocab_size, dim, num_blocks, kernel_size, res_scale)
    return g, d


__all__ = [
    "Highway", "PAD_MODES", "PassGANCritic", "PassGANGenerator", "ResBlock1d", "SEQGAN_D", "SeqDiscriminator",
    "SeqGenerator", "argmax_decode", "one_hot", "passgan_pair", "sample_categorical",
]
