"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture for GANs").

For pairs of latents and ``t`` uniform in [0, 1], the images at ``t`` and ``t + epsilon`` along the
path between them (linear in W, spherical in Z) are compared: ``d(G(t), G(t + eps)) / eps^2``; PPL
is the mean after dropping the values below the 1st and above the 99th percentile (as the paper's
code). The paper's ``d`` is LPIPS (VGG-16 features); here it is the squared Euclidean distance of
the run's evaluation feature extractor's features (``feature=domain`` on CPU; a TorchScript VGG
such as StyleGAN2-ADA's ``vgg16.pt`` via ``feature=torchscript``, see conf/metrics/ppl.yaml), so
PPL values compare only between runs scored with the same extractor.

The model provides the image pairs: its ``evaluation_sample`` returns :class:`SamplesWithPaths`,
whose ``path_pairs(n, space=, epsilon=, sampling=)`` draws them from the evaluation's own seeded
generator (StyleGAN: :meth:`gan_lab.families.stylegan.StyleGAN2.path_pairs`). One pair per
generated sample of the evaluation (``num_samples`` / ``n``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from gan_lab import checks
from gan_lab.data.batch import Batch
from gan_lab.errors import UserError
from gan_lab.metrics.registry import EvalContext, FakeBatch, register_metric


class SamplesWithPaths(Batch):
    """Samples that also carry the model's path-pair sampler (``path_pairs(n, **options) ->
    (images at t, images at t + epsilon)``), which ``ppl`` scores."""

    def __init__(self, x: Tensor, path_pairs, y: Tensor | None = None):
        super().__init__(x, y)
        self.path_pairs = path_pairs


def filtered_mean(values: np.ndarray, low: float = 1.0, high: float = 99.0) -> float:
    """The mean of ``values`` between their ``low``-th (rounded down to a value) and ``high``-th
    (rounded up) percentiles, inclusive: the paper's outlier filter."""
    lo = np.percentile(values, low, method="lower")
    hi = np.percentile(values, high, method="higher")
    return float(values[(values >= lo) & (values <= hi)].mean())


class _Distances(Metric):
    full_state_update = False
    is_differentiable = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("values", [], dist_reduce_fx="cat")

    def update(self, values: Tensor) -> None:
        self.values.append(values.detach().double())

    def compute(self) -> Tensor:
        return dim_zero_cat(self.values)


@register_metric("ppl", keys=("ppl_w", "ppl_z"), needs={"features"}, modalities=("image",),
                 aliases=("path_length",), summary="perceptual path length in W or Z (distance: the feature extractor)")
class PerceptualPathLength:
    def __init__(self, ctx: EvalContext, space: str = "w", epsilon: float = 1e-4, sampling: str = "full",
                 batch_size: int = 100):
        self.space = checks.choice(space, "metrics.ppl.space", ("w", "z"))
        self.epsilon = checks.number(epsilon, "metrics.ppl.epsilon", positive=True)
        self.sampling = checks.choice(sampling, "metrics.ppl.sampling", ("full", "end"))
        self.batch_size = checks.integer(batch_size, "metrics.ppl.batch_size", minimum=1)
        self.extractor, self.device = ctx.extractor, ctx.device
        self.state = _Distances().to(ctx.device)

    def features(self, images: Tensor) -> Tensor:
        out = [self.extractor(chunk.to(self.device, torch.float32).clamp(-1, 1)).features.double()
               for chunk in images.split(self.extractor.chunk_size(self.batch_size))]
        return torch.cat(out)

    def update(self, fake: FakeBatch) -> None:
        pairs = getattr(fake.batch, "path_pairs", None)
        if pairs is None:
            raise UserError("metric 'ppl' needs a model with a mapping network (model=stylegan)")
        a, b = pairs(len(fake.x), space=self.space, epsilon=self.epsilon, sampling=self.sampling)
        with torch.inference_mode():
            d = (self.features(a) - self.features(b)).square().sum(dim=1) / self.epsilon**2
        self.state.update(d)

    def compute(self) -> dict[str, float]:
        values = self.state.compute().cpu().numpy()
        return {f"ppl_{self.space}": filtered_mean(values)}
