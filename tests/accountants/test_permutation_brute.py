"""pld-tilted under permutation mixing against brute force of the mechanism itself, N <= 6.

The brute force (`dpaccount.exact_permutation`, written independently of the accountant from a
description of the mechanism) integrates the released slots' density, a mixture over every
tuple of permutations, for two 1-D datasets that differ in the first record; its error
estimate is added to the tolerance. The bound must cover both orders of every pair; it is
checked for the row and for the law with one slot hidden on its own (docs/pld_hits.md,
"Permutation mixing: amplification by the hidden position"), built here even where the row
would not build it (fewer than one clone expected), so that its proof is tested at k = 2 too.
"""

import numpy as np
import pytest

from dpaccount import InstaHide
from dpaccount.accountants import HitsAccountant
from dpaccount.accountants.hits import law_set
from dpaccount.exact_permutation import permutation_epoch_delta
from dpaccount.numerics.shuffle import ShuffledEpoch

ACC = HitsAccountant()
EPS = np.array([0.0, 0.1, 0.3, 0.6])

# (N, k, eps0 per slot, epochs, the other records in units of the diameter, m: outputs of a
# last partial epoch, None for whole epochs); b = 1, the record moves from 0 to the diameter
CASES = [
    (3, 1, 0.5, 1, (0.0, 0.0), None),       # others at the record's value
    (3, 1, 0.5, 1, (1.0, 1.0), None),       # others at the neighbour's value
    (3, 1, 0.5, 1, (0.3, 0.8), None),       # interior
    (4, 1, 0.5, 1, (0.0, 1.0, 0.5), None),
    (4, 2, 0.25, 1, (1.0, 1.0, 1.0), None),
    (4, 2, 0.5, 1, (0.0, 0.2, 1.0), None),
    (3, 2, 0.25, 1, (0.0, 1.0), None),
    (3, 1, 0.5, 2, (1.0, 1.0), None),       # two epochs
    (3, 2, 0.25, 2, (0.0, 1.0), None),
    (6, 1, 0.5, 1, (0.0, 0.0, 1.0, 1.0, 0.5), 2),   # a partial epoch of N = 6
    (5, 2, 0.25, 1, (0.0, 1.0, 1.0, 0.0), 2),
    (3, 2, 0.5, 2, (0.4, 1.0), 2),          # one whole epoch, then 2 of 3 outputs
]


def _brute(n, k, eps0, epochs, others, m):
    diameter = eps0 * k
    d = np.array([0.0] + [o * diameter for o in others])
    dp = d.copy()
    dp[0] = diameter
    v1, e1 = permutation_epoch_delta(d, dp, k, 1.0, EPS, m=m, epochs=epochs)
    v2, e2 = permutation_epoch_delta(dp, d, k, 1.0, EPS, m=m, epochs=epochs)
    return np.maximum(v1, v2), np.maximum(e1, e2), diameter


@pytest.mark.parametrize("case", CASES, ids=[f"N{c[0]}-k{c[1]}-e{c[3]}-m{c[5]}" for c in CASES])
def test_never_below_brute_force(case):
    n, k, eps0, epochs, others, m = case
    truth, err, diameter = _brute(n, k, eps0, epochs, others, m)
    releases = n * epochs if m is None else n * (epochs - 1) + m
    ev = InstaHide(labels="none", sampler="permutation", k=k, noise=1.0, n=n,
                   diameter=diameter, releases=releases)
    # the row (the smaller of its laws); tolerance: the brute force's own error estimate
    row = np.array([ACC.delta(ev, e).delta for e in EPS])
    assert np.all(row >= truth - err - 1e-12), (row, truth)
    # the law with one slot hidden, alone, for the whole epochs (a partial epoch keeps its
    # revealed count in both laws)
    full, rest = divmod(releases, n)
    if full and m is None:
        units = (((ShuffledEpoch(k, n, n, eps0),), full),)
        hidden = np.array([law_set((units,)).delta(e)[1] for e in EPS])
        assert np.all(hidden >= truth - err - 1e-12), (hidden, truth)
        # and it is not vacuous: below the revealed law at eps = 0 where clones are expected
        if (n - k) * np.exp(-eps0) >= 1:
            (_, revealed), = HitsAccountant.dominating(ev)
            assert hidden[0] < revealed.delta(0.0)[1]


def test_the_brute_force_itself():
    """The reference against what it must reproduce: N = 1 is the plain Laplace mechanism
    (1 - e^{(eps - s)/2}, proofs/laplace_log_ratio.py), and N = 3, k = 2 against its own Monte
    Carlo (a separate code path: sampled permutations and noise; 4 standard errors)."""
    from dpaccount.exact_permutation import permutation_monte_carlo_delta

    for s, b in ((0.3, 1.0), (2.5, 0.5)):
        v, err = permutation_epoch_delta([0.0], [s], 1, b, EPS)
        exact = np.maximum(0.0, -np.expm1((EPS - s / b) / 2))
        assert np.allclose(v, exact, atol=1e-12) and np.all(err < 1e-9)
    d, dp = [0.0, 0.0, 0.5], [1.0, 0.0, 0.5]
    v, err = permutation_epoch_delta(d, dp, 2, 1.0, 0.25)
    mc, se = permutation_monte_carlo_delta(d, dp, 2, 1.0, 0.25, samples=100_000, seed=3)
    assert abs(v - mc) <= 4 * se + err
    with pytest.raises(ValueError, match="b must be"):
        permutation_epoch_delta(d, dp, 2, -1.0, 0.0)
