"""The one-run audit (Steinke, Nasr, Jagielski 2023) against a direct binomial computation, and
its bound arithmetic at known cases. Pure numpy: runs without torch."""

import math

import numpy as np
import pytest

from dpaccount.audit.one_run import one_run_audit, one_run_epsilon, p_value


def _binom_tail(r, q, v):
    """P[Binomial(r, q) >= v] by the direct sum, with exact binomial coefficients."""
    return sum(math.comb(r, j) * q ** j * (1 - q) ** (r - j) for j in range(v, r + 1))


def _delta_term(m, r, q, v, delta):
    """2 m delta max_i (1/i) P[v > B >= v - i], by direct sums."""
    best = 0.0
    for i in range(1, v + 1):
        s = sum(math.comb(r, j) * q ** j * (1 - q) ** (r - j) for j in range(v - i, v))
        best = max(best, s / i)
    return 2 * m * delta * best


@pytest.mark.parametrize("m,r,v,eps,delta", [(100, 20, 15, 0.5, 0.0), (1000, 100, 83, 1.0, 0.0),
                                             (1000, 100, 83, 1.0, 1e-5), (50, 50, 50, 2.0, 1e-3),
                                             (200, 60, 30, 0.0, 1e-2)])
def test_steinke_p_value_against_direct_binomial(m, r, v, eps, delta):
    q = 1 / (1 + math.exp(-eps))
    want = min(1.0, _binom_tail(r, q, v) + _delta_term(m, r, q, v, delta))
    assert p_value(m, r, v, eps, delta) == pytest.approx(want, rel=1e-9, abs=1e-15)


def test_one_run_epsilon_inverts_the_p_value():
    m, r, v, conf = 1000, 100, 83, 0.95
    e = one_run_epsilon(m, r, v, 1e-5, conf)
    assert p_value(m, r, v, e, 1e-5) < 0.05 <= p_value(m, r, v, e + 1e-4, 1e-5)
    # no separation: half right certifies nothing; all right certifies a lot, growing with r
    assert one_run_epsilon(m, 100, 50, 0.0, conf) == 0.0
    assert 0 < one_run_epsilon(m, 20, 20, 0.0, conf) < one_run_epsilon(m, 200, 200, 0.0, conf)
    # perfect guesses, delta = 0: P[Binom(r, q) = r] = q^r < 0.05 exactly when eps > that root
    r = 20
    q_star = 0.05 ** (1 / r)
    assert one_run_epsilon(m, r, r, 0.0, conf) == pytest.approx(math.log(q_star / (1 - q_star)),
                                                                abs=1e-5)


def overshoots_on_randomised_response(audit, eps: float, m: int, reps: int, guesses) -> int:
    """How many of ``reps`` audits of an exactly eps-DP randomised response (each of ``m``
    canaries guessed right with probability e^eps/(1+e^eps)) certify more than eps.
    ``audit(scores, included, guesses, delta, confidence)`` is the one-run audit under test."""
    rng = np.random.default_rng(0)
    q = 1 / (1 + math.exp(-eps))
    over = 0
    for _ in range(reps):
        included = rng.random(m) < 0.5
        right = rng.random(m) < q
        guess_in = np.where(right, included, ~included)
        scores = guess_in + rng.random(m) * 0.1  # guessed "in" ranks above guessed "out"
        res = audit(scores, included, guesses, delta=0.0, confidence=0.95)
        over += res.epsilon_lower_bound > eps
    return over


def test_one_run_is_sound_on_randomised_response():
    """Guesses that are right with probability e^eps/(1+e^eps), i.e. an exactly eps-DP
    randomised response: the 95% lower bound exceeds eps in at most ~5% of repetitions."""
    reps = 400
    over = overshoots_on_randomised_response(one_run_audit, 1.0, 400, reps, [(40, 40)])
    assert over <= 0.05 * reps + 3 * math.sqrt(0.05 * 0.95 * reps)


def test_one_run_bonferroni_and_bad_input():
    scores = np.arange(100.0)
    inc = scores >= 50  # perfect
    one = one_run_audit(scores, inc, [(10, 10)], delta=0.0)
    three = one_run_audit(scores, inc, [(10, 10), (5, 5), (2, 2)], delta=0.0)
    assert three.choices == 3 and three.epsilon_lower_bound < one.epsilon_lower_bound
    with pytest.raises(ValueError, match="guesses"):
        one_run_audit(scores, inc, [(80, 80)], delta=0.0)
    with pytest.raises(ValueError, match="equal-length"):
        one_run_audit(scores, inc[:5], [(1, 1)], delta=0.0)
