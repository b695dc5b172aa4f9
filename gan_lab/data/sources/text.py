"""Token-sequence sources: leaked passwords, word lists, text files and SeqGAN's LSTM oracle.

Every sample is an int64 ``(L,)`` row of token ids; id 0 is padding and sits only at the end of
a row (see :mod:`gan_lab.modalities.tokens`). ``Batch(x=tokens, y=None, index=...)``.

* :class:`CharMap`: the character <-> id map of the character-level sets, built from the train
  split (sorted, so deterministic); it rides along in ``DataInfo.vocab`` (``vocab[0] == ""``).
* :class:`Passwords` (``passwords``): the 30,000 leaked passwords, ranked by frequency, that ship
  in the ``zxcvbn`` package (``FREQUENCY_LISTS["passwords"]``).
* :class:`Words` (``words``): English words from the same package's lists, for demos.
* :class:`TextLines` (``text_lines``): one sequence per line of a file (a RockYou-style leak).
* :class:`OracleLSTMData` (``oracle_lstm``): SeqGAN's synthetic experiment, sequences sampled
  from a random LSTM (:class:`OracleLSTM`), which also scores any sequence (``nll``).

The split rule of the ranked zxcvbn lists (``passwords`` and ``words``)
-----------------------------------------------------------------------
A list is ranked by frequency, rank ``r`` = 0, 1, 2, ... in the package's order. The split is
decided on the rank in the ORIGINAL list, before the length filter: ``test`` = every ``r`` with
``r % 5 == 4``, ``train`` = the rest. Entries longer than ``max_len`` are then dropped from both.
Deciding on the original rank keeps a password's split independent of ``max_len`` (changing the
length filter never moves a password from train to test), and both splits keep the same
frequency profile. The character map is built from the train split; a test entry with a
character the train split never uses cannot be encoded and is dropped (counted in
``DataInfo.extras["test_unencodable"]``, listed in :func:`ranked_split`).

On the shipped list with ``max_len=10`` (the PassGAN filter): 447 of the 30,000 passwords are
longer than 10 characters (362 of train ranks, 85 of test ranks), leaving 29,553 with 50 distinct
characters; train has 23,638 passwords over 47 characters, test 5,915, of which 3 use a character
absent from train (``'[start]'``, ``'12345$'``, ``'pa$$w0rd'``: ``$``, ``[``, ``]``), so the test
data set holds 5,912. zxcvbn lower-cased its lists: there are no capital letters.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from gan_lab.data.batch import Batch
from gan_lab.data.datasets import TensorBatchDataset
from gan_lab.data.info import DataInfo
from gan_lab.data.sources.base import Source, _check_count, _one_line
from gan_lab.errors import UserError
from gan_lab.networks.text import sample_categorical

PAD = 0


def _describe_char(char: str) -> str:
    return f"{char!r} (U+{ord(char):04X})"


# ------------------------------------------------------------------------------------------------
# Character map
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CharMap:
    """Characters <-> token ids: id 0 is padding, ``chars[i]`` has id ``i + 1``.

    Build it with :meth:`build` from the train split's strings (characters sorted by code point,
    so the same strings always give the same map). It serialises as ``vocab`` (``("",) + chars``)
    and comes back with :meth:`from_vocab`. ``NUL`` cannot be a character (it would be confused
    with padding).
    """

    chars: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chars = tuple(self.chars)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"a CharMap holds single characters, got {c!r}")
            if c == "\x00":
                raise UserError("character map: NUL (U+0000) cannot be a character (id 0 is padding)")
        if list(chars) != sorted(set(chars)):
            raise ValueError("CharMap.chars must be sorted and distinct")
        object.__setattr__(self, "chars", chars)
        object.__setattr__(self, "_index", {c: i + 1 for i, c in enumerate(chars)})

    @classmethod
    def build(cls, strings: Iterable[str], where: str = "character map") -> "CharMap":
        """The map of every character used in ``strings`` (sorted by code point)."""
        seen: set[str] = set()
        for s in strings:
            seen.update(s)
        if "\x00" in seen:
            raise UserError(f"{where}: NUL (U+0000) cannot be a character (id 0 is padding)")
        if not seen:
            raise UserError(f"{where}: no characters to build a character map from")
        return cls(tuple(sorted(seen)))

    @classmethod
    def from_vocab(cls, vocab: Sequence[str]) -> "CharMap":
        """The map a :attr:`vocab` (e.g. ``DataInfo.vocab``) was made from."""
        vocab = tuple(vocab)
        if not vocab or vocab[0] != "":
            raise ValueError("a character vocab starts with the padding token ''")
        return cls(vocab[1:])

    @property
    def vocab(self) -> tuple[str, ...]:
        """``("",) + chars``: the string of every token id (``DataInfo.vocab``)."""
        return ("",) + self.chars

    @property
    def vocab_size(self) -> int:
        """Number of token ids, padding included."""
        return len(self.chars) + 1

    def __len__(self) -> int:
        return self.vocab_size

    def unknown(self, s: str) -> set[str]:
        """The characters of ``s`` that the map does not have."""
        return {c for c in s if c not in self._index}

    def encodable(self, s: str) -> bool:
        return all(c in self._index for c in s)

    def encode(self, strings: Sequence[str], length: int, where: str = "character map",
               dtype: torch.dtype = torch.int64, chunk: int = 1 << 20) -> Tensor:
        """``(N, length)`` ids (int64 unless ``dtype``), right-padded with 0.

        A character the map lacks, or a string longer than ``length``, is a one-line
        :class:`UserError` naming it. Works ``chunk`` strings at a time, so a leak of millions
        of lines needs little more memory than its result.
        """
        strings = list(strings)
        for s in strings:
            if len(s) > length:
                raise UserError(f"{where}: {s!r} has {len(s)} characters, more than the length {length}")
        out = torch.zeros(len(strings), length, dtype=dtype)
        table = np.array([ord(c) for c in self.chars], dtype=np.int64)
        for start in range(0, len(strings), chunk):
            part = strings[start:start + chunk]
            # numpy's fixed-width unicode array pads with NUL (code point 0) and exposes every
            # character's code point; code points are looked up in the sorted table
            codes = np.array(part, dtype=f"<U{max(length, 1)}").view(np.uint32).reshape(len(part), -1)
            codes = codes[:, :length].astype(np.int64)
            pos = np.minimum(np.searchsorted(table, codes), len(table) - 1)
            known = (table[pos] == codes) | (codes == 0)
            if not known.all():
                row, col = np.argwhere(~known)[0]
                char = chr(int(codes[row, col]))
                raise UserError(f"{where}: character {_describe_char(char)} of {part[row]!r} "
                                "is not in the character map")
            ids = np.where(codes == 0, 0, pos + 1)
            out[start:start + len(part)] = torch.from_numpy(ids)
        return out

    def decode(self, tokens: Tensor) -> list[str]:
        """Each row of ids as a string; padding (id 0) is dropped wherever it is."""
        vocab = self.vocab
        return ["".join(vocab[t] for t in row if t != PAD) for row in tokens.detach().cpu().tolist()]


# ------------------------------------------------------------------------------------------------
# Data set
# ------------------------------------------------------------------------------------------------
def compact_dtype(vocab_size: int) -> torch.dtype:
    """The smallest integer type that holds ids ``0..vocab_size-1``."""
    return torch.uint8 if vocab_size <= 256 else torch.int16 if vocab_size <= 32768 else torch.int32


class TokenDataset(TensorBatchDataset):
    """Token rows kept in the smallest integer type that holds the vocabulary; every batch
    comes out as int64 ``(B, L)`` in ``Batch.x`` (``y`` is ``None``)."""

    def __init__(self, tokens: Tensor, vocab_size: int) -> None:
        if tokens.dim() != 2 or tokens.dtype.is_floating_point:
            raise ValueError(f"expected integer tokens (N, L), got {tokens.dtype} {tuple(tokens.shape)}")
        if len(tokens) and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
            raise ValueError(f"token ids must lie in [0, {vocab_size})")
        self.tokens = tokens.to(compact_dtype(vocab_size)).contiguous()
        self.vocab_size = vocab_size

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def seq_len(self) -> int:
        return int(self.tokens.shape[1])

    def all_tokens(self) -> Tensor:
        """Every row as int64 ``(N, L)``."""
        return self.tokens.long()

    def take(self, index: Tensor) -> Batch:
        return Batch(self.tokens[index].long(), None, index=index)


# ------------------------------------------------------------------------------------------------
# The zxcvbn ranked lists: passwords and words
# ------------------------------------------------------------------------------------------------
def _check_max_len(max_len: object, where: str) -> int:
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise UserError(f"{where}.max_len must be an integer >= 1, got {max_len!r}")
    return max_len


@functools.lru_cache(maxsize=None)
def zxcvbn_list(name: str) -> tuple[str, ...]:
    """``zxcvbn.frequency_lists.FREQUENCY_LISTS[name]`` in the package's (rank) order."""
    try:
        from zxcvbn.frequency_lists import FREQUENCY_LISTS
    except ImportError as err:  # pragma: no cover - zxcvbn is a dependency
        raise UserError(f"the password and word lists need the zxcvbn package ({_one_line(err)}); "
                        "pip install zxcvbn") from err
    if name not in FREQUENCY_LISTS:
        raise UserError(f"zxcvbn has no frequency list {name!r} (it has: {', '.join(sorted(FREQUENCY_LISTS))})")
    return tuple(FREQUENCY_LISTS[name])


