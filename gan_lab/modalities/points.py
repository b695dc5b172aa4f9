"""Points: float ``(D,)`` coordinates (the 2-D mixtures); drawn as a scatter over the data."""

from __future__ import annotations

import os

import numpy as np
from torch import Tensor

from gan_lab.modalities.base import Modality


def save_scatter(samples: Tensor, path: str, real: Tensor | None = None, modes: Tensor | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if real is not None:
        r = real.detach().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=4, c="tab:blue", alpha=0.3, label="real")
    if modes is not None:
        m = modes.cpu().numpy()
        ax.scatter(m[:, 0], m[:, 1], s=60, marker="+", c="black", label="modes")
    s = samples.detach().float().cpu().numpy()
    ax.scatter(s[:, 0], s[:, 1], s=4, c="tab:red", alpha=0.6, label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


class PointsModality(Modality):
    name = "points"
    default_arch = "mlp"
    metrics = ("modes", "test_acc")
    figure_samples = 1000
    """A scatter needs more points than an image grid: sample grids draw this many."""

    def export(self, samples: Tensor, info) -> dict[str, np.ndarray]:
        return {"samples": samples.detach().float().cpu().numpy()}

    def save_figure(self, samples, path, info, *, real=None, row_labels=None, nrow=None) -> str:
        return save_scatter(samples, path, real, info.modes)
