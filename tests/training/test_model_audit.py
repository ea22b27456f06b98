"""Model-level audits: the one-run test against a direct binomial computation, bound arithmetic at
known cases, and small shadow-model audits end to end (resumable, recomputable from scores)."""

import json
import math

import numpy as np
import pytest

from dpaccount.audit.one_run import one_run_audit, one_run_epsilon, p_value

from ..conftest import assert_usage_error, run_cli


def _binom_tail(r, q, v):
    """P[Binomial(r, q) >= v] by the direct sum, with exact binomial coefficients."""
    return sum(math.comb(r, j) * q ** j * (1 - q) ** (r - j) for j in range(v, r + 1))


def _delta_term(m, r, q, v, delta):
    """2 m delta max_i (1/i) P[v > B >= v - i], by direct sums."""
    best = 0.0
    for i in range(1, v + 1):
        s = sum(math.comb(r, j) * q ** j * (1 - q) ** (r - j) for j in range(v - i, v))
        best = max(best, s / i)
    return 2 * m * delta * best


@pytest.mark.parametrize("m,r,v,eps,delta", [(100, 20, 15, 0.5, 0.0), (1000, 100, 83, 1.0, 0.0),
                                             (1000, 100, 83, 1.0, 1e-5), (50, 50, 50, 2.0, 1e-3),
                                             (200, 60, 30, 0.0, 1e-2)])
def test_steinke_p_value_against_direct_binomial(m, r, v, eps, delta):
    q = 1 / (1 + math.exp(-eps))
    want = min(1.0, _binom_tail(r, q, v) + _delta_term(m, r, q, v, delta))
    assert p_value(m, r, v, eps, delta) == pytest.approx(want, rel=1e-9, abs=1e-15)


def test_one_run_epsilon_inverts_the_p_value():
    m, r, v, conf = 1000, 100, 83, 0.95
    e = one_run_epsilon(m, r, v, 1e-5, conf)
    assert p_value(m, r, v, e, 1e-5) < 0.05 <= p_value(m, r, v, e + 1e-4, 1e-5)
    # no separation: half right certifies nothing; all right certifies a lot, growing with r
    assert one_run_epsilon(m, 100, 50, 0.0, conf) == 0.0
    assert 0 < one_run_epsilon(m, 20, 20, 0.0, conf) < one_run_epsilon(m, 200, 200, 0.0, conf)
    # perfect guesses, delta = 0: P[Binom(r, q) = r] = q^r < 0.05 exactly when eps > that root
    r = 20
    q_star = 0.05 ** (1 / r)
    assert one_run_epsilon(m, r, r, 0.0, conf) == pytest.approx(math.log(q_star / (1 - q_star)),
                                                                abs=1e-5)


def test_one_run_is_sound_on_randomised_response():
    """Guesses that are right with probability e^eps/(1+e^eps), i.e. an exactly eps-DP
    randomised response: the 95% lower bound exceeds eps in at most ~5% of repetitions."""
    rng = np.random.default_rng(0)
    eps, m, reps = 1.0, 400, 400
    q = 1 / (1 + math.exp(-eps))
    over = 0
    for _ in range(reps):
        included = rng.random(m) < 0.5
        right = rng.random(m) < q
        guess_in = np.where(right, included, ~included)
        scores = guess_in + rng.random(m) * 0.1  # guessed "in" ranks above guessed "out"
        res = one_run_audit(scores, included, [(40, 40)], delta=0.0, confidence=0.95)
        over += res.epsilon_lower_bound > eps
    assert over <= 0.05 * reps + 3 * math.sqrt(0.05 * 0.95 * reps)


def test_one_run_bonferroni_and_bad_input():
    scores = np.arange(100.0)
    inc = scores >= 50  # perfect
    one = one_run_audit(scores, inc, [(10, 10)], delta=0.0)
    three = one_run_audit(scores, inc, [(10, 10), (5, 5), (2, 2)], delta=0.0)
    assert three.choices == 3 and three.epsilon_lower_bound < one.epsilon_lower_bound
    with pytest.raises(ValueError, match="guesses"):
        one_run_audit(scores, inc, [(80, 80)], delta=0.0)
    with pytest.raises(ValueError, match="equal-length"):
        one_run_audit(scores, inc[:5], [(1, 1)], delta=0.0)