@dataclass(frozen=True)
class RankedSplit:
    """A ranked list split by rank (see the module docstring)."""

    train: tuple[str, ...]
    """Train entries of at most ``max_len`` characters, in rank order."""
    test: tuple[str, ...]
    """Encodable test entries (every character in :attr:`charmap`), in rank order."""
    test_unencodable: tuple[str, ...]
    """Test entries with a character the train split never uses (dropped from the data set)."""
    dropped_long: int
    """Entries of the whole list longer than ``max_len``."""
    charmap: CharMap

    @property
    def test_all(self) -> tuple[str, ...]:
        """Every test entry of at most ``max_len`` characters, encodable or not (rank order is
        not kept between the two groups)."""
        return self.test + self.test_unencodable


def ranked_split(entries: Sequence[str], max_len: int, test_every: int = 5) -> RankedSplit:
    """Split a ranked list: test = ranks ``r`` with ``r % test_every == test_every - 1`` (decided on
    the original rank), then drop entries longer than ``max_len``; the character map comes from
    train and test entries it cannot encode are set apart."""
    train, test = [], []
    dropped = 0
    for r, s in enumerate(entries):
        if len(s) > max_len:
            dropped += 1
        elif r % test_every == test_every - 1:
            test.append(s)
        else:
            train.append(s)
    charmap = CharMap.build(train)
    test_ok = tuple(s for s in test if charmap.encodable(s))
    test_bad = tuple(s for s in test if not charmap.encodable(s))
    return RankedSplit(tuple(train), test_ok, test_bad, dropped, charmap)


