"""The f-DP one-run audit (Mahloujifar, Melis, Chaudhuri 2024) and the Gaussian-DP conversions,
against computations that do not share its code: a linear program over the theorem's
inequalities, exact enumeration of a randomised-response game, a Monte-Carlo Gaussian game,
Steinke et al.'s exact binomial where it is the optimum, numerical integration and 50-digit
arithmetic. Pure numpy/scipy: runs without torch."""

import itertools
import math

import mpmath
import numpy as np
import pytest
from scipy import integrate, stats
from scipy.optimize import linprog

from dpaccount.audit.fdp_one_run import (blow_up_inverse_eps_delta, blow_up_inverse_gdp,
                                         fdp_epsilon, fdp_mu, fdp_one_run_audit, gdp_delta,
                                         gdp_epsilon, gdp_mu_from_rates, rejects, tail_bound)
from dpaccount.audit.one_run import one_run_epsilon

from .test_one_run import overshoots_on_randomised_response


def _lp_max_tail(m, r, v, eps, delta):
    """max P[C >= v] over all laws p_0..p_r of the number of correct guesses that satisfy the
    theorem's inequalities R_i <= fbar(H_{i-1}), i = 1..r, with fbar of (eps, delta)-DP written
    as its two linear pieces; solved by HiGHS."""
    lvl = np.arange(r + 1)
    rows, rhs = [], []
    for i in range(1, r + 1):
        big_r = np.where(lvl >= i, lvl, 0) / m
        big_h = np.where(lvl >= i - 1, r - lvl, 0) / m
        rows.append(big_r - math.exp(eps) * big_h)  # R <= delta + e^eps H
        rhs.append(delta)
        rows.append(big_r - math.exp(-eps) * big_h)  # R <= 1 - e^-eps (1 - delta - H)
        rhs.append(1 - math.exp(-eps) * (1 - delta))
    res = linprog(-(lvl >= v).astype(float), A_ub=np.array(rows), b_ub=rhs,
                  A_eq=np.ones((1, r + 1)), b_eq=[1.0], bounds=[(0, None)] * (r + 1),
                  method="highs")
    assert res.success
    return -res.fun


@pytest.mark.parametrize("m,r,v,eps,delta", [(10, 10, 8, 0.5, 0.0), (10, 6, 5, 0.5, 0.0),
                                             (30, 20, 15, 1.0, 1e-3), (40, 12, 12, 2.0, 1e-2),
                                             (50, 30, 25, 0.3, 1e-3)])
def test_recursion_is_the_optimum_of_the_theorem_inequalities(m, r, v, eps, delta):
    # the recursion (Algorithm 3) claims to find the largest P[C >= v] that the inequalities
    # allow; the LP finds it by brute force. rel 1e-6: the bisection on tau stops at 1e-9
    # relative and HiGHS at its default feasibility tolerance ~1e-7 absolute on the constraints
    want = _lp_max_tail(m, r, v, eps, delta)
    got = tail_bound(m, r, v, blow_up_inverse_eps_delta(eps, delta))
    assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


def _rr_correct_law(m, kp, kn, eps):
    """Exact law of the number of correct guesses: m canaries in w.p. 1/2, each released through
    eps-randomised response (an f_{eps,0}-DP mechanism for the add/remove of any one canary),
    the auditor guesses "in" for the kp highest outputs and "out" for the kn lowest (ties broken
    by index: deterministic post-processing). Enumerates all 4^m (inclusion, flip) outcomes."""
    q = 1 / (1 + math.exp(-eps))
    law = np.zeros(kp + kn + 1)
    for inc in itertools.product((0, 1), repeat=m):
        for flip in itertools.product((0, 1), repeat=m):
            out = [i ^ f for i, f in zip(inc, flip)]
            w = 0.5 ** m * q ** (m - sum(flip)) * (1 - q) ** sum(flip)
            order = sorted(range(m), key=lambda j: (out[j], j))  # ascending
            top, bottom = order[m - kp:], order[:kn]
            c = sum(inc[j] for j in top) + sum(1 - inc[j] for j in bottom)
            law[c] += w
    return law


@pytest.mark.parametrize("kp,kn", [(3, 3), (4, 1), (2, 0)])
def test_bound_holds_on_exactly_enumerated_randomised_response(kp, kn):
    m, eps = 6, 0.8
    law = _rr_correct_law(m, kp, kn, eps)
    assert law.sum() == pytest.approx(1.0, abs=1e-12)
    inverse = blow_up_inverse_eps_delta(eps, 0.0)
    for v in range(1, kp + kn + 1):
        exact = law[v:].sum()
        # sound: no eps-DP game can beat the bound; 1e-9 is the bisection's tolerance
        assert exact <= tail_bound(m, kp + kn, v, inverse) + 1e-9
        # and the exact tail itself is never rejected at its own level
        assert not rejects(m, kp + kn, v, inverse, exact * (1 - 1e-9))


