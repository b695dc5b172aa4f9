"""Checkpoints written atomically: a crash mid-write never leaves a corrupt file behind."""

from __future__ import annotations

import os

import lightning as L


def atomic_save(trainer: L.Trainer, path: str) -> None:
    """Save through Lightning (all ranks take part) into a temp file, then rename on rank 0."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    trainer.save_checkpoint(tmp)
    if trainer.is_global_zero:
        os.replace(tmp, path)
    trainer.strategy.barrier("gan_lab.atomic_save")


class GANCheckpoint(L.Callback):
    """``last.ckpt`` plus ``step_XXXXXXX.ckpt`` every ``every_n_steps`` generator steps."""

    def __init__(self, dirpath: str, every_n_steps: int = 1000, save_last: bool = True):
        self.dirpath = dirpath
        self.every_n_steps = every_n_steps
        self.save_last = save_last
        self._last_step = -1

    def save(self, trainer: L.Trainer, step: int, periodic: bool) -> None:
        if step == self._last_step:
            return
        self._last_step = step
        if periodic:
            atomic_save(trainer, os.path.join(self.dirpath, f"step_{step:07d}.ckpt"))
        if self.save_last:
            atomic_save(trainer, os.path.join(self.dirpath, "last.ckpt"))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = module.g_step
        if step and self.every_n_steps and step % self.every_n_steps == 0:
            self.save(trainer, step, periodic=True)

    def on_train_end(self, trainer, module):
        self.save(trainer, module.g_step, periodic=False)
