"""One object that turns "a generator and some real data" into a dict of numbers.

The training callback and the ``evaluate`` command both build an :class:`Evaluator` and call
:meth:`Evaluator.evaluate`. It

1. gets the real features: from memory (second call on), from the disk cache
   (:mod:`gan_lab.metrics.stats_cache`), or by extracting ``num_real`` images from
   ``real_batches()`` (cache miss only) and writing the cache;
2. generates ``num_samples`` samples with ``sample_fn`` in batches of ``batch_size`` — under
   ``torch.distributed`` each rank generates its contiguous share — and extracts their features
   once, feeding the same tensors to every requested metric;
3. computes the metrics collectively (states are gathered across ranks in rank order), so every
   rank returns the same dict, equal to a one-process run on the same samples.

The metrics are whatever is registered (:mod:`gan_lab.metrics.registry`); the evaluator only
provides what they declare they need, with no per-metric cases.

Under DDP, real features are extracted (on a miss) or loaded by rank 0 only and broadcast; each
rank feeds its contiguous shard of them to the metrics, so the synchronised state holds every real
sample exactly once. All ranks must call :meth:`evaluate` together.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any, Callable, Iterable, Mapping

import torch
import torch.distributed as dist
from torch import Tensor

from gan_lab.errors import UserError
from gan_lab.metrics.cache import CACHE_FORMAT_VERSION, RealStatsCache, plain
from gan_lab.metrics.features import FeatureExtractor, build_feature_extractor
from gan_lab.metrics.registry import METRICS, EvalContext, FakeBatch, canonical, ensure_registered
from gan_lab.progress import bar

log = logging.getLogger(__name__)

__all__ = ["Evaluator", "metric_names", "parse_metrics", "shard_bounds"]


def metric_names() -> dict[str, tuple[str, ...]]:
    """Registered metric names and the result keys each produces."""
    ensure_registered()
    return {name: spec.keys for name, spec in METRICS.items()}


def shard_bounds(n: int, world_size: int, rank: int) -> tuple[int, int]:
    """Contiguous ``[lo, hi)`` slice of ``n`` items owned by ``rank`` (the first ``n % world`` ranks get one more)."""
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def parse_metrics(metrics: Any) -> dict[str, dict[str, Any]]:
    """``metrics`` as ``{registered name: options}`` from a list, a comma string or a mapping."""
    metrics = plain(metrics) if metrics is not None else ["fid"]
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    if isinstance(metrics, Mapping):
        items = [(k, dict(v or {})) for k, v in metrics.items()]
    else:
        items = [(m, {}) for m in metrics]
    return {canonical(name): opts for name, opts in items}


class Evaluator:
    """Compute FID / IS / KID / precision-recall / class and mode diagnostics for a generator.

    Args:
        metrics: names (``["fid", "kid"]``) or a mapping name → options, e.g. the composed
            ``cfg.metrics`` of ``metrics=[fid,kid]``. Options: ``is: {splits}``,
            ``kid: {subsets, subset_size, degree, gamma, coef}``, ``pr: {k}``,
            ``modes: {modes, std, hq_sigmas}``. ``class`` (class diagnostics) is added
            automatically when the extractor has logits, unless ``class_diagnostics=False``.
        feature: a feature extractor module, a ``conf/feature`` config, or a name; ``None`` means
            ``"domain"`` (needs ``labeled_data``). Not needed for ``modes`` alone.
        num_samples: generated samples per evaluation (all ranks together).
        batch_size: generation and extraction batch size.
        cache_dir: directory of the real-feature cache (``None``: memory only).
        real_key: identifies the real images: data set name, split, image size and anything else
            that changes them. Combined with ``num_real`` and the extractor's ``cache_id()``
            into the cache key. ``None`` disables the disk cache.
        num_real: real images to use (default ``num_samples``).
        device: where features are extracted and metric states live (default: the extractor's).
        labeled_data: ``(x, y)`` or a callable returning it, for ``feature=domain``.
        seed: seed of KID's subset sampling (and of any metric's own randomness).
        context: what metrics may read besides features: ``info`` (the DataInfo), ``data``
            (the data module, for metrics that read a held-out split).
        keys: the setting names to use in error messages (``num_samples`` →
            ``eval.num_samples`` in training, ``n`` in the evaluate command).
        progress: show progress bars (images/s) for extraction and generation.
    """

    def __init__(
        self,
        metrics: Any = ("fid",),
        feature: Any = None,
        num_samples: int = 2000,
        batch_size: int = 100,
        cache_dir: str | None = ".cache/gan_lab/metrics",
        real_key: Mapping[str, Any] | None = None,
        *,
        num_real: int | None = None,
        device: str | torch.device | None = None,
        labeled_data: Any = None,
        class_diagnostics: bool | None = None,
        seed: int = 0,
        context: Mapping[str, Any] | None = None,
        keys: Mapping[str, str] | None = None,
        progress: bool = False,
    ):
        self.metrics = parse_metrics(metrics)
        self.keys = {"num_samples": "num_samples", "num_real": "num_real", **(keys or {})}
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2:
            raise UserError(f"{self.keys['num_samples']} must be an integer of at least 2, got {num_samples!r}")
        if num_real is not None and (isinstance(num_real, bool) or not isinstance(num_real, int) or num_real < 2):
            raise UserError(f"{self.keys['num_real']} must be an integer of at least 2 (or null), got {num_real!r}")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.num_real = int(num_real or num_samples)
        self.real_key = None if real_key is None else plain(real_key)
        self.cache = RealStatsCache(cache_dir if real_key is not None else None)
        self.seed = seed
        self.context = dict(context or {})
        self.progress = progress
        self.extractor: FeatureExtractor | None = None
        needs = self.needs()
        if "samples" in needs and needs & {"features", "logits"}:
            point_metrics = [m for m in self.metrics if "samples" in METRICS[m].needs and "points" in METRICS[m].modalities]
            if point_metrics:
                others = [m for m in self.metrics if m not in point_metrics]
                raise UserError(f"metric {point_metrics[0]!r} is for 2-D point data; it cannot be combined with {others}")
        if needs & {"features", "logits", "real"} or class_diagnostics:
            data_name = (self.real_key or {}).get("name") if isinstance(self.real_key, dict) else None
            self.extractor = build_feature_extractor(
                feature if feature is not None else "domain", labeled_data=labeled_data, data_name=data_name, device=device
            )
            if class_diagnostics is None:
                class_diagnostics = self.extractor.num_classes is not None
            if class_diagnostics:
                self.metrics.setdefault("class", {})
            else:
                self.metrics.pop("class", None)
            if self.extractor.num_classes is None:
                for name in self.metrics:
                    if "logits" in METRICS[name].needs:
                        raise UserError(
                            f"metric '{name}' needs class logits but feature extractor "
                            f"'{self.extractor.name}' has none; use feature=inception or feature=domain"
                        )
        self.device = torch.device(device) if device is not None else (
            self.extractor.device if self.extractor is not None else torch.device("cpu")
        )
        self._real: dict[str, Any] | None = None
        self._ranks_checked = False
        self._warned: set[str] = set()
        self.extractor_calls = 0  # batches pushed through the extractor (real + fake)
        self.last_timing: dict[str, float] = {}

    def needs(self) -> set[str]:
        """What the selected metrics need, together."""
        return set().union(*(METRICS[m].needs for m in self.metrics)) if self.metrics else set()

    # ------------------------------------------------------------------------------------------

    @property
    def needs_real(self) -> bool:
        return "real" in self.needs()

    def cache_key(self) -> dict[str, Any]:
        assert self.extractor is not None
        return plain({
            "format": CACHE_FORMAT_VERSION,
            "data": self.real_key,
            "num_real": self.num_real,
            "extractor": self.extractor.cache_id(),
        })

    @torch.inference_mode()
    def extract(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """Features (and logits) of a [-1, 1] image batch, in chunks of ``batch_size`` (at most
        the extractor's ``chunk_size``: ``max_batch``, ``cpu_max_batch`` on CPU)."""
        assert self.extractor is not None
        feats, logits = [], []
        for chunk in images.split(self.extractor.chunk_size(self.batch_size)):
            out = self.extractor(chunk.to(self.device, torch.float32).clamp(-1, 1))
            self.extractor_calls += 1
            feats.append(out.features.float())
            if out.logits is not None:
                logits.append(out.logits.float())
        return torch.cat(feats), (torch.cat(logits) if logits else None)

    # ------------------------------------------------------------------------------------------

    def _extract_real(self, real_batches: Callable[[], Iterable[Any]] | None) -> dict[str, Any]:
        if real_batches is None:
            raise UserError("real-data statistics are not cached for this data/extractor and no real data was given")
        assert self.extractor is not None
        feats, labels, hist, count = [], [], None, 0
        k = self.extractor.num_classes
        if k is not None:
            hist = torch.zeros(k, dtype=torch.float64)
        with bar(self.num_real, "real features", enabled=self.progress) as progress:
            for batch in real_batches():
                x, y = _images_and_labels(batch)
                lo, hi = float(x.min()), float(x.max())
                if lo < -1.05 or hi > 1.05:
                    raise UserError(f"real images must be scaled to [-1, 1], got values in [{lo:.3g}, {hi:.3g}]")
                x = x[: self.num_real - count]
                f, lg = self.extract(x)
                feats.append(f.cpu())
                if y is not None:
                    labels.append(y[: x.shape[0]].long().cpu())
                if hist is not None and lg is not None:
                    hist += torch.bincount(lg.argmax(1).cpu(), minlength=k).double()
                count += x.shape[0]
                progress.update(x.shape[0])
                if count >= self.num_real:
                    break
        if count < 2:
            raise UserError("real_batches() yielded fewer than 2 images")
        if count < self.num_real:
            warnings.warn(f"only {count} real images available, fewer than num_real={self.num_real}; using them all")
        all_labels = torch.cat(labels) if labels and sum(len(t) for t in labels) == count else None
        return {"features": torch.cat(feats), "class_hist": hist, "labels": all_labels}

    def _rank0_real(self, real_batches) -> dict[str, Any]:
        key = self.cache_key()
        payload = self.cache.load(key)
        if payload is not None:
            log.info("real statistics: cache hit %s", self.cache.path(key))
            return {"features": payload["features"], "class_hist": payload["class_hist"],
                    "labels": payload.get("labels"), "cache_hit": True}
        real = self._extract_real(real_batches)
        path = self.cache.save(key, real["features"], real["class_hist"], labels=real["labels"],
                               num_images=int(real["features"].shape[0]))
        if path:
            log.info("real statistics: wrote %s", path)
        return dict(real, cache_hit=False)

    def _real_features(self, real_batches) -> dict[str, Any]:
        if self._real is not None:
            return self._real
        rank, world = _dist_info()
        if world == 1:
            self._real = self._rank0_real(real_batches)
            return self._real
        # rank 0 loads or extracts; the others receive the tensors (works without a shared disk)
        meta: list[Any] = [None]
        real = None
        if rank == 0:
            try:
                real = self._rank0_real(real_batches)
                hist = real["class_hist"]
                meta = [{"shape": tuple(real["features"].shape), "hist": None if hist is None else hist.numel(),
                         "labels": real.get("labels") is not None, "cache_hit": real["cache_hit"]}]
            except Exception as err:
                meta = [{"error": f"{type(err).__name__}: {err}"}]
                dist.broadcast_object_list(meta, src=0)
                raise
        dist.broadcast_object_list(meta, src=0)
        info = meta[0]
        if "error" in info:
            raise RuntimeError(f"rank 0 failed to prepare real statistics: {info['error']}")
        comm = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
        feats = real["features"].to(comm) if rank == 0 else torch.empty(info["shape"], dtype=torch.float32, device=comm)
        dist.broadcast(feats, src=0)
        hist = None
        if info["hist"] is not None:
            hist = real["class_hist"].to(comm) if rank == 0 else torch.empty(info["hist"], dtype=torch.float64, device=comm)
            dist.broadcast(hist, src=0)
            hist = hist.cpu()
        labels = None
        if info["labels"]:
            labels = real["labels"].to(comm) if rank == 0 else torch.empty(info["shape"][0], dtype=torch.int64, device=comm)
            dist.broadcast(labels, src=0)
            labels = labels.cpu()
        self._real = {"features": feats.cpu(), "class_hist": hist, "labels": labels, "cache_hit": info["cache_hit"]}
        return self._real

    # ------------------------------------------------------------------------------------------

    def _check_same_extractor(self, world: int) -> None:
        """All ranks must extract with identical networks, or real (rank 0) and fake features disagree."""
        from gan_lab.metrics.cache import key_digest

        mine = key_digest(self.extractor.cache_id())
        every: list[Any] = [None] * world
        dist.all_gather_object(every, mine)
        if len(set(every)) > 1:
            raise UserError(
                "the feature extractor differs between ranks (e.g. a domain classifier trained separately on each "
                "rank); build the Evaluator after the process group is initialised (e.g. in a callback's setup())"
            )
        self._ranks_checked = True

    def _build_metrics(self, real: dict[str, Any] | None) -> dict[str, Any]:
        ctx = EvalContext(extractor=self.extractor, real=real, device=self.device, seed=self.seed,
                          info=self.context.get("info"), data=self.context.get("data"))
        return {name: METRICS[name].factory(ctx, **opts) for name, opts in self.metrics.items()}

    def evaluate(
        self,
        sample_fn: Callable[[int], Any],
        real_batches: Callable[[], Iterable[Any]] | None = None,
    ) -> dict[str, float]:
        """Generate ``num_samples`` (this rank's share of them) with ``sample_fn(n)`` and score them.

        ``sample_fn(n)`` returns ``n`` samples: a tensor (images (B, C, H, W) in [-1, 1], (n, D)
        points, ...) or a :class:`~gan_lab.data.batch.Batch` (with ``y``, the labels they were
        generated for). ``real_batches()`` yields real batches in [-1, 1] — tensors, ``(images,
        labels)`` pairs or Batches — and is consumed only on a cache miss (on rank 0).
        """
        rank, world = _dist_info()
        if self.num_samples < world:
            raise UserError(f"{self.keys['num_samples']}={self.num_samples} is smaller than the number of processes ({world})")
        if world > 1 and self.extractor is not None and not self._ranks_checked:
            self._check_same_extractor(world)
        needs = self.needs()
        t0 = time.perf_counter()
        real = self._real_features(real_batches) if self.extractor is not None and "real" in needs else None
        t_real = time.perf_counter() - t0
        metrics = self._build_metrics(real)

        if real is not None:
            if real["features"].shape[0] < world:
                raise UserError(f"only {real['features'].shape[0]} real images for {world} processes")
            lo, hi = shard_bounds(real["features"].shape[0], world, rank)
            shard = real["features"][lo:hi].to(self.device)
            labels = None if real.get("labels") is None else real["labels"][lo:hi].to(self.device)
            for name, metric in metrics.items():
                if "real" in METRICS[name].needs:
                    metric.update_real(shard, labels)

        t1 = time.perf_counter()
        lo, hi = shard_bounds(self.num_samples, world, rank)
        share, produced = hi - lo, 0
        extract = bool(needs & {"features", "logits"})
        with bar(share, "generated samples", unit="sample", enabled=self.progress) as progress:
            while produced < share:
                n = min(self.batch_size, share - produced)
                with torch.no_grad():
                    out = sample_fn(n)
                batch = out if not isinstance(out, Tensor) else None
                x = out if isinstance(out, Tensor) else out.x
                if not isinstance(x, Tensor) or x.shape[0] != n:
                    raise RuntimeError(f"sample_fn({n}) must return {n} samples, got "
                                       f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
                produced += n
                fake = FakeBatch(x.detach(), None if batch is None else batch.y, batch=batch)
                if extract:
                    fake.features, fake.logits = self.extract(fake.x)
                for metric in metrics.values():
                    metric.update(fake)
                progress.update(n)
        t2 = time.perf_counter()

        # every rank computes every metric (collective gathers inside torchmetrics)
        out: dict[str, float] = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for metric in metrics.values():
                out.update(metric.compute())
        for w in caught:  # e.g. KID lowering its subset size: said once per evaluator, not every time
            message = str(w.message)
            if message not in self._warned:
                self._warned.add(message)
                warnings.warn(message, w.category, stacklevel=2)
        self.last_timing = {"real_s": t_real, "fake_s": t2 - t1, "compute_s": time.perf_counter() - t2,
                            "real_cache_hit": float(bool(real and real.get("cache_hit")))}
        return out


def _images_and_labels(batch: Any) -> tuple[Tensor, Tensor | None]:
    """(images, labels or None) of a real batch in any of the accepted forms."""
    from gan_lab.data.batch import Batch

    if isinstance(batch, Batch):
        x, y = batch.x, batch.y
    elif isinstance(batch, (list, tuple)):
        x, y = batch[0], (batch[1] if len(batch) > 1 else None)
    elif isinstance(batch, Mapping):
        x, y = batch.get("image", batch.get("x")), batch.get("label", batch.get("y"))
    else:
        x, y = batch, None
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise UserError(f"real_batches() must yield (B, C, H, W) image tensors, got {type(x).__name__}")
    return x, (torch.as_tensor(y) if y is not None else None)


def build_evaluator(cfg: Any, *, feature: Any = None, labeled_data: Any = None, real_key: Any = None,
                    device: Any = None) -> Evaluator:
    """Convenience for configs shaped like ``{metrics: ..., feature: ..., num_samples, batch_size,
    cache_dir, num_real}`` (missing entries take the :class:`Evaluator` defaults)."""
    c = plain({k: v for k, v in dict(cfg).items() if k != "feature"}) if cfg is not None else {}
    feat = feature if feature is not None else (dict(cfg).get("feature") if cfg is not None else None)
    allowed = {"metrics", "num_samples", "batch_size", "cache_dir", "num_real", "class_diagnostics", "seed", "progress"}
    return Evaluator(feature=feat, labeled_data=labeled_data, real_key=real_key, device=device,
                     **{k: v for k, v in c.items() if k in allowed})
