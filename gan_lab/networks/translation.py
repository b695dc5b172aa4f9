"""Image-to-image translation networks: Pix2Pix's U-Net and PatchGAN, CycleGAN's ResNet generator.

Plain ``nn.Module``s; they know nothing of Lightning. Images are ``(B, C, H, W)`` in ``[-1, 1]``.

U-Net generator (Isola et al. 2017)
-----------------------------------
An encoder of ``depth`` stride-2 4x4 convolutions and a mirrored decoder of stride-2 4x4
transposed convolutions; the decoder layer at every level takes the previous decoder output
concatenated with the encoder output of the same level (the skip connections). Widths:
level ``i`` (0 = next to the image) has ``width * 2 ** min(i, 3)`` channels (64, 128, 256, 512,
512, ... for ``width=64``). Encoder: the first layer has no normalisation, the innermost has none
either (at 256 px it works on 1x1 maps); LeakyReLU(0.2) before every encoder conv but the first.
Decoder: ReLU before every transposed conv, normalisation after each but the last, ``tanh`` out.

**Depth rule.** ``depth`` defaults to ``ceil(log2(min(H, W)))``, the number of halvings that
takes a power-of-two image to a 1x1 bottleneck: 8 at 256 px (the paper's ``unet_256``), 7 at 128,
6 at 64, 5 at 32. A side that is not a multiple of ``2 ** depth`` is padded up to the next
multiple before the network (replicate padding, split evenly, the odd pixel at the right/bottom)
and the output is cropped back to the input size: a 28 px image is padded to 32, runs through
the 5-level 32 px network, and the centre 28x28 of the output is returned (so the bottleneck is
1x1 there too). A smaller explicit ``depth`` is allowed (a larger bottleneck).

**Noise.** As in the paper, the only noise source is dropout (p=0.5) in the decoder: after the
normalisation of the ``min(3, depth - 2)`` decoder layers just above the innermost one (at
256 px: the three 512-channel layers above the bottleneck, where the original code puts them;
at 32 px: levels 1-3). Dropout follows ``self.training`` unless ``forward(x, dropout=True)`` keeps
it on at evaluation (the paper's test-time behaviour); ``forward(x, generator=g)`` draws the
masks from ``g`` instead of the global RNG, which makes a translation reproducible.

PatchGAN discriminator
----------------------
``n_layers`` stride-2 4x4 convs (widths ``width * min(2 ** i, 8)``), then a stride-1 4x4 conv and a
stride-1 4x4 conv to one channel; padding 1 throughout, LeakyReLU(0.2), normalisation after every
conv but the first and the last. It returns the map of patch logits ``(B, 1, h, w)``: the lab's
adversarial losses (:mod:`gan_lab.losses`) average over every element, so passing the maps gives
the original's mean over patches. With ``cond_channels > 0`` it judges the pair
``cat([condition, image], dim=1)`` (Pix2Pix: input first, output second, as the original);
with ``cond_channels = 0`` a single image (CycleGAN, and the unconditional-D ablation).

Receptive field of one output logit (:func:`patch_receptive_field`): 16, 34, 70, 142, 286 px for
``n_layers`` 1..5 (70x70 for the default 3, the paper's PatchGAN; 286 at 5 is the paper's
"ImageGAN" at 256 px). :func:`patch_layers_for_size` picks the ``n_layers`` whose field is
closest to the paper's ratio 70/256 of the image side: 3 at 256 px, 2 at 128, 1 at 64 and below
(16x16 patches on 28/32 px digits, about half the digit).

ResNet generator (CycleGAN, Zhu et al. 2017, after Johnson et al.)
------------------------------------------------------------------
reflection pad 3, 7x7 conv (``width``), two stride-2 3x3 convs (2x, 4x ``width``), ``n_blocks``
residual blocks (reflection pad 1, 3x3 conv, norm, ReLU, [dropout], reflection pad 1, 3x3 conv,
norm; ``x + block(x)``), two stride-2 3x3 transposed convs (``output_padding=1``), reflection pad 3,
7x7 conv, ``tanh``. **Block rule**: 9 blocks from 256 px up (``resnet_9blocks``), 6 below
(``resnet_6blocks``, the original's choice for 128 px); small images (28/32 px) therefore use 6,
working on 7x7 / 8x8 maps. Sides must be multiples of 4 (two exact halvings and doublings) and
at least 8 (reflection padding needs 2x2 maps).

Normalisation (``norm``): ``batch`` (``BatchNorm2d``, affine), ``instance`` (``InstanceNorm2d``
without affine parameters or running statistics, as the original), ``none``; the PatchGAN also
takes ``spectral`` (spectral norm on its convs, no feature norm). Convs followed by batch norm
have no bias (as in the original, every U-Net encoder conv does without one under batch norm,
the first and innermost included). Weights start as in the original code (:func:`init_translation_weights`: conv
weights N(0, 0.02), batch-norm scales N(1, 0.02), biases 0), drawn from the global RNG at
construction like any ``nn.Module`` initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gan_lab.errors import UserError

G_NORMS = ("batch", "instance", "none")
D_NORMS = ("batch", "instance", "none", "spectral")
DROPOUT_P = 0.5
PAPER_PATCH_RATIO = 70 / 256


# ------------------------------------------------------------------------------------------------
# shared helpers
# ------------------------------------------------------------------------------------------------
def _check_int(value: object, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{what} must be an integer >= {low}, got {value!r}")
    return value


def _check_norm(norm: object, what: str, allowed: tuple[str, ...]) -> str:
    if norm not in allowed:
        raise UserError(f"{what} must be one of {', '.join(allowed)}, got {norm!r}")
    return str(norm)


def _size_pair(image_size: object, what: str) -> tuple[int, int]:
    if isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        h, w = image_size
    else:
        h = w = image_size
    for side in (h, w):
        if isinstance(side, bool) or not isinstance(side, int) or side < 1:
            raise UserError(f"{what} must be a positive integer or an (H, W) pair, got {image_size!r}")
    return int(h), int(w)


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The feature normalisation of the translation nets (see the module docstring)."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def init_translation_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """The original code's ``init_type=normal``: conv/linear weights N(0, std), biases 0,
    batch-norm scales N(1, std) and shifts 0. Uses the global RNG."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


