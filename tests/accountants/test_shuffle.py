"""Permutation mixing amplified by the hidden position of one slot per epoch
(dpaccount.numerics.shuffle, docs/pld_hits.md "Permutation mixing: amplification by the hidden
position", proofs/shuffle_clones.py).

Independent references: the clone pair enumerated in mpmath (40 digits); the Laplace pair's
closed form; the numerical analysis of Feldman, McMillan and Talwar's own code (shipped in the
`random-allocation` package, `external_sources/shuffle_external.py`) for the same pair; the
closed forms (KOV) that the row must beat."""

import importlib.util
import math
import os

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpaccount import InstaHide
from dpaccount.accountants import HitsAccountant, KOVAccountant
from dpaccount.errors import InputError
from dpaccount.numerics.shuffle import ShuffledEpoch, clone_delta, clone_points

ACC = HitsAccountant()


def _perm(**kw):
    kw.setdefault("labels", "none")
    return InstaHide(sampler="permutation", **kw)


def _clone_masses(n, eps0, dps=40):
    """The clone pair enumerated in mpmath: ``(P, Q)`` masses of every atom ``(C, S)``, C ~
    Bin(n-1, e^-eps0), S = A + D with A ~ Bin(C, 1/2), D ~ Bern(a) under P and Bern(1 - a)
    under Q, a = e^eps0 / (1 + e^eps0)."""
    with mp.workdps(dps):
        e0 = mp.mpf(eps0)
        p = mp.e ** (-e0)
        a = mp.e ** e0 / (1 + mp.e ** e0)
        out = []
        for c in range(n):
            wc = mp.binomial(n - 1, c) * p ** c * (1 - p) ** (n - 1 - c)
            for s in range(c + 2):
                ba = mp.binomial(c, s - 1) / mp.mpf(2) ** c if s >= 1 else 0
                bb = mp.binomial(c, s) / mp.mpf(2) ** c if s <= c else 0
                out.append((wc * (a * ba + (1 - a) * bb), wc * ((1 - a) * ba + a * bb)))
        return out


def _clone_exact(n, eps0, eps, dps=40):
    """delta(eps) of the clone pair, summed over its atoms in mpmath."""
    with mp.workdps(dps):
        return float(sum(max(pp - mp.e ** mp.mpf(eps) * qq, 0)
                         for pp, qq in _clone_masses(n, eps0, dps)))


@pytest.mark.parametrize("n,eps0", [(1, 1.0), (2, 0.3), (5, 1.0), (8, 2.5), (12, 0.05)])
def test_clone_pair_against_mpmath(n, eps0):
    """No tail is cut at these sizes: the atoms are the pair itself. Tolerance 1e-12 absolute
    (the losses are raised by a few ulps, the masses are scipy's binomial pmf)."""
    for eps in (0.0, 0.1 * eps0, 0.5 * eps0, 0.99 * eps0):
        assert clone_delta(n, eps0, eps) == pytest.approx(_clone_exact(n, eps0, eps), abs=1e-12)
        assert clone_delta(n, eps0, eps) >= _clone_exact(n, eps0, eps) - 1e-15


def test_binomial_pmf_relative_error_against_mpmath():
    """The masses' relative error allowance (1e-12, shuffle._REL_PMF) holds where C is large:
    scipy's pmf against mpmath's exact binomial at 40 digits."""
    from scipy.stats import binom

    for n, p in ((10 ** 5, math.exp(-1.0)), (4 * 10 ** 5, math.exp(-0.1)), (1438, math.exp(-4))):
        mu = n * p
        sd = math.sqrt(n * p * (1 - p))
        for c in (int(mu - 5 * sd), int(mu), int(mu + 3 * sd)):
            with mp.workdps(40):
                exact = mp.binomial(n, c) * mp.mpf(p) ** c * (1 - mp.mpf(p)) ** (n - c)
            got = binom.pmf(c, n, p)
            assert abs(got / float(exact) - 1) < 1e-12, (n, p, c)


def test_tails_moved_only_raise_the_loss():
    """A large pool (C capped, tails of S moved): mass still sums to 1 within 1e-12, every loss
    within [-eps0, eps0], and delta at or above the pair's own value at a smaller pool
    (fewer clones dominate more; the cap only makes it worse)."""
    mass, loss = clone_points(10 ** 6, 0.1)
    assert abs(mass.sum() - 1) < 1e-12
    assert loss.min() >= -0.1 - 1e-15 and loss.max() <= 0.1
    for eps in (0.0, 0.002, 0.01):
        assert clone_delta(10 ** 6, 0.1, eps) <= clone_delta(10 ** 4, 0.1, eps) + 1e-15


