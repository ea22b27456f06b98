"""Epsilon from a delta profile, on the safe side of the root.

An accountant's epsilon at ``delta`` is where its delta(eps) curve crosses ``delta``. A root
finder stops within a tolerance of the crossing, on either side; these two functions finish on
the side that keeps each end a bound: the upper end where the upper curve already meets
``delta``, the lower end where the lower curve still exceeds it (scipy's ``brentq``, then
doubling steps towards the safe side).
"""

from __future__ import annotations

from scipy.optimize import brentq

__all__ = ["smallest_meeting", "largest_exceeding"]


def smallest_meeting(f, top: float, floor: float = 1e-300) -> float:
    """The upper end: an ``e`` in ``[0, top]`` with ``f(e) <= 0`` and ``f`` positive just below
    it (``f`` nonincreasing: the upper delta curve minus delta). ``top`` where ``f(top) > 0``
    (the bound says nothing below the largest loss), 0 where ``f(0) <= 0``."""
    if f(0.0) <= 0:
        return 0.0
    if f(top) > 0:
        return top
    e = brentq(f, 0.0, top, xtol=1e-12 * max(top, floor), rtol=1e-12)
    step = 1e-12 * max(e, floor)
    while e < top and f(e) > 0:
        e = min(top, e + step)
        step *= 2
    return e


def largest_exceeding(f, hi: float, floor: float = 1e-300) -> float:
    """The lower end: an ``e`` in ``[0, hi]`` with ``f(e) > 0`` (the lower delta curve exceeds
    delta there, so the true epsilon is above ``e``), or 0 where none is found; ``hi`` where
    ``f(hi) > 0``."""
    if hi == 0.0 or f(0.0) <= 0:
        return 0.0
    if f(hi) > 0:
        return hi
    e = brentq(f, 0.0, hi, xtol=1e-12 * max(hi, floor), rtol=1e-12)
    step = 1e-12 * max(e, floor)
    while e > 0 and f(e) <= 0:
        e = max(0.0, e - step)
        step *= 2
    return e
