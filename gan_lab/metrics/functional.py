"""Sample-quality measures as plain functions of feature arrays.

Everything here is independent of any network: the caller extracts features (Inception pool3,
a domain classifier's penultimate layer, ...) and hands arrays or tensors over. Sums, covariances
and kernels are computed in float64; the results are Python floats.

Conventions
-----------
* ``frechet_distance`` takes the unbiased (``N - 1``) covariance, as every published FID does.
* ``inception_score`` splits the samples *in the given order* into ``splits`` contiguous parts
  (``N * i // splits`` boundaries, as in the original Salimans et al. code) and reports the mean
  and the population standard deviation (``ddof=0``) over parts; no shuffling, so the value is a
  deterministic function of the input.
* ``kernel_inception_distance`` draws its subsets with a seeded generator, so two calls on the
  same features agree exactly.
* Entropies and KL divergences are in nats.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "class_diagnostics",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "mean_cov",
    "mode_stats_2d",
    "precision_recall",
]


def _as_f64(x, device=None) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().to(device=device or x.device, dtype=torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64, device=device)


def mean_cov(features) -> tuple[Tensor, Tensor]:
    """Mean vector and unbiased covariance matrix of ``features`` (N, D), in float64."""
    f = _as_f64(features)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need a (N>=2, D) feature matrix, got shape {tuple(f.shape)}")
    mu = f.mean(dim=0)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)
    return mu, sigma


def _sqrt_psd(sigma: Tensor) -> Tensor:
    """Symmetric square root of a (numerically) positive semi-definite matrix.

    Eigenvalues below the round-off level ``max_eig * D * machine_eps`` are set to zero so that
    the null space of a rank-deficient covariance does not leak ``sqrt(noise)`` into the result.
    """
    sym = 0.5 * (sigma + sigma.T)
    evals, evecs = torch.linalg.eigh(sym)
    evals = _drop_noise(evals)
    return (evecs * evals.sqrt()) @ evecs.T


def _drop_noise(evals: Tensor) -> Tensor:
    tol = evals.abs().max().clamp_min(1e-300) * evals.numel() * torch.finfo(evals.dtype).eps
    return torch.where(evals > tol, evals, torch.zeros_like(evals))


def _trace_sqrt_product(s1: Tensor, s2: Tensor) -> float:
    """``Tr((s1 s2)^(1/2))`` for symmetric PSD ``s1``, ``s2``.

    ``s1 s2`` is similar to the symmetric PSD matrix ``F^T s2 F`` for any factor ``s1 = F F^T``,
    so the trace is the sum of square roots of that matrix's (real, non-negative) eigenvalues.
    The factor is the Cholesky factor when ``s1`` is positive definite (fast) and the symmetric
    square root otherwise (singular covariance, e.g. fewer samples than dimensions).
    """
    s1 = 0.5 * (s1 + s1.T)
    s2 = 0.5 * (s2 + s2.T)
    factor, info = torch.linalg.cholesky_ex(s1)
    if int(info) != 0 or not bool(torch.isfinite(factor).all()):
        factor = _sqrt_psd(s1)
    inner = factor.T @ s2 @ factor
    evals = torch.linalg.eigvalsh(0.5 * (inner + inner.T))
    return float(_drop_noise(evals).sqrt().sum())


def frechet_distance(mu1, sigma1, mu2, sigma2, *, method: str = "eigh", eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``d² = |mu1 - mu2|² + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2))``

    ``method="eigh"`` (default) evaluates the trace term as ``sum sqrt(eig(F^T sigma2 F))`` with
    ``sigma1 = F F^T`` (Cholesky, or the symmetric square root when sigma1 is singular). That
    matrix is symmetric PSD, so its eigenvalues are real; round-off-sized eigenvalues are set to
    zero and no imaginary parts can appear. It is exact for singular covariances too (fewer
    samples than dimensions) and several times faster than ``sqrtm``.

    ``method="sqrtm"`` reproduces the classic reference implementation: ``scipy.linalg.sqrtm``
    of the non-symmetric product; if the result is not finite ``eps`` is added to both
    diagonals and it is retried; a small imaginary part (numerical noise) is dropped, a large
    one (> 1e-3 relative to the largest entry) raises ``ValueError``.
    """
    mu1, mu2 = _as_f64(mu1).reshape(-1), _as_f64(mu2).reshape(-1)
    s1, s2 = _as_f64(sigma1, mu1.device), _as_f64(sigma2, mu1.device)
    mu2 = mu2.to(mu1.device)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(
            f"shape mismatch: mu {tuple(mu1.shape)}/{tuple(mu2.shape)}, sigma {tuple(s1.shape)}/{tuple(s2.shape)}"
        )
    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    trace_term = float(torch.trace(s1) + torch.trace(s2))
    if method == "eigh":
        covmean_trace = _trace_sqrt_product(s1, s2)
    elif method == "sqrtm":
        covmean_trace = _sqrtm_trace(s1.cpu().numpy(), s2.cpu().numpy(), eps)
    else:
        raise ValueError(f"unknown method {method!r}; use 'eigh' or 'sqrtm'")
    return mean_term + trace_term - 2.0 * covmean_trace


