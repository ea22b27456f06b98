"""The poisoning evaluation: a tiny grid end to end on CPU, attacks checked to work undefended,
results round-tripping through the saved file, certificates from dpaccount, bad configs."""

import json

import numpy as np

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from training.data import synthetic  # noqa: E402
from training.poison import attack_success, poison, run_grid, summarise  # noqa: E402

from ..conftest import assert_usage_error, run_cli  # noqa: E402

TINY = {"dataset": "synthetic", "model": "mlp", "epochs": 8, "batch_size": 64, "lr": 3e-3,
        "seeds": 2, "delta": 1e-5, "target": 0,
        "attacks": [{"name": "backdoor", "poisons": 40, "budget": 3}],
        "defenses": [{"name": "none"}, {"name": "dp-instahide", "k": 4, "noise": 4.0}]}


def test_poisons_replace_records_in_place():
    d = synthetic()
    p, info = poison(d, {"name": "backdoor", "poisons": 10, "budget": 2}, 0, seed=1)
    assert p.x_train.shape == d.x_train.shape  # substitution: same N
    changed = (p.x_train != d.x_train).flatten(1).any(1) | (p.y_train != d.y_train)
    assert int(changed.sum()) == 10 and bool((p.y_train[changed] == 0).all())
    f, _ = poison(d, {"name": "label_flip", "poisons": 5, "source": 1}, 0, seed=1)
    assert int((f.y_train != d.y_train).sum()) == 5
    c, ci = poison(d, {"name": "clean_label", "poisons": 5, "budget": 0.1}, 0, seed=1)
    assert torch.equal(c.y_train, d.y_train)  # clean label
    assert float((c.x_train - d.x_train).abs().max()) <= 0.1 + 1e-6


def test_tiny_grid_attack_works_and_results_round_trip(tmp_path):
    out = tmp_path / "res.json"
    data = synthetic()
    res = run_grid(TINY, out, data=data, log=None)
    assert len(res) == 4
    rows = {r["defense"]: r for r in summarise(res)}
    none = rows["none"]
    assert none["success"] > 0.6  # chance: a quarter of the classes
    assert none["epsilon"] is None and none["certificate"] is None
    dp = rows["DP-InstaHide k=4 b=4"]
    assert dp["epsilon"] is not None and dp["relation"] == "substitution"
    # the backdoor's poisons carry the target label; the soft label is released without noise,
    # so the per-record guarantee (substitutions that keep the label) does not cover them
    assert dp["certificate"] is None and "not covered" in dp["certificate_note"]
    assert res[next(iter(k for k in res if '"dp-instahide"' in k))]["mechanism"]["labels"] == "soft"
    # round trip: a rerun trains nothing and summarises the same
    before = out.stat().st_mtime_ns
    again = run_grid(TINY, out, data=data, log=None)
    assert again == json.loads(out.read_text()) == res
    assert out.stat().st_mtime_ns == before
    assert summarise(again) == summarise(res)
    # a stored run whose privacy is stale (another number, another method's name: what runs
    # saved before the accountant layer may hold) is brought up to date without training
    key = next(iter(k for k in res if '"dp-instahide"' in k))
    stale = json.loads(out.read_text())
    fresh = dict(stale[key])
    stale[key].update(epsilon=1.0, privacy_method="pld-or-kov")
    out.write_text(json.dumps(stale))
    third = run_grid(TINY, out, data=data, log=None)
    assert third[key]["epsilon"] == fresh["epsilon"] and third[key]["privacy_recomputed"]
    assert third[key]["privacy_method"] == fresh["privacy_method"]


def _cell(attack, mech):
    return {"attack": attack, "poisons": 3, "defense": "DP-InstaHide k=4 b=8", "seed": 0,
            "accuracy": 0.5, "success": 0.1, "clean_accuracy": 0.5, "clean_success": 0.01,
            "epsilon": 1.0, "delta": 1e-5, "privacy_method": "pld", "relation": "substitution",
            "sampler": "subsets", "mechanism": mech}


