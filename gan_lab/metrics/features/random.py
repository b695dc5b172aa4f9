"""``feature=random`` (an untrained seeded CNN, for smoke tests) and the adapter for any module."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from gan_lab.metrics.features.base import FeatureExtractor, FeatureOutput, _resize, state_digest, to_channels


class RandomFeatureExtractor(FeatureExtractor):
    """An untrained CNN with seeded weights: fast and deterministic, meaningless numbers.

    For smoke tests of the evaluation pipeline only. Input: channels → ``channels``, resized to
    ``size`` (bilinear, antialiased).
    """

    name = "random"

    def __init__(self, num_features: int = 64, num_classes: int | None = 10, channels: int = 3,
                 size: int = 32, seed: int = 0):
        super().__init__()
        self.num_features = num_features
        self.num_classes = num_classes
        self.channels = channels
        self.size = (size, size)
        self.seed = seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.body = nn.Sequential(
                nn.Conv2d(channels, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, num_features),
            )
            self.head = nn.Linear(num_features, num_classes) if num_classes else None
        self.requires_grad_(False).eval()

    def cache_id(self) -> dict[str, Any]:
        return {"name": "random", "seed": self.seed, "num_features": self.num_features,
                "num_classes": self.num_classes, "channels": self.channels, "size": list(self.size)}

    def extract(self, x: Tensor) -> FeatureOutput:
        x = _resize(to_channels(x.float(), self.channels), self.size, "bilinear", True)
        f = self.body(x)
        return FeatureOutput(f, self.head(f) if self.head is not None else None)


class ModuleFeatureExtractor(FeatureExtractor):
    """Adapter for a plain ``nn.Module`` that maps [-1, 1] images to features.

    Its output may be a tensor (features; spatial dims averaged), a ``(features, logits)`` pair
    or a :class:`FeatureOutput`. No resizing or channel conversion is done. The cache id is the
    class name plus a digest of the state dict.
    """

    name = "module"

    def __init__(self, module: nn.Module, num_features: int | None = None, num_classes: int | None = None,
                 probe_shape: Sequence[int] = (1, 3, 32, 32)):
        super().__init__()
        self.module = module
        if num_features is None:
            with torch.no_grad():
                out = self.extract(torch.zeros(*probe_shape, device=self.device))
            num_features = out.features.shape[1]
            num_classes = None if out.logits is None else out.logits.shape[1]
        self.num_features = int(num_features)
        self.num_classes = num_classes
        self._digest: str | None = None

    def cache_id(self) -> dict[str, Any]:
        if self._digest is None:
            self._digest = state_digest(self.module)
        return {"name": "module", "class": type(self.module).__qualname__, "weights": self._digest}

    def extract(self, x: Tensor) -> FeatureOutput:
        out = self.module(x)
        if isinstance(out, (tuple, list)):
            feats, logits = out[0], (out[1] if len(out) > 1 else None)
        else:
            feats, logits = out, None
        if feats.ndim > 2:
            feats = feats.flatten(2).mean(dim=2)
        return FeatureOutput(feats.float(), None if logits is None else logits.float())
