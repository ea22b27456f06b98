"""A lattice for privacy loss distributions: composition by FFT with two-sided bounds.

Generic numerics, no policy: it composes the loss laws it is given (each
:class:`~dpaccount.numerics.laplace_pair.LossLaw` a fixed number of times, phases one after the
other) and bounds ``delta(eps) = E_ref[(e^S - e^eps)_+]`` from both sides, ``S`` the sum of all
the losses. Which laws a run needs is decided in :mod:`dpaccount.accountants.pld`.

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
  squaring stays constant and T up to 1e12 costs about log2(T) FFTs. Phases (different laws, run
  one after the other) share one base step: each phase's step is the base times a power of 2, so
  their composed blocks convolve after an exact mean-preserving regrid.

A lattice that cannot represent a law usefully raises :class:`LatticeError`; callers decide what
to do (the PLD accountant refuses, naming the case). It never turns silently into (0, 1).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve
from scipy.special import logsumexp

from ..errors import InputError
from ..validate import check_count, check_delta
from .laplace_pair import LaplaceMixturePair, LossLaw
from .roots import largest_exceeding, smallest_meeting

__all__ = ["LossComposition", "LatticeError"]

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


class LatticeError(ArithmeticError):
    """The lattice cannot represent this loss distribution usefully (the step it would need
    makes the bound vacuous, or weights overflow). Callers refuse; they never report (0, 1)."""


@dataclass
class _Node:
    """The lattice law of the sum of ``m`` losses, values ``(offset + i) * h``.

    Stored *tilted*: ``v[i] = w[i] * e^{l_i}`` where ``w`` is the law under the reference measure
    (the object the convex-order argument is about). Tilting commutes with convolution, and in
    this form the FFT's absolute round-off (~1e-16) is absolute in the units of delta, whatever
    the size of the loss. ``log_g2`` >= log E[e^{2 S'}] for the untruncated lattice variable of
    this block (Hoeffding's lemma accounts for each regridding). ``phase_releases`` is the
    release count of the phase the block belongs to (a block of m of them occurs at most
    ``phase_releases // m`` times in the sum); 0 for a block that spans phases (it occurs once).
    """

    m: int
    h: float
    offset: int
    v: np.ndarray
    log_g2: float
    phase_releases: int = 0

    @property
    def losses(self) -> np.ndarray:
        return (self.offset + np.arange(self.v.size)) * self.h


def _own_step(law: LossLaw, max_points: int) -> float:
    """The lattice step one law would get alone: ~1/1000 of the per-release standard deviation,
    never so fine that one release needs more than ``max_points`` cells, and with the top atom
    (the pure-DP loss) on the lattice so that it costs no split."""
    values, log_masses = law.pieces(coarse=True)
    pm = np.exp(log_masses - log_masses.max())
    pm /= pm.sum()
    mean = float((values * pm).sum())
    sd = math.sqrt(max(float((pm * (values - mean) ** 2).sum()), 0.0))
    lo_l, hi_l = float(values.min()), float(values.max())
    span = max(hi_l - lo_l, 1e-300)
    h = max(sd / 1000.0, span / (max_points - 4), 1e-300)
    if hi_l >= h:
        h = hi_l / math.floor(hi_l / h)
    return h


class _Composer:
    """Composes one alternative (direction) of a run: each phase's loss law its number of times,
    then the phases together. Keeps the global bookkeeping of the bounds: ``var_total`` (sum over
    roundings of copies * range^2, for Azuma-Hoeffding) and ``cut_total`` (sum over cuts of
    copies * the e^l-weighted mass cut)."""

    def __init__(self, phases, max_points: int, cut_tol: float):
        self.max_points = max_points
        self.cut_tol = cut_tol / len(phases)  # shared by the phases' cuts
        self.n_ops = 0
        self.var_total = 0.0
        self.cut_total = 0.0
        own = [_own_step(law, max_points) for law, _ in phases]
        base = min(own)
        self.leaves = []
        for (law, releases), h_own in zip(phases, own):
            # the base step times a power of 2 (at least the law's own step): phases then
            # convolve after an exact factor-2^j regrid
            h = base * 2.0 ** max(0, math.ceil(math.log2(h_own / base) - 1e-9))
            values, log_masses = law.pieces(coarse=True)
            lo_l, hi_l = float(values.min()), float(values.max())
            if (hi_l - lo_l) / h > 4 * max_points:  # pragma: no cover - guards memory
                raise LatticeError(f"PLD lattice would need {(hi_l - lo_l) / h:.3g} points")
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
            self.leaves.append((_Node(1, h, offset, v, log_g2, releases), releases))

    @staticmethod
    def _copies(node: "_Node") -> int:
        return max(1, node.phase_releases // node.m) if node.phase_releases else 1

    def _regrid(self, node: _Node, factor: int) -> _Node:
        """Mean-preserving coarsening (in the reference measure) to step h*factor."""
        h, h2 = node.h, node.h * factor
        if h2 > 20.0:
            # a split over a step h2 multiplies tilted weights by up to e^h2: the bound would be
            # vacuous (and overflow); give up on the lattice rather than return garbage
            raise LatticeError(f"lattice step {h2:.3g} too coarse for this loss range")
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
        self.var_total += self._copies(node) * h2 * h2
        return _Node(node.m, h2, off2, v2, node.log_g2 + 4 * h2 * h2 / 8, node.phase_releases)

    def _cut(self, node: _Node) -> _Node:
        """Drop tail mass whose e^l-weighted total is small, and account for it exactly.

        Each cut is allowed ``cut_tol / (copies * 128)``, so all cuts together (at most about
        2 log2(T) + 2 per direction) stay below ``cut_tol``.
        """
        v = node.v
        copies = self._copies(node)
        thr = self.cut_tol / (copies * 128.0)
        cum_lo = np.cumsum(v)
        cum_hi = np.cumsum(v[::-1])
        keep_lo = int(np.searchsorted(cum_lo, thr, side="right"))
        keep_hi = int(v.size - np.searchsorted(cum_hi, thr, side="right"))
        if keep_hi - keep_lo < 2 or (keep_lo == 0 and keep_hi == v.size):
            return node
        self.cut_total += copies * float(v[:keep_lo].sum() + v[keep_hi:].sum())
        return _Node(node.m, node.h, node.offset + keep_lo, v[keep_lo:keep_hi].copy(),
                     node.log_g2, node.phase_releases)

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
        same = a.phase_releases if a.phase_releases == b.phase_releases else 0
        return self._fit(_Node(a.m + b.m, a.h, a.offset + b.offset, v, a.log_g2 + b.log_g2,
                               same))

    def _power(self, leaf: _Node, t: int) -> _Node:
        """``t`` copies of one release's law, by repeated squaring."""
        base = self._fit(leaf)
        result = None
        while True:
            if t & 1:
                result = base if result is None else self.convolve(result, base)
            t >>= 1
            if not t:
                break
            base = self.convolve(base, base)
        return result

    def compose(self) -> _Node:
        result = None
        for leaf, releases in self.leaves:
            block = self._power(leaf, releases)
            if result is not None:
                # a block that spans phases occurs once in the sum
                block = dataclasses.replace(block, phase_releases=0)
                result = dataclasses.replace(result, phase_releases=0)
                result = self.convolve(result, block)
            else:
                result = block
        return result


class _Profile:
    """Bounds on delta(eps) of one direction from its composed lattice."""

    def __init__(self, comp: _Composer, node: _Node):
        if not np.all(np.isfinite(node.v)):
            raise LatticeError("non-finite lattice weights")
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


class LossComposition:
    """Two-sided epsilon and delta of a composition of loss laws: delta is the max over the
    alternatives (directions) of the composed hockey-stick divergence.

    ``LossComposition(laws, releases)``: ``releases`` copies of each law in ``laws`` (a sequence
    of :class:`LossLaw`, or a :class:`LaplaceMixturePair`, whose own profile is the laws ``PQ``
    and ``QP``). :meth:`of_phases` composes phases one after the other: ``[(laws, releases),
    ...]`` with the same number of alternatives in every phase; alternative ``i`` is the
    composition of the ``i``-th law of every phase. ``epsilon(delta)`` returns ``(lower,
    upper)``: the epsilon of the composition at ``delta`` lies between them; ``upper`` is checked
    to meet ``delta``. ``max_points`` controls the lattice size and so the interval width. Raises
    :class:`LatticeError` where the lattice cannot represent the laws.
    """

    def __init__(self, laws, releases: int, *, max_points: int = 1 << 15):
        self._init([(laws, releases)], max_points)

    @classmethod
    def of_phases(cls, phases, *, max_points: int = 1 << 15) -> "LossComposition":
        obj = cls.__new__(cls)
        obj._init(list(phases), max_points)
        return obj

    @staticmethod
    def _as_laws(laws) -> tuple:
        if isinstance(laws, LaplaceMixturePair):
            laws = [LossLaw(((1.0, laws, d),)) for d in ("PQ", "QP")]
        elif isinstance(laws, LossLaw):
            laws = [laws]
        laws = tuple(laws)
        if not laws or not all(isinstance(x, LossLaw) for x in laws):
            raise InputError("laws must be a LaplaceMixturePair or a sequence of LossLaw")
        return laws

    def _init(self, phases, max_points):
        if not phases:
            raise InputError("a composition needs at least one phase")
        self.phases = tuple((self._as_laws(laws), check_count("releases", t)) for laws, t in phases)
        widths = {len(laws) for laws, _ in self.phases}
        if len(widths) != 1:
            raise InputError(f"every phase must have the same number of alternatives (laws); got "
                             f"{sorted(widths)}")
        self.laws = self.phases[0][0]
        self.releases = sum(t for _, t in self.phases)
        self.max_points = int(max_points)
        self._cache = {}

    def _profiles(self, cut_tol: float):
        key = float(f"{cut_tol:.3g}")
        finer = [c for c in self._cache if c <= key]
        if finer:  # a composition cut at least as finely serves (its bounds are as sound)
            return self._cache[max(finer)]
        if key not in self._cache:
            profs = []
            for i in range(len(self.laws)):
                comp = _Composer([(laws[i], t) for laws, t in self.phases], self.max_points, key)
                profs.append(_Profile(comp, comp.compose()))
            self._cache[key] = profs
        return self._cache[key]

    def top(self) -> float:
        """At least the largest total loss (sum over phases of releases * the largest
        one-release loss): delta is 0 beyond it."""
        total = 0.0
        for laws, t in self.phases:
            best = 0.0
            for law in laws:
                for _, pair, direction in law.pairs:
                    one = pair.top_loss() if direction != "QP" else -float(
                        pair.log_ratio(-pair.eps0))
                    best = max(best, one)
            total += best * t
        return total

    def delta(self, eps: float, *, tol: float = 1e-14) -> tuple[float, float]:
        """(lower, upper) bounds on delta(eps), the max over both directions."""
        if not (eps >= 0 and math.isfinite(eps)):
            raise InputError(f"epsilon must be a finite number >= 0; got {eps!r}")
        self._profiles(tol)
        # every composition made so far (each cut differently) bounds delta: take the best of
        # them, so that delta at the epsilon this object returned meets that epsilon's delta
        up = min(max(p.delta_upper(eps) for p in profs) for profs in self._cache.values())
        lo = max(max(p.delta_lower(eps, max(up, 1e-300)) for p in profs)
                 for profs in self._cache.values())
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
            raise InputError(f"index must name one of the {len(self.laws)} laws; got {index!r}")
        prof = self._profiles(tol)[index]
        return prof.lv.copy(), prof.v.copy()

    def epsilon(self, delta: float) -> tuple[float, float]:
        delta = check_delta(delta)
        top = self.top()  # T * the largest one-release loss: delta is 0 beyond it
        profs = self._profiles(1e-4 * delta)

        def f_up(e):
            return max(p.delta_upper(e) for p in profs) - delta

        def f_lo(e):
            return max(p.delta_lower(e, delta) for p in profs) - delta

        upper = smallest_meeting(f_up, top, floor=1e-12)
        # lower: delta_lower(e) > delta proves the true epsilon exceeds e
        lower = largest_exceeding(f_lo, upper, floor=1e-12)
        return min(lower, upper), upper

