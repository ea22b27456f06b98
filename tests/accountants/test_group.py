"""The group accountant (pld-tilted-group): the pair for p records, against brute force, the
one-record accountant, dp_accounting, and the closed form it replaces in certificates."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dpaccount import InstaHide, certify
from dpaccount.accountants import HitsAccountant
from dpaccount.accountants.group import group_delta, group_epsilon
from dpaccount.errors import InputError
from dpaccount.exact import ConcreteProfile
from dpaccount.numerics import closed_form as cf

README = dict(k=4, noise=8.0, n=1797, diameter=64.0, epochs=10)


def _sub(n, k, b, T, **kw):
    return InstaHide(k=k, noise=b, n=n, diameter=1.0, releases=T, labels="none", **kw)


def test_one_record_group_is_the_one_record_pair():
    """p = 1: the same symmetrised pair as pld-tilted's upper end (q differs in the last bits:
    here it is the hypergeometric P(J = 1), there k/N)."""
    m = InstaHide.from_epochs(labels="none", **README)
    assert group_epsilon(m, 1, 1e-5).epsilon == pytest.approx(
        HitsAccountant().epsilon(m, 1e-5).epsilon, rel=1e-6)


# brute force: every case is a concrete pair of 1-D datasets differing in the first p records;
# ConcreteProfile's lower end is below the truth, so the group's upper delta must be above it
# (margin 1e-9: both sides carry their own allowances; the lower end is already conservative)
CASES = [(6, 2, 2, 0.5, 3), (5, 3, 3, 0.5, 2), (5, 1, 2, 0.3, 3)]


def _pairs(n, p):
    ones, zeros = np.ones(n), np.zeros(n)
    g = np.r_[np.ones(p), np.zeros(n - p)]
    mixed = np.r_[np.ones(p), 0.3 * np.ones(n - p)]
    return [(g, zeros), (ones, 1 - g), (zeros, g), (mixed, np.r_[np.zeros(p), mixed[p:]])]


@pytest.mark.parametrize("n,k,p,b,T", CASES)
def test_never_below_brute_force(n, k, p, b, T):
    ev = _sub(n, k, b, T)
    worst = 0.0
    for d1, d2 in _pairs(n, p):
        prof = ConcreteProfile(d1, d2, k, b, T)
        for eps in (0.0, 0.25, 0.5, 1.0, 2.0, 3.0):
            lo, _ = prof.delta_bounds(eps)
            up = group_delta(ev, p, eps).delta
            assert lo <= up + 1e-9, (n, k, p, T, eps, lo, up)
            if up > 1e-6:
                worst = max(worst, lo / up)
    # and not vacuously: at eps = 0 the worst of these pairs reaches most of the bound
    assert worst > 0.8


def _poisson_delta(xs, group, k, q, b, eps):
    """Brute force, one release of Poisson-sampled Laplace: D = xs, D' = xs + group, every
    inclusion pattern enumerated, delta by quadrature on a fine grid, both orders."""
    z = np.linspace(-16, 18, 68_001)
    dz = z[1] - z[0]

    def density(values):
        out = np.zeros_like(z)
        for pattern in itertools.product((0, 1), repeat=len(values)):
            w = math.prod(q if s else 1 - q for s in pattern)
            m = sum(v for v, s in zip(values, pattern) if s) / k
            out += w * np.exp(-np.abs(z - m) / b) / (2 * b)
        return out

    a, c = density(list(xs)), density(list(xs) + list(group))
    return max(np.sum(np.maximum(a - np.exp(eps) * c, 0)) * dz,
               np.sum(np.maximum(c - np.exp(eps) * a, 0)) * dz)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_poisson_add_remove_never_below_brute_force(p):
    n, k, b = 4, 2, 0.4  # q = k/N = 0.5, eps0 = norm/(k b) = 1.25
    ev = InstaHide(k=k, noise=b, n=n, diameter=1.0, releases=1, labels="none",
                   sampler="poisson", relation="add_remove", norm=1.0)
    for xs in ([0.0] * 3, [1.0, -1.0, 0.5], [1.0] * 3):
        for eps in (0.0, 0.5, 1.0, 2.0):
            truth = _poisson_delta(xs, [1.0] * p, k, k / n, b, eps)
            # 1e-6: the quadrature's error on this grid (step 5e-4, b = 0.4; the Riemann sum's error at
            # the integrand's kinks is of order step^2 / b)
            assert truth <= group_delta(ev, p, eps).delta + 1e-6, (p, xs, eps)


def test_permutation_group_against_dp_accounting():
    """Permutation: the Laplace pair at p Delta/b per epoch. dp_accounting's optimistic PLD of
    the same composition is a lower bound on its truth: ours must be above it; its pessimistic
    one an upper bound, which ours should approach (within 2%: both grids)."""
    pl = pytest.importorskip("dp_accounting.pld.privacy_loss_distribution")
    ev = InstaHide(k=4, noise=16.0, n=100, diameter=4.0, releases=1000, labels="none",
                   sampler="permutation")  # 10 epochs, p Delta/b = 0.5 for p = 2
    ours = group_epsilon(ev, 2, 1e-5).epsilon
    vals = {pess: pl.from_laplace_mechanism(16.0 / 8.0, 1.0, pessimistic_estimate=pess,
                                            value_discretization_interval=1e-4)
            .self_compose(10).get_epsilon_for_delta(1e-5) for pess in (True, False)}
    assert vals[False] <= ours <= 1.02 * vals[True]
    # and below the closed form it replaces (KOV over the same epochs)
    unit = ev.sampler_type.group_unit(ev, 2)
    assert ours < cf.kov_epsilon(unit.eps, unit.count, 1e-5)


def test_strictly_below_the_closed_form_and_increasing_in_p():
    m = InstaHide.from_epochs(labels="none", **README)
    prev = 0.0
    for p in (1, 2, 3, 5, 14):
        e = group_epsilon(m, p, 1e-5).epsilon
        unit = m.sampler_type.group_unit(m, p)
        assert prev < e < cf.kov_epsilon(unit.eps, unit.count, 1e-5)
        prev = e


@settings(max_examples=10, deadline=None)
@given(p=st.integers(1, 6), noise=st.floats(0.5, 64.0), t=st.integers(1, 10 ** 6))
def test_finite_and_monotone(p, noise, t):
    ev = InstaHide(k=4, noise=noise, n=1000, diameter=64.0, releases=t, labels="none")
    e = group_epsilon(ev, p, 1e-5).epsilon
    assert math.isfinite(e) and e >= 0
    assert group_epsilon(ev, p, 1e-5).epsilon == e  # cached, the same answer
    more_noise = InstaHide(k=4, noise=noise * 2, n=1000, diameter=64.0, releases=t, labels="none")
    assert group_epsilon(more_noise, p, 1e-5).epsilon <= e * (1 + 1e-2)


@pytest.mark.parametrize("p", [0, -1, 1.5, True, "2", 1798])
def test_bad_group_sizes_are_refused_in_one_line(p):
    m = InstaHide.from_epochs(labels="none", **README)
    with pytest.raises(InputError) as exc:
        group_epsilon(m, p, 1e-5)
    assert "poisons" in str(exc.value) and "\n" not in str(exc.value)


def test_certify_uses_the_group_pair_and_says_so():
    """The README example without labels: today's direct_group (KOV) was vacuous and group
    privacy gave 0.3785; the group pair's profile gives less than both, and names itself."""
    m = InstaHide.from_epochs(labels="none", **README)
    certs = {c.method: c for c in certify(m, 2, 0.01)}
    d, g = certs["direct_group"], certs["group_privacy"]
    assert d.epsilon_method == "pld-tilted-group" and "pld-tilted-group" in d.note
    assert d.bound < g.bound < 1.0
    # the reported point is one the profile gives: e^eps R + delta(eps), delta(eps) rechecked
    assert d.bound == pytest.approx(math.exp(d.epsilon) * 0.01
                                    + group_delta(m, 2, d.epsilon).delta, rel=1e-9)
    unit = m.sampler_type.group_unit(m, 2)
    kov = min(math.exp(cf.kov_epsilon(unit.eps, unit.count, dd)) * 0.01 + dd
              for dd in (1e-2, 1e-5, 1e-12))
    assert d.bound < min(kov, 1.0)


