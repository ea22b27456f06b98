"""Soundness against the truth: no accountant may print an epsilon whose true delta, on any
concrete pair of small datasets, exceeds the target.

The truth is :class:`dpaccount.exact.ConcreteProfile` (quadrature of the concrete mixture, rounded
down onto a fine grid and composed by FFT: a lower bound on the concrete pair's delta, independent
of the accountants' code). The search is adversarial over where the other records sit (ends,
middle, anywhere in [0, 1]), over public class labels (the soft label is released), N <= 6,
T <= 10 and delta down to 1e-6, and it is shown to have the power to find the flaw of the pair
used before (``test_the_search_finds_the_old_pair_unsound``).
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from dpaccount import InstaHide
from dpaccount.exact import ConcreteProfile
from dpaccount.accountants import ACCOUNTANTS, PLDAccountant
from dpaccount.accountants.pld import attained_laws
from dpaccount.numerics.lattice import LossComposition


def pld_result(mech, delta):
    return PLDAccountant().row(mech, delta)

#: the concrete lower bound already allows for its own error (3e-5 relative + 1e-9 for quadrature
#: and FFT round-off); a violation is any excess over delta beyond double rounding
SLACK = 1e-12

POSITION = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))


@st.composite
def concrete_cases(draw, labelled=None):
    """Adversarial where it matters: the changed record usually jumps across the whole domain
    (the largest L1 change), the other records often share one position (an end, the middle,
    anywhere) and otherwise sit anywhere; labels, when drawn, often leave the record alone in
    its class."""
    n = draw(st.integers(2, 6))
    k = draw(st.integers(1, n))
    b = draw(st.floats(0.15, 3.0))
    releases = draw(st.integers(1, 10))
    delta = 10.0 ** draw(st.floats(-6.0, -0.5))
    if draw(st.booleans()):
        x, x_new = draw(st.sampled_from([(0.0, 1.0), (1.0, 0.0)]))
    else:
        x, x_new = draw(POSITION), draw(POSITION)
    if draw(st.booleans()):
        others = [draw(POSITION)] * (n - 1)
    else:
        others = draw(st.lists(POSITION, min_size=n - 1, max_size=n - 1))
    labels = None
    if labelled if labelled is not None else draw(st.booleans()):
        rest = draw(st.lists(st.integers(0, 2), min_size=n - 1, max_size=n - 1))
        own = draw(st.integers(0, 3))  # 3: a class of its own
        labels = [own] + rest
    return n, k, b, releases, delta, [x] + others, [x_new] + others, labels


def _mechanism(n, k, b, releases, labels):
    if labels is None:
        return InstaHide(k=k, noise=b, n=n, diameter=1.0, releases=releases, labels="none")
    sizes = [int(c) for c in np.bincount(labels) if c > 0]
    return InstaHide(k=k, noise=b, n=n, diameter=1.0, releases=releases, labels="soft",
                     class_sizes=sizes)


def accountant_epsilons(mech, delta):
    """Every whole-run upper bound dpaccount prints for ``mech`` at ``delta``: each accountant's
    (basic, advanced, KOV, RDP, PLD), through the accountant interface."""
    out = {}
    for acc in ACCOUNTANTS:
        row = acc.row(mech, delta)
        if row.epsilon is not None:
            out[row.method] = row.epsilon
    return out


def accountant_profiles(mech):
    """The accountants' whole privacy profiles, eps -> upper bound on delta: PLD, RDP, KOV."""
    return {acc.method: (lambda e, acc=acc: acc.delta(mech, e).delta) for acc in ACCOUNTANTS
            if acc.method in ("pld", "rdp", "kov") and acc.supports(mech) is None}


def _plain(mech):
    return InstaHide(k=mech.k, noise=mech.noise, n=mech.n, diameter=mech.diameter,
                     releases=mech.releases, labels="none")


def old_pair_epsilons(mech, delta):
    """What dpaccount printed before: the pair with the other records at the replacement's
    value (attained for one release), both directions, q = k/N, labels ignored."""
    plain = _plain(mech)
    return {"old pld": LossComposition(attained_laws(plain), mech.releases).epsilon(delta)[1]}


def old_pair_profiles(mech):
    acc = LossComposition(attained_laws(_plain(mech)), mech.releases)
    return {"old pld": lambda e: acc.delta(e)[1]}


