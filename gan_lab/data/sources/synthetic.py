"""Synthetic 2-D Gaussian mixtures of the mode-collapse literature (PacGAN protocol)."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.data import Dataset

from gan_lab.data.datasets import TensorDataset
from gan_lab.data.info import DataInfo
from gan_lab.data.sources.base import Source, _check_count, _check_positive
from gan_lab.errors import UserError


class GaussianMixture2D(Source):
    """A fixed pool of ``n_samples`` points from an equal-weight isotropic Gaussian mixture.

    The pool is drawn with its own generator (``seed``), independent of the training seed, so
    every run sees the same data. The label of a point is the index of its component.
    """

    def __init__(self, name: str, modes: Tensor, std: float, n_samples: int, seed: int) -> None:
        self.name = name
        self.modes = modes.to(torch.float64)
        self.std = _check_positive(std, f"{name}: data.source.std")
        self.n_samples = _check_count(n_samples, f"{name}: data.source.n_samples")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UserError(f"{name}: data.source.seed must be an integer, got {seed!r}")
        self.seed = seed

    def load_split(self, split: str) -> tuple[Dataset, DataInfo]:
        generator = torch.Generator().manual_seed(self.seed)
        labels = torch.randint(len(self.modes), (self.n_samples,), generator=generator)
        noise = torch.randn(self.n_samples, self.modes.shape[1], generator=generator, dtype=torch.float64)
        x = (self.modes[labels] + self.std * noise).to(torch.float32)
        info = DataInfo(
            name=self.name,
            modality="points",
            shape=(self.modes.shape[1],),
            num_classes=len(self.modes),
            extras={"modes": self.modes.to(torch.float32).tolist(), "mode_std": self.std},
        )
        return TensorDataset(x, labels), info


def ring_modes(count: int = 8, radius: float = 1.0) -> Tensor:
    """``count`` points equally spaced on a circle, the first at angle 0 (float64)."""
    angles = torch.arange(count, dtype=torch.float64) * (2 * math.pi / count)
    modes = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    # cos(pi/2) is 6e-17, not 0: snap rounding noise so the means are exactly as specified
    return torch.where(modes.abs() < 1e-12, torch.zeros_like(modes), modes)


def grid_modes(side: int = 5, spacing: float = 2.0) -> Tensor:
    """A ``side`` × ``side`` square grid centred at the origin, row-major (float64)."""
    ticks = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


class Ring8(GaussianMixture2D):
    """8 Gaussians with means equally spaced on the unit circle, std 0.01 (PacGAN)."""

    def __init__(self, n_samples: int = 100_000, seed: int = 0, std: float = 0.01, radius: float = 1.0) -> None:
        radius = _check_positive(radius, "ring8: data.source.radius")
        self.radius = radius
        super().__init__("ring8", ring_modes(8, radius), std, n_samples, seed)


class Grid25(GaussianMixture2D):
    """25 Gaussians with means on {-4, -2, 0, 2, 4}², std 0.05 (PacGAN)."""

    def __init__(self, n_samples: int = 100_000, seed: int = 0, std: float = 0.05) -> None:
        super().__init__("grid25", grid_modes(5, 2.0), std, n_samples, seed)
