"""What the models with codes share (the AAE family, GLO, GON): codes of real data, their
reconstructions, the metrics that read them and the pictures of them.

A model with codes maps data to a *decoder input* ``h`` (:meth:`CodeModel.decoder_input`: an
encoder's output, GLO's learned code, GON's gradient-origin latent; with the label or the
category beside it where the decoder takes one) and back (:meth:`CodeModel.decode`). On top of
those two it gets, here, once:

* :meth:`encode`: the exported ``codes`` of a batch (the style part of ``h``) and, for the
  classifying models, the ``predicted`` class (``python -m gan_lab.encode``);
* :meth:`reconstruct`, :meth:`classify` and :meth:`evaluation_sample`, whose samples carry both
  to the ``recon``, ``accuracy`` (``test_acc``) and ``cluster_acc`` metrics;
* :meth:`figures`: at every sample grid, in the grid's folder, ``reconstructions_step_*.png``
  (fixed test images above, their reconstructions below), ``interpolations_step_*.png`` (rows
  from one test image to another, decoded along the straight line between their codes) and, for
  2-D codes, ``codes_step_*.png`` (the test split's codes coloured by label over a 2-D histogram
  of the prior's samples).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from gan_lab.data.batch import Batch
from gan_lab.engine import LabModule
from gan_lab.errors import UserError

FIGURE_IMAGES = 16   # test images in the reconstruction figure
INTERPOLATION_ROWS = 5
INTERPOLATION_STEPS = 8  # decoded points per row, both ends included; the two real images flank them
SCATTER_PRIOR_SAMPLES = 20000


class CodeModel(LabModule):
    """Base of the models with codes; subclasses implement :meth:`decoder_input`,
    :meth:`decode`, :meth:`sampling_prior` and set ``code_dim``."""

    code_dim = 0
    """Size of the exported codes (the style part of the decoder input)."""
    conditional = False
    """Samples carry the labels they were drawn for (the supervised and semi-supervised AAE)."""
    has_classifier = False
    """A classifier of real data (:meth:`classify`), scored by ``test_acc`` / ``accuracy``."""
    num_clusters = 0
    """Clusters of an unsupervised clustering model (``cluster_acc``)."""
    needs_labels_to_decode = False
    """The decoder takes the label beside the code (supervised AAE)."""

    def __init__(self, name, data_info, run=None):
        super().__init__(name, data_info, run)
        self._figure_data: Batch | None = None  # fixed test images (figures)
        self._scatter_data: Batch | None = None  # the whole test split (2-D code scatter)

    # ------------------------------------------------------------------ what a subclass defines

    def decoder_input(self, x: Tensor, y: Tensor | None = None, index: Tensor | None = None,
                      split: str = "test") -> Tensor:  # pragma: no cover - abstract
        """The decoder input of real samples ``x`` (labels ``y`` where the decoder takes them;
        ``index`` into ``split`` for models with a per-image table), in eval mode, no graph."""
        raise NotImplementedError

    def decode(self, h: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Data from decoder inputs ``h``, in eval mode, no graph."""
        raise NotImplementedError

    def style(self, h: Tensor) -> Tensor:
        """The exported codes of decoder inputs ``h`` (all of it by default)."""
        return h

    def categories(self, h: Tensor) -> Tensor | None:
        """Category logits or probabilities in ``h`` (classifying models), else None."""
        return None

    def sampling_prior(self):
        """The distribution :meth:`sample` draws codes from (a :class:`gan_lab.priors.Prior`)."""
        raise NotImplementedError  # pragma: no cover - abstract

    # ------------------------------------------------------------------ derived

    def encode(self, batch: Batch, split: str = "test") -> tuple[Tensor, Tensor | None]:
        """``(codes, predicted)`` of a batch of real data: float32 codes ``(B, code_dim)`` and, for
        classifying models, int64 predicted classes (clusters for ``aae_cluster``)."""
        with self.sampling_mode(*self.nets.values()):
            h = self.decoder_input(batch.x.to(self.device), None if batch.y is None else batch.y.to(self.device),
                                   batch.index, split)
            cats = self.categories(h)
        return self.style(h).float().cpu(), None if cats is None else cats.argmax(dim=1).cpu()

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Reconstructions of real samples (of a held-out split: models with a code table infer
        their codes), on the CPU."""
        if self.needs_labels_to_decode and y is None:
            raise UserError(f"model={self.name} decodes a code with its label: reconstructions need labelled data")
        with self.sampling_mode(*self.nets.values()):
            h = self.decoder_input(x.to(self.device), None if y is None else y.to(self.device))
            return self.decode(h).float().cpu()

    @torch.no_grad()
    def classify(self, x: Tensor, batch_size: int = 500) -> Tensor:
        """Category scores ``(B, K)`` of real samples (classifying and clustering models: the
        softmax of y); their argmax is the predicted class or cluster."""
        if not (self.has_classifier or self.num_clusters):
            raise UserError(f"model={self.name} has no classifier")
        out = []
        with self.sampling_mode(*self.nets.values()):
            for start in range(0, len(x), batch_size):
                h = self.decoder_input(x[start:start + batch_size].to(self.device))
                out.append(self.categories(h).float().cpu())
        return torch.cat(out)

    def evaluation_sample(self, n: int, generator: torch.Generator, data: Any = None, *, use_ema: bool = True,
                          **options) -> Batch:
        """Samples, carrying the model's reconstruction (``recon``) and classifier (``accuracy``,
        ``cluster_acc``) to the metrics."""
        from gan_lab.metrics.encoding import SamplesWithCodes

        batch = self.sample(n, generator, use_ema=use_ema, **options)
        classifier = self.classify if (self.has_classifier or self.num_clusters) else None
        return SamplesWithCodes(batch.x, classifier, batch.y, reconstruct=self.reconstruct)

    # ------------------------------------------------------------------ pictures

    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and self._figure_data is None:
            self.set_figure_data(datamodule)

    def set_figure_data(self, data) -> None:
        """The test split (or the training set where there is none) for the figures: all of it
        for the code scatter, ``FIGURE_IMAGES`` spread over it for the other pictures."""
        from gan_lab.data.module import take

        split = "test" if "test" in data.splits else None
        dataset = data.dataset_for(split)
        self._scatter_data = take(dataset, torch.arange(len(dataset)))
        if data.info.num_classes == 0:
            self._scatter_data.y = None
        count = min(FIGURE_IMAGES, len(dataset))
        self._figure_data = self._scatter_data.select(torch.linspace(0, len(dataset) - 1, count).round().long())

    def figures(self, directory: str, step: int) -> dict[str, str]:
        if self._figure_data is None:
            return {}
        written = {}
        with self.sampling_mode(*self.nets.values()):
            if self.data_info.modality == "image":
                written["reconstructions"] = self._reconstruction_figure(directory, step)
                written["interpolations"] = self._interpolation_figure(directory, step)
            if self.code_dim == 2:
                written["codes"] = self._scatter_figure(directory, step)
        return written

    def _reconstruction_figure(self, directory: str, step: int) -> str:
        from gan_lab.modalities.image import save_image_grid

        batch = self._figure_data
        out = self.reconstruct(batch.x, batch.y)
        path = os.path.join(directory, f"reconstructions_step_{step:07d}.png")
        return save_image_grid(torch.cat([batch.x.cpu(), out]), path, nrow=len(batch))

    def _interpolation_figure(self, directory: str, step: int) -> str:
        from gan_lab.modalities.image import save_image_grid

        batch = self._figure_data
        rows = min(INTERPOLATION_ROWS, len(batch) // 2)
        a, b = batch.select(slice(0, rows)), batch.select(slice(rows, 2 * rows))
        ha = self.decoder_input(a.x.to(self.device), None if a.y is None else a.y.to(self.device))
        hb = self.decoder_input(b.x.to(self.device), None if a.y is None else a.y.to(self.device))
        t = torch.linspace(0, 1, INTERPOLATION_STEPS, device=ha.device).view(1, -1, 1)
        path_codes = (ha[:, None] + t * (hb - ha)[:, None]).flatten(0, 1)  # row-major: a pair per row
        decoded = self.decode(path_codes).float().cpu().view(rows, INTERPOLATION_STEPS, *a.x.shape[1:])
        images = torch.cat([a.x.cpu()[:, None], decoded, b.x.cpu()[:, None]], dim=1).flatten(0, 1)
        path = os.path.join(directory, f"interpolations_step_{step:07d}.png")
        return save_image_grid(images, path, nrow=INTERPOLATION_STEPS + 2)

    def _scatter_figure(self, directory: str, step: int) -> str:
        batch = self._scatter_data
        codes = torch.cat([self.encode(batch.select(slice(i, i + 500)), "test")[0]
                           for i in range(0, len(batch), 500)])
        prior, _ = self.sampling_prior().sample(SCATTER_PRIOR_SAMPLES, torch.Generator().manual_seed(0))
        path = os.path.join(directory, f"codes_step_{step:07d}.png")
        return save_code_scatter(codes, batch.y, prior, path, f"{self.name} @ step {step}: test codes over the prior")


def save_code_scatter(codes: Tensor, labels: Tensor | None, prior_samples: Tensor, path: str, title: str) -> str:
    """2-D codes as points coloured by label over a 2-D histogram (log scale) of prior samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    c, p = codes.detach().float().cpu().numpy(), prior_samples.detach().float().cpu().numpy()
    both = np.concatenate([c, p])
    lo, hi = np.percentile(both, 0.5, axis=0), np.percentile(both, 99.5, axis=0)
    pad = 0.1 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    hist, xe, ye = np.histogram2d(p[:, 0], p[:, 1], bins=80, range=[[lo[0], hi[0]], [lo[1], hi[1]]])
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=100)
    ax.imshow(np.log1p(hist.T), origin="lower", extent=(xe[0], xe[-1], ye[0], ye[-1]), cmap="Greys", aspect="auto")
    if labels is None:
        ax.scatter(c[:, 0], c[:, 1], s=5, c="tab:red", alpha=0.7)
    else:
        points = ax.scatter(c[:, 0], c[:, 1], s=5, c=labels.cpu().numpy(), cmap="tab10", alpha=0.8,
                            vmin=-0.5, vmax=9.5)
        fig.colorbar(points, ax=ax, ticks=range(10), label="label")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
