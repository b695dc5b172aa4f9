"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same differentiable transformations, drawn afresh for every image, on real and on fake images
before the discriminator, in D's update and in G's: G's gradient flows through them. The policy
is a list of the paper's three groups, applied in this order:

* ``color``: brightness ``x + (u - 0.5)``, saturation ``(x - mean_c) * 2u + mean_c``, contrast
  ``(x - mean) * (u + 0.5) + mean`` (u uniform in [0, 1) per image; images in [-1, 1]);
* ``translation``: an integer shift of up to ``translation_ratio`` of the size on each axis,
  zero-filled;
* ``cutout``: a square of ``cutout_ratio`` of the size set to zero at a random position (it may
  reach over the border).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

POLICIES = ("color", "translation", "cutout")


class DiffAugment(nn.Module):
    """``augment(*images)``: every tensor (B, C, H, W) gets the same draws (so an image and its
    condition stay aligned); a new call draws anew."""

    adaptive = False

    def __init__(self, policy: list[str] | tuple[str, ...] = POLICIES, translation_ratio: float = 0.125,
                 cutout_ratio: float = 0.5):
        super().__init__()
        self.policy = tuple(policy)
        self.translation_ratio, self.cutout_ratio = float(translation_ratio), float(cutout_ratio)

    def draw(self, b: int, h: int, w: int, device) -> dict[str, Tensor]:
        """The random numbers of one call, from the global torch stream (checkpointed with the run)."""
        params: dict[str, Tensor] = {}
        if "color" in self.policy:
            params["color"] = torch.rand(b, 3, 1, 1, 1, device=device)  # brightness, saturation, contrast
        if "translation" in self.policy:
            sx, sy = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
            params["shift"] = torch.stack([torch.randint(-sx, sx + 1, (b,), device=device),
                                           torch.randint(-sy, sy + 1, (b,), device=device)], dim=1)
        if "cutout" in self.policy:
            ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
            params["cutout"] = torch.stack([torch.randint(0, h + (1 - ch % 2), (b,), device=device),
                                            torch.randint(0, w + (1 - cw % 2), (b,), device=device)], dim=1)
        return params

    def apply(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        if "color" in params:
            u = params["color"].to(x.dtype)
            x = x + (u[:, 0] - 0.5)
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (u[:, 1] * 2) + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (u[:, 2] + 0.5) + mean
        if "shift" in params:
            x = translate(x, params["shift"])
        if "cutout" in params:
            x = cutout(x, params["cutout"], self.cutout_ratio)
        return x

    def forward(self, *images: Tensor):
        b, _, h, w = images[0].shape
        params = self.draw(b, h, w, images[0].device)
        out = tuple(self.apply(x, params) for x in images)
        return out[0] if len(out) == 1 else out

    def observe(self, real_logits: Tensor) -> None:
        """A fixed policy learns nothing from D's outputs."""

    def log_values(self) -> dict[str, float]:
        return {}


def translate(x: Tensor, shift: Tensor) -> Tensor:
    """``x`` moved by ``shift`` (B, 2: rows, columns) pixels, the uncovered area zero."""
    b, _, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :] - shift[:, :1]  # (B, H): source row of each output row
    cols = torch.arange(w, device=x.device)[None, :] - shift[:, 1:]
    valid = ((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :]
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    out = x.gather(2, rows[:, None, :, None].expand(-1, x.shape[1], -1, w))
    out = out.gather(3, cols[:, None, None, :].expand(-1, x.shape[1], h, -1))
    return out * valid.to(x.dtype)


def cutout(x: Tensor, centre: Tensor, ratio: float) -> Tensor:
    """``x`` with a (ratio*H) x (ratio*W) square centred at ``centre`` (B, 2) set to zero."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    top, left = centre[:, :1] - ch // 2, centre[:, 1:] - cw // 2
    inside = ((rows >= top) & (rows < top + ch))[:, :, None] & ((cols >= left) & (cols < left + cw))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)