# ------------------------------------------------------------------------------------------------
# U-Net generator
# ------------------------------------------------------------------------------------------------
def unet_depth(image_size: int | Sequence[int]) -> int:
    """Default U-Net depth: ``ceil(log2(min(H, W)))`` (1x1 bottleneck after padding)."""
    h, w = _size_pair(image_size, "unet image_size")
    return max(1, math.ceil(math.log2(min(h, w))))


def unet_padded_size(image_size: int | Sequence[int], depth: int | None = None) -> tuple[int, int]:
    """The ``(H, W)`` the U-Net actually runs at: each side rounded up to a multiple of
    ``2 ** depth`` (28 -> 32 at the default depth 5)."""
    h, w = _size_pair(image_size, "unet image_size")
    depth = unet_depth((h, w)) if depth is None else depth
    step = 2**depth
    return -(-h // step) * step, -(-w // step) * step


def unet_dropout_levels(depth: int) -> tuple[int, ...]:
    """Levels (0 = outermost) whose decoder layer ends in dropout: the ``min(3, depth - 2)``
    levels right above the innermost one."""
    count = max(0, min(3, depth - 2))
    return tuple(range(depth - 1 - count, depth - 1))


class _Dropout(nn.Module):
    """Dropout whose masks can come from a given ``torch.Generator`` (see :class:`UNetGenerator`)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.active: bool = False
        self.generator: torch.Generator | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.active or self.p == 0:
            return x
        if self.generator is None:
            return F.dropout(x, self.p, training=True)
        g = self.generator
        keep = torch.rand(x.shape, generator=g, device=g.device, dtype=torch.float32) >= self.p
        return x * keep.to(device=x.device, dtype=x.dtype) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class UNetGenerator(nn.Module):
    """Pix2Pix's U-Net: ``G(x) -> y`` with skip connections and decoder dropout as the noise.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        image_size: the image side (int) or ``(H, W)``; fixes the default depth and the padding.
        width: channels of the outermost level (``ngf``, 64 in the paper).
        norm: ``batch`` (paper) or ``instance`` or ``none``.
        dropout: ``True`` for the paper's decoder dropout (p = 0.5); ``False`` for none.
        depth: number of downsamplings; default from the image size (module docstring).
    """

    def __init__(self, in_channels: int, out_channels: int, image_size: int | Sequence[int], width: int = 64,
                 norm: str = "batch", dropout: bool = True, depth: int | None = None) -> None:
        super().__init__()
        self.in_channels = _check_int(in_channels, "unet in_channels", 1)
        self.out_channels = _check_int(out_channels, "unet out_channels", 1)
        self.image_size = _size_pair(image_size, "unet image_size")
        if min(self.image_size) < 2:
            raise UserError(f"the unet generator needs images of at least 2x2 px, got {self.image_size}")
        self.width = _check_int(width, "unet width", 1)
        self.norm = _check_norm(norm, "unet norm", G_NORMS)
        if not isinstance(dropout, bool):
            raise UserError(f"unet dropout must be true or false, got {dropout!r}")
        max_depth = unet_depth(self.image_size)
        if depth is None:
            depth = max_depth
        elif isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= max_depth:
            raise UserError(
                f"unet depth must be an integer from 1 to {max_depth} for {self.image_size[0]}x{self.image_size[1]} "
                f"px images (the bottleneck cannot be smaller than 1x1), got {depth!r}"
            )
        self.depth = depth
        self.padded_size = unet_padded_size(self.image_size, depth)
        self.dropout_levels = unet_dropout_levels(depth) if dropout else ()
        bias = self.norm != "batch"
        ch = [self.width * 2 ** min(i, 3) for i in range(depth)]

        self.down = nn.ModuleList()
        for i in range(depth):
            cin = self.in_channels if i == 0 else ch[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(cin, ch[i], 4, 2, 1, bias=bias))
            if 0 < i < depth - 1:
                layers.append(norm_layer(self.norm, ch[i]))
            self.down.append(nn.Sequential(*layers))

        self.up = nn.ModuleList()
        for i in range(depth):
            cin = ch[i] if i == depth - 1 else 2 * ch[i]
            if i == 0:
                layers = [nn.ReLU(), nn.ConvTranspose2d(cin, self.out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers = [nn.ReLU(), nn.ConvTranspose2d(cin, ch[i - 1], 4, 2, 1, bias=bias),
                          norm_layer(self.norm, ch[i - 1])]
                if i in self.dropout_levels:
                    layers.append(_Dropout(DROPOUT_P))
            self.up.append(nn.Sequential(*layers))
        init_translation_weights(self)

    def _pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        step = 2**self.depth
        ph, pw = -h % step, -w % step
        return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2

    def forward(self, x: Tensor, generator: torch.Generator | None = None, dropout: bool | None = None) -> Tensor:
        """Translate ``x`` ``(B, in_channels, H, W)`` into ``(B, out_channels, H, W)`` in [-1, 1].

        The net is fully convolutional: other sizes than ``image_size`` are padded the same way
        (each side up to a multiple of ``2 ** depth``) and cropped back.

        ``dropout``: ``None`` follows ``self.training``; ``True``/``False`` force it on/off.
        ``generator``: draw the dropout masks from it (else the global RNG).
        """
        active = self.training if dropout is None else bool(dropout)
        for m in self.modules():
            if isinstance(m, _Dropout):
                m.active, m.generator = active, generator
        height, width = x.shape[-2:]
        left, right, top, bottom = pads = self._pads(height, width)
        h = F.pad(x, pads, mode="replicate") if any(pads) else x
        try:
            skips = []
            for down in self.down:
                h = down(h)
                skips.append(h)
            h = self.up[-1](skips[-1])
            for i in range(self.depth - 2, -1, -1):
                h = self.up[i](torch.cat([skips[i], h], dim=1))
        finally:
            for m in self.modules():
                if isinstance(m, _Dropout):
                    m.generator = None
        if any(pads):
            h = h[..., top : top + height, left : left + width]
        return h


# ------------------------------------------------------------------------------------------------
# PatchGAN discriminator
# ------------------------------------------------------------------------------------------------
def patch_layer_specs(n_layers: int, kernel: int = 4) -> list[tuple[int, int]]:
    """``(kernel, stride)`` of every conv of a PatchGAN with ``n_layers`` downsampling convs."""
    return [(kernel, 2)] * n_layers + [(kernel, 1), (kernel, 1)]


def receptive_field(specs: Sequence[tuple[int, int]]) -> int:
    """Receptive field (px, one side) of one output of a stack of convs given as
    ``(kernel, stride)`` from input to output (dilation 1): ``r <- (r - 1) * s + k`` backwards
    from ``r = 1``."""
    r = 1
    for kernel, stride in reversed(list(specs)):
        r = (r - 1) * stride + kernel
    return r


def patch_receptive_field(n_layers: int) -> int:
    """Receptive field of the default PatchGAN with ``n_layers``: 70 for 3 (the paper)."""
    return receptive_field(patch_layer_specs(n_layers))


def patch_output_size(size: int, n_layers: int) -> int:
    """Side of the logit map for an input side ``size`` (4x4 convs, padding 1)."""
    for kernel, stride in patch_layer_specs(n_layers):
        size = (size + 2 - kernel) // stride + 1
    return size


def patch_layers_for_size(image_size: int) -> int:
    """``n_layers`` (1..8) whose receptive field is closest to 70/256 of ``image_size`` (the
    paper's PatchGAN-to-image ratio): 3 at 256 px, 2 at 128, 1 at 28/32/64."""
    target = PAPER_PATCH_RATIO * image_size
    return min(range(1, 9), key=lambda n: (abs(patch_receptive_field(n) - target), n))


class PatchDiscriminator(nn.Module):
    """Pix2Pix's PatchGAN (``NLayerDiscriminator``): one logit per overlapping patch.

    Args:
        in_channels: channels of the judged image.
        cond_channels: channels of the condition (Pix2Pix: the input image) concatenated in
            front of the judged image; 0 for an unconditional D (CycleGAN).
        width: channels of the first conv (``ndf``, 64).
        n_layers: stride-2 convs (3: 70x70 patches).
        norm: ``batch``, ``instance``, ``none`` or ``spectral``.
        image_size: optional; when given, checked to leave at least one logit.
    """

    def __init__(self, in_channels: int, cond_channels: int = 0, width: int = 64, n_layers: int = 3,
                 norm: str = "batch", image_size: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.in_channels = _check_int(in_channels, "patchgan in_channels", 1)
        self.cond_channels = _check_int(cond_channels, "patchgan cond_channels", 0)
        self.width = _check_int(width, "patchgan width", 1)
        self.n_layers = _check_int(n_layers, "patchgan n_layers", 1)
        self.norm = _check_norm(norm, "patchgan norm", D_NORMS)
        if image_size is not None:
            h, w = _size_pair(image_size, "patchgan image_size")
            out = min(patch_output_size(h, self.n_layers), patch_output_size(w, self.n_layers))
            if out < 1:
                fitting = [n for n in range(1, self.n_layers)
                           if min(patch_output_size(h, n), patch_output_size(w, n)) >= 1]
                raise UserError(
                    f"patchgan n_layers={self.n_layers} leaves no output for {h}x{w} px images; "
                    f"use n_layers <= {max(fitting) if fitting else 0}"
                )
        sn = self.norm == "spectral"
        bias = self.norm != "batch"

        def conv(cin: int, cout: int, stride: int, has_bias: bool) -> nn.Module:
            layer = nn.Conv2d(cin, cout, 4, stride, 1, bias=has_bias)
            return spectral_norm(layer) if sn else layer

        feature_norm = "none" if sn else self.norm
        layers: list[nn.Module] = [conv(self.in_channels + self.cond_channels, self.width, 2, True), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, self.n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < self.n_layers else 1
            layers += [conv(self.width * prev, self.width * mult, stride, bias),
                       norm_layer(feature_norm, self.width * mult), nn.LeakyReLU(0.2)]
        layers.append(conv(self.width * mult, 1, 1, True))
        self.model = nn.Sequential(*layers)
        init_translation_weights(self)

    def conv_specs(self) -> list[tuple[int, int]]:
        """``(kernel, stride)`` of every conv in this network, input to output (read from the
        modules themselves)."""
        specs = []
        for m in self.model.modules():
            if isinstance(m, nn.Conv2d):
                if m.kernel_size[0] != m.kernel_size[1] or m.stride[0] != m.stride[1] or m.dilation != (1, 1):
                    raise ValueError("receptive_field expects square, undilated convs")
                specs.append((m.kernel_size[0], m.stride[0]))
        return specs

    @property
    def receptive_field(self) -> int:
        """Side (px) of the input patch one output logit sees, computed from the layers."""
        return receptive_field(self.conv_specs())

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """Patch logits ``(B, 1, h, w)`` of ``x`` (paired with ``condition`` when conditional)."""
        if self.cond_channels:
            if condition is None:
                raise ValueError("this PatchGAN is conditional: pass the condition (the input image)")
            x = torch.cat([condition, x], dim=1)
        elif condition is not None:
            raise ValueError("this PatchGAN is unconditional: it takes no condition")
        return self.model(x)


# ------------------------------------------------------------------------------------------------
# ResNet generator (CycleGAN)
# ------------------------------------------------------------------------------------------------
def resnet_blocks_for_size(image_size: int | Sequence[int]) -> int:
    """CycleGAN's block count: 9 from 256 px up, else 6 (so 6 at 28/32/64/128 px)."""
    h, w = _size_pair(image_size, "resnet image_size")
    return 9 if min(h, w) >= 256 else 6


class ResidualBlock(nn.Module):
    """``x + [pad, conv3, norm, ReLU, (dropout), pad, conv3, norm](x)`` with reflection padding."""

    def __init__(self, channels: int, norm: str, dropout: bool) -> None:
        super().__init__()
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                                   norm_layer(norm, channels), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(DROPOUT_P))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResNetTranslator(nn.Module):
    """CycleGAN's generator (``ResnetGenerator``): ``G(x) -> y`` of the same size.

    Args:
        in_channels, out_channels: image channels on each side.
        image_size: side (int) or ``(H, W)``; each a multiple of 4 and at least 8.
        width: channels of the first conv (``ngf``, 64).
        n_blocks: residual blocks; default :func:`resnet_blocks_for_size`.
        norm: ``instance`` (CycleGAN), ``batch`` or ``none``.
        dropout: dropout in the residual blocks (off in CycleGAN).
    """

    def __init__(self, in_channels: int, out_channels: int, image_size: int | Sequence[int], width: int = 64,
                 n_blocks: int | None = None, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        self.in_channels = _check_int(in_channels, "resnet generator in_channels", 1)
        self.out_channels = _check_int(out_channels, "resnet generator out_channels", 1)
        self.image_size = _size_pair(image_size, "resnet generator image_size")
        if any(side % 4 or side < 8 for side in self.image_size):
            raise UserError(
                f"the resnet translation generator takes image sides that are multiples of 4 and at least 8 "
                f"(two exact halvings), got {self.image_size[0]}x{self.image_size[1]}"
            )
        self.width = _check_int(width, "resnet generator width", 1)
        self.n_blocks = resnet_blocks_for_size(self.image_size) if n_blocks is None else _check_int(
            n_blocks, "resnet generator n_blocks", 0)
        self.norm = _check_norm(norm, "resnet generator norm", G_NORMS)
        if not isinstance(dropout, bool):
            raise UserError(f"resnet generator dropout must be true or false, got {dropout!r}")
        bias = self.norm != "batch"
        w = self.width
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(self.in_channels, w, 7, bias=bias),
                                   norm_layer(self.norm, w), nn.ReLU()]
        for mult in (1, 2):
            layers += [nn.Conv2d(w * mult, w * mult * 2, 3, 2, 1, bias=bias), norm_layer(self.norm, w * mult * 2),
                       nn.ReLU()]
        layers += [ResidualBlock(4 * w, self.norm, dropout) for _ in range(self.n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(w * mult, w * mult // 2, 3, 2, 1, output_padding=1, bias=bias),
                       norm_layer(self.norm, w * mult // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, self.out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_translation_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)`` in [-1, 1]."""
        return self.model(x)


__all__ = [
    "PatchDiscriminator",
    "ResNetTranslator",
    "ResidualBlock",
    "UNetGenerator",
    "init_translation_weights",
    "patch_layer_specs",
    "patch_layers_for_size",
    "patch_output_size",
    "patch_receptive_field",
    "receptive_field",
    "resnet_blocks_for_size",
    "unet_depth",
    "unet_dropout_levels",
    "unet_padded_size",
]
