"""Metrics of the models with codes: reconstructions and clusters, as plain functions and as
registered, DDP-synchronised metrics (``metrics=[recon,cluster_acc]``; the classifiers' test
accuracy is ``test_acc``, also called ``accuracy``).

* :func:`majority_mapping`: each cluster's majority label from a clusters x classes count
  matrix (ties to the lowest label; a cluster nobody falls in maps to -1, always wrong);
* :func:`mapped_accuracy`: the share of samples whose cluster maps to their label.

``recon`` reconstructs every sample of the real ``split`` (test by default) and reports the mean
per-sample squared error on the data's scale (images in [-1, 1], so 0..4) as ``recon_mse`` and, for
images, the mean per-image PSNR (data range 2, capped at 100 dB, as the translation metrics) as
``recon_psnr``. ``cluster_acc`` maps each cluster to the majority label of the samples of
``map_split`` (train by default) that fall in it, then scores the ``split`` samples (test) with that
map: the unsupervised-clustering accuracy of the AAE paper (its error is 1 - cluster_acc).
``map_split=test`` is the other common protocol (map and score on the same samples).

Under DDP each rank handles its contiguous share of a split and the sums are all-reduced, so
every rank returns the numbers of one process.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric

from gan_lab.errors import UserError
from gan_lab.metrics.conditional import SamplesWithClassifier, _missing_split
from gan_lab.metrics.registry import EvalContext, FakeBatch, register_metric

__all__ = ["SamplesWithCodes", "majority_mapping", "mapped_accuracy"]


class SamplesWithCodes(SamplesWithClassifier):
    """Samples carrying the model's ``reconstruct(x, y) -> x_hat`` (and, where it has one, its
    classifier): what a model with codes returns from ``evaluation_sample``."""

    def __init__(self, x: Tensor, classifier=None, y: Tensor | None = None, reconstruct=None):
        super().__init__(x, classifier, y)
        self.reconstruct = reconstruct


def majority_mapping(counts: Tensor) -> Tensor:
    """``(K,)`` int64: for each row (cluster) of ``counts`` (K, C) the column (label) with the most
    samples, the lowest on ties; -1 for an empty row."""
    counts = torch.as_tensor(counts)
    mapping = counts.argmax(dim=1)  # the first maximum: the lowest label on ties
    mapping[counts.sum(dim=1) == 0] = -1
    return mapping


def mapped_accuracy(counts: Tensor, mapping: Tensor) -> float:
    """Share of the samples counted in ``counts`` (K clusters x C labels) whose cluster maps to
    their label under ``mapping`` (K,)."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    total = float(counts.sum())
    if total == 0:
        raise ValueError("no samples to score")
    k = torch.arange(counts.shape[0])
    hits = counts[k[mapping >= 0], mapping[mapping >= 0]].sum()
    return float(hits) / total


def cluster_counts(clusters: Tensor, labels: Tensor, num_clusters: int, num_classes: int) -> Tensor:
    """``(K, C)`` float64 counts of (cluster, label) pairs."""
    flat = clusters.long().cpu() * num_classes + labels.long().cpu()
    return torch.bincount(flat, minlength=num_clusters * num_classes).double().view(num_clusters, num_classes)


class SummedTensor(Metric):
    """A float64 tensor summed across DDP ranks."""

    full_state_update = False

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.add_state("total", torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, value: Tensor) -> None:
        self.total += value.to(self.total.device, torch.float64)

    def compute(self) -> Tensor:
        return self.total


def _split_shard(data, split: str, metric: str) -> tuple[Tensor, Tensor | None]:
    """This rank's contiguous share of ``split`` as ``(x, y)`` (``y`` None without labels)."""
    from gan_lab.metrics.evaluator import shard_bounds

    splits = tuple(getattr(data, "splits", ("train",)))
    if split not in splits:
        raise UserError(_missing_split(metric, split, data.info.name, splits))
    xs, ys = [], []
    for batch in data.batches(512, split, order_seed=None):
        xs.append(batch.x)
        ys.append(batch.y)
    x = torch.cat(xs)
    y = None if any(v is None for v in ys) else torch.cat(ys)
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    lo, hi = shard_bounds(len(x), world, rank)
    return x[lo:hi], None if y is None else y[lo:hi]


def _carried(fake: FakeBatch, attribute: str):
    return getattr(fake.batch, attribute, None)


@register_metric("recon", keys=("recon_mse", "recon_psnr"), needs={"data"}, modalities=("image", "points"),
                 aliases=("reconstruction",),
                 summary="MSE and PSNR of the model's reconstructions of the real test split")
