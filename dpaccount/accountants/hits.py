"""The tilted-lattice PLD accountant: two-sided bounds for any eps0 in [1e-6, 1e6].

The same laws as the ``pld`` row (:mod:`dpaccount.accountants.pld`): under substitution the
symmetrised pair for the upper end, under add/remove the pair in both directions; soft labels as
the mixture over the class count; the lower end from the attained pair (record at one end, every
other record of its class at the other), in both directions. What differs is the numerics
(:mod:`dpaccount.numerics.hits`, ``docs/pld_hits.md``): every law is rounded under its tilted
measure, so a loss of 1e5 costs no more than a loss of 1, and both ends come from the same
Azuma-Hoeffding argument; slices of one release are closed forms (no quadrature).
"""

from __future__ import annotations

import functools
import itertools
import math

from ..errors import Unsupported
from ..events import Relation, phases_of
from ..numerics.hidden_weight import MAX_ALPHA, MIN_ALPHA, HiddenWeightPair
from ..numerics.hidden_weight import MAX_SCALE as MAX_HIDDEN_SCALE
from ..numerics.hits import Component, FlatLaw, HitsError
from ..numerics.roots import largest_exceeding, smallest_meeting
from ..validate import check_delta
from .base import Accountant
from .pld import interval_result, phases_reason

__all__ = ["HitsAccountant", "LawSet", "law_set", "MIN_EPS0", "MAX_EPS0", "MAX_RELEASES"]

MIN_EPS0 = 1e-6
MAX_EPS0 = 1e6
MAX_RELEASES = 10 ** 10
#: lattice size per composition
MAX_POINTS = 1 << 15


#: cells of [0, 1] the law of a random weight is rounded up onto
WEIGHT_CELLS = 128


def _components(phase, direction, inclusion) -> tuple:
    """The revealed mixture of one release: over the inclusion law (soft labels) and, with random
    weights, over the changed record's weight rounded up onto cells (``docs/pld_hits.md``,
    "Random mixing weights"): each cell the subsampled pair at ``v_hi shift / b``."""
    if not phase.random_weights:
        return tuple(Component(w, q, phase.eps0, direction) for w, q in inclusion)
    scale = phase.shift / phase.noise  # eps0 at weight 1
    return tuple(Component(w * pv, q, max(v * scale, min(MIN_EPS0, scale)), direction)
                 for w, q in inclusion for pv, v in phase.weight_mixture(WEIGHT_CELLS))


def _hidden_reason(phase) -> str | None:
    """Why the concrete hidden-weight pair of a phase with random weights is not built (None:
    it is): :class:`~dpaccount.numerics.hidden_weight.HiddenWeightPair`'s range."""
    scale = phase.shift / phase.noise
    a, c = phase.dirichlet_alpha, (phase.k - 1) * phase.dirichlet_alpha
    if scale > MAX_HIDDEN_SCALE:
        return (f"the concrete pair with the weight hidden is built for a weight-1 shift of at "
                f"most {MAX_HIDDEN_SCALE:g} b; this run's is {scale:.4g} b")
    if not all(MIN_ALPHA <= x <= MAX_ALPHA for x in (a, c)):
        return (f"the concrete pair with the weight hidden is built for Beta parameters in "
                f"[{MIN_ALPHA:g}, {MAX_ALPHA:g}]; this run's weight is Beta({a:g}, {c:g})")
    return None


def _attained_components(phase, direction, inclusion) -> tuple:
    """The concrete pair's revealed mixture (lower end): with random weights the weight is
    hidden (``HiddenWeightPair``, ``docs/pld_hits.md``, "Random mixing weights: the lower
    end"); otherwise the same components as the dominating laws'."""
    if not phase.random_weights:
        return _components(phase, direction, inclusion)
    scale = phase.shift / phase.noise
    a = phase.dirichlet_alpha
    return tuple(HiddenWeightPair(w, q, scale, a, (phase.k - 1) * a, direction)
                 for w, q in inclusion if q > 0.0)


