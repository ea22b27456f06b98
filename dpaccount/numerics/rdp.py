"""Renyi-DP numerics for DP-InstaHide: one release's RDP and the conversion to (eps, delta).

The accountant that interprets events is :mod:`dpaccount.accountants.rdp`.

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

import numpy as np
from scipy.special import gammaln, logsumexp

from ..errors import InputError
from ..validate import check_delta
from .closed_form import amplified_epsilon, log_expm1

__all__ = ["laplace_rdp", "subsampled_rdp_wor", "poisson_subsampled_rdp", "rdp_to_epsilon",
           "rdp_to_delta", "ORDERS"]

#: Integer Renyi orders searched (integer orders are what the subsampling theorems cover).
ORDERS = tuple(list(range(2, 65)) + [80, 96, 128, 160, 192, 256, 384, 512, 768, 1024])


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
        raise InputError(f"alpha must be an integer >= 2; got {alpha!r}")
    plain = float(laplace_rdp(a, eps0))
    if q >= 1.0:
        return plain
    lq = math.log(q)
    e2 = float(laplace_rdp(2, eps0))
    lm1_inf = float(log_expm1(eps0))  # log(e^{eps(inf)} - 1), eps(inf) = eps0
    two = 2 * lq + float(_log_comb(a, 2)) + min(
        math.log(4) + float(log_expm1(e2)),
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
        raise InputError(f"alpha must be an integer >= 2; got {alpha!r}")
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


def rdp_to_epsilon(rdp, delta: float) -> tuple[float, int]:
    """(eps, best order) from RDP values ``rdp(alpha)`` on :data:`ORDERS`, by the improved
    conversion ``eps = rdp + log((a-1)/a) - (log delta + log a)/(a-1)`` (Balle et al. 2020
    Thm 21), minimised over the grid."""
    delta = check_delta(delta)
    best = (math.inf, ORDERS[0])
    for a in ORDERS:
        e = rdp(a) + math.log1p(-1.0 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        if e < best[0]:
            best = (e, a)
    eps, a = best
    return max(eps, 0.0), a


def rdp_to_delta(rdp, epsilon: float) -> float:
    """The smallest delta the improved conversion gives at ``epsilon`` over the order grid:
    ``log delta = (a-1)(rdp(a) - eps + log((a-1)/a)) - log a`` (Balle et al. 2020 Thm 21)."""
    best = min((a - 1) * (rdp(a) - epsilon + math.log1p(-1.0 / a)) - math.log(a)
               for a in ORDERS)
    return math.exp(min(best, 0.0))