def test_certificates_cover_label_keeping_poisons_only():
    from dpaccount import InstaHide
    from dpaccount.certificates import certify

    m = InstaHide(k=4, noise=8.0, n=1438, diameter=64.0, releases=1438, labels="soft",
                  class_sizes=[142, 146, 142, 146, 145, 146, 145, 143, 139, 144])
    rows = {r["attack"]: r for r in summarise({"a": _cell("clean_label", m.to_dict()),
                                               "b": _cell("label_flip", m.to_dict())})}
    assert rows["clean_label"]["certificate"] == certify(m, 3, 0.01)[0].bound
    assert rows["label_flip"]["certificate"] is None
    assert "changes labels" in rows["label_flip"]["certificate_note"]
    # with noised labels, label flips are substitutions the guarantee covers
    noised = InstaHide(k=4, noise=8.0, n=1438, diameter=66.0, releases=1438, labels="noised")
    row = summarise({"b": _cell("label_flip", noised.to_dict())})[0]
    assert row["certificate"] == certify(noised, 3, 0.01)[0].bound


def test_attack_success_on_a_clean_model_is_low():
    from training.train import TrainConfig, train

    d = synthetic()
    _, info = poison(d, {"name": "backdoor", "poisons": 40, "budget": 3}, 0, seed=0)
    m, model = train(TrainConfig(dataset="synthetic", model="mlp", epochs=8, augment=False),
                     data=d, return_model=True)
    assert attack_success(model, d, info) < 0.5


def test_cli_poison_eval_tiny(tmp_path):
    cfg = tmp_path / "grid.json"
    cfg.write_text(json.dumps(dict(TINY, seeds=1, defenses=[{"name": "none"}])))
    p = run_cli("poison-eval", "--config", str(cfg), "--out", str(tmp_path / "r.json"),
                "--plot", str(tmp_path / "p.png"))
    assert p.returncode == 0, p.stderr
    assert "| backdoor (40) | none |" in p.stdout and "not private" in p.stdout
    assert "(one seed)" in p.stdout
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    # one seed with --json: valid JSON, null where an interval is undefined (was NaN)
    j = run_cli("poison-eval", "--config", str(cfg), "--out", str(tmp_path / "r.json"),
                "--json")
    assert j.returncode == 0, j.stderr
    row = json.loads(j.stdout)["rows"][0]
    assert row["seeds"] == 1 and row["success_ci"] is None and row["accuracy_ci"] is None
    assert row["sampler"] is None  # no defense: no mechanism ran, no sampler to name


