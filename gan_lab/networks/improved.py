"""Layers from "Improved Techniques for Training GANs" (Salimans et al. 2016).

* :class:`MinibatchDiscrimination`: lets D compare each sample with the rest of its batch, so a
  generator that collapses onto few outputs is easy to spot. Goes right before D's head.
* :class:`VirtualBatchNorm`: batch norm whose statistics come from a reference batch fixed at
  the start of training, combined with the example being normalised, so an example's output
  does not depend on the other examples in its batch. :func:`convert_to_virtual_batch_norm`
  swaps a generator's ``BatchNorm1d/2d`` layers for it; :class:`VirtualBatchNormGenerator`
  holds the fixed reference inputs and runs the reference pass before every forward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_lab.errors import UserError


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, section 3.2).

    The features ``f(x_i)`` (A values) are multiplied by a learned tensor ``T`` (A x B x C) to give
    ``M_i`` (B rows of C values). For each kernel ``b``, ``c_b(x_i, x_j) = exp(-||M_i,b - M_j,b||_1)``
    and ``o(x_i)_b = sum_{j != i} c_b(x_i, x_j)``. The output is ``[f(x_i), o(x_i)]``, i.e.
    ``in_features + num_kernels`` values. The paper's sum runs over all j; the self term is the
    constant exp(0) = 1, which the authors' code leaves out (``include_self=False``, the default).

    ``T`` is initialised N(0, 0.05^2) as in the authors' code. The output of a sample depends on the
    whole batch: feed real and fake data as separate batches, and do not combine this layer with
    per-sample gradient penalties (WGAN-GP, R1 ...).
    """

    def __init__(self, in_features: int, num_kernels: int = 100, kernel_dim: int = 5, include_self: bool = False):
        super().__init__()
        for name, value in (("num_kernels", num_kernels), ("kernel_dim", kernel_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"minibatch discrimination: {name} must be a positive integer, got {value!r}")
        self.in_features, self.num_kernels, self.kernel_dim = in_features, num_kernels, kernel_dim
        self.include_self = include_self
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) * 0.05)

    @property
    def out_features(self) -> int:
        return self.in_features + self.num_kernels

    def forward(self, f: Tensor) -> Tensor:
        m = (f @ self.T).view(f.shape[0], self.num_kernels, self.kernel_dim).transpose(0, 1)  # (nk, B, kd)
        # L1 distances of every pair, per kernel, without materialising (B, B, nk, kd)
        l1 = torch.cdist(m, m, p=1)  # (nk, B, B)
        o = torch.exp(-l1).sum(dim=2).T  # (B, nk)
        if not self.include_self:
            o = o - 1.0  # the diagonal terms, exp(-0) = 1 each
        return torch.cat([f, o], dim=1)


