"""Closed forms against mpmath (50 digits), brute force, and properties of the bound."""

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpaccount import InstaHide
from dpaccount.numerics import closed_form as cf
from ..conftest import CLOSED_FORM_METHODS, closed_rows

mp.mp.dps = 50


# ---- references computed with mpmath at 50 digits ------------------------------------------
# Generating code (run once, values pasted below; the same formulas are re-evaluated live in
# test_amplified_matches_mpmath_live):
#   import mpmath as mp; mp.mp.dps = 50
#   eps1 = lambda e0, q: mp.log(1 + q * (mp.exp(e0) - 1))
#   mp.nstr(eps1(mp.mpf(2), mp.mpf('0.5')), 20)            -> 1.433780830483027187
#   mp.nstr(eps1(mp.mpf(7680), mp.mpf('0.00008')), 20)      -> 7670.5665160767096075
#   mp.nstr(eps1(mp.mpf(1e5), mp.mpf('0.00008')), 20)       -> 99990.566516076709608
#   mp.nstr(eps1(mp.mpf('1e-8'), mp.mpf('0.001')), 20)      -> 1.0000000049950000166e-11
#   mp.nstr(eps1(mp.mpf(16), mp.mpf(4)/1797), 20)           -> 9.8924709169561491774
AMPLIFIED_REF = [
    (2.0, 0.5, 1.433780830483027187),
    (7680.0, 0.00008, 7670.5665160767096075),
    (1e5, 0.00008, 99990.566516076709608),
    (1e-8, 0.001, 1.0000000049950000166e-11),
    (16.0, 4 / 1797, 9.8924709169561491774),
]


@pytest.mark.parametrize("eps0,q,ref", AMPLIFIED_REF)
def test_amplified_matches_mpmath_reference(eps0, q, ref):
    # 1e-14 relative: a handful of double roundings in log1p/expm1/logaddexp
    assert cf.amplified_epsilon(eps0, q) == pytest.approx(ref, rel=1e-14)


@given(st.floats(1e-9, 1e5), st.floats(1e-6, 1.0))
def test_amplified_matches_mpmath_live(eps0, q):
    ref = mp.log(1 + mp.mpf(q) * mp.expm1(mp.mpf(eps0)))
    got = cf.amplified_epsilon(eps0, q)
    assert math.isfinite(got)
    # 1e-13 relative: double rounding of inputs to the log-space formula, far below any use
    assert got == pytest.approx(float(ref), rel=1e-13, abs=1e-300)


# KOV: smallest eps' with delta(eps') <= delta, where delta(eps') is the Murtagh-Vadhan sum,
# solved by 200 bisection steps at 50 digits:
#   kd = lambda e, T, x: mp.fsum(mp.binomial(T, i) * (mp.exp(e*(T-i)) - mp.exp(x)*mp.exp(e*i))
#                                for i in range(T+1) if e*(T-2*i) > x) / (1 + mp.exp(e))**T
#   bisect kd(e, T, x) = delta on [0, e*T]
KOV_REF = [
    (0.1, 100, 1e-5, 4.3067913725165070636),
    (1.0, 10, 1e-3, 9.9767990101988916199),
    (0.01, 1000, 1e-6, 1.3654467099937559913),
    (0.5, 1, 1e-5, 0.4999839345643544535),
]


@pytest.mark.parametrize("eps,T,delta,ref", KOV_REF)
def test_kov_matches_mpmath_reference_from_above(eps, T, delta, ref):
    got = cf.kov_epsilon(eps, T, delta)
    assert got >= ref  # an upper bound, never below the exact value
    # 1e-10 relative: the pessimistic rounding allowance in log space plus root tolerance
    assert got <= ref * (1 + 1e-10)


def _kov_delta_mp(e, T, x):
    e, x = mp.mpf(e), mp.mpf(x)
    s = mp.fsum(mp.binomial(T, i) * (mp.exp(e * (T - i)) - mp.exp(x) * mp.exp(e * i))
                for i in range(T + 1) if e * (T - 2 * i) > x)
    return s / (1 + mp.exp(e)) ** T


