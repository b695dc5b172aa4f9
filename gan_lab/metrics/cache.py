"""On-disk cache of real-data features.

Real images are the same for every evaluation of an experiment, so their features are extracted
once and stored as ``<cache_dir>/real_<digest>.pt``. The key is a JSON-able dict that names
everything the features depend on — the data set (name, split, image size, ...), the number of
images and the feature extractor with all its settings — and the file stores the full key:
a file is used only when its stored key equals the requested one, so a changed key can never
return stale statistics (a digest collision or a hand-copied file is detected, not trusted).

What is stored: the features (N, D) as float32 — KID and precision/recall need the samples, not
only the mean and covariance — the images' labels where the data has them (per-class metrics),
and, when the extractor has a classifier head, the histogram of predicted classes (for
``class_kl``). At the standard protocol (50k images, 2048-d Inception
features) a file is about 400 MB.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any

import torch
from torch import Tensor

log = logging.getLogger(__name__)

#: Bump when the stored format or the meaning of a key changes.
CACHE_FORMAT_VERSION = 2


def _to_json(obj: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, (DictConfig, ListConfig)):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return str(obj)


def plain(obj: Any) -> Any:
    """OmegaConf containers (at any depth), tuples, tensors, paths, dtypes → plain JSON types."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_to_json))


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(plain(key), sort_keys=True).encode()).hexdigest()[:20]


class RealStatsCache:
    """``load(key)`` → payload dict or ``None``; ``save(key, payload)``. ``cache_dir=None`` disables it."""

    def __init__(self, cache_dir: str | os.PathLike | None):
        self.cache_dir = os.fspath(cache_dir) if cache_dir else None

    def path(self, key: dict[str, Any]) -> str | None:
        if self.cache_dir is None:
            return None
        return os.path.join(self.cache_dir, f"real_{key_digest(key)}.pt")

    def load(self, key: dict[str, Any]) -> dict[str, Any] | None:
        path = self.path(key)
        if path is None or not os.path.isfile(path):
            return None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            log.warning("ignoring unreadable real-statistics cache %s (%s)", path, err)
            return None
        if payload.get("format") != CACHE_FORMAT_VERSION or payload.get("key") != plain(key):
            log.warning("real-statistics cache %s was written for another key; recomputing", path)
            return None
        return payload

    def save(self, key: dict[str, Any], features: Tensor, class_hist: Tensor | None, labels: Tensor | None = None,
             **extra: Any) -> str | None:
        path = self.path(key)
        if path is None:
            return None
        os.makedirs(self.cache_dir, exist_ok=True)
        payload = {
            "format": CACHE_FORMAT_VERSION,
            "key": plain(key),
            "features": features.detach().to("cpu", torch.float32).contiguous(),
            "class_hist": None if class_hist is None else class_hist.detach().cpu().to(torch.float64),
            "labels": None if labels is None else labels.detach().cpu().to(torch.int64),
            **extra,
        }
        tmp = f"{path}.tmp{os.getpid()}"
        torch.save(payload, tmp)
        os.replace(tmp, path)
        # a readable copy of the key next to the tensor file, for humans
        with open(path[:-3] + ".json", "w") as fh:
            json.dump(payload["key"], fh, indent=1, sort_keys=True)
        return path
