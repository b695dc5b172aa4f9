"""GAN model families. Every variant is a config of :class:`GANModule` or a short subclass."""

from gan_lab.models.base import GANModule

__all__ = ["GANModule"]