def check_case(case, epsilons, profiles):
    """At the case's delta, every printed epsilon; and along the whole profile (every eps where
    the concrete delta is between 1e-6 and 0.5), every accountant's delta: none may fall below
    the concrete pair's."""
    n, k, b, releases, delta, d, d_prime, labels = case
    mech = _mechanism(n, k, b, releases, labels)
    truth = ConcreteProfile(d, d_prime, k, b, releases, labels, points=1 << 18)
    for method, eps in epsilons(mech, delta).items():
        lower, _ = truth.delta_bounds(eps)
        assert lower <= delta + SLACK, (
            f"{method} says epsilon {eps:.6g} at delta {delta:.3g}, but the concrete pair "
            f"needs delta >= {lower:.6g} there: {case}")
    grid = [e for e in np.linspace(0.0, releases * k / (k * b) + 1e-9, 48)
            if 1e-6 <= truth.delta_bounds(e)[0] <= 0.5]
    for method, prof in profiles(mech).items():
        for e in grid:
            lower, _ = truth.delta_bounds(e)
            bound = prof(e)
            assert lower <= bound + SLACK, (
                f"{method} says delta {bound:.6g} at epsilon {e:.6g}, but the concrete pair "
                f"needs delta >= {lower:.6g} there: {case}")


# the three reproductions of the soundness issue, kept as explicit examples
REGRESSIONS = [
    (6, 1, 2.0, 3, 0.0105, [0.0] + [0.5] * 5, [1.0] + [0.5] * 5, None),
    (2, 1, 1.0, 2, 0.128, [0.0, 0.5], [1.0, 0.5], None),
    (5, 3, 0.25, 2, 0.206, [0.0] + [0.5] * 4, [1.0] + [0.5] * 4, None),
]


@given(concrete_cases())
@example(REGRESSIONS[0])
@example(REGRESSIONS[1])
@example(REGRESSIONS[2])
@example((4, 2, 1.0, 3, 1e-3, [0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0, 1, 1, 1]))
def test_no_concrete_pair_exceeds_any_accountant(case):
    check_case(case, accountant_epsilons, accountant_profiles)


@pytest.mark.parametrize("case", REGRESSIONS)
def test_the_old_pair_fails_the_regressions(case):
    with pytest.raises(AssertionError, match="the concrete pair needs"):
        check_case(case, old_pair_epsilons, old_pair_profiles)


@pytest.mark.parametrize("labelled", [False, True], ids=["composition", "soft labels"])
def test_the_search_finds_the_old_pair_unsound(labelled):
    # the same strategy and example budget as the property above, without the explicit
    # examples: the search alone must find a pair above the old accountant, both through the
    # composition pitfall (unlabelled datasets) and through the released soft label
    @settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None,
              derandomize=True, database=None, report_multiple_bugs=False,
              phases=[Phase.generate])
    @given(concrete_cases(labelled=labelled))
    def search(case):
        check_case(case, old_pair_epsilons, old_pair_profiles)

    with pytest.raises(AssertionError, match="the concrete pair needs"):
        search()


# ---- the reproductions of the soundness issue, through the command line, against values
# computed independently (closed forms, scipy quadrature, dpaccount.exact)

