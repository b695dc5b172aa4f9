"""Small building blocks shared by the generator and discriminator families."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan_lab.errors import UserError

D_NORMS = ("batch", "layer", "instance", "spectral", "none")


def check_norm(norm: str) -> str:
    if norm not in D_NORMS:
        raise UserError(f"unknown discriminator norm '{norm}'; choose one of: {', '.join(D_NORMS)}")
    return norm


def feature_norm(norm: str, channels: int, conv: bool = True) -> nn.Module:
    """The normalisation layer placed after a hidden layer of D (or G).

    Batch norm couples samples, which breaks the per-sample gradient penalties of WGAN-GP and
    friends; "layer" (GroupNorm with one group for conv features) is the usual stand-in.
    Spectral norm is applied to the weights instead, so no feature layer is added.
    """
    if norm == "batch":
        return nn.BatchNorm2d(channels) if conv else nn.BatchNorm1d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels) if conv else nn.LayerNorm(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True) if conv else nn.Identity()
    return nn.Identity()


def maybe_sn(layer: nn.Module, norm: str) -> nn.Module:
    """Wrap a conv/linear layer in spectral normalisation when ``norm == 'spectral'``."""
    return spectral_norm(layer) if norm == "spectral" else layer


class ProjectionHead(nn.Module):
    """Linear real/fake head plus an optional class-projection term (Miyato & Koyama 2018).

    With ``num_classes == 0`` it is a plain linear layer. With classes it adds <embed(y), h>,
    the projection discriminator used by SNGAN/BigGAN-style conditional models.
    """

    def __init__(self, features: int, num_classes: int = 0, norm: str = "none"):
        super().__init__()
        self.linear = maybe_sn(nn.Linear(features, 1), norm)
        self.embed = maybe_sn(nn.Embedding(num_classes, features), norm) if num_classes else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self.linear(h).squeeze(1)
        if self.embed is not None and y is not None:
            out = out + (self.embed(y) * h).sum(dim=1)
        return out
