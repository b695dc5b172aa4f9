"""StyleGAN2 networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

* :class:`MappingNetwork`: z, normalised to unit second moment, through an MLP (8 layers by
  default) with a reduced learning rate to w; it holds ``w_avg``, the running mean of w that
  truncation pulls towards (the family updates it during training).
* :class:`SynthesisNetwork`: a learned 4x4 constant, then per resolution two 3x3 modulated
  convolutions with weight demodulation (the first one upsampling), each followed by scaled
  noise, bias and leaky ReLU; skip-connection toRGB outputs summed over resolutions. It takes one
  w per layer (``ws``: ``num_ws`` of them), which is what style mixing and truncation act on.
* :class:`Discriminator`: the residual architecture (two 3x3 convolutions and a 1x1 skip per
  resolution, each branch scaled by sqrt(1/2)) with the minibatch standard-deviation layer and
  two fully connected layers at 4x4.

Equalised learning rate everywhere: weights are stored as N(0, 1) (divided by the layer's
learning-rate multiplier) and scaled at run time by ``lr_multiplier / sqrt(fan_in)``, so the
optimizer sees every layer at the same scale. Resampling uses the [1, 3, 3, 1] binomial filter.

Channels at resolution r are ``min(channel_base // r, channel_max)`` as in the paper (its values:
base 32768, max 512); the lab's configs pass a smaller base for CPU runs. Resolutions are powers
of two from 16 to 256 px. These are plain ``nn.Module`` s: nothing here knows of Lightning.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.errors import UserError

SQRT2 = math.sqrt(2.0)
SQRT_HALF = math.sqrt(0.5)
SIZES = (16, 32, 64, 128, 256)
NOISE_MODES = ("random", "const", "none")


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """The paper's channel formula: ``min(channel_base // resolution, channel_max)`` (at least 1)."""
    return max(1, min(channel_base // resolution, channel_max))


def check_resolution(shape: tuple[int, ...], who: str = "model=stylegan") -> tuple[int, int]:
    """(channels, resolution) of square power-of-two images 16..256 px, else a one-line error."""
    if len(shape) != 3:
        raise UserError(f"{who} needs images, got data of shape {tuple(shape)}")
    channels, height, width = shape
    if height != width or height not in SIZES:
        raise UserError(f"{who} builds square images of {', '.join(map(str, SIZES))} px (powers of two); the data "
                        f"gives {height}x{width}: set data.source.image_size to one of those")
    return channels, height


def lrelu(x: Tensor, gain: float = 1.0) -> Tensor:
    """Leaky ReLU (slope 0.2) scaled by sqrt(2), which keeps the activations' second moment."""
    return F.leaky_relu(x, 0.2) * (SQRT2 * gain)


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


# ------------------------------------------------------------------ FIR resampling


def binomial_filter(taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)) -> Tensor:
    """The separable 2-D low-pass filter of ``taps``, normalised to sum 1."""
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def filter2d(x: Tensor, f: Tensor, pad: tuple[int, int], gain: float = 1.0) -> Tensor:
    """Each channel of ``x`` zero-padded by ``pad`` (before, after) on both axes and convolved
    with ``f`` (symmetric, so correlation = convolution)."""
    channels = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = (f * gain).to(x.dtype)[None, None].expand(channels, 1, *f.shape)
    return F.conv2d(x, weight, groups=channels)


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """Twice the size: zeros inserted after every sample, then the 4-tap filter (gain 4 keeps the
    mean), padded (2, 1). Computed as the equal strided transposed convolution (several times
    faster on CPU than filtering the zero-stuffed image)."""
    channels = x.shape[1]
    weight = (f * 4.0).to(x.dtype)[None, None].expand(channels, 1, *f.shape)
    return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=channels)