@given(st.floats(0.01, 3.0), st.integers(1, 60), st.floats(0.0, 5.0))
def test_kov_delta_is_an_upper_bound_close_to_mpmath(eps, T, x):
    exact = float(_kov_delta_mp(eps, T, x))
    got = cf.kov_delta(eps, T, x)
    assert got >= exact * (1 - 1e-15)
    # 1e-10 relative + 1e-14 absolute: the rounding allowance added to stay an upper bound
    assert got <= exact * (1 + 1e-10) + 1e-14


def test_kov_delta_matches_brute_force_enumeration():
    # independent of the formula: enumerate all 2^T outcomes of T-fold randomized response
    import itertools
    eps, T, x = 0.7, 8, 1.1
    p = np.array([math.exp(eps), 1.0]) / (1 + math.exp(eps))
    total = 0.0
    for o in itertools.product((0, 1), repeat=T):
        P = np.prod(p[list(o)])
        Q = np.prod(p[[1 - j for j in o]])
        total += max(0.0, P - math.exp(x) * Q)
    assert cf.kov_delta(eps, T, x) == pytest.approx(total, rel=1e-9)  # float sum of 256 terms


# ---- large parameters: no overflow, no silent inf or nan -----------------------------------

@pytest.mark.parametrize("eps0", [300.0, 7680.0, 1e5])
@pytest.mark.parametrize("T", [2_000_000, 10**9])
def test_no_overflow_for_huge_eps_and_T(eps0, T):
    q = 4 / 50000
    e1 = cf.amplified_epsilon(eps0, q)
    ref_e1 = float(mp.log(1 + mp.mpf(q) * mp.expm1(mp.mpf(eps0))))
    assert e1 == pytest.approx(ref_e1, rel=1e-14)
    kov = cf.kov_epsilon(e1, T, 1e-5)
    basic = cf.basic_composition(e1, T)
    assert math.isfinite(kov) and kov <= basic
    # with p = P[loss below max] ~ T e^-eps1 negligible, the exact answer is T eps1 + log(1-delta)
    assert kov == pytest.approx(T * e1 + math.log1p(-1e-5), rel=1e-12)
    adv = cf.advanced_composition(e1, T, 1e-5)
    if e1 > 710:  # T eps1 (e^eps1 - 1) exceeds the float range: reported as n/a, not inf
        assert adv is None
    else:
        assert math.isfinite(adv) and adv >= kov


def test_kov_at_T_2e6_with_moderate_eps1_matches_normal_approximation():
    # eps small, T large: the loss is ~ Normal(T eps tanh(eps/2), T eps^2 (1 - tanh^2)); the KOV
    # answer must be close to the Gaussian tail answer (within 2%: the CLT error at this size)
    from scipy.optimize import brentq
    from scipy.stats import norm
    eps, T, delta = 1e-3, 2_000_000, 1e-5
    mu = T * eps * math.tanh(eps / 2)
    sd = math.sqrt(T) * eps * math.sqrt(1 - math.tanh(eps / 2) ** 2)

    def gauss_delta(x):  # delta of a Gaussian loss N(mu, sd^2): Phi(-x/s + s/2) - e^x Phi(...)
        s = math.sqrt(2 * mu)
        return norm.cdf(-x / s + s / 2) - math.exp(x) * norm.cdf(-x / s - s / 2)
    approx = brentq(lambda x: gauss_delta(x) - delta, 0, 100)
    got = cf.kov_epsilon(eps, T, delta)
    assert got == pytest.approx(approx, rel=0.02)
    assert sd > 0


def test_kov_at_a_billion_releases_is_finite_and_below_advanced():
    # the stated limit of the closed forms: a finite value below the generic theorem
    got = cf.kov_epsilon(1e-4, 10**9, 1e-5)
    assert 0 < got < cf.advanced_composition(1e-4, 10**9, 1e-5)


# ---- the paper's claims and properties of the bound ----------------------------------------

sizes = st.integers(1, 10**6)
noises = st.floats(1e-3, 1e3)
diams = st.floats(1e-3, 1e4)


