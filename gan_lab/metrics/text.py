"""Metric functions for generated text: password guessing, n-gram divergence, BLEU.

All take decoded strings (``CharMap.decode`` / ``gan_lab.modalities.tokens.decode``); none draws
random numbers. The registered metrics (``metrics=[guess,ngram_js,nll_oracle,nll_test,bleu]``,
bottom of this module) feed them a model's samples and the data's splits.

* :func:`match_at_n` / :func:`match_curve`: the share of distinct test passwords found among the
  first ``N`` distinct guesses (PassGAN's measure; repeated guesses do not count towards ``N``).
* :func:`memorisation_rate`: the share of guesses that are training passwords.
* :func:`distinct_rate`: distinct samples / samples.
* :func:`ngram_js`: Jensen–Shannon divergence between the character n-gram distributions of
  samples and references, n = 1..4 (Gulrajani et al. 2017), in bits by default (base-2 logs, so
  it lies in [0, 1]); ``base=math.e`` gives nats (in [0, ln 2]).
* :func:`bleu`: corpus BLEU-n of samples against one shared reference set (e.g. the test split),
  exactly torchmetrics' ``bleu_score(samples, [references] * len(samples), n_gram=n)``, computed
  without repeating the reference counts for every sample.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from gan_lab.data.batch import Batch
from gan_lab.errors import UserError
from gan_lab.metrics.registry import EvalContext, FakeBatch, register_metric

DEFAULT_NS = (10**3, 10**4, 10**5, 10**6)
PAD = 0


def _check_ns(ns: Iterable[int]) -> list[int]:
    ns = sorted({int(n) for n in ns})
    if not ns or ns[0] < 1:
        raise ValueError(f"guess budgets must be positive integers, got {ns}")
    return ns


def match_curve(guesses_in_order: Iterable[str], test_set: Iterable[str],
                unreachable: int = 0) -> tuple[np.ndarray, int, int]:
    """Where each distinct test password is first guessed.

    Returns ``(ranks, n_distinct_guesses, n_test)``: ``ranks`` (int64, sorted) holds, for every
    test password that was guessed, the 1-based position of its first occurrence among the
    distinct guesses; ``match@N = (ranks <= N).sum() / n_test`` for ``N <= n_distinct_guesses``.
    ``n_test`` is the number of distinct test passwords plus ``unreachable`` (test passwords left
    out of ``test_set`` because no model can produce them, e.g. the 3 of ``passwords`` with a
    character absent from train: ``DataInfo.extras["test_unencodable"]``).
    """
    targets = set(test_set)
    if not targets:
        raise ValueError("match@N needs a non-empty test set")
    if isinstance(unreachable, bool) or not isinstance(unreachable, int) or unreachable < 0:
        raise ValueError(f"unreachable must be a count >= 0, got {unreachable!r}")
    seen: set[str] = set()
    ranks: list[int] = []
    for guess in guesses_in_order:
        if guess in seen:
            continue
        seen.add(guess)
        if guess in targets:
            ranks.append(len(seen))
    return np.asarray(ranks, dtype=np.int64), len(seen), len(targets) + unreachable


def match_at_n(guesses_in_order: Iterable[str], test_set: Iterable[str],
               ns: Iterable[int] = DEFAULT_NS, unreachable: int = 0) -> dict[int, float]:
    """``{N: share of distinct test passwords among the first N distinct guesses}`` for every
    ``N`` in ``ns`` that the guesses reach (at least ``N`` distinct guesses); budgets beyond
    what was generated are left out. ``unreachable``: see :func:`match_curve`."""
    ns = _check_ns(ns)
    ranks, n_distinct, n_test = match_curve(guesses_in_order, test_set, unreachable)
    return {n: float(np.count_nonzero(ranks <= n)) / n_test for n in ns if n <= n_distinct}


def memorisation_rate(guesses: Iterable[str], train_set: Iterable[str], distinct: bool = False) -> float:
    """The share of guesses that are training strings (over all guesses, repeats included; over
    the distinct guesses with ``distinct=True``)."""
    train = set(train_set)
    guesses = list(guesses)
    if distinct:
        guesses = list(dict.fromkeys(guesses))
    if not guesses:
        raise ValueError("memorisation rate of no guesses")
    return sum(1 for g in guesses if g in train) / len(guesses)


def distinct_rate(samples: Iterable[str]) -> float:
    """Number of distinct samples / number of samples."""
    samples = list(samples)
    if not samples:
        raise ValueError("distinct rate of no samples")
    return len(set(samples)) / len(samples)


def ngram_counts(strings: Iterable[str], n: int, pad_to: int | None = None, pad: str = "\x00") -> Counter:
    """Counts of the character n-grams inside each string (none spans two strings); with
    ``pad_to`` each string is first right-padded with ``pad`` to that length, as Gulrajani et
    al.'s code counts n-grams over its padded fixed-length rows."""
    counts: Counter = Counter()
    for s in strings:
        if pad_to is not None:
            s = s + pad * max(0, pad_to - len(s))
        for i in range(len(s) - n + 1):
            counts[s[i:i + n]] += 1
    return counts


