"""Renyi-DP accountant for DP-InstaHide: simple, looser than the PLD, and independent of it.

* Laplace: ``D_alpha(Lap(0,b) || Lap(s,b))`` in closed form (Mironov 2017, "Renyi differential
  privacy", arXiv:1702.07476, Prop. 6), with ``lambda = s/b = eps0``:
  ``1/(alpha-1) log(alpha/(2alpha-1) e^{(alpha-1) lambda} + (alpha-1)/(2alpha-1) e^{-alpha lambda})``.
* Subsampling without replacement, replace-one relation (the ``subsets`` sampler under
  substitution): Wang, Balle, Kasiviswanathan 2019, "Subsampled Renyi differential privacy and
  analytical moments accountant", arXiv:1808.00087, Thm 9 (integer orders).
* Poisson sampling, add/remove (the ``poisson`` sampler): Zhu & Wang 2019, "Poisson subsampled
  Renyi differential privacy", ICML 2019, Thm 6 (general upper bound, integer orders).
* Composition adds RDP (Mironov 2017, Prop. 1); conversion to (eps, delta) by the improved
  conversion ``eps = rdp + log((alpha-1)/alpha) - (log delta + log alpha)/(alpha-1)`` (Balle,
  Barthe, Gaboardi, Hsu, Sato 2020, "Hypothesis testing interpretations and Renyi differential
  privacy", Thm 21; Canonne, Kamath, Steinke 2020, Prop. 12), minimised over the order grid.

Everything is in log space. ``subsets`` under add/remove and the ``permutation`` sampler are not
covered (refused by name): the bounds above are stated for other relations, and a permutation
epoch is a Laplace mechanism on many coordinates, whose Renyi divergence is not known to be
largest with all the shift in one coordinate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, logsumexp

from ._validate import check_delta
from .closed_form import amplified_epsilon
from .mechanism import EpsilonResult, InstaHide, Relation, Sampler

__all__ = ["laplace_rdp", "subsampled_rdp_wor", "poisson_subsampled_rdp", "RDPAccountant",
           "rdp_result", "ORDERS", "EdgeOrderWarning"]

#: Integer Renyi orders searched (integer orders are what the subsampling theorems cover).
ORDERS = tuple(list(range(2, 65)) + [80, 96, 128, 160, 192, 256, 384, 512, 768, 1024])


class EdgeOrderWarning(UserWarning):
    """The best order is at the edge of the order grid: the bound may improve beyond it."""


def _log_expm1(x: float) -> float:
    """log(e^x - 1) for x > 0, without overflow (-inf at x = 0)."""
    x = float(x)
    if x <= 0.0:
        return -math.inf
    if x > 30.0:
        return x + math.log1p(-math.exp(-x))
    return math.log(math.expm1(x))


def laplace_rdp(alpha, eps0: float):
    """Renyi divergence of order ``alpha`` between Laplace laws ``eps0 = shift/scale`` apart
    (Mironov 2017, Prop. 6); ``alpha = inf`` gives ``eps0``."""
    a = np.asarray(alpha, dtype=float)
    lam = float(eps0)
    with np.errstate(over="ignore", divide="ignore"):
        inner = np.logaddexp((a - 1) * lam + np.log(a / (2 * a - 1)),
                             -a * lam + np.log((a - 1) / (2 * a - 1)))
        out = inner / (a - 1)
    return np.where(np.isinf(a), lam, out)


def _log_comb(n, k):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def subsampled_rdp_wor(alpha: int, q: float, eps0: float) -> float:
    """RDP of order ``alpha`` of a Laplace release amplified by sampling without replacement
    with rate ``q``, replace-one relation: Wang, Balle, Kasiviswanathan 2019, Thm 9:

        (alpha-1) eps'(alpha) <= log(1 + q^2 C(alpha,2) min{4(e^{eps(2)}-1),
                                      e^{eps(2)} min{2, (e^{eps(inf)}-1)^2}}
                                   + sum_{j=3}^alpha q^j C(alpha,j) e^{(j-1) eps(j)}
                                      min{2, (e^{eps(inf)}-1)^j})

    also capped by the unamplified ``eps(alpha)`` and by the amplified pure eps1 (Renyi
    divergences are at most the max-divergence)."""
    a = int(alpha)
    if a < 2:
        raise ValueError(f"alpha must be an integer >= 2; got {alpha!r}")
    plain = float(laplace_rdp(a, eps0))
    if q >= 1.0:
        return plain
    lq = math.log(q)
    e2 = float(laplace_rdp(2, eps0))
    lm1_inf = float(_log_expm1(eps0))  # log(e^{eps(inf)} - 1), eps(inf) = eps0
    two = 2 * lq + float(_log_comb(a, 2)) + min(
        math.log(4) + float(_log_expm1(e2)),
        e2 + min(math.log(2), 2 * lm1_inf))
    terms = [0.0, two]
    if a >= 3:
        j = np.arange(3, a + 1, dtype=float)
        ej = laplace_rdp(j, eps0)
        t = (j * lq + _log_comb(a, j) + (j - 1) * ej
             + np.minimum(math.log(2), j * lm1_inf))
        terms.extend(t.tolist())
    cgf = float(logsumexp(terms))
    # every Renyi divergence is at most the max-divergence, the amplified pure eps1
    # (Balle et al. 2018 Table 1): a valid cap, tighter at large orders
    return min(plain, cgf / (a - 1), amplified_epsilon(eps0, q))


def poisson_subsampled_rdp(alpha: int, q: float, eps0: float) -> float:
    """RDP of order ``alpha`` of a Poisson-subsampled Laplace release, add/remove relation:
    Zhu & Wang 2019, Thm 6 (general upper bound):

        (alpha-1) eps'(alpha) <= log((1-q)^{alpha-1} (alpha q - q + 1)
                                     + C(alpha,2) q^2 (1-q)^{alpha-2} e^{eps(2)}
                                     + 3 sum_{l=3}^alpha C(alpha,l) (1-q)^{alpha-l} q^l
                                       e^{(l-1) eps(l)})"""
    a = int(alpha)
    if a < 2:
        raise ValueError(f"alpha must be an integer >= 2; got {alpha!r}")
    if q >= 1.0:
        return float(laplace_rdp(a, eps0))
    lq, l1q = math.log(q), math.log1p(-q)
    terms = [(a - 1) * l1q + math.log1p(a * q - q),
             float(_log_comb(a, 2)) + 2 * lq + (a - 2) * l1q + float(laplace_rdp(2, eps0))]
    if a >= 3:
        l = np.arange(3, a + 1, dtype=float)
        t = (math.log(3) + _log_comb(a, l) + (a - l) * l1q + l * lq
             + (l - 1) * laplace_rdp(l, eps0))
        terms.extend(t.tolist())
    return min(float(logsumexp(terms)) / (a - 1), amplified_epsilon(eps0, q))


@dataclass(frozen=True)
class RDPAccountant:
    """RDP of T releases of ``mech`` on the order grid, and its (eps, delta) conversion."""

    mech: InstaHide

    def __post_init__(self):
        m = self.mech
        if m.sampler is Sampler.PERMUTATION:
            raise ValueError("the RDP accountant covers samplers 'subsets' (substitution) and "
                             "'poisson' (add_remove), not 'permutation'")
        if m.sampler is Sampler.SUBSETS and m.relation is not Relation.SUBSTITUTION:
            raise ValueError("the RDP accountant covers sampler 'subsets' under relation "
                             "'substitution' only (Wang et al. 2019 Thm 9); got 'add_remove'")

    def rdp(self, alpha: int) -> float:
        """RDP of order ``alpha`` of the whole run: T times one release's (Mironov 2017 Prop. 1).

        One release with released soft labels is a revealed mixture over the class count j
        (``InstaHide.inclusion_mixtures``): ``e^{(alpha-1) D}`` of a revealed mixture is the
        weighted sum of the components' (each bounded by Wang et al. Thm 9 at ``q = j/n_c``; 0
        at ``q = 0``), and the worst class size is taken."""
        m = self.mech
        f = subsampled_rdp_wor if m.sampler is Sampler.SUBSETS else poisson_subsampled_rdp
        worst = 0.0
        for _, law in m.inclusion_mixtures():
            terms = [math.log(w) + (alpha - 1) * (f(alpha, q, m.eps0) if q > 0 else 0.0)
                     for w, q in law]
            worst = max(worst, float(logsumexp(terms)) / (alpha - 1))
        return m.releases * worst  # Mironov 2017 Prop. 1

    def delta(self, epsilon: float) -> float:
        """The smallest delta the improved conversion gives at ``epsilon`` over the order grid:
        the same conversion as :meth:`epsilon` solved for delta,
        ``log delta = (a-1)(rdp(a) - eps + log((a-1)/a)) - log a`` (Balle et al. 2020 Thm 21)."""
        e = float(epsilon)
        if not (e >= 0 and math.isfinite(e)):
            raise ValueError(f"epsilon must be a finite number >= 0; got {epsilon!r}")
        best = min((a - 1) * (self.rdp(a) - e + math.log1p(-1.0 / a)) - math.log(a)
                   for a in ORDERS)
        return math.exp(min(best, 0.0))

    def epsilon(self, delta: float) -> tuple[float, int]:
        """(eps, best order) by the improved conversion; warns when the order is at an edge."""
        delta = check_delta(delta)
        best = (math.inf, ORDERS[0])
        for a in ORDERS:
            # Balle et al. 2020 Thm 21: eps = rdp + log((a-1)/a) - (log delta + log a)/(a-1)
            e = self.rdp(a) + math.log1p(-1.0 / a) - (math.log(delta) + math.log(a)) / (a - 1)
            if e < best[0]:
                best = (e, a)
        eps, a = best
        if a in (ORDERS[0], ORDERS[-1]):
            warnings.warn(f"RDP: the best order {a} is at the edge of the grid "
                          f"[{ORDERS[0]}, {ORDERS[-1]}]; the bound may be loose",
                          EdgeOrderWarning, stacklevel=2)
        return max(eps, 0.0), a


def rdp_result(mech: InstaHide, delta: float) -> EpsilonResult:
    """The ``rdp`` row of the epsilon table (n/a, with the reason, where not covered)."""
    rel, smp = mech.relation.value, mech.sampler.value
    src = "Mironov 2017 Prop. 6; Wang, Balle, Kasiviswanathan 2019 Thm 9; Zhu & Wang 2019 Thm 6"
    try:
        acc = RDPAccountant(mech)
    except ValueError as exc:
        return EpsilonResult("rdp", None, delta, rel, smp, mech.releases,
                             note=f"not applicable: {exc}", source=src, labels=mech.labels.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EdgeOrderWarning)
        eps, order = acc.epsilon(delta)
    note = f"Renyi DP at the best integer order {order}, improved conversion; {mech.label_note}"
    if caught:
        note += "; the best order is at the edge of the grid (bound may be loose)"
    return EpsilonResult("rdp", eps, delta, rel, smp, mech.releases, note=note, source=src,
                         extra={"order": order, "order_at_edge": bool(caught)},
                         labels=mech.labels.value)