# ---------------------------------------------------------------- torch end to end

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from training.model_audit import ModelAuditConfig, bound_from_store, shadow_audit  # noqa: E402
from training.data import synthetic  # noqa: E402

SMALL = dict(dataset="synthetic", epochs=15, models=32, block=16, hidden=32)


def test_undefended_shadow_audit_finds_leakage_and_resumes(tmp_path):
    data = synthetic()
    cfg = ModelAuditConfig(k=1, noise=0.0, **SMALL)
    full = shadow_audit(cfg, data=data)
    assert full["epsilon_upper_bound"] is None and full["epsilon_lower_bound"] > 0
    assert full["epsilon_lower_bound"] <= full["ceiling"]
    store = tmp_path / "s"
    first = shadow_audit(cfg, data=data, store=store)
    blocks = sorted(store.glob("block-*.npz"))
    assert len(blocks) == 4 and (store / "result.json").exists()
    # an interruption lost the last block: only it is retrained, and the result is the same
    blocks[-1].unlink()
    mtimes = [b.stat().st_mtime_ns for b in blocks[:-1]]
    again = shadow_audit(cfg, data=data, store=store)
    assert [b.stat().st_mtime_ns for b in blocks[:-1]] == mtimes
    assert again["epsilon_lower_bound"] == first["epsilon_lower_bound"] == \
        full["epsilon_lower_bound"]
    # the bound from saved scores alone
    rec = bound_from_store(store, data=data)
    assert rec["epsilon_lower_bound"] == first["epsilon_lower_bound"]
    assert rec["scores_in"] == first["scores_in"]
    with pytest.raises(ValueError, match="different audit"):
        shadow_audit(ModelAuditConfig(k=1, noise=0.0, seed=5, **SMALL), data=data, store=store)


def test_dp_instahide_shadow_audit_stays_below_the_accountant():
    data = synthetic()
    r = shadow_audit(ModelAuditConfig(k=4, noise=2.0, **SMALL), data=data, score="lira")
    assert r["epsilon_upper_bound"] is not None and r["upper_bound_method"] == "pld"
    assert not r["exceeds_upper_bound"]
    assert r["relation"] == "substitution" and r["delta"] == 1e-5


def test_model_audit_config_refuses_uncovered_canaries():
    with pytest.raises(ValueError, match="labels 'private'"):
        ModelAuditConfig(canary="mislabeled", noise=1.0, labels="public")
    with pytest.raises(ValueError, match="canary must be"):
        ModelAuditConfig(canary="nope")
    with pytest.raises(ValueError, match="models"):
        ModelAuditConfig(models=1)


def test_cli_audit_model_json_and_plots(tmp_path):
    p = run_cli("audit", "model", "--dataset", "synthetic", "--epochs", "2", "--models", "16",
                "--block", "32", "--noise", "0", "--k", "1", "--json", "--roc",
                str(tmp_path / "roc.png"), "--plot", str(tmp_path / "region.png"))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for key in ("epsilon_lower_bound", "epsilon_upper_bound", "ceiling", "delta", "relation",
                "sampler", "models_per_side"):
        assert key in out
    for f in ("roc.png", "region.png"):
        assert (tmp_path / f).read_bytes()[:4] == b"\x89PNG"
    t = run_cli("audit", "model", "--dataset", "synthetic", "--epochs", "2", "--models", "8",
                "--one-run", "--canaries", "100", "--noise", "2", "--labels", "private")
    assert t.returncode == 0, t.stderr
    last = t.stdout.strip().splitlines()[-1]
    assert "audited epsilon >=" in last and "accountant epsilon <=" in last
    assert "add_remove" in last


@pytest.mark.parametrize("args,match", [
    (["--noise", "-1"], "noise"),
    (["--roc", "x.jpg"], "png"),
    (["--from-store"], "--store"),
    (["--canary", "mislabeled"], "labels 'private'"),
    (["--one-run"], "labels 'private'"),
    (["--guesses", "a,b", "--one-run", "--labels", "private"], "--guesses"),
])
def test_cli_audit_model_bad_input(args, match):
    assert_usage_error(run_cli("audit", "model", "--dataset", "synthetic", "--models", "4",
                               *args), match)
