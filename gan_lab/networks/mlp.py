"""Fully connected generator and discriminator for 2-D data and flattened images."""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_lab.networks.layers import ProjectionHead, check_norm, feature_norm, maybe_sn


class MLPGenerator(nn.Module):
    """z -> ``depth`` hidden ReLU layers -> a sample of ``out_shape``.

    Images get a tanh output (data lives in [-1, 1]); vectors (2-D mixtures) a linear one.
    """

    def __init__(
        self,
        latent_dim: int,
        out_shape: tuple[int, ...],
        width: int = 256,
        depth: int = 3,
        batch_norm: bool = True,
        tanh: bool = True,
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.out_shape = tuple(out_shape)
        layers: list[nn.Module] = []
        fan_in = latent_dim
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width)]
            if batch_norm:
                layers += [nn.BatchNorm1d(width)]
            layers += [nn.ReLU(inplace=True)]
            fan_in = width
        layers += [nn.Linear(fan_in, math.prod(self.out_shape))]
        if tanh:
            layers += [nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """Flattened input -> ``depth`` hidden LeakyReLU layers -> one logit per sample, times ``gain``.

    ``gain`` (default 1) sets the steepest slope a spectrally normalised D can have (each layer
    is at most 1-Lipschitz, so the whole D is at most ``gain``-Lipschitz).
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        width: int = 256,
        depth: int = 3,
        norm: str = "none",
        num_classes: int = 0,
        gain: float = 1.0,
    ):
        super().__init__()
        check_norm(norm)
        self.gain = float(gain)
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(in_shape)
        for i in range(depth):
            layers += [maybe_sn(nn.Linear(fan_in, width), norm)]
            if i > 0:  # as in DCGAN, no normalisation right at the input
                layers += [feature_norm(norm, width, conv=False)]
            layers += [nn.LeakyReLU(0.2, inplace=True)]
            fan_in = width
        self.features = nn.Sequential(*layers)
        self.head = ProjectionHead(fan_in, num_classes, norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self.head(self.features(x), y)
        return out if self.gain == 1.0 else out * self.gain
