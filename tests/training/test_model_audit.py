"""Model-level audits: small shadow-model audits end to end (resumable, recomputable from
scores) and their command line."""

import json

import pytest

from ..conftest import assert_usage_error, run_cli

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
