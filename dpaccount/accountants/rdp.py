"""The Renyi-DP accountant: one release's RDP per order from its sampler, summed over releases
and phases (Mironov 2017 Prop. 1), converted to (eps, delta) by the improved conversion (Balle
et al. 2020 Thm 21). Looser than the PLD and independent of it.

One release with released soft labels is a revealed mixture over the class count j
(:meth:`~dpaccount.events.InstaHide.inclusion_mixtures`): ``e^{(alpha-1) D}`` of a revealed
mixture is the weighted sum of the components' (each bounded at ``q = j/n_c``; 0 at ``q = 0``),
and the worst class size is taken per phase (a sum of maxima bounds the max of sums).
"""

from __future__ import annotations

import functools
import math

from scipy.special import logsumexp

from ..events import InstaHide
from ..numerics.rdp import ORDERS, rdp_to_delta, rdp_to_epsilon
from .base import Accountant

__all__ = ["RDPAccountant", "phase_rdp"]


@functools.lru_cache(maxsize=8192)
def phase_rdp(phase: InstaHide, alpha: int) -> float:
    """RDP of order ``alpha`` of one phase: its releases times one release's. Kept: the same
    phase is asked for many deltas (a certificate's grid, a calibration's re-check)."""
    stype = phase.sampler_type
    worst = 0.0
    for _, law in phase.inclusion_mixtures():
        terms = [math.log(w) + (alpha - 1) * (stype.rdp(alpha, q, phase.eps0) if q > 0 else 0.0)
                 for w, q in law]
        worst = max(worst, float(logsumexp(terms)) / (alpha - 1))
    return phase.releases * worst  # Mironov 2017 Prop. 1


class RDPAccountant(Accountant):
    method = "rdp"
    source = ("Mironov 2017 Prop. 6; Wang, Balle, Kasiviswanathan 2019 Thm 9; Zhu & Wang 2019 "
              "Thm 6; Balle et al. 2020 Thm 21")

    def supports(self, event) -> str | None:
        from ..events import phases_of

        phases = phases_of(event)
        for i, p in enumerate(phases):
            reason = p.sampler_type.rdp_reason(p.relation)
            if reason is not None:
                return reason if len(phases) == 1 else f"phase {i + 1}: {reason}"
        return None

    def rdp(self, event, alpha: int) -> float:
        """RDP of order ``alpha`` of the whole event (phases summed)."""
        phases = self._check(event)
        return math.fsum(phase_rdp(p, alpha) for p in phases)

    def _curve(self, phases):
        cache = {}

        def rdp(a):
            if a not in cache:
                cache[a] = math.fsum(phase_rdp(p, a) for p in phases)
            return cache[a]
        return rdp

    def _epsilon(self, event, phases, delta):
        eps, order = rdp_to_epsilon(self._curve(phases), delta)
        if not math.isfinite(eps):
            return self.result(event, None, delta,
                               note="the Renyi divergence of the run exceeds the largest float "
                                    "at every order (not representable; vacuous)")
        edge = order in (ORDERS[0], ORDERS[-1])
        note = f"Renyi DP at the best integer order {order}, improved conversion; " \
               f"{event.label_note}"
        if edge:
            note += "; the best order is at the edge of the grid (bound may be loose)"
        if len(phases) > 1:
            note += f"; {len(phases)} phases, RDP summed per order"
        return self.result(event, eps, delta, note=note,
                           extra={"order": order, "order_at_edge": edge})

    def _delta(self, event, phases, epsilon):
        return self.delta_result(event, rdp_to_delta(self._curve(phases), epsilon), epsilon)
