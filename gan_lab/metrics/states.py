"""torchmetrics ``Metric``s over precomputed features (so their states sync across DDP ranks).

FID, IS and KID subclass the torchmetrics classes: the states, ``update`` and the distributed
synchronisation are torchmetrics'; the feature network handed to them is
:class:`~gan_lab.metrics.features.PrecomputedFeatures` (identity), because gan_lab extracts
features once per batch and feeds the same tensors to every metric. ``compute`` is replaced by
the float64 functions of :mod:`gan_lab.metrics.functional`, which are deterministic (IS splits in
order, KID subsets from a seeded generator), so every rank returns the same value and a
distributed run equals a single-process run on the same samples.

Use ``update`` + ``compute`` (never ``forward``: torchmetrics' FID ``forward`` resets the state),
and call ``compute`` on *every* rank: it gathers states collectively and hangs if one rank skips it.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.data import dim_zero_cat

from gan_lab.metrics import functional as Fn
from gan_lab.metrics.features.base import PrecomputedFeatures

__all__ = ["FID", "InceptionScoreMetric", "KID", "PrecisionRecall"]


@contextmanager
def _quiet_buffer_warning():
    # torchmetrics warns that IS/KID keep all features in memory: that is the design here
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")
        yield


class _NoForward:
    """torchmetrics' ``forward`` computes a per-batch value and, for FID, resets the accumulated
    state; these metrics are accumulated with ``update`` and read with ``compute`` only."""

    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__}: use update(...) then compute() (forward() would reset the state)")


def _gather_in_rank_order(metric: Metric, *names: str) -> None:
    """Re-register list states with ``dist_reduce_fx="cat"``.

    torchmetrics' IS and KID keep their features in list states with ``dist_reduce_fx=None``,
    which are gathered element by element: the result interleaves the ranks' batches
    (r0b0, r1b0, r0b1, ...) and needs the same number of batches on every rank. With "cat" each
    rank's list is concatenated first and the gathered tensors are joined in rank order, for any
    number of batches per rank.
    """
    for name in names:
        metric.add_state(name, [], dist_reduce_fx="cat")


class FID(_NoForward, FrechetInceptionDistance):
    """Fréchet distance between real and fake feature Gaussians.

    ``update(features, real)`` with (B, num_features) features. Real statistics survive
    ``reset()`` (``reset_real_features=False``), so they can be loaded once.
    """

    def __init__(self, num_features: int, method: str = "eigh", **kwargs):
        super().__init__(feature=PrecomputedFeatures(num_features), reset_real_features=False, normalize=False, **kwargs)
        self.method = method

    def _mean_cov(self, s: Tensor, ss: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
        n = n.to(torch.float64)
        mu = s / n
        cov = (ss - n * torch.outer(mu, mu)) / (n - 1)
        return mu, cov

    def compute(self) -> Tensor:
        if self.real_features_num_samples < 2 or self.fake_features_num_samples < 2:
            raise RuntimeError("FID needs at least 2 real and 2 fake samples")
        mu_r, cov_r = self._mean_cov(self.real_features_sum, self.real_features_cov_sum, self.real_features_num_samples)
        mu_f, cov_f = self._mean_cov(self.fake_features_sum, self.fake_features_cov_sum, self.fake_features_num_samples)
        return torch.tensor(Fn.frechet_distance(mu_r, cov_r, mu_f, cov_f, method=self.method), dtype=torch.float64)


class InceptionScoreMetric(_NoForward, InceptionScore):
    """Inception Score from (B, num_classes) logits: ``update(logits)``; ``compute() -> (mean, std)``.

    Splits are contiguous in arrival order (rank 0's samples first under DDP); std has ``ddof=0``.
    """

    def __init__(self, num_classes: int, splits: int = 10, **kwargs):
        with _quiet_buffer_warning():
            super().__init__(feature=PrecomputedFeatures(num_classes), splits=splits, normalize=False, **kwargs)
        _gather_in_rank_order(self, "features")

    def compute(self) -> tuple[Tensor, Tensor]:
        logits = dim_zero_cat(self.features)
        splits = min(self.splits, logits.shape[0])
        mean, std = Fn.inception_score(logits, splits=splits, probs=False)
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)


class KID(_NoForward, KernelInceptionDistance):
    """Kernel Inception Distance: ``update(features, real)``; ``compute() -> (mean, std)``.

    Subsets are drawn with ``torch.Generator().manual_seed(seed)``; ``subset_size`` is lowered
    to the number of samples when fewer are available (with a warning).
    """

    def __init__(self, num_features: int, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                 gamma: float | None = None, coef: float = 1.0, seed: int = 0, **kwargs):
        with _quiet_buffer_warning():
            super().__init__(
                feature=PrecomputedFeatures(num_features), subsets=subsets, subset_size=subset_size, degree=degree,
                gamma=None if gamma is None else float(gamma), coef=float(coef), reset_real_features=False,
                normalize=False, **kwargs,
            )
        _gather_in_rank_order(self, "real_features", "fake_features")
        self.seed = seed

    def compute(self) -> tuple[Tensor, Tensor]:
        real = dim_zero_cat(self.real_features)
        fake = dim_zero_cat(self.fake_features)
        mean, std = Fn.kernel_inception_distance(
            real, fake, self.subsets, self.subset_size, self.degree, self.gamma, self.coef, seed=self.seed
        )
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)


class PrecisionRecall(Metric):
    """Improved precision/recall (k-NN manifolds) over features: ``update(features, real)``."""

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, k: int = 3, batch_size: int = 1024, **kwargs):
        super().__init__(**kwargs)
        self.k = k
        self.batch_size = batch_size
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, features: Tensor, real: bool) -> None:
        (self.real_features if real else self.fake_features).append(features.detach())

    def compute(self) -> tuple[Tensor, Tensor]:
        real = dim_zero_cat(self.real_features)
        fake = dim_zero_cat(self.fake_features)
        p, r = Fn.precision_recall(real, fake, k=self.k, batch_size=self.batch_size)
        return torch.tensor(p, dtype=torch.float64), torch.tensor(r, dtype=torch.float64)
