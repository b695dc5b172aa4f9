"""The contract every feature extractor follows, and the input handling they share.

* input: a float batch ``(B, C, H, W)`` with values in ``[-1, 1]`` and ``C`` in ``{1, 3}``;
  grayscale is repeated to three channels where the network needs RGB (and RGB averaged to one
  channel where it needs grayscale); each extractor resizes to its own input size;
* output: :class:`FeatureOutput` ``(features, logits)``: ``features`` (B, num_features) float32
  and ``logits`` (B, num_classes) or ``None`` when the network has no classifier head;
* ``cache_id()``: a JSON-able dict naming the network, its weights and every setting that changes
  the numbers, used to key the real-statistics cache.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.errors import UserError

class FeatureOutput(NamedTuple):
    features: Tensor
    logits: Tensor | None


def to_channels(x: Tensor, channels: int) -> Tensor:
    """Repeat a grayscale batch to ``channels`` or average RGB down to one channel."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1:
        return x.expand(-1, channels, -1, -1)
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    raise UserError(f"images have {c} channels; feature extractors take 1 or 3")


def to_8bit_levels(x: Tensor) -> Tensor:
    """[-1, 1] float → float tensor of the integers 0..255 (what saving a PNG would give)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round()


def _resize(x: Tensor, size: tuple[int, int] | None, mode: str, antialias: bool) -> Tensor:
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "tf1":
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        return interpolate_bilinear_2d_like_tensorflow1x(x, size=tuple(size), align_corners=False)
    if mode in ("nearest", "nearest-exact", "area"):
        return F.interpolate(x, size=tuple(size), mode=mode)
    if mode in ("bilinear", "bicubic"):
        return F.interpolate(x, size=tuple(size), mode=mode, align_corners=False, antialias=antialias)
    raise ValueError(f"unknown resize mode {mode!r}; use bilinear, bicubic, nearest, area or tf1")


def _file_digest(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


class FeatureExtractor(nn.Module):
    """Base class; subclasses set ``num_features``, ``num_classes`` and implement ``extract``."""

    name: str = "feature"
    num_features: int
    num_classes: int | None = None
    max_batch: int = 512
    """The most images pushed through the network at once. Large networks at large inputs
    (Inception at 299 px: ~50 MB of activations per image) take small chunks: on CPU, batches of
    hundreds allocate and free gigabytes per call, and the page faults show up as system time."""
    cpu_max_batch: int | None = None
    """The chunk on CPU, where it is smaller than ``max_batch`` (None: ``max_batch``). Inception
    on 2 CPU cores ran about twice as fast in chunks of 4 as in chunks of 32, where the
    process spent as much system time as user time (benchmarks/fid_throughput.py)."""

    def chunk_size(self, requested: int) -> int:
        """How many images to push through at once when a caller asks for ``requested``."""
        limit = self.max_batch
        if self.cpu_max_batch is not None and self.device.type == "cpu":
            limit = min(limit, self.cpu_max_batch)
        return max(1, min(int(requested), limit))

    def cache_id(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """One line for logs: network, input handling, output sizes."""
        return f"{self.name}: {self.num_features}-d features, logits: {self.num_classes or 'none'}"

    def extract(self, x: Tensor) -> FeatureOutput:
        raise NotImplementedError

    def forward(self, x: Tensor) -> FeatureOutput:
        if x.ndim != 4:
            raise UserError(f"feature extractor '{self.name}' expects (B, C, H, W) images, got shape {tuple(x.shape)}")
        return self.extract(x)

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")


class PrecomputedFeatures(nn.Module):
    """Identity "feature extractor" handed to torchmetrics' FID/IS/KID.

    gan_lab extracts features once per batch and feeds the same features to every metric, so the
    torchmetrics classes receive features instead of images; ``num_features`` spares them the
    dummy forward pass they would otherwise use to find the dimension.
    """

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, x: Tensor) -> Tensor:
        return x


def state_digest(module: nn.Module) -> str:
    """A short digest of a module's weights (keys the real-statistics cache)."""
    h = hashlib.sha1()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
