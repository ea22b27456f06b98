"""Two-sided bounds on the privacy profile of the subsampled Laplace pair for any eps0.

Generic numerics, no policy (which laws a run needs: :mod:`dpaccount.accountants.hits`). The
derivation is ``docs/pld_hits.md``; ``proofs/tilted_rounding.py`` checks its steps.

Everything is done under the *tilted* measure ``P`` of each law (the first distribution of its
pair), where ``delta(eps) = E_P[f(S)]``, ``f(s) = (1 - e^{eps - s})_+``, ``S`` the sum of the T
i.i.d. losses. ``f`` is nondecreasing, 1-Lipschitz and in [0, 1]; no probability in this module
is ever multiplied by ``e^{eps0}``, so eps0 up to 1e5 (and beyond) costs nothing in range.

* **One release** is sliced in ``u = (|z| - |z - s|)/b`` (the loss is ``L(u) = log(1 - q +
  q e^u)``, convex, or its mirror ``-L``); under either Laplace component the density of ``u`` on
  ``(-eps0, eps0)`` is ``e^{-(u + eps0)/2}/4`` or ``e^{(u - eps0)/2}/4``, so each slice's mass
  and the mean of ``u`` on it are closed forms, and the mean loss on it lies between ``L(mean u)``
  (Jensen) and the chord of ``L`` at ``mean u``. No quadrature.
* **Rounding onto a lattice** ``h Z`` (``h`` a power of 2) by a split of every point onto the two
  ends of its cell that keeps its ``P``-mean: the rounded sum is ``S' = S + D + C`` where ``D`` is
  a martingale with increments of range ``h`` (Azuma-Hoeffding: ``P(|D| > eta) <=
  exp(-2 eta^2 / V)``, ``V`` the sum of squared ranges) and ``C`` a monotone correction: ``C >= 0``
  in the ``upper`` mode (means taken at their upper bracket, low tails moved up), ``C <= 0`` in the
  ``lower`` mode (lower bracket, high tails moved down, low tails dropped). Hence
  ``E f(S) <= E f(S' + eta) + exp(-2 eta^2 / V) + cut`` (upper mode) and
  ``E f(S) >= E f(S' - eta) - exp(-2 eta^2 / V)`` (lower mode).
* **Hit-count conditioning** (not implemented; ``docs/pld_hits.md`` says where it would pay):
  the rounding under the tilted measure already meets the targets of issue 13.

Errors of floating point are bounded and added (``docs/pld_hits.md``, "Floating point").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

__all__ = ["Component", "FlatLaw", "HitsError", "DIRECTIONS", "component_pieces", "law_pieces",
           "fft_convolve"]

DIRECTIONS = ("PQ", "QP", "sym")
#: relative error allowed for each closed-form mass (a multiplicative factor per release)
_REL_MASS = 1e-12
_U = 2.0 ** -52


class HitsError(ArithmeticError):
    """The lattice cannot represent this law (the caller refuses, naming the case)."""


@dataclass(frozen=True)
class Component:
    """One component of a revealed mixture: with weight ``weight`` the release is the subsampled
    Laplace pair at inclusion ``q`` and ``eps0`` in ``direction``; ``q == 0``: loss exactly 0."""

    weight: float
    q: float
    eps0: float
    direction: str

    def __post_init__(self):
        if not (0.0 < self.weight <= 1.0 + 1e-12):
            raise InputError(f"component weight must be in (0, 1]; got {self.weight!r}")
        if not (0.0 <= self.q <= 1.0):
            raise InputError(f"q must be in [0, 1]; got {self.q!r}")
        if not (self.eps0 > 0 and math.isfinite(self.eps0)):
            raise InputError(f"eps0 must be positive and finite; got {self.eps0!r}")
        if self.direction not in DIRECTIONS:
            raise InputError(f"direction must be one of {DIRECTIONS}; got {self.direction!r}")

    # ---- the loss map and its inverse ----
    def L(self, u):
        """``log(1 - q + q e^u)`` without overflow or cancellation."""
        u = np.asarray(u, dtype=float)
        q = self.q
        if q == 1.0:
            return u.copy()
        with np.errstate(over="ignore"):
            small = np.log1p(q * np.expm1(np.minimum(u, 700.0)))
        log1mq = math.log1p(-q) if q < 1.0 else -math.inf
        big = np.logaddexp(log1mq, math.log(q) + u)
        return np.where(u <= 700.0, small, big)

    def L_inv(self, ell):
        """The u with ``L(u) = ell`` (nan outside the range of L)."""
        ell = np.asarray(ell, dtype=float)
        q = self.q
        if q == 1.0:
            return ell.copy()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            small = np.log1p(np.expm1(np.minimum(ell, 700.0)) / q)
            big = ell + np.log1p((q - 1.0) * np.exp(-np.maximum(ell, 700.0))) - math.log(q)
        return np.where(ell <= 700.0, small, big)

    def top(self) -> float:
        """The largest loss of the law."""
        if self.q == 0.0:
            return 0.0
        if self.direction == "QP":
            return float(-self.L(-self.eps0))
        return float(self.L(self.eps0))

    def bottom(self) -> float:
        if self.q == 0.0:
            return 0.0
        if self.direction == "PQ":
            return float(self.L(-self.eps0))
        return -float(self.L(self.eps0))


# ---------------------------------------------------------------------------------------------
# one release: pieces under the tilted measure


@dataclass
class Pieces:
    """Point masses of one release's loss law under the tilted measure: piece ``i`` has mass
    ``mass[i]`` (linear scale), support in ``[lo[i], hi[i]]`` and mean in ``[m_lo[i], m_hi[i]]``."""

    mass: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    m_lo: np.ndarray
    m_hi: np.ndarray

    @staticmethod
    def cat(items):
        return Pieces(*(np.concatenate([getattr(p, f) for p in items])
                        for f in ("mass", "lo", "hi", "m_lo", "m_hi")))

    def select(self, mask):
        return Pieces(self.mass[mask], self.lo[mask], self.hi[mask], self.m_lo[mask],
                      self.m_hi[mask])


def _trunc_exp_mean(delta):
    """Mean of the density proportional to e^{-t/2} on [0, delta] (stable for small delta)."""
    delta = np.asarray(delta, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        direct = 2.0 - delta / np.expm1(delta / 2.0)
    series = delta / 2 - delta ** 2 / 24 + delta ** 4 / 5760
    return np.where(delta < 1e-3, series, np.minimum(direct, delta / 2))


def _base_grid(lo: float, hi: float, e0: float) -> np.ndarray:
    """Slice edges in u: uniform for small eps0; for large eps0 dense (0.03) within 64 of the
    points where the tilted masses sit (-eps0, 0, eps0), geometric in between."""
    if e0 <= 64.0:
        g = np.linspace(lo, hi, 4097)
    else:
        t = np.unique(np.concatenate([np.linspace(0.0, 64.0, 2049),
                                      np.geomspace(64.0, 2.0 * e0, 600)]))
        g = np.concatenate([-e0 + t, t, -t, e0 - t])
    g = g[(g >= lo) & (g <= hi)]
    return np.unique(np.concatenate([[lo, hi], g]))


def _slices(comp: Component, edges: np.ndarray):
    """Per slice of ``edges`` (u): log masses and mean of u under the two Laplace images
    (component 0: Lap(0, b); component s: Lap(s, b)), closed forms."""
    e0 = comp.eps0
    u1, u2 = edges[:-1], edges[1:]
    d = u2 - u1
    ok = d > 0
    u1, u2, d = u1[ok], u2[ok], d[ok]
    with np.errstate(divide="ignore"):
        lgap = np.log(-np.expm1(-d / 2.0))
    lm0 = math.log(0.5) - (u1 + e0) / 2.0 + lgap   # density e^{-(u+e0)/2}/4
    lms = math.log(0.5) - (e0 - u2) / 2.0 + lgap   # density e^{(u-e0)/2}/4
    tm = _trunc_exp_mean(d)
    mu0 = u1 + tm
    mus = u2 - tm
    return u1, u2, lm0, lms, mu0, mus


def _bracket(comp, u1, u2, ubar, sign):
    """Support and mean bracket of ``sign * L(u)`` on slices with mean u ``ubar``."""
    L1, L2, Lb = comp.L(u1), comp.L(u2), comp.L(ubar)
    d = u2 - u1
    with np.errstate(invalid="ignore", divide="ignore"):
        chord = np.where(d > 0, L1 + (L2 - L1) * (ubar - u1) / np.where(d > 0, d, 1.0), L1)
    # floating point: widen by a few ulps of the values involved (u and L)
    pad = 8 * _U * (np.abs(L1) + np.abs(L2) + np.abs(u1) + np.abs(u2)) + 1e-300
    mlo = np.minimum(Lb, chord) - pad
    mhi = np.maximum(Lb, chord) + pad
    mlo = np.maximum(mlo, L1)
    mhi = np.minimum(mhi, L2)
    if sign > 0:
        return L1, L2, mlo, mhi
    return -L2, -L1, -mhi, -mlo


def component_pieces(comp: Component, extra_losses=()) -> Pieces:
    """The pieces of one component under its tilted measure, its weight included; slices are
    cut at the u-preimages of ``extra_losses`` (lattice points) so each lies in one cell.
    Closed-form masses, Jensen/chord mean brackets (``proofs/tilted_rounding.py``)."""
    if not isinstance(comp, Component):
        # a law that makes its own pieces: given by its points
        # (:class:`~dpaccount.numerics.hidden_weight.HiddenWeightPair`, lower mode only; each
        # point lies in one lattice cell, nothing to cut), or aggregated on the lattice
        # (:class:`~dpaccount.numerics.shuffle.ShuffledEpoch`, upper mode only)
        return comp.pieces(extra_losses)
    w = comp.weight
    if comp.q == 0.0:
        one = np.array([w])
        z = np.zeros(1)
        return Pieces(one, z, z.copy(), z.copy(), z.copy())
    q, e0 = comp.q, comp.eps0
    log1mq = math.log1p(-q) if q < 1.0 else -math.inf
    lq = math.log(q)
    lw = math.log(w)
    extra = np.asarray(extra_losses, dtype=float)
    out = []
    top, low = float(comp.L(e0)), float(comp.L(-e0))

    def pre(sign_vals):
        if extra.size == 0:
            return np.empty(0)
        u = comp.L_inv(sign_vals)
        return u[np.isfinite(u)]

    def under_p(u1, u2, lm0, lms, mu0, mus):
        # the loss +L on each slice under P = (1-q) Lap0 + q Laps: its P-mass, and its mean
        # bracketed around the P-mixture of the two Laplace means of the slice
        lm = np.logaddexp(log1mq + lm0, lq + lms)
        with np.errstate(invalid="ignore"):
            a0 = np.exp(log1mq + lm0 - lm)
        ubar = np.clip(a0 * mu0 + (1 - a0) * mus, u1, u2)
        lo, hi, mlo, mhi = _bracket(comp, u1, u2, ubar, +1)
        return Pieces(np.exp(lm + lw), lo, hi, mlo, mhi)

    def atom(value, logm):
        m = np.array([math.exp(min(logm + lw, 0.0))])
        v = np.array([value])
        return Pieces(m, v, v.copy(), v.copy(), v.copy())

    if comp.direction in ("PQ", "QP"):
        pu = pre(extra if comp.direction == "PQ" else -extra)
        edges = np.unique(np.concatenate([_base_grid(-e0, e0, e0),
                                          pu[(pu > -e0) & (pu < e0)]]))
        u1, u2, lm0, lms, mu0, mus = _slices(comp, edges)
        if comp.direction == "PQ":  # loss L under P = (1-q) Lap0 + q Laps
            out.append(under_p(u1, u2, lm0, lms, mu0, mus))
            out.append(atom(low, float(np.logaddexp(log1mq + math.log(0.5),
                                                    lq + math.log(0.5) - e0))))
            out.append(atom(top, float(np.logaddexp(log1mq + math.log(0.5) - e0,
                                                    lq + math.log(0.5)))))
        else:  # loss -L under Q = Lap0
            lo, hi, mlo, mhi = _bracket(comp, u1, u2, np.clip(mu0, u1, u2), -1)
            out.append(Pieces(np.exp(lm0 + lw), lo, hi, mlo, mhi))
            out.append(atom(-low, math.log(0.5)))
            out.append(atom(-top, math.log(0.5) - e0))
    else:  # sym: +L with P-mass on u > 0, -L with Q-mass on u > 0, atom 0
        pu = pre(np.abs(extra))
        edges = np.unique(np.concatenate([_base_grid(0.0, e0, e0), pu[(pu > 0) & (pu < e0)]]))
        u1, u2, lm0, lms, mu0, mus = _slices(comp, edges)
        out.append(under_p(u1, u2, lm0, lms, mu0, mus))
        lo, hi, mlo, mhi = _bracket(comp, u1, u2, np.clip(mu0, u1, u2), -1)
        out.append(Pieces(np.exp(lm0 + lw), lo, hi, mlo, mhi))
        out.append(atom(top, float(np.logaddexp(log1mq + math.log(0.5) - e0,
                                                lq + math.log(0.5)))))
        out.append(atom(-top, math.log(0.5) - e0))
        out.append(atom(0.0, log1mq + math.log(-math.expm1(-e0 / 2.0))))
    p = Pieces.cat(out)
    return p.select(p.mass > 0)


def law_pieces(components, extra_losses=()) -> Pieces:
    return Pieces.cat([component_pieces(c, extra_losses) for c in components])


# ---------------------------------------------------------------------------------------------
# lattice nodes and their composition


@dataclass
class Node:
    """A sub-probability law on the lattice ``h * (offset + arange(v.size))`` of a block of ``m``
    releases, with the bookkeeping of its bounds, each for the block itself (convolution adds
    them): ``cut`` (upper mode: an upper bound on the probability that a cut event occurred inside
    the block), ``err`` (an L1 bound on the FFT round-off), ``slack`` (a bound on the
    deterministic shift of floating point), ``logf`` (the log of the multiplicative factor that
    bounds relative errors of nonnegative arithmetic); the roundings inside the block, for the
    martingale bounds (``docs/pld_hits.md``, "Bennett instead of Azuma at the leaves"):
    ``rvar`` (the sum of squared ranges of the regrids) and ``bern`` (per leaf, ``(count, p,
    R)``: ``count`` occurrences of a release whose split has range at most ``R`` and expected
    conditional variance at most ``p R^2 / 4``); :attr:`var` is Azuma's sum of squared ranges
    of them all."""

    h: float
    offset: int
    v: np.ndarray
    m: int
    cut: float = 0.0
    err: float = 0.0
    slack: float = 0.0
    logf: float = 0.0
    rvar: float = 0.0
    bern: tuple = ()

    @property
    def losses(self):
        return (self.offset + np.arange(self.v.size)) * self.h

    @property
    def var(self) -> float:
        return azuma_var(self.rvar, self.bern)

    def with_v(self, offset, v, **kw):
        d = dict(h=self.h, offset=offset, v=v, m=self.m, cut=self.cut,
                 err=self.err, slack=self.slack, logf=self.logf, rvar=self.rvar, bern=self.bern)
        d.update(kw)
        return Node(**d)


def azuma_var(rvar: float, bern: tuple) -> float:
    """Azuma-Hoeffding's sum of squared ranges: the regrids' plus every leaf occurrence's."""
    return rvar + sum(c * r * r for c, _, r in bern)