def _laplace_delta(x, s):
    """E_P[(1 - e^{x - L})_+] for the plain Laplace pair of shift s (units of b), any real x:
    1 - e^{(x - s)/2} on [-s, s], 1 - e^x below, 0 above (the pair is symmetric, so
    delta(-x) = 1 - e^{-x} + e^{-x} delta(x); proofs/laplace_log_ratio.py)."""
    if x >= s:
        return 0.0
    if x <= -s:
        return -math.expm1(x)
    return -math.expm1((x - s) / 2)


@pytest.mark.parametrize("n,k,eps0", [(12, 2, 0.4), (9, 3, 0.25), (30, 4, 1.0)])
def test_one_epoch_against_an_independent_sum(n, k, eps0):
    """One whole epoch with one slot hidden: rho (the hidden slot falls into a shown one) times
    the Laplace pair at k eps0, plus (1 - rho) times the product of the Laplace pair at
    (k - 1) eps0 and the clone pair of n - k + 1 reports, summed atom by atom of the mpmath
    clone pair against the Laplace closed form. The lattice's value is above it and close: 10%
    + 1e-4 (a delta query pays the rounding allowance, docs/pld_hits.md)."""
    m = _perm(k=k, noise=64.0 / (k * eps0), n=n, diameter=64.0, releases=n)
    laws, words = ACC.shuffled(m)
    assert len(laws) == 1 and f"among {n - k + 1} reports" in words  # whole epochs: one law
    law = laws[0]
    rho = 1 - (1 - 1 / n) ** (k - 1)
    pool = n - k + 1
    with mp.workdps(30):
        atoms = [(float(pp), float(mp.log(pp / qq)))
                 for pp, qq in _clone_masses(pool, eps0, 30) if pp > 0]
    for eps in (0.0, 0.3 * eps0, k * eps0 * 0.5, k * eps0 * 0.9):
        exact = rho * _laplace_delta(eps, k * eps0) + (1 - rho) * sum(
            w * _laplace_delta(eps - ell, (k - 1) * eps0) for w, ell in atoms)
        got = law.delta(eps)[1]
        assert exact <= got <= exact * 1.1 + 1e-4, (eps, exact, got)


def _fmt_module():
    """Feldman, McMillan and Talwar's numerical analysis, as shipped (copied from
    apple/ml-shuffling-amplification) in random-allocation. It needs numpy and scipy only; the
    package's own numpy < 2.2 pin is why CI installs it without dependencies (.ci/run)."""
    spec = importlib.util.find_spec("random_allocation")
    if spec is None:
        pytest.skip("random-allocation is not installed (.ci/run installs it, --no-deps)")
    path = os.path.join(os.path.dirname(spec.origin), "external_sources", "shuffle_external.py")
    loader = importlib.util.spec_from_file_location("fmt_shuffle_external", path)
    mod = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("n,eps0,delta", [(1000, 1.0, 1e-5), (200, 0.5, 1e-5), (5000, 4.0, 1e-6),
                                          (100, 1.0, 1e-3)])
def test_one_shuffle_against_the_authors_numerical_analysis(n, eps0, delta):
    """k = 1, one epoch: n eps0-DP reports shuffled, nothing shown (rho = 0). Their code
    brackets the same pair's epsilon from both sides (step 10 over C, 30 bisections); ours, an
    upper bound of the pair, must lie inside the bracket. No tolerance: both ends of theirs are
    bounds of the same number."""
    fmt = _fmt_module()
    lo = fmt.numericalanalysis(n, eps0, delta, 30, 10, False)
    up = fmt.numericalanalysis(n, eps0, delta, 30, 10, True)
    m = _perm(k=1, noise=1.0, n=n, diameter=eps0, releases=n)
    ours = ACC.epsilon(m, delta)
    assert "amplified by the hidden position" in ours.note
    assert lo <= ours.epsilon <= up, (lo, ours.epsilon, up)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(100, 20000), epochs=st.integers(1, 200), k=st.integers(1, 8),
       eps0=st.floats(0.05, 6.0))
def test_strictly_below_the_closed_form(n, epochs, k, eps0):
    """Issue 13's criterion: for N >= 100 and T >= N the row is strictly below the closed form
    (KOV over epochs of Delta/b); where a clone is expected it is also strictly below the
    revealed law alone."""
    m = _perm(k=k, noise=64.0 / (k * eps0), n=n, diameter=64.0, releases=n * epochs)
    ours = ACC.epsilon(m, 1e-5)
    assert ours.epsilon < KOVAccountant().epsilon(m, 1e-5).epsilon
    (_, revealed_set), = HitsAccountant.dominating(m)
    revealed = revealed_set.epsilon(1e-5, which=("upper",))[1]
    assert ours.epsilon <= revealed
    if (n - k) * math.exp(-eps0) >= 10:
        assert ours.epsilon < revealed
        assert "amplified by the hidden position" in ours.note


