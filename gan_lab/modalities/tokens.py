"""Token sequences: int64 ``(L,)`` ids into ``DataInfo.vocab``; exported as ids and text.

Token id 0 is padding: it decodes to nothing, so a password of 6 characters in a 10-token
sequence is 6 character tokens followed by 4 zeros.
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


class TokensModality(Modality):
    name = "tokens"
    default_arch = "conv1d"
    metrics = ()

    def export(self, samples: Tensor, info) -> dict[str, np.ndarray]:
        return {"samples": samples.detach().cpu().long().numpy()}

    def figure_suffix(self) -> str:
        return ".txt"

    def save_figure(self, samples, path, info, *, real=None, row_labels=None, nrow=None) -> str:
        path = os.path.splitext(path)[0] + ".txt"
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        separator = info.extras.get("separator", "")
        with open(path, "w", encoding="utf-8") as f:
            for line in decode(samples, info.vocab, separator):
                f.write(line + "\n")
        return path

    def log_figure(self, trainer, path, step, key="samples") -> None:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f][:64]
        for logger in trainer.loggers:
            if hasattr(logger, "log_text"):  # W&B: a table
                logger.log_text(key=key, columns=["sample"], data=[[line] for line in lines], step=step)
            elif hasattr(getattr(logger, "experiment", None), "add_text"):  # TensorBoard
                logger.experiment.add_text(key, "\n".join(f"    {line}" for line in lines), step)