class _RankedList(Source):
    splits = ("train", "test")
    _list_name = ""

    def __init__(self, max_len: int, split: str) -> None:
        self.max_len = _check_max_len(max_len, f"{self.name}: data.source")
        if split not in self.splits:
            raise UserError(f"{self.name}: data.source.split must be one of {', '.join(self.splits)}; got {split!r}")
        self.split = split

    def entries(self) -> tuple[str, ...]:
        return zxcvbn_list(self._list_name)

    def ranked(self) -> RankedSplit:
        return ranked_split(self.entries(), self.max_len)

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        parts = self.ranked()
        strings = parts.train if split == "train" else parts.test
        tokens = parts.charmap.encode(strings, self.max_len, where=self.name)
        info = DataInfo(
            self.name, "tokens", (self.max_len,), vocab=parts.charmap.vocab,
            extras={
                "separator": "",
                "source_list": f"zxcvbn:{self._list_name}",
                "max_len": self.max_len,
                "split_rule": "test: original rank r % 5 == 4; train: the rest; then len <= max_len",
                "dropped_long": parts.dropped_long,
                "n_train": len(parts.train),
                "n_test": len(parts.test),
                "test_unencodable": len(parts.test_unencodable),
            },
        )
        return TokenDataset(tokens, parts.charmap.vocab_size), info


