"""Encoders, decoders and code discriminators of the models with codes (AAE, GLO, GON).

They reuse the lab's GAN networks: the image encoder is the DCGAN discriminator's convolutional
trunk with a linear layer to the code, the image decoder is the DCGAN generator, and for points
and flattened images both are the MLPs. A code discriminator is a fully connected net on codes
(the AAE paper's two hidden layers). :func:`build_coder` makes an encoder or a decoder for a
data set, checking that the architecture takes its shape (one line otherwise).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gan_lab.errors import UserError

ARCHS = ("auto", "dcgan", "mlp")


class ConvEncoder(nn.Module):
    """Image -> DCGAN discriminator trunk (strided convolutions, LeakyReLU, ``norm``) -> linear
    to ``out_dim`` values."""

    def __init__(self, in_channels: int, image_size: int, out_dim: int, width: int = 64, norm: str = "batch"):
        super().__init__()
        from gan_lab.networks.dcgan import DCGANDiscriminator

        self.features = DCGANDiscriminator(in_channels, image_size, width, norm).features
        with torch.no_grad():
            flat = self.features(torch.zeros(2, in_channels, image_size, image_size)).shape[1]
        self.head = nn.Linear(flat, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MLPEncoder(nn.Module):
    """Flattened input -> ``depth`` hidden ReLU layers of ``width`` -> ``out_dim`` values."""

    def __init__(self, in_shape: tuple[int, ...], out_dim: int, width: int = 256, depth: int = 2,
                 batch_norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(in_shape)
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width)] + ([nn.BatchNorm1d(width)] if batch_norm else []) + [nn.ReLU()]
            fan_in = width
        layers.append(nn.Linear(fan_in, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class CodeDiscriminator(nn.Module):
    """Codes ``(B, dim)`` (with a one-hot label beside them when ``num_classes`` > 0) ->
    ``depth`` hidden ReLU layers -> one logit."""

    def __init__(self, dim: int, width: int = 256, depth: int = 2, num_classes: int = 0):
        super().__init__()
        self.num_classes = int(num_classes)
        layers: list[nn.Module] = []
        fan_in = dim + self.num_classes
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), nn.ReLU()]
            fan_in = width
        layers.append(nn.Linear(fan_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.num_classes:
            z = torch.cat([z, nn.functional.one_hot(y.long(), self.num_classes).to(z)], dim=1)
        return self.net(z).squeeze(1)


class Decoder(nn.Module):
    """A generator network on codes: ``decoder(z)``; takes the lab's generators' ``(z, y)`` form."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z, None)


def resolve_arch(arch: str, info) -> str:
    if arch not in ARCHS:
        raise UserError(f"model.net.arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if info.modality == "tokens":
        raise UserError(f"the models with codes take images or points; data {info.name} is token data")
    if arch == "auto":
        return "dcgan" if info.modality == "image" else "mlp"
    if arch == "dcgan" and info.modality != "image":
        raise UserError(f"model.net.arch=dcgan needs images, but data {info.name} is {info.modality} data; "
                        "use model.net.arch=mlp")
    return arch


def build_coder(role: str, arch: str, info, code_dim: int, settings: dict) -> nn.Module:
    """An ``encoder`` (data -> ``code_dim`` values) or a ``decoder`` (``code_dim`` values -> data)
    of architecture ``arch`` (already resolved) with its ``model.net.<arch>`` settings:
    dcgan ``{width, norm, batch_norm}``, mlp ``{width, depth, batch_norm}``."""
    from gan_lab import checks

    shape = tuple(info.shape)
    key = f"model.net.{arch}"
    allowed = {"dcgan": ("width", "norm", "batch_norm"), "mlp": ("width", "depth", "batch_norm")}[arch]
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise UserError(f"unknown setting {key}.{unknown[0]}; it takes: {', '.join(allowed)}")
    width = checks.integer(settings.get("width", 64 if arch == "dcgan" else 256), f"{key}.width", minimum=1)
    batch_norm = checks.boolean(settings.get("batch_norm", True), f"{key}.batch_norm")
    if arch == "dcgan":
        from gan_lab.networks import _check_image, dcgan
        from gan_lab.networks.dcgan import DCGANGenerator

        channels, size = _check_image("dcgan", info, dcgan.SUPPORTED_SIZES)
        if role == "encoder":
            return ConvEncoder(channels, size, code_dim, width, settings.get("norm", "batch"))
        return Decoder(DCGANGenerator(code_dim, channels, size, width, batch_norm=batch_norm))
    from gan_lab.networks.mlp import MLPGenerator

    depth = checks.integer(settings.get("depth", 2), f"{key}.depth", minimum=0)
    if role == "encoder":
        return MLPEncoder(shape, code_dim, width, depth, batch_norm)
    return Decoder(MLPGenerator(code_dim, shape, width, depth, batch_norm, tanh=info.modality == "image"))
