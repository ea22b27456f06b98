"""Audits that could have caught the accountant's own bugs (issue 14, item 3): the whole release
(image and soft label) and a search over where the other records sit, replayed against the
accountant as it was before the soundness fixes (issue 11)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest

from dpaccount.audit import audit_mechanism
from dpaccount.audit.simulate import (InstaHideReleases, NeighbourPair, candidate_pairs,
                                      check_pair_against, worst_case_pair)
from dpaccount.audit.statistics import ExactLLR
from dpaccount.errors import InputError
from dpaccount.events import InstaHide
from dpaccount.numerics.laplace_pair import LaplaceMixturePair
from dpaccount.numerics.lattice import LossComposition


@dataclass
class _Number:
    epsilon: float = 0.0
    delta: float = 0.0


class PreFixAccountant:
    """dpaccount's PLD as it was before issue 11: the attained pair ``(1-q) Lap(0,b) + q
    Lap(Delta/k, b)`` against ``Lap(0, b)`` in both directions, q = k/N, for every relation and
    whatever label ships. Written here from the issue's description, not imported."""

    method = "pld before the soundness fixes"

    @staticmethod
    def _composition(mech):
        pair = LaplaceMixturePair(q=mech.k / mech.n, s=mech.sensitivity, b=mech.noise)
        return LossComposition(pair, mech.releases)

    def epsilon(self, mech, delta):
        return _Number(epsilon=self._composition(mech).epsilon(delta)[1])

    def delta(self, mech, eps):
        return _Number(delta=self._composition(mech).delta(eps)[1])


@pytest.mark.parametrize("n,k,b,t,delta,old", [
    (5, 3, 0.25, 2, 0.206, 0.5381),  # issue 11's third example
    (2, 1, 1.0, 2, 0.128, 0.36102),  # its second
])
def test_the_pair_search_flags_the_substitution_bug(n, k, b, t, delta, old):
    """With the other records at 0 (the only pair audited before) the pre-fix accountant looked
    right; the search finds the records in the middle and flags it. The fixed accountant is not
    flagged by the same audit."""
    mech = InstaHide(labels="none", k=k, noise=b, n=n, diameter=1.0, releases=t)
    pre = PreFixAccountant()
    assert pre.epsilon(mech, delta).epsilon == pytest.approx(old, abs=1e-4)  # the value
    r = audit_mechanism(mech, delta=delta, trials=10**6, seed=0, pair="search", accountant=pre)
    assert r.verdict == "violation", r.summary()
    assert "middle" in r.pair.description and r.search_trials == 10**5
    now = audit_mechanism(mech, delta=delta, trials=10**6, seed=0, pair="search")
    assert now.verdict == "consistent", now.summary()
    # the rest-at-0 pair alone does not show it: what the audit missed before
    alone = audit_mechanism(mech, delta=delta, trials=10**6, seed=0, accountant=pre,
                            profile=False)
    assert not alone.exceeds_upper_bound


def test_auditing_the_soft_label_flags_the_label_bug():
    """Issue 11's first example: N=4, k=2, Delta=1, b=1, one release, delta 1e-5, the record
    alone in its class. The pre-fix accountant says 0.2809 (it ignored the released label); the
    audit of image and label certifies about 0.49, against the fixed accountant's 0.49996."""
    mech = InstaHide(labels="soft", class_sizes=(1, 3), k=2, noise=1.0, n=4, diameter=1.0,
                     releases=1)
    pre = PreFixAccountant()
    assert pre.epsilon(mech, 1e-5).epsilon == pytest.approx(0.2809, abs=1e-4)
    r = audit_mechanism(mech, delta=1e-5, trials=10**6, seed=0, accountant=pre)
    assert r.verdict == "violation" and r.epsilon_lower_bound > 0.45, r.summary()
    now = audit_mechanism(mech, delta=1e-5, trials=10**6, seed=0)
    assert now.verdict == "consistent" and now.ratio > 0.95, now.summary()


