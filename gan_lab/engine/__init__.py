"""The engine: one training loop for every family (see :mod:`gan_lab.engine.module`)."""

from gan_lab.engine.module import LabModule
from gan_lab.engine.spec import EMASpec, OptimGroup, Phase, RunOptions, Update

__all__ = ["EMASpec", "LabModule", "OptimGroup", "Phase", "RunOptions", "Update"]
