"""Generator and discriminator networks: plain ``nn.Module``s that know nothing of Lightning.

One builder per architecture turns a data set's :class:`~gan_lab.data.DataInfo` and the
architecture's own settings into a ``(G, D)`` pair, after checking that the architecture can take
the data's shape (a one-line :class:`~gan_lab.errors.UserError` otherwise, before any training).
Model configs hold one nested, instantiated entry per architecture (``model.net.<arch>``) and
``model.net.arch`` picks one; ``auto`` picks the data modality's default
(:mod:`gan_lab.modalities`: an MLP for points, DCGAN for images).
"""

from __future__ import annotations

from torch import nn

from gan_lab.errors import UserError
from gan_lab.networks import dcgan, resnet
from gan_lab.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_lab.networks.mlp import MLPDiscriminator, MLPGenerator
from gan_lab.networks.resnet import ResNetDiscriminator, ResNetGenerator


def _check_image(arch: str, info, sizes: tuple[int, ...]) -> tuple[int, int]:
    if info.modality != "image":
        raise UserError(
            f"model.net.arch={arch} needs images, but data {info.name} is {info.modality} data of shape "
            f"{tuple(info.shape)}; use model.net.arch=mlp"
        )
    channels, height, width = info.shape
    if height != width or height not in sizes:
        raise UserError(
            f"the {arch} networks take {', '.join(map(str, sizes))} px square images, but data "
            f"{info.name} gives {height}x{width}; set data.source.image_size to one of those "
            f"or use model.net.arch=mlp"
        )
    return channels, height


def mlp_pair(info, latent_dim: int, *, width: int = 256, g_depth: int = 3, d_depth: int = 3,
             g_batch_norm: bool = True, d_norm: str = "batch", d_gain: float = 1.0, pack: int = 1,
             num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """Fully connected G and D for points or flattened images. ``pack`` > 1 builds a PacGAN
    discriminator that sees ``pack`` samples concatenated; ``num_classes`` > 0 a projection head;
    ``d_gain`` multiplies D's output (with spectral norm: D's largest possible slope)."""
    if info.modality == "tokens":
        raise UserError(f"model.net.arch=mlp cannot take token data ({info.name}); use a text model")
    shape = tuple(info.shape)
    packed = (shape[0] * pack, *shape[1:])
    g = MLPGenerator(latent_dim, shape, width, g_depth, g_batch_norm, tanh=info.modality == "image")
    if not d_gain > 0:
        raise UserError(f"model.net.mlp.d_gain must be positive, not {d_gain}")
    d = MLPDiscriminator(packed, width, d_depth, d_norm, num_classes, gain=d_gain)
    return g, d


def dcgan_pair(info, latent_dim: int, *, g_width: int = 64, d_width: int = 64, d_norm: str = "batch",
               pack: int = 1, num_classes: int = 0, extra_layers: int = 0,
               d_extra_layers: int | None = None) -> tuple[nn.Module, nn.Module]:
    """DCGAN's all-convolutional G and D for square images of base·2^k px (8, 14, 16, 28, 32, 56, 64, ...);
    ``extra_layers`` 3×3 stride-1 convolutions at each hidden resolution of G, and of D unless
    ``d_extra_layers`` gives D its own count."""
    channels, size = _check_image("dcgan", info, dcgan.SUPPORTED_SIZES)
    if d_extra_layers is None:
        d_extra_layers = extra_layers
    for key, value in (("extra_layers", extra_layers), ("d_extra_layers", d_extra_layers)):
        if value < 0:
            raise UserError(f"model.net.dcgan.{key} must be 0 or more, not {value}")
    g = DCGANGenerator(latent_dim, channels, size, g_width, extra_layers=extra_layers)
    d = DCGANDiscriminator(channels * pack, size, d_width, d_norm, num_classes, extra_layers=d_extra_layers)
    return g, d


def resnet_pair(info, latent_dim: int, *, g_width: int = 128, d_width: int = 128, d_norm: str = "spectral",
                pack: int = 1, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """SNGAN's ResNet G and D for 32 px images."""
    channels, size = _check_image("resnet", info, resnet.SUPPORTED_SIZES)
    if d_norm not in ("spectral", "none"):
        raise UserError(f"the resnet discriminator takes model.net.d_norm=spectral or none, not {d_norm}")
    g = ResNetGenerator(latent_dim, channels, size, g_width)
    d = ResNetDiscriminator(channels * pack, size, d_width, d_norm, num_classes)
    return g, d


def select_arch(arch: str, info, builders: dict) -> str:
    """The architecture to build: ``arch``, or for ``auto`` the modality's default."""
    if arch == "auto":
        from gan_lab.modalities import get_modality

        arch = get_modality(info).default_arch
        if arch not in builders:
            raise UserError(f"no network for {info.modality} data ({info.name}) among {', '.join(builders)}; "
                            f"this model cannot train on it")
    if arch not in builders:
        raise UserError(f"unknown network arch '{arch}'; choose one of: auto, {', '.join(builders)}")
    return arch


__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "dcgan_pair",
    "mlp_pair",
    "resnet_pair",
    "select_arch",
]
