"""Metrics for class-conditional generators, as plain functions (tensors in, numbers out).

Every function takes the labels the samples were *generated for* (``labels=all`` cycles through
the classes, so each class gets about n/K samples).

* :func:`cond_acc`: how often an evaluation classifier assigns a sample to the class it was
  generated for, overall and per class.
* :func:`intra_fid`: FID computed separately per class, against that class's real features,
  per class and averaged (Miyato & Koyama 2018).
* :func:`cas`: the Classification Accuracy Score (Ravuri & Vinyals 2019): a fresh classifier
  trained only on generated labelled samples, tested on real held-out data. It drops when G
  misses the variety inside a class or produces samples of the wrong class, which a single FID
  over all classes can hide.

The same metrics are registered by name (``metrics=[cond_acc,intra_fid,cas]``) as DDP-synchronised
classes at the end of this module, with ``test_acc`` (the accuracy of a model's own classifier,
e.g. the semi-supervised GAN's discriminator, on the real test split).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from gan_lab.data.batch import Batch
from gan_lab.errors import UserError
from gan_lab.metrics.domain import train_domain_classifier
from gan_lab.metrics.functional import frechet_distance, mean_cov
from gan_lab.metrics.registry import EvalContext, FakeBatch, register_metric

__all__ = ["cond_acc", "intra_fid", "cas", "CAS_DEFAULTS", "check_model_metrics", "SamplesWithClassifier"]


def _labels(y, n: int, what: str) -> Tensor:
    y = torch.as_tensor(y).long().cpu().reshape(-1)
    if y.numel() != n:
        raise ValueError(f"{what}: {y.numel()} labels for {n} samples")
    return y


def _num_classes(num_classes: int | None, *labels: Tensor) -> int:
    if num_classes is not None:
        return int(num_classes)
    return int(max(int(t.max()) for t in labels if t.numel())) + 1


def cond_acc(logits, y, num_classes: int | None = None) -> dict[str, Any]:
    """Fraction of samples whose classifier prediction (argmax of ``logits`` or probabilities,
    (N, K)) equals the class ``y`` (N,) they were generated for.

    Returns ``overall`` (float), ``per_class`` (list of K floats; NaN for a class with no
    samples) and ``counts`` (samples per class).
    """
    scores = torch.as_tensor(logits).detach().cpu()
    if scores.ndim != 2:
        raise ValueError(f"cond_acc needs (N, K) logits, got shape {tuple(scores.shape)}")
    y = _labels(y, scores.shape[0], "cond_acc")
    k = int(num_classes) if num_classes is not None else max(scores.shape[1], int(y.max()) + 1 if len(y) else 0)
    hit = (scores.argmax(dim=1) == y).double()
    counts = torch.bincount(y, minlength=k)
    hits = torch.bincount(y, weights=hit, minlength=k)
    per_class = [float(hits[c] / counts[c]) if counts[c] > 0 else math.nan for c in range(k)]
    return {"overall": float(hit.mean()) if len(hit) else math.nan, "per_class": per_class,
            "counts": [int(c) for c in counts]}


def intra_fid(fake_features, fake_labels, real_features, real_labels, num_classes: int | None = None,
              *, method: str = "eigh") -> dict[str, Any]:
    """FID between generated and real features of each class, and their mean.

    ``*_features`` (N, D) with their labels (N,). For class c: ``frechet_distance`` of the mean and
    unbiased covariance (float64, :mod:`gan_lab.metrics.functional`) of the generated rows labelled
    c and of the real rows labelled c. A class with fewer than 2 rows on either side gets NaN and
    is left out of ``mean``. Returns ``mean``, ``per_class`` (K floats) and ``classes`` (how many
    classes entered the mean). Per-class FID uses fewer samples than an overall FID, so it is
    biased upwards more strongly; compare values computed with the same sample counts.
    """
    ff = torch.as_tensor(fake_features).detach()
    rf = torch.as_tensor(real_features).detach()
    fy = _labels(fake_labels, ff.shape[0], "intra_fid (generated)")
    ry = _labels(real_labels, rf.shape[0], "intra_fid (real)")
    if ff.ndim != 2 or rf.ndim != 2 or ff.shape[1] != rf.shape[1]:
        raise ValueError(f"intra_fid needs (N, D) features with the same D, got {tuple(ff.shape)}, {tuple(rf.shape)}")
    k = _num_classes(num_classes, fy, ry)
    per_class = []
    for c in range(k):
        f_c, r_c = ff[(fy == c).to(ff.device)], rf[(ry == c).to(rf.device)]
        if f_c.shape[0] < 2 or r_c.shape[0] < 2:
            per_class.append(math.nan)
            continue
        mu_f, s_f = mean_cov(f_c)
        mu_r, s_r = mean_cov(r_c)
        per_class.append(frechet_distance(mu_f, s_f, mu_r, s_r, method=method))
    valid = [v for v in per_class if not math.isnan(v)]
    if not valid:
        raise ValueError("intra_fid: no class has at least 2 generated and 2 real samples")
    return {"mean": sum(valid) / len(valid), "per_class": per_class, "classes": len(valid)}


#: CPU-sized defaults for the CAS classifier on MNIST-like 28 px data (the domain classifier's
#: recipe; all generated samples train it, the real held-out split tests it). ``epochs`` passes
#: over the samples, and at least ``min_updates`` optimizer steps whatever their number (a few
#: hundred samples would otherwise leave the classifier at chance).
CAS_DEFAULTS: dict[str, Any] = {"width": 16, "feature_dim": 128, "epochs": 5, "min_updates": 400, "batch_size": 64,
                                "lr": 4e-3, "max_shift": None}


@torch.no_grad()
def _accuracy(model, x: Tensor, y: Tensor, k: int, device, batch: int = 512) -> tuple[float, list[float]]:
    pred = torch.cat([model(x[i:i + batch].to(device)).argmax(1).cpu() for i in range(0, len(x), batch)])
    hit = (pred == y).double()
    counts = torch.bincount(y, minlength=k)
    hits = torch.bincount(y, weights=hit, minlength=k)
    return float(hit.mean()), [float(hits[c] / counts[c]) if counts[c] > 0 else math.nan for c in range(k)]


def cas(fake_x, fake_y, real_x, real_y, num_classes: int | None = None, *, seed: int = 0,
        device: str | torch.device = "cpu", **train_kwargs: Any) -> dict[str, Any]:
    """Classification Accuracy Score: train a fresh :class:`~gan_lab.metrics.domain.DomainClassifier`
    on the generated images ``fake_x`` (N, C, H, W) with the labels ``fake_y`` they were generated
    for, then report its accuracy on the real held-out images ``real_x`` with labels ``real_y``.

    Training is :func:`~gan_lab.metrics.domain.train_domain_classifier` with ``test_fraction=0``
    (every generated sample trains), its own generator seeded with ``seed`` (the global RNG is
    untouched) and :data:`CAS_DEFAULTS` unless overridden by ``train_kwargs``. Generated images
    are clamped to [-1, 1]. Returns ``accuracy``, ``per_class`` (K floats), ``train_seconds``,
    ``n_train`` and ``n_test``. The reference point is the same call with real training images in
    place of the generated ones (what a "perfect" generator would score).
    """
    fx = torch.as_tensor(fake_x).detach().float().cpu().clamp(-1, 1)
    rx = torch.as_tensor(real_x).detach().float().cpu()
    fy = _labels(fake_y, fx.shape[0], "cas (generated)")
    ry = _labels(real_y, rx.shape[0], "cas (real)")
    k = _num_classes(num_classes, fy, ry)
    unknown = set(train_kwargs) - set(CAS_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown CAS classifier settings: {sorted(unknown)}")
    hp = {**CAS_DEFAULTS, **train_kwargs}
    per_epoch = -(-fx.shape[0] // int(hp["batch_size"]))
    hp["epochs"] = max(int(hp["epochs"]), -(-int(hp.pop("min_updates")) // per_epoch))
    model, info = train_domain_classifier(fx, fy, num_classes=k, test_fraction=0.0, seed=seed, device=device,
                                          progress=False, **hp)
    acc, per_class = _accuracy(model, rx, ry, k, device)
    return {"accuracy": acc, "per_class": per_class, "train_seconds": info["train_seconds"],
            "n_train": info["n_train"], "n_test": int(rx.shape[0])}


# ---------------------------------------------------------------------------------------------
# Registered metrics (metrics=[cond_acc,intra_fid,cas,test_acc]): DDP-synchronised states around
# the functions above. Every rank returns the same numbers, equal to a one-process run.
# ---------------------------------------------------------------------------------------------

#: Metrics that score samples by the class they were generated for: only class-conditional
#: models (``module.conditional``) can feed them.
CONDITIONAL_METRICS = ("cond_acc", "intra_fid", "cas")
#: Metrics that score a model's own classifier (``module.classify``), e.g. the semi-supervised GAN.
CLASSIFIER_METRICS = ("test_acc",)
#: Per-class result keys (``<key>/<class name>``) are written for at most this many classes by default.
PER_CLASS_MAX = 20


class SamplesWithClassifier(Batch):
    """Samples that also carry the model's classifier (``classifier(x) -> (B, K) logits``), so
    that ``test_acc`` can score it: what a model with a classifier returns from
    ``evaluation_sample``."""

    def __init__(self, x: Tensor, classifier, y: Tensor | None = None):
        super().__init__(x, y)
        self.classifier = classifier


def check_model_metrics(module, metrics) -> None:
    """A one-line :class:`UserError` for chosen ``metrics`` the model cannot feed: conditional
    metrics of an unconditional model (``module.conditional`` false), ``test_acc`` of a model
    without a classifier (``module.has_classifier`` false; such a model returns
    :class:`SamplesWithClassifier` from ``evaluation_sample``), and a
    held-out split the data source does not have (read from the run config, so it fails before
    training rather than at the first evaluation)."""
    if not metrics:
        return
    from gan_lab.metrics.evaluator import parse_metrics
    from gan_lab.metrics.registry import METRICS

    chosen = parse_metrics(metrics)
    for name, options in chosen.items():
        if name in CONDITIONAL_METRICS and not getattr(module, "conditional", False):
            raise UserError(f"metric '{name}' scores samples by the class they were generated for; model={module.name} "
                            "is unconditional (use cgan, acgan, cgan_proj or biggan)")
        if name == "ppl" and not hasattr(module, "path_pairs"):
            raise UserError(f"metric 'ppl' walks the latent space of a model with a mapping network; model={module.name} "
                            "has none (use model=stylegan)")
        if name in CLASSIFIER_METRICS and not getattr(module, "has_classifier", False):
            raise UserError(f"metric '{name}' scores a model's own classifier; model={module.name} has none "
                            "(ssgan, acgan and aae_semi have one)")
        check = getattr(METRICS[name].factory, "check_model", None)
        if check is not None:  # a metric that states what a model must give it (recon, cluster_acc)
            check(module, options or {})
        if name in ("cas", "test_acc") or check is not None:
            split = (options or {}).get("split", "test")
            splits = _source_splits(module)
            if splits is not None and split not in splits:
                raise UserError(_missing_split(name, split, module.data_info.name, splits))


def _source_splits(module) -> tuple[str, ...] | None:
    """The splits of the run's data source, from its config (None when unknown)."""
    try:
        from hydra.utils import get_class

        target = module.lab_meta["config"]["data"]["source"]["_target_"]
        return tuple(get_class(target).splits)
    except Exception:  # no run config (a module built by hand), a source without ``splits``
        return None


