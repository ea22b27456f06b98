"""The closed-form lower bound on epsilon (tests on the worst-case pair): it must never exceed a
sound upper bound, at settings spread over samplers' reach, labels and delta."""

import pytest

from dpaccount import InstaHide


@pytest.mark.parametrize("k,n,noise,releases,labels,sizes,delta", [
    (2, 4, 1.0, 10, "none", None, 1e-2),
    (4, 100, 0.5, 1000, "noised", None, 1e-5),
    (8, 1000, 4.0, 10**5, "soft", (500, 500), 1e-8),
    (1, 2, 100.0, 10**9, "none", None, 1e-5),
    (64, 1797, 1.0, 17970, "soft", None, 1e-5),
])
def test_release_test_lower_bound_is_below_every_upper_bound(k, n, noise, releases, labels,
                                                             sizes, delta):
    from dpaccount.audit.analytic import release_test_lower_bound
    from dpaccount.selection import tightest

    m = InstaHide(k=k, noise=noise, n=n, diameter=64.0, releases=releases, labels=labels,
                  class_sizes=sizes)
    lb = release_test_lower_bound(m, delta)
    r = tightest(m, delta)
    assert 0 <= lb <= r.epsilon
    if r.method == "pld":  # near the truth: useful, it lets the search skip a k
        assert lb > 0.3 * r.epsilon


@pytest.mark.parametrize("k,n,noise,releases,delta", [
    (2, 4, 0.5, 8, 1e-2), (1, 3, 0.3, 5, 1e-3), (3, 6, 0.4, 20, 1e-4), (2, 5, 1.0, 60, 1e-5),
])
def test_release_test_lower_bound_is_below_the_exact_epsilon_of_its_pair(k, n, noise, releases,
                                                                          delta):
    # independent truth: the exact privacy profile (quadrature, dpaccount.exact) of the pair the
    # test is built on, the record at one end and every other record at the other; the true
    # delta at the lower bound must still be at least delta (else the bound would exceed eps)
    import numpy as np

    from dpaccount.audit.analytic import release_test_lower_bound
    from dpaccount.exact import ConcreteProfile

    m = InstaHide(k=k, noise=noise, n=n, diameter=1.0, releases=releases, labels="none")
    lb = release_test_lower_bound(m, delta)
    d = np.zeros((n, 1))
    d[0, 0] = 1.0
    truth = ConcreteProfile(d, np.zeros((n, 1)), k, noise, releases)
    _, true_up = truth.delta_bounds(lb)
    assert true_up >= delta * (1 - 1e-9), (lb, true_up)
