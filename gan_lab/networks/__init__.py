"""Generator and discriminator networks: plain ``nn.Module``s that know nothing of Lightning.

:func:`build_networks` picks the architecture family for a data set and checks, before any
training, that the family can take the data's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from gan_lab.errors import UserError
from gan_lab.networks import dcgan, resnet
from gan_lab.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_lab.networks.mlp import MLPDiscriminator, MLPGenerator
from gan_lab.networks.resnet import ResNetDiscriminator, ResNetGenerator

ARCHS = ("auto", "mlp", "dcgan", "resnet")


@dataclass
class NetConfig:
    """The network part of a model config (``model.net`` in YAML)."""

    arch: str = "auto"  # auto: mlp for vectors, dcgan for images
    g_width: int = 64  # conv channels of G's last hidden layer (dcgan/resnet)
    d_width: int = 64  # conv channels of D's first layer (dcgan/resnet)
    mlp_width: int = 256  # hidden units of both MLPs
    g_depth: int = 3  # MLP only
    d_depth: int = 3  # MLP only
    d_norm: str = "batch"
    g_batch_norm: bool = True  # MLP only


def resolve_arch(arch: str, kind: str) -> str:
    if arch not in ARCHS:
        raise UserError(f"unknown network arch '{arch}'; choose one of: {', '.join(ARCHS)}")
    if arch == "auto":
        return "mlp" if kind == "vector" else "dcgan"
    return arch


def build_networks(
    net: NetConfig,
    latent_dim: int,
    data_shape: tuple[int, ...],
    kind: str,
    data_name: str = "data",
    num_classes: int = 0,
    pack: int = 1,
) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) for data of ``data_shape``.

    ``pack`` > 1 builds a PacGAN discriminator: it sees ``pack`` samples at once, concatenated
    along channels (images) or features (vectors). ``num_classes`` > 0 gives D a projection
    head; class-conditional generators are built by the conditional model families.
    """
    arch = resolve_arch(net.arch, kind)
    if arch != "mlp" and kind != "image":
        raise UserError(
            f"model.net.arch={arch} needs images, but data {data_name} is {kind} data of shape "
            f"{tuple(data_shape)}; use model.net.arch=mlp"
        )
    if arch == "mlp":
        packed = (data_shape[0] * pack, *data_shape[1:])
        g = MLPGenerator(
            latent_dim, data_shape, net.mlp_width, net.g_depth, net.g_batch_norm, tanh=kind == "image"
        )
        d = MLPDiscriminator(packed, net.mlp_width, net.d_depth, net.d_norm, num_classes)
        return g, d

    channels, height, width = data_shape
    sizes = dcgan.SUPPORTED_SIZES if arch == "dcgan" else resnet.SUPPORTED_SIZES
    if height != width or height not in sizes:
        raise UserError(
            f"the {arch} networks take {' or '.join(map(str, sizes))} px square images, but data "
            f"{data_name} gives {height}x{width}; set data.source.image_size to one of those "
            f"or use model.net.arch=mlp"
        )
    if arch == "dcgan":
        g = DCGANGenerator(latent_dim, channels, height, net.g_width)
        d = DCGANDiscriminator(channels * pack, height, net.d_width, net.d_norm, num_classes)
    else:
        if net.d_norm not in ("spectral", "none"):
            raise UserError(
                f"the resnet discriminator takes model.net.d_norm=spectral or none, not {net.d_norm}"
            )
        g = ResNetGenerator(latent_dim, channels, height, net.g_width)
        d = ResNetDiscriminator(channels * pack, height, net.d_width, net.d_norm, num_classes)
    return g, d


__all__ = [
    "NetConfig",
    "build_networks",
    "MLPGenerator",
    "MLPDiscriminator",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "ResNetGenerator",
    "ResNetDiscriminator",
]
