"""The PLD accountant: two-sided bounds against exact integration, KOV and dp_accounting."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from dpaccount import InstaHide
from dpaccount.numerics import closed_form as cf
from dpaccount import tightest
from dpaccount.accountants import HitsAccountant, KOVAccountant, PLDAccountant, RDPAccountant
from dpaccount.numerics.laplace_pair import LaplaceMixturePair
from dpaccount.numerics.lattice import LossComposition


def pld_result(mech, delta):
    return PLDAccountant().row(mech, delta)


def exact_delta_one_release(q, s, b, eps):
    """max over directions of integral (a - e^eps c)_+ dz, by quadrature on the three pieces
    where the density ratio has one form (independent of the lattice code)."""
    def p(z):
        return (1 - q) * math.exp(-abs(z) / b) / (2 * b) + q * math.exp(-abs(z - s) / b) / (2 * b)

    def qd(z):
        return math.exp(-abs(z) / b) / (2 * b)

    out = []
    for a, c in ((p, qd), (qd, p)):
        f = lambda z: max(a(z) - math.exp(eps) * c(z), 0.0)  # noqa: E731
        tot = 0.0
        for lo, hi in ((-math.inf, 0.0), (0.0, s), (s, math.inf)):
            val, _ = integrate.quad(f, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=200)
            tot += val
        out.append(tot)
    return max(out)


@pytest.mark.parametrize("q,s,b", [(0.5, 2.0, 1.0), (0.1, 1.0, 0.5), (1.0, 1.0, 1.0),
                                   (4 / 1797, 16.0, 8.0)])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 1.0])
def test_one_release_delta_interval_contains_exact(q, s, b, eps):
    lo, up = LossComposition(LaplaceMixturePair(q, s, b), 1).delta(eps)
    exact = exact_delta_one_release(q, s, b, eps)
    # quadrature is good to ~1e-12; the lattice interval must contain the exact value
    assert lo <= exact + 1e-12
    assert up >= exact - 1e-12
    # and be tight: within 1% of the truth, + 2e-4 absolute for the split of the lower atom
    # (mass ~0.5 moved by at most one lattice step h ~ sd/1000)
    assert up <= exact * 1.01 + 2e-4


def test_target_configuration_interval_width_and_kov():
    # N = 50000, k = 4, b = 1, Delta = 1, T = 2e6, delta = 1e-5: the lattice brackets the
    # dominating pair's epsilon within 1%; the interval for the worst concrete dataset is wider
    # (the symmetrised pair is not attained) and the note says so
    m = InstaHide(labels="none", k=4, noise=1.0, n=50000, diameter=1.0, releases=2_000_000)
    row = pld_result(m, 1e-5)
    lo, up = row.lower, row.epsilon
    assert 0 < lo <= row.extra["pair_epsilon_lower"] <= up == row.epsilon
    assert row.extra["discretisation_width"] <= 0.01
    assert row.extra["interval_width"] == pytest.approx((up - lo) / up)
    assert "tight" not in row.note and f"{row.extra['interval_width']:.2%}" in row.note
    kov = cf.kov_epsilon(cf.amplified_epsilon(0.25, 4 / 50000), 2_000_000, 1e-5)
    assert up < kov


@settings(max_examples=12)
@given(st.sampled_from([2, 4, 8]), st.sampled_from([0.5, 1.0, 2.0]),
       st.sampled_from([1797, 50000]), st.integers(10, 100_000))
def test_pld_never_above_kov_for_ten_or_more_releases(k, b, n, T):
    m = InstaHide(labels="none", k=k, noise=b, n=n, diameter=1.0, releases=T)
    row = pld_result(m, 1e-5)
    kov = cf.kov_epsilon(cf.amplified_epsilon(1.0 / (k * b), k / n), T, 1e-5)
    assert row.epsilon <= kov
    assert row.lower <= row.epsilon


def test_relations_and_samplers():
    base = dict(k=4, noise=1.0, n=1000, diameter=4.0, releases=500)
    sub = pld_result(InstaHide(labels="none", **base), 1e-5)
    ar = pld_result(InstaHide(labels="none", **base, relation="add_remove"), 1e-5)
    poi = pld_result(InstaHide(labels="none", **base, sampler="poisson", relation="add_remove",
                               norm=4.0), 1e-5)
    # add/remove: the pair in both directions, the same for both samplers (norm = diameter);
    # substitution composes the symmetrised pair, which dominates it
    assert ar.epsilon == poi.epsilon < sub.epsilon
    assert sub.lower == pytest.approx(ar.lower, rel=1e-12)
    assert (sub.relation, ar.relation, poi.sampler) == ("substitution", "add_remove", "poisson")
    perm = pld_result(InstaHide(labels="none", **base, sampler="permutation"), 1e-5)
    assert perm.epsilon is None and "not applicable" in perm.note


def test_wide_loss_range_is_refused_by_name_and_tightest_says_which_method():
    # eps0 = 100 is beyond the lattice: the pld row says it does not apply (no fallback under
    # its name); KOV and RDP carry their own numbers, and tightest names the one it took
    m = InstaHide(labels="none", k=1, noise=0.01, n=100, diameter=1.0, releases=10)
    row = pld_result(m, 1e-5)
    assert row.epsilon is None and row.lower is None
    assert "not applicable" in row.note and "eps0 = 100" in row.note
    kov = cf.kov_epsilon(cf.amplified_epsilon(100.0, 0.01), 10, 1e-5)
    assert KOVAccountant().epsilon(m, 1e-5).epsilon == kov
    rdp = RDPAccountant().epsilon(m, 1e-5).epsilon
    tilted = HitsAccountant().epsilon(m, 1e-5).epsilon  # the accountant beyond the lattice
    best = tightest(m, 1e-5)
    assert best.epsilon == min(kov, rdp, tilted)
    assert best.method == min([("kov", kov), ("rdp", rdp), ("pld-tilted", tilted)],
                              key=lambda r: r[1])[0]


@pytest.mark.parametrize("bad", [dict(q=0.0, s=1.0, b=1.0), dict(q=0.5, s=-1.0, b=1.0),
                                 dict(q=0.5, s=1.0, b=math.nan), dict(q=0.5, s=100.0, b=1.0)])
def test_bad_pairs_refused(bad):
    with pytest.raises(ValueError):
        LaplaceMixturePair(**bad)


@pytest.mark.parametrize("bad", [0.0, 1.0, math.nan, -1e-5])
def test_bad_delta_refused(bad):
    with pytest.raises(ValueError, match="delta"):
        LossComposition(LaplaceMixturePair(0.5, 1.0, 1.0), 10).epsilon(bad)


# ---- the peer: Google's dp_accounting ------------------------------------------------------
# Its PoissonSampledDpEvent(q, LaplaceDpEvent(b/s)) under add/remove has our dominating pair
# (docs/theory.md Sec. 3), so its pessimistic PLD is an upper bound and its optimistic PLD a lower
# estimate of the same curve. The true value lies in both intervals: they must overlap.

PEER_CASES = [
    (0.5, 2.0, 1.0, 10),
    (4 / 1797, 16.0, 8.0, 17970),
    (1 / 1797, 1.0, 2.0, 1797),
    (4 / 50000, 0.25, 1.0, 2_000_000),
]


@pytest.mark.parametrize("q,s,b,T", PEER_CASES)
def test_agrees_with_dp_accounting(q, s, b, T):
    pl = pytest.importorskip("dp_accounting.pld.privacy_loss_distribution")
    delta = 1e-5
    pess = pl.from_laplace_mechanism(b / s, 1.0, pessimistic_estimate=True,
                                     value_discretization_interval=1e-4,
                                     sampling_prob=q).self_compose(T)
    opt = pl.from_laplace_mechanism(b / s, 1.0, pessimistic_estimate=False,
                                    value_discretization_interval=1e-4,
                                    sampling_prob=q).self_compose(T)
    peer_up = pess.get_epsilon_for_delta(delta)
    peer_lo = opt.get_epsilon_for_delta(delta)
    lo, up = LossComposition(LaplaceMixturePair(q, s, b), T).epsilon(delta)
    assert lo <= peer_up  # our lower bound is below the peer's upper bound
    assert peer_lo <= up  # the peer's optimistic estimate is below our upper bound
    # and both land near each other: within the wider of the two intervals' widths + 1%
    assert abs(up - peer_up) <= max(up - lo, peer_up - peer_lo) + 0.01 * up


@pytest.mark.parametrize("eps1,T", [(0.5, 10), (0.1, 200), (1.0, 50)])
def test_kov_against_dp_accounting_pure_dp_pld(eps1, T):
    # dp_accounting's PLD of a generic eps1-DP mechanism is the randomized-response pair, whose
    # T-fold composition is exactly KOV; its pessimistic grid value is above the exact KOV
    # (ours is the exact value up to 1e-10), by at most its grid error (T * 1e-4)
    common = pytest.importorskip("dp_accounting.pld.common")
    pl = pytest.importorskip("dp_accounting.pld.privacy_loss_distribution")
    pld = pl.from_privacy_parameters(common.DifferentialPrivacyParameters(eps1, 0.0),
                                     value_discretization_interval=1e-4)
    peer = pld.self_compose(T).get_epsilon_for_delta(1e-5)
    ours = cf.kov_epsilon(eps1, T, 1e-5)
    assert ours <= peer + 1e-9
    assert peer - ours <= T * 1e-4 + 1e-6


@pytest.mark.parametrize("eps0,T", [(0.5, 1), (0.5, 20), (2.0, 5)])
def test_laplace_without_sampling_against_dp_accounting(eps0, T):
    pl = pytest.importorskip("dp_accounting.pld.privacy_loss_distribution")
    pess = pl.from_laplace_mechanism(1.0 / eps0, 1.0, pessimistic_estimate=True,
                                     value_discretization_interval=1e-5).self_compose(T)
    opt = pl.from_laplace_mechanism(1.0 / eps0, 1.0, pessimistic_estimate=False,
                                    value_discretization_interval=1e-5).self_compose(T)
    lo, up = LossComposition(LaplaceMixturePair(1.0, eps0, 1.0), T).epsilon(1e-5)
    assert lo <= pess.get_epsilon_for_delta(1e-5)
    assert opt.get_epsilon_for_delta(1e-5) <= up


def test_a_billion_releases():
    # T = 1e9 is within reach: about log2(T) FFTs per direction; the interval stays narrow
    lo, up = LossComposition(LaplaceMixturePair(4 / 50000, 0.25, 0.5), 10**9).epsilon(1e-5)
    kov = cf.kov_epsilon(cf.amplified_epsilon(0.5, 4 / 50000), 10**9, 1e-5)
    assert 0 < lo <= up < kov
    assert (up - lo) / up < 0.03


def test_lattice_upper_below_kov_on_the_benchmark_grid():
    # the grid: the raw lattice bound (before taking the min with KOV) must already be
    # at or below KOV whenever T >= 10
    for n in (1797, 50000):
        for k in (1, 2, 4, 8):
            for b in (0.5, 1.0, 2.0):
                for T in (10 * n, 2_000_000):
                    m = InstaHide(labels="none", k=k, noise=b, n=n, diameter=1.0, releases=T)
                    lat = pld_result(m, 1e-5).epsilon
                    kov = cf.kov_epsilon(cf.amplified_epsilon(1.0 / (k * b), k / n), T, 1e-5)
                    assert lat <= kov, (n, k, b, T)
