"""The PLD accountant: which loss laws a run needs, composed on the lattice, with two-sided bounds.

Which law of the privacy loss is composed depends on the relation (``docs/theory.md`` Sec. 3,
``proofs/symmetrised_pair.py``):

* **add/remove** (``poisson``, and ``subsets`` with the swap coupling): every ordered neighbour
  pair is dominated, for all orders of the hockey-stick divergence at once, by ``(P, Q)`` (a
  record removed) or by ``(Q, P)`` (a record added); the pair is the same for every release, so
  ``delta(eps)`` is the max of the two directions ``PQ`` and ``QP``, composed separately.
* **substitution**: ``(P, Q)`` is attained (every other record at the replacement's value) and
  worst for ONE release, but it does not dominate every neighbour pair under composition (Lebeda,
  Regehr, Kamath, Steinke 2024). What holds for every neighbour pair and every order is
  ``H_alpha(M(D) || M(D')) <= H_alpha(P || Q)`` (Balle, Barthe, Gaboardi 2018, Thm 2 with joint
  convexity); the tightest single pair that dominates all of them is the *symmetrised* pair
  (``sym``; Zhu, Dong, Wang 2022, Sec. 5). It is what is composed for the upper bound. The
  attained pair in both directions gives the lower end.
* **soft labels**: the release also shows the class count ``j`` (same law on both neighbours);
  the law of one release is the mixture over ``j`` at ``q = j / n_c``
  (``proofs/soft_label_mixture.py``).

Phases compose by convolving their laws on one lattice (:mod:`dpaccount.numerics.lattice`).
Where the lattice does not apply (a permutation phase, eps0 > 30, class sizes that differ between
phases, a lattice error) the accountant refuses with the reason; it never reports another
method's number.
"""

from __future__ import annotations

import functools

from ..errors import Unsupported
from ..events import InstaHide, Labels, Relation, phases_of
from ..numerics.laplace_pair import MAX_EPS0, LaplaceMixturePair, LossLaw
from ..numerics.lattice import LatticeError, LossComposition
from .base import Accountant, relative_width, width_note

__all__ = ["PLDAccountant", "dominating_laws", "attained_laws", "shared_composition",
           "dominating_compositions", "attained_composition", "interval_result", "phases_reason",
           "MAX_EPS0"]


def _laws(phase: InstaHide, directions, inclusion) -> tuple:
    """One :class:`LossLaw` per direction: the revealed mixture over ``inclusion``
    (``((weight, q), ...)``) of the subsampled pair at each ``q`` (``q = 0``: loss 0)."""
    out = []
    for direction in directions:
        comps = tuple((w, None if q == 0.0 else
                       LaplaceMixturePair(q=q, s=phase.sensitivity, b=phase.noise), direction)
                      for w, q in inclusion)
        out.append(LossLaw(comps))
    return tuple(out)


def _pair_reason(phase: InstaHide) -> str | None:
    reason = phase.sampler_type.pair_reason(phase)
    if reason is not None:
        return reason
    if phase.random_weights:
        return ("random mixing weights: this row's pairs assume weights 1/k (see the pld-tilted "
                "row)")
    if phase.eps0 > MAX_EPS0:
        return (f"the lattice covers eps0 <= {MAX_EPS0:g}; this run has eps0 = "
                f"{phase.eps0:.4g} (see the pld-tilted row)")
    return None


def dominating_laws(phase: InstaHide) -> list[tuple[int, tuple]]:
    """The loss laws whose composition bounds one phase's delta from above, per distinct class
    size of the record's class (one entry without soft labels): ``[(n_c, laws)]``; the delta is
    the max over entries and over the laws of each. Substitution: the symmetrised pair
    (``proofs/symmetrised_pair.py``); add/remove: the pair in both directions."""
    reason = _pair_reason(phase)
    if reason is not None:
        raise Unsupported("pld", reason)
    directions = ("sym",) if phase.relation is Relation.SUBSTITUTION else ("PQ", "QP")
    return [(nc, _laws(phase, directions, inc)) for nc, inc in phase.inclusion_mixtures()]


def attained_laws(phase: InstaHide) -> tuple:
    """The loss laws of a concrete pair of one-dimensional datasets the phase can face: the
    record at one end of the domain, every other record (of its class, with soft labels; the
    smallest class) at the replacement's value. Its epsilon is a lower bound on the worst case
    over datasets in a 1-D domain of this diameter (Balle, Barthe, Gaboardi 2018, Thm 10)."""
    reason = _pair_reason(phase)
    if reason is not None:
        raise Unsupported("pld", reason)
    _, inc = phase.inclusion_mixtures()[0]  # the smallest class
    return _laws(phase, ("PQ", "QP"), inc)


@functools.lru_cache(maxsize=32)
def shared_composition(phase_laws: tuple) -> LossComposition:
    """One :class:`LossComposition` per ``((laws, releases), ...)``, kept: callers that ask the
    same run several questions (an epsilon table, a certificate over a delta grid, an audit's
    estimate and its plot) compose it once."""
    return LossComposition.of_phases(phase_laws)