def js_divergence(p_counts: Counter, q_counts: Counter, base: float = 2.0) -> float:
    """Jensen–Shannon divergence ``½ KL(p‖m) + ½ KL(q‖m)``, ``m = (p + q) / 2``, of two count
    tables normalised to distributions, with logarithms to ``base`` (float64)."""
    total_p, total_q = sum(p_counts.values()), sum(q_counts.values())
    if total_p == 0 or total_q == 0:
        return math.nan
    keys = list(set(p_counts) | set(q_counts))
    p = np.array([p_counts.get(k, 0) for k in keys], dtype=np.float64) / total_p
    q = np.array([q_counts.get(k, 0) for k in keys], dtype=np.float64) / total_q
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    return 0.5 * (kl(p) + kl(q)) / math.log(base)


def ngram_js(samples: Sequence[str], references: Sequence[str], ns: Iterable[int] = (1, 2, 3, 4),
             base: float = 2.0, pad_to: int | None = None) -> dict[int, float]:
    """``{n: JS divergence of the character n-gram distributions of samples and references}``.

    Base 2 by default (bits, Gulrajani et al.'s ``js_with`` divides by ``log 2``): 0 for
    identical distributions, 1 for disjoint supports. NaN when one side has no n-gram of that
    order (every string shorter than ``n``)."""
    return {n: js_divergence(ngram_counts(samples, n, pad_to), ngram_counts(references, n, pad_to), base)
            for n in ns}


def _tokens(s: str, char_level: bool) -> list[str]:
    return list(s) if char_level else s.split()


def _ngrams_up_to(tokens: Sequence[str], n: int) -> Counter:
    counts: Counter = Counter()
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            counts[tuple(tokens[i:i + k])] += 1
    return counts


def bleu(samples: Sequence[str], references: Sequence[str], ns: Iterable[int] = (2, 3, 4),
         char_level: bool = False) -> dict[int, float]:
    """``{n: corpus BLEU-n}`` of ``samples`` with every reference in ``references`` as a reference
    of every sample (the SeqGAN setting: the test split is the reference corpus).

    Words are whitespace-separated tokens (``char_level=True``: characters), uniform weights over
    1..n-grams, no smoothing, brevity penalty against the reference length closest to each
    sample's (the first such reference on ties): torchmetrics' ``bleu_score`` definition, which
    the tests check it against. (SeqGAN's and Texygen's BLEU averages sentence-level scores with
    NLTK smoothing instead; the numbers are not comparable.)"""
    if not references:
        raise ValueError("BLEU needs at least one reference")
    if not samples:
        raise ValueError("BLEU of no samples")
    ns = sorted(set(int(n) for n in ns))
    top = max(ns)
    ref_tokens = [_tokens(r, char_level) for r in references]
    clip: Counter = Counter()  # max count of every n-gram in any one reference
    for toks in ref_tokens:
        clip |= _ngrams_up_to(toks, top)
    ref_lengths: dict[int, int] = {}  # length -> index of its first reference (tie-breaking)
    for i, toks in enumerate(ref_tokens):
        ref_lengths.setdefault(len(toks), i)
    lengths = np.array(sorted(ref_lengths), dtype=np.int64)
    first_index = np.array([ref_lengths[x] for x in lengths.tolist()], dtype=np.int64)

    numerator = np.zeros(top, dtype=np.float64)
    denominator = np.zeros(top, dtype=np.float64)
    pred_len = ref_len = 0
    for s in samples:
        toks = _tokens(s, char_level)
        pred_len += len(toks)
        diff = np.abs(lengths - len(toks))
        best = np.flatnonzero(diff == diff.min())
        ref_len += int(lengths[best[np.argmin(first_index[best])]])
        counts = _ngrams_up_to(toks, top)
        for gram, c in counts.items():
            denominator[len(gram) - 1] += c
            numerator[len(gram) - 1] += min(c, clip.get(gram, 0))
    out = {}
    for n in ns:
        num, den = numerator[:n], denominator[:n]
        if num.min() == 0:
            out[n] = 0.0
            continue
        log_precision = np.log(num / den).mean()
        brevity = 1.0 if pred_len > ref_len else math.exp(1 - ref_len / pred_len)
        out[n] = float(brevity * math.exp(log_precision))
    return out




