"""Poisoning certificates: how much p poisoned records can raise the probability that an attack
succeeds (docs/poisoning.md; Ma, Zhu, Hsu 2019, "Data poisoning against differentially-private
learners", Thm 3: DP bounds the effect of changing p records).

Two certificates, both upper bounds on ``Pr[success | poisoned]`` given ``Pr[success | clean]``:

* ``group_privacy``: from the run's (eps, delta) per record, group privacy for p records gives
  ``e^{p eps} P_clean + p e^{(p-1) eps} delta`` (Dwork & Roth 2014, Thm 2.2 for pure DP; the
  delta term by induction over the p records). Evaluated at the tightest sound eps for each delta
  on a grid, and the smallest bound is reported (each is valid).
* ``direct_group``: the group is accounted directly. A release contains at least one of the p
  records with probability ``q_p = 1 - C(N-p, k)/C(N, k)`` and then its mean moves by at most
  ``min(p, k) Delta / k``; coupling as for one record (``proofs/mixture_ratio_bound.py`` with
  ``q -> q_p``, ``eps0 -> min(p, k) eps0``) makes each release
  ``log(1 + q_p (e^{min(p,k) eps0} - 1))``-DP for the group, and KOV composes T of them. The
  certificate is ``e^{eps_g} P_clean + delta``.

With released soft labels (``Labels.SOFT``) the per-record guarantee is for substitutions that keep
the label: it covers poisons that keep their labels (clean-label attacks), not poisons that carry
another label (label flips, most backdoors); ``direct_group`` then claims no amplification.

A bound >= 1 says nothing; it is reported as vacuous.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .events import InstaHide, Labels
from .numerics import closed_form
from .samplers import group_inclusion_probability
from .selection import tightest
from .errors import InputError
from .validate import fmt_count

__all__ = ["group_inclusion_probability", "certify", "Certificate", "DELTA_GRID"]

#: the deltas group privacy is tried at (the certificate takes the best)
DELTA_GRID = (1e-12, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


@dataclass(frozen=True)
class Certificate:
    method: str
    bound: float  # upper bound on Pr[success | poisoned], capped at 1
    epsilon: float
    delta: float
    note: str

    @property
    def vacuous(self) -> bool:
        return self.bound >= 1.0

    def to_dict(self):
        return {"method": self.method, "success_bound": self.bound, "epsilon": self.epsilon,
                "delta": self.delta, "vacuous": self.vacuous, "note": self.note}


def _bound(log_term: float, extra: float) -> float:
    if log_term >= 0.0:  # the multiplicative term alone is >= 1
        return 1.0
    return min(1.0, math.exp(log_term) + extra)


def certify(mech: InstaHide, poisons: int, clean_success: float, *,
            deltas=DELTA_GRID) -> list[Certificate]:
    """Both certificates for ``poisons`` poisoned records and a clean success rate."""
    if isinstance(poisons, bool) or int(poisons) != poisons or poisons < 1:
        raise InputError(f"poisons must be a positive integer; got {poisons!r}")
    p = int(poisons)
    if p > mech.n:
        raise InputError(f"poisons must be at most n; got poisons={fmt_count(p)}, "
                         f"n={fmt_count(mech.n)}")
    c = float(clean_success)
    if not (0.0 <= c <= 1.0):
        raise InputError(f"clean success rate must be in [0, 1]; got {clean_success!r}")
    log_c = math.log(c) if c > 0 else -math.inf
    out = []

    # 1. group privacy from the per-record guarantee
    def group_privacy(d):
        eps = tightest(mech, d).epsilon
        extra = p * math.exp(min((p - 1) * eps, 700.0)) * d
        return _bound(p * eps + log_c, extra), eps, d

    # largest delta first: epsilon only grows as delta shrinks, so once e^(p eps) P_clean alone
    # reaches 1 every smaller delta is vacuous too, and is not computed (a vacuous bound, 1, is
    # what it would give; stopping early can only report 1 where a non-monotone accountant might
    # have given less, never less than the truth)
    tried = []
    for d in sorted(deltas, reverse=True):
        tried.append(group_privacy(d))
        if p * tried[-1][1] + log_c >= 0.0:
            break
    b, eps, d = min(tried, key=lambda r: r[0])
    out.append(Certificate("group_privacy", b, eps, d,
                           f"e^(p eps) P_clean + p e^((p-1) eps) delta, p={p}, eps the tightest "
                           f"sound bound at the best delta on a grid; {mech.label_note}"
                           f"{_covers(mech)}"))

    # 2. direct accounting of the group (the sampler says how a group enters a release)
    unit = mech.sampler_type.group_unit(mech, p)
    step, count, how = unit.eps, unit.count, unit.description
    def direct_group(d):
        eg = closed_form.kov_epsilon(step, count, d)
        return _bound(eg + log_c, d), eg, d

    b, eg, d = min((direct_group(d) for d in deltas), key=lambda r: r[0])
    out.append(Certificate("direct_group", b, eg, d,
                           f"e^(eps_group) P_clean + delta; {how}; KOV over {count} steps"
                           f"{_covers(mech)}"))
    return out


def _covers(mech: InstaHide) -> str:
    if mech.labels is Labels.SOFT:
        return ("; covers poisons that keep the labels of the records they replace (the soft "
                "label is released without noise), not label flips")
    return ""