class Passwords(_RankedList):
    """The 30,000 leaked passwords of ``zxcvbn`` (ranked by frequency), at most ``max_len``
    characters (10, PassGAN's filter); split by rank (module docstring)."""

    name = "passwords"
    _list_name = "passwords"

    def __init__(self, max_len: int = 10, split: str = "train") -> None:
        super().__init__(max_len, split)


WORD_LISTS = ("english_wikipedia", "us_tv_and_film", "female_names", "male_names", "surnames")


class Words(_RankedList):
    """English words from one of zxcvbn's ranked lists, for character-level demos.

    Only entries made of the letters a-z are kept (``english_wikipedia`` has a few markup
    fragments such as ``colspan=9|``); then the same rank split and length filter as
    :class:`Passwords`.
    """

    name = "words"

    def __init__(self, list_name: str = "english_wikipedia", max_len: int = 10, split: str = "train") -> None:
        if list_name not in WORD_LISTS:
            raise UserError(f"words: data.source.list_name must be one of {', '.join(WORD_LISTS)}; got {list_name!r}")
        self._list_name = list_name
        self.list_name = list_name
        super().__init__(max_len, split)

    def entries(self) -> tuple[str, ...]:
        # the letter filter drops entries before ranking: the rank is the position among words
        return tuple(w for w in zxcvbn_list(self._list_name) if w.isascii() and w.isalpha() and w.islower())


# ------------------------------------------------------------------------------------------------
# Lines of a text file
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinesSplit:
    train: tuple[str, ...]
    test: tuple[str, ...]
    charmap: CharMap
    counts: dict[str, int]


@functools.lru_cache(maxsize=1)
def _read_lines(path: str, stamp: tuple[int, int]) -> tuple[tuple[str, ...], int]:
    """The file's lines (``\\n`` or ``\\r\\n`` endings removed) and the number of lines that
    are not valid UTF-8 or contain NUL (skipped, with one warning per reading of the file)."""
    lines, bad = _parse_lines(path)
    if bad:
        warnings.warn(f"text_lines: skipped {bad} of {len(lines) + bad} lines of {path} that are not valid UTF-8 "
                      f"(or contain NUL)")
    return tuple(lines), bad


def _parse_lines(path: str) -> tuple[list[str], int]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [s[:-1] if s.endswith("\r") else s for s in lines], 0
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    lines, bad = [], 0
    for b in raw:
        if b.endswith(b"\r"):
            b = b[:-1]
        try:
            s = b.decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
            continue
        if "\x00" in s:
            bad += 1
            continue
        lines.append(s)
    return lines, bad


@functools.lru_cache(maxsize=2)
def _lines_split(path: str, stamp: tuple[int, int], max_len: int, test_fraction: float, seed: int,
                 dedupe: bool) -> LinesSplit:
    lines, undecodable = _read_lines(path, stamp)
    n_read = len(lines) + undecodable
    empty = sum(1 for s in lines if not s)
    too_long = sum(1 for s in lines if len(s) > max_len)
    kept = [s for s in lines if s and len(s) <= max_len]
    duplicates = 0
    if dedupe:
        unique = list(dict.fromkeys(kept))
        duplicates = len(kept) - len(unique)
        kept = unique
    if len(kept) < 2:
        raise UserError(f"text_lines: {path} has {len(kept)} usable lines of 1..{max_len} characters; need at least 2")
    generator = torch.Generator().manual_seed(seed)
    n_test = min(max(1, round(test_fraction * len(kept))), len(kept) - 1)
    order = torch.randperm(len(kept), generator=generator)
    is_test = torch.zeros(len(kept), dtype=torch.bool)
    is_test[order[:n_test]] = True
    flags = is_test.tolist()
    train = tuple(s for s, t in zip(kept, flags) if not t)
    test_all = [s for s, t in zip(kept, flags) if t]
    charmap = CharMap.build(train, where="text_lines")
    test = tuple(s for s in test_all if charmap.encodable(s))
    counts = {
        "lines_read": n_read, "undecodable": undecodable, "empty": empty, "too_long": too_long,
        "duplicates_dropped": duplicates, "n_train": len(train), "n_test": len(test),
        "test_unencodable": len(test_all) - len(test),
    }
    return LinesSplit(train, test, charmap, counts)