def _missing_split(metric: str, split: str, data: str, splits) -> str:
    hint = "; metrics.cas.split=train scores against the training images instead" if metric == "cas" else ""
    return (f"metric '{metric}' needs the held-out {split!r} split, which data {data} does not have "
            f"(it has: {', '.join(splits)}){hint}")


def _classes_of(ctx: EvalContext, metric: str) -> tuple[int, list[str]]:
    info = ctx.info
    k = int(getattr(info, "num_classes", 0) or 0)
    if k < 2:
        raise UserError(f"metric '{metric}' needs labelled data with classes; data "
                        f"{getattr(info, 'name', '?')} has none")
    return k, [info.class_name(c) for c in range(k)]


def _fake_labels(fake: FakeBatch, metric: str) -> Tensor:
    if fake.y is None:
        raise UserError(f"metric '{metric}' needs samples with the labels they were generated for; this model's "
                        "samples have none (it is unconditional)")
    return fake.y.long()


def _per_class(key: str, names: list[str], values, per_class) -> dict[str, float]:
    show = len(names) <= PER_CLASS_MAX if per_class == "auto" else bool(per_class)
    return {f"{key}/{name}": float(v) for name, v in zip(names, values)} if show else {}


def _check_per_class(per_class, metric: str):
    if per_class != "auto" and not isinstance(per_class, bool):
        raise UserError(f"metrics.{metric}.per_class must be auto, true or false, got {per_class!r}")
    return per_class