@given(diams, noises, st.integers(1, 1000))
def test_k_times_stronger(diam, b, k):
    # Borgnia et al.: k-way mixup gives k times stronger per-release DP than the naive mechanism
    assert cf.per_release_epsilon(diam, b, k) == pytest.approx(cf.naive_epsilon(diam, b) / k,
                                                               rel=1e-15)


@given(diams, noises, st.integers(1, 1000))
def test_k_equals_n_means_no_amplification(diam, b, k):
    e0 = cf.per_release_epsilon(diam, b, k)
    assert cf.amplified_epsilon(e0, 1.0) == pytest.approx(e0, rel=1e-15)


@given(diams, noises, st.integers(1, 10**6))
def test_k_equals_one_is_the_amplified_naive_mechanism(diam, b, n):
    e0 = cf.per_release_epsilon(diam, b, 1)
    assert e0 == cf.naive_epsilon(diam, b)
    ref = mp.log(1 + mp.expm1(mp.mpf(diam) / mp.mpf(b)) / n)
    assert cf.amplified_epsilon(e0, 1 / n) == pytest.approx(float(ref), rel=1e-13)


@given(st.floats(0, 1e5), st.floats(1e-9, 1.0))
def test_eps1_at_most_eps0(eps0, q):
    assert cf.amplified_epsilon(eps0, q) <= eps0 * (1 + 1e-15)


def mech(k=4, b=1.0, n=1000, diam=1.0, T=100):
    return InstaHide(labels="none", k=k, noise=b, n=n, diameter=diam, releases=T)


def table(m, delta=1e-5):
    return {r.method: r.epsilon for r in closed_rows(m, delta)}


# root finding is to 1e-14 relative and the rounding allowance ~1e-12: comparisons between two
# runs allow 1e-9 relative so that equal-in-exact-arithmetic cases do not flip order
REL = 1e-9


def _le(a, b):
    if a is None or b is None:
        return True  # n/a (beyond float range) carries no order
    return a <= b * (1 + REL) + 1e-300


@given(st.integers(1, 8), st.floats(0.05, 20), st.floats(0.05, 20), st.integers(8, 10**5),
       st.floats(0.1, 10), st.integers(1, 10**4))
def test_eps_decreases_with_noise(k, b1, b2, n, diam, T):
    lo, hi = sorted((b1, b2))
    a, b = table(mech(k, lo, n, diam, T)), table(mech(k, hi, n, diam, T))
    for method in CLOSED_FORM_METHODS:
        assert _le(b[method], a[method]), method


@given(st.integers(1, 8), st.floats(0.05, 20), st.integers(8, 10**5), st.integers(8, 10**5),
       st.floats(0.1, 10), st.integers(1, 10**4))
def test_eps_decreases_with_n(k, b, n1, n2, diam, T):
    lo, hi = sorted((n1, n2))
    a, c = table(mech(k, b, lo, diam, T)), table(mech(k, b, hi, diam, T))
    for method in ("amplified", "basic", "advanced", "kov"):
        assert _le(c[method], a[method]), method


@given(st.integers(1, 8), st.floats(0.05, 20), st.integers(8, 10**5), st.floats(0.1, 10),
       st.integers(1, 10**4), st.integers(1, 10**4))
def test_eps_increases_with_releases(k, b, n, diam, t1, t2):
    lo, hi = sorted((t1, t2))
    a, c = table(mech(k, b, n, diam, lo)), table(mech(k, b, n, diam, hi))
    for method in ("basic", "advanced", "kov"):
        assert _le(a[method], c[method]), method


@given(st.integers(1, 8), st.floats(0.05, 20), st.integers(8, 10**5), st.floats(0.1, 10),
       st.floats(0.1, 10), st.integers(1, 10**4))
def test_eps_increases_with_diameter(k, b, n, d1, d2, T):
    lo, hi = sorted((d1, d2))
    a, c = table(mech(k, b, n, lo, T)), table(mech(k, b, n, hi, T))
    for method in CLOSED_FORM_METHODS:
        assert _le(a[method], c[method]), method