def test_bound_holds_on_a_monte_carlo_gaussian_game():
    """Scores y_j = mu S_j + N(0, 1): the add/remove of canary j is exactly mu-GDP. The observed
    frequency of >= v correct stays below the G_mu bound (4 standard errors of slack: with 8
    values of v the chance of a false alarm is below 1e-3)."""
    rng = np.random.default_rng(1)
    m, mu, kp, kn, reps = 20, 1.0, 4, 4, 20000
    inc = rng.random((reps, m)) < 0.5
    y = mu * inc + rng.standard_normal((reps, m))
    order = np.argsort(y, axis=1)
    top, bottom = order[:, m - kp:], order[:, :kn]
    correct = (np.take_along_axis(inc, top, 1).sum(1)
               + (~np.take_along_axis(inc, bottom, 1)).sum(1))
    inverse = blow_up_inverse_gdp(mu)
    for v in range(1, kp + kn + 1):
        freq = float(np.mean(correct >= v))
        se = math.sqrt(max(freq * (1 - freq), 1e-4) / reps)
        assert freq <= tail_bound(m, kp + kn, v, inverse) + 4 * se


def test_pure_dp_perfect_guesses_match_the_closed_form_and_steinke():
    # v = r = all correct, delta = 0: randomised response on the r guessed canaries has
    # P[C = r] = q^r, so the exact answer is q^r = level, eps = log(q / (1 - q)) (Steinke et
    # al. reach it too). 2e-6: both bisections stop at 1e-6
    for m, r in [(20, 20), (1000, 30)]:
        q = 0.05 ** (1 / r)
        want = math.log(q / (1 - q))
        assert fdp_epsilon(m, r, r, 0.0, 0.95) == pytest.approx(want, abs=2e-6)
        assert one_run_epsilon(m, r, r, 0.0, 0.95) == pytest.approx(want, abs=2e-6)


@pytest.mark.parametrize("m,r,v", [(100, 20, 18), (1000, 100, 83), (1000, 400, 330)])
def test_pure_dp_never_beats_steinke_and_delta_to_zero_is_continuous(m, r, v):
    # with delta = 0 Steinke's binomial tail is attained by randomised response, so it is the
    # largest P[C >= v] of any eps-DP mechanism: a sound bound can only be looser (smaller eps)
    e0 = fdp_epsilon(m, r, v, 0.0, 0.95)
    assert e0 <= one_run_epsilon(m, r, v, 0.0, 0.95) + 2e-6
    assert e0 > 0
    # f_{eps,delta} -> f_{eps,0} as delta -> 0: the bound moves by O(m delta e^eps)
    assert fdp_epsilon(m, r, v, 1e-12, 0.95) == pytest.approx(e0, abs=1e-4)


def test_fdp_is_far_stronger_than_steinke_when_m_delta_is_large():
    # Steinke's delta term costs 2 m delta (0.2 here: 4x the 5% level on its own), the f-DP
    # bound pays delta inside the tradeoff function. Measured: 1.04 against 0.11.
    m, r, v = 1000, 100, 83
    assert fdp_epsilon(m, r, v, 1e-3, 0.95) > 5 * one_run_epsilon(m, r, v, 1e-3, 0.95)


def test_monotone_in_correct_guesses_and_in_confidence():
    m, r = 1000, 100
    es = [fdp_epsilon(m, r, v, 1e-5, 0.95) for v in range(50, r + 1, 5)]
    mus = [fdp_mu(m, r, v, 0.95) for v in range(50, r + 1, 5)]
    assert es[0] == 0.0 and mus[0] == 0.0  # half right shows nothing
    # non-decreasing, and strictly increasing once anything is shown
    for xs in (es, mus):
        pos = np.array([x for x in xs if x > 0])
        assert all(np.diff(xs) >= 0) and pos.size >= 8 and all(np.diff(pos) > 0)
    assert fdp_mu(m, r, 80, 0.99) < fdp_mu(m, r, 80, 0.95) < fdp_mu(m, r, 80, 0.5)


def test_fdp_mu_inverts_the_rejection():
    m, r, v = 1000, 100, 83
    mu = fdp_mu(m, r, v, 0.95)
    assert rejects(m, r, v, blow_up_inverse_gdp(mu), 0.05)
    assert not rejects(m, r, v, blow_up_inverse_gdp(mu + 1e-4), 0.05)


# ------------------------------------------------------------------ Gaussian DP conversions


def _delta_by_quadrature(mu, eps):
    """delta(eps) of the pair N(mu, 1) vs N(0, 1) from its definition: E_P[(1 - e^{eps - L})^+]
    with the privacy loss L ~ N(mu^2/2, mu^2) under P, integrated by quad."""
    def f(l):
        return (-math.expm1(eps - l)) * stats.norm.pdf(l, mu * mu / 2, mu)
    return integrate.quad(f, eps, mu * mu / 2 + 40 * mu, epsabs=0, epsrel=1e-11, limit=200)[0]


