"""Sample grids during training, drawn from a fixed seed so the grids of one run are comparable.

What a grid shows is the family's (``module.grid``: rows of classes, translation triplets, ...);
how it is drawn is the data modality's (an image grid, a scatter over the real 2-D data, a text
file of sequences). Sampling uses its own seeded generator, so writing a grid never moves the
training's random streams: a run with grids and one without train identically.
"""

from __future__ import annotations

import os

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from gan_lab.engine.module import GRID_SEED
from gan_lab.modalities import get_modality


class SampleGrid(L.Callback):
    """Every ``every_n_steps`` steps (and at the end) draw the family's grid and save/log it."""

    def __init__(self, dirpath: str, every_n_steps: int = 500, num_real: int = 2000):
        self.dirpath = dirpath
        self.every_n_steps = every_n_steps
        self.num_real = num_real
        self._last_step = -1
        self._real = None

    def write(self, trainer: L.Trainer, module) -> str | None:
        step = module.step
        if step == self._last_step:
            return None
        self._last_step = step
        info = module.data_info
        modality = get_modality(info)
        batch, nrow, row_labels = module.grid(torch.Generator().manual_seed(GRID_SEED))
        real = None
        if info.modality == "points":
            if self._real is None and trainer.datamodule is not None:
                self._real = trainer.datamodule.real_batch(self.num_real).x
            real = self._real
        path = os.path.join(self.dirpath, f"step_{step:07d}{modality.figure_suffix()}")
        path = modality.save_figure(batch.x, path, info, real=real, row_labels=row_labels, nrow=nrow)
        modality.log_figure(trainer, path, step)
        for key, figure in module.figures(self.dirpath, step).items():
            modality.log_figure(trainer, figure, step, key=key)
        return path

    @rank_zero_only
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.step and module.step % self.every_n_steps == 0 and module.at_step_boundary():
            self.write(trainer, module)

    @rank_zero_only
    def on_train_end(self, trainer, module):
        self.write(trainer, module)
