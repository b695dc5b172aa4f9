"""gan_lab: a GAN laboratory on PyTorch Lightning and Hydra."""

__version__ = "0.1.0"
