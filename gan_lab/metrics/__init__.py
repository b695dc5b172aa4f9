"""Judging GANs the way the field does: FID, IS, KID, precision/recall, mode diagnostics.

* :mod:`.functional` — the formulas, as float64 functions of feature arrays;
* :mod:`.features` — feature extractors (Inception, any TorchScript net, a domain classifier),
  one module each; :mod:`.domain` trains the domain classifier;
* :mod:`.states`, :mod:`.diagnostics` — torchmetrics states (DDP-synchronised);
* :mod:`.registry` — metrics register by name with what they need; :mod:`.builtin` registers
  the image and 2-D metrics;
* :mod:`.cache` — the keyed on-disk cache of real-data features;
* :mod:`.evaluator` — :class:`Evaluator`, the generic loop the training callback and ``evaluate`` call;
* :mod:`.lab` — how a run's config and data module become an Evaluator, and how a model is sampled.

Names are imported lazily (torchmetrics takes seconds to import), so
``from gan_lab.metrics.functional import frechet_distance`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClassDiagnostics": "diagnostics",
    "ModeCoverage": "diagnostics",
    "Evaluator": "evaluator",
    "metric_names": "evaluator",
    "build_evaluator": "evaluator",
    "shard_bounds": "evaluator",
    "DomainFeatureExtractor": "features",
    "FeatureExtractor": "features",
    "FeatureOutput": "features",
    "InceptionFeatureExtractor": "features",
    "RandomFeatureExtractor": "features",
    "TorchScriptFeatureExtractor": "features",
    "build_feature_extractor": "features",
    "class_diagnostics": "functional",
    "frechet_distance": "functional",
    "inception_score": "functional",
    "kernel_inception_distance": "functional",
    "mode_stats_2d": "functional",
    "precision_recall": "functional",
    "FID": "states",
    "KID": "states",
    "InceptionScoreMetric": "states",
    "PrecisionRecall": "states",
    "METRICS": "registry",
    "register_metric": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gan_lab.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gan_lab.metrics.{module}"), name)
    if name == "METRICS":
        from gan_lab.metrics.registry import ensure_registered

        ensure_registered()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
