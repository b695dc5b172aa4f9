"""ResNet generator and discriminator in the SNGAN style (Miyato et al. 2018) for 32 px images.

G: z -> linear 4x4 map -> three upsampling residual blocks -> BN, ReLU, 3x3 conv, tanh.
D: an "optimized" downsampling first block, one more downsampling block, two plain blocks,
ReLU, global sum pooling and a linear head. Spectral norm on every D layer by default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gan_lab.networks.layers import ProjectionHead, check_norm, maybe_sn

SUPPORTED_SIZES = (32,)


class _GBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class _DBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, down: bool, norm: str, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = maybe_sn(nn.Conv2d(in_ch, out_ch, 3, 1, 1), norm)
        self.conv2 = maybe_sn(nn.Conv2d(out_ch, out_ch, 3, 1, 1), norm)
        self.shortcut = (
            maybe_sn(nn.Conv2d(in_ch, out_ch, 1), norm) if (in_ch != out_ch or down) else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The first block sees raw pixels, so no activation precedes its first conv.
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.shortcut is not None:
            if self.first:  # pool then conv, as in SNGAN's optimized block
                s = self.shortcut(F.avg_pool2d(s, 2) if self.down else s)
            else:
                s = self.shortcut(s)
                s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class ResNetGenerator(nn.Module):
    def __init__(self, latent_dim: int, out_channels: int, image_size: int = 32, width: int = 256):
        super().__init__()
        self.latent_dim, self.width = latent_dim, width
        self.linear = nn.Linear(latent_dim, 4 * 4 * width)
        self.blocks = nn.Sequential(*[_GBlock(width, width) for _ in range(3)])
        self.out = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, out_channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z.flatten(1)).view(z.shape[0], self.width, 4, 4)
        return self.out(self.blocks(h))


class ResNetDiscriminator(nn.Module):
    def __init__(
        self,
        in_channels: int,
        image_size: int = 32,
        width: int = 128,
        norm: str = "spectral",
        num_classes: int = 0,
    ):
        super().__init__()
        check_norm(norm)
        if norm not in ("spectral", "none"):
            # Residual SNGAN critics use no feature normalisation; keep the choice honest.
            raise ValueError("the ResNet discriminator supports norm 'spectral' or 'none'")
        self.blocks = nn.Sequential(
            _DBlock(in_channels, width, down=True, norm=norm, first=True),
            _DBlock(width, width, down=True, norm=norm),
            _DBlock(width, width, down=False, norm=norm),
            _DBlock(width, width, down=False, norm=norm),
        )
        self.head = ProjectionHead(width, num_classes, norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.head(h, y)
