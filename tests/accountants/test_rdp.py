"""RDP accountant: Laplace closed form against mpmath integration, subsampling bounds against
autodp, and the ordering RDP >= PLD lower bound (both are bounds on the same quantity)."""

import mpmath as mp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpaccount import InstaHide
from dpaccount.accountants import PLDAccountant, RDPAccountant
from dpaccount.errors import Unsupported
from dpaccount.numerics.rdp import laplace_rdp, poisson_subsampled_rdp, subsampled_rdp_wor


def rdp_result(mech, delta):
    return RDPAccountant().row(mech, delta)


def pld_result(mech, delta):
    return PLDAccountant().row(mech, delta)


@pytest.mark.parametrize("alpha", [2, 3.5, 10])
@pytest.mark.parametrize("eps0", [0.1, 1.0, 4.0])
def test_laplace_rdp_matches_numerical_integration(alpha, eps0):
    # D_alpha(P||Q) = 1/(alpha-1) log int p^alpha q^(1-alpha), P = Lap(0,1), Q = Lap(eps0,1),
    # integrated by mpmath at 30 digits on the pieces where |z| and |z - eps0| have one form
    mp.mp.dps = 30
    a, s = mp.mpf(alpha), mp.mpf(eps0)
    f = lambda z: (mp.exp(-abs(z)) / 2) ** a * (mp.exp(-abs(z - s)) / 2) ** (1 - a)  # noqa
    val = mp.quad(f, [-mp.inf, 0, s, mp.inf])
    ref = float(mp.log(val) / (a - 1))
    assert float(laplace_rdp(alpha, eps0)) == pytest.approx(ref, rel=1e-12)


@given(st.integers(2, 200), st.floats(1e-3, 10))
def test_subsampling_never_hurts_and_q1_is_plain(alpha, eps0):
    plain = float(laplace_rdp(alpha, eps0))
    assert subsampled_rdp_wor(alpha, 1.0, eps0) == pytest.approx(plain, rel=1e-14)
    assert subsampled_rdp_wor(alpha, 0.01, eps0) <= plain * (1 + 1e-12)
    assert poisson_subsampled_rdp(alpha, 1.0, eps0) == pytest.approx(plain, rel=1e-14)


@pytest.mark.parametrize("q,eps0", [(4 / 50000, 0.25), (4 / 1797, 0.25), (1 / 1797, 2.0),
                                    (0.1, 1.0)])
def test_matches_autodp_theorem_9(q, eps0):
    rdp_acct = pytest.importorskip("autodp.rdp_acct")
    rdp_bank = pytest.importorskip("autodp.rdp_bank")
    acct = rdp_acct.anaRDPacct(m=100, m_max=1024)
    acct.compose_subsampled_mechanism(lambda x: rdp_bank.RDP_laplace({"b": 1 / eps0}, x), q,
                                      coeff=1)
    alphas = [2, 3, 8, 32, 64]
    theirs = acct.get_rdp(alphas)
    for a, t in zip(alphas, theirs):
        # the same theorem (Wang et al. 2019 Thm 9), both in log space: 1e-9 relative
        assert subsampled_rdp_wor(a, q, eps0) == pytest.approx(float(t), rel=1e-9)


@settings(max_examples=10)
@given(st.sampled_from([1, 2, 4, 8]), st.sampled_from([0.5, 1.0, 2.0]),
       st.sampled_from([1797, 50000]), st.integers(1, 10**6))
def test_rdp_is_not_below_the_pld_lower_bound(k, b, n, T):
    m = InstaHide(labels="none", k=k, noise=b, n=n, diameter=1.0, releases=T)
    r, p = rdp_result(m, 1e-5), pld_result(m, 1e-5)
    # both bound the same true epsilon from above (rdp) and below (pld lower)
    assert r.epsilon >= p.lower


def test_refusals_and_edge_note():
    base = dict(k=4, noise=1.0, n=1000, diameter=1.0, releases=10)
    for extra in (dict(sampler="permutation"), dict(relation="add_remove")):
        m = InstaHide(labels="none", **base, **extra)
        assert "RDP accountant covers" in RDPAccountant().supports(m)
        with pytest.raises(Unsupported, match="RDP accountant covers"):
            RDPAccountant().epsilon(m, 1e-5)
        row = rdp_result(m, 1e-5)
        assert row.epsilon is None and row.method == "rdp" and "not applicable" in row.note
    # tiny privacy loss: the best order is the largest on the grid, and the row says so
    row = RDPAccountant().epsilon(InstaHide(labels="none", k=1, noise=1e3, n=10**6, diameter=1.0,
                                            releases=1), 1e-5)
    assert row.extra["order_at_edge"] and "edge of the grid" in row.note
    with pytest.raises(ValueError, match="delta"):
        RDPAccountant().epsilon(InstaHide(labels="none", **base), 0.0)
