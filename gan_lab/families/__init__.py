"""Model families: each one module that declares its networks, optimizer groups, updates and
phases to the engine (:mod:`gan_lab.engine`) and implements their losses and ``sample``.

A variant of a family is a config (``gan_lab/conf/model/<name>.yaml``), not a class.
"""

from gan_lab.families.aae import AdversarialAutoencoder
from gan_lab.families.adversarial import AdversarialGAN
from gan_lab.families.conditional import ConditionalGAN
from gan_lab.families.latent import GLO, GON
from gan_lab.families.stylegan import StyleGAN2
from gan_lab.families.text import PassGAN, SeqGAN, SequenceLM
from gan_lab.families.translation import CycleGAN, Pix2Pix

__all__ = ["AdversarialAutoencoder", "AdversarialGAN", "ConditionalGAN", "CycleGAN", "GLO", "GON", "PassGAN", "Pix2Pix",
           "SeqGAN", "SequenceLM", "StyleGAN2"]
