"""Training callbacks: sample grids, atomic checkpoints and a progress bar counted in G steps."""

from gan_lab.callbacks.checkpoint import GANCheckpoint
from gan_lab.callbacks.progress import StepProgress
from gan_lab.callbacks.samples import SampleGrid, save_samples_figure

__all__ = ["GANCheckpoint", "SampleGrid", "StepProgress", "save_samples_figure"]