class TextLines(Source):
    """One sequence per line of the file ``root`` (e.g. a RockYou-style leak), characters as
    tokens.

    Lines end with ``\\n`` (a trailing ``\\r`` is removed too); nothing else is stripped, since
    spaces can be part of a password. A line with bytes that are not valid UTF-8 (or with NUL) is
    skipped whole, not repaired (a password with a byte removed is another password), and such
    lines are counted, with one warning per file; empty lines and lines longer than ``max_len`` are dropped and counted.
    Duplicates are kept (a leak's repeats are its frequency profile) unless ``dedupe``. The kept
    lines are split at random, ``test_fraction`` (0.2) to test, with a generator seeded by
    ``seed``; each split keeps the file's order. The character map comes from train; test lines
    with other characters are dropped and counted. Counts are in ``DataInfo.extras``.
    """

    name = "text_lines"
    splits = ("train", "test")

    def __init__(self, root: str | None = None, max_len: int = 10, seed: int = 0, test_fraction: float = 0.2,
                 dedupe: bool = False, split: str = "train") -> None:
        self.max_len = _check_max_len(max_len, "text_lines: data.source")
        # the file is checked when the data is loaded (a run loads it before any training), so
        # the config instantiates without one
        self.root = None if root is None or str(root) == "" else str(Path(os.path.expanduser(str(root))))
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UserError(f"text_lines: data.source.seed must be an integer, got {seed!r}")
        self.seed = seed
        if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
            raise UserError(f"text_lines: data.source.test_fraction must be a number in (0, 1), got {test_fraction!r}")
        self.test_fraction = float(test_fraction)
        self.dedupe = bool(dedupe)
        if split not in self.splits:
            raise UserError(f"text_lines: data.source.split must be one of {', '.join(self.splits)}; got {split!r}")
        self.split = split

    def check_file(self) -> None:
        """A missing, unreadable or empty file: one line."""
        if self.root is None:
            raise UserError("text_lines: set data.source.root to a text file with one sequence per line")
        path = Path(self.root)
        if not path.is_file():
            raise UserError(f"text_lines: data.source.root={self.root} is not a file")
        if path.stat().st_size == 0:
            raise UserError(f"text_lines: data.source.root={self.root} is empty")

    def lines(self) -> LinesSplit:
        self.check_file()
        st = os.stat(self.root)
        return _lines_split(self.root, (st.st_size, st.st_mtime_ns), self.max_len, self.test_fraction, self.seed,
                            self.dedupe)

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        parts = self.lines()
        strings = parts.train if split == "train" else parts.test
        tokens = parts.charmap.encode(strings, self.max_len, where=self.name,
                                      dtype=compact_dtype(parts.charmap.vocab_size))
        extras = {"separator": "", "max_len": self.max_len, "root": self.root, "seed": self.seed, **parts.counts}
        info = DataInfo(self.name, "tokens", (self.max_len,), vocab=parts.charmap.vocab, extras=extras)
        return TokenDataset(tokens, parts.charmap.vocab_size), info


# ------------------------------------------------------------------------------------------------
# SeqGAN's oracle
# ------------------------------------------------------------------------------------------------
def _check_oracle_sizes(vocab_size: object, emb_dim: object, hidden_dim: object, seq_len: object) -> None:
    for value, what in ((vocab_size, "vocab_size"), (emb_dim, "emb_dim"), (hidden_dim, "hidden_dim"),
                        (seq_len, "seq_len")):
        _check_count(value, f"oracle_lstm: data.source.{what}")
    if vocab_size < 2:
        raise UserError(f"oracle_lstm: data.source.vocab_size must be an integer >= 2, got {vocab_size!r}")


