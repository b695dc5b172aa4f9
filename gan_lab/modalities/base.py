"""The interface every modality implements."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor


class Modality:
    name: str = "modality"
    default_arch: str = "mlp"
    """The network family ``net.arch=auto`` picks for data of this modality."""
    metrics: tuple[str, ...] = ()
    """Names of the registered metrics that apply to samples of this modality."""

    def export(self, samples: Tensor, info) -> dict[str, np.ndarray]:
        """Arrays for an ``.npz``: at least ``samples``."""
        raise NotImplementedError

    def save_figure(self, samples: Tensor, path: str, info, *, real: Tensor | None = None,
                    row_labels: list[str] | None = None, nrow: int | None = None) -> str:
        """Draw ``samples`` into ``path`` (what sample grids and ``grid=`` write); returns the path
        actually written (a modality may change the extension, e.g. ``.txt`` for text)."""
        raise NotImplementedError

    def figure_suffix(self) -> str:
        return ".png"

    def describe(self, info) -> str:
        return f"{info.modality} {'x'.join(map(str, info.shape))}"

    def log_figure(self, trainer: Any, path: str, step: int, key: str = "samples") -> None:
        """Send a written figure to every logger that can show it."""
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):  # W&B
                logger.log_image(key=key, images=[path], step=step)
            elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
                from PIL import Image

                img = np.asarray(Image.open(path).convert("RGB"))
                logger.experiment.add_image(key, img, step, dataformats="HWC")
