"""A progress bar in generator steps with the latest losses."""

from __future__ import annotations

import sys

import lightning as L
from lightning.pytorch.utilities import rank_zero_only


class StepProgress(L.Callback):
    def __init__(self, refresh_every: int = 10):
        self.refresh_every = refresh_every
        self._bar = None
        self._shown = 0

    @rank_zero_only
    def on_train_start(self, trainer, module):
        from tqdm.auto import tqdm

        self._shown = module.step
        self._bar = tqdm(
            total=module.max_steps, initial=module.step, desc=f"{module.name} steps",
            dynamic_ncols=True, file=sys.stderr,
        )

    @rank_zero_only
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self._bar is None:
            return
        done = module.step - self._shown
        if done >= self.refresh_every or module.step >= module.max_steps:
            keys = ("d_loss", "g_loss", "wasserstein")
            self._bar.set_postfix(
                {k: f"{module.last_metrics[k]:.3f}" for k in keys if k in module.last_metrics},
                refresh=False,  # update() below redraws once
            )
            self._bar.update(done)
            self._shown = module.step
            if module.step >= module.max_steps:  # finished: end the line before end-of-run output
                self._bar.close()
                self._bar = None

    @rank_zero_only
    def on_train_end(self, trainer, module):
        if self._bar is not None:
            self._bar.update(module.step - self._shown)
            self._bar.close()
            self._bar = None
