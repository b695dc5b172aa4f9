"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"): the ``bgc`` pipeline with one probability ``p`` for every
transformation, adjusted during training from the discriminator's outputs on real images.

Each transformation is applied to each image independently with probability ``p`` (rotations:
twice, each with ``1 - sqrt(1 - p)``), in the paper's order:

* blit: x-flip, rotation by a multiple of 90 degrees, integer translation (up to 1/8 of the size);
* geometric: isotropic scaling (log2-normal, std 0.2), arbitrary rotation, anisotropic scaling
  (std 0.2), fractional translation (normal, std 1/8 of the size); all geometric and blit
  transformations are composed into one affine map and applied by one bilinear resampling with
  reflection at the borders;
* colour (on RGB; grey images as equal R, G, B, averaged back): brightness (normal, std 0.2),
  contrast (log2-normal, std 0.5), luma flip, hue rotation (uniform over the circle), saturation
  (log2-normal, std 1), composed into one 4x4 matrix.

The original resamples through a wavelet low-pass filter at 2x resolution; this one uses plain
bilinear sampling, a simplification.

The heuristic: ``r_t = E[sign(D(x_real))]`` over the last ``interval`` D updates (all processes);
``p += sign(r_t - target) * (images in those updates) / (speed_kimg * 1000)``, kept in [0, 1]. So
``p`` can go from 0 to 1 in ``speed_kimg`` thousand real images. ``p``, the sums and the count are
buffers: saved in checkpoints (resumes continue exactly), identical on every DDP rank.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _rotation(theta: Tensor) -> Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    z, o = torch.zeros_like(theta), torch.ones_like(theta)
    return torch.stack([torch.stack([c, -s, z], -1), torch.stack([s, c, z], -1), torch.stack([z, z, o], -1)], -2)


def _scale(sx: Tensor, sy: Tensor) -> Tensor:
    z, o = torch.zeros_like(sx), torch.ones_like(sx)
    return torch.stack([torch.stack([sx, z, z], -1), torch.stack([z, sy, z], -1), torch.stack([z, z, o], -1)], -2)


def _translation(tx: Tensor, ty: Tensor) -> Tensor:
    z, o = torch.zeros_like(tx), torch.ones_like(tx)
    return torch.stack([torch.stack([o, z, tx], -1), torch.stack([z, o, ty], -1), torch.stack([z, z, o], -1)], -2)