def _reason(phase) -> str | None:
    units = phase.sampler_type.revealed_units(phase)
    reason = phase.sampler_type.pair_reason(phase) if units is None else None
    if reason is not None:
        return reason
    top = max((e for comps, _ in units or () for _, _, e in comps), default=phase.eps0)
    if units is not None and top > MAX_EPS0:
        return (f"the tilted lattice covers eps0 <= {MAX_EPS0:g}; an epoch of this run moves "
                f"by {top:.4g} b (see the kov row)")
    if not (MIN_EPS0 <= phase.eps0 <= MAX_EPS0):
        return (f"the tilted lattice covers {MIN_EPS0:g} <= eps0 <= {MAX_EPS0:g}; this run has "
                f"eps0 = shift/(k noise) = {phase.eps0:.4g} (noise {phase.noise:.4g}, k "
                f"{phase.k}; see the kov and rdp rows)")
    return None


def _units(phase, direction, inclusion) -> tuple:
    """What one phase composes: its releases (the revealed mixture of one release, T times), or
    the sampler's own units (a permutation epoch)."""
    units = phase.sampler_type.revealed_units(phase)
    if units is None:
        return ((_components(phase, direction, inclusion), phase.releases),)
    return tuple((tuple(Component(w, q, e, direction) for w, q, e in comps), count)
                 for comps, count in units)


def _shuffled_units(phase, direction, options):
    """One phase's further dominating laws (``options``, from the sampler's
    :meth:`~dpaccount.samplers.SamplerType.shuffled_units`) in ``direction``, or its revealed
    units where it has none: a list of unit tuples."""
    if options is None:
        return [_units(phase, direction, phase.inclusion_mixtures()[0][1])]
    return [tuple((tuple(c if not isinstance(c, tuple) else Component(*c, direction)
                         for c in comps), count) for comps, count in units)
            for units in options]


def _no_lower(phases) -> str | None:
    """Why no concrete pair's lower end is computed (None: it is)."""
    if any(p.sampler_type.revealed_units(p) is not None for p in phases):
        return ("no concrete pair: the bound shows where the record's slots are (all of "
                "them, or all but one when amplified by the hidden position)")
    reasons = (_hidden_reason(p) for p in phases if p.random_weights)
    return next((r for r in reasons if r is not None), None)


class LawSet:
    """The alternatives of one bound (their delta is the max over them), each a
    :class:`FlatLaw` per cut tolerance; every composition made bounds delta, so queries take
    the best of them (an epsilon found with one stays valid under the others)."""

    def __init__(self, alternatives):
        self.alternatives = alternatives  # [phases], phases = [(components, releases)]
        self.top = max(sum(max(c.top() for c in comps) * t for comps, t in phases)
                       for phases in alternatives)
        self._laws = {}
        self.bads = set()

    def laws(self, cut_tol):
        key = float(f"{cut_tol:.3g}")
        if key not in self._laws:
            self._laws[key] = [FlatLaw(ph, key, MAX_POINTS) for ph in self.alternatives]
        return self._laws[key]

    def upper(self, eps, bads, tols):
        return min(max(law.delta(eps, "upper", b) for law in self.laws(t))
                   for t in tols for b in bads)

    def lower(self, eps, bads, tols):
        return max(max(law.delta(eps, "lower", b) for law in self.laws(t))
                   for t in tols for b in bads)

    def epsilon(self, delta, *, which=("upper", "lower")):
        """(lower, upper) on the epsilon of these alternatives at ``delta``."""
        # the cut tolerance never above 1e-9 and rounded down to a power of 10: one composition
        # serves every delta >= 1e-5 and every delta of one decade below (a certificate's grid,
        # a calibration's checks); a smaller cut only tightens
        tol = 10.0 ** math.floor(math.log10(1e-4 * min(delta, 1e-5)))
        # each delta is answered on the composition of its own cut: reusing one made for a
        # smaller delta (a finer cut) is sound but can be far looser, because a finer cut spans
        # a wider loss range with the same number of points (CIFAR default at delta 1e-5:
        # 1.668e6 on its own cut, 4.35e6 on the cut of delta 1e-12)
        bad = 1e-3 * delta
        self.bads.add(bad)
        top = self.top
        upper = lower = None
        if "upper" in which:
            def f_up(e):
                return self.upper(e, (bad,), (tol,)) - delta
            upper = smallest_meeting(f_up, top)
        if "lower" in which:
            def f_lo(e):
                return self.lower(e, (bad,), (tol,)) - delta
            lower = largest_exceeding(f_lo, top)
        return lower, upper

    def delta(self, eps):
        """(lower, upper) on delta(eps), the best over every composition and eta made."""
        tols = set(self._laws) or {1e-12}
        bads = set(self.bads)
        est = self.upper(eps, (1e-15,), tols)
        bads.add(max(1e-3 * est, 1e-300))
        up = 0.0 if eps >= self.top else self.upper(eps, bads, tols)
        lo = self.lower(eps, bads, tols)
        return min(lo, up), up


