"""Model-level audits: small shadow-model audits end to end (resumable, recomputable from
scores) and their command line."""

import json
import math

import numpy as np

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


# ---------------------------------------------------------------- stronger canaries, estimators

from scipy import stats  # noqa: E402

from training.model_audit import (canary_targets, group_accountant, make_canary,  # noqa: E402
                                  one_run_audit)


def test_crafted_canary_is_the_far_corner_with_the_rarest_label():
    data = synthetic()
    x, y = make_canary(data, "crafted", np.random.default_rng(0))
    counts = np.bincount(data.y_train.numpy(), minlength=data.num_classes)
    assert y == int(np.argmin(counts))
    # a corner of [0, 1]^d: each pixel at the end farther from the mean training image
    mean = data.x_train.numpy().mean(0)
    assert set(np.unique(x.numpy())) <= {0.0, 1.0}
    assert np.all(np.abs(x.numpy() - mean) >= 0.5 - 1e-7)
    # the records it replaces carry its label (the substitution keeps labels)
    t = canary_targets(data, ModelAuditConfig(canary="crafted", copies=3, **SMALL))
    assert t.size == 3 and np.all(data.y_train.numpy()[t] == y)
    assert list(canary_targets(data, ModelAuditConfig(canary="corner", **SMALL))) == [0]
    with pytest.raises(ValueError, match="copies must be at most"):
        canary_targets(data, ModelAuditConfig(canary="crafted", copies=10**4, **SMALL))


def test_estimators_on_one_store(tmp_path):
    data = synthetic()
    cfg = ModelAuditConfig(k=1, noise=0.0, canary="crafted", **SMALL)
    loss = shadow_audit(cfg, data=data, store=tmp_path / "s")
    # the GDP estimate is the mu of the certified rates, here through scipy.stats
    t, g = loss["test"], loss["gdp_estimate"]
    want = stats.norm.isf(t["fpr_upper"]) - stats.norm.ppf(t["fnr_upper"])
    assert g["mu_lower_bound"] == pytest.approx(max(want, 0.0), rel=1e-9)
    assert g["mu_lower_bound"] > 0 and g["epsilon"] > 0 and "mu-GDP" in g["note"]
    names = {(e["name"], e["quantity"]) for e in loss["estimates"]}
    assert {("shadow-cp", "epsilon"), ("gdp-estimate", "mu"), ("gdp-estimate", "epsilon"),
            ("accountant", "epsilon")} <= names
    for e in loss["estimates"]:
        assert e["method"] and e["relation"].startswith("substitution")
        assert (e["delta"] is None) == (e["quantity"] == "mu")
    # offline LiRA is a monotone map of the loss for one canary: the same test, the same bound
    off = bound_from_store(tmp_path / "s", score="lira-offline", data=data)
    assert off["epsilon_lower_bound"] == loss["epsilon_lower_bound"]
    on = bound_from_store(tmp_path / "s", score="lira-online", data=data)
    old = bound_from_store(tmp_path / "s", score="lira", data=data)  # the old name
    assert on["score"] == old["score"] == "lira-online"
    assert on["epsilon_lower_bound"] == old["epsilon_lower_bound"]
    assert 0 <= on["epsilon_lower_bound"] <= on["ceiling"]


def test_store_from_before_copies_is_reused(tmp_path):
    data = synthetic()
    cfg = ModelAuditConfig(k=1, noise=0.0, **dict(SMALL, models=8, epochs=2))
    first = shadow_audit(cfg, data=data, store=tmp_path / "s")
    meta = tmp_path / "s" / "audit.json"
    old = json.loads(meta.read_text())
    del old["config"]["copies"]  # what a store written before this field looks like
    meta.write_text(json.dumps(old))
    block = next((tmp_path / "s").glob("block-*.npz"))
    mtime = block.stat().st_mtime_ns
    again = shadow_audit(cfg, data=data, store=tmp_path / "s")
    assert block.stat().st_mtime_ns == mtime
    assert again["epsilon_lower_bound"] == first["epsilon_lower_bound"]
    with pytest.raises(ValueError, match="differs in copies"):
        shadow_audit(ModelAuditConfig(k=1, noise=0.0, copies=2, **dict(SMALL, models=8,
                                                                        epochs=2)),
                     data=data, store=tmp_path / "s")


def test_copies_are_audited_against_the_group_bound():
    data = synthetic()
    single = shadow_audit(ModelAuditConfig(k=4, noise=2.0, canary="crafted",
                                           **dict(SMALL, epochs=3, models=8)), data=data)
    group = shadow_audit(ModelAuditConfig(k=4, noise=2.0, canary="crafted", copies=3,
                                          **dict(SMALL, epochs=3, models=8)), data=data)
    assert group["upper_bound_method"].startswith("group of 3")
    assert "group of 3" in group["relation"]
    # a group bound can never be below the bound for one of its records
    assert group["epsilon_upper_bound"] >= single["epsilon_upper_bound"]
    assert not group["exceeds_upper_bound"]


def test_group_privacy_branch_of_the_group_accountant():
    # small eps per record (large noise, one epoch): group privacy (c eps, c e^{(c-1) eps} delta)
    # is then finite, and the reported pair must keep the group's delta at most delta
    from dpaccount import InstaHide
    from dpaccount.selection import tightest

    mech = InstaHide(k=4, noise=40.0, n=512, diameter=64.0, releases=512, sampler="subsets",
                     relation="substitution", labels="soft", class_sizes=(256, 256))
    eps, method = group_accountant(mech, 2, 1e-5)
    # here group privacy beats direct accounting (which claims no amplification for a group
    # with soft labels: the class counts can show it)
    assert method.startswith("group of 2: group privacy")
    import re

    e1, d1 = (float(x) for x in re.search(r"eps ([\d.e+-]+) at delta ([\d.e+-]+)",
                                          method).groups())
    # the method prints eps to 4 digits and delta to 3: rel 1e-3
    assert eps == pytest.approx(2 * e1, rel=1e-3)
    assert 2 * math.exp(e1) * d1 <= 1e-5 * (1 + 1e-3)
    assert eps >= 2 * tightest(mech, 1e-5).epsilon  # c eps_1 at a smaller delta_1