def test_exact_llr_with_a_soft_label_matches_brute_force():
    """The LLR of image plus soft label against enumeration of every k-subset: the density of a
    release is the average over subsets of the Laplace density of the image times the
    indicator that the subset's mean label is the one released."""
    mech = InstaHide(labels="soft", class_sizes=(2, 3), k=2, noise=0.7, n=5, diameter=1.0,
                     releases=1)
    pair = worst_case_pair(mech)
    stat = ExactLLR(InstaHideReleases.from_mechanism(mech, label_columns=2), pair)
    z = InstaHideReleases.from_mechanism(mech, label_columns=2)(pair.d, 50,
                                                                np.random.default_rng(1))

    def density(data, x):
        tot = 0.0
        subsets = list(itertools.combinations(range(data.shape[0]), 2))
        for s in subsets:
            m = data[list(s)].mean(0)
            if np.allclose(m[1:], x[1:], atol=1e-12):
                tot += np.exp(-abs(x[0] - m[0]) / 0.7)
        return tot / len(subsets)

    want = [np.log(density(pair.d, x)) - np.log(density(pair.d_prime, x)) for x in z[:, 0]]
    np.testing.assert_allclose(stat(z), want, atol=1e-8)  # LLR_RESOLUTION is 1e-9


def test_candidate_pairs_are_all_within_the_bound():
    for mech in [InstaHide(labels="none", k=2, noise=1.0, n=6, diameter=2.0, releases=3),
                 InstaHide(labels="soft", class_sizes=(2, 4), k=2, noise=1.0, n=6,
                           diameter=2.0, releases=3)]:
        pairs = candidate_pairs(mech)
        assert len(pairs) >= 3
        for p in pairs:
            check_pair_against(p, mech)  # raises if outside what the accountant covers
        assert any("middle" in p.description for p in pairs)


def test_labelled_pairs_are_checked_against_the_mechanism():
    soft = InstaHide(labels="soft", class_sizes=(1, 3), k=2, noise=1.0, n=4, diameter=1.0,
                     releases=1)
    plain = InstaHide(labels="none", k=2, noise=1.0, n=4, diameter=1.0, releases=1)
    labelled = worst_case_pair(soft)
    assert labelled.label_columns == 2 and labelled.class_sizes() == (1, 3)
    with pytest.raises(InputError, match="releases labels 'none'"):
        check_pair_against(labelled, plain)
    with pytest.raises(InputError, match="must carry it"):
        check_pair_against(worst_case_pair(plain), soft)
    other = InstaHide(labels="soft", class_sizes=(2, 2), k=2, noise=1.0, n=4, diameter=1.0,
                      releases=1)
    with pytest.raises(InputError, match="class sizes"):
        check_pair_against(labelled, other)
    d = labelled.d.copy()
    dp = labelled.d_prime.copy()
    dp[0, 1:] = [0, 1]  # the substitution changes the record's label
    with pytest.raises(InputError, match="changes a label"):
        check_pair_against(NeighbourPair(d, dp, "substitution", label_columns=2), soft)
    with pytest.raises(InputError, match="one-hot"):
        NeighbourPair(np.ones((3, 3)), np.ones((3, 3)), "substitution", label_columns=2)
    with pytest.raises(InputError, match="pair must be"):
        audit_mechanism(plain, delta=1e-2, trials=100, pair="everything")


def test_the_search_leaves_out_pairs_its_statistic_cannot_score():
    """The permutation sampler's exact LLR covers pairs of n - 1 equal records plus one; the
    search skips the split candidate instead of refusing the audit, and says so."""
    mech = InstaHide(labels="none", k=2, noise=1.0, n=4, diameter=4.0, releases=4,
                     sampler="permutation")
    r = audit_mechanism(mech, delta=1e-2, trials=4000, seed=0, pair="search")
    shown = dict(r.search)
    assert any(e == float("-inf") for e in shown.values())
    assert "split" not in r.pair.description
    rows = r.to_dict()["pair_search"]
    assert any(row["search_epsilon"] is None and "not searched" in row["note"] for row in rows)