def _merge_bern(a: tuple, b: tuple) -> tuple:
    """The leaf terms of a sum of two blocks: counts of equal ``(p, R)`` added."""
    out = {}
    for count, p, r in a + b:
        out[(p, r)] = out.get((p, r), 0) + count
    return tuple((c, p, r) for (p, r), c in sorted(out.items()))


def split_variance(lo_cell, hi_cell, m_lo, m_hi, r):
    """The largest ``(x - lo_cell)(hi_cell - x) / r^2`` over ``x`` in the mean bracket ``[m_lo,
    m_hi]``: the conditional variance of the mean-keeping split of a point ``x`` of the cell is
    this concave function (times ``r^2``), so a piece's expected variance is at most its value at
    the piece's mean (Jensen), which lies in the bracket. Divided by ``r`` factor by factor, so
    that nothing underflows at tiny steps."""
    x = np.clip(np.clip((lo_cell + hi_cell) / 2, m_lo, m_hi), lo_cell, hi_cell)
    return np.maximum(((x - lo_cell) / r) * ((hi_cell - x) / r), 0.0)


def _pow2_at_least(x: float) -> float:
    x = max(x, 2.0 ** -1000)
    return 2.0 ** math.ceil(math.log2(x))


def leaf(pieces: Pieces, h: float, mode: str, floor_loss: float | None = None) -> Node:
    """Round one release's pieces onto ``h Z`` by the mean-keeping split
    (``proofs/tilted_rounding.py``). Pieces below ``floor_loss`` (a lattice point) are
    moved up to it (upper mode) or dropped (lower mode)."""
    mass, lo, hi = pieces.mass, pieces.lo, pieces.hi
    mean = pieces.m_hi if mode == "upper" else pieces.m_lo
    if floor_loss is not None:
        # (a piece whose top is above the floor by floating point only counts as below: the
        # move is within the slack added for every piece)
        below = hi <= floor_loss + 64 * _U * (abs(floor_loss) + h)
        if mode == "upper":
            mean = np.where(below, floor_loss, mean)
            lo = np.where(below, floor_loss, lo)
            hi = np.where(below, floor_loss, hi)
        else:
            keep = ~below
            mass, lo, hi, mean = mass[keep], lo[keep], hi[keep], mean[keep]
            if mass.size == 0:
                # every piece dropped: the zero sub-probability, whose E f (= 0) is below the
                # truth, which is all the lower mode needs
                return Node(h, int(math.floor(floor_loss / h)), np.zeros(1), 1, slack=0.0,
                            logf=_REL_MASS, rvar=0.0, bern=())
    # each piece goes to the ends of the smallest lattice interval [A h, B h] that holds its
    # support (one cell when the slices are cut at the lattice preimages; floating point can make
    # it two): the split of its mean onto {A h, B h} is the mean-preserving rounding of every
    # point of the piece, with range (B - A) h
    # (computed ends within tol of a lattice point are taken at it: the clamp moves a point
    # by at most tol, a deterministic shift added to eta as slack)
    tol = np.where(lo == hi, 0.0, 64 * _U * (np.abs(lo) + np.abs(hi) + h))
    A = np.floor((lo + tol) / h)
    B = np.maximum(np.ceil((hi - tol) / h), A + 1)
    width = (B - A) * h
    frac = np.clip((mean - A * h) / width, 0.0, 1.0)
    ai = A.astype(np.int64)
    bi = B.astype(np.int64)
    off = int(ai.min())
    size = int(bi.max()) - off + 1
    v = (np.bincount(ai - off, mass * (1.0 - frac), minlength=size)
         + np.bincount(bi - off, mass * frac, minlength=size))
    rng = float(width.max()) if width.size else h
    slack = float(tol.max()) if tol.size else 0.0
    # Bennett at the leaf: the expected conditional variance of the split, over the law of the
    # release (its mass, in the tilted measure, widened by 1e-9 against rounding)
    p = 0.0
    if rng > 0:
        p = min(1.0, 4.0 * float(np.dot(mass, split_variance(A * h, B * h, mean, mean, rng)))
                * (1.0 + 1e-9))
    off_t, v = _trim(v)
    return Node(h, off + off_t, v, 1, slack=slack, logf=_REL_MASS, rvar=0.0,
                bern=((1, p, rng),))


