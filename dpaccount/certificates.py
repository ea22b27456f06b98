"""Poisoning certificates: how much p poisoned records can raise the probability that an attack
succeeds (docs/poisoning.md; Ma, Zhu, Hsu 2019, "Data poisoning against differentially-private
learners", Thm 3: DP bounds the effect of changing p records).

Two certificates, both upper bounds on ``Pr[success | poisoned]`` given ``Pr[success | clean]``:

* ``group_privacy``: from the run's (eps, delta) per record, group privacy for p records gives
  ``e^{p eps} P_clean + p e^{(p-1) eps} delta`` (Dwork & Roth 2014, Thm 2.2 for pure DP; the
  delta term by induction over the p records). Evaluated at the tightest sound eps for each delta
  on a grid, and the smallest bound is reported (each is valid).
* ``direct_group``: the group is accounted directly, by the group pair
  (:mod:`dpaccount.accountants.group`, ``pld-tilted-group``; ``proofs/group_pair.py``): a release
  holds ``J`` members of the group, and the pair is the one-record pair at ``q_p = P(J >= 1)``
  with the shift ``J Delta/k`` for a revealed label ``J`` given a hit. The certificate is
  ``e^{eps} P_clean + delta_group(eps)``, minimised over eps on the group's privacy profile
  (Ma, Zhu, Hsu 2019, Thm 3 at every point). Where it is smaller (or the group pair does not
  apply), the closed form used before: each release ``log(1 + q_p (e^{min(p,k) eps0} - 1))``-DP
  for the group (``proofs/mixture_ratio_bound.py`` with ``q -> q_p``), KOV over T, on the delta
  grid. ``epsilon_method`` says which.

With released soft labels (``Labels.SOFT``) the per-record guarantee is for substitutions that keep
the label: it covers poisons that keep their labels (clean-label attacks), not poisons that carry
another label (label flips, most backdoors); ``direct_group`` then claims no amplification.

A bound >= 1 says nothing; it is reported as vacuous.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .accountants.group import check_group, group_delta, group_epsilon
from .errors import Unsupported
from .events import InstaHide, Labels
from .numerics import closed_form
from .samplers import group_inclusion_probability
from .selection import tightest
from .errors import InputError

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
    #: the method that produced ``epsilon`` (the per-record accountant, or the group's)
    epsilon_method: str = ""

    @property
    def vacuous(self) -> bool:
        return self.bound >= 1.0

    def to_dict(self):
        return {"method": self.method, "success_bound": self.bound, "epsilon": self.epsilon,
                "epsilon_method": self.epsilon_method, "delta": self.delta,
                "vacuous": self.vacuous, "note": self.note}


def _bound(log_term: float, extra: float) -> float:
    if log_term >= 0.0:  # the multiplicative term alone is >= 1
        return 1.0
    return min(1.0, math.exp(log_term) + extra)


def certify(mech: InstaHide, poisons: int, clean_success: float, *,
            deltas=DELTA_GRID, direct: bool = True) -> list[Certificate]:
    """Both certificates for ``poisons`` poisoned records and a clean success rate
    (``direct=False``: group privacy alone, for callers that report only it)."""
    p = check_group(mech, poisons)
    c = float(clean_success)
    if not (0.0 <= c <= 1.0):
        raise InputError(f"clean success rate must be in [0, 1]; got {clean_success!r}")
    log_c = math.log(c) if c > 0 else -math.inf
    out = []

    # 1. group privacy from the per-record guarantee
    def group_privacy(d):
        res = tightest(mech, d)
        eps = res.epsilon
        extra = p * math.exp(min((p - 1) * eps, 700.0)) * d
        return _bound(p * eps + log_c, extra), eps, d, res.method

    # largest delta first: epsilon only grows as delta shrinks, so once e^(p eps) P_clean alone
    # reaches 1 every smaller delta is vacuous too, and is not computed (a vacuous bound, 1, is
    # what it would give; stopping early can only report 1 where a non-monotone accountant might
    # have given less, never less than the truth)
    tried = []
    for d in sorted(deltas, reverse=True):
        tried.append(group_privacy(d))
        if p * tried[-1][1] + log_c >= 0.0:
            break
    b, eps, d, method = min(tried, key=lambda r: r[0])
    out.append(Certificate("group_privacy", b, eps, d,
                           f"e^(p eps) P_clean + p e^((p-1) eps) delta, p={p}, eps the tightest "
                           f"sound bound at the best delta on a grid ({method}); "
                           f"{mech.label_note}{_covers(mech)}", epsilon_method=method))

    if not direct:
        return out
    # 2. direct accounting of the group: the group pair's privacy profile (pld-tilted-group),
    # minimised over eps, or KOV over the per-release pure-DP unit on the delta grid where that
    # is smaller (or the lattice refuses); every point is an upper bound, so the smallest is too
    unit = mech.sampler_type.group_unit(mech, p)

    def kov_group(d):
        kov = closed_form.kov_epsilon(unit.eps, unit.count, d)
        return _bound(kov + log_c, d), kov, d

    # largest delta first; epsilon only grows as delta shrinks, so once e^(eps_group) P_clean
    # alone is at or above the best bound so far, no smaller delta can give less
    tried = []
    for d in sorted(deltas, reverse=True):
        tried.append(kov_group(d))
        if tried[-1][1] + log_c >= math.log(min(r[0] for r in tried)):  # bounds are >= d > 0
            break
    b, eg, d = min(tried, key=lambda r: r[0])
    best = (b, eg, d, "kov", f"{unit.description}; KOV over {unit.count} steps")
    # with P_clean = 0 the delta grid already reaches its smallest delta; the profile, scanned
    # down to delta 1e-5, cannot go below that
    profile = _profile_bound(mech, p, log_c) if c > 0 else None
    if profile is not None and profile[0] < best[0]:
        best = profile
    elif best[0] >= 1.0:
        # vacuous either way: say so at the grid's delta with the smaller of the two epsilons
        try:
            res = group_epsilon(mech, p, best[2])
        except Unsupported:
            res = None
        if res is not None and res.epsilon < best[1]:
            best = (_bound(res.epsilon + log_c, best[2]), res.epsilon, best[2], res.method,
                    res.note)
    b, eg, d, method, how = best
    out.append(Certificate("direct_group", b, eg, d,
                           f"e^(eps_group) P_clean + delta; eps_group by {method}: {how}"
                           f"{_covers(mech)}", epsilon_method=method))
    return out


#: points of the first scan over eps, and of the refinement around its best point
_SCAN, _REFINE = 41, 21
#: the delta whose epsilon ends the scan
_SCAN_DELTA = 1e-5


def _profile_bound(mech, p: int, log_c: float):
    """``min over eps of e^eps P_clean + delta_group(eps)`` from the group pair's profile
    (:func:`dpaccount.accountants.group.group_delta`), on a grid of eps in ``[0, min(-log
    P_clean, eps_group(1e-12))]`` and a finer one around its best point: each point is a valid
    bound (Ma, Zhu, Hsu 2019 Thm 3 at that (eps, delta)), so the smallest reported is too.
    Beyond ``eps_group(1e-5)`` the bound could fall by at most 1e-5, so the scan stops there (and
    the composition made for it, whose lattice is fine where delta is not tiny, is the one the
    scan queries). ``None`` where the group accountant does not cover the run."""
    try:
        hi = group_epsilon(mech, p, _SCAN_DELTA).epsilon
    except Unsupported:
        return None
    if math.isfinite(log_c):
        hi = min(hi, -log_c)
    note = None

    def at(e):
        nonlocal note
        res = group_delta(mech, p, e)
        note = res.note
        return _bound(e + log_c, res.delta), e, res.delta

    pts = [at(e) for e in (hi * i / (_SCAN - 1) for i in range(_SCAN))]
    i = min(range(len(pts)), key=lambda j: pts[j][0])
    lo_e, hi_e = pts[max(i - 1, 0)][1], pts[min(i + 1, len(pts) - 1)][1]
    pts += [at(lo_e + (hi_e - lo_e) * j / (_REFINE - 1)) for j in range(1, _REFINE - 1)]
    b, e, d = min(pts, key=lambda r: r[0])
    return b, e, d, "pld-tilted-group", f"{note}; the group's privacy profile, minimised over eps"


def _covers(mech: InstaHide) -> str:
    if mech.labels is Labels.SOFT:
        return ("; covers poisons that keep the labels of the records they replace (the soft "
                "label is released without noise), not label flips")
    return ""
