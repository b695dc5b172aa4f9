"""Evaluation during and after training: one code path for the callback and ``gan_lab.evaluate``.

:func:`build_lab_evaluator` turns the run's ``metrics``/``feature``/``eval`` config and its data
module into a :class:`gan_lab.metrics.Evaluator`; :func:`evaluate_module` draws samples from a
trained module (the EMA generator by default) and scores them.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from gan_lab.errors import UserError


def _plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def labeled_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole training set as (x, y) tensors (for training the domain classifier)."""
    if hasattr(dataset, "x") and hasattr(dataset, "y"):
        return dataset.x, dataset.y
    from gan_lab.data.base import collate_pairs

    xs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=512, shuffle=False, collate_fn=collate_pairs):
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def build_lab_evaluator(metrics_cfg, feature_cfg, eval_cfg, datamodule, device=None):
    """An Evaluator for this run's data: real statistics keyed by data set, split, source
    settings and size; the domain classifier (if chosen) trained on the labelled train split."""
    from gan_lab.metrics import Evaluator

    info = datamodule.info
    metrics = dict(_plain(metrics_cfg) or {})
    if not metrics:
        raise UserError("no metrics selected; e.g. metrics=[fid,kid] (or metrics=[modes] for 2-D data)")
    if "modes" in metrics:
        if info.modes is None:
            raise UserError(f"metric 'modes' is for the 2-D mixtures (ring8, grid25), not data {info.name}")
        opts = dict(metrics["modes"] or {})
        opts["modes"] = opts.get("modes") or info.modes.tolist()
        opts["std"] = opts.get("std") or info.mode_std
        metrics["modes"] = opts
    elif info.kind != "image":
        raise UserError(f"data {info.name} holds 2-D points: use metrics=[modes], not {sorted(metrics)}")
    ev = dict(_plain(eval_cfg) or {})
    real_key = {
        "name": info.name,
        "split": "train",
        "source": repr(datamodule.source),
        "shape": list(info.shape),
        "order": f"randperm-seed{REAL_ORDER_SEED}",
    }
    return Evaluator(
        metrics=metrics,
        feature=_plain(feature_cfg) if "modes" not in metrics else None,
        num_samples=int(ev.get("num_samples", 2000)),
        batch_size=int(ev.get("batch_size", 200)),
        cache_dir=ev.get("cache_dir"),
        real_key=real_key,
        num_real=ev.get("num_real"),
        labeled_data=lambda: labeled_tensors(datamodule.dataset),
        device=device,
        seed=int(ev.get("seed", 0)),
    )


REAL_ORDER_SEED = 0  # part of the real-statistics cache key (see build_lab_evaluator)


def real_batches_of(datamodule, batch_size: int):
    """Real images of the train split in one fixed random order, so that the first ``num_real``
    are a uniform sample (data sets stored sorted by class would otherwise give one class)."""
    from torch.utils.data import Subset

    from gan_lab.data.base import collate_pairs

    def batches():
        dataset = datamodule.dataset
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(REAL_ORDER_SEED))
        loader = DataLoader(Subset(dataset, order.tolist()), batch_size=batch_size, shuffle=False,
                            collate_fn=collate_pairs)
        for x, _ in loader:
            yield x

    return batches


def evaluate_module(evaluator, module, datamodule, use_ema: bool = True, seed: int = 0) -> dict[str, float]:
    """Score ``module``'s samples. Sampling uses its own generator, seeded per rank, so it neither
    duplicates samples across DDP ranks nor disturbs the training RNG stream."""
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    gen = torch.Generator().manual_seed(1_000_003 * seed + rank)

    def sample_fn(n: int) -> torch.Tensor:
        z = torch.randn(n, module.latent_dim, generator=gen).to(module.device)
        y = module.sample_labels(n, generator=gen)
        return module.sample(z, None if y is None else y.to(module.device), use_ema=use_ema)

    return evaluator.evaluate(sample_fn, real_batches_of(datamodule, evaluator.batch_size))


class MetricsCallback(L.Callback):
    """Evaluate every ``every_n_steps`` generator steps and at the end; log to every logger."""

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
        if module.g_step == self._last_step:
            return
        self._last_step = module.g_step
        self.evaluator.device = module.device
        if self.evaluator.extractor is not None:
            self.evaluator.extractor.to(module.device)
        results = evaluate_module(self.evaluator, module, trainer.datamodule, self.use_ema, self.seed)
        self.last = results
        module.last_metrics.update(results)
        for logger in trainer.loggers:
            logger.log_metrics(results, step=module.g_step)
        if trainer.is_global_zero:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in results.items())
            print(f"[eval step {module.g_step}] {shown}", flush=True)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.every_n_steps and module.g_step and module.g_step % self.every_n_steps == 0:
            self._run(trainer, module)

    def on_train_end(self, trainer, module):
        self._run(trainer, module)
