"""Inverse problems: the noise scale b (or the mixing width k) that meets a target (eps, delta).

Built on the tightest sound accountant available, :func:`tight_epsilon` (the ``pld`` row: the
PLD upper bound, or KOV where the lattice does not apply). The answer is re-checked: the
returned run's upper epsilon is computed again and must be at or below the target; if not, the
calibration fails loudly instead of returning a number that does not meet the budget.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ._validate import check_delta
from .mechanism import EpsilonResult, InstaHide
from .pld import pld_result

__all__ = ["tightest_result", "tight_epsilon", "calibrate_noise", "calibrate_k", "Calibration"]


def tightest_result(mech: InstaHide, delta: float) -> EpsilonResult:
    """The tightest sound upper bound dpaccount has for ``mech``, as the labelled row that
    ``dpaccount epsilon`` prints: the ``pld`` row, or for the permutation sampler (no PLD) the
    ``kov`` row of the closed forms. What training runs and audits report as "the accountant"."""
    row = pld_result(mech, delta)
    if row.epsilon is not None:
        return row
    from .closed_form import closed_form_table

    return next(r for r in closed_form_table(mech, delta) if r.method == "kov")


def tight_epsilon(mech: InstaHide, delta: float) -> float:
    """The number of :func:`tightest_result`."""
    return tightest_result(mech, delta).epsilon


@dataclass(frozen=True)
class Calibration:
    parameter: str  # "noise" or "k"
    value: float
    epsilon: float  # the re-checked upper bound at the calibrated value
    target_epsilon: float
    delta: float
    mechanism: InstaHide
    evaluations: int

    def to_dict(self) -> dict:
        return {
            "parameter": self.parameter,
            "value": self.value,
            "epsilon": self.epsilon,
            "target_epsilon": self.target_epsilon,
            "delta": self.delta,
            "meets_target": self.epsilon <= self.target_epsilon,
            "method": "pld (upper bound; KOV where the lattice does not apply)",
            "relation": self.mechanism.relation.value,
            "sampler": self.mechanism.sampler.value,
            "labels": self.mechanism.labels.value,
            "mechanism": self.mechanism.to_dict(),
            "evaluations": self.evaluations,
        }


def _check_target(epsilon, delta):
    e = float(epsilon)
    if not (e > 0 and math.isfinite(e)):
        raise ValueError(f"target epsilon must be a positive finite number; got {epsilon!r}")
    return e, check_delta(delta)


def calibrate_noise(mech: InstaHide, epsilon: float, delta: float, *,
                    rtol: float = 1e-3, max_evals: int = 80) -> Calibration:
    """Smallest Laplace scale b (to relative precision ``rtol``, rounded up) for which ``mech``
    with that b has upper epsilon <= ``epsilon`` at ``delta``. ``mech.noise`` is the start."""
    target, delta = _check_target(epsilon, delta)
    n_eval = 0

    def eps_at(b):
        nonlocal n_eval
        n_eval += 1
        return tight_epsilon(dataclasses.replace(mech, noise=b), delta)

    b = mech.noise
    lo, hi = None, None
    # bracket: eps is decreasing in b (more noise, more privacy)
    if eps_at(b) <= target:
        hi = b
        lo = b / 2
        while eps_at(lo) <= target:
            hi, lo = lo, lo / 2
            if n_eval > max_evals or lo < 1e-300:
                raise ValueError("calibration failed: no lower bracket for noise")
    else:
        lo = b
        hi = b * 2
        while eps_at(hi) > target:
            lo, hi = hi, hi * 2
            if n_eval > max_evals or hi > 1e300:
                raise ValueError(f"calibration failed: no noise scale up to {hi:g} meets "
                                 f"epsilon {target:g}")
    while hi / lo > 1 + rtol and n_eval < max_evals:
        mid = math.sqrt(lo * hi)
        if eps_at(mid) <= target:
            hi = mid
        else:
            lo = mid
    final = dataclasses.replace(mech, noise=hi)
    achieved = eps_at(hi)  # the re-check
    if not achieved <= target:
        raise ValueError(f"calibration failed: re-check gave epsilon {achieved:g} > target "
                         f"{target:g} at noise {hi:g}")
    return Calibration("noise", hi, achieved, target, delta, final, n_eval)


def calibrate_k(mech: InstaHide, epsilon: float, delta: float, *, k_max: int = 64
                ) -> Calibration:
    """Smallest k in 1..min(k_max, N) for which ``mech`` with that k has upper epsilon <=
    ``epsilon`` at ``delta`` (every k is tried in order: epsilon is not monotone in k in
    general, since a larger k raises q = k/N while it lowers eps0)."""
    target, delta = _check_target(epsilon, delta)
    if isinstance(k_max, bool) or int(k_max) != k_max or k_max < 1:
        raise ValueError(f"k_max must be a positive integer; got {k_max!r}")
    best = None
    n_eval = 0
    for k in range(1, min(int(k_max), mech.n) + 1):
        cand = dataclasses.replace(mech, k=k)
        n_eval += 1
        e = tight_epsilon(cand, delta)
        if e <= target:
            best = (k, e, cand)
            break
    if best is None:
        raise ValueError(f"calibration failed: no k in 1..{min(int(k_max), mech.n)} meets "
                         f"epsilon {target:g} at noise {mech.noise:g}")
    k, e, cand = best
    return Calibration("k", k, e, target, delta, cand, n_eval)
