"""Mechanism audits end to end: the issue's acceptance numbers, soundness over generated
configurations, broken implementations caught, resumable runs, and the CLI."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpaccount.audit import InstaHideReleases, audit_mechanism, worst_case_pair
from dpaccount.audit.run import accountant_region
from dpaccount.audit.contract import PROBE_TRIALS
from dpaccount.events import InstaHide

from ..conftest import assert_usage_error, run_cli

# q = k/N = 0.5, eps0 = Delta/(k b) = 2: eps1 = log(1 + 0.5 (e^2 - 1)) = 1.4338
ONE = dict(k=2, noise=1.0, n=4, diameter=4.0)
EPS1 = math.log1p(0.5 * math.expm1(2.0))


def test_one_release_meets_eps1():
    """Acceptance: one release, 1e6 trials per side, 95%: audit / accountant >= 0.95."""
    mech = InstaHide(labels="none", releases=1, **ONE)
    r = audit_mechanism(mech, delta=1e-5, trials=10**6, seed=1)
    assert r.epsilon_upper_bound == pytest.approx(EPS1, rel=1e-3)  # the tight PLD row
    assert r.ratio >= 0.95, r.summary()
    assert r.epsilon_lower_bound <= r.ceiling


def test_ten_releases_reach_the_tight_pld_value():
    """Acceptance: T = 10, delta = 1e-2, 1e6 trials per side, threshold chosen on a split:
    audit / tight PLD >= 0.8."""
    mech = InstaHide(labels="none", releases=10, **ONE)
    r = audit_mechanism(mech, delta=1e-2, trials=10**6, seed=2)
    assert r.test.selection == "split"
    assert r.accountant.startswith("pld")
    assert r.ratio >= 0.8, r.summary()
    assert not r.exceeds_upper_bound


def _configs():
    samplers = st.sampled_from([("subsets", "substitution"), ("subsets", "add_remove"),
                                ("permutation", "substitution"), ("poisson", "add_remove")])
    return st.tuples(samplers, st.integers(1, 3), st.integers(0, 4),
                     st.floats(0.25, 4.0), st.integers(1, 6),
                     st.sampled_from([1e-1, 1e-2, 1e-3]), st.integers(0, 2**31 - 1))


def test_audit_never_exceeds_the_accountant():
    """Soundness over Hypothesis-generated configurations (sampler, k, N, eps0, T, delta, seed).

    Each audit is a 95% statement, so up to about 5% of them may exceed the upper bound by
    chance; more than that is a bug in the audit, the simulator or the accountant. Binomial(40,
    0.05) exceeds 7 with probability < 1e-3. (Measured over 200 configurations: see
    docs/audit.md.)"""
    seen = []

    @settings(max_examples=40, derandomize=True, database=None)
    @given(_configs())
    def run(cfg):
        (sampler, relation), k, extra, eps0, t, delta, seed = cfg
        n = k + extra + (1 if relation == "add_remove" else 0)
        mech = InstaHide(labels="none", k=k, noise=1.0, n=n, diameter=eps0 * k, releases=t,
                         sampler=sampler, relation=relation,
                         norm=eps0 * k if sampler == "poisson" else None)
        r = audit_mechanism(mech, delta=delta, trials=20000, seed=seed)
        seen.append(r.exceeds_upper_bound)
        # far above the bound is no chance event: at most the ceiling, and not 20% over
        assert r.epsilon_lower_bound <= 1.2 * r.epsilon_upper_bound + 0.05, r.summary()

    run()
    assert len(seen) >= 40
    assert sum(seen) <= 7, f"{sum(seen)} of {len(seen)} audits exceeded the upper bound"


@pytest.mark.parametrize("name,broken", [
    ("weights 0.8/0.2 instead of 1/2", dict(weights=(0.8, 0.2))),
    ("noise b/2", dict(noise=0.5)),
    ("record reused (k-subsets with replacement)", dict(replace=True)),
])
def test_broken_mechanisms_are_flagged(name, broken):
    """Acceptance: each broken implementation's audited lower bound exceeds the epsilon that the
    accountant claims for the correct mechanism (one release, eps1 = 1.434)."""
    mech = InstaHide(labels="none", releases=1, **ONE)
    args = dict(k=2, noise=1.0, releases=1)
    args.update(broken)
    fn = InstaHideReleases(**args)
    # audited as a black box: the projection statistic knows nothing of the implementation
    r = audit_mechanism(mech, delta=1e-5, trials=200_000, seed=3, release_fn=fn,
                        statistic="projection")
    assert r.exceeds_upper_bound, f"{name}: {r.summary()}"
    assert r.verdict == "violation" and r.to_dict()["verdict"] == "violation"
    # the faithful implementation, same seed, trials and statistic, is not flagged
    ok = audit_mechanism(mech, delta=1e-5, trials=200_000, seed=3, statistic="projection")
    assert not ok.exceeds_upper_bound and ok.verdict == "consistent"
    assert r.epsilon_lower_bound > ok.epsilon_lower_bound


def test_a_user_callable_plugs_in():
    """Any callable (dataset, trials, rng) -> (trials, T, d) is audited the same way."""
    mech = InstaHide(labels="none", releases=2, **ONE)

    def mine(dataset, trials, rng):
        out = np.empty((trials, 2, 1))
        for t in range(2):
            idx = np.argsort(rng.random((trials, dataset.shape[0])), axis=1)[:, :2]
            out[:, t] = dataset[idx].mean(1) + rng.laplace(0, 1.0, (trials, 1))
        return out

    r = audit_mechanism(mech, delta=1e-3, trials=20000, release_fn=mine,
                        statistic="projection")
    assert r.implementation == "mine"
    assert 0 < r.epsilon_lower_bound <= r.epsilon_upper_bound

    def wrong(dataset, trials, rng):
        return np.zeros((trials, 3))

    with pytest.raises(ValueError, match="expected"):
        audit_mechanism(mech, delta=1e-3, trials=100, release_fn=wrong)


def test_bonferroni_selection_uses_the_llr_range():
    mech = InstaHide(labels="none", releases=3, **ONE)
    r = audit_mechanism(mech, delta=1e-2, trials=50000, selection="bonferroni")
    assert r.test.selection == "bonferroni" and r.test.candidates == 200
    assert 0 < r.epsilon_lower_bound <= r.epsilon_upper_bound


class _Interrupt(Exception):
    pass


def test_interrupted_run_resumes_without_losing_trials(tmp_path):
    mech = InstaHide(labels="none", releases=200, **ONE)  # 2621 trials per block: 8 blocks per side
    ref = audit_mechanism(mech, delta=1e-2, trials=20000, seed=5)
    faithful = InstaHideReleases.from_mechanism(mech)
    calls = []
    fail = [True]

    def flaky(dataset, trials, rng):
        if trials == PROBE_TRIALS:  # the rng-contract probe, before any block
            return faithful(dataset, trials, rng)
        calls.append(trials)
        if fail[0] and len(calls) == 5:
            raise _Interrupt  # as if the run were killed during the fifth block
        return faithful(dataset, trials, rng)

    store = tmp_path / "audit"
    with pytest.raises(_Interrupt):
        audit_mechanism(mech, delta=1e-2, trials=20000, seed=5, store=store, release_fn=flaky,
                        implementation=faithful.describe(), statistic="exact-llr")
    done = sorted(p.name for p in store.glob("scores-*.npy"))
    assert len(done) == 4 and not list(store.glob(".tmp-*"))
    calls.clear()
    fail[0] = False
    r = audit_mechanism(mech, delta=1e-2, trials=20000, seed=5, store=store, release_fn=flaky,
                        implementation=faithful.describe(), statistic="exact-llr")
    assert len(calls) == 16 - 4  # only the missing blocks were simulated
    assert r.epsilon_lower_bound == ref.epsilon_lower_bound
    assert r.test == ref.test
    saved = json.loads((store / "result.json").read_text())
    assert saved["epsilon_lower_bound"] == r.epsilon_lower_bound
    # a different audit refuses the store instead of mixing results
    with pytest.raises(ValueError, match="different audit.*seed"):
        audit_mechanism(mech, delta=1e-2, trials=20000, seed=6, store=store)
    # a damaged block is recomputed, not trusted
    first = sorted(store.glob("scores-d-*.npy"))[0]
    first.write_bytes(b"garbage")
    again = audit_mechanism(mech, delta=1e-2, trials=20000, seed=5, store=store)
    assert again.epsilon_lower_bound == ref.epsilon_lower_bound


def test_more_trials_reuse_finished_blocks(tmp_path):
    mech = InstaHide(labels="none", releases=200, **ONE)
    a = audit_mechanism(mech, delta=1e-2, trials=5000, seed=9, store=tmp_path)
    n_before = len(list(tmp_path.glob("scores-*.npy")))
    b = audit_mechanism(mech, delta=1e-2, trials=12000, seed=9, store=tmp_path)
    assert len(list(tmp_path.glob("scores-*.npy"))) > n_before
    assert a.trials == 5000 and b.trials == 12000


def test_accountant_region_is_the_dp_inequality():
    reg = accountant_region(1.0, 0.01, points=11)
    for a, b in zip(reg["fpr"], reg["fnr"]):
        assert b + math.e * a >= 0.99 - 1e-12 or b == 0
        assert a + math.e * b >= 0.99 - 1e-12 or b == 0 or a >= 0.99


@pytest.mark.parametrize("kwargs,match", [
    (dict(delta=0.0), "delta"),
    (dict(delta=1e-3, confidence=0.0), "confidence"),
    (dict(delta=1e-3, trials=1), "trials"),
    (dict(delta=1e-3, seed=-1), "seed"),
    (dict(delta=1e-3, statistic="magic"), "statistic"),
])
def test_audit_refuses_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        audit_mechanism(InstaHide(labels="none", releases=1, **ONE), **kwargs)


# ---------------------------------------------------------------- CLI

def test_cli_audit_json_contract(tmp_path):
    png = tmp_path / "region.png"
    p = run_cli("audit", "mechanism", "--trials", "20000", "--json", "--plot", str(png))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for key in ("epsilon_lower_bound", "epsilon_upper_bound", "ceiling", "delta", "relation",
                "sampler", "method", "confidence", "trials_per_side"):
        assert key in out
    assert out["delta"] == 1e-2 and out["bound"] == "lower"
    assert 0 < out["epsilon_lower_bound"] <= min(out["epsilon_upper_bound"], out["ceiling"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_audit_text_names_everything():
    p = run_cli("audit", "mechanism", "--trials", "5000", "--releases", "2", "--sampler",
                "permutation")
    assert p.returncode == 0, p.stderr
    # the bound is the tightest row's, named: pld-tilted (the Laplace pair of a partial epoch,
    # its slot count revealed) below kov (which charges the partial epoch whole)
    for word in ("lower bound", "upper bound", "ceiling", "delta", "permutation",
                 "substitution", "method pld-tilted"):
        assert word in p.stdout


def test_cli_audit_pair_file(tmp_path):
    f = tmp_path / "pair.npz"
    d = np.zeros((4, 2))
    d[0] = [2.0, 2.0]
    np.savez(f, d=d, d_prime=np.zeros((4, 2)))
    p = run_cli("audit", "mechanism", "--trials", "5000", "--pair", str(f), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["pair"]["dim"] == 2


@pytest.mark.parametrize("args,match", [
    (["--noise", "-1"], "noise"),
    (["--noise", "nan"], "noise"),
    (["--k", "5"], "k must be at most n"),
    (["--delta", "1.5"], "delta"),
    (["--confidence", "1"], "confidence"),
    (["--trials", "0"], "trials"),
    (["--seed", "-3"], "seed"),
    (["--plot", "out.jpg"], "png"),
    (["--pair", "/nonexistent/p.npz"], "does not exist"),
    (["--trials", "10000000000", "--releases", "100"], "lower --trials"),
])
def test_cli_audit_bad_input_is_one_line(args, match, tmp_path):
    assert_usage_error(run_cli("audit", "mechanism", *args), match)


def test_cli_audit_malformed_pair_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    lacks = tmp_path / "lacks.npz"
    np.savez(lacks, d=np.zeros((3, 1)))
    twice = tmp_path / "twice.npz"
    np.savez(twice, d=np.ones((3, 1)), d_prime=np.zeros((3, 1)))
    for f, match in ((bad, "not a readable"), (lacks, "d_prime"), (twice, "at most one")):
        p = run_cli("audit", "mechanism", "--pair", str(f), "--trials", "100")
        assert p.returncode == 2 and match in p.stderr and "Traceback" not in p.stderr
    # the failed runs left no plot or store behind
    assert not list(tmp_path.glob("*.png"))


def test_worst_case_pair_is_where_the_accountant_is_attained():
    """The exact LLR test on the worst-case pair beats the same test on a milder pair (the
    changed record at half the diameter)."""
    mech = InstaHide(labels="none", releases=1, **ONE)
    wc = audit_mechanism(mech, delta=1e-5, trials=100_000, seed=4)
    pair = worst_case_pair(mech)
    from dpaccount.audit import NeighbourPair

    mild = NeighbourPair(pair.d / 2, pair.d_prime, "substitution")
    r = audit_mechanism(mech, delta=1e-5, trials=100_000, seed=4, pair=mild)
    assert r.epsilon_lower_bound < wc.epsilon_lower_bound


def test_cli_audit_progress_bar_goes_to_stderr(tmp_path):
    p = run_cli("audit", "mechanism", "--trials", "300000", "--progress", "--json",
                "--store", str(tmp_path / "s"))
    assert p.returncode == 0, p.stderr
    assert "trial" in p.stderr  # tqdm's bar, unit "trial"
    json.loads(p.stdout)  # stdout stays pure JSON
    assert (tmp_path / "s" / "result.json").exists()


def test_a_pair_outside_the_mechanisms_domain_or_size_is_refused(tmp_path):
    # auditing a pair the bound does not describe would flag a correct mechanism: a change of
    # L1 2 against a diameter of 1, or 5 records against n = 4, is refused by name
    from dpaccount.audit import NeighbourPair

    mech = InstaHide(labels="none", k=2, noise=1.0, n=4, diameter=1.0, releases=2)
    far = NeighbourPair(np.array([[2.0], [0], [0], [0]]), np.zeros((4, 1)), "substitution")
    with pytest.raises(ValueError, match="diameter is 1"):
        audit_mechanism(mech, delta=1e-2, trials=100, pair=far)
    big = NeighbourPair(np.array([[1.0], [0], [0], [0], [0]]), np.zeros((5, 1)), "substitution")
    with pytest.raises(ValueError, match="n=4"):
        audit_mechanism(mech, delta=1e-2, trials=100, pair=big)
    # within the domain (the change exactly the diameter, in two coordinates): accepted
    inside = NeighbourPair(np.array([[0.5, 0.5], [0, 0], [0, 0], [0, 0]]), np.zeros((4, 2)),
                           "substitution")
    assert audit_mechanism(mech, delta=1e-2, trials=200, pair=inside).epsilon_lower_bound >= 0
    # add/remove: Poisson by the added record's norm; fixed-size subsets by its distance to
    # every other record (the coupling swaps it for one of them)
    poi = InstaHide(labels="none", k=2, noise=1.0, n=4, diameter=1.0, releases=2,
                    sampler="poisson", relation="add_remove", norm=1.0)
    heavy = NeighbourPair(np.array([[1.5], [0], [0], [0]]), np.zeros((3, 1)), "add_remove")
    with pytest.raises(ValueError, match="norm is 1"):
        audit_mechanism(poi, delta=1e-2, trials=100, pair=heavy)
    sub_ar = InstaHide(labels="none", k=2, noise=1.0, n=4, diameter=1.0, releases=2,
                       relation="add_remove")
    spread = NeighbourPair(np.array([[1.0], [0.5], [-0.5], [0]]),
                           np.array([[0.5], [-0.5], [0]]), "add_remove")
    with pytest.raises(ValueError, match="distance up to 1.5"):
        audit_mechanism(sub_ar, delta=1e-2, trials=100, pair=spread)
    # the CLI: one line, before any simulation; without --n, N is the pair's
    path = tmp_path / "far.npz"
    np.savez(path, d=far.d, d_prime=far.d_prime)
    assert_usage_error(run_cli("audit", "mechanism", "--pair", path, "--diameter", "1",
                               "--k", "2", "--releases", "2", "--trials", "100"), "diameter")
    five = tmp_path / "five.npz"
    np.savez(five, d=np.array([[4.0], [0], [0], [0], [0]]), d_prime=np.zeros((5, 1)))
    out = run_cli("audit", "mechanism", "--pair", five, "--trials", "1000", "--json",
                  check=True)
    assert json.loads(out.stdout)["mechanism"]["n"] == 5


def test_an_audit_that_cannot_fit_in_memory_is_refused_before_simulating(monkeypatch):
    # memory is counted in bytes (the scores of both sides and their copies, one block of
    # releases), not in values: 5e9 trials of one release need ~300 GiB
    import dpaccount.audit.run as R

    # plus both sides' fitting trials of a learned statistic, held whole (at most FIT_VALUES)
    assert R.audit_memory(5 * 10**9, 1) == (2 * 5 * 10**9 * 32 + 4 * 8 * R.BLOCK_VALUES
                                          + 2 * 8 * R.FIT_VALUES)
    with pytest.raises(ValueError, match="GiB"):
        R.check_memory(10**6, 10, available=10**6)
    R.check_memory(10**6, 10, available=10**9)  # fits: no error
    mech = InstaHide(labels="none", k=2, noise=1.0, n=4, diameter=4.0, releases=1)
    monkeypatch.setattr(R, "available_memory", lambda: 10**5)

    def boom(*a, **k):
        raise AssertionError("simulated although refused")

    with pytest.raises(ValueError, match="trials=100000 needs"):
        audit_mechanism(mech, delta=1e-2, trials=100_000, release_fn=boom)
    assert_usage_error(run_cli("audit", "mechanism", "--trials", "1e5"), "trials=100000")


def test_an_audit_that_cannot_reach_the_bound_says_inconclusive_and_how_many_trials_would():
    # N = 1000, T = 1000 at 2000 trials: no ideal audit can come near the bound, so "no
    # violation found" would mean nothing; the verdict says so and names the trials needed
    from dpaccount.audit.run import CONCLUSIVE_FRACTION, ceiling, certifying_sizes, \
        expected_audit_bound

    mech = InstaHide(labels="none", k=4, noise=1.0, n=1000, diameter=4.0, releases=1000)
    r = audit_mechanism(mech, delta=1e-2, trials=2000, seed=0)
    assert r.verdict == "inconclusive" and "inconclusive" in r.summary()
    need = r.trials_for_conclusive
    assert need is not None and need > 2000
    # at the trials it names, the ideal audit (independently recomputed) does reach the fraction
    import inspect

    frac = inspect.signature(audit_mechanism).parameters["select_fraction"].default
    n = certifying_sizes(need, "split", frac)
    best = min(ceiling(n, n, 1e-2, 0.95), expected_audit_bound(mech, n, 1e-2, 0.95))
    assert best >= CONCLUSIVE_FRACTION * r.epsilon_upper_bound
    n_half = certifying_sizes(need // 8, "split", frac)  # the step before
    assert min(ceiling(n_half, n_half, 1e-2, 0.95), expected_audit_bound(
        mech, n_half, 1e-2, 0.95)) < CONCLUSIVE_FRACTION * r.epsilon_upper_bound
