"""Inverse problems: the noise scale b (or the mixing width k) that meets a target (eps, delta).

Built on the tightest sound upper bound, :func:`dpaccount.tightest` (the smallest of the
accountants' bounds; the result names the method that produced it). Whether a candidate meets
the target is decided exactly as the tightest bound would decide it, but without running every
accountant when that is not needed:

* the closed forms (basic, advanced, KOV) take microseconds: when one of them already meets the
  target, the tightest bound (the smallest) meets it too;
* a sound *lower* bound on the true epsilon (every sound upper bound is at least the true
  epsilon) that is above the target shows that no accountant can meet it: the PLD accountant's
  ``lower`` end, and :func:`release_test_lower_bound`, a closed-form test on the worst-case
  one-dimensional pair that costs a millisecond;
* otherwise the slower accountants (PLD, then RDP) run, in that order.

The answer is re-checked: the returned run's upper epsilon meets the target, or the calibration
fails loudly instead of returning a number that does not meet the budget.
"""

from __future__ import annotations

import dataclasses
import math
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


def _t_kl(m, t, log_p, log_1mp):
    """``T * KL(m/T || p)`` (binary KL) and a bound on its rounding error; ``m <= T``."""
    import numpy as np

    a = m / t
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(m > 0, m * (np.log(np.maximum(a, 1e-300)) - log_p), 0.0)
        rest = t - m
        second = np.where(rest > 0, rest * (np.log1p(-np.minimum(a, 1.0 - 1e-16)) - log_1mp),
                          0.0)
    size = np.abs(first) + np.abs(second) + np.where(m > 0, np.abs(m * log_p), 0.0) + np.where(
        rest > 0, np.abs(rest * log_1mp), 0.0)
    return first + second, 1e-10 * size + 1e-10


def release_test_lower_bound(mech: InstaHide, delta: float) -> float:
    """A sound lower bound on the epsilon (at ``delta``) of the worst case ``mech`` must cover,
    in closed form; 0 where it has none. Every sound upper bound is at least it.

    The pair: one-dimensional records in ``[0, Delta]`` (a domain of the run's L1 diameter, which
    every accountant's bound covers), every record at 0 but the audited one, at ``Delta`` in D and
    at 0 in D'. Each release independently contains the record with probability ``q = k/N`` (the
    ``subsets`` sampler) and is then shifted by ``eps0`` noise scales. The test counts the
    releases above a threshold ``t``: at least ``m`` of them is an event whose probabilities
    ``P1`` (under D) and ``P0`` (under D') give ``epsilon >= log((P1 - delta) / P0)``. Binomial
    tails are bounded in the safe direction (Chernoff for ``P0``; Chernoff or one term for ``P1``)
    with an allowance for rounding; the best ``(t, m)`` on a grid is returned. The released soft
    label is ignored (ignoring part of a release is post-processing). Other samplers and
    relations: 0."""
    import numpy as np
    from scipy.special import gammaln

    delta = check_delta(delta)
    if (mech.relation is not Relation.SUBSTITUTION or not mech.sampler_type.amplifies
            or mech.sampler_type.independent_inclusion or mech.sampler_type.uses_norm):
        return 0.0
    e0, q, T = float(mech.eps0), float(mech.sampling_rate), float(mech.releases)
    if not (math.isfinite(e0) and e0 > 0 and 0 < q <= 1):
        return 0.0
    ts = np.unique(np.concatenate([e0 * np.linspace(0.0, 1.0, 33),
                                   e0 + np.array([0.5, 1, 2, 4, 8, 16, 32]),
                                   np.array([0.25, 0.5, 1, 2, 4, 8])]))[:, None]
    log_q = math.log(q)
    log_1mq = math.log1p(-q) if q < 1 else -math.inf
    lp0, l1p0 = _log_sf(ts), _log_cdf(ts)
    lp1 = np.logaddexp(log_q + _log_sf(ts - e0), log_1mq + _log_sf(ts))
    l1p1 = np.logaddexp(log_q + _log_cdf(ts - e0), log_1mq + _log_cdf(ts))
    mean0, mean1 = T * np.exp(lp0), T * np.exp(lp1)
    fr = np.linspace(0.0, 1.0, 25)[None, :]
    small = np.broadcast_to(np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128])[None, :],
                            (ts.shape[0], 13))
    m = np.concatenate([np.ceil(mean0 + fr * (mean1 - mean0)), small], axis=1)
    m = np.clip(m, 1.0, T)
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
    term = parts[0] - parts[1] - parts[2] + parts[3] + parts[4]
    term -= 1e-10 * sum(np.abs(x) for x in parts) + 1e-10
    log_p1_lo = np.minimum(np.maximum(chern, term), 0.0)
    log_delta = math.log(delta)
    ok = log_p1_lo > log_delta + 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(ok, log_p1_lo + np.log1p(-np.exp(log_delta - np.where(
            ok, log_p1_lo, 0.0))) - log_p0_up, -np.inf)
    best = float(np.max(gain)) if gain.size else -math.inf
    if not math.isfinite(best) or best <= 0:
        return 0.0
    return best * (1.0 - 1e-9)


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
    screened = False

    def best():
        return min(rows, key=lambda r: r.epsilon) if rows else None

    for i, acc in enumerate(accs):
        if _COST.get(acc.method, 3) >= 1 and not screened:
            screened = True
            if release_test_lower_bound(cand, delta) > target:
                return _Verdict(False, best(), False)
        r = acc.row(cand, delta)
        if r.epsilon is not None and r.releases == cand.releases and r.delta <= delta:
            rows.append(r)
            if r.epsilon <= target:
                return _Verdict(True, best(), i == len(accs) - 1)
        if r.lower is not None and r.lower > target * (1 + 1e-6):
            return _Verdict(False, best(), False)
    return _Verdict(False, best(), True)


