"""Sample grids from the fixed noise batch, so grids of one run are comparable over time."""

from __future__ import annotations

import os

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor


def save_samples_figure(
    samples: Tensor, path: str, kind: str, real: Tensor | None = None, modes: Tensor | None = None
) -> str:
    """Write samples as a PNG: an image grid, or for 2-D data a scatter over the real data."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if kind == "image":
        import torchvision.utils

        nrow = max(1, int(round(samples.shape[0] ** 0.5)))
        torchvision.utils.save_image(
            samples.float().cpu(), path, nrow=nrow, normalize=True, value_range=(-1, 1)
        )
        return path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if real is not None:
        r = real.cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=4, c="tab:blue", alpha=0.3, label="real")
    if modes is not None:
        m = modes.cpu().numpy()
        ax.scatter(m[:, 0], m[:, 1], s=60, marker="+", c="black", label="modes")
    s = samples.float().cpu().numpy()
    ax.scatter(s[:, 0], s[:, 1], s=4, c="tab:red", alpha=0.6, label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def log_image(trainer: L.Trainer, path: str, step: int, key: str = "samples") -> None:
    """Send a PNG to every logger that can show images."""
    for logger in trainer.loggers:
        if hasattr(logger, "log_image"):  # W&B
            logger.log_image(key=key, images=[path], step=step)
        elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
            import numpy as np
            from PIL import Image

            img = np.asarray(Image.open(path).convert("RGB"))
            logger.experiment.add_image(key, img, step, dataformats="HWC")


class SampleGrid(L.Callback):
    """Every ``every_n_steps`` G steps (and at the end) draw G(fixed_z) and save/log it."""

    def __init__(self, dirpath: str, every_n_steps: int = 500, num_real: int = 2000):
        self.dirpath = dirpath
        self.every_n_steps = every_n_steps
        self.num_real = num_real
        self._last_step = -1
        self._real = None

    def _write(self, trainer: L.Trainer, module) -> None:
        step = module.g_step
        if step == self._last_step:
            return
        self._last_step = step
        info = module.data_info
        z = module.fixed_z
        y = module.sample_labels(z.shape[0])
        samples = module.sample(z, y)
        real = None
        if info.kind == "vector":
            if self._real is None and trainer.datamodule is not None:
                self._real = trainer.datamodule.real_batch(self.num_real)[0]
            real = self._real
            # a scatter needs more points than an image grid
            extra = module.sample(torch.randn(1000, z.shape[1], device=z.device))
            samples = torch.cat([samples, extra])
        path = os.path.join(self.dirpath, f"step_{step:07d}.png")
        save_samples_figure(samples, path, info.kind, real, info.modes)
        log_image(trainer, path, step)

    @rank_zero_only
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.g_step and module.g_step % self.every_n_steps == 0:
            self._write(trainer, module)

    @rank_zero_only
    def on_train_end(self, trainer, module):
        self._write(trainer, module)
        print(f"samples: {os.path.abspath(self.dirpath)}", flush=True)