def _regrid(node: Node, factor: int) -> Node:
    """Split every point onto the coarser lattice (step h*factor), keeping its mean."""
    if factor == 1:
        return node
    h2 = node.h * factor
    idx = node.offset + np.arange(node.v.size)
    lo = np.floor_divide(idx, factor)
    frac = (idx - lo * factor) / factor
    off2 = int(lo[0])
    v2 = np.zeros(int(lo[-1]) - off2 + 2)
    np.add.at(v2, lo - off2, node.v * (1.0 - frac))
    np.add.at(v2, lo - off2 + 1, node.v * frac)
    return Node(h2, off2, v2, node.m, node.cut, node.err, node.slack, node.logf + 4 * _U,
                node.rvar + h2 * h2, node.bern)


def _trim(v: np.ndarray):
    nz = np.nonzero(v)[0]
    if nz.size == 0:
        return 0, v[:1].copy()
    return int(nz[0]), v[nz[0]:nz[-1] + 1]


def fft_convolve(a: np.ndarray, b: np.ndarray, ld: bool):
    """Linear convolution by FFT (long double when ``ld``) and an L1 bound on its round-off:
    ``sqrt(n) * 20 u log2(n) * max(|a|_1 |b|_2, |a|_2 |b|_1)`` (Higham 2002, Thm 24.2, for the
    two forward transforms, the product and the inverse, with a margin of 4)."""
    import scipy.fft as sfft

    n = a.size + b.size - 1
    nf = sfft.next_fast_len(n, real=True)
    dt = np.longdouble if ld else np.float64
    u = float(np.finfo(dt).eps)
    fa = sfft.rfft(a.astype(dt), nf)
    fb = fa if b is a else sfft.rfft(b.astype(dt), nf)  # a square: one transform
    c = sfft.irfft(fa * fb, nf)[:n].astype(np.float64)
    m = max(float(a.sum()) * float(np.sqrt(np.dot(b, b))),
            float(b.sum()) * float(np.sqrt(np.dot(a, a))))
    err = math.sqrt(nf) * 20 * u * math.log2(nf) * m + nf * 2.0 ** -1074 + n * _U * 1e-300
    np.maximum(c, 0.0, out=c)
    return c, err


