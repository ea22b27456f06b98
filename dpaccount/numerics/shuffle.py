"""Amplification by shuffling for one permutation epoch: the clone pair and the epoch's law.

Generic numerics, no policy (which runs use it: :meth:`dpaccount.samplers.PermutationType.
shuffled_units`); the argument is ``docs/pld_hits.md``, "Permutation mixing: amplification by
the hidden position", and ``proofs/shuffle_clones.py`` checks its steps.

**The clone pair** (Feldman, McMillan, Talwar 2021, "Hiding among the clones", Thm 3.2 and its
proof, Lemma 3.3). ``n`` reports ``R(x_1), ..., R(x_n)`` of an ``eps0``-DP randomizer are
shuffled; ``x_1`` is the record that changes (to ``x_1'``). With ``p = e^{-eps0}``, every other
report is a mixture ``R(x_i) = p (R(x_1) + R(x_1'))/2 + (1 - p) LO_i`` (pure DP gives
``R(x_i) >= e^{-eps0} max(R(x_1), R(x_1'))``), and the pair ``(R(x_1), R(x_1'))`` is the binary
randomized response at ``eps0`` followed by a fixed map (``R(x_1) = a W_0 + (1-a) W_1``,
``R(x_1') = (1-a) W_0 + a W_1``, ``a = e^{eps0}/(1 + e^{eps0})``). Shown which of the others are
clones (``C ~ Binomial(n - 1, p)``), the shuffled reports are a post-processing of the number
``S`` of ``W_0`` draws among the ``C + 1`` clone-or-record draws:

    P: S = A + D_0,   Q: S = A + D_1,   A ~ Binomial(C, 1/2),
    D_0 ~ Bernoulli(a),  D_1 ~ Bernoulli(1 - a),

so ``(P, Q)`` (with ``C`` revealed) dominates the shuffle of any ``n`` reports. Its loss at
``(C, S = s)`` is ``log((e^{eps0} s + C + 1 - s) / (s + e^{eps0} (C + 1 - s)))``, in
``[-eps0, eps0]``. The pair is symmetric (``s -> C + 1 - s`` swaps P and Q), so it covers both
orders of a substitution. Fewer clones only make it worse: ``C + 1`` clones is ``C`` clones
followed by one more ``Bernoulli(1/2)`` added to ``A`` on both sides (post-processing), so the
pair at ``c`` dominates the pair at every ``c' >= c``, and ``n`` reports are dominated by
``n' <= n``.

**Numerics.** Atoms of ``(C, S)``: ``C`` over ``[c_lo, c_hi]`` (its lower tail moved to
``C = 0``, its upper tail to ``c_hi``: both only make the pair worse), ``S`` within 20 standard
deviations of ``(C + 1)/2`` (the lower tail moved up to the first kept ``s``, the upper tail to
``s = C + 1``, the loss ``eps0``: both raise the loss). Under the tilted measure (``P``) raising
a loss never lowers ``delta(eps) = E_P[(1 - e^{eps - S_T})_+]`` of any composition (the
function is nondecreasing in every release's loss).

**The epoch** (``ShuffledEpoch``): with the record's slots of ``k - 1`` permutations shown, its
slot of the remaining permutation is hidden among the others. With probability ``rho = 1 - (1 -
1/N)^{k-1}`` it falls into a shown slot: the epoch is then the plain Laplace pair at
``k eps0`` (one coordinate, which dominates any split of the same L1 shift). Otherwise the shown
slots are the plain Laplace pair at ``(k - 1) eps0`` and the hidden report is shuffled among the
at least ``n = pool - (k - 1)`` reports of the slots not shown (the clone pair at ``n``). The
product of the two is formed cell by cell on the lattice (each factor's pieces aggregated per
cell of the lattice step, then convolved, with the means carried alongside), in long double
FFT with Higham's round-off bound.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["clone_points", "clone_delta", "ShuffledEpoch", "MAX_ATOMS"]

#: the most (C, S) atoms of one clone pair; beyond, C is capped (which only makes it worse)
MAX_ATOMS = 400_000
#: the half-width of the kept S range, in standard deviations of Binomial(C, 1/2)
_S_SDS = 20.0
#: relative error allowed for a binomial pmf from scipy (checked against mpmath in the tests)
_REL_PMF = 1e-12
_U = 2.0 ** -52


def _check(n, eps0):
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise InputError(f"n (the reports shuffled) must be an integer >= 1; got {n!r}")
    if not (eps0 > 0 and math.isfinite(eps0)):
        raise InputError(f"eps0 must be positive and finite; got {eps0!r}")


@functools.lru_cache(maxsize=32)
def clone_points(n: int, eps0: float, max_atoms: int = MAX_ATOMS):
    """``(mass, loss)`` of the clone pair of ``n`` shuffled ``eps0``-DP reports under ``P``
    (module docstring), tails moved up; masses sum to 1 within ``_REL_PMF``. Losses are raised
    by a few ulps (a bound on their own round-off). ``proofs/shuffle_clones.py`` checks the pair
    against exact shuffles and these atoms against its enumeration."""
    from scipy.stats import binom

    _check(n, eps0)
    others = int(n) - 1
    p = math.exp(-eps0)
    cs = [0]
    wc = [1.0]
    if others > 0 and p > 0.0:
        mu = others * p
        sd = math.sqrt(others * p * (1.0 - p))
        c_lo = max(0, int(math.floor(mu - 15.0 * sd - 15.0)))
        c_hi = min(others, int(math.ceil(mu + 15.0 * sd + 15.0)))
        # cap C so that the atoms fit (the pair at the cap dominates every larger C)
        width = np.arange(c_lo, c_hi + 1, dtype=float)
        width = np.minimum(width + 2.0, 2.0 * (_S_SDS * 0.5 * np.sqrt(width + 1.0) + 2.0) + 1.0)
        within = np.cumsum(width) <= max_atoms
        c_hi = c_lo + max(int(np.count_nonzero(within)) - 1, 0)
        cs = np.arange(c_lo, c_hi + 1)
        wc = binom.pmf(cs, others, p)
        low = float(binom.cdf(c_lo - 1, others, p)) if c_lo > 0 else 0.0
        high = float(binom.sf(c_hi, others, p))
        wc[-1] += high           # C >= c_hi taken at c_hi
        cs, wc = list(cs), list(wc)
        if low > 0.0:            # C < c_lo taken at 0 (randomized response)
            cs = [0] + cs
            wc = [low] + wc
    a = math.exp(-math.log1p(math.exp(-eps0)))        # e^eps0 / (1 + e^eps0)
    b = math.exp(-eps0 - math.log1p(math.exp(-eps0)))  # 1 - a
    cs = np.asarray(cs, dtype=np.int64)
    wc = np.asarray(wc, dtype=float)
    keep_c = wc > 0.0
    cs, wc = cs[keep_c], wc[keep_c]
    half = _S_SDS * 0.5 * np.sqrt(cs + 1.0) + 2.0
    s_lo = np.maximum(0, np.floor((cs + 1) / 2.0 - half)).astype(np.int64)
    s_hi = np.minimum(cs + 1, np.ceil((cs + 1) / 2.0 + half)).astype(np.int64)
    # one more atom per C for the upper tail of S (at s = C + 1) where it was cut
    cut_hi = s_hi < cs + 1
    counts = s_hi - s_lo + 1
    c = np.repeat(cs, counts)
    w = np.repeat(wc, counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    s = np.repeat(s_lo, counts) + (np.arange(c.size) - first)
    m = a * binom.pmf(s - 1, c, 0.5) + b * binom.pmf(s, c, 0.5)
    # tails of S: below s_lo moved up to s_lo (P(S < s_lo) <= P(A <= s_lo - 1)); above s_hi
    # moved to C + 1, the loss eps0 (P(S > s_hi) <= P(A >= s_hi))
    starts = np.cumsum(counts) - counts
    m[starts] += np.where(s_lo > 0, binom.cdf(s_lo - 1, cs, 0.5), 0.0)
    c = np.concatenate([c, cs[cut_hi]])
    w = np.concatenate([w, wc[cut_hi]])
    s = np.concatenate([s, cs[cut_hi] + 1])
    m = np.concatenate([m, binom.sf(s_hi[cut_hi] - 1, cs[cut_hi], 0.5)])
    with np.errstate(divide="ignore"):
        ls = np.log(s.astype(float))
        lr = np.log((c + 1 - s).astype(float))
    loss = np.logaddexp(eps0 + ls, lr) - np.logaddexp(ls, eps0 + lr)
    loss = np.minimum(loss + 8 * _U * (eps0 + np.log(c + 2.0) + 1.0), eps0)
    mass = w * m
    keep = mass > 0.0
    return mass[keep], loss[keep]


def clone_delta(n: int, eps0: float, eps: float) -> float:
    """``delta(eps)`` of one clone pair, by direct summation of its atoms (the check of the
    lattice at one release; tails moved up, so an upper bound of the pair's own)."""
    mass, loss = clone_points(n, eps0)
    hit = loss > eps
    return float(np.dot(mass[hit], -np.expm1(eps - loss[hit])))


def _cells(mass, lo, hi, mlo, mhi, h):
    """Pieces that each lie in one cell ``[j h, (j + 1) h]`` (up to ``tau`` of floating point)
    aggregated per cell: ``(j0, M, O_lo, O_hi, tau)`` with ``M`` the cell masses and ``O`` the
    mass-weighted mean offsets from ``j h - tau`` (nonnegative), bracketed."""
    j = np.floor((lo + hi) / 2.0 / h)
    tau = float(max(np.max(j * h - lo), np.max(hi - (j + 1) * h), 0.0))
    j0 = int(j.min())
    idx = (j - j0).astype(np.int64)
    size = int(idx.max()) + 1
    base = j * h - tau
    M = np.bincount(idx, mass, minlength=size)
    o_lo = np.bincount(idx, mass * np.maximum(mlo - base, 0.0), minlength=size)
    o_hi = np.bincount(idx, mass * np.maximum(mhi - base, 0.0), minlength=size)
    return j0, M, o_lo, o_hi, tau


def _conv(a, b):
    """Long double FFT convolution and an L1 bound on its round-off (Higham 2002 Thm 24.2)."""
    from .hits import fft_convolve

    return fft_convolve(a, b, ld=True)


@dataclass(frozen=True)
class ShuffledEpoch:
    """One permutation epoch with the record's slot of one permutation hidden (module
    docstring): ``k`` permutations of ``n_slots`` outputs, the hidden report shuffled among
    ``pool`` reports (the record's included) before the shown slots are taken out, each slot
    ``eps0``-DP (``Delta/(k b)``). The law of its loss under ``P``, as pieces on the lattice of
    the caller's step. Symmetric: it covers both orders of a substitution. The decomposition is
    ``proofs/shuffle_clones.py`` (1)."""

    k: int
    n_slots: int
    pool: int
    eps0: float
    weight: float = 1.0

    def __post_init__(self):
        for name in ("k", "n_slots", "pool"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 1):
                raise InputError(f"{name} must be an integer >= 1; got {v!r}")
        if self.pool - (self.k - 1) < 1:
            raise InputError(f"pool must exceed k - 1 = {self.k - 1}; got {self.pool!r}")
        if not (self.eps0 > 0 and math.isfinite(self.eps0)):
            raise InputError(f"eps0 must be positive and finite; got {self.eps0!r}")
        if not (0.0 < self.weight <= 1.0 + 1e-12):
            raise InputError(f"component weight must be in (0, 1]; got {self.weight!r}")

    @property
    def rho(self) -> float:
        """The probability that the hidden slot is one of the shown ones (at most k - 1 of N)."""
        return -math.expm1((self.k - 1) * math.log1p(-1.0 / self.n_slots)) \
            if self.n_slots > 1 else (1.0 if self.k > 1 else 0.0)

    def top(self) -> float:
        return self.k * self.eps0

    def bottom(self) -> float:
        return -self.k * self.eps0

    def _default_step(self) -> float:
        return 2.0 ** math.ceil(math.log2(2.0 * self.k * self.eps0 / 2.0 ** 14))

    def pieces(self, extra_losses=()):
        """The epoch's pieces under ``P``, its weight included. ``extra_losses``: the caller's
        lattice points (equally spaced multiples of its step ``h``): the product's pieces then
        span two cells of it; without them a default step is used."""
        from .hits import Component, Pieces, component_pieces

        extra = np.asarray(extra_losses, dtype=float)
        if extra.size >= 2:
            h = float(extra[1] - extra[0])
        else:
            h = self._default_step()
        pts = np.arange(math.floor(-self.top() / h) - 1, math.ceil(self.top() / h) + 2) * h
        out = []
        rho = self.rho
        if rho > 0.0:  # the hidden slot falls into a shown one: the Laplace pair at k eps0
            out.append(component_pieces(Component(self.weight * rho, 1.0, self.k * self.eps0,
                                                  "PQ"), pts))
        if rho < 1.0:
            out.append(self._product(h, pts, self.weight * (1.0 - rho)))
        p = Pieces.cat(out)
        return p.select(p.mass > 0)

    def _product(self, h, pts, weight):
        from .hits import Component, Pieces, component_pieces

        mass, loss = clone_points(self.pool - (self.k - 1), self.eps0)
        cl = _cells(mass, loss, loss, loss, loss, h)
        if self.k == 1:  # nothing shown: the clone pair alone
            j0, M, o_lo, o_hi, tau = cl
            span = h + 2 * tau
            err_m = err_lo = err_hi = 0.0
            ncell = 1
        else:
            lap = component_pieces(Component(1.0, 1.0, (self.k - 1) * self.eps0, "PQ"), pts)
            (ja, Ma, la, ua, ta) = _cells(lap.mass, lap.lo, lap.hi, lap.m_lo, lap.m_hi, h)
            (jb, Mb, lb, ub, tb) = cl
            j0, tau = ja + jb, ta + tb
            M, err_m = _conv(Ma, Mb)
            c1, e1 = _conv(la, Mb)
            c2, e2 = _conv(Ma, lb)
            c3, e3 = _conv(ua, Mb)
            c4, e4 = _conv(Ma, ub)
            o_lo, err_lo = c1 + c2, e1 + e2
            o_hi, err_hi = c3 + c4, e3 + e4
            span = 2 * h + 2 * tau
            ncell = 2
        base = (j0 + np.arange(M.size)) * h - tau
        keep = M > err_m
        Mk = M[keep]
        with np.errstate(divide="ignore", invalid="ignore"):
            off_lo = np.clip((o_lo[keep] - err_lo) / (Mk + err_m), 0.0, span)
            off_hi = np.clip((o_hi[keep] + err_hi) / (Mk - err_m), 0.0, span)
        off_lo = np.where(np.isfinite(off_lo), off_lo, 0.0)
        off_hi = np.where(np.isfinite(off_hi), off_hi, span)
        pad = 8 * _U * (np.abs(base[keep]) + span)
        lo = base[keep]
        hi = lo + ncell * h + 2 * tau
        m_lo = np.maximum(lo + off_lo - pad, lo)
        m_hi = np.minimum(lo + off_hi + pad, hi)
        # masses: the truth is at most M + |error| cell by cell; the L1 bound of the errors,
        # the cells dropped (M <= err) and the pmf's relative error go to the top loss, so the
        # law below dominates the truth for every nondecreasing function (docs/pld_hits.md)
        dropped = float(np.maximum(M[~keep], 0.0).sum()) + 2 * err_m
        total = float(Mk.sum()) + dropped
        extra_top = dropped + _REL_PMF * total
        top = self.top()
        mass_out = np.append(Mk, extra_top) * weight
        lo = np.append(lo, top)
        hi = np.append(hi, top)
        m_lo = np.append(m_lo, top)
        m_hi = np.append(m_hi, top)
        return Pieces(mass_out, lo, np.minimum(hi, top), np.minimum(m_lo, top),
                      np.minimum(m_hi, top))