class ClassHits(Metric):
    """Per-class hit and sample counts (summed across DDP ranks): ``update(pred, y)``."""

    full_state_update = False
    is_differentiable = False

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.add_state("hits", torch.zeros(self.num_classes, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", torch.zeros(self.num_classes, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, y: Tensor) -> None:
        y = y.long().to(self.hits.device)
        hit = (pred.long().to(y.device) == y).double()
        self.hits += torch.bincount(y, weights=hit, minlength=self.num_classes)[: self.num_classes]
        self.counts += torch.bincount(y, minlength=self.num_classes)[: self.num_classes].double()

    def compute(self) -> tuple[Tensor, Tensor]:
        return self.hits, self.counts


def _accuracies(hits: Tensor, counts: Tensor) -> tuple[float, list[float]]:
    total = float(counts.sum())
    overall = float(hits.sum()) / total if total else math.nan
    per = [float(h / c) if c > 0 else math.nan for h, c in zip(hits.tolist(), counts.tolist())]
    return overall, per


class LabelledFeatures(Metric):
    """Generated features (or samples) with their labels, gathered across ranks in rank order."""

    full_state_update = False
    is_differentiable = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("values", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, values: Tensor, labels: Tensor) -> None:
        self.values.append(values.detach())
        self.labels.append(labels.detach().long().to(values.device))

    def compute(self) -> tuple[Tensor, Tensor]:
        return dim_zero_cat(self.values), dim_zero_cat(self.labels)


def linear_probe(features: Tensor, labels: Tensor, num_classes: int, ridge: float = 1e-2):
    """A linear classifier fit in closed form (ridge regression onto one-hot targets, float64,
    standardised features): ``predict(features) -> labels``. Deterministic, so every DDP rank
    fits the same one."""
    f = features.detach().double().cpu()
    mean, std = f.mean(0), f.std(0).clamp_min(1e-8)
    x = torch.cat([(f - mean) / std, torch.ones(len(f), 1, dtype=torch.float64)], dim=1)
    targets = torch.nn.functional.one_hot(labels.long().cpu(), num_classes).double()
    gram = x.T @ x + ridge * len(f) * torch.eye(x.shape[1], dtype=torch.float64)
    weights = torch.linalg.solve(gram, x.T @ targets)

    def predict(feats: Tensor) -> Tensor:
        g = feats.detach().double().cpu()
        z = torch.cat([(g - mean) / std, torch.ones(len(g), 1, dtype=torch.float64)], dim=1)
        return (z @ weights).argmax(1)

    return predict


@register_metric("cond_acc", keys=("cond_acc",), needs={"features", "real"}, modalities=("image",),
                 aliases=("conditional_accuracy",),
                 summary="share of samples the evaluation classifier assigns to the class they were generated for")
class CondAccMetric:
    """``cond_acc`` overall and ``cond_acc/<class>`` per class. The classifier: the domain
    classifier's own class logits (``feature=domain``, trained on this data's labels); for other
    extractors (``feature=inception``) a linear probe fit to the real features and labels."""

    def __init__(self, ctx: EvalContext, per_class: Any = "auto"):
        self.k, self.names = _classes_of(ctx, "cond_acc")
        self.per_class = _check_per_class(per_class, "cond_acc")
        extractor = ctx.extractor
        self.use_logits = getattr(extractor, "name", None) == "domain" and extractor.num_classes == self.k
        self.probe = None
        if not self.use_logits:
            real = ctx.real or {}
            if real.get("labels") is None:
                raise UserError("metric 'cond_acc' with this feature extractor fits a linear probe to the real "
                                "features and labels, but the real statistics carry no labels")
            self.probe = linear_probe(real["features"], real["labels"], self.k)
        self.state = ClassHits(self.k).to(ctx.device)

    def update_real(self, features: Tensor, labels: Tensor | None) -> None:
        pass  # the probe was fit to all real features when the metric was built

    def update(self, fake: FakeBatch) -> None:
        y = _fake_labels(fake, "cond_acc")
        pred = fake.logits.argmax(1) if self.use_logits else self.probe(fake.features)
        self.state.update(pred, y)

    def compute(self) -> dict[str, float]:
        overall, per = _accuracies(*self.state.compute())
        return {"cond_acc": overall, **_per_class("cond_acc", self.names, per, self.per_class)}


@register_metric("intra_fid", keys=("intra_fid",), needs={"features", "real"}, modalities=("image",),
                 aliases=("intra-fid",), summary="FID per class against that class's real images, and their mean")
class IntraFIDMetric:
    """``intra_fid`` (the mean over classes) and ``intra_fid/<class>``; classes with fewer than
    two generated or real samples are left out of the mean (``intra_fid_classes`` counts those in)."""

    def __init__(self, ctx: EvalContext, method: str = "eigh", per_class: Any = "auto"):
        self.k, self.names = _classes_of(ctx, "intra_fid")
        self.per_class = _check_per_class(per_class, "intra_fid")
        real = ctx.real or {}
        if real.get("labels") is None:
            raise UserError("metric 'intra_fid' needs the real images' labels, but the real statistics carry none")
        self.real_features, self.real_labels = real["features"], real["labels"]
        self.method = method
        self.state = LabelledFeatures().to(ctx.device)

    def update_real(self, features: Tensor, labels: Tensor | None) -> None:
        pass  # per-class real statistics come from all real features at compute time

    def update(self, fake: FakeBatch) -> None:
        self.state.update(fake.features, _fake_labels(fake, "intra_fid"))

    def compute(self) -> dict[str, float]:
        feats, labels = self.state.compute()
        try:
            out = intra_fid(feats.cpu(), labels.cpu(), self.real_features, self.real_labels, self.k, method=self.method)
        except ValueError as err:
            raise UserError(f"metric 'intra_fid': {err}; raise the number of samples") from None
        return {"intra_fid": out["mean"], "intra_fid_classes": float(out["classes"]),
                **_per_class("intra_fid", self.names, out["per_class"], self.per_class)}


@register_metric("cas", keys=("cas",), needs={"samples", "data"}, modalities=("image",),
                 aliases=("classification_accuracy_score",),
                 summary="accuracy on real held-out data of a classifier trained only on generated, labelled samples")
class CASMetric:
    """The Classification Accuracy Score (Ravuri & Vinyals 2019): a fresh small CNN (the domain
    classifier's recipe, :data:`CAS_DEFAULTS`) trained on every generated sample with the label it
    was generated for, tested on the real ``split``. Under DDP the samples of all ranks are
    gathered, rank 0 trains, and every rank reports its numbers."""

    def __init__(self, ctx: EvalContext, split: str = "test", per_class: Any = "auto", **classifier: Any):
        self.k, self.names = _classes_of(ctx, "cas")
        self.per_class = _check_per_class(per_class, "cas")
        unknown = sorted(set(classifier) - set(CAS_DEFAULTS))
        if unknown:
            raise UserError(f"unknown setting metrics.cas.{unknown[0]}; it takes: split, per_class, "
                            f"{', '.join(CAS_DEFAULTS)}")
        self.classifier, self.split, self.data, self.seed = classifier, split, ctx.data, ctx.seed
        if self.data is None:
            raise UserError("metric 'cas' needs the data module (its held-out split)")
        splits = tuple(getattr(self.data, "splits", ("train",)))
        if split not in splits:
            raise UserError(_missing_split("cas", split, ctx.info.name, splits))
        self.device = ctx.device
        self.state = LabelledFeatures().to(ctx.device)

    def update(self, fake: FakeBatch) -> None:
        self.state.update(fake.x, _fake_labels(fake, "cas"))

    def compute(self) -> dict[str, float]:
        x, y = self.state.compute()  # every rank's samples, in rank order
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        result = [None]
        if rank == 0:
            real_x, real_y = self.data.labelled_tensors(self.split)
            result = [cas(x.cpu(), y.cpu(), real_x, real_y, self.k, seed=self.seed,
                          device=self.device or "cpu", **self.classifier)]
        if dist.is_available() and dist.is_initialized():
            dist.broadcast_object_list(result, src=0)
        out = result[0]
        return {"cas": out["accuracy"], **_per_class("cas", self.names, out["per_class"], self.per_class)}


@register_metric("test_acc", keys=("test_acc",), needs={"data"}, modalities=("image", "points"),
                 aliases=("ssl_acc", "classifier_acc", "accuracy"),
                 summary="accuracy of the model's own classifier (the semi-supervised GAN's D) on the real test split")
class TestAccMetric:
    """``test_acc`` and ``test_acc/<class>``: the model's classifier (handed over with its samples,
    :class:`SamplesWithClassifier`) on every image of the real ``split``. Under DDP each rank
    classifies its share of the split and the counts are summed."""

    def __init__(self, ctx: EvalContext, split: str = "test", per_class: Any = "auto", batch_size: int = 500):
        self.k, self.names = _classes_of(ctx, "test_acc")
        self.per_class = _check_per_class(per_class, "test_acc")
        self.data, self.split, self.batch_size = ctx.data, split, int(batch_size)
        if self.data is None:
            raise UserError("metric 'test_acc' needs the data module (its test split)")
        splits = tuple(getattr(self.data, "splits", ("train",)))
        if split not in splits:
            raise UserError(_missing_split("test_acc", split, ctx.info.name, splits))
        self.classify = None
        self.device = ctx.device
        self.state = ClassHits(self.k).to(ctx.device)

    def update(self, fake: FakeBatch) -> None:
        if self.classify is None:
            self.classify = getattr(fake.batch, "classifier", None)

    @torch.no_grad()
    def compute(self) -> dict[str, float]:
        if self.classify is None:
            raise UserError("metric 'test_acc' scores a model's own classifier; this model has none (ssgan and acgan "
                            "have one)")
        from gan_lab.metrics.evaluator import shard_bounds

        x, y = self.data.labelled_tensors(self.split)
        distributed = dist.is_available() and dist.is_initialized()
        rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
        lo, hi = shard_bounds(len(x), world, rank)
        for start in range(lo, hi, self.batch_size):
            stop = min(start + self.batch_size, hi)
            logits = self.classify(x[start:stop])
            self.state.update(logits.argmax(1), y[start:stop])
        overall, per = _accuracies(*self.state.compute())
        return {"test_acc": overall, **_per_class("test_acc", self.names, per, self.per_class)}
