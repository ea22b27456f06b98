"""Property tests for your own DP-InstaHide implementation (``docs/testing.md``).

Three pieces, for pytest and Hypothesis:

- :func:`mechanisms`: a Hypothesis strategy of small :class:`~dpaccount.events.InstaHide`
  mechanisms that an audit handles in a fraction of a second (few records, few releases,
  unlabelled records; the ``subsets`` sampler under substitution unless told otherwise);
- :func:`neighbouring_pairs`: a strategy of :class:`~dpaccount.audit.NeighbourPair` datasets
  within a mechanism's domain (the worst-case shape, and random placements);
- :func:`assert_within_bound`: audit a release function on one mechanism and pair
  (:func:`~dpaccount.audit.audit_mechanism`) and raise :class:`AssertionError`, with the
  counterexample, when the audit's verdict is a violation: its lower bound on epsilon exceeds
  the accountant's upper bound, or its certified errors refute the accountant's profile.
  :func:`within_bound_test` wires the three into one Hypothesis test.

The error budget is sound across the whole run: each audit holds at confidence ``1 - alpha /
examples`` (Bonferroni), so a *correct* implementation fails any of ``examples`` audits with
probability at most ``alpha``. ``examples`` must be at least the number of audits the test runs:
Hypothesis's ``max_examples`` (:func:`within_bound_test` sets both). The probability is over
the audits' seeds; with fixed seeds (``derandomize=True``) a run is repeatable, and a correct
implementation that fails is one of the at most ``alpha`` unlucky seed streams.

A release function is ``release_fn(dataset, trials, rng) -> array (trials, T, d)`` and must
draw all its randomness from ``rng`` (checked: :func:`dpaccount.audit.contract.check_release_fn`);
a *factory* ``factory(mechanism) -> release_fn`` builds one for each generated mechanism.

Hypothesis is imported only when a strategy or a test is built: ``import dpaccount.testing``
works without it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import InputError
from .events import InstaHide, Labels, Relation
from .samplers import sampler_type
from .validate import check_count, check_enum

__all__ = ["mechanisms", "neighbouring_pairs", "assert_within_bound", "within_bound_test",
           "PAIR_SHAPES"]

#: the shapes :func:`neighbouring_pairs` draws: ``worst`` (the audited record at the full
#: shift, every other record at 0, as in :func:`~dpaccount.audit.worst_case_pair` but spread
#: over d coordinates and placed at any row) and ``random`` (every record anywhere in the
#: non-negative L1 ball of radius shift/2, so that any two are within the shift)
PAIR_SHAPES = ("worst", "random")


def _int_range(name: str, value) -> tuple[int, int]:
    lo, hi = (value, value) if isinstance(value, numbers.Integral) else _pair(name, value)
    try:
        lo, hi = check_count(name, lo), check_count(name, hi)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive integer or a range (lo, hi) of them; got "
                         f"{value!r}") from None
    if hi < lo:
        raise InputError(f"{name} must be a range (lo, hi) with 1 <= lo <= hi; got {value!r}")
    return lo, hi


def _float_range(name: str, value) -> tuple[float, float]:
    lo, hi = (value, value) if isinstance(value, numbers.Real) else _pair(name, value)
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise InputError(f"{name} must be a positive finite number or a range (lo, hi) with "
                         f"0 < lo <= hi; got {value!r}")
    return lo, hi


def _pair(name: str, value):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise InputError(f"{name} must be a number or a range (lo, hi); got {value!r}")
    return value[0], value[1]


def _floats(lo: float, hi: float):
    from hypothesis import strategies as st

    return st.just(lo) if lo == hi else st.floats(lo, hi, allow_nan=False,
                                                   allow_infinity=False)


def mechanisms(*, k=(1, 3), n=(1, 6), noise=(0.5, 2.0), diameter=(0.5, 4.0), releases=(1, 3),
               samplers=("subsets",), relations=("substitution",)):
    """A Hypothesis strategy of small DP-InstaHide mechanisms (``labels="none"``: the image
    release, what an audit simulates).

    Every parameter is a value or an inclusive range ``(lo, hi)``: ``k`` records mixed, ``n``
    records (at least k, and k + 1 under add/remove, so that the smaller neighbour still holds
    k), Laplace scale ``noise``, L1 ``diameter`` (also the record ``norm`` for the Poisson
    sampler), ``releases`` T. ``samplers`` and ``relations`` are the names to draw from;
    combinations no accountant covers (Poisson under substitution, permutation under add/remove)
    are left out, and none left is refused. The defaults keep one audit of 2e4 trials per side
    well under a second."""
    from hypothesis import strategies as st

    k_lo, k_hi = _int_range("k", k)
    n_lo, n_hi = _int_range("n", n)
    t_lo, t_hi = _int_range("releases", releases)
    b = _float_range("noise", noise)
    dia = _float_range("diameter", diameter)
    if isinstance(samplers, str) or isinstance(relations, str):
        raise InputError(f"samplers and relations must be sequences of names; got "
                         f"{samplers!r}, {relations!r}")
    names = [sampler_type(s).sampler.value for s in samplers]
    rels = [check_enum(Relation, "relations entry", r) for r in relations]
    combos = []
    for s in names:
        for r in rels:
            extra = 1 if r is Relation.ADD_REMOVE else 0
            if r.value in sampler_type(s).relations and k_lo + extra <= n_hi:
                combos.append((s, r, extra))
    if not combos:
        raise InputError(f"no sampler and relation of samplers={list(samplers)!r}, "
                         f"relations={list(relations)!r} is covered with k >= {k_lo} and n <= "
                         f"{n_hi} (poisson is add_remove only, permutation substitution only; "
                         "add_remove needs n >= k + 1)")

    @st.composite
    def build(draw):
        s, r, extra = draw(st.sampled_from(combos))
        k_ = draw(st.integers(k_lo, min(k_hi, n_hi - extra)))
        n_ = draw(st.integers(max(n_lo, k_ + extra), n_hi))
        d_ = draw(_floats(*dia))
        return InstaHide(k=k_, noise=draw(_floats(*b)), n=n_, diameter=d_,
                         releases=draw(st.integers(t_lo, t_hi)), sampler=s, relation=r,
                         labels="none", norm=d_ if sampler_type(s).uses_norm else None)

    return build()


def neighbouring_pairs(mechanism: InstaHide, *, dim=(1, 2), shapes=PAIR_SHAPES):
    """A Hypothesis strategy of neighbouring datasets for ``mechanism``, all within the domain
    its bound covers (:func:`~dpaccount.audit.simulate.check_pair_against` accepts every one).

    ``d`` holds the mechanism's N records of dimension ``dim`` (a value or a range); ``d_prime``
    replaces the audited record (substitution) or lacks it (add/remove). ``shapes``
    (:data:`PAIR_SHAPES`): ``worst``, the audited record with L1 norm exactly the mechanism's
    shift (diameter, or norm for Poisson), spread over the coordinates, every other record and
    its replacement at 0; ``random``, every record (and the replacement) anywhere in the
    non-negative L1 ball of radius shift/2, so that any two records are within the diameter.
    The audited record sits at any row. Pairs whose two datasets have the same mean are left
    out (the projection statistic has no direction for them, and refuses them)."""
    from hypothesis import strategies as st

    from .audit.simulate import NeighbourPair

    if not isinstance(mechanism, InstaHide):
        raise InputError(f"mechanism must be an InstaHide; got {type(mechanism).__name__}")
    d_lo, d_hi = _int_range("dim", dim)
    if isinstance(shapes, str) or not shapes or any(s not in PAIR_SHAPES for s in shapes):
        raise InputError(f"shapes must be a non-empty sequence of {PAIR_SHAPES}; got {shapes!r}")
    add_remove = mechanism.relation is Relation.ADD_REMOVE
    n, shift = mechanism.n, mechanism.shift
    if add_remove and n < 2:
        raise InputError(f"add/remove pairs need n >= 2 (d_prime would be empty); got n={n}")
    unit = st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False)

    @st.composite
    def build(draw):
        dim_ = draw(st.integers(d_lo, d_hi))
        shape = draw(st.sampled_from(tuple(shapes)))
        row = draw(st.integers(0, n - 1))

        def coords():
            return np.array(draw(st.lists(unit, min_size=dim_, max_size=dim_)))

        if shape == "worst":
            w = coords()
            if w.sum() == 0:
                w[0] = 1.0
            x = shift * w / w.sum()
            others, x_prime = np.zeros((n - 1, dim_)), np.zeros(dim_)
            what = (f"worst-case shape: the audited record (row {row}) at L1 norm {shift:g}, "
                    f"the other {n - 1} records at 0")
        else:
            radius = shift / 2

            def point():
                u = coords() * radius
                total = u.sum()
                return u * (radius / total) if total > radius else u

            others = np.array([point() for _ in range(n - 1)]).reshape(n - 1, dim_)
            x, x_prime = point(), point()
            what = (f"random placement: every record in the non-negative L1 ball of radius "
                    f"{radius:g}, the audited one at row {row}")
        d = np.insert(others, row, x, axis=0)
        dp = others if add_remove else np.insert(others, row, x_prime, axis=0)
        return NeighbourPair(d, dp, mechanism.relation,
                             description=f"{what}, {dim_}-D, {mechanism.relation.value}")

    def distinct_means(pair) -> bool:
        gap = pair.d.mean(0) - pair.d_prime.mean(0)
        return float(np.abs(gap).sum()) > 1e-9 * shift

    return build().filter(distinct_means)


def _budget(alpha, examples) -> tuple[float, int]:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        a = math.nan
    if not (0.0 < a < 1.0):
        raise InputError(f"alpha (the false-alarm budget of the whole test) must be in (0, 1); "
                         f"got {alpha!r}")
    return a, check_count("examples", examples)


def _describe_mechanism(m: InstaHide) -> str:
    """The mechanism as the call that builds it (for a counterexample)."""
    norm = "" if m.norm is None else f", norm={m.norm!r}"
    return (f"InstaHide(k={m.k}, noise={m.noise!r}, n={m.n}, diameter={m.diameter!r}, "
            f"releases={m.releases}, sampler={m.sampler.value!r}, relation="
            f"{m.relation.value!r}, labels={m.labels.value!r}{norm})")


def _describe_arrays(pair) -> str:
    if pair.d.size > 40:
        return f"d of shape {pair.d.shape}, d_prime of shape {pair.d_prime.shape}"
    fmt = dict(precision=6, separator=", ", max_line_width=10**6)
    return (f"d = {np.array2string(pair.d, **fmt)}, "
            f"d_prime = {np.array2string(pair.d_prime, **fmt)}").replace("\n", "")


def assert_within_bound(release_fn, mechanism: InstaHide, pair=None, *, delta: float,
                        trials: int, alpha: float = 0.05, examples: int = 1, seed: int = 0,
                        statistic=None):
    """Audit ``release_fn`` as an implementation of ``mechanism`` on ``pair`` (default: the
    worst case, :func:`~dpaccount.audit.worst_case_pair`) and raise :class:`AssertionError`
    naming the counterexample (mechanism, pair, lower and upper bound, method) when the audited
    lower bound on epsilon at ``delta`` exceeds the accountant's upper bound, or its certified
    errors refute the accountant's privacy profile (the audit's verdict ``violation``). Returns
    the :class:`~dpaccount.audit.run.MechanismAudit` otherwise (its ``verdict`` says whether the
    audit could have shown a violation by a factor 2 at all).

    ``release_fn`` is a release function ``(dataset, trials, rng) -> (trials, T, d)`` or a
    factory ``(mechanism) -> release function``; it must draw all its randomness from ``rng``
    (checked before the audit). ``trials`` runs per side. The audit holds at confidence ``1 -
    alpha / examples``: run at most ``examples`` of these assertions in one test (Hypothesis's
    ``max_examples``) and a correct implementation fails any of them with probability at most
    ``alpha``. ``statistic`` is the audit's: None (default) takes the audit's default for an
    implementation other than the reference, the strongest black-box statistic
    (``"learned-llr"``, which assumes nothing of the implementation); ``"projection"``,
    ``"exact-llr"`` or a callable also work. Bad arguments are refused with
    :class:`~dpaccount.errors.InputError`, never an AssertionError.
    """
    from .audit.contract import as_release_fn
    from .audit.run import audit_mechanism

    if not isinstance(mechanism, InstaHide):
        raise InputError(f"mechanism must be an InstaHide; got {type(mechanism).__name__}")
    if mechanism.labels is not Labels.NONE:
        raise InputError(f"the audit simulates unlabelled records: give the mechanism with "
                         f"labels='none'; got labels {mechanism.labels.value!r}")
    a, m = _budget(alpha, examples)
    confidence = 1.0 - a / m
    fn = as_release_fn(release_fn, mechanism, name="release_fn")
    res = audit_mechanism(mechanism, delta=delta, trials=trials, confidence=confidence,
                          seed=seed, pair=pair, release_fn=fn, statistic=statistic)
    if res.verdict == "violation":
        p = res.pair
        if res.exceeds_upper_bound:
            what = (f"audited epsilon >= {res.epsilon_lower_bound:.6g} (lower bound, confidence "
                    f"{confidence:.6g} = 1 - {a:g}/{m}) > epsilon <= "
                    f"{res.epsilon_upper_bound:.6g} (upper bound, method {res.accountant}) at "
                    f"delta {res.delta:g}")
        else:  # the other certificate: the errors refute the accountant's whole profile
            pc = res.test.profile
            what = (f"at eps {pc.epsilon:.6g} the certified errors force delta >= "
                    f"{pc.delta_shown:.6g} (confidence {confidence:.6g} = 1 - {a:g}/{m}) where "
                    f"the accountant ({res.accountant}) claims delta <= {pc.delta_claimed:.6g}; "
                    f"audited epsilon >= {res.epsilon_lower_bound:.6g} against <= "
                    f"{res.epsilon_upper_bound:.6g} at delta {res.delta:g}")
        raise AssertionError(
            f"implementation {res.implementation!r} exceeds the accountant's bound: {what}.\n"
            f"mechanism: {_describe_mechanism(mechanism)}\n"
            f"pair: {p.description or 'user supplied'} (L1 change {p.l1_distance:g}); "
            f"{_describe_arrays(p)}\n"
            f"audit: {res.statistic} statistic, threshold by {res.test.selection}, {res.trials} "
            f"trials per side, seed {res.seed}; false positives {res.test.false_pos}/"
            f"{res.test.negatives}, false negatives {res.test.false_neg}/{res.test.positives}.\n"
            f"A correct implementation fails one of {m} such audits with probability at most "
            f"{a:g}: the implementation (or the accountant) is wrong.")
    return res


def within_bound_test(release_fn_factory, *, mechanism_strategy=None, pairs=None,
                      delta: float = 1e-3, trials: int = 20_000, alpha: float = 0.05,
                      max_examples: int = 10, statistic=None):
    """A Hypothesis test, ready for pytest to collect (``test_mine = within_bound_test(...)``),
    that draws a mechanism (``mechanism_strategy``, default :func:`mechanisms`), a pair
    (``pairs(mechanism)``, default :func:`neighbouring_pairs`) and a seed, and runs
    :func:`assert_within_bound` on ``release_fn_factory(mechanism)``.

    ``release_fn_factory`` takes the mechanism and returns its release function (the mechanisms
    vary, so a fixed release function is refused). The test runs at most ``max_examples``
    audits, each at confidence ``1 - alpha / max_examples``: a correct implementation fails the
    test with probability at most ``alpha``. Its settings are fixed so that the count holds
    (they override any profile): ``max_examples``, no example database (no replayed examples
    beyond the count), ``derandomize=True`` (the same examples and seeds on every run), no
    deadline. After a failure Hypothesis shrinks the counterexample; that reruns audits but
    changes nothing: the test has failed already."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from .audit.contract import release_fn_kind

    if release_fn_kind(release_fn_factory, name="release_fn_factory") != "factory":
        raise InputError("release_fn_factory must take the mechanism and return its release "
                         "function (factory(mechanism) -> release(dataset, trials, rng)); got a "
                         "release function, which cannot follow the generated mechanisms")
    a, m = _budget(alpha, max_examples)
    mech_st = mechanisms() if mechanism_strategy is None else mechanism_strategy
    pair_st = neighbouring_pairs if pairs is None else pairs

    @settings(max_examples=m, database=None, derandomize=True, deadline=None,
              phases=(Phase.explicit, Phase.generate, Phase.shrink),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(st.data())
    def test_within_bound(data):
        mech = data.draw(mech_st, label="mechanism")
        pair = data.draw(pair_st(mech), label="pair")
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        assert_within_bound(release_fn_factory, mech, pair, delta=delta, trials=trials,
                            alpha=a, examples=m, seed=seed, statistic=statistic)

    return test_within_bound
