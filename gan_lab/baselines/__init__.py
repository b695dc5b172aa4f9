"""Non-GAN baselines the lab's models are compared with (character Markov models of passwords)."""

from gan_lab.baselines.markov import NgramMarkov, PerPositionMarkov

__all__ = ["NgramMarkov", "PerPositionMarkov"]
