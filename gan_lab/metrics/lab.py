"""The evaluation of a lab model: one code path for the training callback and ``gan_lab.evaluate``.

:func:`build_lab_evaluator` turns a run's ``metrics``/``feature``/``eval`` config and its data
module into an :class:`~gan_lab.metrics.evaluator.Evaluator` (checking that every chosen metric
applies to the data's modality); :func:`evaluate_module` draws samples from a trained module (the
EMA copy by default) and scores them.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from omegaconf import DictConfig, OmegaConf

from gan_lab.errors import UserError

REAL_ORDER_SEED = 0  # part of the real-statistics cache key: the real reference is a fixed random order


def _plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def build_lab_evaluator(metrics_cfg, feature_cfg, eval_cfg, datamodule, device=None,
                        keys: Mapping[str, str] | None = None, progress: bool = True):
    """An Evaluator for a run's data: real statistics keyed by data set, split, source settings
    and size; the domain classifier (if chosen) trained on the labelled train split."""
    from gan_lab.metrics.evaluator import Evaluator, parse_metrics
    from gan_lab.metrics.registry import METRICS
    from gan_lab.modalities import get_modality

    info = datamodule.info
    metrics = parse_metrics(_plain(metrics_cfg) or {})
    if not metrics:
        raise UserError("no metrics selected; e.g. metrics=[fid,kid] (or metrics=[modes] for 2-D data)")
    for name in metrics:
        if info.modality not in METRICS[name].modalities:
            fitting = sorted(n for n, s in METRICS.items() if info.modality in s.modalities)
            raise UserError(f"metric '{name}' does not apply to {info.modality} data ({info.name}); "
                            f"metrics for it: {', '.join(fitting) or 'none yet'}")
    uses_features = any(METRICS[n].needs & {"features", "logits", "real"} for n in metrics)
    ev = dict(_plain(eval_cfg) or {})
    reference = info.pairing is not None  # translation: compare with the target side
    real_key = {
        "name": info.name,
        "split": "train",
        "side": "target" if reference else "x",
        "source": repr(datamodule.source),
        "shape": list(info.shape),
        "order": f"randperm-seed{REAL_ORDER_SEED}",
    }
    return Evaluator(
        metrics=metrics,
        feature=_plain(feature_cfg) if uses_features else None,
        num_samples=ev.get("num_samples", 2000),
        batch_size=int(ev.get("batch_size", 200)),
        cache_dir=ev.get("cache_dir"),
        real_key=real_key,
        num_real=ev.get("num_real"),
        labeled_data=lambda: datamodule.labelled_tensors(reference=reference),
        device=device,
        seed=int(ev.get("seed", 0)),
        class_diagnostics=None if uses_features else False,
        context={"info": info, "data": datamodule},
        keys=keys,
        progress=progress,
    )


def real_batches_of(datamodule, batch_size: int):
    """Real samples of the train split in one fixed random order, so that the first ``num_real``
    are a uniform sample (data sets stored sorted by class would otherwise give one class); for a
    translation set, its output side (targets, or domain B)."""

    reference = datamodule.info.pairing is not None

    def batches():
        yield from datamodule.batches(batch_size, order_seed=REAL_ORDER_SEED, reference=reference)

    return batches


def evaluate_module(evaluator, module, datamodule, use_ema: bool = True, seed: int = 0,
                    sample_options: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Score ``module``'s samples. Sampling uses its own generator, seeded per rank, so it neither
    duplicates samples across DDP ranks nor disturbs the training RNG stream."""
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    gen = torch.Generator().manual_seed(1_000_003 * seed + rank)
    options = dict(sample_options or {})

    def sample_fn(n: int):
        return module.evaluation_sample(n, gen, datamodule, use_ema=use_ema, **options)

    return evaluator.evaluate(sample_fn, real_batches_of(datamodule, evaluator.batch_size))