@pytest.mark.parametrize("mu,eps", [(0.5, 0.1), (1.0, 1.0), (2.0, 3.0), (3.0, 8.0)])
def test_gdp_delta_against_quadrature(mu, eps):
    # rel 1e-7: quad's requested 1e-11, with room for its error estimate being optimistic
    assert gdp_delta(mu, eps) == pytest.approx(_delta_by_quadrature(mu, eps), rel=1e-7)


@pytest.mark.parametrize("mu,eps", [(10.0, 60.0), (4.0, 30.0), (0.2, 0.01)])
def test_gdp_delta_in_the_tails_against_50_digit_arithmetic(mu, eps):
    # where Phi(a) - e^eps Phi(b) cancels in float64; mpmath at 50 digits does not cancel.
    # rel 1e-9: log_ndtr is accurate to ~1e-14 relative, the cancellation costs a few digits
    mpmath.mp.dps = 50
    m, e = mpmath.mpf(mu), mpmath.mpf(eps)
    want = mpmath.ncdf(-e / m + m / 2) - mpmath.exp(e) * mpmath.ncdf(-e / m - m / 2)
    assert gdp_delta(mu, eps) == pytest.approx(float(want), rel=1e-9)


def test_gdp_epsilon_inverts_gdp_delta():
    for mu, d in [(0.5, 1e-5), (1.0, 1e-5), (4.15, 1e-5), (1.0, 0.3)]:
        e = gdp_epsilon(mu, d)
        assert gdp_delta(mu, e) == pytest.approx(d, rel=1e-6)
    assert gdp_epsilon(0.1, 0.5) == 0.0  # delta(0) = 2 Phi(mu/2) - 1 < 0.5 already


def test_gdp_mu_from_rates_is_on_the_tradeoff_curve():
    # G_mu(a) = Phi(Phi^-1(1 - a) - mu), written here with scipy.stats, not special functions
    mu = 1.3
    for a in (1e-4, 0.01, 0.3):
        b = stats.norm.cdf(stats.norm.ppf(1 - a) - mu)
        assert gdp_mu_from_rates(a, b) == pytest.approx(mu, rel=1e-9)
        assert gdp_mu_from_rates(b, a) == pytest.approx(mu, rel=1e-9)  # G_mu is symmetric
    assert gdp_mu_from_rates(0.6, 0.5) == 0.0  # above the diagonal: nothing shown


# ------------------------------------------------------------------ the audit from scores


def test_audit_is_sound_on_randomised_response():
    """Guesses right with probability e^eps/(1+e^eps) (eps-randomised response): the 95%
    lower bound exceeds eps in at most ~5% of repetitions (3 standard deviations of slack)."""
    reps = 200
    over = overshoots_on_randomised_response(fdp_one_run_audit, 1.0, 300, reps, [(30, 30)])
    assert over <= 0.05 * reps + 3 * math.sqrt(0.05 * 0.95 * reps)


def test_audit_counts_guesses_and_applies_bonferroni():
    scores = np.arange(100.0)
    inc = scores >= 50  # perfect
    one = fdp_one_run_audit(scores, inc, [(10, 10)], delta=1e-5)
    three = fdp_one_run_audit(scores, inc, [(10, 10), (5, 5), (2, 2)], delta=1e-5)
    assert one.correct == 20 and one.guesses_in == 10 and one.guesses_out == 10
    assert three.choices == 3 and three.epsilon_lower_bound < one.epsilon_lower_bound
    assert one.epsilon_lower_bound == pytest.approx(fdp_epsilon(100, 20, 20, 1e-5, 0.95))
    assert one.mu_lower_bound == pytest.approx(fdp_mu(100, 20, 20, 0.95))
    assert one.epsilon_from_mu == pytest.approx(gdp_epsilon(one.mu_lower_bound, 1e-5))


@pytest.mark.parametrize("call,match", [
    (lambda: fdp_epsilon(10, 5, 6, 1e-5, 0.95), "v <= r <= m"),
    (lambda: fdp_epsilon(10, 5, 3, 1.5, 0.95), "delta"),
    (lambda: fdp_mu(10, 5, 3, 1.0), "confidence"),
    (lambda: gdp_delta(-1.0, 1.0), "mu"),
    (lambda: gdp_epsilon(1.0, 0.0), "delta"),
    (lambda: fdp_one_run_audit([1.0, 2.0], [True], [(1, 0)], delta=0.0), "equal-length"),
    (lambda: fdp_one_run_audit([1.0, 2.0], [True, False], [(2, 1)], delta=0.0), "guesses"),
])
def test_bad_input_is_one_line(call, match):
    with pytest.raises(ValueError, match=match) as exc:
        call()
    assert "\n" not in str(exc.value)
