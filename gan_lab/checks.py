"""One-line checks of user-given settings, shared by every family and data source.

Values arrive from Hydra's command line typed as YAML (``model.n_critic=two`` is the string
"two"); each check names the setting and what it takes, so a wrong value is one clear line
(:class:`~gan_lab.errors.UserError`) before any training.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from gan_lab.errors import UserError


def integer(value: Any, key: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        want = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise UserError(f"{key} must be {want}, got {value!r}")
    return int(value)


def number(value: Any, key: str, positive: bool = False, minimum: float | None = None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok and positive and not value > 0:
        ok = False
    if ok and minimum is not None and value < minimum:
        ok = False
    if not ok:
        want = "a positive number" if positive else "a number" if minimum is None else f"a number >= {minimum}"
        raise UserError(f"{key} must be {want}, got {value!r}")
    return float(value)


def optional_number(value: Any, key: str, positive: bool = False) -> float | None:
    return None if value is None else number(value, key, positive=positive)


def choice(value: Any, key: str, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise UserError(f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{key} must be true or false, got {value!r}")
    return value


def mapping(value: Any, key: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{key} must be a mapping like {{name: ..., ...}}, got {value!r}")
    return dict(value)
