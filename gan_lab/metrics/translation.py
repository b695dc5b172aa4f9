"""Translation quality as plain functions: tensors in, numbers (or per-image tensors) out.

Images are ``(N, C, H, W)`` in [-1, 1] (what the generators output and the data sets give).
Each function has a per-image form (``reduction="none"``: a float64 ``(N,)`` tensor, for
accumulating over batches and processes) and a mean form (``reduction="mean"``: a Python float).

* :func:`l1_distance`: mean absolute difference per image, in the [-1, 1] scale (so 0..2).
* :func:`psnr`: peak signal-to-noise ratio per image in dB, ``10 log10(R^2 / MSE)`` with the data
  range ``R = 2`` (images in [-1, 1]; the same value as PSNR on [0, 1] images with R = 1, or on
  0..255 with R = 255). An image identical to its target has MSE 0 and infinite PSNR; every
  image's PSNR is capped at :data:`PSNR_CAP_DB` = 100 dB (an MSE of 4e-10, far below 8-bit
  quantisation, 1/127.5^2 / 12 ~ 5e-6), so means stay finite. The mean form averages the
  per-image values (as the translation literature reports PSNR), not the PSNR of the pooled MSE.
* :func:`ssim`: structural similarity per image (torchmetrics' functional SSIM: Gaussian window
  11 px, sigma 1.5, K1 = 0.01, K2 = 0.03), with ``data_range=(-1, 1)``: values are clamped to
  [-1, 1] and the range is 2, so ``C1 = (0.01 * 2)^2``, ``C2 = (0.03 * 2)^2``. Multi-channel
  images average over channels. Images must be at least 11 px on each side.
* :func:`label_kept`: share of outputs a classifier assigns the input's label, given the
  classifier's logits on the outputs (argmax; ties go to the lowest class, as ``argmax``).
* :func:`cycle_l1`: mean absolute difference between inputs and their round trips
  ``F(G(x))`` (the same computation as :func:`l1_distance`, named for what it measures).

Everything is computed in float64.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

PSNR_CAP_DB = 100.0
DATA_RANGE = (-1.0, 1.0)
Reduction = Literal["mean", "none"]

__all__ = ["DATA_RANGE", "PSNR_CAP_DB", "cycle_l1", "l1_distance", "label_kept", "psnr", "ssim"]


def _pair(outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in shape")
    if outputs.dim() != 4 or outputs.shape[0] == 0:
        raise ValueError(f"expected a non-empty (N, C, H, W) batch, got {tuple(outputs.shape)}")
    return outputs.detach().to(torch.float64), targets.detach().to(torch.float64)


def _reduce(values: Tensor, reduction: Reduction) -> Tensor | float:
    if reduction == "none":
        return values
    if reduction == "mean":
        return float(values.mean())
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def l1_distance(outputs: Tensor, targets: Tensor, reduction: Reduction = "mean") -> Tensor | float:
    """Mean ``|output - target|`` per image (the [-1, 1] scale)."""
    o, t = _pair(outputs, targets)
    return _reduce((o - t).abs().flatten(1).mean(dim=1), reduction)


def psnr(outputs: Tensor, targets: Tensor, reduction: Reduction = "mean",
         cap_db: float = PSNR_CAP_DB) -> Tensor | float:
    """PSNR per image in dB for the data range [-1, 1], capped at ``cap_db`` (module docstring)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    o, t = _pair(outputs, targets)
    values = peak_signal_noise_ratio(o, t, data_range=DATA_RANGE[1] - DATA_RANGE[0], reduction="none",
                                     dim=(1, 2, 3))
    return _reduce(values.clamp(max=cap_db), reduction)


