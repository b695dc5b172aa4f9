"""Class-conditional generators and discriminators: CGAN, ACGAN, the semi-supervised GAN's D and
the projection cGAN (conditional-BN generator + projection discriminator with spectral norm).

Each network comes in an MLP form (2-D points, flattened images) and a DCGAN-style conv form
(square images of ``4*2^k`` or ``7*2^k`` px, see :func:`~gan_lab.networks.cond_layers.image_size_plan`).

* **CGAN** (Mirza & Osindero 2014): ``G(z, y)`` concatenates a learned label embedding to ``z``;
  ``D(x, y)`` sees the label at its input: one-hot label planes concatenated to the image
  channels (conv) or the one-hot vector concatenated to the flattened sample (MLP).
* **ACGAN** (Odena et al. 2017): the generator is the CGAN one; the discriminator does *not* see
  ``y`` and returns ``(real/fake logit (B,), class logits (B, K))``.
* **SSGAN** (Salimans et al. 2016): the discriminator is a K-way classifier (``(B, K)`` logits;
  the (K+1)-th, "fake", logit is fixed at 0, see :mod:`gan_lab.losses.conditional`).
* **Projection cGAN** (Miyato & Koyama 2018): :class:`CondBNResNetGenerator` (residual G whose
  batch norms have per-class gains and biases) and :class:`ProjectionDiscriminator` (residual D
  with spectral norm and the class projection ``<embed(y), h>`` added to its output).

Discriminators of the CGAN/ACGAN/SSGAN kind take ``minibatch_kernels > 0`` to put a minibatch
discrimination layer before their head, and give their hidden features for feature matching:
``features(x, y)`` (the hidden layer ``feature_layer``, flattened), or ``forward(...,
return_features=True)``, which appends those features to the usual outputs in one pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.errors import UserError
from gan_lab.networks.biggan import BigGANDiscriminator
from gan_lab.networks.cond_layers import (
    CategoricalConditionalBatchNorm2d,
    ResUpBlock,
    check_init,
    conv_factory,
    image_size_plan,
    make_layer,
    require_labels,
)
from gan_lab.networks.improved import MinibatchDiscrimination
from gan_lab.networks.layers import check_norm, feature_norm, maybe_sn

ARCHS = ("auto", "mlp", "conv")


def resolve_arch(arch: str, data_shape: tuple[int, ...], what: str) -> str:
    """``auto``: conv for images ``(C, H, W)``, mlp for vectors. A conv net on vectors is an error."""
    if arch not in ARCHS:
        raise UserError(f"{what}: unknown arch '{arch}'; choose one of: {', '.join(ARCHS)}")
    if arch == "auto":
        return "conv" if len(data_shape) == 3 else "mlp"
    if arch == "conv" and len(data_shape) != 3:
        raise UserError(f"{what}: arch=conv needs images, got data of shape {tuple(data_shape)}; use arch=mlp")
    return arch


def _check_classes(num_classes: int, what: str) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise UserError(f"{what} is class-conditional and needs labelled data with at least 2 classes, "
                        f"got num_classes={num_classes!r}")
    return num_classes


def one_hot_planes(y: Tensor, num_classes: int, height: int, width: int, dtype: torch.dtype) -> Tensor:
    """Label maps: ``(B, K, H, W)`` with plane ``y_i`` all ones for sample i, the others zero."""
    return F.one_hot(y, num_classes).to(dtype)[:, :, None, None].expand(-1, -1, height, width)


# ---------------------------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------------------------


class CGANGenerator(nn.Module):
    """``G(z, y)``: ``[z, embed(y)]`` through an MLP or a DCGAN-style stack of transposed convs.

    MLP: ``depth`` hidden Linear(+BatchNorm1d)+ReLU layers of ``width`` units, linear output
    (tanh for images). Conv: ``[z, embed(y)]`` as a 1x1 map, a ``base x base`` transposed conv
    to ``width * 2^(k-1)`` channels, then ``k - 1`` stride-2 transposed convs halving the
    channels, each with BatchNorm2d + ReLU, and a stride-2 transposed conv to the image with tanh.
    ``embed_dim=None`` uses ``num_classes`` (an embedding as wide as a one-hot code).
    The ACGAN generator is this network.
    """

    def __init__(
        self,
        latent_dim: int,
        data_shape: tuple[int, ...],
        num_classes: int,
        arch: str = "auto",
        width: int = 64,
        depth: int = 3,
        embed_dim: int | None = None,
        batch_norm: bool = True,
        tanh: bool | None = None,
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.data_shape = tuple(int(s) for s in data_shape)
        self.num_classes = _check_classes(num_classes, "the CGAN generator")
        self.arch = resolve_arch(arch, self.data_shape, "the CGAN generator")
        self.embed = nn.Embedding(num_classes, embed_dim or num_classes)
        fan_in = latent_dim + self.embed.embedding_dim
        tanh = len(self.data_shape) == 3 if tanh is None else tanh
        layers: list[nn.Module] = []
        if self.arch == "mlp":
            for _ in range(depth):
                layers += [nn.Linear(fan_in, width)]
                layers += [nn.BatchNorm1d(width)] if batch_norm else []
                layers += [nn.ReLU(inplace=True)]
                fan_in = width
            layers += [nn.Linear(fan_in, math.prod(self.data_shape))]
        else:
            channels, base, k = image_size_plan(self.data_shape, "the CGAN conv generator")
            ch = width * 2 ** (k - 1)
            layers += [nn.ConvTranspose2d(fan_in, ch, base, 1, 0, bias=not batch_norm)]
            layers += [nn.BatchNorm2d(ch)] if batch_norm else []
            layers += [nn.ReLU(inplace=True)]
            for _ in range(k - 1):
                layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=not batch_norm)]
                layers += [nn.BatchNorm2d(ch // 2)] if batch_norm else []
                layers += [nn.ReLU(inplace=True)]
                ch //= 2
            layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1)]
        if tanh:
            layers += [nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        y = require_labels(y, "the CGAN generator")
        h = torch.cat([z.flatten(1), self.embed(y)], dim=1)
        if self.arch == "conv":
            h = h[:, :, None, None]
        return self.net(h).view(z.shape[0], *self.data_shape)


ACGANGenerator = CGANGenerator


class CondBNResNetGenerator(nn.Module):
    """The projection cGAN's generator: SNGAN's residual G with categorical conditional BN.

    ``z`` -> linear -> ``width x base x base`` -> ``k`` residual up-blocks (conditional BN with a
    gain and a bias per class) -> BN, ReLU, 3x3 conv, tanh. ``spectral_norm=False`` as in
    Miyato & Koyama (spectral norm in D only).
    """

    def __init__(
        self,
        latent_dim: int,
        data_shape: tuple[int, ...],
        num_classes: int,
        width: int = 256,
        spectral_norm: bool = False,
        init: str = "default",
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = _check_classes(num_classes, "the conditional-BN generator")
        channels, self.base, k = image_size_plan(tuple(data_shape), "the conditional-BN resnet generator")
        check_init(init)
        conv = conv_factory(spectral_norm, init)
        self.width = width
        self.linear = make_layer(nn.Linear(latent_dim, self.base * self.base * width), spectral_norm, init)
        self.blocks = nn.ModuleList(
            ResUpBlock(width, width, CategoricalConditionalBatchNorm2d(width, num_classes),
                       CategoricalConditionalBatchNorm2d(width, num_classes), conv)
            for _ in range(k)
        )
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), conv(width, channels, 3), nn.Tanh())

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        y = require_labels(y, "the conditional-BN generator")
        h = self.linear(z.flatten(1)).view(z.shape[0], self.width, self.base, self.base)
        for block in self.blocks:
            h = block(h, y)
        return self.out(h)


# ---------------------------------------------------------------------------------------------
# Discriminator trunks (hidden layers) shared by CGAN, ACGAN and SSGAN discriminators
# ---------------------------------------------------------------------------------------------


class _Trunk(nn.Module):
    """Hidden layers as a list of stages; ``forward`` returns every stage's output."""

    stages: nn.ModuleList
    out_features: int

    def __init__(self, input_noise: float, hidden_noise: float):
        super().__init__()
        for name, value in (("input_noise", input_noise), ("hidden_noise", hidden_noise)):
            if not value >= 0:
                raise UserError(f"discriminator {name} must be >= 0, got {value!r}")
        self.input_noise, self.hidden_noise = float(input_noise), float(hidden_noise)

    def _noise(self, h: Tensor, std: float) -> Tensor:
        # Gaussian noise layers of the SSGAN discriminators (training only; global RNG, which the
        # engine checkpoints).
        return h + std * torch.randn_like(h) if (self.training and std > 0) else h

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        h = self._noise(x, self.input_noise)
        for stage in self.stages:
            h = self._noise(stage(h), self.hidden_noise)
            outs.append(h)
        return outs