def dominating_compositions(event) -> list[tuple[int, LossComposition]]:
    """``[(n_c, composition)]``: the run's delta at eps is the max over them of
    ``composition.delta(eps)``. Phases must agree on the class-size entries."""
    phases = phases_of(event)
    per_phase = [dominating_laws(p) for p in phases]
    sizes = [tuple(nc for nc, _ in entries) for entries in per_phase]
    if len(set(sizes)) > 1:
        raise Unsupported("pld", "the phases show different class sizes; the PLD composes "
                                 "phases of one dataset (see the rdp row)")
    out = []
    for i, nc in enumerate(sizes[0]):
        spec = tuple((per_phase[j][i][1], p.releases) for j, p in enumerate(phases))
        out.append((nc, shared_composition(spec)))
    return out


def attained_composition(event) -> LossComposition:
    phases = phases_of(event)
    return shared_composition(tuple((attained_laws(p), p.releases) for p in phases))


def phases_reason(phases, reason_of) -> str | None:
    """Why a PLD-type accountant cannot compose these phases (None: it can): the first phase
    ``reason_of`` refuses, named by its number, or class sizes that differ between phases."""
    for i, p in enumerate(phases):
        reason = reason_of(p)
        if reason is not None:
            return reason if len(phases) == 1 else f"phase {i + 1}: {reason}"
    sizes = {tuple(nc for nc, _ in p.inclusion_mixtures()) for p in phases}
    if len(sizes) > 1:
        return ("the phases show different class sizes; the PLD composes phases of one "
                "dataset (see the rdp row)")
    return None


def interval_result(acc: Accountant, event, phases, delta, nc, pair_lo: float | None, up: float,
                    att_lo: float | None, numerics: str = "", no_lower: str | None = None,
                    gap: str | None = None, pair: str | None = None):
    """The row of a PLD-type accountant: the dominating pair's upper end ``up`` (its own lower
    end ``pair_lo`` says what the numerics cost), the attained pair's lower end ``att_lo``, and a
    note that says which pair, the interval's width and where it comes from. ``numerics`` names
    how the laws were composed, where it is not the uniform lattice; ``gap`` says where a wide
    interval's width comes from, where it is not the symmetrised-versus-attained gap; ``pair``
    names the law composed, where it is not the subsampled pair."""
    lower = None if att_lo is None else min(att_lo, up)
    width = relative_width(lower, up)
    disc = relative_width(pair_lo, up)
    substitution = event.relation is Relation.SUBSTITUTION
    pair_word = pair or ("symmetrised pair (dominates every substitution pair under "
                         "composition)" if substitution else "pair in both directions")
    if lower is None:
        note = (f"privacy loss distribution of the {pair_word}{numerics}; {event.label_note}; "
                f"upper bound only: {no_lower or 'no lower end'}")
    else:
        note = (f"privacy loss distribution of the {pair_word}{numerics}; {event.label_note}; "
                f"worst case over datasets (1-D records) in [epsilon_lower, epsilon_upper], "
                f"{width_note(lower, up)}")
    if lower is not None and width >= 0.01 and gap is not None:
        note += f"; {gap}"
    elif lower is not None and width >= 0.01 and substitution and disc is not None:
        note += (f"; the lattice costs {disc:.2%}, the rest is the gap between the dominating "
                 "pair and the worst concrete pair found")
    if len(phases) > 1:
        note += f"; {len(phases)} phases convolved"
    sizes = {c for p in phases for c in (p.class_sizes or ())}
    if len(sizes) > 1:
        note += f"; worst class size {nc}"
    return acc.result(
        event, up, delta, lower=lower, note=note,
        extra={"interval_width": width, "pair_epsilon_lower": pair_lo,
               "discretisation_width": disc,
               "worst_class_size": nc if event.labels is Labels.SOFT else None})


class PLDAccountant(Accountant):
    """Privacy loss distributions on a lattice: a sound upper bound (the dominating laws) and a
    lower end (a concrete pair), for the subsets and Poisson samplers with eps0 <= 30."""

    method = "pld"
    source = ("Zhu, Dong, Wang 2022 (dominating pairs, symmetrisation); Balle, Barthe, Gaboardi "
              "2018 Thm 2; Koskela et al. 2020 (FFT); docs/pld.md")

    def supports(self, event) -> str | None:
        return phases_reason(phases_of(event), _pair_reason)

    def _lattice(self, fn):
        try:
            return fn()
        except LatticeError as exc:
            raise Unsupported(self.method, f"the lattice cannot represent this run ({exc})"
                              ) from None

    def _epsilon(self, event, phases, delta):
        def work():
            worst = None
            comps = dominating_compositions(event)
            for nc, comp in comps:
                lo, up = comp.epsilon(delta)
                if worst is None or up > worst[2]:
                    worst = (nc, lo, up)
            att_lo, _ = attained_composition(event).epsilon(delta)
            return worst, att_lo
        (nc, pair_lo, up), att_lo = self._lattice(work)
        return interval_result(self, event, phases, delta, nc, pair_lo, up, att_lo)

    def _delta(self, event, phases, epsilon):
        def work():
            up = max(comp.delta(epsilon)[1] for _, comp in dominating_compositions(event))
            lo = attained_composition(event).delta(epsilon)[0]
            return lo, up
        lo, up = self._lattice(work)
        return self.delta_result(event, up, epsilon, lower=min(lo, up),
                                 note="lattice upper bound of the dominating laws; lower end "
                                      "from a concrete pair")
