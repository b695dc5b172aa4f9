"""Images: float ``(C, H, W)`` in [-1, 1]; exported as uint8, drawn as a grid."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from gan_lab.modalities.base import Modality


def to_uint8(images: Tensor) -> np.ndarray:
    """[-1, 1] floats to uint8 0..255 (what saving a PNG gives)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def save_image_grid(images: Tensor, path: str, nrow: int | None = None, row_labels: list[str] | None = None) -> str:
    """A grid PNG of [-1, 1] images, ``nrow`` per row (default: a square), with an optional label
    left of every row."""
    import torchvision.utils

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    nrow = nrow or max(1, int(round(images.shape[0] ** 0.5)))
    grid = torchvision.utils.make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1))
    if not row_labels:
        torchvision.utils.save_image(grid, path)
        return path
    from PIL import Image, ImageDraw

    body = Image.fromarray(grid.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy())
    cell = (grid.shape[1] - 2) // len(row_labels)
    margin = 8 + 7 * max(len(label) for label in row_labels)
    canvas = Image.new("RGB", (body.width + margin, body.height), "white")
    canvas.paste(body, (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(row_labels):
        draw.text((4, 2 + i * cell + cell // 2 - 5), label, fill="black")
    canvas.save(path)
    return path


class ImageModality(Modality):
    name = "image"
    default_arch = "dcgan"
    metrics = ("fid", "is", "kid", "pr", "class", "cond_acc", "intra_fid", "cas", "test_acc")

    def export(self, samples: Tensor, info) -> dict[str, np.ndarray]:
        return {"samples": to_uint8(samples)}

    def save_figure(self, samples, path, info, *, real=None, row_labels=None, nrow=None) -> str:
        return save_image_grid(samples, path, nrow=nrow, row_labels=row_labels)