class _MLPTrunk(_Trunk):
    def __init__(self, in_features: int, width: int, depth: int, norm: str, input_noise=0.0, hidden_noise=0.0):
        super().__init__(input_noise, hidden_noise)
        if depth < 1:
            raise UserError(f"the MLP discriminator needs depth >= 1, got {depth}")
        stages = []
        fan_in = in_features
        for i in range(depth):
            layers: list[nn.Module] = [maybe_sn(nn.Linear(fan_in, width), norm)]
            if i > 0:  # no normalisation right at the input, as in DCGAN
                layers += [feature_norm(norm, width, conv=False)]
            layers += [nn.LeakyReLU(0.2)]
            stages.append(nn.Sequential(*layers))
            fan_in = width
        self.stages = nn.ModuleList(stages)
        self.out_features = width

    def forward(self, x: Tensor) -> list[Tensor]:
        return super().forward(x.flatten(1))


class _ConvTrunk(_Trunk):
    """DCGAN's D body: ``k`` stride-2 4x4 convs from ``width`` channels, doubling; norm after all
    but the first; LeakyReLU(0.2). Ends at ``base x base``."""

    def __init__(self, in_channels: int, base: int, k: int, width: int, norm: str, input_noise=0.0, hidden_noise=0.0):
        super().__init__(input_noise, hidden_noise)
        bias = norm not in ("batch", "layer", "instance")
        stages = [nn.Sequential(maybe_sn(nn.Conv2d(in_channels, width, 4, 2, 1), norm), nn.LeakyReLU(0.2))]
        ch = width
        for _ in range(k - 1):
            stages.append(nn.Sequential(
                maybe_sn(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=bias), norm), feature_norm(norm, ch * 2), nn.LeakyReLU(0.2)
            ))
            ch *= 2
        self.stages = nn.ModuleList(stages)
        self.out_features = ch * base * base


