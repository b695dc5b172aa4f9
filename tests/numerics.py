"""Round-off bounds for the metric tests, derived from what the code computes (not from one machine's output).

A test that expects an exact value (the Fréchet distance of a feature set to itself is 0) can only
ask for it up to the round-off of the algorithm that computes it. That round-off scales with the
numbers (covariance eigenvalues, feature magnitudes), so the bound is computed here from the same
features the test feeds to the metric.
"""

from __future__ import annotations

import torch

EPS64 = torch.finfo(torch.float64).eps


def fid_self_distance_bound(features: torch.Tensor) -> float:
    """Largest ``|FID|`` that float64 round-off can give for ``features`` against an identical copy.

    The exact value is 0. ``frechet_distance`` (method ``eigh``) returns
    ``Tr(S_r) + Tr(S_f) - 2 sum_i sqrt(mu_i)`` with ``mu_i`` the eigenvalues of ``F^T S_f F``,
    ``S_r = F F^T``. For ``S_r = S_f = S`` these are ``lambda_i^2``, the squared eigenvalues of
    ``S``. With ``tau = d eps lambda_max^2`` (``_drop_noise`` zeroes every ``mu_i <= tau``) and the
    round-off of forming and diagonalising that matrix taken as ``|delta| <= tau / 2`` (LAPACK's
    eigenvalue error is a small multiple of ``eps ||A||``; ``d / 2`` is generous), each eigenvalue
    of ``S`` contributes:

    * ``lambda_i <= 2 sqrt(tau)``: at most ``lambda_i`` (its ``mu_i`` may be zeroed, losing it all;
      if kept, the error ``sqrt(lambda_i^2 + delta) - lambda_i`` is smaller than ``lambda_i``);
    * otherwise it is kept, with error ``<= delta / (2 lambda_i) < tau / lambda_i``.

    Squaring the spectrum thus resolves eigenvalues only to about ``sqrt(d eps) lambda_max``
    (1e-7 of the largest one for d = 128): first order in ``sqrt(eps)``, not ``eps``, which is why a
    small but genuine eigenvalue of a trained classifier's feature covariance shows up in the
    self-distance at the 1e-5 level. Each such error counts twice (``- 2 sum sqrt``).

    Terms first order in ``eps`` are added: real and generated sums are accumulated in different
    batches (products of float32 features are exact in float64, the sums are not:
    ``|dS_ij| <= 2 n eps E|f_i f_j|``; the FID of two covariances is at most the trace norm of
    their difference, ``<= sqrt(d) ||dS||_F <= 2 n sqrt(d) eps E|f|^2``), the backward error of the
    square-root factor when ``S`` is singular (``d^2 eps lambda_max``, twice), and the traces
    (``d eps Tr S``).
    """
    f = features.detach().to(torch.float64)
    n, d = f.shape
    centred = f - f.mean(0)
    cov = centred.T @ centred / (n - 1)
    lam = torch.linalg.eigvalsh(cov).clamp_min(0)
    lam_max = float(lam.max())
    if lam_max == 0.0:
        return 0.0
    tau = d * EPS64 * lam_max**2
    per_eigenvalue = torch.where(lam <= 2 * tau**0.5, lam, tau / lam.clamp_min(1e-300))
    second_moment = float((f * f).sum(1).mean())  # E|f|^2
    first_order = (2 * n * d**0.5 * second_moment + 2 * d * d * lam_max + d * float(lam.sum())) * EPS64
    return 2 * float(per_eigenvalue.sum()) + first_order
