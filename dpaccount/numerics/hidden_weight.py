"""A concrete pair with a hidden random mixing weight, bounded from below: the lower end of
``pld-tilted`` under random (Dirichlet) weights.

Generic numerics, no policy (which pair a run needs: :mod:`dpaccount.accountants.hits`); the
argument is ``docs/pld_hits.md``, "Random mixing weights: the lower end". In units of the noise
scale ``b``, with the other records at 0 and the changed record at ``e`` (its weight-1 shift) or
at 0, one release is

    P = (1 - q) Lap(0, 1) + q E_V[Lap(V e, 1)],    Q = Lap(0, 1),

``V ~ Beta(a, c)`` the record's weight (a coordinate of a Dirichlet vector), *not* shown. The
pair is binned: ``(-inf, 0]``, ``n_bins`` equal bins of ``[0, e]`` and ``[e, inf)``. Binning is
post-processing, so the binned pair is dominated by the true one; on the two outer bins the loss
is constant, so nothing is lost there. Each bin's ``Q``-mass is a closed form; its ``P``-mass is
bracketed, not estimated: ``V``'s law is cut into ``n_cells`` equal cells with probabilities
``m_j`` (scipy's regularised incomplete beta function, widened by a relative 1e-9), and on a
cell the bin's Laplace mass ``G(v)`` (log-concave in ``v``, so unimodal, its mode where the
shifted bin is centred) lies between its smaller end value and its value at the mode clipped to
the cell. So ``P_lo <= P(bin) <= P_hi`` for every bin.

The points used are: under ``P`` (``direction = "PQ"``) the mass ``P_lo`` at loss
``log(P_lo / Q_hi)``; under ``Q`` (``"QP"``) the mass ``Q_lo`` at ``log(Q_lo / P_hi)``. For any
number of releases ``sum (prod P_lo - e^eps prod Q_hi)_+ <= sum (prod P - e^eps prod Q)_+``: the
sub-probability law of these points, composed in the lattice's *lower* mode, bounds the binned
pair's delta, hence the true pair's, from below. (They are not an upper bound of anything.)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["HiddenWeightPair", "MAX_SCALE", "MIN_ALPHA", "MAX_ALPHA", "cell_probabilities",
           "laplace_mass"]

#: the largest weight-1 shift (in units of b) the binned pair is built for: beyond it bins of
#: [0, e] grow wide and the cells' brackets loose (a lower end is still valid, but not worth it)
MAX_SCALE = 64.0
#: the Beta parameters for which scipy's incomplete beta function is checked against mpmath
#: (``tests/accountants/test_dirichlet_lower.py``)
MIN_ALPHA = 1e-2
MAX_ALPHA = 1e4
#: relative widening of every cell probability and closed-form mass
_REL = 1e-9
_U = 2.0 ** -52


def laplace_mass(lo, hi):
    """``Lap(0, 1)`` mass of ``[lo, hi]`` (``lo <= hi``, arrays), without cancellation: each
    case a product of an exponential and ``expm1`` (a few ulps relative)."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, float), np.asarray(hi, float))
    w = -np.expm1(-(hi - lo))
    with np.errstate(over="ignore"):
        left = 0.5 * np.exp(np.minimum(hi, 0.0)) * w        # hi <= 0
        right = 0.5 * np.exp(-np.maximum(lo, 0.0)) * w      # lo >= 0
        mid = 0.5 * (-np.expm1(np.minimum(lo, 0.0))) + 0.5 * (-np.expm1(-np.maximum(hi, 0.0)))
    return np.where(hi <= 0.0, left, np.where(lo >= 0.0, right, mid))


@functools.lru_cache(maxsize=16)
def cell_probabilities(a: float, c: float, n_cells: int):
    """Cell edges of [0, 1] and each cell's probability under ``Beta(a, c)``, bracketed
    ``(m_lo, m_hi)``: differences of the CDF left of the mean, of the survival function right
    of it (each where it has no cancellation). Checked against a 40-digit series in
    ``tests/accountants/test_dirichlet_lower.py``, and with the whole construction against
    direct quadrature in ``proofs/hidden_weight_lower.py`` (4)."""
    from scipy.special import betainc, betaincc

    v = np.linspace(0.0, 1.0, n_cells + 1)
    mean = a / (a + c)
    cdf = betainc(a, c, v)
    sf = betaincc(a, c, v)
    left = np.diff(cdf)
    right = -np.diff(sf)
    straddle = np.maximum(1.0 - cdf[:-1] - sf[1:], 0.0)  # the cell that holds the mean
    m = np.where(v[1:] <= mean, left, np.where(v[:-1] >= mean, right, straddle))
    if not (np.all(np.isfinite(m)) and np.all(m >= 0.0) and abs(m.sum() - 1.0) < 1e-10):
        raise InputError(f"Beta({a:g}, {c:g}): the cell probabilities cannot be computed in "
                         "double precision")
    return v, np.maximum(m * (1.0 - _REL) - 1e-300, 0.0), m * (1.0 + _REL) + 1e-300


