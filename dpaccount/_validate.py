"""Argument checks shared by the accountants: one rule, one message, everywhere."""

from __future__ import annotations

import math


def check_delta(delta) -> float:
    """delta in the open interval (0, 1); nan is refused."""
    d = float(delta)
    if not (0.0 < d < 1.0):  # also refuses nan
        raise ValueError(f"delta must be in the open interval (0, 1); got {delta!r}")
    return d


def check_count(name: str, t) -> int:
    """A positive integer (bool refused)."""
    if isinstance(t, bool) or int(t) != t or t < 1:
        raise ValueError(f"{name} must be a positive integer; got {t!r}")
    return int(t)


def check_eps(name: str, eps) -> float:
    """A finite number >= 0."""
    e = float(eps)
    if math.isnan(e) or e < 0 or not math.isfinite(e):
        raise ValueError(f"{name} must be a finite number >= 0; got {eps!r}")
    return e