def test_group_pair_branch_of_the_group_accountant():
    # with noised labels the group's own pair amplifies and beats group privacy
    from dpaccount import InstaHide
    from dpaccount.accountants.group import group_epsilon

    mech = InstaHide(k=4, noise=40.0, n=512, diameter=64.0, releases=512, labels="noised")
    eps, method = group_accountant(mech, 2, 1e-5)
    assert method.startswith("group of 2: pld-tilted-group")
    assert eps == group_epsilon(mech, 2, 1e-5).epsilon


def test_one_run_reports_steinke_and_fdp_on_the_same_guesses():
    data = synthetic()
    cfg = ModelAuditConfig(k=1, noise=0.0, labels="noised", **dict(SMALL, epochs=5))
    r = one_run_audit(cfg, canaries=200, data=data)
    o, f = r["one_run"], r["fdp"]
    assert (f["canaries"], f["included"], f["choices"]) == (o["canaries"], o["included"],
                                                            o["choices"])
    assert f["epsilon_lower_bound"] >= 0 and f["mu_lower_bound"] >= 0
    names = [e["name"] for e in r["estimates"]]
    assert names == ["one-run-steinke", "one-run-fdp", "one-run-fdp-gdp", "one-run-fdp-gdp",
                     "accountant"]
    assert all(e["relation"] == "add_remove" for e in r["estimates"])


@pytest.mark.parametrize("args,match", [
    (["--copies", "0"], "copies"),
    (["--one-run", "--canary", "corner", "--labels", "noised"], "canary must be 'ood'"),
    (["--one-run", "--copies", "2", "--labels", "noised"], "copies must be 1"),
    (["--one-run", "--score", "lira-online", "--labels", "noised"], "--score"),
    (["--score", "lira-both"], "score"),
    (["--copies", "100000"], "copies must be at most"),
])
def test_cli_audit_model_bad_new_input(args, match):
    assert_usage_error(run_cli("audit", "model", "--dataset", "synthetic", "--models", "4",
                               *args), match)


def test_cli_audit_model_estimators_text_and_json():
    p = run_cli("audit", "model", "--dataset", "synthetic", "--epochs", "2", "--models", "8",
                "--block", "16", "--noise", "0", "--k", "1", "--canary", "crafted",
                "--copies", "2", "--score", "lira-online", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["score"] == "lira-online" and out["config"]["copies"] == 2
    assert "gdp_estimate" in out and len(out["estimates"]) == 4
    t = run_cli("audit", "model", "--dataset", "synthetic", "--epochs", "2", "--models", "8",
                "--one-run", "--canaries", "100", "--noise", "0", "--k", "1")
    assert t.returncode == 0, t.stderr
    for name in ("one-run-steinke: epsilon >=", "one-run-fdp: epsilon >=",
                 "one-run-fdp-gdp: mu >=", "one-run-fdp-gdp: epsilon >="):
        assert name in t.stdout
    assert "at delta 1e-05, relation add_remove" in t.stdout


def test_block_auto_packs_models_by_gpu_memory(monkeypatch, tmp_path):
    """``block="auto"``: on CUDA as many models per unit as the GPU's free memory holds (asked
    of the GPU by a probe unit; faked here, there is no GPU in CI), the default on CPU, and a
    store's own block on resume (its seeds depend on it)."""
    import dataclasses

    from dpaccount.executors import LocalExecutor
    from training import model_audit as ma
    from training.batched import BatchedMLP

    data = synthetic()
    d = int(np.prod(data.x_train.shape[1:]))
    cfg = ModelAuditConfig(dataset="synthetic", epochs=1, models=4000, block="auto", hidden=32)
    # the parameter count in the estimate is the model's own (counted by torch)
    model = BatchedMLP(1, d, 32, data.num_classes, torch.Generator().manual_seed(0))
    params = sum(p.numel() for p in model.parameters())
    per = ma.bytes_per_model(cfg, d, data.num_classes, 100, 50)
    assert per > 2 * 4 * 4 * params
    assert ma.models_per_block(cfg, d, data.num_classes, 100, 50, 10 * per) == 7  # 0.7 x 10
    assert ma.models_per_block(cfg, d, data.num_classes, 100, 50, 1) == 1
    assert ma.models_per_block(cfg, d, data.num_classes, 100, 50, 10**15) == 8000  # all
    monkeypatch.setattr(ma, "gpu_free_bytes", lambda *a: 40 * 2**30)
    got = ma.resolve_block(cfg, data, "cuda", LocalExecutor())
    n, nt = int(data.x_train.shape[0]), int(data.x_test.shape[0])
    assert got.block == ma.models_per_block(cfg, d, data.num_classes, n, nt, 40 * 2**30) > 128
    assert ma.resolve_block(cfg, data, "cpu", LocalExecutor()).block == 128
    # a store keeps the block it was begun with
    small = dataclasses.replace(cfg, models=2, block=2)
    store = tmp_path / "s"
    shadow_audit(small, data=data, store=store, device="cpu")
    again = ma.resolve_block(dataclasses.replace(small, block="auto"), data, "cuda",
                             LocalExecutor(), store)
    assert again.block == 2
    assert shadow_audit(dataclasses.replace(small, block="auto"), data=data, store=store,
                        device="cpu")["models_per_side"] == 2