@pytest.mark.parametrize("n,k,p,b,T", [(6, 2, 2, 0.5, 3)])
def test_soft_labels_never_below_brute_force(n, k, p, b, T):
    """With un-noised soft labels (every record its own class: the class counts show the whole
    subset), ConcreteProfile with labels is the truth: never above the group's delta."""
    ev = InstaHide(k=k, noise=b, n=n, diameter=1.0, releases=T)  # labels soft, class of one
    labels = np.arange(n)
    for d1, d2 in _pairs(n, p)[:2]:
        prof = ConcreteProfile(d1, d2, k, b, T, labels=labels)
        for eps in (0.0, 0.5, 1.5):
            lo, _ = prof.delta_bounds(eps)
            assert lo <= group_delta(ev, p, eps).delta + 1e-9, (eps, lo)


def test_soft_labels_free_only_the_releases_without_members():
    """The soft-label group pair is the revealed mixture over J of plain Laplace pairs: below
    charging every release min(p, k) = 2 members (the pair used before: the Laplace pair at
    2 eps0 = 4 in all T releases, here a run of k = N = 1 at eps0 4), above the unlabelled
    pair (which also hides whether the group is in a release)."""
    kw = dict(k=4, noise=8.0, n=1797, diameter=64.0, releases=17970)
    soft = group_epsilon(InstaHide(**kw), 2, 1e-2).epsilon
    every = InstaHide(k=1, noise=16.0, n=1, diameter=64.0, releases=17970, labels="none")
    assert soft < HitsAccountant().epsilon(every, 1e-2).epsilon
    assert soft > group_epsilon(InstaHide(labels="none", **kw), 2, 1e-2).epsilon


