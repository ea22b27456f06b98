"""Choosing among bounds, and composing phases.

The selector is checked against the rows it chooses from (the smallest upper bound, under its
own method's name; "tight" only under 1%), and composition against what composition must do:
two identical phases of T releases are one phase of 2T (each accountant's own arithmetic: sums
for the closed forms and RDP, convolution for the PLD), and more noise in a phase never costs.
"""

import math

import pytest

from dpaccount import InstaHide, compose, epsilon, tightest
from dpaccount.accountants import (ACCOUNTANTS, BasicAccountant, KOVAccountant, PLDAccountant,
                                   RDPAccountant, by_method, width_note)
from dpaccount.errors import InputError
from dpaccount.events import ComposedEvent


def run(**kw):
    base = dict(k=4, noise=1.0, n=1000, diameter=4.0, releases=300, labels="none")
    base.update(kw)
    return InstaHide(**base)


def test_tightest_is_the_smallest_row_under_its_own_name():
    m = run()
    table = epsilon(m, 1e-5)
    whole = [r for r in table.rows if r.releases == m.releases and r.epsilon is not None]
    best = min(whole, key=lambda r: r.epsilon)
    t = tightest(m, 1e-5)
    assert (t.method, t.epsilon) == (best.method, best.epsilon) == (table.tightest.method,
                                                                   table.tightest.epsilon)
    # the largest sound lower bound of any row (pld's and pld-tilted's bound the same truth)
    assert t.lower == min(max(r.lower for r in whole if r.lower is not None), t.epsilon)
    assert "smallest sound upper bound: " + t.method in t.note


def test_tight_is_said_only_under_one_percent():
    assert width_note(0.995, 1.0).endswith("(tight)")
    assert "tight" not in width_note(0.98, 1.0) and "2.00%" in width_note(0.98, 1.0)
    assert "unknown" in width_note(None, 1.0)
    # a wide interval (the digits example, eps0 = 16) states its width and is not "tight"
    digits = InstaHide.from_epochs(k=4, noise=1.0, n=1797, diameter=64.0, epochs=10,
                                   labels="none")
    t = tightest(digits, 1e-5)
    w = (t.epsilon - t.lower) / t.epsilon
    assert w > 0.01 and "tight" not in t.note and f"{w:.2%}" in t.note


def test_beyond_the_lattice_tightest_names_the_method_that_covers_it():
    m = run(k=1, noise=0.01, diameter=1.0, releases=10)  # eps0 = 100
    t = tightest(m, 1e-5)
    table = epsilon(m, 1e-5)
    assert table.row("pld").epsilon is None  # the lattice stops at eps0 = 30, and says so
    tilted = table.row("pld-tilted")
    assert tilted.epsilon is not None and tilted.lower <= tilted.epsilon
    assert t.method == min((r for r in table.rows if r.releases == m.releases
                            and r.epsilon is not None), key=lambda r: r.epsilon).method
    if t.lower is None:
        assert "unknown" in t.note


def test_two_identical_phases_are_one_phase_of_twice_the_releases():
    one, two = run(releases=600), compose(run(), run())
    assert isinstance(two, ComposedEvent) and two.releases == 600
    for acc in ACCOUNTANTS:
        a, b = acc.epsilon(one, 1e-5), acc.epsilon(two, 1e-5)
        if acc.method in ("pld", "pld-tilted"):
            # within the stated intervals: each upper end is above the other's lower end
            assert b.lower <= a.epsilon and a.lower <= b.epsilon
            assert b.epsilon == pytest.approx(a.epsilon, rel=1e-3)
        else:
            assert b.epsilon == pytest.approx(a.epsilon, rel=1e-12), acc.method
    assert tightest(two, 1e-5).epsilon == pytest.approx(tightest(one, 1e-5).epsilon, rel=1e-3)


def test_more_noise_in_a_phase_never_costs():
    b_then_2b = compose(run(), run(noise=2.0))
    b_then_b = compose(run(), run())
    for acc in ACCOUNTANTS:
        assert acc.epsilon(b_then_2b, 1e-5).epsilon <= acc.epsilon(b_then_b, 1e-5).epsilon
    assert tightest(b_then_2b, 1e-5).epsilon <= tightest(b_then_b, 1e-5).epsilon


def test_composition_arithmetic_of_each_accountant():
    a, b = run(), run(noise=2.0, k=2, releases=100)
    both = compose(a, b)
    # closed forms: units summed (basic), RDP summed per order
    assert BasicAccountant().epsilon(both, 1e-5).epsilon == pytest.approx(
        BasicAccountant().epsilon(a, 1e-5).epsilon + BasicAccountant().epsilon(b, 1e-5).epsilon,
        rel=1e-12)
    rdp = RDPAccountant()
    for order in (2, 8, 64):
        assert rdp.rdp(both, order) == pytest.approx(rdp.rdp(a, order) + rdp.rdp(b, order),
                                                     rel=1e-12)
    # KOV on different units bounds every unit at the largest, and says so
    kov = KOVAccountant().epsilon(both, 1e-5)
    assert "largest unit epsilon" in kov.note
    # the composition is above each phase alone, by every accountant
    for acc in ACCOUNTANTS:
        whole = acc.epsilon(both, 1e-5).epsilon
        assert whole >= max(acc.epsilon(a, 1e-5).epsilon, acc.epsilon(b, 1e-5).epsilon)


def test_pld_delta_of_a_composition_is_the_convolution():
    # delta(eps) of the two-phase PLD against a brute-force check: below the product bound
    # 1 - (1 - d_a)(1 - d_b) is not a valid identity, but delta of a composition is at least
    # each part's delta at eps (adding a phase can only add loss)
    a, b = run(releases=50), run(noise=0.5, releases=20)
    both = compose(a, b)
    pld = PLDAccountant()
    for eps in (0.5, 1.0, 2.0):
        d = pld.delta(both, eps)
        assert d.delta >= max(pld.delta(a, eps).lower, pld.delta(b, eps).lower)


def test_composed_events_are_validated():
    with pytest.raises(InputError, match="relation"):
        compose(run(), run(relation="add_remove"))
    with pytest.raises(InputError, match="labels"):
        compose(run(), run(labels="noised"))
    with pytest.raises(InputError, match="at least one"):
        ComposedEvent(())
    with pytest.raises(InputError, match="phases"):
        ComposedEvent("k=4")
    with pytest.raises(InputError, match="method"):
        by_method("nope")
    # nested compositions flatten
    assert len(compose(compose(run(), run()), run()).phases) == 3


def test_bad_deltas_and_epsilons_are_refused_by_name():
    for bad in (0.0, 1.0, math.nan, -1.0):
        with pytest.raises(InputError, match="delta"):
            tightest(run(), bad)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(InputError, match="epsilon"):
            KOVAccountant().delta(run(), bad)