def test_soft_labels_hide_among_the_class_only():
    """Un-noised soft labels show each slot's class: the report hides among its class (the
    smallest given), and with unknown sizes (a class of one) not at all."""
    base = dict(k=4, noise=16.0, n=1000, diameter=64.0, releases=20000)
    none = ACC.epsilon(_perm(**base), 1e-5)
    soft = ACC.epsilon(_perm(labels="soft", class_sizes=(100,) * 10, **base), 1e-5)
    alone = ACC.epsilon(_perm(labels="soft", **base), 1e-5)
    assert "among 997 reports" in none.note and "among 97 reports" in soft.note
    # the row names the law it composed (not the subsampled pair of the subsets sampler)
    assert "epoch laws of permutation mixing" in none.note
    assert "symmetrised pair" not in none.note
    assert none.epsilon < soft.epsilon < alone.epsilon
    assert "no amplification by the hidden position" in alone.note


def test_refusals_and_range():
    with pytest.raises(InputError, match="pool"):
        ShuffledEpoch(4, 10, 3, 1.0)
    with pytest.raises(InputError, match="eps0"):
        ShuffledEpoch(4, 10, 10, float("nan"))
    with pytest.raises(InputError, match="n_slots"):
        ShuffledEpoch(4, 0, 10, 1.0)
    with pytest.raises(InputError, match="n \\(the reports"):
        clone_points(0, 1.0)
    # random weights: the revealed law only, and the row says why
    r = ACC.epsilon(_perm(k=4, noise=16.0, n=1000, diameter=64.0, releases=5000,
                          dirichlet_alpha=1.0), 1e-5)
    assert "random mixing weights" in r.note
    # eps0 so large that no clone is expected: not built, and the row says so
    big = ACC.epsilon(_perm(k=4, noise=0.1, n=50000, diameter=3072.0, releases=10 ** 5), 1e-5)
    assert "fewer than one clone expected" in big.note
    assert np.isfinite(big.epsilon)


@settings(max_examples=6, deadline=None)
@given(n=st.integers(100, 10 ** 5), k=st.sampled_from([1, 2, 4]), log_e0=st.floats(-3, 5),
       log_epochs=st.floats(0, 4), factor=st.floats(1.1, 4.0))
def test_finite_and_monotone_in_noise_and_releases(n, k, log_e0, log_epochs, factor):
    """eps0 from 1e-3 to 1e5, T from N up to 1e9 (issue 13): a finite number, never above KOV,
    and monotone in the noise and in T (the row is the smaller of two laws, each monotone; the
    slack, 1.5%, is the rounding's, as in test_hits.py)."""
    eps0 = 10.0 ** log_e0
    t = min(10 ** 9, int(n * 10.0 ** log_epochs))

    def eps(noise_factor=1.0, releases=t):
        m = _perm(k=k, noise=64.0 / (k * eps0) * noise_factor, n=n, diameter=64.0,
                  releases=releases)
        return ACC.epsilon(m, 1e-5).epsilon, KOVAccountant().epsilon(m, 1e-5).epsilon

    base, kov = eps()
    assert math.isfinite(base) and 0 < base <= kov
    assert eps(noise_factor=factor)[0] <= base * 1.015 + 1e-12
    assert base <= eps(releases=min(10 ** 9, int(t * factor) + 1))[0] * 1.015 + 1e-12


def test_one_shuffle_against_monte_carlo_of_the_mechanism():
    """k = 1, N = 60, one epoch of 1-D reports (b = 1, the record at 0 or 1, the others all at
    o): the exact log-likelihood ratio of the shuffled outputs is log sum_j r(y_j) - log sum_j
    r'(y_j), r(y) = L(y - x)/L(y - o), so delta(eps) = E_P[(1 - e^{eps - loss})_+] is sampled
    directly (no clone argument involved). The bound is above the estimate plus 4 standard
    errors, in both orders; it is also not vacuous (below 2.5 times it at eps = 0)."""
    from scipy.special import logsumexp

    rng = np.random.default_rng(13)
    n, s, samples = 60, 1.0, 40_000
    eps = np.array([0.0, 0.1, 0.2])
    ev = _perm(k=1, noise=1.0, n=n, diameter=s, releases=n)
    bound = np.array([ACC.delta(ev, e).delta for e in eps])
    for o in (0.0, 0.5, 1.0):
        for a, c in ((0.0, s), (s, 0.0)):
            vals = np.full(n, o)
            vals[0] = a
            y = vals[None, :] + rng.laplace(size=(samples, n))
            loss = (logsumexp(np.abs(y - o) - np.abs(y - a), axis=1)
                    - logsumexp(np.abs(y - o) - np.abs(y - c), axis=1))
            f = np.maximum(0.0, -np.expm1(eps[:, None] - loss[None, :]))
            est, se = f.mean(axis=1), f.std(axis=1) / np.sqrt(samples)
            assert np.all(est <= bound + 4 * se), (o, a, est, bound)
            assert bound[0] < 2.5 * est[0]