class _TrunkDiscriminator(nn.Module):
    """What the CGAN, ACGAN and SSGAN discriminators share: the trunk, the optional minibatch
    discrimination layer and feature access. Subclasses build their heads on ``self.head_in``
    inputs and may override ``_trunk_input`` (CGAN adds the label there)."""

    def __init__(
        self,
        data_shape: tuple[int, ...],
        in_extra: int,
        arch: str,
        width: int,
        depth: int,
        norm: str,
        minibatch_kernels: int,
        minibatch_kernel_dim: int,
        feature_layer: int,
        input_noise: float,
        hidden_noise: float,
        what: str,
    ):
        super().__init__()
        check_norm(norm)
        self.data_shape = tuple(int(s) for s in data_shape)
        self.arch = resolve_arch(arch, self.data_shape, what)
        if self.arch == "mlp":
            self.trunk: _Trunk = _MLPTrunk(math.prod(self.data_shape) + in_extra, width, depth, norm, input_noise,
                                           hidden_noise)
        else:
            channels, base, k = image_size_plan(self.data_shape, what)
            self.trunk = _ConvTrunk(channels + in_extra, base, k, width, norm, input_noise, hidden_noise)
        n = len(self.trunk.stages)
        if isinstance(feature_layer, bool) or not isinstance(feature_layer, int) or not -n <= feature_layer < n:
            raise UserError(f"{what}: feature layer must be an integer in [{-n}, {n - 1}] "
                            f"(the discriminator has {n} hidden layers), got {feature_layer!r}")
        self.feature_layer = feature_layer
        self.minibatch = (
            MinibatchDiscrimination(self.trunk.out_features, minibatch_kernels, minibatch_kernel_dim)
            if minibatch_kernels else None
        )
        self.head_in = self.minibatch.out_features if self.minibatch is not None else self.trunk.out_features

    def _trunk_input(self, x: Tensor, y: Tensor | None) -> Tensor:
        return x

    def _run(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        """(input of the head, flattened features of ``feature_layer``)."""
        outs = self.trunk(self._trunk_input(x, y))
        h = outs[-1].flatten(1)
        if self.minibatch is not None:
            h = self.minibatch(h)
        return h, outs[self.feature_layer].flatten(1)

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The flattened activations of hidden layer ``feature_layer`` (default -1: the last
        hidden layer, before minibatch discrimination and the head), ``(B, F)``."""
        outs = self.trunk(self._trunk_input(x, y))
        return outs[self.feature_layer].flatten(1)


class CGANDiscriminator(_TrunkDiscriminator):
    """``D(x, y) -> (B,)`` logits, the label fed at the input.

    Conv: one-hot label planes concatenated to the image channels, then DCGAN's D body; MLP: the
    one-hot label concatenated to the flattened sample. Head: a linear layer to one logit.
    ``norm`` is the lab's D norm (batch | layer | instance | spectral | none).
    """

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int,
        arch: str = "auto",
        width: int = 64,
        depth: int = 3,
        norm: str = "batch",
        minibatch_kernels: int = 0,
        minibatch_kernel_dim: int = 5,
        feature_layer: int = -1,
    ):
        self.num_classes = _check_classes(num_classes, "the CGAN discriminator")
        super().__init__(data_shape, num_classes, arch, width, depth, norm, minibatch_kernels, minibatch_kernel_dim,
                         feature_layer, 0.0, 0.0, "the CGAN discriminator")
        self.head = maybe_sn(nn.Linear(self.head_in, 1), norm)

    def _trunk_input(self, x: Tensor, y: Tensor | None) -> Tensor:
        y = require_labels(y, "the CGAN discriminator")
        if self.arch == "conv":
            return torch.cat([x, one_hot_planes(y, self.num_classes, x.shape[2], x.shape[3], x.dtype)], dim=1)
        return torch.cat([x.flatten(1), F.one_hot(y, self.num_classes).to(x.dtype)], dim=1)

    def forward(self, x: Tensor, y: Tensor | None = None, return_features: bool = False):
        h, feats = self._run(x, y)
        out = self.head(h).squeeze(1)
        return (out, feats) if return_features else out


class ACGANDiscriminator(_TrunkDiscriminator):
    """``D(x) -> (real/fake logit (B,), class logits (B, K))``; the body does not see ``y``
    (``forward(x, y)`` accepts and ignores it, for a uniform call)."""

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int,
        arch: str = "auto",
        width: int = 64,
        depth: int = 3,
        norm: str = "batch",
        minibatch_kernels: int = 0,
        minibatch_kernel_dim: int = 5,
        feature_layer: int = -1,
    ):
        self.num_classes = _check_classes(num_classes, "the ACGAN discriminator")
        super().__init__(data_shape, 0, arch, width, depth, norm, minibatch_kernels, minibatch_kernel_dim,
                         feature_layer, 0.0, 0.0, "the ACGAN discriminator")
        self.adv_head = maybe_sn(nn.Linear(self.head_in, 1), norm)
        self.class_head = maybe_sn(nn.Linear(self.head_in, num_classes), norm)

    def forward(self, x: Tensor, y: Tensor | None = None, return_features: bool = False):
        h, feats = self._run(x, None)
        adv, cls = self.adv_head(h).squeeze(1), self.class_head(h)
        return (adv, cls, feats) if return_features else (adv, cls)


class SSGANDiscriminator(_TrunkDiscriminator):
    """The semi-supervised GAN's discriminator: a K-way classifier, ``D(x) -> (B, K)`` logits.

    The fake class is the implicit (K+1)-th logit, fixed at 0 (:func:`gan_lab.losses.conditional.
    ssgan_d_loss`). ``input_noise``/``hidden_noise``: std of Gaussian noise added to the input and
    after every hidden layer in training mode (0.3 and 0.5 in the paper's MNIST model, whose D is
    an MLP of 1000-500-250-250-250 units). ``y`` is accepted and ignored.
    """

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int,
        arch: str = "auto",
        width: int = 64,
        depth: int = 3,
        norm: str = "none",
        minibatch_kernels: int = 0,
        minibatch_kernel_dim: int = 5,
        feature_layer: int = -1,
        input_noise: float = 0.0,
        hidden_noise: float = 0.0,
    ):
        self.num_classes = _check_classes(num_classes, "the SSGAN discriminator")
        super().__init__(data_shape, 0, arch, width, depth, norm, minibatch_kernels, minibatch_kernel_dim,
                         feature_layer, input_noise, hidden_noise, "the SSGAN discriminator")
        self.class_head = maybe_sn(nn.Linear(self.head_in, num_classes), norm)

    def forward(self, x: Tensor, y: Tensor | None = None, return_features: bool = False):
        h, feats = self._run(x, None)
        logits = self.class_head(h)
        return (logits, feats) if return_features else logits


class ProjectionDiscriminator(BigGANDiscriminator):
    """The projection cGAN's discriminator: SNGAN's residual D with the class projection.

    ``width`` channels in every block; the first ``min(k, 2)`` blocks downsample, then two
    plain blocks (for 32 px: 32 -> 16 -> 8, as in SNGAN's CIFAR D); spectral norm on every layer;
    ReLU, global sum pooling, ``linear(h) + <embed(y), h>`` (:class:`~gan_lab.networks.layers.
    ProjectionHead`). No self-attention.
    """

    def __init__(self, data_shape: tuple[int, ...], num_classes: int, width: int = 128, init: str = "default"):
        _, _, k = image_size_plan(tuple(data_shape), "the projection discriminator")
        n_down = min(k, 2)
        super().__init__(
            data_shape, num_classes, width=width, attention_resolution=None, spectral_norm=True, init=init,
            channels=[width] * (n_down + 2), downsample=[True] * n_down + [False, False],
        )