def _sqrtm_trace(s1: np.ndarray, s2: np.ndarray, eps: float) -> float:
    from scipy import linalg

    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        warnings.warn(f"frechet_distance: singular product, adding {eps} to the covariance diagonals")
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(covmean.imag).max()
        if imag > 1e-3 * max(1.0, np.abs(covmean.real).max()):
            raise ValueError(f"frechet_distance: sqrtm has a large imaginary component ({imag:.3g})")
        covmean = covmean.real
    return float(np.trace(covmean))


def inception_score(logits_or_probs, splits: int = 10, *, probs: bool | None = None) -> tuple[float, float]:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))``, mean and std over ``splits`` parts.

    ``logits_or_probs`` is (N, K). ``probs=None`` detects the kind: rows that are non-negative and
    sum to 1 are taken as probabilities, anything else as logits (softmax applied). Splits are
    contiguous in the given order; std is the population std over splits (``ddof=0``).
    """
    x = _as_f64(logits_or_probs)
    if x.ndim != 2:
        raise ValueError(f"expected (N, K) logits or probabilities, got shape {tuple(x.shape)}")
    n = x.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be in [1, N={n}], got {splits}")
    if probs is None:
        probs = bool((x >= 0).all() and torch.allclose(x.sum(dim=1), torch.ones(n, dtype=x.dtype, device=x.device), atol=1e-4))
    if probs:
        p = x / x.sum(dim=1, keepdim=True)
        logp = torch.log(p.clamp_min(1e-300))
    else:
        logp = torch.log_softmax(x, dim=1)
        p = logp.exp()
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        part_p, part_logp = p[lo:hi], logp[lo:hi]
        marginal = part_p.mean(dim=0, keepdim=True)
        kl = (part_p * (part_logp - torch.log(marginal.clamp_min(1e-300)))).sum(dim=1).mean()
        scores.append(math.exp(float(kl)))
    return float(np.mean(scores)), float(np.std(scores))


def _poly_kernel(a: Tensor, b: Tensor, degree: int, gamma: float, coef: float) -> Tensor:
    return (gamma * (a @ b.T) + coef) ** degree


def _mmd2_from_kernels(k_xx: Tensor, k_yy: Tensor, k_xy: Tensor) -> Tensor:
    """Unbiased MMD² of two equally sized samples from their kernel matrices."""
    m = k_xx.shape[0]
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m)


def kernel_inception_distance(
    f_real,
    f_fake,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    *,
    seed: int = 0,
    max_kernel_entries: int = 40_000_000,
) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the kernel
    ``k(a, b) = (gamma a·b + coef)^degree`` (``gamma=None`` means ``1 / D``).

    ``subsets`` times, ``subset_size`` real and ``subset_size`` fake rows are drawn without
    replacement (seeded by ``seed``); returns the mean and population std of the estimates.
    If a set has fewer rows than ``subset_size``, the subset size is lowered to fit, with a warning.

    When the three full kernel matrices have at most ``max_kernel_entries`` entries in total they
    are computed once and indexed per subset (the same numbers, many times faster for small sets);
    otherwise each subset's kernels are computed on the fly.
    """
    xr = _as_f64(f_real)
    xf = _as_f64(f_fake, xr.device)
    if xr.ndim != 2 or xf.ndim != 2 or xr.shape[1] != xf.shape[1]:
        raise ValueError(f"need (N, D) real and fake features with the same D, got {tuple(xr.shape)}, {tuple(xf.shape)}")
    nr, nf = xr.shape[0], xf.shape[0]
    m = min(subset_size, nr, nf)
    if m < 2:
        raise ValueError("KID needs at least 2 real and 2 fake samples")
    if m < subset_size:
        warnings.warn(f"KID: subset_size {subset_size} lowered to {m} (number of available samples)")
    g = 1.0 / xr.shape[1] if gamma is None else float(gamma)
    gen = torch.Generator().manual_seed(seed)
    picks = [(torch.randperm(nr, generator=gen)[:m], torch.randperm(nf, generator=gen)[:m]) for _ in range(subsets)]
    if nr * nr + nf * nf + nr * nf <= max_kernel_entries:
        # subset sums as quadratic forms with 0/1 indicator columns: sum_{i,j in I} K_ij = v_I^T K v_I
        v_r = torch.zeros(nr, subsets, dtype=torch.float64, device=xr.device)
        v_f = torch.zeros(nf, subsets, dtype=torch.float64, device=xr.device)
        for s_, (ir, jf) in enumerate(picks):
            v_r[ir.to(xr.device), s_] = 1.0
            v_f[jf.to(xr.device), s_] = 1.0
        k_rr = _poly_kernel(xr, xr, degree, g, coef)
        k_ff = _poly_kernel(xf, xf, degree, g, coef)
        k_rf = _poly_kernel(xr, xf, degree, g, coef)
        sum_rr = ((k_rr @ v_r) * v_r).sum(0) - k_rr.diagonal() @ v_r
        sum_ff = ((k_ff @ v_f) * v_f).sum(0) - k_ff.diagonal() @ v_f
        sum_rf = ((k_rf @ v_f) * v_r).sum(0)
        vals = ((sum_rr + sum_ff) / (m * (m - 1)) - 2.0 * sum_rf / (m * m)).tolist()
    else:
        vals = []
        for ir, jf in picks:
            a, b = xr[ir.to(xr.device)], xf[jf.to(xr.device)]
            vals.append(float(_mmd2_from_kernels(_poly_kernel(a, a, degree, g, coef), _poly_kernel(b, b, degree, g, coef),
                                                 _poly_kernel(a, b, degree, g, coef))))
    return float(np.mean(vals)), float(np.std(vals))


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    d = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return d.clamp_min_(0)