@given(st.floats(1e-4, 50), st.integers(1, 10**5), st.floats(1e-12, 0.5))
def test_kov_is_never_worse_than_basic_or_advanced(eps, T, delta):
    # KOV is the optimal composition: below both generic theorems (it equals basic at best)
    kov = cf.kov_epsilon(eps, T, delta)
    assert kov <= cf.basic_composition(eps, T)
    adv = cf.advanced_composition(eps, T, delta)
    if adv is not None:
        assert kov <= adv * (1 + REL)


@given(st.floats(1e-3, 5), st.integers(1, 200), st.floats(1e-10, 0.5))
def test_kov_epsilon_meets_its_delta(eps, T, delta):
    # the returned eps' must satisfy the exact (mpmath) delta(eps') <= delta: soundness
    e = cf.kov_epsilon(eps, T, delta)
    assert float(_kov_delta_mp(eps, T, e)) <= delta * (1 + 1e-12)


@pytest.mark.parametrize("call", [
    lambda: cf.kov_epsilon(1.0, 10, 0.0),
    lambda: cf.kov_epsilon(1.0, 10, 1.0),
    lambda: cf.kov_epsilon(1.0, 10, math.nan),
    lambda: cf.kov_epsilon(-1.0, 10, 1e-5),
    lambda: cf.kov_epsilon(1.0, 0, 1e-5),
    lambda: cf.advanced_composition(1.0, 10, 2.0),
    lambda: cf.amplified_epsilon(1.0, 0.0),
    lambda: cf.amplified_epsilon(1.0, 1.5),
    lambda: cf.amplified_epsilon(math.nan, 0.5),
    lambda: cf.naive_epsilon(1.0, -2.0),
    lambda: cf.per_release_epsilon(1.0, 1.0, 0),
    lambda: closed_rows(mech(), 0.0),
])
def test_bad_arguments_are_refused(call):
    with pytest.raises(ValueError):
        call()


def test_permutation_sampler_has_no_amplification():
    m = InstaHide(labels="none", k=4, noise=1.0, n=100, diameter=2.0, releases=250, sampler="permutation")
    rows = {r.method: r for r in closed_rows(m, 1e-5)}
    assert rows["amplified"].epsilon is None and "not applicable" in rows["amplified"].note
    # ceil(250/100) = 3 epochs, each a Laplace mechanism of sensitivity Delta: 3 * Delta/b
    assert rows["basic"].epsilon == 3 * 2.0
    assert all(r.sampler == "permutation" for r in rows.values())


def test_add_remove_subsets_uses_q_at_n():
    a = InstaHide(labels="none", k=4, noise=1.0, n=100, diameter=2.0, releases=10, relation="add_remove")
    s = InstaHide(labels="none", k=4, noise=1.0, n=100, diameter=2.0, releases=10)
    ta, ts = closed_rows(a, 1e-5), closed_rows(s, 1e-5)
    assert [r.epsilon for r in ta] == [r.epsilon for r in ts]
    assert all(r.relation == "add_remove" for r in ta)


@pytest.mark.parametrize("eps,T", [(0.01, 10**6), (0.5, 10**6), (1e-3, 10**7)])
def test_kov_in_blocks_is_an_upper_bound_within_one_percent(monkeypatch, eps, T):
    # windows beyond _KOV_EXACT_POINTS (T ~ 1e10 and more) are summed in blocks; forced here at
    # a size where the exact sum is cheap, against which the blocked sum must be above, and close
    exact = [cf.kov_delta(eps, T, e) for e in (0.0, 0.5, 1.0)]
    e_exact = cf.kov_epsilon(eps, T, 1e-5)
    monkeypatch.setattr(cf, "_KOV_EXACT_POINTS", 4096)
    blocked = [cf.kov_delta(eps, T, e) for e in (0.0, 0.5, 1.0)]
    for a, b in zip(exact, blocked):
        assert a <= b <= a * 1.01 + 1e-300
    e_blocked = cf.kov_epsilon(eps, T, 1e-5)
    assert e_exact <= e_blocked <= e_exact * 1.01