class ReconMetric:
    """``recon_mse`` and ``recon_psnr`` (images) of the model's reconstructions of every sample of
    ``split`` (module docstring)."""

    def __init__(self, ctx: EvalContext, split: str = "test", batch_size: int = 250):
        if ctx.data is None:
            raise UserError("metric 'recon' needs the data module (its test split)")
        self.data, self.split, self.batch_size = ctx.data, split, int(batch_size)
        self.image = ctx.info is None or ctx.info.modality == "image"
        self.reconstruct = None

    @staticmethod
    def check_model(module, options: dict) -> None:
        if not callable(getattr(module, "reconstruct", None)):
            raise UserError(f"metric 'recon' scores reconstructions; model={module.name} has no codes to reconstruct "
                            "from (aae, aae_supervised, aae_semi, aae_cluster, glo and gon have)")

    def update(self, fake: FakeBatch) -> None:
        if self.reconstruct is None:
            self.reconstruct = _carried(fake, "reconstruct")

    def compute(self) -> dict[str, float]:
        from gan_lab.metrics.translation import psnr

        if self.reconstruct is None:
            raise UserError("metric 'recon' scores reconstructions; this model gives none")
        x, y = _split_shard(self.data, self.split, "recon")
        sums = SummedTensor((3,))  # squared error, PSNR, count
        for lo in range(0, len(x), self.batch_size):
            xb = x[lo:lo + self.batch_size]
            out = self.reconstruct(xb, None if y is None else y[lo:lo + self.batch_size]).to(xb.device)
            mse = ((out.double() - xb.double()) ** 2).flatten(1).mean(dim=1)
            p = psnr(out, xb, "none").sum() if self.image else torch.zeros((), dtype=torch.float64)
            sums.update(torch.stack([mse.sum(), p.double(), torch.tensor(float(len(xb)), dtype=torch.float64)]))
        total = sums.compute()
        result = {"recon_mse": float(total[0] / total[2])}
        if self.image:
            result["recon_psnr"] = float(total[1] / total[2])
        return result


@register_metric("cluster_acc", keys=("cluster_acc", "clusters_used"), needs={"data"}, modalities=("image", "points"),
                 aliases=("clustering_accuracy",),
                 summary="test accuracy of a clustering model, each cluster mapped to its majority training label")
class ClusterAccMetric:
    """``cluster_acc`` and ``clusters_used`` (clusters holding at least one ``split`` sample)."""

    def __init__(self, ctx: EvalContext, split: str = "test", map_split: str = "train", batch_size: int = 500):
        if ctx.data is None:
            raise UserError("metric 'cluster_acc' needs the data module (its labelled splits)")
        info = ctx.info
        self.num_classes = int(getattr(info, "num_classes", 0) or 0)
        if self.num_classes < 2:
            raise UserError(f"metric 'cluster_acc' needs labelled data; data {getattr(info, 'name', '?')} has none")
        self.data, self.split, self.map_split, self.batch_size = ctx.data, split, map_split, int(batch_size)
        self.classify = None

    @staticmethod
    def check_model(module, options: dict) -> None:
        if not getattr(module, "num_clusters", 0):
            raise UserError(f"metric 'cluster_acc' scores a clustering model; model={module.name} has no clusters "
                            "(aae_cluster has)")

    def update(self, fake: FakeBatch) -> None:
        if self.classify is None:
            self.classify = _carried(fake, "classifier")

    def _counts(self, split: str, k: int) -> Tensor:
        x, y = _split_shard(self.data, split, "cluster_acc")
        if y is None:
            raise UserError(f"metric 'cluster_acc' needs the labels of the {split!r} split")
        clusters = [self.classify(x[lo:lo + self.batch_size]).argmax(dim=1) for lo in range(0, len(x), self.batch_size)]
        state = SummedTensor((k, self.num_classes))
        if clusters:
            state.update(cluster_counts(torch.cat(clusters), y, k, self.num_classes))
        return state.compute()

    def compute(self) -> dict[str, float]:
        if self.classify is None:
            raise UserError("metric 'cluster_acc' scores a clustering model; this model gives no clusters")
        first = next(self.data.batches(1, self.split, order_seed=None)).x
        k = int(self.classify(first).shape[1])  # the model's number of clusters
        fit = self._counts(self.map_split, k)
        scored = fit if self.map_split == self.split else self._counts(self.split, k)
        mapping = majority_mapping(fit)
        return {"cluster_acc": mapped_accuracy(scored, mapping), "clusters_used": float((scored.sum(dim=1) > 0).sum())}