class OracleLSTM(nn.Module):
    """SeqGAN's synthetic data distribution: a randomly initialised LSTM language model.

    The recipe of SeqGAN's ``target_lstm.py``: vocabulary 5,000, embedding and hidden size 32,
    sequence length 20, every parameter (embedding, the four gates' input and recurrent
    matrices and biases, output matrix and bias) drawn from N(0, 1); the first input is the
    embedding of the oracle's token 0 (SeqGAN's start token), the initial state is zero.
    Parameters are drawn from a ``torch.Generator`` seeded with ``seed`` in SeqGAN's parameter
    order, on the CPU in float32, so a seed gives the same oracle on every machine. They are
    buffers: the oracle is never trained.

    Token ids: the oracle's token ``k`` (0..4,999) is data id ``k + 1``; id 0 stays padding and is
    never produced (the sets have no padding).
    """

    def __init__(self, vocab_size: int = 5000, emb_dim: int = 32, hidden_dim: int = 32, seq_len: int = 20,
                 seed: int = 0) -> None:
        super().__init__()
        _check_oracle_sizes(vocab_size, emb_dim, hidden_dim, seq_len)
        self.vocab_size, self.emb_dim, self.hidden_dim, self.seq_len, self.seed = (
            vocab_size, emb_dim, hidden_dim, seq_len, seed)
        g = torch.Generator().manual_seed(seed)
        V, E, H = vocab_size, emb_dim, hidden_dim

        def normal(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=g)

        emb = normal(V, E)
        gates = {}
        for gate in ("i", "f", "o", "c"):  # SeqGAN: Wi Ui bi, Wf Uf bf, Wog Uog bog, Wc Uc bc
            gates[gate] = (normal(E, H), normal(H, H), normal(H))
        w_out, b_out = normal(H, V), normal(V)
        self.register_buffer("embedding", emb)
        # x @ W + h @ U + b, gates stacked in the order i, f, o, c
        self.register_buffer("W", torch.cat([gates[k][0] for k in "ifoc"], dim=1))
        self.register_buffer("U", torch.cat([gates[k][1] for k in "ifoc"], dim=1))
        self.register_buffer("b", torch.cat([gates[k][2] for k in "ifoc"], dim=0))
        self.register_buffer("W_out", w_out)
        self.register_buffer("b_out", b_out)

    @property
    def start_token(self) -> int:
        """The oracle token whose embedding is the first input (SeqGAN's START_TOKEN = 0)."""
        return 0

    def _step(self, x_emb: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        gates = x_emb @ self.W + h @ self.U + self.b
        H = self.hidden_dim
        i = torch.sigmoid(gates[:, :H])
        f = torch.sigmoid(gates[:, H:2 * H])
        o = torch.sigmoid(gates[:, 2 * H:3 * H])
        c_new = torch.tanh(gates[:, 3 * H:])
        c = f * c + i * c_new
        h = o * torch.tanh(c)
        return h @ self.W_out + self.b_out, h, c

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, batch_size: int = 2048) -> Tensor:
        """``n`` sequences, int64 ``(n, seq_len)`` data ids in 1..vocab_size, by ancestral sampling
        with ``generator`` (which must live on the oracle's device)."""
        out = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            dev = self.embedding.device
            h = torch.zeros(m, self.hidden_dim, device=dev)
            c = torch.zeros_like(h)
            tok = torch.full((m,), self.start_token, dtype=torch.int64, device=dev)
            rows = []
            for _ in range(self.seq_len):
                logits, h, c = self._step(self.embedding[tok], h, c)
                tok = sample_categorical(logits, generator)
                rows.append(tok)
            out.append(torch.stack(rows, dim=1) + 1)
        return torch.cat(out) if out else torch.zeros(0, self.seq_len, dtype=torch.int64)

    @torch.no_grad()
    def token_log_probs(self, x: Tensor, batch_size: int = 2048) -> Tensor:
        """``(N, seq_len)`` natural-log probabilities ``log P(x_t | x_<t)`` of data ids ``x``."""
        if x.dim() != 2 or x.shape[1] != self.seq_len:
            raise ValueError(f"oracle sequences must be (N, {self.seq_len}), got {tuple(x.shape)}")
        x = x.to(self.embedding.device).long()
        if len(x) and (int(x.min()) < 1 or int(x.max()) > self.vocab_size):
            raise ValueError(f"oracle sequences hold ids 1..{self.vocab_size} (no padding)")
        tokens = x - 1
        out = []
        for start in range(0, len(x), batch_size):
            rows = tokens[start:start + batch_size]
            m = len(rows)
            h = torch.zeros(m, self.hidden_dim, device=x.device)
            c = torch.zeros_like(h)
            prev = torch.full((m,), self.start_token, dtype=torch.int64, device=x.device)
            cols = []
            for t in range(self.seq_len):
                logits, h, c = self._step(self.embedding[prev], h, c)
                cols.append(logits.gather(1, rows[:, t:t + 1]).squeeze(1) - torch.logsumexp(logits, dim=-1))
                prev = rows[:, t]
            out.append(torch.stack(cols, dim=1))
        return torch.cat(out) if out else torch.zeros(0, self.seq_len)

    def nll_per_sequence(self, x: Tensor) -> Tensor:
        """``(N,)`` float64: ``-sum_t log P(x_t | x_<t)`` in nats."""
        return -self.token_log_probs(x).double().sum(dim=1)

    def nll(self, x: Tensor) -> float:
        """SeqGAN's ``NLL_oracle`` as its code reports it: the mean over all N·L tokens of
        ``-log P_oracle(x_t | x_<t)``, in nats per token (natural log). Multiply by
        ``seq_len`` for nats per sequence."""
        return float(self.nll_per_sequence(x).sum() / (len(x) * self.seq_len))


