"""Closed-form privacy of DP-InstaHide: per release, amplified, and composed over T releases.

Every function returns an upper bound on epsilon (pure DP, or (eps, delta)-DP where it takes a
delta). All arithmetic is in log space so that eps0 up to 1e5 and T up to 1e12 neither overflow
nor lose the answer; where a value cannot be represented as a float the table says so instead of
printing ``inf``.

Sources (cited again at the line that uses each):

* [DMNS06] Dwork, McSherry, Nissim, Smith, "Calibrating noise to sensitivity in private data
  analysis", TCC 2006, Prop. 1 (Laplace mechanism); Dwork & Roth, "The Algorithmic Foundations of
  Differential Privacy" (2014), Thm 3.6.
* [BGC21] Borgnia et al., "DP-InstaHide", arXiv:2103.02079v2, Sec. 4: averaging k records divides
  the L1 sensitivity by k, so k-way mixup is k times stronger than the naive mechanism.
* [BBG18] Balle, Barthe, Gaboardi, "Privacy amplification by subsampling: tight analyses via
  couplings and divergences", NeurIPS 2018, arXiv:1807.01647, Table 1: sampling without
  replacement under substitution, Poisson sampling under add/remove.
* [DR14] Dwork & Roth (2014), Thm 3.16 (basic composition).
* [DRV10] Dwork, Rothblum, Vadhan, "Boosting and differential privacy", FOCS 2010, Thm III.3;
  Dwork & Roth (2014), Thm 3.20 (advanced composition).
* [KOV15] Kairouz, Oh, Viswanath, "The composition theorem for differential privacy", ICML 2015,
  arXiv:1311.0776, Thm 3.3 (optimal composition of eps-DP mechanisms); [MV16] Murtagh & Vadhan,
  "The complexity of computing the optimal composition of differential privacy", TCC 2016,
  arXiv:1507.03113, Thm 1.5 / Eq. (1): the optimal delta at every eps'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import brentq
from scipy.special import gammaln, logsumexp

from ..errors import InputError
from ..validate import check_count, check_delta, check_eps

__all__ = [
    "naive_epsilon",
    "per_release_epsilon",
    "amplified_epsilon",
    "basic_composition",
    "advanced_composition",
    "kov_delta",
    "kov_epsilon",
    "advanced_composition_units",
    "log_expm1",
]

_LOG_FLOAT_MAX = math.log(np.finfo(float).max)  # about 709.78


_check_eps = check_eps
_check_count = check_count
_check_delta = check_delta


def _check_positive(name: str, v) -> float:
    f = float(v)
    if not (f > 0 and math.isfinite(f)):
        raise InputError(f"{name} must be a positive finite number; got {v!r}")
    return f


# ---------------------------------------------------------------------------------------------
# One release
# ---------------------------------------------------------------------------------------------


def naive_epsilon(diameter: float, noise: float) -> float:
    """Laplace mechanism on one record: ``Delta / b`` (pure DP).

    [DMNS06] Prop. 1; Dwork & Roth Thm 3.6. The supremum of the Laplace log density ratio is
    ``||shift||_1 / b``. Proof: ``proofs/laplace_log_ratio.py``.
    """
    diameter = _check_positive("diameter", diameter)
    noise = _check_positive("noise", noise)
    return diameter / noise  # [DMNS06] Prop. 1: eps = L1 sensitivity / scale


def per_release_epsilon(diameter: float, noise: float, k: int) -> float:
    """``eps0 = Delta / (k b)``: one mixed release, given that the changed record is in it.

    [BGC21] Sec. 4: the mean of k records moves by at most ``Delta / k`` in L1 when one record is
    replaced, and the Laplace log-ratio bound gives ``(Delta/k)/b``.
    Proofs: ``proofs/laplace_log_ratio.py`` (the Laplace step), ``proofs/special_cases.py``
    (k = 1 gives the naive epsilon; eps0(k) = eps0(1)/k).
    """
    k = _check_count("k", k)
    return naive_epsilon(diameter, noise) / k  # [BGC21] Sec. 4: sensitivity Delta/k


def amplified_epsilon(eps0: float, q: float) -> float:
    """``eps1 = log(1 + q (e^eps0 - 1))``: one release when the record is included w.p. ``q``.

    [BBG18] Table 1 (sampling without replacement of a fixed-size subset, substitution
    relation; Poisson sampling, add/remove relation). Tight: attained when every other record
    equals the replacement and the pair is at distance Delta.
    Proofs: ``proofs/mixture_ratio_bound.py`` (the bound, attainment, monotonicity),
    ``proofs/special_cases.py`` (k = 1 and k = N).

    Computed as ``log1p(q * expm1(eps0))`` while that is exact in doubles, and as
    ``logaddexp(log1p(-q), log(q) + eps0)`` (the same number, ``log((1-q) + q e^eps0)``) when
    ``e^eps0`` would overflow.
    """
    eps0 = _check_eps("eps0", eps0)
    q = float(q)
    if not (0.0 < q <= 1.0):
        raise InputError(f"q must be in (0, 1]; got {q!r}")
    if eps0 <= 700.0:
        return math.log1p(q * math.expm1(eps0))  # [BBG18] Table 1
    # e^eps0 overflows: log((1-q) + q e^eps0) in log space. q = 1 gives log1p(-1) = -inf,
    # which logaddexp handles exactly.
    log_one_minus_q = math.log1p(-q) if q < 1.0 else -math.inf
    return float(np.logaddexp(log_one_minus_q, math.log(q) + eps0))


# ---------------------------------------------------------------------------------------------
# Composition of T releases, each eps-DP
# ---------------------------------------------------------------------------------------------


def basic_composition(eps: float, releases: int) -> float:
    """``T * eps`` (pure DP). [DR14] Thm 3.16."""
    eps = _check_eps("eps", eps)
    releases = _check_count("releases", releases)
    return releases * eps  # [DR14] Thm 3.16


def log_expm1(x: float) -> float:
    """``log(e^x - 1)`` without overflow (-inf at x <= 0)."""
    x = float(x)
    if x <= 0.0:
        return -math.inf
    if x > 30.0:
        return x + math.log1p(-math.exp(-x))
    return math.log(math.expm1(x))


def advanced_composition(eps: float, releases: int, delta: float) -> float | None:
    """Advanced composition of T eps-DP releases: ``(eps', delta)``-DP with

    ``eps' = sqrt(2 T ln(1/delta)) eps + T eps (e^eps - 1)`` ([DRV10] Thm III.3 with per-step
    delta 0 and slack delta' = delta; Dwork & Roth Thm 3.20).

    Returns ``None`` when eps' exceeds the largest float (the bound is then vacuous); the caller
    says so rather than printing ``inf``.
    """
    eps = _check_eps("eps", eps)
    releases = _check_count("releases", releases)
    delta = _check_delta(delta)
    if eps == 0.0:
        return 0.0
    first = math.sqrt(2.0 * releases * math.log(1.0 / delta)) * eps  # [DRV10] Thm III.3
    log_second = math.log(releases) + math.log(eps) + log_expm1(eps)
    if log_second >= _LOG_FLOAT_MAX - 1.0:
        return None
    total = first + math.exp(log_second)  # [DRV10] Thm III.3: + T eps (e^eps - 1)
    return total if math.isfinite(total) else None


def advanced_composition_units(units: Sequence[tuple[float, int]], delta: float
                               ) -> float | None:
    """Advanced composition of mechanisms that differ: ``count_i`` mechanisms each
    ``eps_i``-DP give ``(eps', delta)``-DP with

    ``eps' = sqrt(2 ln(1/delta) sum_i count_i eps_i^2) + sum_i count_i eps_i (e^eps_i - 1)``

    (the proof of [DRV10] Thm III.3 / Dwork & Roth Thm 3.20 with per-step ranges ``eps_i``: the
    loss of step i has mean at most ``eps_i (e^eps_i - 1)`` and lies in ``[-eps_i, eps_i]``, and
    Azuma's inequality bounds the sum). Equal to :func:`advanced_composition` for one kind of
    unit. ``None`` when eps' exceeds the largest float."""
    delta = _check_delta(delta)
    square, log_terms = 0.0, []
    for eps, count in units:
        eps = _check_eps("eps", eps)
        count = _check_count("releases", count)
        if eps == 0.0:
            continue
        square += count * eps * eps
        log_terms.append(math.log(count) + math.log(eps) + log_expm1(eps))
    if not log_terms:
        return 0.0
    log_second = float(logsumexp(log_terms))
    if log_second >= _LOG_FLOAT_MAX - 1.0 or not math.isfinite(square):
        return None
    total = math.sqrt(2.0 * square * math.log(1.0 / delta)) + math.exp(log_second)
    return total if math.isfinite(total) else None


#: KOV windows larger than this are summed in blocks (an upper bound within 1%; exact below)
_KOV_EXACT_POINTS = 1 << 20


@dataclass(frozen=True)
class _KOVProfile:
    """The privacy profile of T-fold composition of randomized response with parameter eps.

    The optimal composition of T eps-DP mechanisms ([KOV15] Thm 3.3, [MV16] Eq. (1)) is
    dominated by T independent randomized responses; its privacy loss is ``eps (T - 2 I)`` with
    ``I ~ Binomial(T, r)``, ``r = 1/(1 + e^eps)``, so

        delta(eps') = sum_i C(T, i) (1-r)^(T-i) r^i (1 - exp(eps' - eps (T - 2 i)))_+ .

    Evaluated in log space over a window of the binomial around its mode; the mass outside the
    window is bounded by a geometric series (the pmf ratio is monotone), and both the rounding of
    the log terms and of the loss values are allowed for, so :meth:`log_delta_upper` is an upper
    bound on the true log delta. Proof of the formula against brute force:
    ``proofs/kov_profile.py``.
    """

    eps: float
    releases: int

    # derived once
    def _setup(self):
        eps, t = self.eps, self.releases
        log1pexp = math.log1p(math.exp(-eps))
        lp = -log1pexp  # log(1 - r) = log(e^eps / (1 + e^eps))
        lr = -eps - log1pexp  # log r
        r = math.exp(lr)
        mode = min(t, int(math.floor((t + 1) * r)))
        sd = math.sqrt(t * r * (1.0 - r))
        width = int(math.ceil(20.0 * sd)) + 64  # tails beyond 20 sd are below e^-200, and bounded
        # rounding allowance for one log term: ~8 operations on magnitudes up to M
        magnitude = 2.0 * float(gammaln(t + 1.0)) + t * (abs(lp) + abs(lr)) + 1.0
        log_err = 1e-14 * magnitude
        return lp, lr, mode, width, log_err

    def __post_init__(self):
        object.__setattr__(self, "_cache", self._setup())

    def _log_pmf(self, i: np.ndarray) -> np.ndarray:
        lp, lr = self._cache[0], self._cache[1]
        t = float(self.releases)
        return gammaln(t + 1.0) - gammaln(i + 1.0) - gammaln(t - i + 1.0) + (t - i) * lp + i * lr

    def _blocked_terms(self, lo, hi, mode, eps, t, eps_prime, loss_err):
        """Upper bounds on the window's terms in blocks (for windows of more than
        :data:`_KOV_EXACT_POINTS` points, T beyond ~1e10): a block's sum is at most its length
        times its largest weight (the pmf is unimodal: the weight nearest the mode) times
        ``1 - e^{-x}`` at its first index (x decreases in i). Over a block the weight changes by
        a factor of at most e^{B * 20 / sd}, under 1% with 2^18 blocks over 40 sd, so this
        overestimates delta by under 1% and costs 2^18 evaluations instead of ~40 sd."""
        n_blocks = _KOV_EXACT_POINTS // 4
        size = -(-(hi - lo + 1) // n_blocks)
        starts = np.arange(lo, hi + 1, size, dtype=float)
        ends = np.minimum(starts + size - 1, hi)
        peak = np.clip(float(mode), starts, ends)  # the weight nearest the mode in each block
        x = eps * (t - 2.0 * starts) - eps_prime + loss_err
        keep = x > 0
        return (self._log_pmf(peak[keep]) + np.log(ends[keep] - starts[keep] + 1.0)
                + np.log(-np.expm1(-x[keep])))

    def log_delta_upper(self, eps_prime: float) -> float:
        """Upper bound on ``log delta(eps')`` (``-inf`` where delta is exactly 0)."""
        eps, t = self.eps, self.releases
        lp, lr, mode, width, log_err = self._cache
        loss_err = 4.0 * np.finfo(float).eps * (eps * t + abs(eps_prime)) + 1e-300
        # terms with eps*(T-2i) - eps' + loss_err <= 0 vanish: i_top is the last that may not
        c = (t - (eps_prime - loss_err) / eps) / 2.0
        i_top = min(t, int(math.ceil(c)))
        if i_top < 0:
            return -math.inf
        hi = min(i_top, mode + width)
        lo = max(0, min(mode, hi) - width)
        if hi - lo + 1 > _KOV_EXACT_POINTS:
            parts = [self._blocked_terms(lo, hi, mode, eps, t, eps_prime, loss_err)]
            logw = self._log_pmf(np.array([float(lo), float(hi)]))
        else:
            i = np.arange(lo, hi + 1, dtype=float)
            logw = self._log_pmf(i)
            x = eps * (t - 2.0 * i) - eps_prime + loss_err  # upper bound on the loss margin
            keep = x > 0
            parts = [logw[keep] + np.log(-np.expm1(-x[keep]))]
        if hi < i_top:
            # upper tail i > hi: w_{i+1}/w_i = (T-i)/(i+1) * r/(1-r), decreasing in i
            log_rho = math.log(t - hi) - math.log(hi + 1.0) + lr - lp
            if not log_rho < 0:
                raise RuntimeError("KOV window: upper tail ratio >= 1 (internal error)")
            parts.append(np.array([logw[-1] + log_rho - math.log(-math.expm1(log_rho))]))
        if lo > 0:
            # lower tail i < lo: w_{i-1}/w_i = i/(T-i+1) * (1-r)/r, increasing in i
            log_rho = math.log(lo) - math.log(t - lo + 1.0) + lp - lr
            if not log_rho < 0:
                raise RuntimeError("KOV window: lower tail ratio >= 1 (internal error)")
            parts.append(np.array([logw[0] + log_rho - math.log(-math.expm1(log_rho))]))
        allp = np.concatenate(parts)
        if allp.size == 0:
            return -math.inf
        return float(logsumexp(allp)) + log_err


def kov_delta(eps: float, releases: int, epsilon: float) -> float:
    """Optimal delta of T-fold composition of eps-DP mechanisms at ``epsilon`` (an upper bound
    within ~1e-10 relative of the exact value). [KOV15] Thm 3.3, [MV16] Eq. (1).
    Proof of the formula against brute-force enumeration: ``proofs/kov_profile.py``."""
    eps = _check_eps("eps", eps)
    releases = _check_count("releases", releases)
    epsilon = _check_eps("epsilon", epsilon)
    if eps == 0.0:
        return 0.0
    return min(1.0, math.exp(_KOVProfile(eps, releases).log_delta_upper(epsilon)))


def kov_epsilon(eps: float, releases: int, delta: float) -> float:
    """Smallest eps' for which T eps-DP releases are (eps', delta)-DP, by the optimal
    composition theorem ([KOV15] Thm 3.3, [MV16] Thm 1.5). An upper bound: the returned eps' is
    checked to satisfy ``delta_upper(eps') <= delta``. Works in log space for T up to 1e12 and
    eps up to 1e5. Proof of the profile it inverts: ``proofs/kov_profile.py``."""
    eps = _check_eps("eps", eps)
    releases = _check_count("releases", releases)
    delta = _check_delta(delta)
    if eps == 0.0:
        return 0.0
    prof = _KOVProfile(eps, releases)
    log_target = math.log(delta)
    floor = log_target - 1000.0  # finite stand-in for log 0 so the root finder sees a sign

    def f(e: float) -> float:
        return max(prof.log_delta_upper(e), floor) - log_target

    if f(0.0) <= 0.0:
        return 0.0
    top = eps * releases
    hi = top * (1.0 + 1e-12) + 1e-12
    while f(hi) > 0.0:  # the rounding allowance can leave a sliver above T*eps
        hi = hi * (1.0 + 1e-9) + 1e-9
    root = brentq(f, 0.0, hi, xtol=1e-14 * max(1.0, top), rtol=4 * np.finfo(float).eps)
    # brentq returns a point within xtol of the crossing, on either side: step up until the
    # conservative delta is met, so the answer is an upper bound.
    step = 1e-14 * max(1.0, top)
    while f(root) > 0.0:
        root += step
        step *= 2.0
    # The loss never exceeds T*eps, so delta(T*eps) = 0 exactly: T*eps (basic composition) is
    # always valid, even where the rounding allowance pushed the checked root above it.
    return min(root, top)
