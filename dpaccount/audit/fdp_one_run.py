"""The f-DP one-run audit of Mahloujifar, Melis and Chaudhuri (2024, "Auditing f-Differential
Privacy in One Run", arXiv:2410.22235, ICML 2025), and Gaussian-DP conversions.

The game is Steinke, Nasr and Jagielski's (``dpaccount.audit.one_run``): m canaries, each included
independently with probability 1/2; one training run; the auditor makes exactly r guesses ("in"
for the k+ highest scores, "out" for the k- lowest, r = k+ + k-) and abstains on the rest; v of
the r guesses are right. Instead of reducing the mechanism to (eps, delta) and randomised
response, Mahloujifar et al. bound the number of correct guesses through the whole tradeoff
function f of the hypothesised mechanism (their Sec. 4, "Auditing f-DP in one run").

**The bound** (their Theorem 9 with Algorithm 3, ``rh_with_cap`` / ``audit_rh_with_cap`` in the
authors' code). Write ``fbar(x) = 1 - f(x)`` (concave, non-decreasing) and ``fbar^{-1}(y)`` for
the smallest x with ``fbar(x) >= y`` (:func:`blow_up_inverse_eps_delta`,
:func:`blow_up_inverse_gdp`). Let C be the number of correct guesses and, for each i,

    R_i = E[C; C >= i] / m,        H_i = E[r - C; C >= i] / m.

For canary j and any event E of the output (and of the other canaries), the f-DP of the
add/remove of canary j gives ``P[j guessed right, E] <= fbar(P[j guessed wrong, E])``; with E =
{the other guesses have >= i - 1 right} and Jensen over the m canaries (fbar is concave):

    R_i <= fbar(H_{i-1}),  i.e.  H_{i-1} >= fbar^{-1}(R_i),   for i = 1, ..., r.

If ``P[C >= v] >= tau``, start from the least tail (all of it at v): ``R_v = tau v / m``,
``H_v = tau (r - v) / m``, and go down i = v-1, ..., 0 taking the least mass ``p_i`` at each
level that the constraint allows:

    H_i = max(H_{i+1}, fbar^{-1}(R_{i+1})),   R_i = R_{i+1} + i / (r - i) (H_i - H_{i+1})

(``H_i - H_{i+1} = (r - i) p_i / m`` and ``R_i - R_{i+1} = i p_i / m``). Every distribution of C
has ``R_0 + H_0 = r / m`` exactly; if the least mass already exceeds it, no f-DP mechanism has
``P[C >= v] >= tau``: observing v correct rejects f at level tau (:func:`rejects`). The p-value
of v correct is the least tau that is rejected (:func:`tail_bound`).

**What is reported.** For one observation (m, r, v) and a confidence, the largest privacy
parameter that the observation rejects, in two families (bisection; rejection is monotone in the
parameter because fbar grows with it):

- :func:`fdp_epsilon`: f = f_{eps, delta}, the tradeoff function of (eps, delta)-DP (Kairouz, Oh,
  Viswanath 2015; Dong, Roth, Su 2019, Eq. 5) at the run's delta: a lower bound on eps for every
  (eps, delta)-DP mechanism.
- :func:`fdp_mu`: f = G_mu, Gaussian DP (Dong, Roth, Su 2019, Def. 2.7): a lower bound on mu,
  sound for every mechanism that is mu-GDP for some mu; :func:`gdp_epsilon` turns it into the eps
  at delta of a mu-GDP mechanism (Cor. 2.13), which is a lower bound on eps only if the mechanism
  is in the mu-GDP family (the label says so).

numpy and scipy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import log_ndtr, ndtr, ndtri

from .bounds import check_audit_delta, check_confidence
from .one_run import guess_counts
from ..errors import InputError

__all__ = [
    "blow_up_inverse_eps_delta",
    "blow_up_inverse_gdp",
    "rejects",
    "tail_bound",
    "fdp_epsilon",
    "fdp_mu",
    "gdp_delta",
    "gdp_epsilon",
    "gdp_mu_from_rates",
    "fdp_one_run_audit",
    "FdpOneRunResult",
]

#: parameters searched up to here; a record that rejects even this reports it (a ceiling)
MAX_EPS = 1e3
MAX_MU = 1e2


def blow_up_inverse_eps_delta(eps: float, delta: float):
    """``fbar^{-1}`` of (eps, delta)-DP: ``f(x) = max(0, 1 - delta - e^eps x, e^-eps (1 - delta -
    x))`` (Dong, Roth, Su 2019, Eq. 5), so ``fbar(x) = min(1, delta + e^eps x, 1 - e^-eps (1 -
    delta - x))`` and the least x with ``fbar(x) >= y`` is ``max(0, (y - delta) e^-eps, 1 - delta
    - e^eps (1 - y))``."""
    e_neg = math.exp(-eps)
    e_pos = math.exp(min(eps, 700.0))

    def inverse(y: float) -> float:
        return max(0.0, (y - delta) * e_neg, 1.0 - delta - e_pos * (1.0 - y))

    return inverse


def blow_up_inverse_gdp(mu: float):
    """``fbar^{-1}`` of mu-GDP: ``G_mu(x) = Phi(Phi^{-1}(1 - x) - mu)`` (Dong, Roth, Su 2019,
    Def. 2.7), so ``fbar(x) = Phi(Phi^{-1}(x) + mu)`` and ``fbar^{-1}(y) = Phi(Phi^{-1}(y) - mu)``.
    """

    def inverse(y: float) -> float:
        return float(ndtr(ndtri(y) - mu))

    return inverse


def _check_mrv(m, r, v) -> tuple[int, int, int]:
    for name, x in (("m", m), ("r", r), ("v", v)):
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
            raise InputError(f"{name} must be an integer; got {x!r}")
    if not (0 <= v <= r <= m and m >= 1 and r >= 1):
        raise InputError(f"need 0 <= v <= r <= m, r >= 1; got v={v}, r={r}, m={m}")
    return int(m), int(r), int(v)


def _least_mass(m: int, r: int, v: int, inverse, tau: float) -> float:
    """``R_0 + H_0`` of the recursion of the module docstring (Algorithm 3), or ``inf`` as soon as
    the running sum passes ``r / m`` (both only grow, so the answer is then known)."""
    cap = r / m
    big_r, big_h = tau * v / m, tau * (r - v) / m
    for i in range(v - 1, -1, -1):
        need = inverse(big_r)
        if not need > big_h:  # nothing changes from here down
            break
        big_r += i / (r - i) * (need - big_h)
        big_h = need
        if big_r + big_h > cap:
            return math.inf
    return big_r + big_h


def rejects(m: int, r: int, v: int, inverse, level: float) -> bool:
    """True when v correct guesses out of r (m canaries) reject the tradeoff function whose
    ``fbar^{-1}`` is ``inverse`` at significance ``level``: no mechanism with that tradeoff
    function has ``P[C >= v] >= level`` (Theorem 9 / Algorithm 3; module docstring)."""
    m, r, v = _check_mrv(m, r, v)
    if not (0.0 < level <= 1.0):
        raise InputError(f"level must be in (0, 1]; got {level!r}")
    return _least_mass(m, r, v, inverse, level) > (r / m) * (1.0 + 1e-12)


def tail_bound(m: int, r: int, v: int, inverse, tol: float = 1e-9) -> float:
    """The least tau that :func:`rejects` (bisection; 1 if none): every mechanism with this
    tradeoff function has ``P[C >= v] <= tail_bound``, the p-value of v correct."""
    m, r, v = _check_mrv(m, r, v)
    if not rejects(m, r, v, inverse, 1.0):
        return 1.0
    lo, hi = 0.0, 1.0  # not rejected at lo (tau -> 0 needs no mass), rejected at hi
    while hi - lo > tol * max(hi, 1e-300) and hi > 1e-300:
        mid = 0.5 * (lo + hi)
        if _least_mass(m, r, v, inverse, mid) > (r / m) * (1.0 + 1e-12):
            hi = mid
        else:
            lo = mid
    return hi


def _largest_rejected(rejected, upper: float, tol: float) -> float:
    """The largest parameter p in [0, upper] with ``rejected(p)`` (monotone: rejected below some
    point, not above), by bisection; 0 when p = 0 is not rejected."""
    if not rejected(0.0):
        return 0.0
    lo, hi = 0.0, 1.0
    while rejected(hi):
        lo, hi = hi, 2.0 * hi
        if hi > upper:
            return upper if rejected(upper) else _bisect(rejected, lo, upper, tol)
    return _bisect(rejected, lo, hi, tol)


def _bisect(rejected, lo, hi, tol):
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if rejected(mid):
            lo = mid
        else:
            hi = mid
    return lo


def fdp_epsilon(m: int, r: int, v: int, delta: float, confidence: float,
                tol: float = 1e-6) -> float:
    """The largest eps such that v correct of r (m canaries) reject (eps, delta)-DP at
    ``confidence``: a lower bound on eps at that delta for any mechanism (0 if none)."""
    m, r, v = _check_mrv(m, r, v)
    level = 1.0 - check_confidence(confidence)
    delta = check_audit_delta(delta)
    return _largest_rejected(
        lambda e: _least_mass(m, r, v, blow_up_inverse_eps_delta(e, delta), level)
        > (r / m) * (1.0 + 1e-12), MAX_EPS, tol)


def fdp_mu(m: int, r: int, v: int, confidence: float, tol: float = 1e-6) -> float:
    """The largest mu such that v correct of r (m canaries) reject mu-GDP at ``confidence``: a
    lower bound on mu, sound if the mechanism is mu-GDP for some mu (0 if none)."""
    m, r, v = _check_mrv(m, r, v)
    level = 1.0 - check_confidence(confidence)
    return _largest_rejected(
        lambda mu: _least_mass(m, r, v, blow_up_inverse_gdp(mu), level)
        > (r / m) * (1.0 + 1e-12), MAX_MU, tol)


# ------------------------------------------------------------------ Gaussian DP conversions


def _check_mu(mu) -> float:
    x = float(mu)
    if not (x >= 0.0 and math.isfinite(x)):
        raise InputError(f"mu must be a finite number >= 0; got {mu!r}")
    return x


def gdp_delta(mu: float, eps: float) -> float:
    """delta(eps) of mu-GDP (Dong, Roth, Su 2019, Cor. 2.13):
    ``Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)``, computed as
    ``Phi(a) (1 - exp(eps + log Phi(b) - log Phi(a)))`` in log space so that large eps and mu do
    not cancel catastrophically."""
    mu = _check_mu(mu)
    eps = float(eps)
    if not (eps >= 0.0 and math.isfinite(eps)):
        raise InputError(f"eps must be a finite number >= 0; got {eps!r}")
    if mu == 0.0:
        return 0.0
    la = float(log_ndtr(-eps / mu + mu / 2.0))
    lb = float(log_ndtr(-eps / mu - mu / 2.0))
    t = eps + lb - la  # < 0 for mu > 0
    return max(0.0, math.exp(la) * -math.expm1(t))


def gdp_epsilon(mu: float, delta: float, tol: float = 1e-10) -> float:
    """The least eps with ``gdp_delta(mu, eps) <= delta``: the eps at delta of a mu-GDP mechanism
    (Cor. 2.13 inverted by root finding on the log of delta(eps), decreasing in eps)."""
    mu = _check_mu(mu)
    d = float(delta)
    if not (0.0 < d < 1.0):
        raise InputError(f"delta must be in the open interval (0, 1); got {delta!r}")
    if gdp_delta(mu, 0.0) <= d:
        return 0.0
    log_d = math.log(d)

    def gap(e):
        g = gdp_delta(mu, e)
        return (math.log(g) if g > 0 else -math.inf) - log_d

    hi = max(1.0, mu * mu)
    while gap(hi) > 0:
        hi *= 2.0
    return float(optimize.brentq(gap, 0.0, hi, xtol=tol, rtol=1e-12))


def gdp_mu_from_rates(fpr, fnr) -> float:
    """The largest mu whose Gaussian tradeoff curve the point (fpr, fnr) lies on or below:
    ``fnr <= G_mu(fpr) = Phi(Phi^{-1}(1 - fpr) - mu)`` iff ``mu <= Phi^{-1}(1 - fpr) -
    Phi^{-1}(fnr)`` (Dong, Roth, Su 2019, Def. 2.7; the same point with the rates swapped gives the
    same mu, G_mu being symmetric). 0 when the point is above the diagonal (no evidence)."""
    a, b = float(fpr), float(fnr)
    if not (0.0 <= a <= 1.0 and 0.0 <= b <= 1.0):
        raise InputError(f"rates must be in [0, 1]; got fpr={fpr!r}, fnr={fnr!r}")
    if a >= 1.0 or b >= 1.0:
        return 0.0
    if a == 0.0 or b == 0.0:
        return math.inf
    return max(0.0, float(-ndtri(a) - ndtri(b)))


# ------------------------------------------------------------------ the audit from scores


@dataclass(frozen=True)
class FdpOneRunResult:
    """The f-DP one-run audit of one set of canary scores: the best (k+, k-) choice for each
    family, each tested at (1 - confidence)/choices (Bonferroni)."""

    epsilon_lower_bound: float  # (eps, delta)-DP family at delta: sound for every mechanism
    mu_lower_bound: float  # mu-GDP family: sound if the mechanism is mu-GDP
    epsilon_from_mu: float  # eps at delta of mu_lower_bound-GDP: a lower bound only if mu-GDP
    canaries: int
    included: int
    guesses_in: int  # the choice that gave epsilon_lower_bound
    guesses_out: int
    correct: int
    mu_guesses_in: int  # the choice that gave mu_lower_bound
    mu_guesses_out: int
    mu_correct: int
    choices: int
    delta: float
    confidence: float

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def fdp_one_run_audit(scores, included, guesses, *, delta: float,
                      confidence: float = 0.95) -> FdpOneRunResult:
    """Mahloujifar-Melis-Chaudhuri audit from per-canary ``scores`` (larger: more likely
    included) and the true ``included`` flags, with the guesses of
    :func:`dpaccount.audit.one_run.one_run_audit` (a list of (k+, k-) fixed in advance; with more
    than one, each is tested at (1 - confidence)/L and the best is reported, per family)."""
    delta = check_audit_delta(delta)
    m, n_in, counts, conf_each = guess_counts(scores, included, guesses, confidence)
    best_e = best_m = None
    for kp, kn, v in counts:
        e = fdp_epsilon(m, kp + kn, v, delta, conf_each)
        mu = fdp_mu(m, kp + kn, v, conf_each)
        if best_e is None or e > best_e[0]:
            best_e = (e, kp, kn, v)
        if best_m is None or mu > best_m[0]:
            best_m = (mu, kp, kn, v)
    mu = best_m[0]
    e_mu = gdp_epsilon(mu, delta) if delta > 0 else math.inf if mu > 0 else 0.0
    return FdpOneRunResult(best_e[0], mu, e_mu, m, n_in, best_e[1], best_e[2], best_e[3],
                           best_m[1], best_m[2], best_m[3], len(counts), delta, confidence)
