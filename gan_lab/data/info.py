"""What a model needs to know about a data set before it is built: :class:`DataInfo`.

A data set has one *modality*, which says what one sample is:

* ``image``: float ``(C, H, W)`` in ``[-1, 1]``;
* ``points``: float ``(D,)`` raw coordinates (the 2-D mixtures);
* ``tokens``: int64 ``(L,)`` token ids into ``vocab`` (text, passwords).

Translation sets carry two sides: ``pairing="paired"`` (each batch has an input ``x`` and its
``target``) or ``pairing="unpaired"`` (domain A in ``x``, domain B in ``x_b``); ``shape_b`` is the
second side's shape. Anything else a source knows and a model or metric may use (the mixture
means of ``ring8``, say) goes into ``extras``, which must stay JSON-able: a :class:`DataInfo`
rides along in every checkpoint as a plain dict (:meth:`DataInfo.to_dict`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

MODALITIES = ("image", "points", "tokens")
PAIRINGS = (None, "paired", "unpaired")


@dataclass(frozen=True)
class DataInfo:
    name: str
    """Short name, e.g. ``"ring8"`` or ``"mnist_5k"``."""
    modality: str
    """``"image"``, ``"points"`` or ``"tokens"`` (see the module docstring)."""
    shape: tuple[int, ...]
    """One sample's shape: ``(C, H, W)``, ``(D,)`` or ``(L,)``."""
    num_classes: int = 0
    """Number of label classes; 0 when the set has no labels."""
    class_names: tuple[str, ...] | None = None
    """Readable names of the classes (``"0"``..``"9"``, CIFAR-10's names), for grids and logs."""
    vocab: tuple[str, ...] | None = None
    """``tokens`` only: the string of each token id."""
    pairing: str | None = None
    """``None``, ``"paired"`` or ``"unpaired"`` (translation sets)."""
    shape_b: tuple[int, ...] | None = None
    """The second side's sample shape for translation sets."""
    extras: dict[str, Any] = field(default_factory=dict, compare=True)
    """JSON-able facts about the set, e.g. ``modes`` and ``mode_std`` of the 2-D mixtures."""

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"DataInfo.modality must be one of {', '.join(MODALITIES)}, got {self.modality!r}")
        if self.pairing not in PAIRINGS:
            raise ValueError(f"DataInfo.pairing must be None, 'paired' or 'unpaired', got {self.pairing!r}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.shape_b is not None:
            object.__setattr__(self, "shape_b", tuple(int(s) for s in self.shape_b))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if self.vocab is not None:
            object.__setattr__(self, "vocab", tuple(str(t) for t in self.vocab))
        want = 3 if self.modality == "image" else 1
        if len(self.shape) != want:
            raise ValueError(f"a {self.modality} data set needs a shape of {want} dimension(s), got {self.shape}")
        if self.modality == "tokens" and not self.vocab:
            raise ValueError("a tokens data set needs its vocab")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")

    @property
    def is_image(self) -> bool:
        return self.modality == "image"

    @property
    def dim(self) -> int:
        """Number of scalars (or tokens) in one sample (``prod(shape)``)."""
        return math.prod(self.shape)

    @property
    def modes(self) -> Tensor | None:
        """``(K, D)`` mixture means of the synthetic Gaussian mixtures, else ``None``."""
        modes = self.extras.get("modes")
        return None if modes is None else torch.tensor(modes, dtype=torch.float32)

    @property
    def mode_std(self) -> float | None:
        """Standard deviation of every mixture component, else ``None``."""
        return self.extras.get("mode_std")

    def class_name(self, label: int) -> str:
        if self.class_names is not None and 0 <= label < len(self.class_names):
            return self.class_names[label]
        return str(label)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able dict (what checkpoints store)."""
        d = asdict(self)
        for key in ("shape", "shape_b", "class_names", "vocab"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataInfo":
        d = dict(d)
        if "kind" in d:  # checkpoints of gan_lab 0.1: kind image|vector, modes/mode_std at top level
            kind = d.pop("kind")
            d["modality"] = "points" if kind == "vector" else kind
            extras = dict(d.get("extras") or {})
            for key in ("modes", "mode_std"):
                if d.get(key) is not None:
                    extras[key] = d[key]
                d.pop(key, None)
            d["extras"] = extras
        return cls(**d)


DIGIT_NAMES = tuple(str(i) for i in range(10))