def _in_range(mech: InstaHide) -> str | None:
    """None when the accountants can compute ``mech``; else "low" (eps0 too small) or "high"
    (epsilon not representable)."""
    if not mech.eps0 >= MIN_EPS0:
        return "low"
    if not mech.eps0 * mech.releases <= MAX_TOTAL_EPS:
        return "high"
    return None


# ---------------------------------------------------------------- noise

def calibrate_noise(mech: InstaHide, epsilon: float, delta: float, *,
                    rtol: float = 1e-3, max_evals: int = 200) -> Calibration:
    """Smallest Laplace scale b (to relative precision ``rtol``, rounded up) for which ``mech``
    with that b has upper epsilon <= ``epsilon`` at ``delta``. ``mech.noise`` is the start. The
    search stays where the accountants compute (eps0 >= 1e-15 per release, T eps0 <= 1e300)."""
    target, delta = _check_target(epsilon, delta)
    n_eval = 0
    shift, k, t = mech.shift, mech.k, mech.releases
    b_min = shift * t / (k * MAX_TOTAL_EPS) * (1 + 1e-12)  # smallest b with T eps0 <= 1e300
    b_max = shift / (k * MIN_EPS0) * (1 - 1e-12)  # largest b with eps0 >= 1e-15

    def meets(b):
        nonlocal n_eval
        n_eval += 1
        return _decide(dataclasses.replace(mech, noise=b), target, delta).meets

    b = min(max(mech.noise, b_min), b_max)
    # bracket: eps is decreasing in b (more noise, more privacy)
    if meets(b):
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
        lo, hi = b, None
        while hi is None:
            nxt = min(lo * 2, b_max)
            if nxt <= lo or n_eval > max_evals:
                raise InputError(f"calibration failed: no noise scale up to {lo:.3g} meets "
                                 f"target epsilon {target:g} at delta {delta:g} (larger ones "
                                 f"give eps0 below {MIN_EPS0:g} per release, beyond float "
                                 f"precision); raise the target epsilon or delta")
            if meets(nxt):
                hi = nxt
            else:
                lo = nxt
    while hi / lo > 1 + rtol and n_eval < max_evals:
        mid = math.sqrt(lo * hi)
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
    if isinstance(k_max, bool) or not isinstance(k_max, (int, float)) or k_max != int(k_max) \
            or k_max < 1:
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
