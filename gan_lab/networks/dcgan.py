"""DCGAN (Radford et al. 2016) generator and discriminator for square images of base·2^k px.

All-convolutional: strided transposed convolutions upsample in G, strided convolutions
downsample in D, no pooling and no fully connected hidden layers. BatchNorm everywhere except
G's output and D's input; ReLU in G with a tanh output, LeakyReLU(0.2) in D.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.networks.layers import ProjectionHead, check_norm, feature_norm, maybe_sn

# G starts from a base x base map and doubles it k times; D halves it k times. Base 4 gives
# 8, 16, 32, 64, 128, 256 px; base 7 gives 14, 28 (MNIST starts from 7x7), 56, 112 px.
BASES = (4, 7)
MAX_DOUBLINGS = 6


def size_plan(image_size: int) -> tuple[int, int] | None:
    """(base, doublings) for an image size the networks take, else None."""
    for base in BASES:
        for k in range(1, MAX_DOUBLINGS + 1):
            if base * 2**k == image_size:
                return base, k
    return None


SUPPORTED_SIZES = tuple(sorted(b * 2**k for b in BASES for k in range(1, MAX_DOUBLINGS + 1)))


def _num_upsamples(image_size: int) -> int:
    plan = size_plan(image_size)
    if plan is None:
        raise ValueError(f"DCGAN networks take {SUPPORTED_SIZES} px, not {image_size}")
    return plan[1]


class DCGANGenerator(nn.Module):
    """``batch_norm=False`` drops the batch norms (and gives the convolutions biases): a sample
    then depends on its own latent only, which Gradient Origin Networks need (their latent is a
    gradient through the network, which batch statistics would couple across the batch).
    ``extra_layers`` adds that many 3×3 stride-1 convolutions (with norm and ReLU) at each hidden
    resolution: depth without more resolution steps (DCGAN's reference code has such extra
    layers; SNGAN's 'standard CNN' D pairs every strided convolution with a 3×3 one)."""

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, width: int = 64,
                 batch_norm: bool = True, extra_layers: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        n_up = _num_upsamples(image_size)
        base = size_plan(image_size)[0]
        ch = width * 2 ** (n_up - 1)

        def norm(channels: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(channels)] if batch_norm else []

        def same_size(channels: int) -> list[nn.Module]:
            block: list[nn.Module] = []
            for _ in range(extra_layers):
                block += [nn.Conv2d(channels, channels, 3, 1, 1, bias=not batch_norm), *norm(channels),
                          nn.ReLU(inplace=True)]
            return block

        layers: list[nn.Module] = [
            # projection of z (seen as a 1x1 map) to the first base x base feature map
            nn.ConvTranspose2d(latent_dim, ch, base, 1, 0, bias=not batch_norm),
            *norm(ch),
            nn.ReLU(inplace=True),
            *same_size(ch),
        ]
        for _ in range(n_up - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=not batch_norm),
                *norm(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
            layers += same_size(ch)
        layers += [nn.ConvTranspose2d(ch, out_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(
        self,
        in_channels: int,
        image_size: int,
        width: int = 64,
        norm: str = "batch",
        num_classes: int = 0,
        extra_layers: int = 0,
    ):
        super().__init__()
        check_norm(norm)
        n_down = _num_upsamples(image_size)
        base = size_plan(image_size)[0]
        bias = norm not in ("batch", "layer", "instance")

        def same_size(channels: int) -> list[nn.Module]:
            # extra_layers 3x3 stride-1 convolutions after each strided one (see DCGANGenerator)
            block: list[nn.Module] = []
            for _ in range(extra_layers):
                block += [maybe_sn(nn.Conv2d(channels, channels, 3, 1, 1, bias=bias), norm),
                          feature_norm(norm, channels), nn.LeakyReLU(0.2, inplace=True)]
            return block

        layers: list[nn.Module] = [
            maybe_sn(nn.Conv2d(in_channels, width, 4, 2, 1), norm),
            nn.LeakyReLU(0.2, inplace=True),
            *same_size(width),
        ]
        ch = width
        for _ in range(n_down - 1):
            layers += [
                maybe_sn(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=bias), norm),
                feature_norm(norm, ch * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            ch *= 2
            layers += same_size(ch)
        self.features = nn.Sequential(*layers, nn.Flatten())
        # The final base x base convolution of DCGAN, written as a linear layer over the
        # flattened map so a class projection can share it.
        self.head = ProjectionHead(ch * base * base, num_classes, norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x), y)
