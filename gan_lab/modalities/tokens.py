"""Token sequences: int64 ``(L,)`` ids into ``DataInfo.vocab``; exported as ids and text.

Token id 0 is padding: it decodes to nothing, so a password of 6 characters in a 10-token
sequence is 6 character tokens followed by 4 zeros. Tokens are joined by
``DataInfo.extras["separator"]`` when decoded ("" for characters, " " for the oracle's words).

* ``gan_lab.sample out=<file>.txt``: one decoded sequence per line; ``out=<file>.npz``: the ids
  (``samples``, int64 ``(N, L)``), the decoded ``text`` and the ``vocab``.
* Sample "grids" are text files (``samples/step_XXXXXXX.txt``, the first 64 samples, one per
  line), logged as a W&B table or TensorBoard text.
"""

from __future__ import annotations

import os

import numpy as np
from torch import Tensor

from gan_lab.modalities.base import Modality

PAD = 0


def decode(tokens: Tensor, vocab, separator: str = "") -> list[str]:
    """Each row of ids as a string (padding dropped)."""
    rows = tokens.detach().cpu().tolist()
    return [separator.join(vocab[t] for t in row if t != PAD) for row in rows]


def decode_info(tokens: Tensor, info) -> list[str]:
    """:func:`decode` with a data set's vocabulary and separator."""
    return decode(tokens, info.vocab, info.extras.get("separator", ""))


def _printable(line: str) -> str:
    """A sequence as one line of a text file: line breaks inside it (a text_lines set may hold
    ``\\r`` or other separators) are escaped so that one line stays one sequence."""
    if "\n" in line or "\r" in line or "\x0b" in line or "\x0c" in line or "\u2028" in line:
        return line.encode("unicode_escape").decode("ascii")
    return line


class TokensModality(Modality):
    name = "tokens"
    default_arch = "conv1d"
    metrics = ("guess", "ngram_js", "nll_oracle", "nll_test", "bleu")
    figure_samples = 64
    """Sequences a sample "grid" shows (the text file and the logged table)."""

    def export(self, samples: Tensor, info) -> dict[str, np.ndarray]:
        ids = samples.detach().cpu().long().numpy()
        return {"samples": ids, "text": np.array(decode_info(samples, info), dtype=str),
                "vocab": np.array(list(info.vocab), dtype=str)}

    def figure_suffix(self) -> str:
        return ".txt"

    def save_figure(self, samples, path, info, *, real=None, row_labels=None, nrow=None) -> str:
        """One decoded sequence per line into ``<path without extension>.txt`` (UTF-8)."""
        path = os.path.splitext(path)[0] + ".txt"
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for line in decode_info(samples, info):
                f.write(_printable(line) + "\n")
        return path

    def describe(self, info) -> str:
        return f"tokens: sequences of {info.shape[0]} over {len(info.vocab) - 1} symbols"

    def log_figure(self, trainer, path, step, key="samples") -> None:
        """The first :attr:`figure_samples` lines as a W&B table (columns step, sample) or as
        TensorBoard text (a code block, so spacing shows)."""
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f][: self.figure_samples]
        for logger in trainer.loggers:
            if hasattr(logger, "log_text"):  # W&B
                logger.log_text(key=key, columns=["step", "sample"], data=[[step, line] for line in lines], step=step)
            elif hasattr(getattr(logger, "experiment", None), "add_text"):  # TensorBoard
                logger.experiment.add_text(key, "\n".join(f"    {line}" for line in lines), step)
