"""Mode-collapse and mode-dropping diagnostics as torchmetrics ``Metric``s.

* :class:`ClassDiagnostics` — what a classifier (Inception or the domain classifier) says about
  generated images: confidence (quality), spread over classes (diversity), number of classes
  produced, and KL of the produced class histogram from the real one. Mode dropping shows up as
  ``classes_covered`` below the number of classes and a large ``kl``; collapse as low
  ``diversity``.
* :class:`ModeCoverage` — the VEEGAN/PacGAN protocol for 2-D Gaussian mixtures (8-Gaussian ring,
  25-Gaussian grid): modes captured, share of high-quality samples, KL from uniform.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from gan_lab.metrics import functional as Fn

__all__ = ["ClassDiagnostics", "ModeCoverage"]


class ClassDiagnostics(Metric):
    """``update(logits)`` with generated samples' (B, K) logits; ``compute()`` → dict of tensors
    (``quality``, ``diversity``, ``classes_covered``, ``kl``) — see
    :func:`gan_lab.metrics.functional.class_diagnostics`.

    ``data_class_hist`` (K,) is the real data's class histogram (counts or frequencies), e.g. the
    classifier's predictions on real images; ``None`` compares with a uniform histogram.
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, num_classes: int, data_class_hist: Tensor | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        hist = torch.ones(self.num_classes) if data_class_hist is None else torch.as_tensor(data_class_hist).double()
        if hist.numel() != self.num_classes:
            raise ValueError(f"data_class_hist has {hist.numel()} bins, expected {self.num_classes}")
        self.data_class_hist = hist.double().cpu()
        self.add_state("logits", [], dist_reduce_fx="cat")

    def update(self, logits: Tensor) -> None:
        self.logits.append(logits.detach())

    def compute(self) -> dict[str, Tensor]:
        logits = dim_zero_cat(self.logits).double()
        out = Fn.class_diagnostics(torch.softmax(logits, dim=1), self.data_class_hist.to(logits.device))
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}


class ModeCoverage(Metric):
    """``update(points)`` with (B, D) generated points; ``compute()`` → dict of tensors
    (``modes_captured``, ``high_quality_frac``, ``kl``) — see
    :func:`gan_lab.metrics.functional.mode_stats_2d`.
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, modes: Tensor, std: float, hq_sigmas: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.modes = torch.as_tensor(modes, dtype=torch.float64).cpu()
        self.std = float(std)
        self.hq_sigmas = float(hq_sigmas)
        self.add_state("points", [], dist_reduce_fx="cat")

    def update(self, points: Tensor) -> None:
        self.points.append(points.detach().reshape(points.shape[0], -1))

    def compute(self) -> dict[str, Tensor]:
        pts = dim_zero_cat(self.points).double()
        out = Fn.mode_stats_2d(pts, self.modes.to(pts.device), self.std, self.hq_sigmas)
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}
