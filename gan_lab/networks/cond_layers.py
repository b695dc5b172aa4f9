"""Building blocks of the class-conditional networks (CGAN, ACGAN, the projection cGAN, BigGAN).

* :func:`image_size_plan`: which square image sizes the conv/residual nets take (those of the
  lab's DCGAN nets, ``base * 2**k`` with ``base`` 4 or 7: 8, 14, 16, 28, 32, 56, 64, 128, ...);
* :func:`make_layer`: initialise a conv/linear/embedding layer, then (optionally) wrap it in
  spectral normalisation, so the power iteration starts from the initialised weight;
* conditional batch norm in its two forms: :class:`CategoricalConditionalBatchNorm2d` (one gain
  and bias per class, Miyato & Koyama 2018) and :class:`ConditionalBatchNorm2d` (gains and biases
  projected linearly from a conditioning vector, BigGAN);
* the residual up/down blocks of SNGAN/BigGAN and the SAGAN self-attention block.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gan_lab.errors import UserError

INITS = ("ortho", "N02", "xavier", "default")


def image_size_plan(shape: tuple[int, ...], what: str) -> tuple[int, int, int]:
    """``(channels, base, k)`` for an image shape ``(C, S, S)`` with ``S = base * 2**k``.

    The sizes are those of the lab's DCGAN networks (:func:`gan_lab.networks.dcgan.size_plan`):
    ``base`` 4 (8, 16, 32, 64, 128, 256 px) or 7 (14, 28, 56, 112, ... px) and ``k`` the number
    of 2x up/down-sampling steps between the ``base x base`` map and the image. Anything else is
    a :class:`UserError` that names ``what`` (the network) and the sizes it takes.
    """
    from gan_lab.networks.dcgan import SUPPORTED_SIZES, size_plan

    if len(shape) != 3:
        raise UserError(f"{what} needs images (C, H, W), got data of shape {tuple(shape)}; use an MLP network")
    channels, height, width = (int(s) for s in shape)
    plan = size_plan(height) if height == width else None
    if plan is None:
        raise UserError(
            f"{what} takes square images of {', '.join(map(str, SUPPORTED_SIZES))} px, "
            f"got {height}x{width}; set data.source.image_size to one of those"
        )
    return channels, plan[0], plan[1]


def check_init(init: str) -> str:
    if init not in INITS:
        raise UserError(f"unknown weight init '{init}'; choose one of: {', '.join(INITS)}")
    return init


def init_weight(weight: Tensor, init: str) -> None:
    """BigGAN's weight initialisations: orthogonal, N(0, 0.02), Xavier-uniform or PyTorch's default."""
    with torch.no_grad():
        if init == "ortho":
            nn.init.orthogonal_(weight)
        elif init == "N02":
            nn.init.normal_(weight, 0.0, 0.02)
        elif init == "xavier":
            nn.init.xavier_uniform_(weight)


def make_layer(layer: nn.Module, spectral: bool, init: str = "default") -> nn.Module:
    """Initialise ``layer.weight`` with ``init``, then wrap the layer in spectral norm if asked."""
    init_weight(layer.weight, check_init(init))
    return spectral_norm(layer) if spectral else layer


def raw_weight(layer: nn.Module) -> Tensor:
    """The trainable weight of ``layer`` (the pre-normalisation weight under spectral norm)."""
    parametrizations = getattr(layer, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        return parametrizations.weight.original
    return layer.weight


def require_labels(y: Tensor | None, who: str) -> Tensor:
    if y is None:
        raise ValueError(f"{who} is class-conditional and needs labels y")
    return y


# ---------------------------------------------------------------------------------------------
# Conditional batch norm
# ---------------------------------------------------------------------------------------------


class CategoricalConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine part, followed by a per-class gain and bias.

    ``out = BN(x) * gamma[y] + beta[y]``, gains initialised to 1 and biases to 0 (the conditional
    BN of the projection-discriminator paper's generator).
    """

    def __init__(self, channels: int, num_classes: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


class ConditionalBatchNorm2d(nn.Module):
    """BigGAN's conditional batch norm: gains ``1 + W_g c`` and biases ``W_b c`` from a vector ``c``.

    ``c`` is the shared class embedding concatenated with this block's latent chunk; ``W_g`` and
    ``W_b`` are bias-free linear maps (spectrally normalised in BigGAN's G).
    """

    def __init__(self, channels: int, cond_dim: int, spectral: bool, init: str = "ortho",
                 eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)
        self.gain = make_layer(nn.Linear(cond_dim, channels, bias=False), spectral, init)
        self.bias = make_layer(nn.Linear(cond_dim, channels, bias=False), spectral, init)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        gain = 1.0 + self.gain(c)
        return self.bn(x) * gain[:, :, None, None] + self.bias(c)[:, :, None, None]


# ---------------------------------------------------------------------------------------------
# Residual blocks and self-attention
# ---------------------------------------------------------------------------------------------

ConvFactory = Callable[[int, int, int], nn.Module]  # (in_channels, out_channels, kernel) -> conv


def conv_factory(spectral: bool, init: str) -> ConvFactory:
    """Convolutions with 'same' padding, initialised with ``init``, spectrally normalised if asked."""

    def make(cin: int, cout: int, kernel: int) -> nn.Module:
        return make_layer(nn.Conv2d(cin, cout, kernel, 1, kernel // 2), spectral, init)

    return make


class ResUpBlock(nn.Module):
    """G's residual block: CBN, ReLU, 2x nearest upsample, 3x3 conv, CBN, ReLU, 3x3 conv;
    shortcut: upsample then 1x1 conv. ``bn1``/``bn2`` take ``(x, condition)``."""

    def __init__(self, in_ch: int, out_ch: int, bn1: nn.Module, bn2: nn.Module, conv: ConvFactory):
        super().__init__()
        self.bn1, self.bn2 = bn1, bn2
        self.conv1 = conv(in_ch, out_ch, 3)
        self.conv2 = conv(out_ch, out_ch, 3)
        self.shortcut = conv(in_ch, out_ch, 1)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResDownBlock(nn.Module):
    """D's residual block (SNGAN/BigGAN): [ReLU], 3x3 conv, ReLU, 3x3 conv, [2x2 average pool].

    The first block sees pixels: no activation before its first conv, and its shortcut pools
    before the 1x1 conv; later blocks pre-activate and convolve before pooling. The shortcut is
    a learned 1x1 conv whenever the channel count changes or the block downsamples.
    """

    def __init__(self, in_ch: int, out_ch: int, down: bool, first: bool, conv: ConvFactory):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = conv(in_ch, out_ch, 3)
        self.conv2 = conv(out_ch, out_ch, 3)
        self.shortcut = conv(in_ch, out_ch, 1) if (in_ch != out_ch or down) else None

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.shortcut is not None:
            if self.first:
                s = self.shortcut(F.avg_pool2d(s, 2) if self.down else s)
            else:
                s = self.shortcut(s)
                s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class SelfAttention2d(nn.Module):
    """SAGAN's self-attention block as BigGAN uses it.

    Queries ``theta`` (C/8 channels), keys ``phi`` (C/8) and values ``g`` (C/2) are 1x1 convs;
    keys and values are 2x2 max-pooled (a quarter of the positions). Attention weights are a
    softmax over key positions; the attended values go through a 1x1 conv ``o`` back to C channels
    and are added to the input scaled by a learned ``gamma`` that starts at 0, so the block starts
    as the identity. Needs an even spatial size.
    """

    def __init__(self, channels: int, conv: ConvFactory):
        super().__init__()
        self.ck = max(1, channels // 8)
        self.cv = max(1, channels // 2)
        self.theta = conv(channels, self.ck, 1)
        self.phi = conv(channels, self.ck, 1)
        self.g = conv(channels, self.cv, 1)
        self.o = conv(self.cv, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        theta = self.theta(x).view(b, self.ck, h * w)
        phi = F.max_pool2d(self.phi(x), 2).view(b, self.ck, -1)
        g = F.max_pool2d(self.g(x), 2).view(b, self.cv, -1)
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (B, HW, HW/4)
        o = (g @ attn.transpose(1, 2)).view(b, self.cv, h, w)
        return x + self.gamma * self.o(o)


def check_attention_resolution(resolution: int | None, available: list[int], what: str) -> int | None:
    """``None``/0 means no attention; otherwise one of the even resolutions the net passes through."""
    if resolution in (None, 0):
        return None
    choices = sorted({r for r in available if r % 2 == 0})
    if resolution not in choices:
        raise UserError(
            f"{what}: attention resolution {resolution} is not one this network passes through; "
            f"choose one of: {', '.join(map(str, choices)) or 'none'} (or 0 for none)"
        )
    return int(resolution)
