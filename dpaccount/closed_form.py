"""Closed-form privacy of DP-InstaHide: per release, amplified, and composed over T releases.

Every function returns an upper bound on epsilon (pure DP, or (eps, delta)-DP where it takes a
delta). All arithmetic is in log space so that eps0 up to 1e5 and T up to 1e12 neither overflow
nor lose the answer; where a value cannot be represented as a float the table says so instead of
printing ``inf``.

Sources (cited again at the line that uses each):

* [DMNS06] Dwork, McSherry, Nissim, Smith, "Calibrating noise to sensitivity in private data
  analysis", TCC 2006, Prop. 1 (Laplace mechanism); Dwork & Roth, "The Algorithmic Foundations of
  Differential Privacy" (2014), Thm 3.6.
* [BGC21] Borgnia et al., "DP-InstaHide", arXiv:2103.02079v2, Sec. 4: averaging k records divides
  the L1 sensitivity by k, so k-way mixup is k times stronger than the naive mechanism.
* [BBG18] Balle, Barthe, Gaboardi, "Privacy amplification by subsampling: tight analyses via
  couplings and divergences", NeurIPS 2018, arXiv:1807.01647, Table 1: sampling without
  replacement under substitution, Poisson sampling under add/remove.
* [DR14] Dwork & Roth (2014), Thm 3.16 (basic composition).
* [DRV10] Dwork, Rothblum, Vadhan, "Boosting and differential privacy", FOCS 2010, Thm III.3;
  Dwork & Roth (2014), Thm 3.20 (advanced composition).
* [KOV15] Kairouz, Oh, Viswanath, "The composition theorem for differential privacy", ICML 2015,
  arXiv:1311.0776, Thm 3.3 (optimal composition of eps-DP mechanisms); [MV16] Murtagh & Vadhan,
  "The complexity of computing the optimal composition of differential privacy", TCC 2016,
  arXiv:1507.03113, Thm 1.5 / Eq. (1): the optimal delta at every eps'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import gammaln, logsumexp

from ._validate import check_count, check_delta, check_eps
from .mechanism import EpsilonResult, InstaHide, Sampler

__all__ = [
    "naive_epsilon",
    "per_release_epsilon",
    "amplified_epsilon",
    "basic_composition",
    "advanced_composition",
    "kov_delta",
    "kov_epsilon",
    "composition_unit",
    "closed_form_table",
    "CLOSED_FORM_METHODS",
]

#: The methods of :func:`closed_form_table`, in the order they are reported.
CLOSED_FORM_METHODS = ("naive", "per_release", "amplified", "basic", "advanced", "kov")

_LOG_FLOAT_MAX = math.log(np.finfo(float).max)  # about 709.78


_check_eps = check_eps
_check_count = check_count
_check_delta = check_delta


def _check_positive(name: str, v) -> float:
    f = float(v)
    if not (f > 0 and math.isfinite(f)):
        raise ValueError(f"{name} must be a positive finite number; got {v!r}")
    return f


# ---------------------------------------------------------------------------------------------
# One release
# ---------------------------------------------------------------------------------------------


def naive_epsilon(diameter: float, noise: float) -> float:
    """Laplace mechanism on one record: ``Delta / b`` (pure DP).

    [DMNS06] Prop. 1; Dwork & Roth Thm 3.6. The supremum of the Laplace log density ratio is
    ``||shift||_1 / b``. Proof: ``proofs/laplace_log_ratio.py``.
    """
    diameter = _check_positive("diameter", diameter)
    noise = _check_positive("noise", noise)
    return diameter / noise  # [DMNS06] Prop. 1: eps = L1 sensitivity / scale


def per_release_epsilon(diameter: float, noise: float, k: int) -> float:
    """``eps0 = Delta / (k b)``: one mixed release, given that the changed record is in it.

    [BGC21] Sec. 4: the mean of k records moves by at most ``Delta / k`` in L1 when one record is
    replaced, and the Laplace log-ratio bound gives ``(Delta/k)/b``.
    Proofs: ``proofs/laplace_log_ratio.py`` (the Laplace step), ``proofs/special_cases.py``
    (k = 1 gives the naive epsilon; eps0(k) = eps0(1)/k).
    """
    k = _check_count("k", k)
    return naive_epsilon(diameter, noise) / k  # [BGC21] Sec. 4: sensitivity Delta/k


def amplified_epsilon(eps0: float, q: float) -> float:
    """``eps1 = log(1 + q (e^eps0 - 1))``: one release when the record is included w.p. ``q``.

    [BBG18] Table 1 (sampling without replacement of a fixed-size subset, substitution
    relation; Poisson sampling, add/remove relation). Tight: attained when every other record
    equals the replacement and the pair is at distance Delta.
    Proofs: ``proofs/mixture_ratio_bound.py`` (the bound, attainment, monotonicity),
    ``proofs/special_cases.py`` (k = 1 and k = N).

    Computed as ``log1p(q * expm1(eps0))`` while that is exact in doubles, and as
    ``logaddexp(log1p(-q), log(q) + eps0)`` (the same number, ``log((1-q) + q e^eps0)``) when
    ``e^eps0`` would overflow.
    """
    eps0 = _check_eps("eps0", eps0)
    q = float(q)
    if not (0.0 < q <= 1.0):
        raise ValueError(f"q must be in (0, 1]; got {q!r}")
    if eps0 <= 700.0:
        return math.log1p(q * math.expm1(eps0))  # [BBG18] Table 1
    # e^eps0 overflows: log((1-q) + q e^eps0) in log space. q = 1 gives log1p(-1) = -inf,
    # which logaddexp handles exactly.
    log_one_minus_q = math.log1p(-q) if q < 1.0 else -math.inf
    return float(np.logaddexp(log_one_minus_q, math.log(q) + eps0))


# ---------------------------------------------------------------------------------------------
# Composition of T releases, each eps-DP
# ---------------------------------------------------------------------------------------------


def basic_composition(eps: float, releases: int) -> float:
    """``T * eps`` (pure DP). [DR14] Thm 3.16."""
    eps = _check_eps("eps", eps)
    releases = _check_count("releases", releases)
    return releases * eps  # [DR14] Thm 3.16


def _log_expm1(x: float) -> float:
    """``log(e^x - 1)`` for x > 0 without overflow."""
    if x > 30.0:
        return x + math.log1p(-math.exp(-x))
    return math.log(math.expm1(x))


def advanced_composition(eps: float, releases: int, delta: float) -> float | None:
    """Advanced composition of T eps-DP releases: ``(eps', delta)``-DP with

    ``eps' = sqrt(2 T ln(1/delta)) eps + T eps (e^eps - 1)`` ([DRV10] Thm III.3 with per-step
    delta 0 and slack delta' = delta; Dwork & Roth Thm 3.20).

    Returns ``None`` when eps' exceeds the largest float (the bound is then vacuous); the caller
    says so rather than printing ``inf``.
    """
    eps = _check_eps("eps", eps)
    releases = _check_count("releases", releases)
    delta = _check_delta(delta)
    if eps == 0.0:
        return 0.0
    first = math.sqrt(2.0 * releases * math.log(1.0 / delta)) * eps  # [DRV10] Thm III.3
    log_second = math.log(releases) + math.log(eps) + _log_expm1(eps)
    if log_second >= _LOG_FLOAT_MAX - 1.0:
        return None
    total = first + math.exp(log_second)  # [DRV10] Thm III.3: + T eps (e^eps - 1)
    return total if math.isfinite(total) else None


@dataclass(frozen=True)
class _KOVProfile:
    """The privacy profile of T-fold composition of randomized response with parameter eps.

    The optimal composition of T eps-DP mechanisms ([KOV15] Thm 3.3, [MV16] Eq. (1)) is
    dominated by T independent randomized responses; its privacy loss is ``eps (T - 2 I)`` with
    ``I ~ Binomial(T, r)``, ``r = 1/(1 + e^eps)``, so

        delta(eps') = sum_i C(T, i) (1-r)^(T-i) r^i (1 - exp(eps' - eps (T - 2 i)))_+ .

    Evaluated in log space over a window of the binomial around its mode; the mass outside the
    window is bounded by a geometric series (the pmf ratio is monotone), and both the rounding of
    the log terms and of the loss values are allowed for, so :meth:`log_delta_upper` is an upper
    bound on the true log delta. Proof of the formula against brute force:
    ``proofs/kov_profile.py``.
    """

    eps: float
    releases: int

    # derived once
    def _setup(self):
        eps, t = self.eps, self.releases
        log1pexp = math.log1p(math.exp(-eps))
        lp = -log1pexp  # log(1 - r) = log(e^eps / (1 + e^eps))
        lr = -eps - log1pexp  # log r
        r = math.exp(lr)
        mode = min(t, int(math.floor((t + 1) * r)))
        sd = math.sqrt(t * r * (1.0 - r))
        width = int(math.ceil(20.0 * sd)) + 64  # tails beyond 20 sd are below e^-200, and bounded
        # rounding allowance for one log term: ~8 operations on magnitudes up to M
        magnitude = 2.0 * float(gammaln(t + 1.0)) + t * (abs(lp) + abs(lr)) + 1.0
        log_err = 1e-14 * magnitude
        return lp, lr, mode, width, log_err

    def __post_init__(self):
        object.__setattr__(self, "_cache", self._setup())

    def _log_pmf(self, i: np.ndarray) -> np.ndarray:
        lp, lr = self._cache[0], self._cache[1]
        t = float(self.releases)
        return gammaln(t + 1.0) - gammaln(i + 1.0) - gammaln(t - i + 1.0) + (t - i) * lp + i * lr

    def log_delta_upper(self, eps_prime: float) -> float:
        """Upper bound on ``log delta(eps')`` (``-inf`` where delta is exactly 0)."""
        eps, t = self.eps, self.releases
        lp, lr, mode, width, log_err = self._cache
        loss_err = 4.0 * np.finfo(float).eps * (eps * t + abs(eps_prime)) + 1e-300
        # terms with eps*(T-2i) - eps' + loss_err <= 0 vanish: i_top is the last that may not
        c = (t - (eps_prime - loss_err) / eps) / 2.0
        i_top = min(t, int(math.ceil(c)))
        if i_top < 0:
            return -math.inf
        hi = min(i_top, mode + width)
        lo = max(0, min(mode, hi) - width)
        i = np.arange(lo, hi + 1, dtype=float)
        logw = self._log_pmf(i)
        x = eps * (t - 2.0 * i) - eps_prime + loss_err  # upper bound on the loss margin
        keep = x > 0
        parts = [logw[keep] + np.log(-np.expm1(-x[keep]))]
        if hi < i_top:
            # upper tail i > hi: w_{i+1}/w_i = (T-i)/(i+1) * r/(1-r), decreasing in i
            log_rho = math.log(t - hi) - math.log(hi + 1.0) + lr - lp
            if not log_rho < 0:
                raise RuntimeError("KOV window: upper tail ratio >= 1 (internal error)")
            parts.append(np.array([logw[-1] + log_rho - math.log(-math.expm1(log_rho))]))
        if lo > 0:
            # lower tail i < lo: w_{i-1}/w_i = i/(T-i+1) * (1-r)/r, increasing in i
            log_rho = math.log(lo) - math.log(t - lo + 1.0) + lp - lr
            if not log_rho < 0:
                raise RuntimeError("KOV window: lower tail ratio >= 1 (internal error)")
            parts.append(np.array([logw[0] + log_rho - math.log(-math.expm1(log_rho))]))
        allp = np.concatenate(parts)
        if allp.size == 0:
            return -math.inf
        return float(logsumexp(allp)) + log_err


def kov_delta(eps: float, releases: int, epsilon: float) -> float:
    """Optimal delta of T-fold composition of eps-DP mechanisms at ``epsilon`` (an upper bound
    within ~1e-10 relative of the exact value). [KOV15] Thm 3.3, [MV16] Eq. (1).
    Proof of the formula against brute-force enumeration: ``proofs/kov_profile.py``."""
    eps = _check_eps("eps", eps)
    releases = _check_count("releases", releases)
    epsilon = _check_eps("epsilon", epsilon)
    if eps == 0.0:
        return 0.0
    return min(1.0, math.exp(_KOVProfile(eps, releases).log_delta_upper(epsilon)))


def kov_epsilon(eps: float, releases: int, delta: float) -> float:
    """Smallest eps' for which T eps-DP releases are (eps', delta)-DP, by the optimal
    composition theorem ([KOV15] Thm 3.3, [MV16] Thm 1.5). An upper bound: the returned eps' is
    checked to satisfy ``delta_upper(eps') <= delta``. Works in log space for T up to 1e12 and
    eps up to 1e5. Proof of the profile it inverts: ``proofs/kov_profile.py``."""
    eps = _check_eps("eps", eps)
    releases = _check_count("releases", releases)
    delta = _check_delta(delta)
    if eps == 0.0:
        return 0.0
    prof = _KOVProfile(eps, releases)
    log_target = math.log(delta)
    floor = log_target - 1000.0  # finite stand-in for log 0 so the root finder sees a sign

    def f(e: float) -> float:
        return max(prof.log_delta_upper(e), floor) - log_target

    if f(0.0) <= 0.0:
        return 0.0
    top = eps * releases
    hi = top * (1.0 + 1e-12) + 1e-12
    while f(hi) > 0.0:  # the rounding allowance can leave a sliver above T*eps
        hi = hi * (1.0 + 1e-9) + 1e-9
    root = brentq(f, 0.0, hi, xtol=1e-14 * max(1.0, top), rtol=4 * np.finfo(float).eps)
    # brentq returns a point within xtol of the crossing, on either side: step up until the
    # conservative delta is met, so the answer is an upper bound.
    step = 1e-14 * max(1.0, top)
    while f(root) > 0.0:
        root += step
        step *= 2.0
    # The loss never exceeds T*eps, so delta(T*eps) = 0 exactly: T*eps (basic composition) is
    # always valid, even where the rounding allowance pushed the checked root above it.
    return min(root, top)


# ---------------------------------------------------------------------------------------------
# A mechanism's closed-form table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompositionUnit:
    """What is composed: ``count`` mechanisms, each ``eps``-DP, and why."""

    eps: float
    count: int
    description: str


def composition_unit(mech: InstaHide) -> CompositionUnit:
    """The pure-DP building block of a run and how many times it is composed.

    * ``subsets`` (substitution or add/remove) and ``poisson`` (add/remove): each release is
      eps1-DP with ``q = k/N`` ([BBG18] Table 1; for fixed-size subsets under add/remove, q is
      taken at the larger dataset, N, which covers both neighbours: ``proofs/mixture_ratio_bound.py``),
      composed over the T releases. Pure-DP steps compose by these theorems whatever the other
      records are, so the composition pitfall of substitution pairs does not arise here. With
      released soft labels, q is the largest inclusion probability the label can show
      (``InstaHide.worst_inclusion``: 1 for a record alone in its class). Poisson under
      add/remove uses the record norm, not the diameter (``InstaHide.sensitivity``).
    * ``permutation``: within one epoch a record fills exactly k slots with weight 1/k each, so
      the whole epoch (given the permutations, which are data-independent) is a Laplace
      mechanism with L1 sensitivity Delta: ``Delta/b``-DP per epoch ([DMNS06]), composed over
      ``ceil(T/N)`` epochs (a partial epoch counts whole). No amplification by sampling.
    """
    if mech.sampler in (Sampler.SUBSETS, Sampler.POISSON):
        eps1 = amplified_epsilon(mech.eps0, mech.worst_inclusion)
        return CompositionUnit(eps1, mech.releases, "releases, each eps1-DP (amplified)")
    if mech.sampler is Sampler.PERMUTATION:
        epochs = -(-mech.releases // mech.n)  # ceil
        return CompositionUnit(
            naive_epsilon(mech.diameter, mech.noise),
            epochs,
            "epochs, each Delta/b-DP (k slots of weight 1/k per record per epoch)",
        )
    raise ValueError(f"sampler {mech.sampler!r} is not covered by the closed forms")


def closed_form_table(mech: InstaHide, delta: float) -> list[EpsilonResult]:
    """Every closed-form method for ``mech``, side by side, each an upper bound on epsilon.

    Rows: ``naive`` (Delta/b, one release of one record with no mixing or sampling),
    ``per_release`` (eps0), ``amplified`` (eps1), then the whole run: ``basic``, ``advanced``
    and ``kov``. ``delta`` is used by ``advanced`` and ``kov``; the pure-DP rows carry delta 0.
    """
    delta = _check_delta(delta)
    rel, smp = mech.relation.value, mech.sampler.value

    def row(method, eps, d, releases, note="", source="", bound="upper"):
        return EpsilonResult(method, eps, d, rel, smp, releases, bound, note, source,
                             labels=mech.labels.value)

    poisson = mech.sampler is Sampler.POISSON
    naive = naive_epsilon(mech.norm if poisson else mech.diameter, mech.noise)
    eps0 = mech.eps0
    what = "record norm" if poisson else "Delta"
    rows = [
        row("naive", naive, 0.0, 1, f"Laplace on one record: k = 1, no sampling, one release "
            f"(sensitivity {what})", "Dwork et al. 2006 Prop. 1"),
        row("per_release", eps0, 0.0, 1,
            f"one mixed release containing the record (sensitivity {what}/k)",
            "Borgnia et al. 2021 Sec. 4"),
    ]
    if mech.sampler in (Sampler.SUBSETS, Sampler.POISSON):
        q = mech.worst_inclusion
        eps1 = amplified_epsilon(eps0, q)
        how = ("k-subset without replacement" if mech.sampler is Sampler.SUBSETS
               else "Poisson sampling")
        qtext = "q = k/N" if q == mech.sampling_rate else (
            f"q = {q:.4g}, the largest inclusion probability the un-noised soft label can show")
        rows.append(row("amplified", eps1, 0.0, 1, f"one release, {qtext}, {how}; "
                        f"{mech.label_note}", "Balle et al. 2018 Table 1"))
    else:
        rows.append(row("amplified", None, 0.0, 1,
                        "not applicable: permutation mixing uses every record every epoch "
                        "(no amplification by sampling)", "THEORY.md Sec. 4"))
    unit = composition_unit(mech)
    total = mech.releases
    basic = basic_composition(unit.eps, unit.count)
    rows.append(row("basic", basic, 0.0, total,
                    f"{unit.count} {unit.description}, summed", "Dwork & Roth 2014 Thm 3.16"))
    adv = advanced_composition(unit.eps, unit.count, delta)
    rows.append(row("advanced", adv, delta, total,
                    f"{unit.count} {unit.description}" if adv is not None else
                    "bound exceeds the largest float (vacuous)",
                    "Dwork, Rothblum, Vadhan 2010 Thm III.3"))
    kov = kov_epsilon(unit.eps, unit.count, delta)
    rows.append(row("kov", kov, delta, total,
                    f"optimal composition of {unit.count} {unit.description}",
                    "Kairouz, Oh, Viswanath 2015 Thm 3.3; Murtagh, Vadhan 2016"))
    return rows
