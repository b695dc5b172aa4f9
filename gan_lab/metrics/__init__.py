"""Judging GANs the way the field does: FID, IS, KID, precision/recall, mode diagnostics.

* :mod:`.functional` — the formulas, as float64 functions of feature arrays;
* :mod:`.features` — feature extractors (Inception, any TorchScript net, a domain classifier);
* :mod:`.metrics`, :mod:`.diagnostics` — torchmetrics ``Metric``s (DDP-synchronised states);
* :mod:`.stats_cache` — the keyed on-disk cache of real-data features;
* :mod:`.evaluator` — :class:`Evaluator`, what the training callback and ``evaluate`` call.

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
    "METRIC_NAMES": "evaluator",
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
    "FID": "metrics",
    "KID": "metrics",
    "InceptionScoreMetric": "metrics",
    "PrecisionRecall": "metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gan_lab.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gan_lab.metrics.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