def _pld_row(capsys, *flags):
    import json

    from dpaccount.cli import main

    assert main(["epsilon", *flags, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    return {r["method"]: r for r in out["results"]}


def test_soft_label_of_a_record_alone_in_its_class(capsys):
    # N = 4, k = 2, b = 1, Delta = 1, one release, the soft label released (the default; no
    # class sizes: a class of one). The label shows whether the record was drawn (probability
    # 1/2), and then the release is the Laplace mechanism with shift 1/2: the true profile is
    # delta(eps) = 0.5 (1 - e^{(eps - 0.5)/2}) for eps < 0.5 (closed form of the Laplace pair)
    rows = _pld_row(capsys, "--n", "4", "--k", "2", "--noise", "1", "--diameter", "1",
                    "--releases", "1", "--delta", "1e-5")
    truth = lambda e: 0.5 * max(0.0, 1 - math.exp((e - 0.5) / 2))  # noqa: E731
    for method in ("pld", "rdp", "kov", "basic"):
        eps = rows[method]["epsilon"]
        assert truth(eps) <= 1e-5, (method, eps)
    assert rows["pld"]["epsilon"] == pytest.approx(0.5 + 2 * math.log1p(-2e-5), rel=1e-6)
    # what was printed before, and is still right when no label ships
    none = _pld_row(capsys, "--n", "4", "--k", "2", "--noise", "1", "--diameter", "1",
                    "--releases", "1", "--delta", "1e-5", "--labels", "none")
    assert none["pld"]["epsilon"] == pytest.approx(0.2809, abs=1e-4)
    assert truth(none["pld"]["epsilon"]) == pytest.approx(0.0519, abs=1e-4)  # far above 1e-5


@pytest.mark.parametrize("n,k,b,T,delta,others", [
    (6, 1, 2.0, 3, 0.0105, [0.5] * 5),
    (2, 1, 1.0, 2, 0.128, [0.5]),
    (5, 3, 0.25, 2, 0.206, [0.5] * 4),
])
def test_composition_reproductions_meet_their_delta(capsys, n, k, b, T, delta, others):
    from dpaccount.exact import exact_delta

    rows = _pld_row(capsys, "--n", str(n), "--k", str(k), "--noise", str(b), "--diameter", "1",
                    "--releases", str(T), "--delta", str(delta), "--labels", "none")
    for method in ("pld", "rdp", "kov", "advanced", "basic"):
        eps = rows[method]["epsilon"]
        if eps is None:
            continue
        # exact_delta: quadrature good to ~1.4e-4 relative near the top atom; allow that
        got = exact_delta([0.0] + others, [1.0] + others, k, b, eps, T)
        assert got <= delta * (1 + 2e-4), (method, eps, got)
    # the lower end is reached by a concrete pair: the old bound, which the pair in the middle
    # exceeds
    old = rows["pld"]["epsilon_lower"]
    assert exact_delta([0.0] + others, [1.0] + others, k, b, old, T) > delta * 1.01


def test_poisson_add_remove_uses_the_record_norm(capsys):
    # pixels in [1, 2]: diameter 1, largest norm 2; adding a record moves the sum by 2, so one
    # release is P = 0.5 Lap(0,1) + 0.5 Lap(1,1) (shift 2/k) against Q = Lap(0,1)
    from scipy import integrate

    rows = _pld_row(capsys, "--image", "1x1", "--value-range", "1,2", "--k", "2", "--n", "4",
                    "--noise", "1", "--releases", "1", "--sampler", "poisson", "--relation",
                    "add_remove", "--delta", "1e-5", "--labels", "none")
    p = lambda z: 0.25 * math.exp(-abs(z)) + 0.25 * math.exp(-abs(z - 1))  # noqa: E731
    qd = lambda z: 0.5 * math.exp(-abs(z))  # noqa: E731

    def delta_at(eps):
        out = 0.0
        for a, c in ((p, qd), (qd, p)):
            f = lambda z: max(a(z) - math.exp(eps) * c(z), 0.0)  # noqa: E731
            out = max(out, sum(integrate.quad(f, lo, hi, epsabs=1e-15, limit=200)[0]
                               for lo, hi in ((-60, 0), (0, 1), (1, 60))))
        return out

    for method in ("pld", "rdp", "kov", "amplified"):
        assert delta_at(rows[method]["epsilon"]) <= 1e-5 * (1 + 1e-6), method
    assert rows["amplified"]["epsilon"] == pytest.approx(math.log(0.5 + 0.5 * math.e), rel=1e-12)
    assert delta_at(0.2809) > 1e-2  # the diameter's answer was far too small


def test_poisson_without_a_norm_is_refused(capsys):
    from dpaccount.cli import main

    assert main(["epsilon", "--diameter", "1", "--k", "2", "--n", "4", "--noise", "1",
                 "--releases", "1", "--sampler", "poisson", "--relation", "add_remove",
                 "--labels", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "norm" in err


@pytest.mark.parametrize("b,truth", [(4.0, 32.9), (2.0, 261.7)])
def test_digits_training_run_covers_the_reviewed_truth(b, truth):
    # the soundness review computed the true epsilon of the digits training run (N = 1438,
    # k = 4, 20 epochs, soft labels released, delta 1e-5) independently: 32.9 at b = 4 and
    # 261.7 at b = 2, where the accountant printed 15.47 and 166.8. The run's mechanism, as
    # `dpaccount train` describes it (the training split's class sizes), must be above them.
    sizes = [142, 146, 142, 146, 145, 146, 145, 143, 139, 144]
    mech = InstaHide(k=4, noise=b, n=1438, diameter=64.0, releases=20 * 1438, labels="soft",
                     class_sizes=sizes)
    row = pld_result(mech, 1e-5)
    assert row.epsilon >= truth
    assert row.lower <= row.epsilon