class VirtualBatchNorm(nn.Module):
    """Virtual batch norm (Salimans et al. 2016, section 3.5) for ``(B, C)`` or ``(B, C, H, W)``.

    In the *reference* pass (``collecting = True``) the layer normalises its input, the reference
    batch of N examples, with that batch's own per-channel mean and mean square and keeps them.
    In the following *live* pass each example x is normalised with the statistics of the set
    {reference batch} + {x}: ``mean = (N * mean_ref + mean_x) / (N + 1)``, the same for the mean
    square, ``var = mean_sq - mean^2`` (biased, as batch norm in training), where ``mean_x`` is
    over x's spatial positions (the value itself for ``(B, C)`` input). Then the usual affine
    ``gamma * x_hat + beta``. The kept statistics carry gradients, as in the authors' code: the
    reference batch is fixed, its activations follow the current weights.

    There are no running averages: train and eval behave the same. Use it through
    :class:`VirtualBatchNormGenerator`, which runs the reference pass.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.collecting = False
        self._ref: tuple[Tensor, Tensor, int] | None = None

    def clear(self) -> None:
        self._ref = None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (2, 4):
            raise ValueError(f"VirtualBatchNorm takes (B, C) or (B, C, H, W), got {tuple(x.shape)}")
        shape = (1, -1) + (1,) * (x.dim() - 2)
        spatial = tuple(range(2, x.dim()))
        if self.collecting:
            dims = (0,) + spatial
            mean = x.mean(dim=dims)
            mean_sq = (x * x).mean(dim=dims)
            self._ref = (mean, mean_sq, x.shape[0])
            mean, mean_sq = mean.view(shape), mean_sq.view(shape)
        else:
            if self._ref is None:
                raise RuntimeError(
                    "VirtualBatchNorm has no reference statistics; run the network through "
                    "VirtualBatchNormGenerator (which runs the reference batch first)"
                )
            ref_mean, ref_sq, n = self._ref
            ex_mean = x.mean(dim=spatial, keepdim=True) if spatial else x
            ex_sq = (x * x).mean(dim=spatial, keepdim=True) if spatial else x * x
            new = 1.0 / (n + 1.0)
            mean = new * ex_mean + (1.0 - new) * ref_mean.view(shape)
            mean_sq = new * ex_sq + (1.0 - new) * ref_sq.view(shape)
        var = (mean_sq - mean * mean).clamp_min(0.0)
        out = (x - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.weight is not None}"


def convert_to_virtual_batch_norm(module: nn.Module, what: str = "the generator") -> nn.Module:
    """Replace every ``BatchNorm1d``/``BatchNorm2d`` inside ``module`` by a :class:`VirtualBatchNorm`
    with the same features, eps and (copied) affine parameters. Returns ``module`` (changed in
    place). A module without batch norm is a :class:`UserError`: the trick has nothing to replace.
    """
    count = 0

    def swap(parent: nn.Module) -> None:
        nonlocal count
        for name, child in parent.named_children():
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
                vbn = VirtualBatchNorm(child.num_features, child.eps, child.affine)
                if child.affine:
                    with torch.no_grad():
                        vbn.weight.copy_(child.weight)
                        vbn.bias.copy_(child.bias)
                setattr(parent, name, vbn.to(device=next(child.parameters(), torch.empty(0)).device))
                count += 1
            else:
                swap(child)

    swap(module)
    if count == 0:
        raise UserError(f"virtual_batch_norm replaces batch norm layers, but {what} has none")
    return module


class VirtualBatchNormGenerator(nn.Module):
    """A generator whose batch norms are virtual, with its fixed reference batch.

    ``ref_z`` (and ``ref_y`` for conditional generators) are buffers: drawn once at the start of
    training (by the family, with its own seeded generator) and saved in the state dict, so a
    resumed run keeps the same reference batch. Every forward pass first runs the reference batch
    through the network (collecting each layer's statistics), then the live batch, then forgets
    the statistics. That doubles G's forward cost, which is why the paper uses VBN in G only.
    """

    def __init__(self, generator: nn.Module, ref_z: Tensor, ref_y: Tensor | None = None):
        super().__init__()
        self.generator = convert_to_virtual_batch_norm(generator)
        if ref_z.shape[0] < 2:
            raise UserError(f"virtual_batch_norm needs a reference batch of at least 2, got {ref_z.shape[0]}")
        self.register_buffer("ref_z", ref_z.detach().clone())
        self.register_buffer("ref_y", None if ref_y is None else ref_y.detach().clone().long())
        self.latent_dim = getattr(generator, "latent_dim", ref_z.shape[1])

    def _vbn_layers(self) -> list[VirtualBatchNorm]:
        return [m for m in self.generator.modules() if isinstance(m, VirtualBatchNorm)]

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        layers = self._vbn_layers()
        try:
            for layer in layers:
                layer.collecting = True
            self.generator(self.ref_z, self.ref_y)
            for layer in layers:
                layer.collecting = False
            return self.generator(z, y)
        finally:
            for layer in layers:
                layer.collecting = False
                layer.clear()