def _subsets_density(z, values, k, b):
    """One release of k-subsets of ``values``, every subset enumerated."""
    subs = list(itertools.combinations(values, k))
    return sum(np.exp(-np.abs(z - sum(s) / k) / b) / (2 * b) for s in subs) / len(subs)


@pytest.mark.parametrize("n,k,p,b", [(5, 2, 2, 0.4), (6, 2, 3, 0.3)])
def test_subsets_add_remove_never_below_brute_force(n, k, p, b):
    """Fixed-size subsets under add/remove: D has N - p records, D' adds the group (q_p at the
    larger dataset, as for one record). One release, both orders, by enumeration and
    quadrature (grid step 5e-4: error of order step^2 / b, far below the 1e-6 margin at
    b >= 0.3)."""
    z = np.linspace(-16, 18, 68_001)
    dz = z[1] - z[0]
    ev = InstaHide(k=k, noise=b, n=n, diameter=1.0, releases=1, labels="none",
                   relation="add_remove")
    best = 0.0
    for rest in ([0.0] * (n - p), [1.0] * (n - p), list(np.linspace(0, 1, n - p))):
        for group in ([1.0] * p, [0.0] * p):
            a = _subsets_density(z, rest, k, b)
            c = _subsets_density(z, rest + group, k, b)
            for eps in (0.0, 0.5, 1.0, 2.0):
                truth = max(np.sum(np.maximum(a - np.exp(eps) * c, 0)) * dz,
                            np.sum(np.maximum(c - np.exp(eps) * a, 0)) * dz)
                up = group_delta(ev, p, eps).delta
                assert truth <= up + 1e-6, (rest, group, eps, truth, up)
                best = max(best, truth / up if up > 1e-6 else 0.0)
    assert best > 0.9  # the group at one end, the rest at the other, nearly attains it
