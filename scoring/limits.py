"""Plausibility: every number that enters (upload, 核定, scheme) is finite and of a sane size.

SPEC round 2: a ``count`` above 10,000,000, a non-finite number, or a ``number`` beyond ±1e9 is
refused (NaN, inf and 1e308 never reach the engine, where one of them would wipe every peer's
``relative`` points or make a veto never fire).
"""
from __future__ import annotations

import math

from .errors import InputError

MAX_COUNT = 10_000_000
MAX_ABS = 1e9


def finite(value, what: str, *, lo: float = -MAX_ABS, hi: float = MAX_ABS) -> float:
    """``value`` as a float within [lo, hi], or InputError naming ``what`` and the value."""
    if isinstance(value, bool):
        raise InputError(f"{what}「{value}」不是数字")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what}「{value}」不是数字") from None
    if not math.isfinite(x):
        raise InputError(f"{what}「{value}」不是有限的数字")
    if not lo <= x <= hi:
        raise InputError(f"{what}「{value}」超出合理范围({lo:g} 到 {hi:g})")
    return x
