"""The accountant against the truth: exact privacy profiles of concrete small dataset pairs.

Quadrature accuracy of dpaccount.exact at its default resolution: up to ~1e-6 relative against
the closed form of a Laplace pair (worst near the kink of the integrand, test below), so
soundness checks allow 1e-5 relative + 1e-9 absolute.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from dpaccount.exact import exact_delta, subset_means
from dpaccount import InstaHide
from dpaccount.accountants.pld import dominating_compositions
from dpaccount.numerics.laplace_pair import LaplaceMixturePair
from dpaccount.numerics.lattice import LossComposition

TOL_REL, TOL_ABS = 1e-5, 1e-9


@pytest.mark.parametrize("eps", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("b", [0.5, 1.0])
def test_exact_matches_laplace_closed_form(eps, b):
    # one record, k = 1: Lap(0,b) vs Lap(1,b); delta(eps) = 1 - e^{(eps - 1/b)/2} for eps < 1/b
    closed = max(0.0, 1 - math.exp((eps - 1 / b) / 2))
    assert exact_delta([0.0], [1.0], 1, b, eps) == pytest.approx(closed, rel=TOL_REL, abs=1e-12)


def test_subset_means_enumerates_all_subsets():
    means = subset_means(np.array([0.0, 1.0, 2.0, 3.0]), 2)
    assert sorted(means.ravel().tolist()) == [0.5, 1.0, 1.5, 1.5, 2.0, 2.5]


def _bound(n, k, b, T, eps):
    # the accountant's dominating laws for the domain [0, 1] (diameter 1), substitution: the
    # symmetrised pair with s = 1/k, q = k/N
    mech = InstaHide(k=k, noise=b, n=n, diameter=1.0, releases=T, labels="none")
    return max(acc.delta(eps)[1] for _, acc in dominating_compositions(mech))


datasets = st.integers(2, 8).flatmap(lambda n: st.tuples(
    st.lists(st.floats(0, 1), min_size=n, max_size=n), st.integers(0, n - 1), st.floats(0, 1),
    st.integers(1, min(n, 4))))


@settings(max_examples=60)
@given(datasets, st.floats(0.2, 2.0), st.sampled_from([1, 2]), st.floats(0.0, 2.0))
def test_accountant_never_below_concrete_profile(ds, b, T, eps):
    values, idx, new, k = ds
    d = np.array(values)
    dp = d.copy()
    dp[idx] = new
    n = len(d)
    concrete = exact_delta(d, dp, k, b, eps, T)
    assert _bound(n, k, b, T, eps) >= concrete * (1 - TOL_REL) - TOL_ABS


@settings(max_examples=12)
@given(st.integers(3, 6), st.floats(0.3, 1.0), st.floats(0.0, 1.5), st.data())
def test_accountant_never_below_concrete_profile_three_releases(n, b, eps, data):
    k = data.draw(st.integers(1, min(n, 3)))
    d = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    dp = d.copy()
    dp[0] = data.draw(st.floats(0, 1))
    assert _bound(n, k, b, 3, eps) >= exact_delta(d, dp, k, b, eps, 3) * (1 - TOL_REL) - TOL_ABS


@pytest.mark.parametrize("n,k,b", [(6, 2, 0.3), (8, 4, 0.5), (4, 1, 1.0)])
def test_extreme_configuration_attains_the_bound(n, k, b):
    # all other records equal x', |x - x'| = Delta: the concrete pair IS the pair (P*, Q*) whose
    # lower end the pld row reports as attained (both directions)
    d = np.ones(n)
    d[0] = 0.0
    dp = np.ones(n)
    for T in (1, 2, 3):
        for eps in (0.1, 0.5):
            concrete = exact_delta(d, dp, k, b, eps, T)
            lo, up = LossComposition(LaplaceMixturePair(k / n, 1.0 / k, b), T).delta(eps)
            assert up >= concrete * (1 - TOL_REL) - TOL_ABS
            assert up <= concrete * 1.01 + TOL_ABS  # attained within 1%
    # and in epsilon at delta = 1e-3, T = 2
    target = 1e-3
    f = lambda e: exact_delta(d, dp, k, b, e, 2) - target  # noqa: E731
    if f(0.0) > 0:
        e_conc = brentq(f, 0.0, 2 * (1.0 / b), xtol=1e-10)
        lo, up = LossComposition(LaplaceMixturePair(k / n, 1.0 / k, b), 2).epsilon(target)
        assert up >= e_conc * (1 - TOL_REL)
        assert up <= e_conc * 1.01


@settings(max_examples=30)
@given(st.integers(2, 5), st.floats(0.3, 1.5), st.floats(0.0, 1.5), st.data())
def test_splitting_the_shift_over_two_coordinates_is_never_worse(n, b, eps, data):
    # records in [0,1]^2, L1 diameter 2: the accountant puts all of Delta/k in one coordinate
    k = data.draw(st.integers(1, min(n, 2)))
    pts = data.draw(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=n,
                             max_size=n))
    d = np.array(pts)
    dp = d.copy()
    dp[0] = data.draw(st.tuples(st.floats(0, 1), st.floats(0, 1)))
    concrete = exact_delta(d, dp, k, b, eps)
    one_coordinate = LossComposition(LaplaceMixturePair(k / n, 2.0 / k, b), 1).delta(eps)[1]
    assert one_coordinate >= concrete * (1 - TOL_REL) - TOL_ABS


def test_split_corner_pair_against_one_coordinate_pair():
    # the 2-D corner pair (0,0) vs (1,1) against the same L1 shift in one coordinate
    split = exact_delta(np.array([[0, 0], [1, 1], [1, 1], [1, 1]], float),
                        np.ones((4, 2)), 2, 0.5, 0.5)
    single = exact_delta(np.array([[0, 0], [2, 0], [2, 0], [2, 0]], float),
                         np.array([[2, 0]] * 4, float), 2, 0.5, 0.5)
    assert split < single


@pytest.mark.parametrize("call", [
    lambda: exact_delta([0.0, 1.0], [0.0], 1, 1.0, 0.1),
    lambda: exact_delta([0.0], [1.0], 2, 1.0, 0.1),
    lambda: exact_delta([0.0], [1.0], 1, -1.0, 0.1),
    lambda: exact_delta([0.0], [1.0], 1, 1.0, 0.1, releases=4),
    lambda: exact_delta(np.zeros((2, 2)), np.ones((2, 2)), 1, 1.0, 0.1, releases=2),
])
def test_exact_refuses_bad_input(call):
    with pytest.raises(ValueError):
        call()
