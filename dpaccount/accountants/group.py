"""Group accounting: epsilon and delta for a group of p records (poisoning certificates).

A poisoning attack changes ``p`` records at once. Each sampler says how a group enters a unit of
the run (:meth:`dpaccount.samplers.SamplerType.group_law`): a *revealed* mixture of subsampled
Laplace pairs that dominates every unit, for every pair of datasets that differ in the group
(``docs/pld.md`` "Groups of records", ``proofs/group_pair.py``). For the subsets sampler the
release holds ``J ~ Hypergeometric(N, p, k)`` members: ``J <= 1`` is the one-record pair at
``q' = P(J = 1) / P(J <= 1)``, each ``J = j >= 2`` the plain Laplace pair at ``j eps0``. The units
are composed like the one-record laws, with the tilted-lattice numerics of the ``pld-tilted``
accountant (:mod:`dpaccount.accountants.hits`): under substitution each component symmetrised,
under add/remove both directions.

The number is an upper bound only (``lower`` is None): a lower bound would need the privacy
loss of a group that is not revealed, which is not computed here.
"""

from __future__ import annotations

import math

from ..errors import InputError, Unsupported
from ..events import Relation, phases_of, sampler_name
from ..numerics.hits import Component, HitsError
from ..validate import check_delta, fmt_count
from .base import DeltaResult, EpsilonResult, check_epsilon
from .hits import MAX_EPS0, MAX_RELEASES, MIN_EPS0, law_set

__all__ = ["METHOD", "SOURCE", "group_epsilon", "group_delta", "group_laws", "check_group"]

#: the name every group result carries
METHOD = "pld-tilted-group"
SOURCE = ("Balle, Barthe, Gaboardi 2018 Thm 2 per component; Zhu, Dong, Wang 2022 (dominating "
          "pairs, symmetrisation); proofs/group_pair.py; docs/pld.md")


def check_group(event, p) -> int:
    """``p`` as a positive integer no larger than any phase's N (one line naming the value)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not float(p).is_integer() \
            or p < 1:
        raise InputError(f"poisons must be a positive integer; got {p!r}")
    p = int(p)
    n = min(ph.n for ph in phases_of(event))
    if p > n:
        raise InputError(f"poisons must be at most n; got poisons={fmt_count(p)}, "
                         f"n={fmt_count(n)}")
    return p


def group_laws(event, p: int):
    """``(spec, descriptions)``: the alternatives composed (one per direction: ``sym`` under
    substitution, ``PQ`` and ``QP`` under add/remove), each a tuple of phases
    ``(components, count)``, and what each phase's law is, in words. Refuses (``Unsupported``)
    a component the tilted lattice does not cover."""
    phases = phases_of(event)
    laws = [ph.sampler_type.group_law(ph, p) for ph in phases]
    for i, law in enumerate(laws):
        where = "" if len(phases) == 1 else f"phase {i + 1}: "
        for _, _, e0 in law.components:
            if not (MIN_EPS0 <= e0 <= MAX_EPS0):
                raise Unsupported(METHOD, f"{where}the tilted lattice covers {MIN_EPS0:g} <= "
                                          f"eps0 <= {MAX_EPS0:g}; the group's shift is "
                                          f"{e0:.4g} b")
        if law.count > MAX_RELEASES:
            raise Unsupported(METHOD, f"{where}the tilted lattice covers at most "
                                      f"{MAX_RELEASES:.0e} units; this run has {law.count:.3g}")
    directions = ("sym",) if event.relation is Relation.SUBSTITUTION else ("PQ", "QP")
    spec = tuple(tuple((tuple(Component(w, q, e0, d) for w, q, e0 in law.components),
                        law.count) for law in laws) for d in directions)
    return spec, [law.description for law in laws]


def _note(event, p, descriptions) -> str:
    pair = ("each component symmetrised" if event.relation is Relation.SUBSTITUTION
            else "both directions")
    return (f"group of p={p}: {'; '.join(descriptions)}; revealed mixture of subsampled "
            f"Laplace pairs ({pair}), rounded under the tilted measure; {event.label_note}; "
            "upper bound only")


def _run(fn):
    try:
        return fn()
    except HitsError as exc:
        raise Unsupported(METHOD, f"the tilted lattice cannot represent this group ({exc})"
                          ) from None


def group_epsilon(event, p, delta) -> EpsilonResult:
    """An upper bound on the epsilon of the group of ``p`` records at ``delta``, named
    ``pld-tilted-group``."""
    delta = check_delta(delta)
    p = check_group(event, p)
    spec, descriptions = group_laws(event, p)
    _, up = _run(lambda: law_set(spec).epsilon(delta, which=("upper",)))
    return EpsilonResult(METHOD, up, delta, event.relation.value, sampler_name(event),
                         event.releases, "upper", _note(event, p, descriptions), SOURCE,
                         {"group_size": p}, labels=event.labels.value, lower=None)


def group_delta(event, p, epsilon) -> DeltaResult:
    """An upper bound on delta at ``epsilon`` for the group of ``p`` records."""
    epsilon = check_epsilon(epsilon)
    p = check_group(event, p)
    spec, descriptions = group_laws(event, p)
    _, up = _run(lambda: law_set(spec).delta(epsilon))
    if not math.isfinite(up):  # pragma: no cover - defensive
        up = 1.0
    return DeltaResult(METHOD, min(up, 1.0), epsilon, event.relation.value,
                       sampler_name(event), event.releases, event.labels.value, lower=0.0,
                       note=_note(event, p, descriptions), source=SOURCE)
