"""Metric functions for generated text: password guessing, n-gram divergence, BLEU.

All take decoded strings (``CharMap.decode`` / ``gan_lab.modalities.tokens.decode``); none draws
random numbers.

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

import numpy as np

DEFAULT_NS = (10**3, 10**4, 10**5, 10**6)


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


__all__ = ["bleu", "distinct_rate", "js_divergence", "match_at_n", "match_curve", "memorisation_rate",
           "ngram_counts", "ngram_js"]