class AdaptiveAugment(nn.Module):
    """``augment(*images)`` with probability ``p`` (every tensor gets the same draws); ``observe``
    feeds D's real logits to the heuristic (``target=None``: a fixed ``p``)."""

    adaptive = True

    def __init__(self, target: float | None = 0.6, interval: int = 4, speed_kimg: float = 500.0,
                 initial_p: float = 0.0, xint_max: float = 0.125, scale_std: float = 0.2, rotate_max: float = 1.0,
                 aniso_std: float = 0.2, xfrac_std: float = 0.125, brightness_std: float = 0.2,
                 contrast_std: float = 0.5, hue_max: float = 1.0, saturation_std: float = 1.0):
        super().__init__()
        self.target, self.interval, self.speed_kimg = target, int(interval), float(speed_kimg)
        self.xint_max, self.scale_std, self.rotate_max = xint_max, scale_std, rotate_max
        self.aniso_std, self.xfrac_std = aniso_std, xfrac_std
        self.brightness_std, self.contrast_std = brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std
        self.register_buffer("p", torch.tensor(float(initial_p)))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sign_count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("observed", torch.zeros((), dtype=torch.int64))
        self.register_buffer("last_rt", torch.zeros(()))

    # ------------------------------------------------------------------ the heuristic

    def observe(self, real_logits: Tensor) -> None:
        """Add the signs of D's outputs on a real batch; every ``interval`` calls adjust ``p``."""
        if self.target is None:
            return
        logits = real_logits.detach().float().flatten()
        self.sign_sum += logits.sign().sum().double()
        self.sign_count += logits.numel()
        self.observed += 1
        if int(self.observed) % self.interval:
            return
        stats = torch.stack([self.sign_sum, self.sign_count])
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            torch.distributed.all_reduce(stats)
        self.adjust(float(stats[0] / stats[1]), float(stats[1]))
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def adjust(self, rt: float, images: float) -> None:
        """``p += sign(rt - target) * images / (speed_kimg * 1000)``, clamped to [0, 1]."""
        step = math.copysign(1.0, rt - self.target) if rt != self.target else 0.0
        self.p.copy_((self.p + step * images / (self.speed_kimg * 1000.0)).clamp(0.0, 1.0))
        self.last_rt.fill_(rt)

    def log_values(self) -> dict[str, float]:
        values = {"augment/p": float(self.p)}
        if self.target is not None:
            values["augment/rt"] = float(self.last_rt)
        return values

    # ------------------------------------------------------------------ the pipeline

    def draw(self, b: int, h: int, w: int, device) -> dict[str, Tensor]:
        p = float(self.p)

        def chosen(prob: float = p) -> Tensor:
            return (torch.rand(b, device=device) < prob).float()

        eye = torch.eye(3, device=device).expand(b, 3, 3)
        g = eye
        # blit: flip, quarter turns, integer translation (normalised coordinates: 2 px / size per px)
        g = g @ _scale(1 - 2 * torch.floor(torch.rand(b, device=device) * 2) * chosen(), torch.ones(b, device=device))
        g = g @ _rotation(torch.floor(torch.rand(b, device=device) * 4) * chosen() * (math.pi / 2))
        t = (torch.rand(b, 2, device=device) * 2 - 1) * self.xint_max
        t = t * chosen()[:, None]
        g = g @ _translation(torch.round(t[:, 0] * w) * 2 / w, torch.round(t[:, 1] * h) * 2 / h)
        # geometric
        s = torch.exp2(torch.randn(b, device=device) * self.scale_std * chosen())
        g = g @ _scale(s, s)
        p_rot = 1 - math.sqrt(max(1 - p, 0.0))
        g = g @ _rotation((torch.rand(b, device=device) * 2 - 1) * math.pi * self.rotate_max * chosen(p_rot))
        s = torch.exp2(torch.randn(b, device=device) * self.aniso_std * chosen())
        g = g @ _scale(s, 1 / s)
        g = g @ _rotation((torch.rand(b, device=device) * 2 - 1) * math.pi * self.rotate_max * chosen(p_rot))
        t = torch.randn(b, 2, device=device) * self.xfrac_std * chosen()[:, None]
        g = g @ _translation(t[:, 0] * 2, t[:, 1] * 2)
        # colour, on homogeneous RGB
        c = torch.eye(4, device=device).expand(b, 4, 4)
        v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
        vv = torch.outer(v, v)
        eye4 = torch.eye(4, device=device)
        bright = torch.randn(b, device=device) * self.brightness_std * chosen()
        shift = eye4.repeat(b, 1, 1)
        shift[:, :3, 3] = bright[:, None]
        c = shift @ c
        contrast = torch.exp2(torch.randn(b, device=device) * self.contrast_std * chosen())
        scale = eye4.repeat(b, 1, 1)
        scale[:, 0, 0] = scale[:, 1, 1] = scale[:, 2, 2] = contrast
        c = scale @ c
        flip = torch.floor(torch.rand(b, device=device) * 2) * chosen()
        c = (eye4 - 2 * vv * flip[:, None, None]) @ c
        theta = (torch.rand(b, device=device) * 2 - 1) * math.pi * self.hue_max * chosen()
        c = _rotate_about(v[:3], theta, device) @ c
        sat = torch.exp2(torch.randn(b, device=device) * self.saturation_std * chosen())
        c = (vv + (eye4 - vv) * sat[:, None, None]) @ c
        return {"geometry": g, "colour": c}

    def apply(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        b, ch, h, w = x.shape
        theta = params["geometry"][:, :2, :].to(x.dtype)
        grid = F.affine_grid(theta, [b, ch, h, w], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        c = params["colour"].to(x.dtype)
        if ch == 3:
            x = (c[:, :3, :3] @ x.reshape(b, 3, h * w) + c[:, :3, 3:]).reshape(b, 3, h, w)
        elif ch == 1:  # grey as R = G = B, the output the mean of the three
            rows = c[:, :3, :].mean(dim=1, keepdim=True)
            x = x * rows[:, :, :3].sum(dim=2, keepdim=True)[..., None] + rows[:, :, 3:][..., None]
        return x

    def forward(self, *images: Tensor):
        if float(self.p) <= 0.0:  # nothing to apply (nothing drawn either)
            return images[0] if len(images) == 1 else images
        b, _, h, w = images[0].shape
        params = self.draw(b, h, w, images[0].device)
        out = tuple(self.apply(x, params) for x in images)
        return out[0] if len(out) == 1 else out


def _rotate_about(axis: Tensor, theta: Tensor, device) -> Tensor:
    """4x4 rotations by ``theta`` (B,) about the unit 3-vector ``axis`` (Rodrigues' formula)."""
    x, y, z = axis.tolist()
    k = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], device=device)
    kk = k @ k
    r = torch.eye(3, device=device) + torch.sin(theta)[:, None, None] * k + (1 - torch.cos(theta))[:, None, None] * kk
    out = torch.eye(4, device=device).repeat(theta.shape[0], 1, 1)
    out[:, :3, :3] = r
    return out
