"""Closed-form accountants: basic, advanced and optimal (KOV) composition of pure-DP units,
and the one-release rows (naive, per release, amplified) the epsilon table prints beside them.

Each phase of an event is a number of pure-DP units, given by its sampler
(:meth:`~dpaccount.samplers.SamplerType.composition_unit`: amplified releases, or whole epochs
for permutation mixing). The composition theorems hold whatever the other records are, so these
bounds hold for every neighbour pair and compose phases by summing units.
"""

from __future__ import annotations

import math

from ..events import InstaHide
from ..numerics.closed_form import (advanced_composition_units, amplified_epsilon,
                                    kov_delta, kov_epsilon, naive_epsilon)
from ..validate import check_delta
from .base import Accountant, EpsilonResult

__all__ = ["BasicAccountant", "AdvancedAccountant", "KOVAccountant", "release_rows", "units"]


def units(phases) -> list:
    """The pure-DP units of each phase: ``[CompositionUnit, ...]``."""
    return [p.sampler_type.composition_unit(p) for p in phases]


def _describe(us) -> str:
    return " then ".join(f"{u.count} {u.description} (eps {u.eps:.4g})" for u in us)


def _pure_profile_delta(total: float, epsilon: float) -> float:
    """delta(eps) of a ``total``-DP mechanism: at most that of randomised response with
    ``total`` (every eps-DP mechanism is a post-processing of it, Kairouz, Oh, Viswanath 2015
    Thm 2.1): ``(1 - e^{eps - total}) / (1 + e^{-total})`` below ``total``, 0 above."""
    if epsilon >= total:
        return 0.0
    return -math.expm1(epsilon - total) / (1.0 + math.exp(-total))


class BasicAccountant(Accountant):
    """Sum of the units' epsilons (pure DP). Dwork & Roth 2014 Thm 3.16."""

    method = "basic"
    source = "Dwork & Roth 2014 Thm 3.16"

    def _total(self, phases) -> float:
        return math.fsum(u.eps * u.count for u in units(phases))

    def _epsilon(self, event, phases, delta):
        us = units(phases)
        total = math.fsum(u.eps * u.count for u in us)
        return self.result(event, total if math.isfinite(total) else None, 0.0,
                           note=f"{_describe(us)}, summed" + (
                               "" if math.isfinite(total) else "; exceeds the largest float"))

    def _delta(self, event, phases, epsilon):
        total = self._total(phases)
        return self.delta_result(event, _pure_profile_delta(total, epsilon), epsilon,
                                 note="randomised response's profile at the summed epsilon")


class AdvancedAccountant(Accountant):
    """Advanced composition (Dwork, Rothblum, Vadhan 2010 Thm III.3; heterogeneous units by the
    same proof)."""

    method = "advanced"
    source = "Dwork, Rothblum, Vadhan 2010 Thm III.3"

    def _epsilon(self, event, phases, delta):
        us = units(phases)
        eps = advanced_composition_units([(u.eps, u.count) for u in us], delta)
        note = _describe(us) if eps is not None else "bound exceeds the largest float (vacuous)"
        return self.result(event, eps, delta, note=note)

    def _delta(self, event, phases, epsilon):
        us = units(phases)
        square = math.fsum(u.count * u.eps * u.eps for u in us)
        drift = math.fsum(u.count * u.eps * math.expm1(min(u.eps, 700.0)) for u in us)
        if square == 0.0:
            return self.delta_result(event, 0.0, epsilon)
        if not (epsilon > drift and math.isfinite(drift)):
            return self.delta_result(event, 1.0, epsilon,
                                     note="epsilon below the drift term: vacuous")
        # eps = sqrt(2 square ln(1/delta)) + drift, solved for delta
        log_delta = -((epsilon - drift) ** 2) / (2.0 * square)
        return self.delta_result(event, math.exp(log_delta), epsilon)


class KOVAccountant(Accountant):
    """Optimal composition of identical pure-DP units (Kairouz, Oh, Viswanath 2015 Thm 3.3;
    Murtagh & Vadhan 2016). Phases whose units differ are bounded at the largest unit epsilon
    (every unit is then that-DP), and the note says so."""

    method = "kov"
    source = "Kairouz, Oh, Viswanath 2015 Thm 3.3; Murtagh, Vadhan 2016"

    @staticmethod
    def _unit(phases):
        us = units(phases)
        eps = max(u.eps for u in us)
        count = sum(u.count for u in us)
        same = len({u.eps for u in us}) == 1
        return us, eps, count, same

    def _epsilon(self, event, phases, delta):
        us, eps, count, same = self._unit(phases)
        if not math.isfinite(eps * count):
            return self.result(event, None, delta,
                               note=f"{count} units of eps {eps:.4g}: the composition exceeds "
                                    "the largest float (not representable; vacuous)")
        note = f"optimal composition of {_describe(us)}"
        if not same:
            note += f"; units differ, all bounded at the largest unit epsilon {eps:.4g}"
        return self.result(event, kov_epsilon(eps, count, delta), delta, note=note)

    def _delta(self, event, phases, epsilon):
        us, eps, count, same = self._unit(phases)
        if not math.isfinite(eps * count):
            return self.delta_result(event, 1.0, epsilon,
                                     note="the composition exceeds the largest float: vacuous")
        return self.delta_result(event, kov_delta(eps, count, epsilon), epsilon)


def release_rows(phase: InstaHide, delta: float) -> list[EpsilonResult]:
    """The one-release rows of a phase: ``naive`` (Laplace on one record, Delta/b),
    ``per_release`` (eps0) and ``amplified`` (eps1, or n/a without amplification). Each is pure
    DP (delta 0) for one release."""
    check_delta(delta)
    stype = phase.sampler_type
    rel, smp, lab = phase.relation.value, phase.sampler.value, phase.labels.value
    what = "Delta" if phase.shift == phase.diameter else "record norm"

    def row(method, eps, note, source):
        return EpsilonResult(method, eps, 0.0, rel, smp, 1, "upper", note, source, labels=lab)

    rows = [
        row("naive", naive_epsilon(phase.shift, phase.noise),
            f"Laplace on one record: k = 1, no sampling, one release (sensitivity {what})",
            "Dwork et al. 2006 Prop. 1"),
        row("per_release", phase.eps0,
            f"one mixed release containing the record (sensitivity {what}/k)"
            if not phase.random_weights else
            f"one mixed release containing the record (sensitivity {what}: a Dirichlet weight "
            f"can reach 1)", "Borgnia et al. 2021 Sec. 4"),
    ]
    if stype.amplifies:
        q = phase.worst_inclusion
        qtext = "q = k/N" if q == phase.sampling_rate else (
            f"q = {q:.4g}, the largest inclusion probability the un-noised soft label can show")
        rows.append(row("amplified", amplified_epsilon(phase.eps0, q),
                        f"one release, {qtext}, {stype.description}; {phase.label_note}",
                        "Balle et al. 2018 Table 1"))
    else:
        rows.append(row("amplified", None,
                        f"not applicable: {stype.description} uses every record every epoch "
                        "(no amplification by sampling)", "docs/theory.md Sec. 2"))
    return rows
