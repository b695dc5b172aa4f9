"""BigGAN (Brock et al. 2019): generator and projection discriminator.

Generator (``G(z, y)``):

* a *shared* class embedding ``e = shared(y)`` (``shared_dim`` values, no spectral norm);
* a *hierarchical* latent: ``z`` is split into ``k + 1`` equal chunks; the first goes through a
  linear layer to the ``base x base`` map, chunk ``i + 1`` is concatenated with ``e`` and
  projected (bias-free linear maps) to the gains ``1 + W_g [e, z_i]`` and biases ``W_b [e, z_i]``
  of both conditional batch norms in up-block ``i``;
* ``k`` residual up-blocks (CBN, ReLU, upsample, conv3x3, CBN, ReLU, conv3x3; upsample + 1x1
  shortcut), a SAGAN self-attention block after the block that reaches
  ``attention_resolution``, then BN, ReLU, conv3x3, tanh;
* spectral norm on every conv and linear layer of G (not the shared embedding).

Discriminator (``D(x, y) -> (B,)``): residual down-blocks (the first without pre-activation),
self-attention after the block that reaches ``attention_resolution``, ReLU, global sum pooling,
``linear(h) + <embed(y), h>`` (projection), spectral norm everywhere.

Channel plans follow BigGAN-PyTorch's ``G_arch``/``D_arch`` for 32 and 64 px (``width`` is ``ch``):
G 32 px: ``4ch`` throughout; G 64 px: ``16ch -> 16, 8, 4, 2 ch``; D 32 px: ``4ch`` in four
blocks, the first two downsampling; D 64 px: ``ch, 2, 4, 8, 16 ch``, all but the last
downsampling. Other sizes ``base * 2^k`` follow the 32 px pattern for ``k <= 3`` and the 64/128 px
pattern for ``k >= 4``; ``channels``/``downsample`` override the plan. Weights are initialised
with ``init`` (BigGAN: ``ortho``; its CIFAR script: ``N02``) before spectral norm is applied.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from gan_lab.errors import UserError
from gan_lab.networks.cond_layers import (
    ConditionalBatchNorm2d,
    ResDownBlock,
    ResUpBlock,
    SelfAttention2d,
    check_attention_resolution,
    check_init,
    conv_factory,
    image_size_plan,
    init_weight,
    make_layer,
    require_labels,
)
from gan_lab.networks.layers import ProjectionHead


def generator_channels(k: int, width: int) -> list[int]:
    """Channels of the ``base x base`` map and of each of the ``k`` up-blocks' outputs."""
    if k <= 3:
        return [4 * width] * (k + 1)
    return [16 * width] + [max(1, 16 >> i) * width for i in range(k)]


def discriminator_plan(k: int, width: int) -> tuple[list[int], list[bool]]:
    """Output channels and downsampling of each D block."""
    if k <= 3:
        n_down = min(k, 2)
        return [4 * width] * (n_down + 2), [True] * n_down + [False, False]
    return [min(16, 2**i) * width for i in range(k)] + [16 * width], [True] * k + [False]


