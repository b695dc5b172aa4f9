"""The metric formulas of gan_lab.metrics.functional against references written out here."""

import math

import numpy as np
import pytest
import torch
from scipy import linalg

from gan_lab.metrics.functional import (
    class_diagnostics,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    mean_cov,
    mode_stats_2d,
    precision_recall,
)
from numerics import EPS64, fid_self_distance_bound


# ------------------------------------------------------------------------------------ Fréchet


def _fd_reference(mu1, s1, mu2, s2):
    covmean = linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


@pytest.mark.parametrize("dim", [4, 32])
def test_frechet_matches_scipy_sqrtm_on_gaussian_features(dim):
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(400, dim))
    b = rng.normal(size=(300, dim)) @ rng.normal(size=(dim, dim)) * 0.5 + 0.3
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    ref = _fd_reference(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-9, abs=1e-9)
    assert frechet_distance(mu1, s1, mu2, s2, method="sqrtm") == pytest.approx(ref, rel=1e-9, abs=1e-9)
    # torch inputs and mean_cov give the same statistics as numpy
    tmu, tsig = mean_cov(torch.tensor(a))
    np.testing.assert_allclose(tmu.numpy(), mu1, rtol=1e-12)
    np.testing.assert_allclose(tsig.numpy(), s1, rtol=1e-10, atol=1e-12)


def test_frechet_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(1)
    d = 10
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.1, 3, size=d), rng.uniform(0.1, 3, size=d)
    v2[:3] = 0.0  # singular: three dimensions without variance
    closed = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum())
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(closed, rel=1e-10)
    # sigma1 singular instead (the fast Cholesky path cannot be used)
    assert frechet_distance(mu2, np.diag(v2), mu1, np.diag(v1)) == pytest.approx(closed, rel=1e-10)


def test_frechet_identical_and_rank_deficient():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 64))  # N < D: covariance of rank 19
    mu, s = mean_cov(x)
    assert abs(frechet_distance(mu, s, mu, s)) <= fid_self_distance_bound(torch.tensor(x))  # exactly 0 up to round-off
    y = rng.normal(size=(20, 64)) + 1.0
    mu2, s2 = mean_cov(y)
    value = frechet_distance(mu, s, mu2, s2)
    assert math.isfinite(value) and value > 64  # the mean shift alone contributes 64
    # gram-matrix identity: Tr sqrt(S1 S2) = nuclear norm of Xc Yc^T / (N - 1)
    xc, yc = x - x.mean(0), y - y.mean(0)
    nuclear = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / 19
    expected = float(((mu - mu2) ** 2).sum() + torch.trace(s) + torch.trace(s2) - 2 * nuclear)
    assert value == pytest.approx(expected, rel=1e-9)


def test_frechet_rejects_bad_shapes():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ------------------------------------------------------------------------------------ IS


def test_inception_score_matches_hand_computation():
    logits = np.array(
        [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-2.0, 3.0, 0.0], [1.0, 1.0, 1.0], [0.0, -1.0, 4.0], [5.0, 0.0, 0.0]]
    )
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores = []
    for part in (p[:3], p[3:]):
        py = part.mean(0)
        kl = np.mean([sum(row[j] * math.log(row[j] / py[j]) for j in range(3)) for row in part])
        scores.append(math.exp(kl))
    mean, std = inception_score(logits, splits=2)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert std == pytest.approx(np.std(scores), rel=1e-9)
    # probabilities give the same value as their logits
    m2, s2 = inception_score(torch.tensor(p), splits=2)
    assert (m2, s2) == pytest.approx((mean, std), rel=1e-9)


def test_inception_score_extremes():
    k = 7
    assert inception_score(np.eye(k), splits=1)[0] == pytest.approx(k)  # confident and all classes
    same = np.tile(np.eye(k)[:1], (10, 1))
    assert inception_score(same, splits=1)[0] == pytest.approx(1.0)  # collapsed onto one class
    assert inception_score(np.zeros((10, k)), splits=2)[0] == pytest.approx(1.0)  # uniform logits


# ------------------------------------------------------------------------------------ KID


def _mmd2_unbiased_direct(x, y, degree=3, gamma=None, coef=1.0):
    """Unbiased MMD², summed pair by pair."""
    m, n = len(x), len(y)
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k = lambda a, b: (gamma * float(a @ b) + coef) ** degree  # noqa: E731
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


@pytest.mark.parametrize("full_kernel", [True, False])
def test_kid_matches_direct_unbiased_formula(full_kernel):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(25, 6))
    y = rng.normal(size=(25, 6)) * 1.3 + 0.2
    ref = _mmd2_unbiased_direct(x, y)
    limit = 10**9 if full_kernel else 0
    # a subset of all 25 rows is a permutation: every subset gives the same value
    mean, std = kernel_inception_distance(x, y, subsets=4, subset_size=25, max_kernel_entries=limit)
    assert mean == pytest.approx(ref, rel=1e-10)
    # so the estimates differ only in summation order: by at most (number of kernel terms) * eps * mean |k|
    xy = np.concatenate([x, y])
    mean_abs_k = np.abs((xy @ xy.T / x.shape[1] + 1.0) ** 3).mean()
    assert std <= 3 * 25**2 * EPS64 * mean_abs_k
    ref2 = _mmd2_unbiased_direct(x, y, degree=2, gamma=0.5, coef=2.0)
    assert kernel_inception_distance(x, y, 1, 25, degree=2, gamma=0.5, coef=2.0, max_kernel_entries=limit)[0] == pytest.approx(ref2, rel=1e-10)