def downsample2d(x: Tensor, f: Tensor) -> Tensor:
    """Half the size: the 4-tap filter, padded (1, 1), at every second sample (a strided convolution)."""
    channels = x.shape[1]
    weight = f.to(x.dtype)[None, None].expand(channels, 1, *f.shape)
    return F.conv2d(F.pad(x, [1, 1, 1, 1]), weight, stride=2, groups=channels)


# ------------------------------------------------------------------ equalised layers


class EqualLinear(nn.Module):
    """A fully connected layer with equalised learning rate: ``weight ~ N(0, 1) / lr_multiplier``
    used as ``weight * lr_multiplier / sqrt(in_features)``, bias used as ``bias * lr_multiplier``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: bool = False,
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.bias_gain
        x = F.linear(x, self.weight * self.weight_gain, bias)
        return lrelu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """A convolution with equalised learning rate (``weight * 1/sqrt(in * k * k)``), optionally
    downsampling by 2 (filter, then stride 2), then bias and leaky ReLU (or linear)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.activation, self.down, self.kernel_size = activation, down, kernel_size
        self.register_buffer("resample_filter", binomial_filter(), persistent=False)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = self.weight * self.weight_gain
        k = self.kernel_size
        if self.down and k == 1:
            x = F.conv2d(downsample2d(x, self.resample_filter), w)
        elif self.down:
            # low-pass first, padded so that the strided convolution lands on the filtered grid
            taps = self.resample_filter.shape[-1]
            pad = k // 2 + (taps - 1) // 2
            x = F.conv2d(filter2d(x, self.resample_filter, (pad, pad)), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=k // 2)
        if self.bias is not None:
            x = x + self.bias[None, :, None, None]
        return lrelu(x, gain) if self.activation else x * gain


# ------------------------------------------------------------------ mapping


class MappingNetwork(nn.Module):
    """z -> w: z normalised to unit second moment, then ``num_layers`` equalised fully connected
    layers with leaky ReLU, learning rate multiplier ``lr_multiplier`` (0.01 in the paper).

    ``w_avg`` (a buffer) is the running mean of w over training, which truncation pulls towards;
    :meth:`track` updates it with decay ``w_avg_beta``."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int = 8, lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.w_dim, self.w_avg_beta = z_dim, w_dim, w_avg_beta
        sizes = [z_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(*[EqualLinear(sizes[i], sizes[i + 1], activation=True, lr_multiplier=lr_multiplier)
                                      for i in range(num_layers)])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(normalize_2nd_moment(z.float()))

    @torch.no_grad()
    def track(self, w_mean: Tensor) -> None:
        """``w_avg <- beta * w_avg + (1 - beta) * w_mean`` (``w_mean``: a batch's mean w)."""
        self.w_avg.copy_(w_mean.detach().to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))


# ------------------------------------------------------------------ synthesis


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, up: bool = False,
                     resample_filter: Tensor | None = None) -> Tensor:
    """The convolution with per-sample weights ``w'[b,o,i,k] = s[b,i] * w[o,i,k]``, and with
    ``demodulate`` those divided by ``sqrt(sum_{i,k} w'[b,o,i,k]^2 + 1e-8)`` (unit norm per output
    channel). Computed without forming the per-sample weights: the input channels are scaled by the
    styles, convolved with the shared weight, and the outputs scaled by the demodulation factor,
    which gives the same result for a linear convolution. ``up`` upsamples (filter) before it."""
    b = x.shape[0]
    x = x * styles.to(x.dtype).reshape(b, -1, 1, 1)
    if up:
        x = upsample2d(x, resample_filter)
    x = F.conv2d(x, weight.to(x.dtype), padding=weight.shape[-1] // 2)
    if demodulate:
        # sum_{i,k} (s_i w_oik)^2 = sum_i s_i^2 * sum_k w_oik^2
        dcoefs = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()
        x = x * dcoefs.to(x.dtype).reshape(b, -1, 1, 1)
    return x


class SynthesisLayer(nn.Module):
    """One modulated 3x3 convolution (style = affine(w), bias initialised to 1), demodulated,
    then per-pixel noise times a learned strength (initially 0), bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.resolution, self.up = resolution, up
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        # the noise image of noise_mode="const": fixed at construction, saved with the weights
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", binomial_filter(), persistent=False)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", generator: torch.Generator | None = None) -> Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, resample_filter=self.resample_filter)
        if noise_mode == "random":
            shape = (x.shape[0], 1, self.resolution, self.resolution)
            noise = (torch.randn(shape, device=x.device) if generator is None
                     else torch.randn(shape, generator=generator).to(x.device))
            x = x + noise.to(x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        return lrelu(x + self.bias.to(x.dtype)[None, :, None, None])


class ToRGB(nn.Module):
    """A modulated 1x1 convolution to image channels, not demodulated (styles scaled by
    1/sqrt(in_channels) instead), plus bias; linear."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        return modulated_conv2d(x, self.weight, styles, demodulate=False) + self.bias.to(x.dtype)[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (upsampling conv0,) conv1, toRGB; the image so far is
    upsampled and this resolution's toRGB output added. The 4x4 block starts from the constant."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int):
        super().__init__()
        self.first = in_channels == 0
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, img_channels, w_dim)
        self.num_conv = 1 if self.first else 2
        self.register_buffer("resample_filter", binomial_filter(), persistent=False)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, **noise) -> tuple[Tensor, Tensor]:
        if self.first:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], **noise)
        else:
            x = self.conv0(x, ws[:, 0], **noise)
            x = self.conv1(x, ws[:, 1], **noise)
        y = self.torgb(x, ws[:, self.num_conv]).float()
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> images (B, C, R, R). Layer ``i`` of ``ws`` drives, in order: the
    4x4 conv, then per resolution 8, 16, ...: the 4x4 (or previous) toRGB together with the next
    upsampling conv, then that resolution's second conv; the last index drives the final toRGB.
    So ``num_ws = 2 * log2(R) - 2`` and index ``2k - 5 .. 2k - 3`` belong to resolution ``2^k``."""

    def __init__(self, w_dim: int, resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512):
        super().__init__()
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
        self.w_dim, self.resolution, self.img_channels = w_dim, resolution, img_channels
        self.resolutions = [2**k for k in range(2, int(math.log2(resolution)) + 1)]
        self.channels = {r: channels_at(r, channel_base, channel_max) for r in self.resolutions}
        self.blocks = nn.ModuleList()
        for r in self.resolutions:
            in_ch = self.channels[r // 2] if r > 4 else 0
            self.blocks.append(SynthesisBlock(in_ch, self.channels[r], w_dim, r, img_channels))
        self.num_ws = 2 * len(self.resolutions)

    def layer_resolutions(self) -> list[int]:
        """The resolution each w index is counted at for style mixing: two per resolution, 4, 4,
        8, 8, ... (the paper's convention, in which coarse = 4-8 px is indices 0-3, middle =
        16-32 px 4-7, fine = 64 px and up 8 on)."""
        return [2 ** (2 + i // 2) for i in range(self.num_ws)]

    def forward(self, ws: Tensor, noise_mode: str = "random", generator: torch.Generator | None = None) -> Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        x = img = None
        start = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, start:start + block.num_conv + 1], noise_mode=noise_mode, generator=generator)
            start += block.num_conv
        return img


# ------------------------------------------------------------------ discriminator


class MinibatchStdLayer(nn.Module):
    """Appends the average standard deviation of features over groups of ``group_size`` samples
    (strided: sample i shares a group with i + B/G, ...) as ``num_channels`` extra feature maps.
    The group is the largest divisor of the batch up to ``group_size``."""

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # (n/g, F, c/F, H, W): std over the group
        y = y.mean(dim=(2, 3, 4)).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: conv 3x3, conv 3x3 down, plus a 1x1 down skip (no bias); both scaled by
    sqrt(1/2). The first block reads the image through a 1x1 fromRGB."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int):
        super().__init__()
        self.fromrgb = EqualConv2d(img_channels, tmp_channels, 1) if in_channels == 0 else None
        self.conv0 = EqualConv2d(tmp_channels, tmp_channels, 3)
        self.conv1 = EqualConv2d(tmp_channels, out_channels, 3, down=True)
        self.skip = EqualConv2d(tmp_channels, out_channels, 1, bias=False, activation=False, down=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x, gain=SQRT_HALF)
        return y + self.conv1(self.conv0(x), gain=SQRT_HALF)


class Discriminator(nn.Module):
    """Images (B, C, R, R) -> one logit per image (B,): residual blocks from R down to 4x4, then
    minibatch stddev, a 3x3 conv, a fully connected layer and the output layer."""

    def __init__(self, resolution: int, img_channels: int, channel_base: int = 32768, channel_max: int = 512,
                 mbstd_group_size: int = 4, mbstd_channels: int = 1):
        super().__init__()
        resolutions = [2**k for k in range(int(math.log2(resolution)), 2, -1)]
        ch = {r: channels_at(r, channel_base, channel_max) for r in resolutions + [4]}
        self.blocks = nn.Sequential(*[
            DiscriminatorBlock(0 if r == resolution else ch[r], ch[r], ch[r // 2], img_channels) for r in resolutions
        ])
        c4 = ch[4]
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_channels) if mbstd_channels else None
        self.conv = EqualConv2d(c4 + mbstd_channels, c4, 3)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)

    def forward(self, img: Tensor, y: Tensor | None = None) -> Tensor:
        x = self.blocks(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.fc(self.conv(x).flatten(1))
        return self.out(x).squeeze(1)


# ------------------------------------------------------------------ operations on W


def broadcast_ws(w: Tensor, num_ws: int) -> Tensor:
    """One w per sample (B, D) as the same w for every layer (B, num_ws, D)."""
    return w.unsqueeze(1).repeat(1, num_ws, 1)


def truncate(w: Tensor, w_avg: Tensor, psi: float) -> Tensor:
    """The truncation trick in W: ``w_avg + psi * (w - w_avg)`` (psi = 1: unchanged, 0: the average)."""
    return w_avg.to(w.dtype).lerp(w, psi)


def mix_styles(ws: Tensor, ws_other: Tensor, cutoff: int) -> Tensor:
    """Style mixing: the layers from ``cutoff`` on take ``ws_other``'s w (``cutoff = num_ws``: none)."""
    if cutoff >= ws.shape[1]:
        return ws
    return torch.cat([ws[:, :cutoff], ws_other[:, cutoff:]], dim=1)


def mixing_cutoff(num_ws: int, probability: float, generator: torch.Generator | None = None) -> int:
    """The crossover layer of one minibatch: uniform in ``1 .. num_ws - 1`` with ``probability``,
    else ``num_ws`` (no mixing)."""
    cutoff = int(torch.randint(1, num_ws, (), generator=generator))
    return cutoff if float(torch.rand((), generator=generator)) < probability else num_ws


def slerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    """Spherical interpolation between latents ``a`` and ``b`` (rows), ``t`` in [0, 1] per row or
    one number; the angle between the normalised vectors, the norm interpolated linearly (Z is
    Gaussian, so its mass lies near a sphere)."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.dim() == 1:
        t = t[:, None]
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na, b / nb
    omega = torch.acos((ua * ub).sum(-1, keepdim=True).clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    near = sin.abs() < 1e-6  # (anti)parallel: fall back to linear interpolation of the directions
    wa = torch.where(near, 1.0 - t, torch.sin((1.0 - t) * omega) / torch.where(near, torch.ones_like(sin), sin))
    wb = torch.where(near, t, torch.sin(t * omega) / torch.where(near, torch.ones_like(sin), sin))
    return (wa * ua + wb * ub) * (na + t * (nb - na))
