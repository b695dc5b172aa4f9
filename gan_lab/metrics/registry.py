"""Metrics register themselves by name, with what they need and which data they apply to.

A metric is a small class with three methods, built fresh for every evaluation:

* ``update_real(features, labels)``: this rank's share of the cached real features (only for
  metrics that need ``real``);
* ``update(fake)``: one batch of generated samples, a :class:`FakeBatch` holding the samples and
  whatever the metric declared it needs (extractor features and logits);
* ``compute() -> dict[str, float]``: called on every rank together; DDP-synchronised states
  (torchmetrics) make every rank return the same numbers, equal to one process.

``needs`` says what the evaluator must provide: ``features`` / ``logits`` (of generated samples,
from the feature extractor), ``real`` (cached real features, logits histogram and labels),
``samples`` (the generated samples themselves: points, tokens, images), ``data`` (the data module,
for metrics that read a held-out split). The evaluator loops over the selected metrics with no
per-metric cases; a new metric is one registered class (and a ``conf/metrics/<name>.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import Tensor

from gan_lab.errors import UserError

NEEDS = frozenset({"features", "logits", "real", "samples", "data"})


@dataclass(frozen=True)
class MetricSpec:
    name: str
    keys: tuple[str, ...]
    """Result keys it produces (metrics with per-class results add ``<key>/<class>`` keys too)."""
    needs: frozenset[str]
    modalities: tuple[str, ...]
    factory: Callable[..., Any]
    aliases: tuple[str, ...] = ()
    summary: str = ""


METRICS: dict[str, MetricSpec] = {}
_ALIASES: dict[str, str] = {}


def register_metric(name: str, *, keys: tuple[str, ...], needs: set[str] | frozenset[str],
                    modalities: tuple[str, ...], aliases: tuple[str, ...] = (), summary: str = ""):
    """Class decorator: ``@register_metric("fid", keys=("fid",), needs={"features", "real"}, ...)``.
    The class is called as ``cls(context, **options)``."""
    unknown = set(needs) - NEEDS
    if unknown:
        raise ValueError(f"metric {name}: unknown needs {sorted(unknown)}; known: {sorted(NEEDS)}")

    def wrap(cls):
        METRICS[name] = MetricSpec(name, tuple(keys), frozenset(needs), tuple(modalities), cls, tuple(aliases),
                                   summary or (cls.__doc__ or "").strip().splitlines()[0])
        for alias in aliases:
            _ALIASES[alias] = name
        return cls

    return wrap


def ensure_registered() -> None:
    """Import the modules whose classes register the lab's metrics."""
    import gan_lab.metrics.builtin  # noqa: F401
    import gan_lab.metrics.conditional  # noqa: F401
    import gan_lab.metrics.encoding  # noqa: F401
    import gan_lab.metrics.ppl  # noqa: F401
    import gan_lab.metrics.text  # noqa: F401
    import gan_lab.metrics.translation  # noqa: F401


def canonical(name: str) -> str:
    """The registered name of ``name`` (aliases like ``inception_score`` accepted), or a one-line
    error listing the valid metrics."""
    ensure_registered()
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key not in METRICS:
        raise UserError(f"unknown metric {name!r}; choose from {', '.join(sorted(METRICS))}")
    return key


@dataclass
class FakeBatch:
    """One batch of generated samples as the metrics see it."""

    x: Tensor
    """The samples (images in [-1, 1], points, token ids)."""
    y: Tensor | None = None
    """The labels they were generated for (conditional models), else None."""
    features: Tensor | None = None
    logits: Tensor | None = None
    batch: Any = None
    """The whole :class:`~gan_lab.data.batch.Batch` the model returned (inputs, targets, ...)."""


@dataclass
class EvalContext:
    """What a metric may read when it is built."""

    extractor: Any = None
    real: dict[str, Any] | None = None
    """``features`` (all real, float32), ``labels`` (or None), ``class_hist`` (or None)."""
    device: Any = None
    seed: int = 0
    info: Any = None
    """The data set's :class:`~gan_lab.data.DataInfo` (None when the caller has none)."""
    data: Any = None
    """The data module (metrics that need ``data``)."""
    notes: dict[str, Any] = field(default_factory=dict)