def _knn_radii(x: Tensor, k: int, batch_size: int) -> Tensor:
    """Squared distance from each row of ``x`` to its k-th nearest other row."""
    if x.shape[0] <= k:
        raise ValueError(f"need more than k={k} points to build a k-NN manifold, got {x.shape[0]}")
    out = []
    for lo in range(0, x.shape[0], batch_size):
        d = _sq_dists(x[lo : lo + batch_size], x)
        # index k (0-based) skips the point itself at distance 0
        out.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


def _inside_manifold(queries: Tensor, support: Tensor, radii: Tensor, batch_size: int) -> Tensor:
    inside = []
    for lo in range(0, queries.shape[0], batch_size):
        d = _sq_dists(queries[lo : lo + batch_size], support)
        inside.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(inside)


def precision_recall(real_feats, fake_feats, k: int = 3, *, batch_size: int = 1024) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its points with radius equal to the
    distance to the point's k-th nearest neighbour in the same set. Precision is the fraction of
    fake points inside the real manifold; recall the fraction of real points inside the fake
    manifold. A point on the ball's boundary counts as inside. Distances are computed in float64
    in blocks of ``batch_size`` rows, so memory is ``batch_size * N`` numbers.
    """
    r = _as_f64(real_feats)
    f = _as_f64(fake_feats, r.device)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"need (N, D) real and fake features with the same D, got {tuple(r.shape)}, {tuple(f.shape)}")
    r_radii = _knn_radii(r, k, batch_size)
    f_radii = _knn_radii(f, k, batch_size)
    precision = _inside_manifold(f, r, r_radii, batch_size).double().mean()
    recall = _inside_manifold(r, f, f_radii, batch_size).double().mean()
    return float(precision), float(recall)


def _kl(p: Tensor, q: Tensor) -> float:
    """KL(p || q) with 0 log 0 = 0 (bins where p is zero contribute nothing)."""
    mask = p > 0
    return float((p[mask] * (p[mask].log() - q[mask].log())).sum())


def mode_stats_2d(samples, modes, std: float, hq_sigmas: float = 3.0) -> dict[str, float]:
    """Mode-coverage statistics for 2-D Gaussian mixtures (the VEEGAN/PacGAN protocol).

    Each sample is assigned to its nearest mode mean. It is *high quality* when that distance is
    at most ``hq_sigmas * std``. A mode is *captured* when at least one high-quality sample is
    assigned to it.

    Returns ``modes_captured`` (int, out of ``len(modes)``), ``high_quality_frac`` (share of
    high-quality samples) and ``kl`` = KL(h || uniform), where h is the normalised histogram of
    nearest-mode assignments of *all* samples. Zero bins of h contribute 0 (the limit of
    p log p); the uniform reference has no zero bins, so the value is always finite: 0 for a
    perfectly balanced generator, ``log(len(modes))`` when every sample lands on one mode.
    """
    x = _as_f64(samples)
    mu = _as_f64(modes, x.device)
    if x.ndim != 2 or mu.ndim != 2 or x.shape[1] != mu.shape[1]:
        raise ValueError(f"need (N, D) samples and (K, D) modes, got {tuple(x.shape)}, {tuple(mu.shape)}")
    d2 = _sq_dists(x, mu)
    dist, nearest = d2.min(dim=1)
    hq = dist.sqrt() <= hq_sigmas * std
    k = mu.shape[0]
    captured = torch.bincount(nearest[hq], minlength=k) > 0
    hist = torch.bincount(nearest, minlength=k).double()
    hist = hist / hist.sum()
    uniform = torch.full_like(hist, 1.0 / k)
    return {
        "modes_captured": int(captured.sum()),
        "high_quality_frac": float(hq.double().mean()),
        "kl": _kl(hist, uniform),
    }


def class_diagnostics(probs, data_class_hist: Sequence[float] | Tensor | None = None, *, eps: float = 1e-6) -> dict[str, float]:
    """What a classifier says about generated samples (the two halves of the Inception Score).

    ``probs`` (N, K): class posteriors (rows summing to 1; logits are softmaxed if not).
    ``data_class_hist`` (K,): class counts or frequencies of the real data (``None`` → uniform).

    * ``quality``: mean top-class confidence (high = each sample looks like *some* class);
    * ``diversity``: entropy (nats) of the histogram of predicted classes (argmax);
    * ``classes_covered``: number of classes predicted for at least one sample;
    * ``kl``: KL(fake class histogram || data class histogram). Empty fake bins contribute 0; to
      keep the value finite, the data histogram is mixed with ``eps`` of a uniform one before the
      log, so a class that is absent from the data but produced by G costs about ``p·log(p/eps)``.
    """
    p = _as_f64(probs)
    if p.ndim != 2:
        raise ValueError(f"expected (N, K) probabilities, got shape {tuple(p.shape)}")
    rows_are_probs = bool((p >= 0).all()) and torch.allclose(p.sum(1), torch.ones_like(p[:, 0]), atol=1e-4)
    if not rows_are_probs:
        p = torch.softmax(p, dim=1)
    k = p.shape[1]
    top, pred = p.max(dim=1)
    hist = torch.bincount(pred, minlength=k).double()
    hist = hist / hist.sum()
    if data_class_hist is None:
        ref = torch.full((k,), 1.0 / k, dtype=torch.float64, device=p.device)
    else:
        ref = _as_f64(data_class_hist, p.device).reshape(-1)
        if ref.numel() != k:
            raise ValueError(f"data_class_hist has {ref.numel()} bins but probs have {k} classes")
        ref = ref / ref.sum()
    ref = (1 - eps) * ref + eps / k
    nz = hist[hist > 0]
    return {
        "quality": float(top.mean()),
        "diversity": max(0.0, float(-(nz * nz.log()).sum())),  # one class: 0, never -0
        "classes_covered": int((hist > 0).sum()),
        "kl": _kl(hist, ref),
    }
