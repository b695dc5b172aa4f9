"""Losses as small pure functions you can test alone, one module per kind.

* :mod:`.adversarial`: the D/G loss pairs and their registry (``loss=<name>``);
* :mod:`.penalties`: gradient penalties (WGAN-GP, -LP, -div, R1) and their registry.
"""

from gan_lab.losses.adversarial import LOSSES, AdversarialLoss, get_loss
from gan_lab.losses.penalties import PENALTIES, get_penalty

__all__ = ["AdversarialLoss", "LOSSES", "PENALTIES", "get_loss", "get_penalty"]
