"""Character Markov models of passwords: the guessing baselines the text GANs are compared with.

Both models are proper distributions over the strings of 0..``max_len`` characters of their
alphabet: each step chooses one of ``S + 1`` symbols, the ``S`` characters or END (symbol 0; the
characters are symbols 1..S in alphabet order, so with the train split's :class:`CharMap`
alphabet a symbol is the token id and END is the padding id). After ``max_len`` characters END
is certain. So ``Σ_s P(s) = 1`` over all those strings, and

* ``log_prob(strings)``: natural-log probabilities (``-inf`` outside the support: an unknown
  character or more than ``max_len`` characters); ``nll(strings)``: their mean negation, nats
  per string (``bits=True``: bits per string);
* ``sample(n, generator)``: ``n`` strings drawn with a ``torch.Generator`` (vectorised);
* ``guesses(limit)``: ``(string, log_prob)`` in non-increasing probability, each string once
  (exact best-first search; about ``limit · (length + 1)`` heap operations and as many heap
  entries, so 10⁵ guesses take seconds and 10⁶ some minutes and a few GB).

:class:`PerPositionMarkov` ("HashCat's Markov mode")
    ``P(c_i | i, c_{i−1})``: a separate first-order transition table for every position ``i``
    (``c_0`` = START), which is what HashCat's ``hcstat2`` statistics hold (a per-position table of
    first characters and per-position tables of character-after-character counts). We add an END
    symbol so that lengths get probabilities too, and Lidstone (additive) smoothing with
    ``alpha`` (0.01) over the ``S + 1`` symbols so every string has a probability. HashCat itself
    uses the counts only to order characters within a fixed-length mask and enumerates masks
    length by length; ``guesses`` here orders all lengths by the model's probability instead.

:class:`NgramMarkov` (order ``n``; 3 and 4 in the benchmarks)
    ``P(c_i | c_{i−n+1} .. c_{i−1})`` with ``n − 1`` START symbols before the string and an END
    symbol after it, smoothed by interpolated Kneser–Ney (Chen & Goodman 1998): at each order
    ``k`` an absolute discount ``D_k = n1 / (n1 + 2·n2)`` (``n1``, ``n2``: how many ``k``-grams have
    count 1, 2; 0.5 if ``n1 = 0``) moves mass to order ``k − 1``; orders below ``n`` use
    continuation counts (how many distinct symbols precede the ``k``-gram); order 1 interpolates
    with the uniform distribution over the ``S + 1`` symbols. Histories never seen fall back
    to the next lower order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Hashable

import numpy as np
import torch

from gan_lab.errors import UserError

END = 0


class CharMarkovModel:
    """Shared machinery: subclasses define ``_initial_state()``, ``_dist(state)`` (float64
    probabilities over the ``S + 1`` symbols, used for positions ``< max_len``) and
    ``_next_state(state, symbol)``."""

    def __init__(self, train: Sequence[str], alphabet: Sequence[str] | None, max_len: int, where: str) -> None:
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise UserError(f"{where}: max_len must be an integer >= 1, got {max_len!r}")
        train = list(train)
        if not train:
            raise UserError(f"{where}: no training strings")
        if alphabet is None:
            alphabet = sorted({c for s in train for c in s})
        alphabet = tuple(alphabet)
        if list(alphabet) != sorted(set(alphabet)) or not alphabet or any(len(c) != 1 for c in alphabet):
            raise ValueError(f"{where}: the alphabet must be distinct single characters in sorted order")
        self.alphabet = alphabet
        self.max_len = max_len
        self.num_symbols = len(alphabet) + 1
        self._symbol = {c: i + 1 for i, c in enumerate(alphabet)}
        for s in train:
            if len(s) > max_len:
                raise UserError(f"{where}: training string {s!r} is longer than max_len={max_len}")
            missing = {c for c in s if c not in self._symbol}
            if missing:
                raise UserError(f"{where}: training string {s!r} has characters outside the alphabet: "
                                f"{sorted(missing)}")
        self._dist_cache: dict[Hashable, np.ndarray] = {}
        self._order_cache: dict[Hashable, tuple[np.ndarray, np.ndarray]] = {}
        self._end_only = np.zeros(self.num_symbols)
        self._end_only[END] = 1.0

    # -- to implement ----------------------------------------------------------------------------
    def _initial_state(self) -> Hashable:  # pragma: no cover - abstract
        raise NotImplementedError

    def _compute_dist(self, state: Hashable) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _next_state(self, state: Hashable, symbol: int) -> Hashable:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------
    def symbols(self, s: str) -> list[int] | None:
        """The symbols of ``s`` (without END), ``None`` if a character is not in the alphabet."""
        try:
            return [self._symbol[c] for c in s]
        except KeyError:
            return None

    def dist(self, state: Hashable, pos: int) -> np.ndarray:
        """``P(next symbol)`` after ``pos`` characters in ``state`` (END certain at ``max_len``)."""
        if pos >= self.max_len:
            return self._end_only
        d = self._dist_cache.get(state)
        if d is None:
            d = self._compute_dist(state)
            self._dist_cache[state] = d
        return d

    def log_prob(self, strings: Iterable[str]) -> np.ndarray:
        """float64 natural-log ``P(s)`` of each string; ``-inf`` outside the support."""
        out = []
        for s in strings:
            syms = self.symbols(s)
            if syms is None or len(syms) > self.max_len:
                out.append(-math.inf)
                continue
            state, total = self._initial_state(), 0.0
            for pos, sym in enumerate(syms + [END]):
                if pos == self.max_len:
                    break  # END is certain
                p = self.dist(state, pos)[sym]
                total += math.log(p) if p > 0 else -math.inf
                if sym != END:
                    state = self._next_state(state, sym)
            out.append(total)
        return np.asarray(out, dtype=np.float64)

    def nll(self, strings: Iterable[str], bits: bool = False) -> float:
        """Mean ``−log P(s)`` over ``strings``: nats per string (bits per string with ``bits``);
        ``inf`` if one is outside the support."""
        lp = self.log_prob(strings)
        if len(lp) == 0:
            raise ValueError("nll of an empty set of strings")
        value = float(-lp.mean())
        return value / math.log(2) if bits else value

    def sample(self, n: int, generator: torch.Generator | None = None) -> list[str]:
        """``n`` strings by ancestral sampling; one float64 uniform per live string and step from
        ``generator`` (a CPU generator)."""
        symbols = np.zeros((n, self.max_len), dtype=np.int64)
        states: list[Hashable] = [self._initial_state()]
        state_id = {states[0]: 0}
        current = np.zeros(n, dtype=np.int64)
        alive = np.arange(n)
        for pos in range(self.max_len):
            if len(alive) == 0:
                break
            uniq, inv = np.unique(current[alive], return_inverse=True)
            table = torch.from_numpy(np.stack([self.dist(states[u], pos) for u in uniq]))
            cdf = table.cumsum(dim=1)
            u = torch.rand(len(alive), generator=generator, dtype=torch.float64)
            rows = torch.from_numpy(inv.reshape(-1))
            choice = torch.searchsorted(cdf[rows], (u * cdf[rows, -1]).unsqueeze(1), right=True).squeeze(1)
            choice = choice.clamp_(max=self.num_symbols - 1).numpy()
            symbols[alive, pos] = choice
            going = choice != END
            alive, parents, choice = alive[going], current[alive][going], choice[going]
            if len(alive):
                keys = parents * self.num_symbols + choice
                ukeys, kinv = np.unique(keys, return_inverse=True)
                new_ids = np.empty(len(ukeys), dtype=np.int64)
                for j, key in enumerate(ukeys.tolist()):
                    nxt = self._next_state(states[key // self.num_symbols], key % self.num_symbols)
                    if nxt not in state_id:
                        state_id[nxt] = len(states)
                        states.append(nxt)
                    new_ids[j] = state_id[nxt]
                current[alive] = new_ids[kinv.reshape(-1)]
        chars = ("",) + self.alphabet
        return ["".join(chars[c] for c in row if c != END) for row in self._cut_at_end(symbols).tolist()]

    @staticmethod
    def _cut_at_end(symbols: np.ndarray) -> np.ndarray:
        ended = np.cumsum(symbols == END, axis=1) > 0
        return np.where(ended, END, symbols)

    def _sorted(self, state: Hashable, pos: int) -> tuple[np.ndarray, np.ndarray]:
        key = (state, pos >= self.max_len)
        cached = self._order_cache.get(key)
        if cached is None:
            d = self.dist(state, pos)
            order = np.argsort(-d, kind="stable")
            order = order[d[order] > 0]
            with np.errstate(divide="ignore"):
                cached = (order, np.log(d))
            self._order_cache[key] = cached
        return cached

    def guesses(self, limit: int | None = None) -> Iterator[tuple[str, float]]:
        """``(string, log P)`` in non-increasing probability (ties in a fixed order), each string
        once, until ``limit`` strings or the support is exhausted."""
        heap: list = []
        tick = 0
        chars = ("",) + self.alphabet

        def push(prefix: str, state: Hashable, pos: int, k: int, lp_prefix: float) -> None:
            nonlocal tick
            order, logd = self._sorted(state, pos)
            if k < len(order):
                heapq.heappush(heap, (-(lp_prefix + logd[order[k]]), tick, prefix, state, pos, k, lp_prefix))
                tick += 1

        push("", self._initial_state(), 0, 0, 0.0)
        produced = 0
        while heap and (limit is None or produced < limit):
            neg_lp, _, prefix, state, pos, k, lp_prefix = heapq.heappop(heap)
            sym = int(self._sorted(state, pos)[0][k])
            push(prefix, state, pos, k + 1, lp_prefix)
            if sym == END:
                produced += 1
                yield prefix, -neg_lp
            else:
                push(prefix + chars[sym], self._next_state(state, sym), pos + 1, 0, -neg_lp)


class PerPositionMarkov(CharMarkovModel):
    """Per-position first-order Markov model with END and Lidstone smoothing (module docstring)."""

    def __init__(self, train: Sequence[str], alphabet: Sequence[str] | None = None, max_len: int = 10,
                 alpha: float = 0.01) -> None:
        super().__init__(train, alphabet, max_len, "per-position markov")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise UserError(f"per-position markov: alpha must be a positive number, got {alpha!r}")
        self.alpha = float(alpha)
        S1 = self.num_symbols
        # counts[i, prev, sym]: symbol at 0-based position i after prev (0 = START)
        self.counts = np.zeros((max_len, S1, S1), dtype=np.float64)
        for s in train:
            prev = 0
            for i, sym in enumerate(self.symbols(s)):
                self.counts[i, prev, sym] += 1
                prev = sym
            if len(s) < max_len:
                self.counts[len(s), prev, END] += 1

    def _initial_state(self) -> tuple[int, int]:
        return (0, 0)

    def _compute_dist(self, state: tuple[int, int]) -> np.ndarray:
        i, prev = state
        c = self.counts[i, prev] + self.alpha
        return c / c.sum()

    def _next_state(self, state: tuple[int, int], symbol: int) -> tuple[int, int]:
        return (state[0] + 1, symbol)


class NgramMarkov(CharMarkovModel):
    """Order-``order`` character model with START/END symbols and interpolated Kneser–Ney
    smoothing (module docstring). ``discount`` overrides the estimated ``D_k`` at every order."""

    def __init__(self, train: Sequence[str], order: int = 4, alphabet: Sequence[str] | None = None,
                 max_len: int = 10, discount: float | None = None) -> None:
        super().__init__(train, alphabet, max_len, f"{order}-gram markov")
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise UserError(f"n-gram markov: order must be an integer >= 1, got {order!r}")
        if discount is not None and not 0 < discount <= 1:
            raise UserError(f"n-gram markov: discount must be in (0, 1], got {discount!r}")
        self.order = order
        self.start = self.num_symbols  # START symbol, never predicted
        S1 = self.num_symbols
        n = order
        raw: dict[tuple, np.ndarray] = {}
        windows: list[set[tuple]] = [set() for _ in range(n + 1)]  # distinct (k)-grams ending at a predicted symbol
        for s in train:
            seq = [self.start] * (n - 1) + self.symbols(s) + ([END] if len(s) < max_len else [])
            for j in range(n - 1, len(seq)):
                h = tuple(seq[j - n + 1:j])
                raw.setdefault(h, np.zeros(S1))[seq[j]] += 1
                for k in range(2, n + 1):
                    windows[k].add(tuple(seq[j - k + 1:j + 1]))
        # counts[k]: history (k-1 symbols) -> counts over the S+1 symbols (raw at k = n, else continuation)
        self.counts: dict[int, dict[tuple, np.ndarray]] = {n: raw}
        for k in range(n - 1, 0, -1):
            cont: dict[tuple, np.ndarray] = {}
            for gram in windows[k + 1]:  # (v, h..., w): one distinct left extension of (h..., w)
                cont.setdefault(gram[1:-1], np.zeros(S1))[gram[-1]] += 1
            self.counts[k] = cont
        self.discounts: dict[int, float] = {}
        for k, table in self.counts.items():
            if discount is not None:
                self.discounts[k] = float(discount)
                continue
            values = np.concatenate([v for v in table.values()]) if table else np.zeros(0)
            n1, n2 = int((values == 1).sum()), int((values == 2).sum())
            self.discounts[k] = n1 / (n1 + 2 * n2) if n1 > 0 else 0.5
        self._uniform = np.full(S1, 1.0 / S1)
        self._level_cache: dict[tuple[int, tuple], np.ndarray] = {}

    def _level(self, k: int, h: tuple) -> np.ndarray:
        if k == 0:
            return self._uniform
        key = (k, h)
        cached = self._level_cache.get(key)
        if cached is not None:
            return cached
        lower = self._level(k - 1, h[1:])
        c = self.counts[k].get(h)
        if c is None or c.sum() == 0:
            p = lower
        else:
            total, D = c.sum(), self.discounts[k]
            p = np.maximum(c - D, 0.0) / total + (D * np.count_nonzero(c) / total) * lower
        self._level_cache[key] = p
        return p

    def _initial_state(self) -> tuple:
        return (self.start,) * (self.order - 1)

    def _compute_dist(self, state: tuple) -> np.ndarray:
        return self._level(self.order, state)

    def _next_state(self, state: tuple, symbol: int) -> tuple:
        return (state + (symbol,))[1:] if self.order > 1 else ()


__all__ = ["CharMarkovModel", "END", "NgramMarkov", "PerPositionMarkov"]
