"""Modalities: what one sample is, and everything that follows from it.

Each modality (``DataInfo.modality``) owns how its samples are exported (the ``.npz``/``.txt``
of ``gan_lab.sample``), drawn (sample grids, scatter plots, text files), which network family
``net.arch=auto`` picks for it, and which metrics apply to it. Adding a modality means one module
here and a line in :data:`MODALITIES`.
"""

from __future__ import annotations

from gan_lab.modalities.base import Modality
from gan_lab.modalities.image import ImageModality
from gan_lab.modalities.points import PointsModality
from gan_lab.modalities.tokens import TokensModality

MODALITIES: dict[str, Modality] = {m.name: m for m in (ImageModality(), PointsModality(), TokensModality())}


def get_modality(name_or_info) -> Modality:
    """The modality of a name or of a :class:`~gan_lab.data.DataInfo`."""
    name = getattr(name_or_info, "modality", name_or_info)
    try:
        return MODALITIES[name]
    except KeyError:
        raise ValueError(f"unknown modality {name!r}; known: {', '.join(MODALITIES)}") from None


__all__ = ["MODALITIES", "Modality", "get_modality"]
