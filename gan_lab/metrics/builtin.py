"""The lab's image and 2-D metrics, registered by name: fid, is, kid, pr, class, modes.

Each wraps a DDP-synchronised state (:mod:`gan_lab.metrics.states`,
:mod:`gan_lab.metrics.diagnostics`) whose ``compute`` is one of the float64 formulas of
:mod:`gan_lab.metrics.functional`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_lab.errors import UserError
from gan_lab.metrics.diagnostics import ClassDiagnostics, ModeCoverage
from gan_lab.metrics.registry import EvalContext, FakeBatch, register_metric
from gan_lab.metrics.states import FID, KID, InceptionScoreMetric, PrecisionRecall


class _RealFakeFeatures:
    """A metric fed real and fake extractor features (FID, KID, precision/recall)."""

    state = None

    def update_real(self, features: Tensor, labels: Tensor | None) -> None:
        self.state.update(features, real=True)

    def update(self, fake: FakeBatch) -> None:
        self.state.update(fake.features, real=False)


@register_metric("fid", keys=("fid",), needs={"features", "real"}, modalities=("image",),
                 summary="Fréchet distance between Gaussian fits of real and generated features")
class FIDMetric(_RealFakeFeatures):
    def __init__(self, ctx: EvalContext, method: str = "eigh"):
        self.state = FID(ctx.extractor.num_features, method=method).to(ctx.device)

    def compute(self) -> dict[str, float]:
        return {"fid": float(self.state.compute())}


@register_metric("kid", keys=("kid_mean", "kid_std"), needs={"features", "real"}, modalities=("image",),
                 summary="unbiased MMD² with a polynomial kernel over random subsets")
class KIDMetric(_RealFakeFeatures):
    def __init__(self, ctx: EvalContext, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                 gamma: float | None = None, coef: float = 1.0):
        self.state = KID(ctx.extractor.num_features, subsets=subsets, subset_size=subset_size, degree=degree,
                         gamma=gamma, coef=coef, seed=ctx.seed).to(ctx.device)

    def compute(self) -> dict[str, float]:
        mean, std = self.state.compute()
        return {"kid_mean": float(mean), "kid_std": float(std)}


@register_metric("pr", keys=("precision", "recall"), needs={"features", "real"}, modalities=("image",),
                 aliases=("precision_recall", "prc"), summary="k-NN manifold precision and recall")
class PRMetric(_RealFakeFeatures):
    def __init__(self, ctx: EvalContext, k: int = 3, batch_size: int = 1024):
        self.state = PrecisionRecall(k=k, batch_size=batch_size).to(ctx.device)

    def compute(self) -> dict[str, float]:
        precision, recall = self.state.compute()
        return {"precision": float(precision), "recall": float(recall)}


@register_metric("is", keys=("is_mean", "is_std"), needs={"logits"}, modalities=("image",),
                 aliases=("inception_score", "isc"), summary="Inception Score from the extractor's class logits")
class ISMetric:
    def __init__(self, ctx: EvalContext, splits: int = 10):
        self.state = InceptionScoreMetric(ctx.extractor.num_classes, splits=splits).to(ctx.device)

    def update(self, fake: FakeBatch) -> None:
        self.state.update(fake.logits)

    def compute(self) -> dict[str, float]:
        mean, std = self.state.compute()
        return {"is_mean": float(mean), "is_std": float(std)}


@register_metric("class", keys=("quality", "diversity", "classes_covered", "class_kl"), needs={"logits", "real"},
                 modalities=("image",), aliases=("class_diagnostics",),
                 summary="what the extractor's classifier says: confidence, class spread, classes hit, class KL")
class ClassMetric:
    def __init__(self, ctx: EvalContext):
        hist = ctx.real.get("class_hist") if ctx.real else None
        self.state = ClassDiagnostics(ctx.extractor.num_classes, hist).to(ctx.device)

    def update_real(self, features: Tensor, labels: Tensor | None) -> None:
        pass  # uses the real class histogram only

    def update(self, fake: FakeBatch) -> None:
        self.state.update(fake.logits)

    def compute(self) -> dict[str, float]:
        v = self.state.compute()
        return {"quality": float(v["quality"]), "diversity": float(v["diversity"]),
                "classes_covered": float(v["classes_covered"]), "class_kl": float(v["kl"])}


@register_metric("modes", keys=("modes_captured", "high_quality_frac", "mode_kl"), needs={"samples"},
                 modalities=("points",), aliases=("mode_stats",),
                 summary="PacGAN's 2-D protocol: modes captured, high-quality share, KL from uniform")
class ModesMetric:
    def __init__(self, ctx: EvalContext, modes=None, std: float | None = None, hq_sigmas: float = 3.0):
        info = ctx.info
        if modes is None and info is not None:
            modes = info.modes
        if std is None and info is not None:
            std = info.mode_std
        if modes is None or std is None:
            raise UserError("metric 'modes' needs the mixture's means and std: metrics.modes.modes=[[x, y], ...] "
                            "metrics.modes.std=... (the 2-D mixtures ring8 and grid25 provide them)")
        self.device = ctx.device
        self.state = ModeCoverage(torch.as_tensor(modes, dtype=torch.float64), std, hq_sigmas).to(ctx.device)

    def update(self, fake: FakeBatch) -> None:
        self.state.update(fake.x.detach().to(self.device).double())

    def compute(self) -> dict[str, float]:
        v = self.state.compute()
        return {"modes_captured": float(v["modes_captured"]), "high_quality_frac": float(v["high_quality_frac"]),
                "mode_kl": float(v["kl"])}