def save_match_curves(curves: dict[str, tuple[np.ndarray, int, int]], path: str, title: str | None = None) -> str:
    """Plot match@N against N (log scale) for every ``label: match_curve(...)`` into the PNG
    ``path``; each curve ends at its number of distinct guesses."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for label, (ranks, n_distinct, n_test) in curves.items():
        xs = np.concatenate([[1], np.asarray(ranks, dtype=np.float64), [max(n_distinct, 1)]])
        ys = np.concatenate([[0], np.arange(1, len(ranks) + 1), [len(ranks)]]) / n_test
        ax.step(xs, 100 * ys, where="post", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("distinct guesses N")
    ax.set_ylabel("test passwords matched (%)")
    ax.grid(True, which="both", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------------
# Registered metrics: metrics=[guess, ngram_js, nll_oracle, nll_test, bleu]
# ------------------------------------------------------------------------------------------------


@dataclass
class ScoredSamples(Batch):
    """Samples of a model that has a likelihood (seqgan, mle_lstm): ``log_prob(tokens)`` gives
    ``(N,)`` float64 natural-log probabilities of any token rows (what ``nll_test`` scores)."""

    log_prob: Callable[[Tensor], Tensor] | None = None


def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_rows(rows: Tensor) -> Tensor:
    """Every rank's rows, concatenated in rank order (each rank holds a contiguous share of the
    samples, so this is the order of one process generating them all)."""
    rank, world = _world()
    if world == 1:
        return rows
    import torch.distributed as dist

    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, rows.cpu())
    return torch.cat(parts)


def token_tuples(rows: Tensor) -> list[tuple[int, ...]]:
    """Each row's token ids without padding (decoding drops padding wherever it is, so these are
    the decoded sequences, one token per character or word)."""
    return [tuple(t for t in row if t != PAD) for row in rows.tolist()]


def _decoder(info) -> Callable[[Tensor], list[str]]:
    from gan_lab.modalities.tokens import decode

    separator = info.extras.get("separator", "")
    return lambda rows: decode(rows, info.vocab, separator)


class _TokenMetric:
    """Collects the generated token rows (this rank's share) on the CPU; ``samples()`` gathers
    all of them in order. ``split(name)`` reads a split of the data set as int64 rows."""

    needs_split = "test"

    def __init__(self, ctx: EvalContext, name: str) -> None:
        if ctx.data is None or ctx.info is None:
            raise UserError(f"metric '{name}' needs the data set (its {self.needs_split} split)")
        self.name, self.info, self.data = name, ctx.info, ctx.data
        if self.needs_split not in getattr(self.data, "splits", ("train",)):
            raise UserError(f"metric '{name}' needs a {self.needs_split} split, which data {self.info.name} lacks")
        self.rows: list[Tensor] = []

    def update_real(self, features: Tensor, labels: Tensor | None) -> None:  # pragma: no cover - needs no real
        pass

    def update(self, fake: FakeBatch) -> None:
        self.rows.append(fake.x.detach().to("cpu", torch.int64))

    def samples(self) -> Tensor:
        mine = torch.cat(self.rows) if self.rows else torch.zeros(0, self.info.shape[0], dtype=torch.int64)
        return gather_rows(mine)

    def split(self, name: str) -> Tensor:
        dataset = self.data.dataset_for(name)
        if hasattr(dataset, "all_tokens"):
            return dataset.all_tokens()
        return torch.cat([b.x for b in self.data.batches(4096, name, order_seed=None)])


@register_metric("guess", keys=("match@1000", "match@10000", "match@100000", "match@1000000", "matched",
                                "guesses", "memorised", "distinct_rate"),
                 needs={"samples", "data"}, modalities=("tokens",), aliases=("match", "guessing"),
                 summary="password guessing: match@N of test passwords among the first N distinct guesses")
class GuessMetric(_TokenMetric):
    """The samples, in order, are guesses: ``match@N`` for every budget N reached, ``matched``
    (share of test sequences found by all guesses), ``guesses`` (distinct guesses), ``memorised``
    (share of guesses that are training sequences) and ``distinct_rate``. ``curve=<file.png>``
    also draws match@N against N."""

    def __init__(self, ctx: EvalContext, ns=DEFAULT_NS, curve: str | None = None) -> None:
        super().__init__(ctx, "guess")
        try:
            self.ns = _check_ns(ns)
        except (TypeError, ValueError):
            raise UserError(f"metrics.guess.ns must be a list of positive integers, got {ns!r}") from None
        self.curve = None if curve in (None, "") else str(curve)

    def compute(self) -> dict[str, float]:
        decode = _decoder(self.info)
        guesses = decode(self.samples())
        test = decode(self.split("test"))
        train = decode(self.split("train"))
        unreachable = int(self.info.extras.get("test_unencodable", 0))
        ranks, n_distinct, n_test = match_curve(guesses, test, unreachable)
        out = {f"match@{n}": float(np.count_nonzero(ranks <= n)) / n_test for n in self.ns if n <= n_distinct}
        out["matched"] = len(ranks) / n_test
        out["guesses"] = float(n_distinct)
        out["memorised"] = memorisation_rate(guesses, train)
        out["distinct_rate"] = distinct_rate(guesses)
        if self.curve and _world()[0] == 0:
            save_match_curves({self.info.name: (ranks, n_distinct, n_test)}, self.curve,
                              f"{len(guesses)} guesses ({n_distinct} distinct) vs {n_test} test sequences")
        return out


@register_metric("ngram_js", keys=("js_1", "js_2", "js_3", "js_4"), needs={"samples", "data"},
                 modalities=("tokens",), aliases=("js",),
                 summary="Jensen-Shannon divergence of n-gram distributions, samples vs the test split (bits)")
class NgramJSMetric(_TokenMetric):
    """``js_<n>``: JS divergence (base 2, in [0, 1]) between the n-gram distributions of the
    samples and of the test split, n = 1..4 by default (characters for character data, tokens
    for the oracle; padding left out)."""

    def __init__(self, ctx: EvalContext, ns=(1, 2, 3, 4), num_ref: int | None = None) -> None:
        super().__init__(ctx, "ngram_js")
        self.ns = [int(n) for n in ns]
        if not self.ns or min(self.ns) < 1:
            raise UserError(f"metrics.ngram_js.ns must be positive integers, got {ns!r}")
        self.num_ref = num_ref

    def compute(self) -> dict[str, float]:
        refs = self.split("test")
        if self.num_ref:
            refs = refs[: int(self.num_ref)]
        values = ngram_js(token_tuples(self.samples()), token_tuples(refs), self.ns)
        return {f"js_{n}": v for n, v in values.items()}


@register_metric("bleu", keys=("bleu_2", "bleu_3", "bleu_4"), needs={"samples", "data"}, modalities=("tokens",),
                 summary="corpus BLEU-2..4 of the samples with the test split as the references")
class BLEUMetric(_TokenMetric):
    """``bleu_<n>``: corpus BLEU-n (torchmetrics' definition) of the samples against the whole
    test split (``num_ref``: its first sequences only); tokens are characters for character
    data, words/tokens for the oracle."""

    def __init__(self, ctx: EvalContext, ns=(2, 3, 4), num_ref: int | None = None) -> None:
        super().__init__(ctx, "bleu")
        self.ns = [int(n) for n in ns]
        if not self.ns or min(self.ns) < 1:
            raise UserError(f"metrics.bleu.ns must be positive integers, got {ns!r}")
        self.num_ref = num_ref

    def compute(self) -> dict[str, float]:
        refs = self.split("test")
        if self.num_ref:
            refs = refs[: int(self.num_ref)]

        def words(rows: Tensor) -> list[str]:
            return [" ".join(map(str, t)) for t in token_tuples(rows)]

        values = bleu(words(self.samples()), words(refs), self.ns)
        return {f"bleu_{n}": v for n, v in values.items()}


@register_metric("nll_oracle", keys=("nll_oracle", "nll_oracle_invalid"), needs={"samples", "data"},
                 modalities=("tokens",), summary="SeqGAN's NLL_oracle: the oracle LSTM's NLL of the samples (nats/token)")
class NLLOracleMetric(_TokenMetric):
    """``nll_oracle``: mean over all tokens of ``−log P_oracle(x_t | x_<t)`` of the samples
    (natural log, SeqGAN's number), over the samples without padding (the oracle never pads);
    ``nll_oracle_invalid``: the share of samples with padding, left out."""

    needs_split = "train"

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx, "nll_oracle")
        if "oracle" not in self.info.extras:
            raise UserError(f"metric 'nll_oracle' needs the oracle_lstm data set, not {self.info.name}")

    def compute(self) -> dict[str, float]:
        from gan_lab.data.sources.text import oracle_from_info

        x = self.samples()
        valid = (x != PAD).all(dim=1)
        out = {"nll_oracle_invalid": float((~valid).double().mean()) if len(x) else 0.0}
        kept = x[valid]
        out["nll_oracle"] = oracle_from_info(self.info).nll(kept) if len(kept) else math.inf
        return out


@register_metric("nll_test", keys=("nll_test", "nll_test_token"), needs={"samples", "data"},
                 modalities=("tokens",), summary="the model's negative log-likelihood of the test split")
class NLLTestMetric(_TokenMetric):
    """``nll_test``: mean ``−log G(x)`` over the test split, nats per sequence;
    ``nll_test_token``: the same sum per scored token (every token, and the end of a sequence
    shorter than the length). For models with a likelihood (seqgan, mle_lstm)."""

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx, "nll_test")
        self.log_prob = None

    def update(self, fake: FakeBatch) -> None:
        log_prob = getattr(fake.batch, "log_prob", None)
        if log_prob is None:
            raise UserError("metric 'nll_test' needs a model with a likelihood (model=seqgan or mle_lstm); "
                            "this model has none")
        self.log_prob = log_prob

    def compute(self) -> dict[str, float]:
        import torch.distributed as dist

        rank, world = _world()
        test = self.split("test")
        lo, hi = (len(test) * rank) // world, (len(test) * (rank + 1)) // world
        shard = test[lo:hi]
        with torch.no_grad():
            nll = -self.log_prob(shard).double().sum() if len(shard) else torch.zeros((), dtype=torch.float64)
        pads = (shard == PAD).sum(dim=1)
        tokens = torch.where(pads > 0, shard.shape[1] - pads + 1, torch.full_like(pads, shard.shape[1]))
        totals = torch.stack([nll.cpu(), tokens.double().sum(), torch.tensor(float(len(shard)), dtype=torch.float64)])
        if world > 1:
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
            totals = totals.to(device)
            dist.all_reduce(totals)
            totals = totals.cpu()
        return {"nll_test": float(totals[0] / totals[2]), "nll_test_token": float(totals[0] / totals[1])}


__all__ = ["ScoredSamples", "bleu", "distinct_rate", "gather_rows", "js_divergence", "match_at_n", "match_curve",
           "memorisation_rate", "ngram_counts", "ngram_js", "save_match_curves", "token_tuples"]
