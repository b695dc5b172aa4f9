"""Checkpoints written atomically: a crash mid-write never leaves a corrupt file behind.

Also where a run stops cleanly when asked to: on SIGTERM (Lightning notices it) or SIGINT
(Ctrl+C; a second one aborts at once) the callback writes ``last.ckpt`` at the end of the
current batch, so the run can be resumed exactly (``resume=auto``), and the run stops.
"""

from __future__ import annotations

import os
import signal
import threading

import lightning as L

from gan_lab.checkpoint import find_checkpoints
from gan_lab.errors import UserError


class RunDirError(UserError):
    """The run directory cannot be written (disk full, read-only, permissions)."""


def atomic_save(trainer: L.Trainer, path: str) -> None:
    """Save through Lightning (all ranks take part) into a temp file, then rename on rank 0."""
    tmp = f"{path}.tmp"
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        trainer.save_checkpoint(tmp, weights_only=False)  # full state: optimizers, loops, RNG
        if trainer.is_global_zero:
            os.replace(tmp, path)
    except OSError as err:
        if trainer.is_global_zero and os.path.exists(tmp):
            try:
                os.remove(tmp)
            except OSError:
                pass
        raise RunDirError(f"cannot write checkpoint {path}: {err.strerror or err}") from None
    trainer.strategy.barrier("gan_lab.atomic_save")


class GANCheckpoint(L.Callback):
    """``last.ckpt`` plus ``step_XXXXXXX.ckpt`` every ``every_n_steps`` steps, and ``last.ckpt``
    when the run is stopped by SIGTERM or SIGINT or ends. Every save happens after a whole batch:
    what a checkpoint records is exactly what the next update would have seen."""

    def __init__(self, dirpath: str, every_n_steps: int = 1000, save_last: bool = True):
        self.dirpath = dirpath
        self.every_n_steps = every_n_steps
        self.save_last = save_last
        self._last_saved: int | None = None
        self.stopped_by: str | None = None  # "SIGTERM" / "SIGINT" once a stop was handled
        self._sigint = False
        self._old_sigint = None

    def save(self, trainer: L.Trainer, module, periodic: bool) -> None:
        key = module.counters["tick"]  # batches trained: one state per value
        if key == self._last_saved:
            return
        module.check_weights()  # never write NaN/Inf weights over a good checkpoint
        self._last_saved = key
        if periodic:
            atomic_save(trainer, os.path.join(self.dirpath, f"step_{module.step:07d}.ckpt"))
        if self.save_last:
            atomic_save(trainer, os.path.join(self.dirpath, "last.ckpt"))

    # ------------------------------------------------------------------ SIGINT

    def _on_sigint(self, signum, frame) -> None:
        if self._sigint:  # second Ctrl+C: give up on the clean stop
            raise KeyboardInterrupt
        self._sigint = True
        print("\ngan_lab: SIGINT: saving a checkpoint at the end of this batch (Ctrl+C again to abort)",
              flush=True)

    def on_train_start(self, trainer, module):
        if threading.current_thread() is threading.main_thread():
            self._old_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def teardown(self, trainer, module, stage):
        if self._old_sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._old_sigint)
            self._old_sigint = None

    # ------------------------------------------------------------------ saving

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = module.step
        if step and self.every_n_steps and step % self.every_n_steps == 0 and module.at_step_boundary():
            self.save(trainer, module, periodic=True)
        stop = "SIGTERM" if trainer.received_sigterm else "SIGINT" if self._sigint else None
        if stop and self.stopped_by is None:
            self.stopped_by = stop
            self.save(trainer, module, periodic=False)
            trainer.should_stop = True  # SIGINT; on SIGTERM Lightning raises SIGTERMException next

    def on_train_end(self, trainer, module):
        self.save(trainer, module, periodic=False)


def stopped_by(trainer: L.Trainer) -> str | None:
    """The signal that stopped this run cleanly, if any."""
    for cb in trainer.callbacks:
        if isinstance(cb, GANCheckpoint) and cb.stopped_by:
            return cb.stopped_by
    return None


__all__ = ["GANCheckpoint", "RunDirError", "atomic_save", "find_checkpoints", "stopped_by"]
