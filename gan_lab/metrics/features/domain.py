"""``feature=domain``: a small CNN classifier the lab trains on the run's labelled data."""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
from torch import Tensor, nn

from gan_lab.errors import UserError
from gan_lab.metrics.features.base import FeatureExtractor, FeatureOutput, _resize, state_digest, to_channels


def _on_rank0_then_broadcast(train_or_load: Callable[[], tuple[nn.Module, dict]], device: torch.device):
    """Under an initialised process group only rank 0 trains/loads the classifier and sends it to
    the others, so every rank extracts features with the same weights (GPU training is not
    bit-reproducible) and only rank 0 needs the data."""
    import torch.distributed as dist

    from gan_lab.metrics import domain as dom

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return train_or_load()
    payload: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            model, info = train_or_load()
            payload = [dom.to_checkpoint(model, info["key"], info)]
            payload[0]["info"].update(cache_path=info.get("cache_path"), cache_hit=info.get("cache_hit"))
        except Exception as err:
            dist.broadcast_object_list([{"error": f"{type(err).__name__}: {err}"}], src=0)
            raise
    dist.broadcast_object_list(payload, src=0)
    ckpt = payload[0]
    if "error" in ckpt:
        raise RuntimeError(f"rank 0 failed to prepare the domain classifier: {ckpt['error']}")
    if dist.get_rank() == 0:
        return model, info
    return dom.build_from_checkpoint(ckpt).to(device), dict(ckpt["info"], key=ckpt["key"])


class DomainFeatureExtractor(FeatureExtractor):
    """Features and logits of a small CNN classifier trained on the experiment's labelled data.

    Input handling: channels adjusted to the training data's (repeat / average), resized to the
    training images' H×W with antialiased bilinear if different; no quantisation.

    Either ``checkpoint`` (a ``domain_*.pt`` written earlier) or ``labeled_data`` — ``(x, y)``
    with ``x`` (N, C, H, W) in [-1, 1] and integer labels ``y``, or a zero-argument callable
    returning them — must be given. With data, the checkpoint is looked up in ``cache_dir`` by
    (``data_name``, N, shape, a digest of the data, the settings) and trained on a miss
    (:func:`gan_lab.metrics.domain.load_or_train`). ``info`` records the held-out accuracy.
    """

    name = "domain"

    def __init__(
        self,
        data_name: str | None = None,
        labeled_data: Any = None,
        cache_dir: str = ".cache/gan_lab/domain",
        checkpoint: str | None = None,
        num_classes: int | None = None,
        device: str | None = None,
        min_accuracy: float = 0.0,
        **train_settings: Any,
    ):
        super().__init__()
        from gan_lab.metrics import domain as dom

        dev = torch.device(device) if device else torch.device("cpu")
        if checkpoint:
            if not os.path.isfile(checkpoint):
                raise UserError(f"domain classifier checkpoint not found: feature.checkpoint={checkpoint}")
            ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
            model = dom.build_from_checkpoint(ckpt).to(dev)
            info = dict(ckpt["info"], key=ckpt["key"], cache_path=checkpoint, cache_hit=True)
        else:
            if labeled_data is None:
                raise UserError(
                    "feature=domain needs the labelled training images to train its classifier "
                    "(the caller passes labeled_data=(x, y)), or feature.checkpoint=<domain_*.pt>"
                )

            def train_or_load():
                data = labeled_data() if callable(labeled_data) else labeled_data
                x, y = data
                return dom.load_or_train(
                    data_name or "unnamed", x, y, cache_dir, num_classes=num_classes, device=dev, **train_settings
                )

            model, info = _on_rank0_then_broadcast(train_or_load, dev)
        if info.get("test_accuracy", 1.0) < min_accuracy:
            raise UserError(
                f"domain classifier reached only {info['test_accuracy']:.3f} held-out accuracy (< min_accuracy="
                f"{min_accuracy}); train longer (feature.epochs=...) or use another feature extractor"
            )
        self.model = model.eval().requires_grad_(False)
        self.info = info
        self.key = info["key"]
        self.num_features = model.feature_dim
        self.num_classes = model.num_classes
        self.channels = model.in_channels
        self.input_size = model.image_size
        self._state_digest: str | None = None

    def cache_id(self) -> dict[str, Any]:
        if self._state_digest is None:
            self._state_digest = state_digest(self.model)
        return {"name": "domain", "classifier": self.key, "weights": self._state_digest}

    def describe(self) -> str:
        acc = self.info.get("test_accuracy", float("nan"))
        return (f"domain classifier ({self.key.get('data')}, held-out accuracy {acc:.4f}): {self.channels}-channel "
                f"input, antialiased bilinear resize to {self.input_size[0]}x{self.input_size[1]}, "
                f"{self.num_features}-d features, {self.num_classes} classes")

    def extract(self, x: Tensor) -> FeatureOutput:
        x = to_channels(x.float().clamp(-1, 1), self.channels)
        x = _resize(x, self.input_size, "bilinear", True)
        feats, logits = self.model.forward_features(x)
        return FeatureOutput(feats.float(), logits.float())