class BigGANGenerator(nn.Module):
    def __init__(
        self,
        latent_dim: int,
        data_shape: tuple[int, ...],
        num_classes: int,
        width: int = 64,
        shared_dim: int = 128,
        attention_resolution: int | None = None,
        spectral_norm: bool = True,
        init: str = "ortho",
        channels: Sequence[int] | None = None,
        bn_eps: float = 1e-5,
    ):
        super().__init__()
        if num_classes < 2:
            raise UserError(f"BigGAN is class-conditional and needs labelled data, got num_classes={num_classes}")
        out_channels, self.base, k = image_size_plan(tuple(data_shape), "the BigGAN generator")
        check_init(init)
        self.channels = list(channels) if channels is not None else generator_channels(k, width)
        if len(self.channels) != k + 1:
            raise UserError(f"the BigGAN generator for {data_shape[-1]} px needs {k + 1} channel counts, "
                            f"got {len(self.channels)}")
        self.num_chunks = k + 1
        if latent_dim % self.num_chunks:
            lo = latent_dim - latent_dim % self.num_chunks
            raise UserError(
                f"BigGAN splits the latent into {self.num_chunks} equal chunks (one for the input layer and "
                f"one per G block at {data_shape[-1]} px), so latent_dim must be a multiple of "
                f"{self.num_chunks}; got {latent_dim} (try {lo or self.num_chunks})"
            )
        self.latent_dim, self.num_classes, self.shared_dim = latent_dim, num_classes, shared_dim
        self.chunk = latent_dim // self.num_chunks
        conv = conv_factory(spectral_norm, init)
        self.shared = nn.Embedding(num_classes, shared_dim)
        init_weight(self.shared.weight, init)
        self.linear = make_layer(nn.Linear(self.chunk, self.channels[0] * self.base**2), spectral_norm, init)
        cond_dim = shared_dim + self.chunk
        resolutions = [self.base * 2 ** (i + 1) for i in range(k)]
        self.attention_resolution = check_attention_resolution(attention_resolution, resolutions,
                                                               "the BigGAN generator")
        self.blocks = nn.ModuleList()
        self.attention_after = -1
        for i in range(k):
            cin, cout = self.channels[i], self.channels[i + 1]
            self.blocks.append(ResUpBlock(
                cin, cout,
                ConditionalBatchNorm2d(cin, cond_dim, spectral_norm, init, eps=bn_eps),
                ConditionalBatchNorm2d(cout, cond_dim, spectral_norm, init, eps=bn_eps),
                conv,
            ))
            if self.attention_after < 0 and resolutions[i] == self.attention_resolution:
                self.attention_after = i
        self.attention = SelfAttention2d(self.channels[self.attention_after + 1], conv) \
            if self.attention_after >= 0 else None
        self.out = nn.Sequential(
            nn.BatchNorm2d(self.channels[-1], eps=bn_eps), nn.ReLU(), conv(self.channels[-1], out_channels, 3), nn.Tanh()
        )

    def forward(self, z: Tensor, y: Tensor | None = None, class_embedding: Tensor | None = None) -> Tensor:
        """``class_embedding`` (B, shared_dim) replaces ``shared(y)`` (e.g. to interpolate classes)."""
        e = class_embedding if class_embedding is not None else self.shared(require_labels(y, "the BigGAN generator"))
        zs = torch.split(z.flatten(1), self.chunk, dim=1)
        h = self.linear(zs[0]).view(z.shape[0], self.channels[0], self.base, self.base)
        for i, block in enumerate(self.blocks):
            h = block(h, torch.cat([e, zs[i + 1]], dim=1))
            if i == self.attention_after:
                h = self.attention(h)
        return self.out(h)

    def orthogonal_reg_parameters(self) -> list[nn.Parameter]:
        """The weights BigGAN's orthogonal regularisation acts on: every parameter of G with at least
        two dimensions (conv kernels, linear layers including the conditional-BN gain/bias
        projections and the attention convs; the raw weights under spectral norm), except the
        shared class embedding. Biases, BN parameters and attention's gamma are 1-D or 0-D."""
        return [p for name, p in self.named_parameters() if p.dim() >= 2 and not name.startswith("shared.")]


class BigGANDiscriminator(nn.Module):
    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int,
        width: int = 64,
        attention_resolution: int | None = None,
        spectral_norm: bool = True,
        init: str = "ortho",
        channels: Sequence[int] | None = None,
        downsample: Sequence[bool] | None = None,
    ):
        super().__init__()
        if num_classes < 2:
            raise UserError(f"the projection discriminator needs labelled data, got num_classes={num_classes}")
        in_channels, base, k = image_size_plan(tuple(data_shape), "the BigGAN discriminator")
        check_init(init)
        plan_ch, plan_down = discriminator_plan(k, width)
        self.channels = list(channels) if channels is not None else plan_ch
        self.downsample = list(downsample) if downsample is not None else plan_down
        if len(self.channels) != len(self.downsample):
            raise ValueError("channels and downsample must have one entry per block")
        if sum(self.downsample) > k:
            raise UserError(f"the discriminator downsamples {sum(self.downsample)} times, more than a "
                            f"{data_shape[-1]} px image allows ({k})")
        self.num_classes = num_classes
        conv = conv_factory(spectral_norm, init)
        resolutions, res = [], int(data_shape[-1])
        for down in self.downsample:
            res = res // 2 if down else res
            resolutions.append(res)
        self.attention_resolution = check_attention_resolution(attention_resolution, resolutions,
                                                               "the BigGAN discriminator")
        self.blocks = nn.ModuleList()
        self.attention_after = -1
        cin = in_channels
        for i, (cout, down) in enumerate(zip(self.channels, self.downsample)):
            self.blocks.append(ResDownBlock(cin, cout, down, first=i == 0, conv=conv))
            if self.attention_after < 0 and resolutions[i] == self.attention_resolution:
                self.attention_after = i
            cin = cout
        self.attention = SelfAttention2d(self.channels[self.attention_after], conv) \
            if self.attention_after >= 0 else None
        # The lab's projection head, initialised first and then spectrally normalised.
        self.head = ProjectionHead(self.channels[-1], num_classes, "none")
        for layer_name in ("linear", "embed"):
            layer = getattr(self.head, layer_name)
            init_weight(layer.weight, init)
            if spectral_norm:
                setattr(self.head, layer_name, apply_spectral_norm(layer))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        y = require_labels(y, "the projection discriminator")
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.attention_after:
                h = self.attention(h)
        h = F.relu(h).sum(dim=(2, 3))
        return self.head(h, y)