def test_a_forced_collapse_is_marked_not_counted_as_success(tmp_path):
    """A floor every model misses forces every run to count as collapsed (really trained): no
    success is reported in the rows, the table, the JSON or the plot; with part of the seeds
    collapsed, they are left out of the mean and counted."""
    pytest.importorskip("matplotlib")
    from training.poison import format_table, plot_results

    grid = dict(TINY, seeds=1, epochs=1, defenses=[{"name": "none"}], collapse_floor=0.99)
    cfg = tmp_path / "grid.json"
    cfg.write_text(json.dumps(grid))
    j = run_cli("poison-eval", "--config", str(cfg), "--out", str(tmp_path / "r.json"),
                "--json", "--plot", str(tmp_path / "p.png"))
    assert j.returncode == 0, j.stderr
    row = json.loads(j.stdout)["rows"][0]
    assert row["collapsed"] is True and row["success"] is None and row["collapsed_seeds"] == 1
    t = run_cli("poison-eval", "--config", str(cfg), "--out", str(tmp_path / "r.json"))
    assert "collapsed (clean accuracy < 0.99 in all 1 seeds)" in t.stdout
    # partly collapsed: the mean is over the seeds that learned
    base = {"attack": "backdoor", "defense": "mixup only k=4", "poisons": 20, "epsilon": None,
            "delta": 1e-5, "privacy_method": None, "relation": None, "sampler": "subsets",
            "mechanism": None, "clean_success": 0.0}
    res = {"a": dict(base, seed=0, accuracy=0.12, clean_accuracy=0.9, success=0.98),
           "b": dict(base, seed=1, accuracy=0.9, clean_accuracy=0.9, success=0.2),
           "c": dict(base, seed=2, accuracy=0.8, clean_accuracy=0.9, success=0.4)}
    r = summarise(res)[0]
    assert r["collapsed_seeds"] == 1 and not r["collapsed"]
    assert r["success"] == pytest.approx(0.3)  # 0.98 of the collapsed seed left out
    assert "(1 of 3 seeds collapsed, left out)" in format_table([r])
    assert plot_results([r], tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("content,match", [
    (None, "does not exist"),
    ("{not json", "not valid JSON"),
    ('{"epochz": 3}', "unknown keys"),
    ('{"attacks": [{"name": "nope", "poisons": 1}]}', "attacks[0].name must be one of"),
    ('{"attacks": [{"name": "backdoor", "poisons": 0}]}', "poisons"),
    ('{"defenses": [{"name": "magic"}]}', "defenses[0].name must be one of"),
    ('{"seeds": "a"}', "seeds must be a positive integer"),
    ('{"seeds": 0}', "seeds must be a positive integer"),
    ('{"delta": 2}', "delta"),
    ('{"lr": -1}', "lr"),
    ('{"defenses": [{"name": "dp-instahide", "k": 4, "noise": -1}]}', "noise"),
    ('{"defenses": [{"name": "mixup", "k": 0}]}', "k must be a positive integer"),
    # nested values (issue 15): each refused before any training, naming the key
    ('{"target": 99}', "target must be a class index of the dataset (0 to 9); got 99"),
    ('{"attacks": [{"name": "clean_label", "poisons": 5, "budget": "big"}]}',
     "attacks[0] (clean_label).budget must be a positive finite number at most 1; got 'big'"),
    ('{"attacks": [{"name": "label_flip", "poisons": 100000, "source": 1}]}',
     "(the training records of the source class 1); got 100000"),
    ('{"attacks": [{"name": "label_flip", "poisons": 5, "source": 99}]}',
     "attacks[0] (label_flip).source must be a class index"),
    ('{"attacks": [{"name": "label_flip", "poisons": 5, "source": 0}]}',
     "must differ from the target class 0"),
    ('{"attacks": [{"name": "backdoor", "poisons": 5, "budget": -3}]}',
     "attacks[0] (backdoor).budget must be a positive integer; got -3"),
    ('{"attacks": [{"name": "backdoor", "poisons": 5, "budget": 0}]}',
     "backdoor).budget must be a positive integer; got 0"),
    ('{"attacks": [{"name": "backdoor", "poisons": 5, "budget": 9}]}',
     "backdoor).budget must be at most 8; got 9"),
    ('{"attacks": [{"name": "backdoor", "poisons": 5, "budgt": 2}]}',
     "attacks[0] (backdoor) has unknown keys: budgt"),
    ('{"attacks": [{"name": "backdoor"}]}', "attacks[0] (backdoor) lacks poisons"),
    ('{"defenses": [{"name": "noise", "noise": 1, "k": 2}]}',
     "defenses[0] (noise) has unknown keys: k"),
    ('{"defenses": [{"name": "dp-instahide", "k": 4}]}', "(dp-instahide) lacks noise"),
    ('{"defenses": [{"name": "mixup", "k": 5000}]}', "(mixup).k must be at most N=1438"),
    ('{"collapse_floor": 1.5}', "collapse_floor must be a number in [0, 1)"),
    ('[1, 2]', "must hold a JSON object"),
    ('{"attacks": [{"name": "gradient_matching", "poisons": 5}]}',
     "attacks[0] (gradient_matching) lacks budget"),
    ('{"attacks": [{"name": "gradient_matching", "poisons": 5, "budget": 0.1, "steps": 0}]}',
     "(gradient_matching).steps must be a positive integer; got 0"),
    ('{"attacks": [{"name": "feature_collision", "poisons": 5, "budget": 0.1, "restarts": 2}]}',
     "(feature_collision) has unknown keys: restarts"),
    ('{"attacks": [{"name": "gradient_matching", "poisons": 500, "budget": 0.1}]}',
     "(the training records of the target class 0); got 500"),
])
def test_cli_poison_eval_bad_config(tmp_path, content, match):
    f = tmp_path / "c.json"
    if content is not None:
        f.write_text(content)
    import time

    t = time.monotonic()
    assert_usage_error(run_cli("poison-eval", "--config", str(f), "--out",
                               str(tmp_path / "r.json")), match)
    assert not (tmp_path / "r.json").exists()
    assert time.monotonic() - t < 20  # refused before any training (one training takes ~1 s)


def test_dpsgd_defense_reports_opacus_epsilon(tmp_path):
    pytest.importorskip("opacus")
    grid = dict(TINY, seeds=1, defenses=[{"name": "dpsgd", "noise_multiplier": 1.0,
                                          "clip": 1.0}])
    rows = summarise(run_grid(grid, tmp_path / "r.json", data=synthetic(), log=None))
    r = rows[0]
    assert r["privacy_method"] == "opacus" and r["relation"] == "add_remove"
    assert 0 < r["epsilon"] < 100 and r["certificate"] is None


def test_crafted_attacks_are_crafted_once_and_kept_beside_the_results(tmp_path, monkeypatch):
    """gradient_matching and feature_collision poisons are crafted once per (attack, seed), as
    units of their own, kept in FILE.poisons.npz and reused by every defense and by a resumed
    run; they keep their labels and stay within the budget."""
    import training.poison as tp
    from training.poison import crafted_path

    grid = dict(TINY, epochs=1, seeds=1, defenses=[{"name": "none"}, {"name": "mixup", "k": 2}],
                attacks=[{"name": "gradient_matching", "poisons": 8, "budget": 0.1, "steps": 3,
                          "restarts": 1, "surrogate_epochs": 1},
                         {"name": "feature_collision", "poisons": 8, "budget": 0.1, "steps": 3,
                          "surrogate_epochs": 1}])
    calls = []
    real = tp.craft
    monkeypatch.setattr(tp, "craft", lambda *a, **k: calls.append(a[1]["name"]) or real(*a, **k))
    out = tmp_path / "r.json"
    data = synthetic()
    res = run_grid(grid, out, data=data, log=None)
    assert sorted(calls) == ["feature_collision", "gradient_matching"]  # not once per defense
    assert crafted_path(out).is_file() and len(res) == 4
    for attack in grid["attacks"]:
        idx, x, t = tp.read_crafted(crafted_path(out))[tp.craft_key(tp.check_config(
            {**tp.DEFAULT_CONFIG, **grid}), attack, 0)]
        assert np.abs(x - data.x_train.numpy()[idx]).max() <= 0.1 + 1e-6
        assert int(data.y_test[t]) != grid["target"]  # the target is of another class
        assert (data.y_train.numpy()[idx] == grid["target"]).all()  # labels kept
    # a lost cell is rerun with the kept poisons: nothing crafted again
    stale = json.loads(out.read_text())
    stale.pop(next(iter(stale)))
    out.write_text(json.dumps(stale))
    monkeypatch.setattr(tp, "craft", lambda *a, **k: pytest.fail("crafted again"))
    assert run_grid(grid, out, data=data, log=None) == res


def test_grid_on_cifar10_from_a_local_folder(tmp_path):
    """CIFAR-10 from a local folder (a fake one here: nothing is downloaded), and its refusals."""
    from .test_train import fake_cifar

    fake_cifar(tmp_path / "c", "bin", n=40)
    grid = dict(TINY, dataset="cifar10", data_dir=str(tmp_path / "c"), seeds=1, epochs=1,
                attacks=[{"name": "backdoor", "poisons": 3, "budget": 4}],
                defenses=[{"name": "none"}])
    res = run_grid(grid, tmp_path / "r.json", log=None)
    assert len(res) == 1 and summarise(res)[0]["attack"] == "backdoor"
    for bad, match in ((dict(grid, data_dir=None), "needs data_dir"),
                       (dict(grid, data_dir=str(tmp_path / "nope")), "is not a folder"),
                       (dict(TINY, data_dir=str(tmp_path / "c")), "applies to dataset 'cifar10'"),
                       (dict(grid, attacks=[{"name": "backdoor", "poisons": 3, "budget": 33}]),
                        "at most 32")):
        with pytest.raises(ValueError, match=match):
            run_grid(bad, tmp_path / "bad.json", log=None)