class Composer:
    """Composition of nodes with the cut and regrid rules of one mode."""

    def __init__(self, mode: str, cut_tol: float, max_points: int):
        self.mode = mode
        self.cut_tol = cut_tol
        self.max_points = max_points

    def cut(self, node: Node, copies: int) -> Node:
        v = node.v
        thr = self.cut_tol / (copies * 256.0)
        cum_lo = np.cumsum(v)
        cum_hi = np.cumsum(v[::-1])
        i_lo = int(np.searchsorted(cum_lo, thr, side="right"))
        i_hi = int(v.size - np.searchsorted(cum_hi, thr, side="right"))
        if i_hi - i_lo < 2 or (i_lo == 0 and i_hi == v.size):
            return node
        w = v[i_lo:i_hi].copy()
        low_mass, high_mass = float(v[:i_lo].sum()), float(v[i_hi:].sum())
        cut = node.cut
        if self.mode == "upper":
            w[0] += low_mass   # low tail moved up (stochastically larger)
            cut += high_mass   # high tail dropped: the event is accounted
        else:
            w[-1] += high_mass  # high tail moved down; low tail dropped
        return node.with_v(node.offset + i_lo, w, cut=cut)

    def fit(self, node: Node, copies: int) -> Node:
        node = self.cut(node, copies)
        while node.v.size > self.max_points:
            node = self.cut(_regrid(node, 2), copies)
        return node

    def convolve(self, a: Node, b: Node, copies: int) -> Node:
        """``a + b`` (independent); ``copies``: how many times the result occurs in the final
        sum (cut thresholds and the choice of precision)."""
        if a.h != b.h:
            if a.h < b.h:
                a, b = b, a
            b = _regrid(b, int(round(a.h / b.h)))
        na, nb = a.v.size, b.v.size
        logf = a.logf + b.logf
        if min(na, nb) <= 32 or na * nb <= 400_000:
            v = np.convolve(a.v, b.v)
            err = 0.0
            logf += 2 * min(na, nb) * _U  # sums of nonnegative products: relative error
        else:
            v, err = fft_convolve(a.v, b.v, ld=False)
            if copies * err > self.cut_tol / 256.0:
                v, err = fft_convolve(a.v, b.v, ld=True)
        sa, sb = float(a.v.sum()), float(b.v.sum())
        err += a.err * sb + b.err * sa + a.err * b.err
        node = Node(a.h, a.offset + b.offset, v, a.m + b.m, a.cut + b.cut, err,
                    a.slack + b.slack, logf, a.rvar + b.rvar, _merge_bern(a.bern, b.bern))
        return self.fit(node, copies)

    def power(self, leaf_node: Node, t: int, total: int) -> Node:
        """``t`` copies of ``leaf_node`` (one release) by repeated squaring; ``total``: the
        releases of the whole sum (a block of m releases occurs at most total // m times)."""
        def copies(m):
            return max(1, total // m)

        base = self.fit(leaf_node, copies(1))
        result = None
        while True:
            if t & 1:
                result = base if result is None else self.convolve(result, base, 1)
            t >>= 1
            if not t:
                break
            base = self.convolve(base, base, copies(2 * base.m))
        return result


def _hockey(losses: np.ndarray, v: np.ndarray, eps: float) -> float:
    """sum over l > eps of v (1 - e^{eps - l})."""
    i = int(np.searchsorted(losses, eps, side="right"))
    if i >= v.size:
        return 0.0
    return float(np.dot(v[i:], -np.expm1(eps - losses[i:])))


@dataclass
class Profile:
    """One composed node's bound on delta(eps) in one mode. ``sign = +1``: upper mode (the
    lattice shifted left by eta); ``-1``: lower mode."""

    mode: str
    losses: np.ndarray
    v: np.ndarray
    cut: float
    err: float
    slack: float
    log_factor: float  # |log| of the multiplicative mass-error factor
    rvar: float = 0.0
    bern: tuple = ()
    #: the largest loss of the composition (the sum of every release's largest loss), or None
    top: float | None = None
    _etas: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def var(self) -> float:
        return azuma_var(self.rvar, self.bern)

    def eta(self, bad: float) -> float:
        """The smaller of the Azuma-Hoeffding allowance and the Bennett one
        (:func:`bennett_eta`), plus the slack: each makes ``P(D >= eta) <= bad`` (and the same
        for ``-D``). Kept per ``bad`` (root finding asks the same one many times)."""
        if bad not in self._etas:
            log_bad = max(-math.log(bad), 0.0)
            azuma = math.sqrt(self.var * log_bad / 2.0)
            self._etas[bad] = min(azuma, bennett_eta(self.bern, self.rvar, log_bad)) + self.slack
        return self._etas[bad]

    def value(self, eps: float, bad: float) -> float:
        """The bound on delta(eps) (``bad``: the allowed probability of the rounding's bad
        event). In the upper mode also, near the top: the loss sum ``S`` never exceeds
        :attr:`top`, so ``(1 - e^{eps - S})_+ <= (1 - e^{eps - top}) 1{S > eps}``, and ``P(S >
        eps)`` is bounded by the same argument as the hockey-stick (an indicator is
        nondecreasing and in [0, 1]: ``docs/pld_hits.md``, "Near the top"). Where most of the
        mass sits below the top this resolves what the rounding allowance eta cannot."""
        eta = self.eta(bad)
        if self.mode == "upper":
            if self.top is not None and eps >= self.top:
                return 0.0  # no loss sum exceeds the top
            val = _hockey(self.losses, self.v, eps - eta) * math.exp(self.log_factor)
            val = min(1.0, val + self.err + bad + self.cut)
            if self.top is not None:
                i = int(np.searchsorted(self.losses, eps - eta, side="right"))
                tail = float(self.v[i:].sum()) * math.exp(self.log_factor)
                tail = min(1.0, tail + self.err + bad + self.cut)
                val = min(val, -math.expm1(eps - self.top) * tail)
            return val
        val = _hockey(self.losses, self.v, eps + eta) * math.exp(-self.log_factor)
        return max(0.0, val - self.err - bad)


def bennett_eta(bern: tuple, rvar: float, log_bad: float, points: int = 400) -> float:
    """An ``eta`` with ``P(D >= eta) <= e^{-log_bad}`` for the rounding martingale ``D``
    (``docs/pld_hits.md``, "Bennett instead of Azuma at the leaves"). A leaf increment ``X``
    (the split of a release's loss ``x`` onto its cell, of range at most ``R``) has, given the
    past, ``E e^{lambda X} <= E_x exp(s2(x) phi(lambda R) / R^2)`` (Bennett 1962: mean 0,
    ``X <= R``, conditional variance ``s2(x) <= R^2/4``; ``x`` is a fresh release, independent of
    the past), at most ``1 - p + p exp(phi(lambda R)/4)`` by convexity in ``s2`` (``p = E s2 /
    (R^2/4)``), ``phi(u) = e^u - 1 - u``; a regrid increment has Hoeffding's
    ``e^{lambda^2 R^2 / 8}``. By the tower property ``E e^{lambda D}`` is at most their product,
    and Chernoff gives ``eta = min over lambda > 0 of (log_bad + log E e^{lambda D}) / lambda``;
    every lambda is a valid bound, so a grid of them is. The same for ``-X`` (also ``<= R``).
    Checked in ``proofs/tilted_rounding.py`` (7), with exact tails of sums of splits."""
    terms = [(c, p, r) for c, p, r in bern if r > 0.0 and p > 0.0]
    if not terms:
        return math.sqrt(rvar * log_bad / 2.0) if rvar > 0 else 0.0
    r_max = max(r for _, _, r in terms)
    r_min = min(r for _, _, r in terms)
    with np.errstate(over="ignore"):
        lam = np.geomspace(1e-6 / r_max, 600.0 / r_min, points)
        total = log_bad + (lam * lam * rvar / 8.0 if rvar > 0 else 0.0)
    for c, p, r in terms:
        u = np.minimum(lam * r, 700.0)
        z = (np.expm1(u) - u) / 4.0
        with np.errstate(divide="ignore", over="ignore"):
            log1m = math.log1p(-p) if p < 1.0 else -math.inf
            term = np.logaddexp(log1m, math.log(p) + z)  # log(1 - p + p e^z)
            total = total + c * term  # inf where it overflows: that lambda is dropped below
    eta = total / lam
    eta = eta[np.isfinite(eta)]
    return float(eta.min()) if eta.size else math.inf


# ---------------------------------------------------------------------------------------------
# one law, T releases


def _moments(p: Pieces):
    tot = float(p.mass.sum())
    mid = (p.m_lo + p.m_hi) / 2
    mean = float(np.dot(p.mass, mid)) / tot
    var = float(np.dot(p.mass, (mid - mean) ** 2)) / tot
    return tot, mean, math.sqrt(max(var, 0.0))


def _floor_loss(p: Pieces, tol: float) -> float:
    """A loss below which the tilted mass is at most ``tol``."""
    order = np.argsort(p.hi)
    cum = np.cumsum(p.mass[order])
    i = int(np.searchsorted(cum, tol, side="right"))
    if i == 0:
        return -math.inf
    return float(p.hi[order][i - 1])


class FlatLaw:
    """T releases of one loss law (one alternative), phases one after the other, on one
    lattice per mode. ``phases``: ``[(components, releases), ...]``."""

    def __init__(self, phases, cut_tol: float, max_points: int):
        self.phases = phases
        self.total = sum(t for _, t in phases)
        self.cut_tol = cut_tol
        self.max_points = max_points
        self._prof = {}
        self._coarse = {}
        self._fine = {}
        self._mult = None

    def _leaf_step(self, pieces: Pieces, t: int):
        tot, mean, sd = _moments(pieces)
        fl = _floor_loss(pieces, self.cut_tol / (1024.0 * t))
        top = float(pieces.hi.max())
        bottom = max(float(pieces.lo.min()), fl)
        span = max(top - bottom, 1e-300)
        # lattice indices of the whole sum stay below 2^45 (exact in doubles, far from the
        # int64 limits): the step is at least T * max|loss| * 2^-45
        scale = max(abs(top), abs(bottom))
        h = max(sd / 1000.0, span / (self.max_points - 8), self.total * scale * 2.0 ** -45,
                1e-280)
        return _pow2_at_least(h), fl

    #: leaf steps tried, as multiples of the finest step the moments and array size allow
    LEAF_MULTIPLES = (1024, 256, 64, 16, 4, 1)
    #: the search composes on arrays this many times smaller (a quarter of the time each)
    SEARCH_SHRINK = 4

    def profile(self, mode: str) -> Profile:
        """The composition in ``mode`` on the leaf step chosen by :meth:`leaf_multiple`."""
        if mode not in self._prof:
            self._prof[mode] = self._compose(mode, self.leaf_multiple())
            # the cut pieces are not kept (memory: a law set is cached, and with random
            # weights its pieces take tens of MB); the other mode, if asked, cuts them again
            self._fine = {}
        return self._prof[mode]

    def leaf_multiple(self) -> int:
        """The leaf step, as a multiple of the finest one. A coarser leaf needs fewer regrids
        during composition, which Azuma-Hoeffding charges at their full range for every block;
        the leaf's own rounding is charged by Bennett at its expected variance, small when most
        of a release's mass sits near a lattice point (rare hits). The multiples of
        :attr:`LEAF_MULTIPLES` are tried from the coarsest (the cheapest), in the upper mode on
        arrays :attr:`SEARCH_SHRINK` times smaller, while the allowance eta at ``10 cut_tol``
        falls; the one chosen is then composed at full size. Small arrays regrid more, so the
        choice leans coarse (measured: up to 1.4% looser than the best step at the README
        certify example with Dirichlet weights, 0.1% or less elsewhere; docs/pld_hits.md 3b).
        Every candidate is a valid bound; the choice depends on the law alone, never on the
        queries."""
        if self._mult is None:
            ref = 10.0 * self.cut_tol
            small = self.max_points // self.SEARCH_SHRINK
            best, best_mult = None, None
            for mult in self.LEAF_MULTIPLES:
                prof = self._compose("upper", mult, small)
                worse = best is not None and prof.eta(ref) >= best.eta(ref)
                # keep the leaves of the best candidate only (memory: many components)
                drop = mult if worse else best_mult
                self._fine = {key: val for key, val in self._fine.items() if key[1] != drop}
                if worse:
                    break
                best, best_mult = prof, mult
            self._mult = best_mult
        return self._mult

    def _leaf_pieces(self, components, i: int, mult: int):
        """One release's pieces cut at the lattice points of step ``mult`` times the finest
        (the same in both modes), the step and the floor loss."""
        lo_min, hi_l, h, fl = self._coarse[i]
        h *= mult
        if not math.isfinite(fl):
            floor_loss = None
        else:
            floor_loss = math.floor(fl / h) * h
        lo_l = max(lo_min, floor_loss if floor_loss is not None else -1e300)
        pts = np.arange(math.floor(lo_l / h), math.ceil(hi_l / h) + 1) * h
        if pts.size > 8 * self.max_points:  # pragma: no cover - guards memory
            raise HitsError(f"lattice would need {pts.size} points")
        return law_pieces(components, pts), h, floor_loss

    def _compose(self, mode: str, mult: int, max_points: int | None = None) -> Profile:
        max_points = max_points or self.max_points
        comp = Composer(mode, self.cut_tol / len(self.phases), max_points)
        result = None
        for i, (components, t) in enumerate(self.phases):
            if i not in self._coarse:  # what the leaf steps need of the uncut pieces
                pieces = law_pieces(components)
                self._coarse[i] = (float(pieces.lo.min()), float(pieces.hi.max()),
                                   *self._leaf_step(pieces, t))
            if (i, mult) not in self._fine:
                self._fine[(i, mult)] = self._leaf_pieces(components, i, mult)
            pieces, h, floor_loss = self._fine[(i, mult)]
            node = leaf(pieces, h, mode, floor_loss)
            block = comp.power(node, t, t)
            if result is None:
                result = block
            else:
                result = comp.convolve(result, block, 1)
        top = sum(max(c.top() for c in components) * t for components, t in self.phases)
        prof = Profile(mode, result.losses, result.v, result.cut, result.err, result.slack,
                       result.logf, result.rvar, result.bern, top=top)
        if not (np.all(np.isfinite(prof.v)) and math.isfinite(prof.var)):
            raise HitsError("non-finite lattice weights")
        return prof

    def delta(self, eps: float, mode: str, bad: float) -> float:
        return self.profile(mode).value(eps, bad)
