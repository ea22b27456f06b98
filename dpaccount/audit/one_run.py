"""The one-run audit of Steinke, Nasr and Jagielski (2023, "Privacy auditing with one (1) training
run", arXiv:2305.08846): m canaries, each included in the training set independently with
probability 1/2; after one training run the auditor guesses "in" for the k+ highest-scoring
canaries and "out" for the k- lowest, and counts v correct guesses out of r = k+ + k-.

For an (eps, delta)-DP training algorithm (add/remove-one of a canary) the number of correct
guesses is stochastically dominated, up to a delta term, by Binomial(r, q) with q = e^eps/(1 +
e^eps) (the accuracy of eps-randomised response). Their Theorem 5.2 / Algorithm 3 give the
p-value of observing at least v correct:

    p(eps, delta) = P[Binomial(r, q) >= v] + 2 m delta * max_{1 <= i <= v} P[v > Binomial(r, q) >= v - i] / i

and the audit reports the largest eps at which p(eps, delta) < 1 - confidence: the training
algorithm is not (eps, delta)-DP, at that confidence. The guess counts (k+, k-) must be fixed
before looking at the scores; several fixed choices are allowed with a Bonferroni correction
(each tested at (1 - confidence)/L), which :func:`one_run_audit` applies.

The same guesses can be audited through the whole tradeoff function of the hypothesised mechanism
instead (Mahloujifar, Melis, Chaudhuri 2024): ``dpaccount.audit.fdp_one_run``. With delta = 0 the
binomial tail here is exact (randomised response attains it) and that bound can only match it;
it pays delta inside the tradeoff function rather than as ``2 m delta``, so it is the stronger
one when ``m delta`` is not small, and its Gaussian family gives mu.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .bounds import check_audit_delta, check_confidence
from ..errors import InputError

__all__ = ["p_value", "one_run_epsilon", "one_run_audit", "OneRunResult", "guess_counts"]


def p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """Probability of >= v correct guesses out of r under (eps, delta)-DP (module docstring)."""
    if not (0 <= v <= r <= m):
        raise InputError(f"need 0 <= v <= r <= m; got v={v}, r={r}, m={m}")
    if not (eps >= 0 and math.isfinite(eps)):
        raise InputError(f"eps must be a finite number >= 0; got {eps!r}")
    q = 1.0 / (1.0 + math.exp(-eps))
    beta = float(stats.binom.sf(v - 1, r, q))  # P[Binomial(r, q) >= v]
    alpha, acc = 0.0, 0.0
    if delta > 0 and v > 0:
        pmf = stats.binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[B = v-1], ..., P[B = 0]
        acc_i = np.cumsum(pmf)  # P[v > B >= v - i] for i = 1..v
        alpha = float(np.max(acc_i / np.arange(1, v + 1)))
        acc = alpha * delta * 2 * m
    return min(beta + acc, 1.0)


def one_run_epsilon(m: int, r: int, v: int, delta: float, confidence: float,
                    tol: float = 1e-6) -> float:
    """The largest eps with p_value(m, r, v, eps, delta) < 1 - confidence (0 if none), by
    bisection (the p-value increases with eps)."""
    level = 1.0 - check_confidence(confidence)
    delta = check_audit_delta(delta)
    if p_value(m, r, v, 0.0, delta) >= level:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < level:
        lo, hi = hi, 2 * hi
        if hi > 1e4:  # pragma: no cover - only a perfect r -> inf guess record gets here
            return lo
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if p_value(m, r, v, mid, delta) < level:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class OneRunResult:
    epsilon_lower_bound: float
    canaries: int
    included: int
    guesses_in: int
    guesses_out: int
    correct: int
    choices: int  # how many (k+, k-) choices the Bonferroni correction paid for
    delta: float
    confidence: float

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def one_run_audit(scores, included, guesses, *, delta: float,
                  confidence: float = 0.95) -> OneRunResult:
    """Steinke-Nasr-Jagielski audit from per-canary ``scores`` (larger: more likely included)
    and the true ``included`` flags. ``guesses``: a list of (k+, k-) fixed in advance; with
    more than one, each is tested at (1 - confidence)/L and the best is reported."""
    m, n_in, counts, conf_each = guess_counts(scores, included, guesses, confidence)
    best = None
    for kp, kn, v in counts:
        eps = one_run_epsilon(m, kp + kn, v, delta, conf_each)
        if best is None or eps > best.epsilon_lower_bound:
            best = OneRunResult(eps, m, n_in, kp, kn, v, len(counts), delta, confidence)
    return best


def guess_counts(scores, included, guesses, confidence: float):
    """The guesses of a one-run audit, checked and counted: ``(m, included, [(k+, k-, v)],
    confidence_each)``, with ``v`` the correct guesses when the ``k+`` highest scores are
    guessed "in" and the ``k-`` lowest "out", and each choice's confidence after the Bonferroni
    correction over the choices (fixed in advance). Shared by every one-run estimator, so that
    they judge the same guesses."""
    s = np.asarray(scores, dtype=float).ravel()
    inc = np.asarray(included, dtype=bool).ravel()
    if s.shape != inc.shape or s.size == 0:
        raise InputError(f"scores and included must be equal-length arrays; got {s.shape} and "
                         f"{inc.shape}")
    if np.isnan(s).any():
        raise InputError("scores must not be nan")
    m = s.size
    choices = [(int(a), int(b)) for a, b in guesses]
    if not choices or any(a < 0 or b < 0 or a + b == 0 or a + b > m for a, b in choices):
        raise InputError(f"guesses must be (k+, k-) pairs with 0 < k+ + k- <= {m}; got {guesses!r}")
    conf_each = 1.0 - (1.0 - check_confidence(confidence)) / len(choices)
    order = np.argsort(s, kind="stable")  # ascending
    counts = []
    for kp, kn in choices:
        top, bottom = order[m - kp:] if kp else order[:0], order[:kn]
        counts.append((kp, kn, int(inc[top].sum() + (~inc[bottom]).sum())))
    return m, int(inc.sum()), counts, conf_each
