"""Latent priors of the models with codes (the adversarial autoencoders, GLO's and GON's fitted
Gaussians): draw samples, and state their exact moments.

Every prior draws from a ``torch.Generator`` it is given (never from the training streams when
one is given) and returns ``(z, component)``: the codes ``(n, dim)`` and, for priors made of
components (the 2-D mixture, the swiss roll's ten segments, the categorical), the component of
each sample (the class it stands for in the AAE paper's label-regularised figures), else ``None``.
``mean()`` and ``covariance()`` are the moments the distribution has by definition (float64),
computed without sampling: the tests hold the samplers to them.

======================= ======== ==========================================================
prior                   dims     definition
======================= ======== ==========================================================
``gaussian``            any      N(0, I)
``mixture``             2        10 Gaussians with means on a circle of radius ``radius`` at
                                 angles 2 pi k / 10, each elongated along its radius (std
                                 ``radial_std``) and thin across it (``tangential_std``),
                                 equally likely (the AAE paper's figure)
``swiss_roll``          2        ``t = 1.5 pi (1 + 2u)``, u ~ U(0, 1); z = ``scale`` t (cos t,
                                 sin t) + N(0, ``noise``^2 I); segment floor(10 u)
``categorical``         K        a one-hot vector of a uniformly drawn class (the
                                 semi-supervised AAE's y)
``fitted``              any      N(mean, cov) with a given mean and full covariance (GLO's
                                 and GON's Gaussian fitted to the learned codes)
======================= ======== ==========================================================
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from gan_lab import checks
from gan_lab.errors import UserError

PRIORS = ("gaussian", "mixture", "swiss_roll")
TWO_D = ("mixture", "swiss_roll")


def _normal(shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    return torch.rand(shape, generator=generator, dtype=torch.float64)


class Prior:
    name = "prior"
    dim = 0
    num_components = 0

    def sample(self, n: int, generator: torch.Generator | None = None,
               component: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``n`` codes (float32, CPU) and their components; ``component`` (n,) picks each sample's
        component where the prior has components."""
        z, c = self._sample(int(n), generator, component)
        return z.float(), c

    def _sample(self, n, generator, component):  # pragma: no cover - abstract
        raise NotImplementedError

    def mean(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def covariance(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _components(self, n: int, generator, component: Tensor | None) -> Tensor:
        if component is None:
            return torch.randint(self.num_components, (n,), generator=generator)
        component = torch.as_tensor(component).long().cpu().flatten()
        if component.numel() != n or bool(((component < 0) | (component >= self.num_components)).any()):
            raise ValueError(f"{n} components in 0..{self.num_components - 1} expected, got {component.tolist()}")
        return component


class GaussianPrior(Prior):
    name = "gaussian"

    def __init__(self, dim: int):
        self.dim = int(dim)

    def _sample(self, n, generator, component):
        return _normal((n, self.dim), generator), None

    def mean(self) -> Tensor:
        return torch.zeros(self.dim, dtype=torch.float64)

    def covariance(self) -> Tensor:
        return torch.eye(self.dim, dtype=torch.float64)


class MixturePrior(Prior):
    """Ten (``components``) 2-D Gaussians on a circle (module docstring)."""

    name = "mixture"
    dim = 2

    def __init__(self, components: int = 10, radius: float = 4.0, radial_std: float = 1.0,
                 tangential_std: float = 0.25):
        self.num_components = int(components)
        self.radius, self.radial_std, self.tangential_std = float(radius), float(radial_std), float(tangential_std)
        angles = 2 * math.pi * torch.arange(self.num_components, dtype=torch.float64) / self.num_components
        self.directions = torch.stack([angles.cos(), angles.sin()], dim=1)  # (K, 2) unit radial directions
        self.normals = torch.stack([-angles.sin(), angles.cos()], dim=1)

    @property
    def means(self) -> Tensor:
        return self.radius * self.directions

    def _sample(self, n, generator, component):
        c = self._components(n, generator, component)
        eps = _normal((n, 2), generator)
        z = (self.radius + self.radial_std * eps[:, :1]) * self.directions[c] + self.tangential_std * eps[:, 1:] * self.normals[c]
        return z, c

    def component_covariances(self) -> Tensor:
        """(K, 2, 2): ``radial_std^2 d d^T + tangential_std^2 n n^T`` per component."""
        d, t = self.directions, self.normals
        return (self.radial_std**2 * d[:, :, None] * d[:, None, :]
                + self.tangential_std**2 * t[:, :, None] * t[:, None, :])

    def mean(self) -> Tensor:
        return self.means.mean(dim=0)

    def covariance(self) -> Tensor:
        m = self.means
        second = (self.component_covariances() + m[:, :, None] * m[:, None, :]).mean(dim=0)
        mu = self.mean()
        return second - mu[:, None] * mu[None, :]


class SwissRollPrior(Prior):
    """The swiss roll (module docstring); its ten segments are its components."""

    name = "swiss_roll"
    dim = 2
    num_components = 10
    T0, T1 = 1.5 * math.pi, 4.5 * math.pi

    def __init__(self, scale: float = 0.3, noise: float = 0.1):
        self.scale, self.noise = float(scale), float(noise)

    def _sample(self, n, generator, component):
        if component is None:
            u = _uniform((n,), generator)
            c = (u * self.num_components).floor().long().clamp(max=self.num_components - 1)
        else:
            c = self._components(n, generator, component)
            u = (c.double() + _uniform((n,), generator)) / self.num_components
        t = self.T0 + (self.T1 - self.T0) * u
        z = self.scale * t[:, None] * torch.stack([t.cos(), t.sin()], dim=1) + self.noise * _normal((n, 2), generator)
        return z, c

    def _quadrature(self, f) -> Tensor:
        """E[f(t)] for t ~ U(T0, T1), by 200-point Gauss-Legendre quadrature (exact to float64
        round-off for these smooth integrands)."""
        nodes, weights = np.polynomial.legendre.leggauss(200)
        t = torch.as_tensor(0.5 * (self.T1 - self.T0) * nodes + 0.5 * (self.T1 + self.T0))
        w = torch.as_tensor(weights) / 2
        return (w[:, None] * f(t)).sum(dim=0)

    def mean(self) -> Tensor:
        return self._quadrature(lambda t: self.scale * t[:, None] * torch.stack([t.cos(), t.sin()], dim=1))

    def covariance(self) -> Tensor:
        def outer(t):
            p = self.scale * t[:, None] * torch.stack([t.cos(), t.sin()], dim=1)
            return (p[:, :, None] * p[:, None, :]).flatten(1)

        second = self._quadrature(outer).view(2, 2)
        mu = self.mean()
        return second - mu[:, None] * mu[None, :] + self.noise**2 * torch.eye(2, dtype=torch.float64)


class CategoricalPrior(Prior):
    """One-hot vectors of a uniformly drawn class out of ``classes``."""

    name = "categorical"

    def __init__(self, classes: int):
        self.dim = self.num_components = int(classes)

    def _sample(self, n, generator, component):
        c = self._components(n, generator, component)
        return torch.nn.functional.one_hot(c, self.dim).double(), c

    def mean(self) -> Tensor:
        return torch.full((self.dim,), 1.0 / self.dim, dtype=torch.float64)

    def covariance(self) -> Tensor:
        k = self.dim
        return torch.eye(k, dtype=torch.float64) / k - torch.full((k, k), 1.0 / k**2, dtype=torch.float64)


class FittedGaussian(Prior):
    """N(mean, cov) with a full covariance, fitted to codes by :meth:`fit` (float64: the mean
    and the unbiased sample covariance). Samples are ``mean + L eps`` with L the Cholesky factor
    of ``cov`` (a tiny diagonal jitter is added where ``cov`` is singular, e.g. codes of fewer
    images than dimensions)."""

    name = "fitted"

    def __init__(self, mean: Tensor, cov: Tensor):
        self._mean = torch.as_tensor(mean, dtype=torch.float64).cpu()
        self._cov = torch.as_tensor(cov, dtype=torch.float64).cpu()
        self.dim = int(self._mean.numel())
        self._chol = self._cholesky(self._cov)

    @staticmethod
    def _cholesky(cov: Tensor) -> Tensor:
        jitter = 0.0
        scale = float(cov.diagonal().abs().mean()) or 1.0
        for _ in range(8):
            chol, info = torch.linalg.cholesky_ex(cov + jitter * torch.eye(len(cov), dtype=cov.dtype))
            if int(info) == 0:
                return chol
            jitter = scale * 1e-10 if jitter == 0 else jitter * 100
        raise ValueError("the fitted covariance is not positive semi-definite")

    @classmethod
    def fit(cls, codes: Tensor) -> "FittedGaussian":
        c = torch.as_tensor(codes).detach().double().cpu()
        if c.ndim != 2 or len(c) < 2:
            raise ValueError(f"fitting a Gaussian needs (N >= 2, D) codes, got {tuple(c.shape)}")
        mean = c.mean(dim=0)
        centred = c - mean
        return cls(mean, centred.T @ centred / (len(c) - 1))

    def _sample(self, n, generator, component):
        return self._mean + _normal((n, self.dim), generator) @ self._chol.T, None

    def mean(self) -> Tensor:
        return self._mean.clone()

    def covariance(self) -> Tensor:
        return self._cov.clone()

    def state(self) -> dict:
        return {"mean": self._mean.float(), "cov": self._cov}


def build_prior(name: str, dim: int, settings: dict | None = None) -> Prior:
    """The prior ``name`` for ``dim``-dimensional codes (a one-line error when ``dim`` cannot
    hold it: the 2-D priors with any other size)."""
    name = checks.choice(name, "model.prior.name", PRIORS)
    settings = checks.mapping(settings, f"model.prior.{name}")
    if name in TWO_D and dim != 2:
        raise UserError(f"model.prior.name={name} is a 2-D prior; it needs model.latent_dim=2, got {dim} "
                        "(use model.prior.name=gaussian for other sizes)")
    if name == "gaussian":
        return GaussianPrior(dim)
    keys = {"mixture": ("components", "radius", "radial_std", "tangential_std"), "swiss_roll": ("scale", "noise")}[name]
    unknown = sorted(set(settings) - set(keys))
    if unknown:
        raise UserError(f"unknown setting model.prior.{name}.{unknown[0]}; it takes: {', '.join(keys)}")
    values = {}
    for key, value in settings.items():
        if key == "components":
            values[key] = checks.integer(value, f"model.prior.{name}.{key}", minimum=2)
        else:
            values[key] = checks.number(value, f"model.prior.{name}.{key}", minimum=0)
    return MixturePrior(**values) if name == "mixture" else SwissRollPrior(**values)
