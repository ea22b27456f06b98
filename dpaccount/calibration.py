"""Inverse problems: the noise scale b (or the mixing width k) that meets a target (eps, delta).

Built on the tightest sound upper bound, :func:`dpaccount.tightest` (the smallest of the
accountants' bounds; the result names the method that produced it). Whether a candidate meets
the target is decided exactly as the tightest bound would decide it, but without running every
accountant when that is not needed:

* the closed forms (basic, advanced, KOV) take microseconds: when one of them already meets the
  target, the tightest bound (the smallest) meets it too;
* a sound *lower* bound on the true epsilon (every sound upper bound is at least the true
  epsilon) that is above the target shows that no accountant can meet it:
  :func:`release_test_lower_bound` (closed-form tests on the worst-case one-dimensional pair,
  about a millisecond), then the PLD accountant's lower end on a coarse lattice (its lower
  bound is sound at any resolution), then its ``lower`` at full resolution;
* otherwise the slower accountants (PLD, then RDP) run, in that order.

Where none of these settles a candidate quickly (RDP with soft labels and a large k costs
seconds per k) ``calibrate_k`` can still take minutes; ``progress=True`` shows how far it is.
The search stays where the accountants compute (:func:`dpaccount.validate.check_computable`).
The answer is re-checked: the returned run's upper epsilon meets the target, or the calibration
fails loudly instead of returning a number that does not meet the budget.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
from dataclasses import dataclass

from .errors import InputError
from .events import InstaHide, Relation
from .selection import tightest
from .validate import MAX_TOTAL_EPS, MIN_EPS0, check_delta, fmt_count

__all__ = ["tight_epsilon", "calibrate_noise", "calibrate_k", "calibrate", "Calibration",
           "release_test_lower_bound"]


def tight_epsilon(mech: InstaHide, delta: float) -> float:
    """The number of :func:`dpaccount.tightest`: the smallest sound upper bound."""
    return tightest(mech, delta).epsilon


@dataclass(frozen=True)
class Calibration:
    parameter: str  # "noise" or "k"
    value: float
    epsilon: float  # the re-checked upper bound at the calibrated value
    method: str  # the accountant that produced it
    target_epsilon: float
    delta: float
    mechanism: InstaHide
    evaluations: int
    #: True when ``epsilon`` is the tightest sound upper bound (every accountant ran); False when
    #: a faster accountant's bound (named by ``method``) already met the target and the slower
    #: ones were not run: the tightest bound is then at most ``epsilon``.
    tightest: bool = True

    def to_dict(self) -> dict:
        return {
            "parameter": self.parameter,
            "value": self.value,
            "epsilon": self.epsilon,
            "target_epsilon": self.target_epsilon,
            "delta": self.delta,
            "meets_target": self.epsilon <= self.target_epsilon,
            "method": self.method,
            "tightest": self.tightest,
            "relation": self.mechanism.relation.value,
            "sampler": self.mechanism.sampler.value,
            "labels": self.mechanism.labels.value,
            "mechanism": self.mechanism.to_dict(),
            "evaluations": self.evaluations,
        }


def _check_target(epsilon, delta):
    try:
        e = float(epsilon)
    except (TypeError, ValueError):
        raise InputError(f"target epsilon must be a positive finite number; got "
                         f"{epsilon!r}") from None
    if not (e > 0 and math.isfinite(e)):
        raise InputError(f"target epsilon must be a positive finite number; got {epsilon!r}")
    if e > MAX_TOTAL_EPS:
        raise InputError(f"target epsilon must be at most {MAX_TOTAL_EPS:g}; got {epsilon!r}")
    return e, check_delta(delta)


# ---------------------------------------------------------------- a closed-form lower bound

def _log_sf(x):
    """log P(Z > x), Z ~ Laplace(0, 1)."""
    import numpy as np

    return np.where(x >= 0, math.log(0.5) - np.maximum(x, 0.0),
                    np.log1p(-0.5 * np.exp(np.minimum(x, 0.0))))


def _log_cdf(x):
    """log P(Z <= x), Z ~ Laplace(0, 1)."""
    import numpy as np

    return np.where(x < 0, math.log(0.5) + np.minimum(x, 0.0),
                    np.log1p(-0.5 * np.exp(-np.maximum(x, 0.0))))


def _accurate(lp, l1p):
    """``(log p, log(1 - p))`` with the larger of ``p`` and ``1 - p`` recomputed from the smaller
    (``log1p``), so that each has a small error relative to its own magnitude."""
    import numpy as np

    half = math.log(0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        l1p_ = np.where(lp <= half, np.log1p(-np.exp(np.minimum(lp, half))), l1p)
        lp_ = np.where(l1p < half, np.log1p(-np.exp(np.minimum(l1p, half))), lp)
    return lp_, l1p_


def _eta(x):
    """A bound on the rounding error of a computed log probability ``x`` (``_accurate``)."""
    import numpy as np

    return 1e-13 * np.abs(x) + 1e-300


def _t_kl(m, t, log_p, log_1mp):
    """``T * KL(m/T || p)`` (binary KL) and a bound on its rounding error; ``m <= T``."""
    import numpy as np

    a = m / t
    rest = t - m
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a = np.log(np.maximum(a, 1e-300))
        log_1ma = np.log1p(-np.minimum(a, 1.0 - 1e-16))
        first = np.where(m > 0, m * (log_a - log_p), 0.0)
        second = np.where(rest > 0, rest * (log_1ma - log_1mp), 0.0)
        err = (np.where(m > 0, m * (_eta(log_p) + _eta(log_a)), 0.0)
               + np.where(rest > 0, rest * (_eta(log_1mp) + _eta(log_1ma)), 0.0)
               + 1e-13 * (np.abs(first) + np.abs(second)) + 1e-300)
    return first + second, err


def _count_test(lp1, l1p1, lp0, l1p0, T: float, delta: float) -> float:
    """The best ``log((P1 - delta) / P0)`` over ``m`` for events "at least m of T independent
    releases are hits", hits with probability ``p1`` (D) or ``p0`` (D'), one row per test (the
    log probabilities and log complements are column vectors). ``P1`` is bounded from below and
    ``P0`` from above, with an allowance for rounding; -inf where no row says anything."""
    import numpy as np
    from scipy.special import gammaln

    lp1, l1p1 = _accurate(lp1, l1p1)
    lp0, l1p0 = _accurate(lp0, l1p0)
    mean0, mean1 = T * np.exp(lp0), T * np.exp(lp1)
    fr = np.linspace(0.0, 1.0, 25)[None, :]
    small = np.broadcast_to(np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128])[None, :],
                            (lp1.shape[0], 13))
    m = np.clip(np.concatenate([np.ceil(mean0 + fr * (mean1 - mean0)), small], axis=1), 1.0, T)
    # P0 = P(Bin(T, p0) >= m) <= exp(-T KL(m/T || p0)) when m/T > p0 (Chernoff)
    kl0, err0 = _t_kl(m, T, lp0, l1p0)
    log_p0_up = np.where(m / T > np.exp(lp0), -np.maximum(kl0 - err0, 0.0), 0.0)
    # P1 = P(Bin(T, p1) >= m) >= 1 - P(Bin <= m - 1) >= 1 - exp(-T KL((m-1)/T || p1))
    kl1, err1 = _t_kl(m - 1.0, T, lp1, l1p1)
    safe = np.maximum(kl1 - err1, 0.0)
    with np.errstate(divide="ignore"):
        chern = np.where(((m - 1.0) / T < np.exp(lp1)) & (safe > 0),
                         np.log(-np.expm1(-safe)), -np.inf)
    # ... and >= P(Bin = m), one term of the tail
    parts = (gammaln(T + 1.0), gammaln(m + 1.0), gammaln(T - m + 1.0), m * lp1,
             (T - m) * l1p1)
    with np.errstate(invalid="ignore"):
        term = parts[0] - parts[1] - parts[2] + parts[3] + parts[4]
        term = term - (1e-13 * sum(np.abs(x) for x in parts) + m * _eta(lp1)
                       + (T - m) * _eta(l1p1) + 1e-12)
    term = np.where(np.isnan(term), -np.inf, term)
    log_p1_lo = np.minimum(np.maximum(chern, term), 0.0)
    log_delta = math.log(delta)
    ok = log_p1_lo > log_delta + 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(ok, log_p1_lo + np.log1p(-np.exp(log_delta - np.where(
            ok, log_p1_lo, 0.0))) - log_p0_up, -np.inf)
    return float(np.max(gain)) if gain.size else -math.inf


def release_test_lower_bound(mech: InstaHide, delta: float, *, enough: float = math.inf
                             ) -> float:
    """A sound lower bound on the epsilon (at ``delta``) of the worst case ``mech`` must cover,
    in closed form; 0 where it has none. Every sound upper bound is at least it.

    The pair: one-dimensional records in ``[0, Delta]`` (a domain of the run's L1 diameter, which
    every accountant's bound covers), every record at 0 but the audited one, at ``Delta`` in D and
    at 0 in D' (with released soft labels, its label kept, in a class of each size the run
    has). Each release independently draws a k-subset (the ``subsets`` sampler); it shows what
    the record's inclusion law is (:meth:`~dpaccount.events.InstaHide.inclusion_mixtures`: the
    class count ``j`` with soft labels, nothing without) and its value is shifted by ``eps0``
    noise scales when the record is in. A release is a *hit* when what it shows is among the
    likeliest inclusions (a set ``C`` of components) and its value exceeds ``t``; at least ``m``
    hits among the T releases is an event whose probabilities ``P1`` (D) and ``P0`` (D') give
    ``epsilon >= log((P1 - delta) / P0)``. Binomial tails are bounded in the safe direction
    (Chernoff for ``P0``; Chernoff or one term for ``P1``) with an allowance for rounding, and
    the best ``(C, t, m)`` on a grid is returned, less 1e-6 of it. A second test sums the
    releases' log-likelihood ratios (values binned, shown inclusions grouped) and bounds its tail
    by exponential tilting (:func:`_tilted_test`); it is skipped when the first already exceeds
    ``enough``. Other samplers and relations: 0."""
    import numpy as np

    delta = check_delta(delta)
    if (mech.relation is not Relation.SUBSTITUTION or not mech.sampler_type.amplifies
            or mech.sampler_type.independent_inclusion or mech.sampler_type.uses_norm):
        return 0.0
    e0, T = float(mech.eps0), float(mech.releases)
    if not (math.isfinite(e0) and e0 > 0):
        return 0.0
    ts = np.unique(np.concatenate([e0 * np.linspace(0.0, 1.0, 33),
                                   e0 + np.array([0.5, 1, 2, 4, 8, 16, 32]),
                                   np.array([0.25, 0.5, 1, 2, 4, 8])]))[None, :]
    s_hi, s_lo = _log_sf(ts - e0), _log_sf(ts)  # log P(value > t): record in / out
    f_hi, f_lo = _log_cdf(ts - e0), _log_cdf(ts)
    mixtures = mech.inclusion_mixtures()
    rows = []  # (log g, log h, log (g - h), log (1 - g)) per set C of components
    for _, law in mixtures:
        comps = sorted(((float(w), float(q)) for w, q in law if w > 0), key=lambda c: -c[1])
        comps_in = [c for c in comps if c[1] > 0]
        if not comps_in:
            continue
        n_in = len(comps_in)
        ws = np.array([w for w, _ in comps])
        qs = np.array([q for _, q in comps])
        cum_w, cum_h, cum_gh = np.cumsum(ws), np.cumsum(ws * qs), np.cumsum(ws * (1.0 - qs))
        tail_w = np.cumsum(ws[::-1])[::-1]  # weight from index i on
        for cut in sorted({max(1, int(round(x))) for x in np.geomspace(1, n_in, min(n_in, 12))}):
            g, h, g_h = float(cum_w[cut - 1]), float(cum_h[cut - 1]), float(cum_gh[cut - 1])
            out = float(tail_w[cut]) if cut < len(comps) else 0.0
            if g <= 0 or h <= 0:
                continue
            rows.append((math.log(g), math.log(h), math.log(g_h) if g_h > 0 else -math.inf,
                         math.log(out) if out > 0 else -math.inf))
    best = -math.inf
    if rows:
        best = _count_rows(rows, s_hi, s_lo, f_hi, f_lo, T, delta)
    if best * (1.0 - 1e-6) <= enough:
        for _, law in mixtures:
            comps = [(float(wt), float(q)) for wt, q in law if wt > 0]
            binned = _binned_laws(sorted(comps, key=lambda c: c[1]), e0)
            if binned is not None:
                best = max(best, _tilted_test(binned[0], binned[1], T, delta))
    if not math.isfinite(best) or best <= 0:
        return 0.0
    return best * (1.0 - 1e-6)


def _count_rows(rows, s_hi, s_lo, f_hi, f_lo, T: float, delta: float) -> float:
    """:func:`_count_test` for the hit laws of each set of shown components (rows of
    ``(log g, log h, log (g - h), log (1 - g))``) and each threshold."""
    import numpy as np

    lg, lh, lgh, lout = (np.array(x)[:, None] for x in zip(*rows))
    # D: a hit is "C shown, record in, value > t" or "C shown, record out, value > t"
    lp1 = np.logaddexp(lh + s_hi, lgh + s_lo)
    l1p1 = np.logaddexp(lout, np.logaddexp(lh + f_hi, lgh + f_lo))
    # D': the record's value is 0, so only "C shown, value > t"
    lp0 = lg + s_lo
    l1p0 = np.logaddexp(lout, lg + f_lo)
    shape = (lp1.shape[0] * lp1.shape[1], 1)
    return _count_test(lp1.reshape(shape), l1p1.reshape(shape),
                       np.broadcast_to(lp0, lp1.shape).reshape(shape),
                       np.broadcast_to(l1p0, lp1.shape).reshape(shape), T, delta)


def _log_slice(lo, hi):
    """log P(lo < Z <= hi), Z ~ Laplace(0, 1), for ``lo < hi`` (arrays; infinite ends allowed)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        width = hi - lo
        right = math.log(0.5) - lo + np.log(-np.expm1(-np.minimum(width, 1e300)))  # lo >= 0
        left = math.log(0.5) + hi + np.log(-np.expm1(-np.minimum(width, 1e300)))  # hi <= 0
        mid = np.log1p(-0.5 * np.exp(-np.abs(hi)) - 0.5 * np.exp(-np.abs(lo)))  # lo < 0 < hi
    return np.where(lo >= 0, right, np.where(hi <= 0, left, mid))


def _tilted_test(lp1, lp0, T: float, delta: float) -> float:
    """The test "sum over releases of the binned log-likelihood ratio >= s": one release falls
    in bin b with probability ``e^lp1[b]`` (D) or ``e^lp0[b]`` (D'); weights ``w = lp1 - lp0``.
    ``P_D'(S >= s) <= e^-s P_D(S >= s)`` (w is the likelihood ratio), and ``P_D(S >= s)`` is
    bounded from below by tilting D by ``e^(theta w)`` (mean m, standard deviation sd under the
    tilt): with ``s = m - c sd``, Cantelli gives ``P_theta(S >= s) >= p = c^2 / (1 + c^2)``, and
    Jensen with Cauchy-Schwarz ``P_D(S >= s) >= p exp(T A(theta) - theta (m + sd / sqrt(p)))``.
    Returns the best ``s + log(1 - delta / P_D(S >= s))`` over (theta, c), with every rounding
    allowed for; -inf where nothing is shown."""
    import numpy as np
    from scipy.special import logsumexp

    w = lp1 - lp0
    dw = 1e-12 * float(np.max(np.abs(lp1) + np.abs(lp0) + 1.0))  # error of each weight
    wmax = float(np.max(np.abs(w)))
    lmax = float(np.max(np.abs(lp1)))
    if not T * (wmax + lmax) < 1e150:  # beyond what this arithmetic is checked for
        return -math.inf
    thetas = np.concatenate([[0.0], np.geomspace(1e-3, 64.0, 120)])[:, None]
    z = lp1[None, :] + thetas * w[None, :]
    a = logsumexp(z, axis=1, keepdims=True)
    pi = np.exp(z - a)
    mean1 = np.sum(pi * w[None, :], axis=1)
    var1 = np.sum(pi * (w[None, :] - mean1[:, None]) ** 2, axis=1)
    th, a = thetas, a  # columns: theta; rows of c below broadcast against them
    e_m = T * 1e-12 * (wmax + 1.0)
    m = (T * mean1)[:, None]
    sd = np.sqrt(T * var1 * (1 + 1e-9) + 1e-300)[:, None]
    c = np.array([0.5, 0.75, 1.0, 1.5, 2.0, 3.0])[None, :]
    p = c * c / (1.0 + c * c)
    s = m - c * sd - e_m
    err_a = T * 1e-12 * (lmax + th * wmax + 1.0)
    log_p = (np.log(p) + T * a - th * (m + e_m + sd / np.sqrt(p)) - err_a
             - 1e-12 * np.abs(th * m) - 1e-12)
    log_p = np.minimum(log_p, 0.0)
    log_delta = math.log(delta)
    ok = log_p > log_delta + 1e-9
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where(ok, s - T * dw + np.log1p(-np.exp(np.minimum(log_delta - log_p, 0.0))),
                       -np.inf)
    val = np.where(np.isnan(val), -np.inf, val)
    return float(np.max(val))


def _binned_laws(comps, e0: float):
    """Per-release bin probabilities ``(lp1, lp0)`` of the observation (group of shown
    inclusion components, slice of the value): coarsening what a release shows is
    post-processing."""
    import numpy as np

    edges = np.concatenate([[-np.inf], e0 * np.linspace(0.0, 1.0, 25), [np.inf]])
    la0 = _log_slice(edges[:-1], edges[1:])  # record out: Laplace(0)
    la1 = _log_slice(edges[:-1] - e0, edges[1:] - e0)  # record in: Laplace(e0)
    zero = math.fsum(wt for wt, q in comps if q <= 0)
    inside = [(wt, q) for wt, q in comps if q > 0]
    n_groups = min(len(inside), 48)
    groups = np.array_split(np.arange(len(inside)), n_groups) if n_groups else []
    lp1, lp0 = [], []
    for g in groups:
        gw = math.fsum(inside[i][0] for i in g)
        gh = math.fsum(inside[i][0] * inside[i][1] for i in g)
        gwh = math.fsum(inside[i][0] * (1.0 - inside[i][1]) for i in g)
        if gw <= 0 or gh <= 0:
            continue
        with np.errstate(divide="ignore"):
            lp1.append(np.logaddexp(math.log(gh) + la1, (math.log(gwh) if gwh > 0 else -np.inf)
                                    + la0))
        lp0.append(math.log(gw) + la0)
    if zero > 0:  # releases that show the record is not in them: no information
        lp1.append(np.array([math.log(zero)]))
        lp0.append(np.array([math.log(zero)]))
    if not lp1:
        return None
    return np.concatenate(lp1), np.concatenate(lp0)


# ---------------------------------------------------------------- does a candidate meet it?

#: accountants by cost: closed forms first, then the lattice, then Renyi DP (slow with soft
#: labels and a large k)
_COST = {"basic": 0, "advanced": 0, "kov": 0, "pld": 1, "rdp": 2}


@dataclass(frozen=True)
class _Verdict:
    meets: bool
    best: object  # the smallest usable EpsilonResult computed, or None
    complete: bool  # every accountant ran: ``best`` is the tightest bound


def _decide(cand: InstaHide, target: float, delta: float) -> _Verdict:
    """Whether the tightest sound upper bound of ``cand`` is at most ``target``: the same answer
    as ``tightest(cand, delta).epsilon <= target``, with the cheap bounds first."""
    from .accountants import ACCOUNTANTS

    accs = sorted(ACCOUNTANTS, key=lambda a: _COST.get(a.method, 3))
    rows = []
    if release_test_lower_bound(cand, delta, enough=target) > target:
        return _Verdict(False, None, False)
    screened = False

    def best():
        return min(rows, key=lambda r: r.epsilon) if rows else None

    for i, acc in enumerate(accs):
        if _COST.get(acc.method, 3) >= 1 and not screened:
            screened = True
            if _coarse_lattice_lower_bound(cand, delta) > target:
                return _Verdict(False, best(), False)
        r = acc.row(cand, delta)
        if r.epsilon is not None and r.releases == cand.releases and r.delta <= delta:
            rows.append(r)
            if r.epsilon <= target:
                return _Verdict(True, best(), i == len(accs) - 1)
        if r.lower is not None and r.lower > target * (1 + 1e-6):
            return _Verdict(False, best(), False)
    return _Verdict(False, best(), True)


def _coarse_lattice_lower_bound(cand: InstaHide, delta: float) -> float:
    """The PLD accountant's lower end (a concrete pair, composed on a lattice whose lower bound
    is sound at any resolution) on a coarse lattice: a few milliseconds; 0 where the lattice does
    not apply."""
    from .accountants.pld import PLDAccountant, attained_laws
    from .numerics.lattice import LatticeError, LossComposition

    if PLDAccountant().supports(cand) is not None:
        return 0.0
    try:
        comp = LossComposition(attained_laws(cand), cand.releases, max_points=1 << 12)
        return comp.epsilon(delta)[0]
    except LatticeError:
        return 0.0


def _in_range(mech: InstaHide) -> str | None:
    """None when the accountants can compute ``mech``; else "low" (eps0 too small) or "high"
    (epsilon not representable)."""
    if not mech.eps0 >= MIN_EPS0:
        return "low"
    if not mech.eps0 * mech.releases <= MAX_TOTAL_EPS:
        return "high"
    return None


# ---------------------------------------------------------------- noise

#: The smallest one-release eps0 calibration searches down to: more noise than this buys nothing
#: a float can show.
CALIBRATION_MIN_EPS0 = 1e-15


def calibrate_noise(mech: InstaHide, epsilon: float, delta: float, *,
                    rtol: float = 1e-3, max_evals: int = 200) -> Calibration:
    """Smallest Laplace scale b (to relative precision ``rtol``, rounded up) for which ``mech``
    with that b has upper epsilon <= ``epsilon`` at ``delta``. ``mech.noise`` is the start. The
    search stays where the accountants compute (T eps0 <= 1e300) and where noise still matters
    (eps0 >= :data:`CALIBRATION_MIN_EPS0` per release)."""
    target, delta = _check_target(epsilon, delta)
    n_eval = 0
    shift, k, t = mech.shift, mech.k, mech.releases
    # smallest b with T eps0 <= 1e300 (and b itself a positive float)
    b_min = max(shift * t / (k * MAX_TOTAL_EPS), sys.float_info.min) * (1 + 1e-12)
    # largest b worth trying: eps0 >= 1e-15 per release is private to within float precision
    b_max = min(shift / (k * CALIBRATION_MIN_EPS0), sys.float_info.max / 2) * (1 - 1e-12)

    def meets(b):
        nonlocal n_eval
        n_eval += 1
        return _decide(dataclasses.replace(mech, noise=b), target, delta).meets

    b = min(max(mech.noise, b_min), b_max)
    # bracket: eps is decreasing in b (more noise, more privacy); the end of the computable
    # range is tried first, so a target no noise meets is refused at once
    if meets(b):
        if b > b_min and meets(b_min):
            raise InputError(f"calibration failed: every noise scale down to {b_min:.3g} meets "
                             f"target epsilon {target:g} at delta {delta:g} (smaller ones make "
                             f"epsilon not representable); the target is no constraint")
        hi, lo = b, None
        while lo is None:
            nxt = max(hi / 2, b_min)
            if nxt >= hi or n_eval > max_evals:
                raise InputError(f"calibration failed: every noise scale down to {hi:.3g} meets "
                                 f"target epsilon {target:g} at delta {delta:g} (smaller ones "
                                 f"make epsilon not representable); the target is no "
                                 f"constraint")
            if meets(nxt):
                hi = nxt
            else:
                lo = nxt
    else:
        if b >= b_max or not meets(b_max):
            raise InputError(f"calibration failed: no noise scale up to {b_max:.3g} meets "
                             f"target epsilon {target:g} at delta {delta:g} (larger ones give "
                             f"eps0 below {CALIBRATION_MIN_EPS0:g} per release, where more noise "
                             f"buys nothing a float shows); raise the target epsilon or delta")
        lo, hi = b, None
        while hi is None:
            nxt = min(lo * 2, b_max)
            if nxt <= lo or n_eval > max_evals:
                raise InputError(f"calibration failed: no noise scale up to {lo:.3g} meets "
                                 f"target epsilon {target:g} at delta {delta:g} (larger ones "
                                 f"give eps0 below {CALIBRATION_MIN_EPS0:g} per release, where "
                                 f"more noise buys nothing a float shows); raise the target "
                                 f"epsilon or delta")
            if meets(nxt):
                hi = nxt
            else:
                lo = nxt
    while hi / lo > 1 + rtol and n_eval < max_evals:
        mid = math.sqrt(lo) * math.sqrt(hi)  # the geometric mean, without under- or overflow
        if meets(mid):
            hi = mid
        else:
            lo = mid
    final = dataclasses.replace(mech, noise=hi)
    check = tightest(final, delta)  # the re-check, by every accountant
    n_eval += 1
    if not check.epsilon <= target:
        raise InputError(f"calibration failed: re-check gave epsilon {check.epsilon:g} > target "
                         f"{target:g} at noise {hi:g}")
    return Calibration("noise", hi, check.epsilon, check.method, target, delta, final, n_eval)


# ---------------------------------------------------------------- k

def calibrate_k(mech: InstaHide, epsilon: float, delta: float, *, k_max: int = 64,
                progress: bool = False) -> Calibration:
    """Smallest k in 1..min(k_max, N) for which ``mech`` with that k has a tightest sound upper
    epsilon <= ``epsilon`` at ``delta``. Every k is tried in order (epsilon is not monotone in k
    in general, since a larger k raises q = k/N while it lowers eps0), each decided with the
    cheap bounds first (module docstring). ``progress``: a progress bar on stderr.

    The result's ``epsilon`` is the bound that met the target and ``method`` the accountant that
    produced it; ``tightest`` says whether every accountant ran (else the tightest bound is at
    most ``epsilon``)."""
    target, delta = _check_target(epsilon, delta)
    if isinstance(k_max, bool) or not isinstance(k_max, numbers.Real) or \
            not math.isfinite(k_max) or k_max != int(k_max) or k_max < 1:
        raise InputError(f"k_max must be a positive integer; got {k_max!r}")
    top = min(int(k_max), mech.n)
    n_eval = 0
    found = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=top, desc="calibrate k", unit="k", file=sys.stderr, leave=False)
    try:
        for k in range(1, top + 1):
            cand = dataclasses.replace(mech, k=k)
            where = _in_range(cand)
            if where == "high":  # epsilon beyond 1e300 >= target: does not meet
                if bar is not None:
                    bar.update(1)
                continue
            if where == "low":
                raise InputError(f"calibration failed: no k in 1..{k - 1} meets epsilon "
                                 f"{target:g} at noise {mech.noise:g}, and k={k} gives eps0 "
                                 f"below {MIN_EPS0:g}, beyond float precision; lower --k-max "
                                 f"(or k_max) below {k} or raise the target")
            n_eval += 1
            v = _decide(cand, target, delta)
            if bar is not None:
                bar.update(1)
            if v.meets:
                found = (k, v, cand)
                break
    finally:
        if bar is not None:
            bar.close()
    if found is None:
        raise InputError(f"calibration failed: no k in 1..{fmt_count(top)} meets epsilon "
                         f"{target:g} at noise {mech.noise:g}")
    k, v, cand = found
    r = v.best
    if not r.epsilon <= target:  # the re-check
        raise InputError(f"calibration failed: re-check gave epsilon {r.epsilon:g} > target "
                         f"{target:g} at k {k}")
    return Calibration("k", k, r.epsilon, r.method, target, delta, cand, n_eval,
                       tightest=v.complete)


def calibrate(mech: InstaHide, target_epsilon: float, delta: float, *, solve: str = "noise",
              k_max: int = 64, progress: bool = False) -> Calibration:
    """Solve for ``noise`` (the smallest Laplace scale) or ``k`` (the smallest mixing width)
    that meets ``(target_epsilon, delta)`` under the tightest sound bound."""
    if solve == "noise":
        return calibrate_noise(mech, target_epsilon, delta)
    if solve == "k":
        return calibrate_k(mech, target_epsilon, delta, k_max=k_max, progress=progress)
    raise InputError(f"solve must be 'noise' or 'k'; got {solve!r}")