def ssim(outputs: Tensor, targets: Tensor, reduction: Reduction = "mean") -> Tensor | float:
    """SSIM per image (torchmetrics, ``data_range=(-1, 1)``; module docstring)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    o, t = _pair(outputs, targets)
    if min(o.shape[-2:]) < 11:
        raise ValueError(f"SSIM's 11 px window needs images of at least 11x11, got {tuple(o.shape[-2:])}")
    values = structural_similarity_index_measure(o, t, data_range=DATA_RANGE, reduction="none")
    return _reduce(values, reduction)


def label_kept(logits: Tensor, labels: Tensor, reduction: Reduction = "mean") -> Tensor | float:
    """Share of outputs whose predicted class (``argmax`` of a classifier's ``logits`` ``(N, K)``)
    equals the input's label ``labels`` ``(N,)``; per-image 1.0/0.0 with ``reduction="none"``."""
    if logits.dim() != 2 or labels.shape != logits.shape[:1] or logits.shape[0] == 0:
        raise ValueError(f"expected logits (N, K) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    kept = logits.detach().argmax(dim=1) == labels.detach().to(device=logits.device, dtype=torch.int64)
    return _reduce(kept.to(torch.float64), reduction)


def cycle_l1(inputs: Tensor, reconstructions: Tensor, reduction: Reduction = "mean") -> Tensor | float:
    """Mean ``|F(G(x)) - x|`` per image: how far translating there and back lands from the input."""
    return l1_distance(reconstructions, inputs, reduction)


# ------------------------------------------------------------------------------------------------
# registered metrics: ``metrics=[l1,psnr,ssim,label_kept,cycle_l1]`` on translation models
# ------------------------------------------------------------------------------------------------
from torchmetrics import Metric  # noqa: E402

from gan_lab.errors import UserError  # noqa: E402
from gan_lab.metrics.registry import EvalContext, FakeBatch, register_metric  # noqa: E402


class _PerImageMean(Metric):
    """Sum and count of a per-image value (states summed across DDP ranks: a mean over all)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: Tensor) -> None:
        self.total += values.to(self.total.device, torch.float64).sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        return self.total / self.count


def _require(ctx: EvalContext, name: str, pairing: str | None) -> None:
    info = ctx.info
    if info is not None and (info.pairing is None or (pairing is not None and info.pairing != pairing)):
        need = f"{pairing} translation data" if pairing else "translation data (paired or unpaired)"
        raise UserError(f"metric '{name}' needs {need}; data {info.name} is "
                        f"{'pairing ' + info.pairing if info.pairing else 'not a translation set'}")


class _TranslationMetric:
    key = "value"
    pairing: str | None = "paired"

    def __init__(self, ctx: EvalContext) -> None:
        _require(ctx, self.key, self.pairing)
        self.state = _PerImageMean().to(ctx.device)

    def values(self, fake: FakeBatch) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self, fake: FakeBatch) -> None:
        self.state.update(self.values(fake))

    def compute(self) -> dict[str, float]:
        return {self.key: float(self.state.compute())}


def _targets(fake: FakeBatch) -> Tensor:
    target = getattr(fake.batch, "target", None)
    if target is None:
        raise UserError("this metric compares outputs with their targets: the model's samples carry none")
    return target.to(fake.x.device)


@register_metric("l1", keys=("l1",), needs={"samples"}, modalities=("image",),
                 summary="mean |output - target| of test translations (paired data)")
class L1Metric(_TranslationMetric):
    key = "l1"

    def values(self, fake):
        return l1_distance(fake.x, _targets(fake), "none")


@register_metric("psnr", keys=("psnr",), needs={"samples"}, modalities=("image",),
                 summary="PSNR (dB, range 2, capped at 100) of test translations against their targets")
class PSNRMetric(_TranslationMetric):
    key = "psnr"

    def values(self, fake):
        return psnr(fake.x, _targets(fake), "none")


@register_metric("ssim", keys=("ssim",), needs={"samples"}, modalities=("image",),
                 summary="SSIM of test translations against their targets")
class SSIMMetric(_TranslationMetric):
    key = "ssim"

    def values(self, fake):
        return ssim(fake.x, _targets(fake), "none")


@register_metric("label_kept", keys=("label_kept",), needs={"logits"}, modalities=("image",),
                 summary="share of translations the target domain's classifier gives the input's label")
class LabelKeptMetric(_TranslationMetric):
    key = "label_kept"
    pairing = None

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        if ctx.info is not None and ctx.info.num_classes == 0:
            raise UserError(f"metric 'label_kept' needs labels; data {ctx.info.name} has none")

    def values(self, fake):
        if fake.y is None:
            raise UserError("metric 'label_kept' needs the inputs' labels: the model's samples carry none")
        return label_kept(fake.logits, fake.y.to(fake.logits.device), "none")


@register_metric("cycle_l1", keys=("cycle_l1",), needs={"samples"}, modalities=("image",),
                 summary="mean |G_BA(G_AB(a)) - a| of test inputs (unpaired data)")
class CycleL1Metric(_TranslationMetric):
    key = "cycle_l1"
    pairing = "unpaired"

    def values(self, fake):
        batch = fake.batch
        if getattr(batch, "reconstruction", None) is None:
            raise UserError("metric 'cycle_l1' needs the round trip F(G(x)): a CycleGAN model gives it")
        return cycle_l1(batch.inputs.to(fake.x.device), batch.reconstruction.to(fake.x.device), "none")