def test_kid_subsets_are_seeded_and_paths_agree():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(60, 5)), rng.normal(size=(50, 5)) + 0.5
    a = kernel_inception_distance(x, y, subsets=20, subset_size=30, seed=7)
    b = kernel_inception_distance(x, y, subsets=20, subset_size=30, seed=7, max_kernel_entries=0)
    assert a == pytest.approx(b, rel=1e-10)
    assert a != kernel_inception_distance(x, y, subsets=20, subset_size=30, seed=8)
    with pytest.warns(UserWarning, match="lowered"):
        kernel_inception_distance(x, y, subsets=2, subset_size=100)
    # same distribution: close to 0 (unbiased, so either sign); shifted distribution: clearly positive
    same = kernel_inception_distance(x[:30], x[30:], subsets=5, subset_size=20)[0]
    shifted = kernel_inception_distance(x, y, subsets=5, subset_size=20)[0]
    assert abs(same) < 0.2 * shifted


# ------------------------------------------------------------------------------------ precision / recall


def test_precision_recall_on_constructed_points():
    real = np.array([[i, 0.0] for i in range(10)])  # k=1 radius of every real point: 1
    fake = np.array([[0.5, 0.0], [2.5, 0.0], [4.5, 0.0], [100.0, 0.0], [101.0, 0.0]])
    # fake radii (k=1): 2, 2, 2, 1, 1 -> the fake manifold covers reals 0..6
    p, r = precision_recall(real, fake, k=1)
    assert p == pytest.approx(3 / 5)
    assert r == pytest.approx(7 / 10)
    assert precision_recall(real, fake, k=1, batch_size=3) == (p, r)  # blocked distance computation


def test_precision_recall_identical_and_disjoint_sets():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 8))
    assert precision_recall(x, x, k=3) == (1.0, 1.0)
    far = x + 1000.0
    assert precision_recall(x, far, k=3) == (0.0, 0.0)
    # a collapsed generator (all samples near one real point): precise but no recall
    collapsed = x[:1] + 1e-3 * rng.normal(size=(50, 8))
    p, r = precision_recall(x, collapsed, k=3)
    assert p == 1.0 and r < 0.05


# ------------------------------------------------------------------------------------ mode statistics


def test_mode_stats_pacgan_protocol():
    angles = np.arange(8) * 2 * np.pi / 8
    modes = np.stack([np.cos(angles), np.sin(angles)], 1)
    std = 0.01
    rng = np.random.default_rng(6)
    near0 = modes[0] + std * rng.uniform(-1, 1, size=(100, 2))  # within 3 std (|d| <= sqrt(2) std)
    near1 = modes[1] + std * rng.uniform(-1, 1, size=(50, 2))
    off2 = np.tile(modes[2] * 0.5, (10, 1))  # nearest to mode 2 but 0.5 away: low quality
    out = mode_stats_2d(np.concatenate([near0, near1, off2]), modes, std)
    assert out["modes_captured"] == 2
    assert out["high_quality_frac"] == pytest.approx(150 / 160)
    h = np.array([100, 50, 10, 0, 0, 0, 0, 0]) / 160
    kl = sum(p * math.log(p * 8) for p in h if p > 0)  # empty bins contribute 0
    assert out["kl"] == pytest.approx(kl)


def test_mode_stats_balanced_and_collapsed():
    modes = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    balanced = np.repeat(modes, 5, axis=0)
    out = mode_stats_2d(balanced, modes, 0.05)
    assert out == {"modes_captured": 4, "high_quality_frac": 1.0, "kl": pytest.approx(0.0, abs=1e-12)}
    collapsed = mode_stats_2d(np.repeat(modes[:1], 9, axis=0), modes, 0.05)
    assert collapsed["modes_captured"] == 1 and collapsed["kl"] == pytest.approx(math.log(4))


# ------------------------------------------------------------------------------------ class diagnostics


def test_class_diagnostics_by_hand():
    probs = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.3, 0.6, 0.1], [0.7, 0.2, 0.1]])
    data_hist = np.array([50, 30, 20])  # counts are normalised
    out = class_diagnostics(probs, data_hist, eps=0.0)
    assert out["quality"] == pytest.approx((0.9 + 0.8 + 0.6 + 0.7) / 4)
    fake = np.array([0.75, 0.25, 0.0])
    assert out["diversity"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert out["classes_covered"] == 2
    assert out["kl"] == pytest.approx(0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.3))
    # logits are accepted too (softmax), and a uniform reference is the default
    logits = torch.log(torch.tensor(probs) + 1e-12)
    assert class_diagnostics(logits)["classes_covered"] == 2


def test_class_diagnostics_reference_without_support_stays_finite():
    probs = np.eye(3)[[0, 1, 2, 2]]
    out = class_diagnostics(probs, [1.0, 1.0, 0.0])
    assert math.isfinite(out["kl"]) and out["kl"] > 3  # class 2 never occurs in the data
