"""Losses of the models with codes (AAE, GLO, GON) as small pure functions.

* :func:`reconstruction_error`: per-sample squared error or binary cross-entropy (images in
  [-1, 1] are read as intensities ``(x + 1) / 2`` for the cross-entropy), averaged or summed
  over a sample's values.
* :func:`laplacian_pyramid` and :func:`laplacian_l1`: GLO's Laplacian-pyramid L1 loss
  ``Lap1(x, x') = sum_j 4^j |L^j(x) - L^j(x')|_1`` (Bojanowski et al. 2018), divided by the
  number of values of ``x``: level j has 4^-j of the pixels, so every level weighs the same as
  the plain L1 would on a full-size image. ``L^j = G^j - up(G^{j+1})`` with ``G^0 = x``, ``G^{j+1}``
  the 5-tap binomial blur of ``G^j`` subsampled by two, ``up`` zero-insertion followed by the
  same blur times four; the last level is the low-pass ``G^{J-1}`` itself. Borders are reflected.
* :func:`gradient_origin_latent`: GON's latent ``z = -grad_{z0} sum_i L_i(x_i, F(z0))`` at
  ``z0 = 0``, through which F is later trained (``create_graph=True``: second order).
* :func:`gaussian_kl`: KL(N(mu, exp(logvar)) || N(0, I)) per sample (variational GON).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

RECON_LOSSES = ("mse", "bce")
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def reconstruction_error(output: Tensor, target: Tensor, kind: str = "mse", reduce: str = "mean") -> Tensor:
    """Per-sample error ``(B,)``: ``mse`` is ``(output - target)^2``, ``bce`` the binary
    cross-entropy of intensities ``(output + 1) / 2`` against ``(target + 1) / 2`` (images in
    [-1, 1]), each averaged (``reduce="mean"``) or summed (``"sum"``: a log-likelihood up to
    constants, as GON uses) over the sample's values."""
    if output.shape != target.shape:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape")
    if kind == "mse":
        values = (output - target) ** 2
    elif kind == "bce":
        p = ((output + 1) / 2).clamp(1e-7, 1 - 1e-7)
        values = F.binary_cross_entropy(p, ((target + 1) / 2).clamp(0, 1), reduction="none")
    else:
        raise ValueError(f"reconstruction loss must be one of {RECON_LOSSES}, got {kind!r}")
    values = values.flatten(1)
    if reduce == "mean":
        return values.mean(dim=1)
    if reduce == "sum":
        return values.sum(dim=1)
    raise ValueError(f"reduce must be 'mean' or 'sum', got {reduce!r}")


def _blur(x: Tensor) -> Tensor:
    """Separable 5x5 binomial blur of (B, C, H, W), each channel alone, reflected borders."""
    c = x.shape[1]
    k = _BINOMIAL.to(x)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect" if min(x.shape[-2:]) > 2 else "replicate")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def _upsample(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero-insertion to twice the size, then the blur times four, cropped to ``size``."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return 4 * _blur(up)[:, :, : size[0], : size[1]]


def pyramid_levels(size: int, levels: int | None = None) -> int:
    """Pyramid depth for ``size`` px images: as asked, or (``None``) halving until the low-pass
    level is at most 8 px (28 px: 28, 14, 7: 3 levels; 64 px: 4)."""
    if levels is not None:
        return int(levels)
    depth = 1
    while size > 8:
        size = (size + 1) // 2
        depth += 1
    return depth


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``levels`` band-pass images from fine to coarse, the last the low-pass residual."""
    if levels < 1:
        raise ValueError(f"a Laplacian pyramid needs at least 1 level, got {levels}")
    out, current = [], x
    for _ in range(levels - 1):
        down = _blur(current)[:, :, ::2, ::2]
        out.append(current - _upsample(down, current.shape[-2:]))
        current = down
    out.append(current)
    return out


def laplacian_l1(output: Tensor, target: Tensor, levels: int | None = None) -> Tensor:
    """Per-sample ``Lap1`` (module docstring) of images ``(B, C, H, W)``: ``(B,)``."""
    if output.shape != target.shape or output.dim() != 4:
        raise ValueError(f"laplacian_l1 needs two (B, C, H, W) batches of one shape, got {tuple(output.shape)} "
                         f"and {tuple(target.shape)}")
    depth = pyramid_levels(output.shape[-1], levels)
    numel = output[0].numel()
    total = output.new_zeros(output.shape[0])
    for j, band in enumerate(laplacian_pyramid(output - target, depth)):  # the pyramid is linear
        total = total + 4.0**j * band.abs().flatten(1).sum(dim=1)
    return total / numel


def gradient_origin_latent(per_sample_loss: Callable[[Tensor], Tensor], batch_size: int, latent_dim: int,
                           like: Tensor, create_graph: bool = True) -> Tensor:
    """GON's latents of a batch: ``-grad`` at ``z0 = 0`` of ``sum_i per_sample_loss(z0)_i``.

    ``per_sample_loss(z0)`` returns the loss of every sample (``(B,)``: e.g. the reconstruction
    error of ``F(z0)`` against the batch), so the gradient of row i is that of sample i's own loss
    and the latents do not depend on the batch size. ``like`` gives the device and dtype. With
    ``create_graph`` the latent is a differentiable function of F's weights (training F through
    it is second order)."""
    z0 = torch.zeros(batch_size, latent_dim, device=like.device, dtype=like.dtype, requires_grad=True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(per_sample_loss(z0).sum(), z0, create_graph=create_graph)
    return -grad


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample ``(B,)``."""
    return -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)