class OracleLSTMData(Source):
    """SeqGAN's synthetic experiment: ``n_train`` (10,000) sequences sampled from an
    :class:`OracleLSTM` (built from ``seed``), and a held-out ``test`` split of ``n_test`` more.

    The sequences are drawn with their own generator seeded with ``sample_seed``: train first,
    then test, so ``n_test`` never changes the train split. ``DataInfo.extras["oracle"]`` holds
    what rebuilds the oracle (:func:`oracle_from_info`) for ``nll_oracle``. Vocabulary strings
    are the oracle token numbers ``"0"``..``"4999"``, joined by spaces when decoded.

    Sampling the 20,000 sequences of the full-size recipe takes about 20 s on one CPU thread, so
    with ``cache_dir`` (the data config sets ``$GAN_LAB_CACHE/oracle_lstm``) they are kept in a
    file named by a digest of the oracle, seeds and sizes. ``vocab_size``, ``seq_len``,
    ``n_train`` and ``n_test`` make a CPU-sized oracle (the tests use 50 tokens of length 8).
    """

    name = "oracle_lstm"
    splits = ("train", "test")

    def __init__(self, n_train: int = 10_000, n_test: int = 10_000, seed: int = 0, sample_seed: int = 1,
                 vocab_size: int = 5000, emb_dim: int = 32, hidden_dim: int = 32, seq_len: int = 20,
                 split: str = "train", cache_dir: str | None = None) -> None:
        self.n_train = _check_count(n_train, "oracle_lstm: data.source.n_train")
        self.n_test = _check_count(n_test, "oracle_lstm: data.source.n_test")
        for value, what in ((seed, "seed"), (sample_seed, "sample_seed")):
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserError(f"oracle_lstm: data.source.{what} must be an integer, got {value!r}")
        self.seed, self.sample_seed = seed, sample_seed
        _check_oracle_sizes(vocab_size, emb_dim, hidden_dim, seq_len)
        self.oracle_config = {"vocab_size": vocab_size, "emb_dim": emb_dim, "hidden_dim": hidden_dim,
                              "seq_len": seq_len, "seed": seed}
        if split not in self.splits:
            raise UserError(f"oracle_lstm: data.source.split must be one of {', '.join(self.splits)}; got {split!r}")
        self.split = split
        self.cache_dir = None if cache_dir in (None, "") else str(cache_dir)

    def oracle(self) -> OracleLSTM:
        """A fresh copy of the oracle (on the CPU; move it where you like)."""
        return OracleLSTM(**self.oracle_config)

    def sequences(self) -> tuple[Tensor, Tensor]:
        """``(train, test)`` int64 sequences: from memory, from the disk cache (``cache_dir``), or
        sampled (about 1 s per 1,000 sequences of the full-size oracle on one CPU thread) and
        then cached."""
        key = (tuple(sorted(self.oracle_config.items())), self.sample_seed, self.n_train, self.n_test)
        if self.cache_dir is None:
            return _oracle_sequences(*key)
        return _cached_oracle_sequences(self.cache_dir, *key)

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        train, test = self.sequences()
        x = train if split == "train" else test
        V = self.oracle_config["vocab_size"]
        info = DataInfo(
            self.name, "tokens", (self.oracle_config["seq_len"],), vocab=("",) + tuple(str(k) for k in range(V)),
            extras={"separator": " ", "oracle": dict(self.oracle_config), "sample_seed": self.sample_seed,
                    "n_train": self.n_train, "n_test": self.n_test},
        )
        return TokenDataset(x, V + 1), info


