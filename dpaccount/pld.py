"""Tight accounting of DP-InstaHide by its privacy loss distribution (PLD), with two-sided bounds.

The subsampled Laplace pair of one release (THEORY.md Sec. 3; Zhu, Dong, Wang 2022, Def. 7) is,
with ``s`` the release's L1 shift, ``eps0 = s/b`` and ``q`` the inclusion probability,

    P = (1 - q) Lap(0, b) + q Lap(s, b),     Q = Lap(0, b).

Which law of the privacy loss is composed depends on the relation (``docs/theory.md`` Sec. 3,
``proofs/symmetrised_pair.py``):

* **add/remove** (``poisson``, and ``subsets`` with the swap coupling): every ordered neighbour
  pair is dominated, for all orders of the hockey-stick divergence at once, by ``(P, Q)`` (a
  record removed) or by ``(Q, P)`` (a record added); the pair is the same for every release of
  the run, so ``delta(eps) = max(H(P^T || Q^T), H(Q^T || P^T))``: the two directions ``PQ`` and
  ``QP``, composed separately.
* **substitution**: ``(P, Q)`` is attained (every other record at the replacement's value) and
  worst for ONE release, but it does not dominate every neighbour pair under composition: with the
  other records between x and x' the neighbours are mixtures on both sides, and for T >= 2 they can
  exceed it (Lebeda, Regehr, Kamath, Steinke 2024). What holds for every neighbour pair and every
  order ``alpha >= 1`` is ``H_alpha(M(D) || M(D')) <= H_alpha(P || Q)`` (Balle, Barthe, Gaboardi
  2018, Thm 2 with joint convexity). The tightest single pair that dominates every neighbour
  pair for ALL orders is then the *symmetrised* pair (``sym``), whose loss law is the positive
  part of the ``PQ`` loss, its mirror image ``-L`` with mass ``e^L`` times that of ``L``, and an
  atom at 0 of mass ``(1-q)(1 - e^{-eps0/2})`` (Zhu, Dong, Wang 2022, Sec. 5, symmetrisation of a
  trade-off function). It is what is composed for the upper bound. The attained pair ``(P, Q)``
  in both directions gives the lower end: a concrete pair of one-dimensional datasets reaches it.
* **soft labels** (``Labels.SOFT``): the release also shows ``j``, the number of records of the
  record's class in it, with the same law on both neighbours; given ``j`` the record is in with
  probability ``j / n_c``. The loss law of one release is the mixture over ``j`` of the laws above
  at ``q = j / n_c`` (``q = 0``: a loss of 0), the count being revealed
  (``proofs/soft_label_mixture.py``).

For a loss law ``L`` (under the reference measure of its direction),
``delta(eps) = E_ref[(e^S - e^eps)_+]`` with ``S`` the sum of T i.i.d. copies.

How the bounds are made (derivation in ``docs/pld.md``):

* **Upper bound by convex order.** ``x -> (e^x - e^eps)_+`` is convex and increasing. Each loss
  is discretised onto a lattice by a *mean-preserving* split (a value in ``[a, a + h]`` goes to
  ``a`` and ``a + h`` with weights that keep its mean), which is a mean-preserving spread, so the
  lattice variable dominates the true one in convex order; convex order is kept by independent
  sums and by further mean-preserving regridding (Shaked & Shanthikumar 2007, Thm 3.A.12).
  Hence the lattice computation of ``E[(e^S - e^eps)_+]`` is an upper bound. Mass cut from the
  tails is accounted for exactly (its ``e^l``-weighted mass, times the number of copies of the
  block it was cut from, times a bound on ``E[e^rest]``), see :class:`_Node`.
* **Lower bound by concentration.** The same split is a randomised rounding whose errors are
  martingale differences with ranges ``h``; Azuma-Hoeffding bounds the total error ``D`` by
  ``eta`` except with probability ``exp(-2 eta^2 / V)``, ``V = sum of copies * h^2``, which gives
  ``delta(eps) >= e^-eta (delta_lattice(eps + eta) - sqrt(E[e^{2 S'}] exp(-2 eta^2/V)))``.
* **Composition** by FFT with repeated squaring; after each convolution the lattice is coarsened
  (by mean-preserving splits, factor 2) whenever it grows past ``max_points``, so the work per
  squaring stays constant and T up to 1e12 costs about log2(T) FFTs.

The upper epsilon is checked to meet the target delta. Where the loss range is too wide for a
lattice (eps0 > 30), the accountant refuses, and the ``pld`` row reports the smaller of KOV and
RDP under its own name.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.signal import fftconvolve
from scipy.special import logsumexp

from ._validate import check_count, check_delta
from .mechanism import EpsilonResult, InstaHide, Labels, Relation, Sampler

__all__ = ["LaplaceMixturePair", "LossLaw", "PLDAccountant", "dominating_laws",
           "attained_laws", "shared_accountant", "pld_result", "MAX_EPS0", "DIRECTIONS"]

#: Largest eps0 the lattice handles: the reference mass of the top loss is ~e^-eps0 and must not
#: vanish in double precision next to its e^eps0-weighted contribution.
MAX_EPS0 = 30.0

#: The loss laws of a pair: ``PQ`` (log p/q under Q), ``QP`` (log q/p under P), ``sym`` (the
#: symmetrised pair, module docstring).
DIRECTIONS = ("PQ", "QP", "sym")

_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
    return direction


@dataclass(frozen=True)
class LaplaceMixturePair:
    """``P = (1-q) Lap(0,b) + q Lap(s,b)``, ``Q = Lap(0,b)``: the subsampled Laplace pair of one
    DP-InstaHide release (also of Poisson-sampled Laplace under add/remove). With ``q = 1`` it is
    the plain Laplace pair of shift ``s``."""

    q: float
    s: float
    b: float

    def __post_init__(self):
        if not (0.0 < self.q <= 1.0):
            raise ValueError(f"q must be in (0, 1]; got {self.q!r}")
        for name in ("s", "b"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive finite number; got {v!r}")
        if self.eps0 > MAX_EPS0:
            raise ValueError(
                f"eps0 = s/b must be at most {MAX_EPS0:g} for the PLD lattice; got {self.eps0:g}"
            )

    @property
    def eps0(self) -> float:
        return self.s / self.b

    def top_loss(self) -> float:
        """The largest loss of the ``PQ`` and ``sym`` laws: ``eps1 = log(1 - q + q e^eps0)``."""
        return float(self.log_ratio(self.eps0))

    # The loss as a function of u = (|z| - |z - s|)/b in [-eps0, eps0]:
    #   log p/q = log(1 - q + q e^u)   (monotone increasing in u)
    def log_ratio(self, u):
        """``log(1 - q + q e^u)``, the loss log p/q as a function of u, without overflow."""
        u = np.asarray(u, dtype=float)
        log1mq = math.log1p(-self.q) if self.q < 1.0 else -math.inf
        with np.errstate(over="ignore"):
            small = np.log1p(self.q * np.expm1(np.minimum(u, 700.0)))
        big = np.logaddexp(log1mq, math.log(self.q) + u)
        return np.where(u <= 700.0, small, big)

    def _log_density_u(self, u, reference: str):
        """Log density of u on (-eps0, eps0) under the reference measure; z = (b u + s)/2."""
        z = (self.b * u + self.s) / 2.0
        log_dz = math.log(self.b / 2.0)
        log_f0 = -z / self.b - math.log(2 * self.b)  # Lap(0,b) on z in (0, s)
        if reference == "Q":
            return log_f0 + log_dz
        log_fs = -(self.s - z) / self.b - math.log(2 * self.b)  # Lap(s,b) on z in (0, s)
        log1mq = math.log1p(-self.q) if self.q < 1.0 else -math.inf
        return np.logaddexp(log1mq + log_f0, math.log(self.q) + log_fs) + log_dz

    def _log_atoms(self, reference: str):
        """log masses at u = -eps0 (z <= 0) and u = +eps0 (z >= s)."""
        e0, l2 = self.eps0, math.log(0.5)
        if reference == "Q":
            return l2, l2 - e0
        log1mq = math.log1p(-self.q) if self.q < 1.0 else -math.inf
        lq = math.log(self.q)
        return (float(np.logaddexp(log1mq + l2, lq + l2 - e0)),
                float(np.logaddexp(log1mq + l2 - e0, lq + l2)))

    def log_zero_atom(self) -> float:
        """log of the ``sym`` law's atom at loss 0: ``1 - Q(u > 0) - P(u > 0)``, which is
        ``(1-q)(1 - e^{-eps0/2})`` (``proofs/symmetrised_pair.py``)."""
        log1mq = math.log1p(-self.q) if self.q < 1.0 else -math.inf
        return log1mq + math.log(-math.expm1(-self.eps0 / 2.0))

    def u_of_loss(self, loss, direction: str):
        """Inverse of the loss map: the u at which the loss equals ``loss`` (monotone). For
        ``sym`` the u in [0, eps0] where the positive part has loss ``|loss|`` (the mirror of a
        negative loss ``-l`` is the point of loss ``l``)."""
        loss = np.asarray(loss, dtype=float)
        ell = {"PQ": loss, "QP": -loss, "sym": np.abs(loss)}[_check_direction(direction)]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            small = np.log((np.expm1(np.minimum(ell, 700.0)) + self.q) / self.q)
            # ell > 700: log(e^ell - 1 + q) - log q = ell + log1p((q - 1) e^-ell) - log q
            big = ell + np.log1p((self.q - 1.0) * np.exp(-np.maximum(ell, 700.0))) \
                - math.log(self.q)
        return np.where(ell <= 700.0, small, big)

    def u_range(self, direction: str) -> tuple[float, float]:
        """The u-interval whose points the law of ``direction`` is built from."""
        return (0.0, self.eps0) if _check_direction(direction) == "sym" else (-self.eps0,
                                                                              self.eps0)

    def _slices(self, edges_u, reference: str, sign: float):
        """Mass (log) and conditional mean of ``sign * loss`` of each u-slice under the
        reference measure (16-point Gauss-Legendre per slice)."""
        a, bnd = edges_u[:-1], edges_u[1:]
        mid, half = (a + bnd) / 2, (bnd - a) / 2
        u = mid[:, None] + half[:, None] * _GL_X[None, :]
        with np.errstate(divide="ignore"):
            logd = self._log_density_u(u, reference) + np.log(half[:, None] * _GL_W[None, :])
        log_mass = logsumexp(logd, axis=1)
        ok = np.isfinite(log_mass)
        wts = np.exp(logd[ok] - log_mass[ok, None])  # normalised within each slice
        mean = sign * (self.log_ratio(u[ok]) * wts).sum(axis=1)
        return mean, log_mass[ok]

    def loss_pieces(self, direction: str, edges_u: np.ndarray):
        """The loss distribution of one release for ``direction`` as ``(values, log_masses)``
        under the direction's reference measure: atoms plus one piece per u-slice
        ``(edges_u[i], edges_u[i+1])`` of the continuous part, given by its mass and conditional
        mean. Masses are in log space: under Q the top atom has mass ~e^-eps0, which underflows
        for large eps0 while its weight e^loss does not vanish.

        * ``PQ``: loss ``log p/q`` under Q; ``QP``: loss ``log q/p`` under P; both with the two
          atoms (z <= 0 and z >= s).
        * ``sym``: under the symmetrised pair's reference, the points u > 0 with their loss and
          Q-mass, the same points with the opposite loss and P-mass, and an atom at 0
          (:meth:`log_zero_atom`); ``edges_u`` is cut to [0, eps0]."""
        direction = _check_direction(direction)
        e0 = self.eps0
        lo_q, hi_q = self._log_atoms("Q")
        lo_p, hi_p = self._log_atoms("P")
        top = self.top_loss()
        if direction == "sym":
            edges = np.unique(np.concatenate([[0.0, e0], edges_u[(edges_u > 0) & (edges_u < e0)]]))
            m_q, lm_q = self._slices(edges, "Q", 1.0)
            m_p, lm_p = self._slices(edges, "P", -1.0)
            # renormalise each continuous part to its analytic total: Q(0 < u < eps0) =
            # (e^{-eps0/2} - e^{-eps0})/2 and P(0 < u < eps0) = (1-q) of that + q (1 - e^{-eps0/2})/2
            lq_cont = math.log(0.5) - e0 / 2 + math.log(-math.expm1(-e0 / 2))
            log1mq = math.log1p(-self.q) if self.q < 1.0 else -math.inf
            lp_cont = float(np.logaddexp(log1mq + lq_cont, math.log(self.q) + math.log(0.5)
                                         + math.log(-math.expm1(-e0 / 2))))
            lm_q = lm_q + lq_cont - logsumexp(lm_q)
            lm_p = lm_p + lp_cont - logsumexp(lm_p)
            values = np.concatenate([m_q, [top], m_p, [-top], [0.0]])
            log_masses = np.concatenate([lm_q, [hi_q], lm_p, [hi_p], [self.log_zero_atom()]])
            return values, log_masses
        ref, sign = ("Q", 1.0) if direction == "PQ" else ("P", -1.0)
        mean, log_mass = self._slices(edges_u, ref, sign)
        lo_m, hi_m = (lo_q, hi_q) if ref == "Q" else (lo_p, hi_p)
        values = np.concatenate([[sign * float(self.log_ratio(-e0))], mean, [sign * top]])
        log_masses = np.concatenate([[lo_m], log_mass, [hi_m]])
        # quadrature masses: renormalise the continuous part to its analytic total 1 - atoms
        log_cont = math.log(-math.expm1(float(np.logaddexp(lo_m, hi_m))))
        log_masses[1:-1] += log_cont - logsumexp(log_masses[1:-1])
        return values, log_masses


@dataclass(frozen=True)
class LossLaw:
    """The law of one release's privacy loss as a *revealed* mixture: with weight ``w`` the
    release is a draw from ``pair``'s law in ``direction`` (``pair=None``: a loss of exactly 0,
    the record surely absent), and which component it came from is visible to the adversary
    (a released soft label shows the class count). Built by :func:`dominating_laws` and
    :func:`attained_laws`."""

    components: tuple  # ((weight, LaplaceMixturePair | None, direction), ...)

    def __post_init__(self):
        total = 0.0
        for w, pair, direction in self.components:
            if not (w > 0 and math.isfinite(w)):
                raise ValueError(f"loss-law weights must be positive; got {w!r}")
            if pair is not None:
                _check_direction(direction)
            total += w
        if not self.components or abs(total - 1.0) > 1e-9:
            raise ValueError(f"loss-law weights must sum to 1; got {total!r}")

    @property
    def pairs(self):
        return [(w, p, d) for w, p, d in self.components if p is not None]

    def pieces(self, lattice=None, *, coarse: bool = False):
        """``(values, log_masses)`` of all components, each piece inside one cell of
        ``lattice`` (slices are cut at the preimages of the lattice points, so the two-point
        split of a piece's mean dominates the piece in convex order)."""
        vals, logm = [], []
        for w, pair, direction in self.components:
            lw = math.log(w)
            if pair is None:
                vals.append(np.zeros(1))
                logm.append(np.array([lw]))
                continue
            lo, hi = pair.u_range(direction)
            grid = np.linspace(lo, hi, 257 if coarse else 4097)
            if lattice is not None:
                pre = pair.u_of_loss(lattice, direction)
                pre = pre[np.isfinite(pre) & (pre > lo) & (pre < hi)]
                grid = np.unique(np.concatenate([grid, pre]))
            v, m = pair.loss_pieces(direction, grid)
            vals.append(v)
            logm.append(m + lw)
        return np.concatenate(vals), np.concatenate(logm)


def _split_tilted(values: np.ndarray, log_masses: np.ndarray, h: float):
    """Mean-preserving split of point masses onto the lattice h*Z, returned tilted:
    ``(offset, v)`` with ``v[j] = (mass split onto point j) * e^{(offset + j) h}``; computed
    from log masses so that a mass too small for a double still brings its tilted weight."""
    pos = values / h
    lo = np.floor(pos)
    frac = pos - lo
    lo = lo.astype(np.int64)
    offset = int(lo.min())
    n = int(lo.max()) - offset + 2
    v = np.zeros(n)
    with np.errstate(divide="ignore"):
        lv_lo = log_masses + np.log1p(-frac) + lo * h
        lv_hi = log_masses + np.log(frac) + (lo + 1) * h
    np.add.at(v, lo - offset, np.exp(lv_lo))
    np.add.at(v, lo - offset + 1, np.exp(lv_hi))
    return offset, v


class _LatticeError(ArithmeticError):
    """The lattice cannot represent this loss distribution usefully."""


@dataclass
class _Node:
    """The lattice law of the sum of ``m`` losses, values ``(offset + i) * h``.

    Stored *tilted*: ``v[i] = w[i] * e^{l_i}`` where ``w`` is the law under the reference measure
    (the object the convex-order argument is about). Tilting commutes with convolution, and in
    this form the FFT's absolute round-off (~1e-16) is absolute in the units of delta, whatever
    the size of the loss. ``log_g2`` >= log E[e^{2 S'}] for the untruncated lattice variable of
    this block (Hoeffding's lemma accounts for each regridding).
    """

    m: int
    h: float
    offset: int
    v: np.ndarray
    log_g2: float

    @property
    def losses(self) -> np.ndarray:
        return (self.offset + np.arange(self.v.size)) * self.h


class _Composer:
    """Composes one direction's loss T times; keeps the global bookkeeping of the bounds:
    ``var_total`` (sum over roundings of copies * range^2, for Azuma-Hoeffding) and
    ``cut_total`` (sum over cuts of copies * the e^l-weighted mass cut). A block of m releases
    occurs at most T // m times in the sum (its copies)."""

    def __init__(self, law: LossLaw, releases: int, max_points: int, cut_tol: float):
        self.T = releases
        self.max_points = max_points
        self.cut_tol = cut_tol
        self.n_ops = 0
        self.var_total = 0.0
        self.cut_total = 0.0
        values, log_masses = law.pieces(coarse=True)
        pm = np.exp(log_masses - log_masses.max())
        pm /= pm.sum()
        mean = float((values * pm).sum())
        sd = math.sqrt(max(float((pm * (values - mean) ** 2).sum()), 0.0))
        lo_l, hi_l = float(values.min()), float(values.max())
        span = max(hi_l - lo_l, 1e-300)
        # lattice step: ~1/1000 of the per-release standard deviation, and never so fine that
        # one release needs more than max_points cells
        h = max(sd / 1000.0, span / (max_points - 4), 1e-300)
        if hi_l >= h:  # put the top atom (the pure-DP loss) on the lattice: no split cost there
            h = hi_l / math.floor(hi_l / h)
        if span / h > 4 * max_points:  # pragma: no cover - guards memory, not reachable
            raise RuntimeError(f"PLD lattice would need {span / h:.3g} points")
        lattice = np.arange(math.ceil(lo_l / h), math.floor(hi_l / h) + 1) * h
        # slice edges: the lattice preimages (each slice then lies inside one lattice cell,
        # where the two-point split of its mean dominates it in convex order) and a uniform
        # u-grid (so that the quadrature is accurate)
        values, log_masses = law.pieces(lattice)
        offset, v = _split_tilted(values, log_masses, h)
        self.var_total += releases * h * h
        lv = (offset + np.arange(v.size)) * h
        with np.errstate(divide="ignore"):
            log_g2 = float(logsumexp(np.log(v) + lv))
        self.leaf = _Node(1, h, offset, v, log_g2)

    def _copies(self, m: int) -> int:
        return max(1, self.T // m)

    def _regrid(self, node: _Node, factor: int) -> _Node:
        """Mean-preserving coarsening (in the reference measure) to step h*factor."""
        h, h2 = node.h, node.h * factor
        if h2 > 20.0:
            # a split over a step h2 multiplies tilted weights by up to e^h2: the bound would be
            # vacuous (and overflow); give up on the lattice rather than return garbage
            raise _LatticeError(f"lattice step {h2:.3g} too coarse for this loss range")
        idx = node.offset + np.arange(node.v.size)
        lo = np.floor_divide(idx, factor)
        frac = (idx - lo * factor) / factor
        off2 = int(lo.min())
        v2 = np.zeros(int(lo.max()) - off2 + 2)
        # w-mass (1-frac) goes to lo*h2, frac to (lo+1)*h2; in tilted units multiply by e^{dl}
        d_lo = lo * h2 - idx * h
        np.add.at(v2, lo - off2, node.v * (1.0 - frac) * np.exp(d_lo))
        np.add.at(v2, lo - off2 + 1, node.v * frac * np.exp(d_lo + h2))
        # Hoeffding's lemma: a mean-zero rounding of range h2 multiplies E[e^{tX}] by at most
        # exp(t^2 h2^2 / 8); every copy of the block in the final sum has such a rounding
        self.var_total += self._copies(node.m) * h2 * h2
        return _Node(node.m, h2, off2, v2, node.log_g2 + 4 * h2 * h2 / 8)

    def _cut(self, node: _Node) -> _Node:
        """Drop tail mass whose e^l-weighted total is small, and account for it exactly.

        Each cut is allowed ``cut_tol / (copies * 128)``, so all cuts together (at most about
        2 log2(T) + 2 per direction) stay below ``cut_tol``.
        """
        v = node.v
        copies = self._copies(node.m)
        thr = self.cut_tol / (copies * 128.0)
        cum_lo = np.cumsum(v)
        cum_hi = np.cumsum(v[::-1])
        keep_lo = int(np.searchsorted(cum_lo, thr, side="right"))
        keep_hi = int(v.size - np.searchsorted(cum_hi, thr, side="right"))
        if keep_hi - keep_lo < 2 or (keep_lo == 0 and keep_hi == v.size):
            return node
        self.cut_total += copies * float(v[:keep_lo].sum() + v[keep_hi:].sum())
        return _Node(node.m, node.h, node.offset + keep_lo, v[keep_lo:keep_hi].copy(),
                     node.log_g2)

    def _fit(self, node: _Node) -> _Node:
        node = self._cut(node)
        while node.v.size > self.max_points:
            node = self._cut(self._regrid(node, 2))
        return node

    def convolve(self, a: _Node, b: _Node) -> _Node:
        if a.h != b.h:
            if a.h < b.h:
                a, b = b, a
            b = self._regrid(b, int(round(a.h / b.h)))
        v = fftconvolve(a.v, b.v)
        np.maximum(v, 0.0, out=v)  # FFT round-off leaves tiny negatives
        self.n_ops += 1
        return self._fit(_Node(a.m + b.m, a.h, a.offset + b.offset, v, a.log_g2 + b.log_g2))

    def compose(self) -> _Node:
        t = self.T
        base = self._fit(self.leaf)
        result = None
        while True:
            if t & 1:
                result = base if result is None else self.convolve(result, base)
            t >>= 1
            if not t:
                break
            base = self.convolve(base, base)
        return result


class _Profile:
    """Bounds on delta(eps) of one direction from its composed lattice."""

    def __init__(self, comp: _Composer, node: _Node):
        if not np.all(np.isfinite(node.v)):
            raise _LatticeError("non-finite lattice weights")
        self.lv = node.losses
        self.v = node.v
        self.var = comp.var_total
        self.log_g2 = node.log_g2
        # E[e^{S'}] = total tilted mass before cuts; the cut mass enters times E[e^{rest}],
        # itself at most E[e^{S'}] (every block has E[e^{block}] >= 1)
        g1 = float(self.v.sum()) + comp.cut_total
        self.cut_term = g1 * comp.cut_total
        # FFT round-off: ~1e-16 absolute per entry of each convolution, summed generously
        self.round_term = 1e-16 * max(comp.n_ops, 1) * self.v.size * max(float(self.v.max()),
                                                                          1e-300)

    def _hockey(self, eps: float) -> float:
        """sum over l > eps of v (1 - e^{eps - l}) = E_ref[(e^{S'} - e^eps)_+] on the lattice."""
        mask = self.lv > eps
        if not mask.any():
            return 0.0
        return float(np.sum(self.v[mask] * -np.expm1(eps - self.lv[mask])))

    def delta_upper(self, eps: float) -> float:
        return min(1.0, self._hockey(eps) + self.cut_term + self.round_term)

    def delta_lower(self, eps: float, target: float) -> float:
        """Lower bound on delta(eps); eta chosen so the bad-event term is ~1e-3 * target."""
        var = max(self.var, 1e-300)
        err = max(1e-3 * target, 1e-300)
        eta = math.sqrt(var * max(self.log_g2 - 2 * math.log(err), 0.0) / 2)
        bad = math.exp(min(0.5 * (self.log_g2 - 2 * eta * eta / var), 700.0))
        val = math.exp(-eta) * (self._hockey(eps + eta) - self.round_term - bad)
        return max(0.0, val)


def _pair(mech: InstaHide, q: float) -> LaplaceMixturePair:
    return LaplaceMixturePair(q=q, s=mech.sensitivity, b=mech.noise)


def _laws(mech: InstaHide, directions, inclusion) -> list[LossLaw]:
    """One :class:`LossLaw` per direction: the revealed mixture over ``inclusion``
    (``((weight, q), ...)``) of the subsampled pair at each ``q`` (``q = 0``: loss 0)."""
    out = []
    for direction in directions:
        comps = tuple((w, None if q == 0.0 else _pair(mech, q), direction) for w, q in inclusion)
        out.append(LossLaw(comps))
    return out


def _check_pld_sampler(mech: InstaHide) -> None:
    if mech.sampler is Sampler.PERMUTATION:
        raise ValueError("the PLD accountant covers samplers 'subsets' and 'poisson', not "
                         "'permutation' (no amplification: use the closed forms)")


def dominating_laws(mech: InstaHide) -> list[tuple[int, list[LossLaw]]]:
    """The loss laws whose composition bounds ``mech``'s delta from above, per distinct class
    size of the record's class (one entry without soft labels): ``[(n_c, laws)]``; the delta of
    the run is the max over entries and over the laws of each.

    Substitution: the symmetrised pair (``sym``), the tightest single pair that dominates every
    neighbour pair for all orders (``docs/theory.md`` Sec. 3, ``proofs/symmetrised_pair.py``).
    Add/remove: the pair in both directions. Soft labels: the revealed mixture over the class
    count (``proofs/soft_label_mixture.py``)."""
    _check_pld_sampler(mech)
    directions = ("sym",) if mech.relation is Relation.SUBSTITUTION else ("PQ", "QP")
    return [(nc, _laws(mech, directions, inc)) for nc, inc in mech.inclusion_mixtures()]


def attained_laws(mech: InstaHide) -> list[LossLaw]:
    """The loss laws of a concrete pair of one-dimensional datasets that ``mech`` can face: the
    record at one end of the domain, every other record (of its class, with soft labels; the
    smallest class) at the replacement's value. Its epsilon is a lower bound on the worst case
    over datasets in a 1-D domain of this diameter (Balle, Barthe, Gaboardi 2018, Thm 10: this
    pair attains eps1 for one release)."""
    _check_pld_sampler(mech)
    nc, inc = mech.inclusion_mixtures()[0]  # the smallest class
    return _laws(mech, ("PQ", "QP"), inc)


class PLDAccountant:
    """Two-sided epsilon of T releases whose one-release loss laws are ``laws``: delta is the
    max over the laws (directions) of the composed hockey-stick divergence.

    ``laws`` is a sequence of :class:`LossLaw`, or a :class:`LaplaceMixturePair` (its own
    profile: the laws ``PQ`` and ``QP``). ``epsilon(delta)`` returns ``(lower, upper)``: the
    epsilon of these laws at ``delta`` lies between them; ``upper`` is checked to meet ``delta``.
    ``max_points`` controls the lattice size and so the interval width (more points, narrower
    interval, slower).
    """

    def __init__(self, laws, releases: int, *, max_points: int = 1 << 15):
        if isinstance(laws, LaplaceMixturePair):
            laws = [LossLaw(((1.0, laws, d),)) for d in ("PQ", "QP")]
        elif isinstance(laws, LossLaw):
            laws = [laws]
        self.laws = tuple(laws)
        if not self.laws or not all(isinstance(x, LossLaw) for x in self.laws):
            raise ValueError("laws must be a LaplaceMixturePair or a sequence of LossLaw")
        self.releases = check_count("releases", releases)
        self.max_points = int(max_points)
        self._cache = {}

    def _profiles(self, cut_tol: float):
        key = float(f"{cut_tol:.3g}")
        if key not in self._cache:
            profs = []
            for law in self.laws:
                comp = _Composer(law, self.releases, self.max_points, key)
                profs.append(_Profile(comp, comp.compose()))
            self._cache[key] = profs
        return self._cache[key]

    def top(self) -> float:
        """The largest total loss ``T * max one-release loss``: delta is 0 beyond it."""
        best = 0.0
        for law in self.laws:
            for _, pair, direction in law.pairs:
                one = pair.top_loss() if direction != "QP" else -float(
                    pair.log_ratio(-pair.eps0))
                best = max(best, one)
        return best * self.releases

    def delta(self, eps: float, *, tol: float = 1e-14) -> tuple[float, float]:
        """(lower, upper) bounds on delta(eps), the max over both directions."""
        if not (eps >= 0 and math.isfinite(eps)):
            raise ValueError(f"epsilon must be a finite number >= 0; got {eps!r}")
        try:
            profs = self._profiles(tol)
        except _LatticeError:
            return 0.0, 1.0  # the trivial bounds
        up = max(p.delta_upper(eps) for p in profs)
        lo = max(p.delta_lower(eps, max(up, 1e-300)) for p in profs)
        return min(lo, up), up

    def loss_law(self, index: int = 0, *, tol: float = 1e-12):
        """The composed lattice law of the privacy loss of T releases of ``laws[index]``:
        ``(losses, p_mass)`` with ``p_mass`` its law under the first distribution of the pair
        (under the reference, the law is ``p_mass * e^{-losses}``). Rounded pessimistically onto
        the lattice (convex order), so it is an approximation for estimates such as what an
        audit can expect to see, not a bound; the cut tails (total e^l-weighted mass below
        ``tol``) are dropped."""
        if isinstance(index, bool) or not isinstance(index, int) or not (
                0 <= index < len(self.laws)):
            raise ValueError(f"index must name one of the {len(self.laws)} laws; got {index!r}")
        prof = self._profiles(tol)[index]
        return prof.lv.copy(), prof.v.copy()

    def epsilon(self, delta: float) -> tuple[float, float]:
        delta = check_delta(delta)
        top = self.top()  # T * the largest one-release loss: delta is 0 beyond it
        try:
            profs = self._profiles(1e-4 * delta)
        except _LatticeError:
            return 0.0, top  # the trivial bounds: [0, T eps1]

        def f_up(e):
            return max(p.delta_upper(e) for p in profs) - delta

        def f_lo(e):
            return max(p.delta_lower(e, delta) for p in profs) - delta

        if f_up(0.0) <= 0:
            upper = 0.0
        elif f_up(top) > 0:
            upper = top
        else:
            upper = brentq(f_up, 0.0, top, xtol=1e-12 * max(top, 1e-12), rtol=1e-12)
            step = 1e-12 * max(upper, 1e-12)
            while f_up(upper) > 0:
                upper += step
                step *= 2
        # lower: delta_lower(e) > delta proves the true epsilon exceeds e
        if upper == 0.0 or f_lo(0.0) <= 0:
            lower = 0.0
        else:
            lower = brentq(f_lo, 0.0, upper, xtol=1e-12 * max(upper, 1e-12), rtol=1e-12)
            step = 1e-12 * max(lower, 1e-12)
            while lower > 0 and f_lo(lower) <= 0:
                lower = max(0.0, lower - step)
                step *= 2
        return min(lower, upper), upper


@functools.lru_cache(maxsize=16)
def shared_accountant(laws: tuple, releases: int) -> "PLDAccountant":
    """One :class:`PLDAccountant` per (laws, releases), kept: callers that ask the same
    mechanism several questions (an audit's estimate and its plot) compose it once."""
    return PLDAccountant(laws, releases)


def dominating_accountants(mech: InstaHide, *, max_points: int = 1 << 15
                           ) -> list[tuple[int, PLDAccountant]]:
    """A :class:`PLDAccountant` per entry of :func:`dominating_laws`: ``[(n_c, accountant)]``.
    The run's delta at eps is the max over them of ``accountant.delta(eps)``."""
    return [(nc, PLDAccountant(laws, mech.releases, max_points=max_points))
            for nc, laws in dominating_laws(mech)]


def pld_result(mech: InstaHide, delta: float, *, max_points: int = 1 << 15) -> EpsilonResult:
    """The ``pld`` row of the epsilon table. ``epsilon`` is the sound upper bound: the largest,
    over the record's possible class sizes, of the lattice upper bound for the dominating laws
    (:func:`dominating_laws`), or KOV where that is smaller. ``epsilon_lower`` is a lower bound
    on the epsilon of a concrete pair of one-dimensional datasets (:func:`attained_laws`), so
    the worst case over datasets in a 1-D domain of this diameter lies in
    ``[epsilon_lower, epsilon_upper]``; ``pair_epsilon_lower`` bounds the dominating laws' own
    epsilon from below, so ``discretisation_width`` is what the lattice costs.

    Where the lattice does not apply (eps0 > MAX_EPS0), the row carries the smaller of the KOV
    and RDP upper bounds and no lower bound, and says so. The permutation sampler has no
    amplification and no pair here: its row is n/a.
    """
    from . import closed_form

    rel, smp = mech.relation.value, mech.sampler.value
    source = ("Zhu, Dong, Wang 2022 (dominating pairs, symmetrisation); Balle, Barthe, Gaboardi "
              "2018 Thm 2; Koskela et al. 2020 (FFT); docs/pld.md")
    if mech.sampler is Sampler.PERMUTATION:
        return EpsilonResult("pld", None, delta, rel, smp, mech.releases,
                             note="not applicable: permutation mixing has no amplification by "
                                  "sampling; see the closed forms", source=source,
                             extra={"epsilon_lower": None, "epsilon_upper": None},
                             labels=mech.labels.value)
    unit = closed_form.composition_unit(mech)
    kov = closed_form.kov_epsilon(unit.eps, unit.count, delta)
    if mech.eps0 > MAX_EPS0:
        from .rdp import rdp_result

        r = rdp_result(mech, delta).epsilon
        best, which = (kov, "KOV") if r is None or kov <= r else (r, "RDP")
        return EpsilonResult(
            "pld", best, delta, rel, smp, mech.releases,
            note=f"lattice not applicable for eps0 = {mech.eps0:.4g} > {MAX_EPS0:g}: the smaller "
                 f"of the KOV and RDP upper bounds ({which}) is shown; no lower bound; the true "
                 f"value can be far smaller; {mech.label_note}", source=source,
            extra={"epsilon_lower": None, "epsilon_upper": best}, labels=mech.labels.value)
    worst = None
    accountants = dominating_accountants(mech, max_points=max_points)
    for nc, acc in accountants:
        lo, up = acc.epsilon(delta)
        if worst is None or up > worst[2]:
            worst = (nc, lo, up)
    nc, pair_lo, up = worst
    att_laws = tuple(attained_laws(mech))
    same = [acc for _, acc in accountants if acc.laws == att_laws]  # add/remove: one pair
    attained = same[0] if same else PLDAccountant(att_laws, mech.releases, max_points=max_points)
    att_lo, _ = attained.epsilon(delta)
    upper = min(up, kov)
    lower = min(att_lo, upper)
    width = (upper - lower) / upper if upper > 0 else 0.0
    disc = (up - pair_lo) / up if up > 0 else 0.0
    pair_word = ("symmetrised pair (dominates every substitution pair under composition)"
                 if mech.relation is Relation.SUBSTITUTION else "pair in both directions")
    note = (f"privacy loss distribution of the {pair_word}; {mech.label_note}; worst case over "
            f"datasets (1-D records) in [epsilon_lower, epsilon_upper], width {width:.2%}")
    if width < 0.01:
        note += " (tight)"
    elif mech.relation is Relation.SUBSTITUTION:
        note += (f"; the lattice costs {disc:.2%}, the rest is the gap between the dominating "
                 "pair and the worst concrete pair found")
    if kov < up:
        note += "; KOV was smaller and is reported"
    if mech.class_sizes is not None and len(set(mech.class_sizes)) > 1:
        note += f"; worst class size {nc}"
    return EpsilonResult(
        "pld", upper, delta, rel, smp, mech.releases, note=note, source=source,
        extra={"epsilon_lower": lower, "epsilon_upper": upper, "interval_width": width,
               "lattice_upper": up, "pair_epsilon_lower": pair_lo,
               "discretisation_width": disc,
               "worst_class_size": nc if mech.labels is Labels.SOFT else None},
        labels=mech.labels.value,
    )
