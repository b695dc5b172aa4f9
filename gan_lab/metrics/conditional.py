"""Metrics for class-conditional generators, as plain functions (tensors in, numbers out).

Every function takes the labels the samples were *generated for* (``labels=all`` cycles through
the classes, so each class gets about n/K samples).

* :func:`cond_acc`: how often an evaluation classifier assigns a sample to the class it was
  generated for, overall and per class.
* :func:`intra_fid`: FID computed separately per class, against that class's real features,
  per class and averaged (Miyato & Koyama 2018).
* :func:`cas`: the Classification Accuracy Score (Ravuri & Vinyals 2019): a fresh classifier
  trained only on generated labelled samples, tested on real held-out data. It drops when G
  misses the variety inside a class or produces samples of the wrong class, which a single FID
  over all classes can hide.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gan_lab.metrics.domain import train_domain_classifier
from gan_lab.metrics.functional import frechet_distance, mean_cov

__all__ = ["cond_acc", "intra_fid", "cas", "CAS_DEFAULTS"]


def _labels(y, n: int, what: str) -> Tensor:
    y = torch.as_tensor(y).long().cpu().reshape(-1)
    if y.numel() != n:
        raise ValueError(f"{what}: {y.numel()} labels for {n} samples")
    return y


def _num_classes(num_classes: int | None, *labels: Tensor) -> int:
    if num_classes is not None:
        return int(num_classes)
    return int(max(int(t.max()) for t in labels if t.numel())) + 1


def cond_acc(logits, y, num_classes: int | None = None) -> dict[str, Any]:
    """Fraction of samples whose classifier prediction (argmax of ``logits`` or probabilities,
    (N, K)) equals the class ``y`` (N,) they were generated for.

    Returns ``overall`` (float), ``per_class`` (list of K floats; NaN for a class with no
    samples) and ``counts`` (samples per class).
    """
    scores = torch.as_tensor(logits).detach().cpu()
    if scores.ndim != 2:
        raise ValueError(f"cond_acc needs (N, K) logits, got shape {tuple(scores.shape)}")
    y = _labels(y, scores.shape[0], "cond_acc")
    k = int(num_classes) if num_classes is not None else max(scores.shape[1], int(y.max()) + 1 if len(y) else 0)
    hit = (scores.argmax(dim=1) == y).double()
    counts = torch.bincount(y, minlength=k)
    hits = torch.bincount(y, weights=hit, minlength=k)
    per_class = [float(hits[c] / counts[c]) if counts[c] > 0 else math.nan for c in range(k)]
    return {"overall": float(hit.mean()) if len(hit) else math.nan, "per_class": per_class,
            "counts": [int(c) for c in counts]}


def intra_fid(fake_features, fake_labels, real_features, real_labels, num_classes: int | None = None,
              *, method: str = "eigh") -> dict[str, Any]:
    """FID between generated and real features of each class, and their mean.

    ``*_features`` (N, D) with their labels (N,). For class c: ``frechet_distance`` of the mean and
    unbiased covariance (float64, :mod:`gan_lab.metrics.functional`) of the generated rows labelled
    c and of the real rows labelled c. A class with fewer than 2 rows on either side gets NaN and
    is left out of ``mean``. Returns ``mean``, ``per_class`` (K floats) and ``classes`` (how many
    classes entered the mean). Per-class FID uses fewer samples than an overall FID, so it is
    biased upwards more strongly; compare values computed with the same sample counts.
    """
    ff = torch.as_tensor(fake_features).detach()
    rf = torch.as_tensor(real_features).detach()
    fy = _labels(fake_labels, ff.shape[0], "intra_fid (generated)")
    ry = _labels(real_labels, rf.shape[0], "intra_fid (real)")
    if ff.ndim != 2 or rf.ndim != 2 or ff.shape[1] != rf.shape[1]:
        raise ValueError(f"intra_fid needs (N, D) features with the same D, got {tuple(ff.shape)}, {tuple(rf.shape)}")
    k = _num_classes(num_classes, fy, ry)
    per_class = []
    for c in range(k):
        f_c, r_c = ff[(fy == c).to(ff.device)], rf[(ry == c).to(rf.device)]
        if f_c.shape[0] < 2 or r_c.shape[0] < 2:
            per_class.append(math.nan)
            continue
        mu_f, s_f = mean_cov(f_c)
        mu_r, s_r = mean_cov(r_c)
        per_class.append(frechet_distance(mu_f, s_f, mu_r, s_r, method=method))
    valid = [v for v in per_class if not math.isnan(v)]
    if not valid:
        raise ValueError("intra_fid: no class has at least 2 generated and 2 real samples")
    return {"mean": sum(valid) / len(valid), "per_class": per_class, "classes": len(valid)}


#: CPU-sized defaults for the CAS classifier on MNIST-like 28 px data (the domain classifier's
#: recipe; all generated samples train it, the real held-out split tests it).
CAS_DEFAULTS: dict[str, Any] = {"width": 16, "feature_dim": 128, "epochs": 5, "batch_size": 64, "lr": 4e-3,
                                "max_shift": None}


@torch.no_grad()
def _accuracy(model, x: Tensor, y: Tensor, k: int, device, batch: int = 512) -> tuple[float, list[float]]:
    pred = torch.cat([model(x[i:i + batch].to(device)).argmax(1).cpu() for i in range(0, len(x), batch)])
    hit = (pred == y).double()
    counts = torch.bincount(y, minlength=k)
    hits = torch.bincount(y, weights=hit, minlength=k)
    return float(hit.mean()), [float(hits[c] / counts[c]) if counts[c] > 0 else math.nan for c in range(k)]


def cas(fake_x, fake_y, real_x, real_y, num_classes: int | None = None, *, seed: int = 0,
        device: str | torch.device = "cpu", **train_kwargs: Any) -> dict[str, Any]:
    """Classification Accuracy Score: train a fresh :class:`~gan_lab.metrics.domain.DomainClassifier`
    on the generated images ``fake_x`` (N, C, H, W) with the labels ``fake_y`` they were generated
    for, then report its accuracy on the real held-out images ``real_x`` with labels ``real_y``.

    Training is :func:`~gan_lab.metrics.domain.train_domain_classifier` with ``test_fraction=0``
    (every generated sample trains), its own generator seeded with ``seed`` (the global RNG is
    untouched) and :data:`CAS_DEFAULTS` unless overridden by ``train_kwargs``. Generated images
    are clamped to [-1, 1]. Returns ``accuracy``, ``per_class`` (K floats), ``train_seconds``,
    ``n_train`` and ``n_test``. The reference point is the same call with real training images in
    place of the generated ones (what a "perfect" generator would score).
    """
    fx = torch.as_tensor(fake_x).detach().float().cpu().clamp(-1, 1)
    rx = torch.as_tensor(real_x).detach().float().cpu()
    fy = _labels(fake_y, fx.shape[0], "cas (generated)")
    ry = _labels(real_y, rx.shape[0], "cas (real)")
    k = _num_classes(num_classes, fy, ry)
    unknown = set(train_kwargs) - set(CAS_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown CAS classifier settings: {sorted(unknown)}")
    hp = {**CAS_DEFAULTS, **train_kwargs}
    model, info = train_domain_classifier(fx, fy, num_classes=k, test_fraction=0.0, seed=seed, device=device, **hp)
    acc, per_class = _accuracy(model, rx, ry, k, device)
    return {"accuracy": acc, "per_class": per_class, "train_seconds": info["train_seconds"],
            "n_train": info["n_train"], "n_test": int(rx.shape[0])}