@functools.lru_cache(maxsize=2)
def _oracle_sequences(config: tuple, sample_seed: int, n_train: int, n_test: int) -> tuple[Tensor, Tensor]:
    oracle = OracleLSTM(**dict(config))
    generator = torch.Generator().manual_seed(sample_seed)
    train = oracle.sample(n_train, generator)
    test = oracle.sample(n_test, generator)
    return train, test


ORACLE_CACHE_FORMAT = 1


def _cached_oracle_sequences(cache_dir: str, config: tuple, sample_seed: int, n_train: int,
                             n_test: int) -> tuple[Tensor, Tensor]:
    """:func:`_oracle_sequences` through a file in ``cache_dir`` named by a digest of everything
    that decides the sequences (written atomically, so concurrent processes are safe)."""
    import hashlib
    import json

    key = json.dumps({"format": ORACLE_CACHE_FORMAT, "oracle": dict(config), "sample_seed": sample_seed,
                      "n_train": n_train, "n_test": n_test}, sort_keys=True)
    path = os.path.join(os.path.expanduser(cache_dir), f"oracle_{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt")
    if os.path.isfile(path):
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("key") == key:
                return saved["train"].long(), saved["test"].long()
        except Exception:  # a foreign or truncated file: sample again and overwrite it
            pass
    train, test = _oracle_sequences(config, sample_seed, n_train, n_test)
    dtype = compact_dtype(dict(config)["vocab_size"] + 1)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        torch.save({"key": key, "train": train.to(dtype), "test": test.to(dtype)}, tmp)
        os.replace(tmp, path)
    except OSError as err:  # an unwritable cache only costs time
        warnings.warn(f"oracle_lstm: cannot write the sequence cache {path}: {err.strerror or err}")
    return train, test


def oracle_from_info(info: DataInfo) -> OracleLSTM:
    """The oracle of an ``oracle_lstm`` data set, rebuilt from its :class:`DataInfo` (as a
    checkpoint stores it)."""
    config = info.extras.get("oracle")
    if config is None:
        raise UserError(f"nll_oracle needs the oracle_lstm data set, not {info.name}")
    return OracleLSTM(**config)


__all__ = [
    "CharMap", "LinesSplit", "OracleLSTM", "OracleLSTMData", "Passwords", "RankedSplit", "TextLines",
    "TokenDataset", "Words", "oracle_from_info", "ranked_split", "zxcvbn_list",
]