@dataclass(frozen=True)
class HiddenWeightPair:
    """One component of the lower end's revealed mixture: with weight ``weight`` the release is
    the concrete pair above at inclusion ``q``, weight-1 shift ``scale`` (in units of b) and
    weight ``V ~ Beta(a, c)`` hidden, in ``direction`` (``PQ`` or ``QP``). Hashable by its
    parameters; its points are computed once. Each step is checked in
    ``proofs/hidden_weight_lower.py``."""

    weight: float
    q: float
    scale: float
    a: float
    c: float
    direction: str
    n_bins: int = 2048
    n_cells: int = 4096

    def __post_init__(self):
        if not (0.0 < self.weight <= 1.0 + 1e-12):
            raise InputError(f"component weight must be in (0, 1]; got {self.weight!r}")
        if not (0.0 < self.q <= 1.0):
            raise InputError(f"q must be in (0, 1]; got {self.q!r}")
        if not (0.0 < self.scale <= MAX_SCALE):
            raise InputError(f"scale must be in (0, {MAX_SCALE:g}]; got {self.scale!r}")
        for name in ("a", "c"):
            val = getattr(self, name)
            if not (MIN_ALPHA <= val <= MAX_ALPHA):
                raise InputError(f"{name} must be in [{MIN_ALPHA:g}, {MAX_ALPHA:g}]; got {val!r}")
        if self.direction not in ("PQ", "QP"):
            raise InputError(f"direction must be PQ or QP; got {self.direction!r}")

    def top(self) -> float:
        return float(self.points()[1].max())

    def bottom(self) -> float:
        return float(self.points()[1].min())

    def pieces(self, extra_losses=()):
        """The points as :class:`~dpaccount.numerics.hits.Pieces` (support and mean the point;
        ``extra_losses``, the lattice points, are not needed: a point lies in one cell)."""
        from .hits import Pieces

        mass, loss = self.points()
        return Pieces(mass, loss, loss.copy(), loss.copy(), loss.copy())

    def points(self):
        """``(mass, loss)``: the bracketed points (module docstring), the weight included."""
        return _points(self.weight, self.q, self.scale, self.a, self.c, self.direction,
                       self.n_bins, self.n_cells)


@functools.lru_cache(maxsize=64)
def _points(weight, q, e, a, c, direction, n_bins, n_cells):
    if n_cells != 2 * n_bins:
        raise InputError(f"n_cells must be 2 n_bins; got {n_cells} and {n_bins}")
    v, m_lo, m_hi = cell_probabilities(a, c, n_cells)
    w = e / n_bins
    y = np.linspace(0.0, e, n_bins + 1)
    lo_y, hi_y = y[:-1], y[1:]
    # With a cell half a bin wide, bin i under Lap(v_j e, 1) at cell edge j is [d w/2, d w/2 + w]
    # for d = 2i - j: the brackets depend on d only, and the sums over cells are one
    # convolution (direct, of nonnegative terms: relative error under 1e-12).
    d = np.arange(-n_cells - 1, 2 * n_bins + 1)
    g = laplace_mass(d * (w / 2), d * (w / 2) + w)
    k_min = np.minimum(g[1:], g[:-1])   # d from -n_cells to 2 n_bins: min(g(d), g(d - 1))
    k_max = np.maximum(g[1:], g[:-1])
    # G is unimodal in v with its mode where the bin is centred: inside the cell iff d in {-1, 0}
    dd = d[1:]
    k_max = np.where((dd == -1) | (dd == 0), -math.expm1(-w / 2), k_max)
    rows = 2 * np.arange(n_bins) + n_cells  # the index of d = 2i - j, j = 0, in the convolution
    m_in_lo = np.convolve(k_min, m_lo)[rows]
    m_in_hi = np.convolve(k_max, m_hi)[rows]
    q_bin = laplace_mass(lo_y, hi_y)
    # the outer bins: y <= 0 (Q mass 1/2, P mass (1 - q)/2 + q E[e^{-V e}]/2) and y >= e
    # (Q mass e^{-e}/2, P mass (1 - q) e^{-e}/2 + q E[e^{-(1 - V) e}]/2)
    below_lo = float(m_lo @ np.exp(-v[1:] * e))
    below_hi = float(m_hi @ np.exp(-v[:-1] * e))
    above_lo = float(m_lo @ np.exp(-(1.0 - v[:-1]) * e))
    above_hi = float(m_hi @ np.exp(-(1.0 - v[1:]) * e))
    ee = math.exp(-e)
    qm = np.concatenate([[0.5], q_bin, [0.5 * ee]])
    p_lo = np.concatenate([[0.5 * ((1 - q) + q * below_lo)], (1 - q) * q_bin + q * m_in_lo,
                           [0.5 * ((1 - q) * ee + q * above_lo)]])
    p_hi = np.concatenate([[0.5 * ((1 - q) + q * below_hi)], (1 - q) * q_bin + q * m_in_hi,
                           [0.5 * ((1 - q) * ee + q * above_hi)]])
    q_lo, q_hi = qm * (1.0 - _REL), qm * (1.0 + _REL)
    p_lo, p_hi = p_lo * (1.0 - _REL), p_hi * (1.0 + _REL)
    if direction == "PQ":
        mass, lnum, lden = p_lo, np.log(p_lo), np.log(q_hi)
    else:
        mass, lnum, lden = q_lo, np.log(q_lo), np.log(p_hi)
    keep = mass > 0.0
    mass, lnum, lden = mass[keep], lnum[keep], lden[keep]
    # the loss taken a few ulps low: the implied second mass (mass e^{-loss}) is then at least
    # its upper bracket
    loss = (lnum - lden) - 8 * _U * (np.abs(lnum) + np.abs(lden)) - 1e-300
    if not (np.all(np.isfinite(loss)) and np.all(np.isfinite(mass))):
        raise InputError("the hidden-weight pair's points are not finite")
    return mass * weight, loss
