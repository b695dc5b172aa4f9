"""Helpers of the benchmarks (conditional.py, ssgan.py, tricks.py, stacked_mnist.py, ...): train a lab
model in this process (optionally until a wall-clock budget is spent) and score it with the lab's
own evaluator, the code path of ``metrics=[...]`` and ``gan_lab.evaluate``."""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import compose  # noqa: E402


def train(overrides: list[str], seconds: float | None = None, clock=time.perf_counter,
          run_dir: str | None = None, checkpoint_every: int | None = None):
    """Train with the lab's loop; stop at ``trainer.max_steps`` or, with ``seconds``, at the first
    step boundary after that much training time on ``clock`` (wall time; ``time.process_time``
    for CPU seconds of this process, a budget other jobs on the machine do not shrink). Returns
    ``(module, datamodule, seconds, steps, cfg)``.

    By default the run lives in a temporary directory. With ``run_dir`` it trains there with
    ``resume=auto`` and a checkpoint every ``checkpoint_every`` G steps, so a call stopped part
    way (SIGTERM writes a last checkpoint too) continues from there when made again."""
    import lightning as L
    from omegaconf import open_dict

    import gan_lab.train as train_mod

    holder: dict = {}

    class Keep(L.Callback):
        def on_train_start(self, trainer, module):
            holder["t0"] = clock()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if seconds is not None and module.at_step_boundary() and clock() - holder["t0"] > seconds:
                trainer.should_stop = True

        def on_train_end(self, trainer, module):
            holder["module"], holder["datamodule"] = module, trainer.datamodule
            holder["seconds"] = clock() - holder["t0"]

    original = train_mod.build_trainer

    def with_keep(cfg, run_dir, callbacks, loggers):
        return original(cfg, run_dir, callbacks + [Keep()], loggers)

    with tempfile.TemporaryDirectory() as tmp:
        if run_dir is None:
            cfg = compose(overrides, tmp)
        else:
            cfg = compose([*overrides, "resume=auto"], run_dir)
            with open_dict(cfg):
                cfg.callbacks = {"checkpoint": {"_target_": "gan_lab.callbacks.GANCheckpoint",
                                                "dirpath": os.path.join(run_dir, "checkpoints"),
                                                "every_n_steps": checkpoint_every or 1000}}
        train_mod.build_trainer = with_keep
        try:
            train_mod.run(cfg)
        finally:
            train_mod.build_trainer = original
    module = holder["module"].cpu().eval()
    return module, holder["datamodule"], holder["seconds"], module.step, cfg


def score(module, datamodule, cfg, metrics: dict, n: int, seed: int = 0, **sample_options) -> dict[str, float]:
    """The lab's evaluation of ``module`` (its EMA generator where it has one) on ``n`` samples."""
    from gan_lab.metrics.lab import build_lab_evaluator, evaluate_module

    eval_cfg = {"num_samples": n, "batch_size": 250, "seed": seed,
                "cache_dir": os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                          ".cache", "gan_lab", "real_stats")}
    evaluator = build_lab_evaluator(metrics, cfg.feature, eval_cfg, datamodule, progress=False)
    return evaluate_module(evaluator, module, datamodule, True, seed, sample_options=sample_options)