@functools.lru_cache(maxsize=32)
def law_set(spec) -> LawSet:
    """The :class:`LawSet` of ``spec``, kept (one per spec): ``spec`` is a tuple of alternatives,
    each a tuple of phases ``(components, count)``, ``components`` a tuple of
    :class:`~dpaccount.numerics.hits.Component`."""
    return LawSet([list(ph) for ph in spec])


class HitsAccountant(Accountant):
    """Privacy loss distributions rounded under the tilted measure: an upper bound (the
    dominating laws) and a lower end (a concrete pair) for the subsets and Poisson samplers with
    eps0 from 1e-6 to 1e6 (``docs/pld_hits.md``)."""

    method = "pld-tilted"
    source = ("Zhu, Dong, Wang 2022 (dominating pairs, symmetrisation); Balle, Barthe, Gaboardi "
              "2018 Thm 2; Azuma-Hoeffding on the tilted rounding; docs/pld_hits.md")

    def supports(self, event) -> str | None:
        phases = phases_of(event)
        if event.releases > MAX_RELEASES:
            return (f"the tilted lattice covers at most {MAX_RELEASES:.0e} releases; this run "
                    f"has {event.releases:.3g}")
        return phases_reason(phases, _reason)

    # ---- which laws ----
    @staticmethod
    def dominating(event) -> list[tuple[int, LawSet]]:
        phases = phases_of(event)
        directions = ("sym",) if event.relation is Relation.SUBSTITUTION else ("PQ", "QP")
        entries = [p.inclusion_mixtures() for p in phases]
        out = []
        for i, (nc, _) in enumerate(entries[0]):
            spec = tuple(tuple(unit for j, p in enumerate(phases)
                               for unit in _units(p, d, entries[j][i][1]))
                         for d in directions)
            out.append((nc, law_set(spec)))
        return out

    @staticmethod
    def shuffled(event):
        """The further dominating laws (every phase's :meth:`SamplerType.shuffled_units`, or its
        revealed units where it has none; at most 4 combinations of the phases' options, beyond
        that each phase's first) and the words that name them: ``([LawSet, ...], words)``, or
        ``(None, why not)`` when no phase has one. Each is sound on its own: the accountant
        takes the smallest epsilon of these and :meth:`dominating`."""
        if not HitsAccountant.shuffled_applies(event):
            return None, None
        phases = phases_of(event)
        raw = [p.sampler_type.shuffled_units(p) for p in phases]  # (options, words) each
        words = [w for opts, w in raw if opts is not None]
        if not words:
            return None, raw[0][1]
        directions = ("sym",) if event.relation is Relation.SUBSTITUTION else ("PQ", "QP")
        per_dir = {d: [_shuffled_units(p, d, opts) for p, (opts, _) in zip(phases, raw)]
                   for d in directions}
        counts = [len(opts) for opts in per_dir[directions[0]]]
        combos = list(itertools.product(*(range(c) for c in counts)))
        if len(combos) > 4:
            combos = [tuple(0 for _ in counts)]
        sets = [law_set(tuple(tuple(unit for opts, i in zip(per_dir[d], combo)
                                    for unit in opts[i]) for d in directions))
                for combo in combos]
        return sets, "; ".join(dict.fromkeys(words))

    @staticmethod
    def attained(event) -> LawSet:
        phases = phases_of(event)
        spec = tuple(tuple((_attained_components(p, d, p.inclusion_mixtures()[0][1]),
                            p.releases) for p in phases) for d in ("PQ", "QP"))
        return law_set(spec)

    def _run(self, fn):
        try:
            return fn()
        except HitsError as exc:
            raise Unsupported(self.method, f"the tilted lattice cannot represent this run "
                                           f"({exc})") from None

    def _epsilon(self, event, phases, delta):
        delta = check_delta(delta)
        no_lower = _no_lower(phases)
        hidden = any(p.random_weights for p in phases)

        def work():
            worst = None
            for nc, ls in self.dominating(event):
                _, up = ls.epsilon(delta, which=("upper",))
                if worst is None or up > worst[2]:
                    worst = (nc, ls, up)
            nc, ls, up = worst
            if no_lower is not None:
                # what is revealed is not attained: no concrete lower end, and the pair's own
                # (what the numerics cost) is not composed either: half the time. Where the
                # sampler hides positions, its second law may be smaller: both are sound
                up, words = self._smaller_with_hidden(
                    event, up, lambda law: law.epsilon(delta, which=("upper",))[1])
                chosen.extend([words] if words else [])
                return (nc, None, up), None
            if hidden:
                # the dominating pair shows the weight, the concrete one hides it: the lower
                # end is the concrete pair's (in both directions, under either relation); the
                # dominating pair's own lower end is not composed (it says only what the
                # numerics cost, a small part of this gap)
                return (nc, None, up), self.attained(event).epsilon(delta, which=("lower",))[0]
            worst = (nc, ls.epsilon(delta, which=("lower",))[0], up)
            if event.relation is Relation.SUBSTITUTION:
                att_lo, _ = self.attained(event).epsilon(delta, which=("lower",))
            else:
                att_lo = worst[1]
            return worst, att_lo

        chosen = []
        (nc, pair_lo, up), att_lo = self._run(work)
        gap = ("the rest is the gap between the dominating pair (the record's weight shown, "
               "rounded up) and the concrete pair (the weight hidden)") if hidden else None
        numerics = ", rounded under the tilted measure" + "".join(f"; {c}" for c in chosen)
        pair = ("epoch laws of permutation mixing (the Laplace pair of the record's slots, "
                "shown)") if self.shuffled_applies(event) else None
        return interval_result(self, event, phases, delta, nc, pair_lo, up, att_lo,
                               numerics, no_lower=no_lower, gap=gap, pair=pair)

    def _smaller_with_hidden(self, event, up, upper_of):
        """The smaller of ``up`` (the revealed law's upper end) and every further law's
        (``upper_of(law_set)``, :meth:`shuffled`; all sound), and the words that say which was
        taken, or why there is no further law (None where the sampler hides no positions)."""
        shuffled, words = self.shuffled(event)
        if shuffled is None:
            return up, (f"no amplification by the hidden position: {words}" if words else None)
        up2 = min(upper_of(law) for law in shuffled)
        if up2 < up:
            return up2, f"amplified by the hidden position: {words}"
        return up, (f"revealed positions (smaller than the amplified law, {up2:.6g}, with "
                    f"{words})")

    @staticmethod
    def shuffled_applies(event) -> bool:
        """True when the run's sampler hides positions (a second law is tried)."""
        return all(p.sampler_type.revealed_units(p) is not None for p in phases_of(event))

    def _delta(self, event, phases, epsilon):
        no_lower = _no_lower(phases)

        chosen = []

        def work():
            up = max(ls.delta(epsilon)[1] for _, ls in self.dominating(event))
            if no_lower is not None:
                up, words = self._smaller_with_hidden(event, up, lambda law: law.delta(epsilon)[1])
                chosen.extend([f"{words}; "] if words else [])
                return 0.0, up  # no concrete lower end
            lo = self.attained(event).delta(epsilon)[0]
            return lo, up

        lo, up = self._run(work)
        if not math.isfinite(up):  # pragma: no cover - defensive
            up = 1.0
        note = ("tilted-lattice upper bound of the dominating laws; " + "".join(chosen)
                + ("lower end from a concrete pair" if no_lower is None
                   else f"upper bound only: {no_lower}"))
        return self.delta_result(event, up, epsilon, lower=min(lo, up), note=note)
