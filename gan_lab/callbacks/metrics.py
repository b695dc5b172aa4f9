"""Evaluation during training: every ``eval.every_n_steps`` steps and at the end, logged to every
logger. The evaluation itself is :mod:`gan_lab.metrics.lab`, shared with ``gan_lab.evaluate``."""

from __future__ import annotations

import lightning as L

from gan_lab.app import log
from gan_lab.metrics.lab import evaluate_module


def format_results(results: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in results.items())


class MetricsCallback(L.Callback):
    """Evaluate every ``every_n_steps`` steps and at the end; log to every logger."""

    def __init__(self, make_evaluator, every_n_steps: int = 1000, use_ema: bool = True, seed: int = 0):
        # Built lazily: under DDP it must be built after the process group exists, so that
        # rank 0 alone reads the real data / trains the domain classifier and shares them.
        self.make_evaluator = make_evaluator
        self.evaluator = None
        self.every_n_steps = every_n_steps
        self.use_ema = use_ema
        self.seed = seed
        self._last_step = -1
        self.last: dict[str, float] = {}

    def build(self) -> None:
        if self.evaluator is None:
            self.evaluator = self.make_evaluator()

    def setup(self, trainer, module, stage=None):
        self.build()

    def _run(self, trainer: L.Trainer, module) -> None:
        if module.step == self._last_step:
            return
        self._last_step = module.step
        self.evaluator.device = module.device
        if self.evaluator.extractor is not None:
            self.evaluator.extractor.to(module.device)
        results = evaluate_module(self.evaluator, module, trainer.datamodule, self.use_ema, self.seed)
        self.last = results
        module.last_metrics.update(results)
        for logger in trainer.loggers:
            logger.log_metrics(results, step=module.step)
        if trainer.is_global_zero:
            log.info(f"[eval step {module.step}] {format_results(results)}")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if (self.every_n_steps and module.step and module.step % self.every_n_steps == 0
                and module.at_step_boundary()):
            self._run(trainer, module)

    def on_train_end(self, trainer, module):
        self._run(trainer, module)
