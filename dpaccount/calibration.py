"""Inverse problems: the noise scale b (or the mixing width k) that meets a target (eps, delta).

Built on the tightest sound upper bound, :func:`dpaccount.tightest` (the smallest of the
accountants' bounds; the result names the method that produced it). Whether a candidate meets
the target is decided exactly as the tightest bound would decide it, but without running every
accountant when that is not needed:

* the closed forms (basic, advanced, KOV) take microseconds: when one of them already meets the
  target, the tightest bound (the smallest) meets it too;
* a sound *lower* bound on the true epsilon (every sound upper bound is at least the true
  epsilon) that is above the target shows that no accountant can meet it:
  :func:`dpaccount.audit.analytic.release_test_lower_bound` (closed-form tests on the
  worst-case one-dimensional pair, about a millisecond), then the PLD accountant's lower end on a coarse lattice (its lower
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
from .events import InstaHide
from .audit.analytic import release_test_lower_bound
from .selection import tightest
from .validate import MAX_TOTAL_EPS, MIN_EPS0, check_delta, fmt_count

__all__ = ["tight_epsilon", "calibrate_noise", "calibrate_k", "calibrate", "Calibration"]


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
