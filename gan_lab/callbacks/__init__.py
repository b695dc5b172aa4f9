"""Training callbacks: sample grids, atomic checkpoints, a progress bar counted in steps, and
evaluation with the lab's metrics."""

from gan_lab.callbacks.checkpoint import GANCheckpoint
from gan_lab.callbacks.progress import StepProgress
from gan_lab.callbacks.samples import SampleGrid

__all__ = ["GANCheckpoint", "SampleGrid", "StepProgress"]
