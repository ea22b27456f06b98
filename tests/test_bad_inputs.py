"""Bad input is one line on stderr naming the parameter, exit status 2, no traceback, nothing
half-written left behind; every argument (output paths included) is checked before any
simulation, training or write. Extreme but valid numbers give a result where one is meaningful.

Everything runs in-process (``dpaccount.cli.main`` with pytest's ``capsys``); the work a refused
command must not reach is replaced by a function that fails the test if it is called.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from dpaccount import InstaHide
from dpaccount.cli import AUDIT_DEFAULTS, build_parser, main
from dpaccount.errors import InputError
from dpaccount.files import check_output_dir, check_output_file

from .conftest import ROOT


def cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def refused(capsys, *args, names=()):
    """The command is refused: exit 2, one line ``dpaccount: error: ...`` naming ``names``."""
    rc, out, err = cli(capsys, *args)
    assert rc == 2, (out, err)
    assert err.startswith("dpaccount: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, (name, err)
    return err


def answered(capsys, *args):
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    return out


def _boom(*args, **kwargs):
    raise AssertionError("the work started although an argument was bad")


def _tree(path):
    return sorted(os.path.relpath(os.path.join(d, f), path)
                  for d, dirs, files in os.walk(path) for f in dirs + files)


@pytest.fixture
def readonly_dir(tmp_path, monkeypatch):
    """A directory nobody may write in. Where the user can write anyway (root ignores the mode),
    the check's view of it is made read-only instead: ``os.access`` as dpaccount.files sees it
    says "not writable" for it (what the check relies on), so the test still runs."""
    import dpaccount.files as files

    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(0o500)
    probe = ro / "probe"
    try:
        probe.mkdir()
    except OSError:
        pass
    else:  # root: simulate
        probe.rmdir()
        real = files.os.access

        def access(path, mode, *a, **kw):
            inside = os.path.abspath(path) == str(ro) or os.path.abspath(path).startswith(
                str(ro) + os.sep)
            if inside and mode & os.W_OK:
                return False
            return real(path, mode, *a, **kw)

        monkeypatch.setattr(files.os, "access", access)
    yield ro
    ro.chmod(0o700)


# ------------------------------------------------------------------ 1. extreme numbers

@pytest.mark.parametrize("args,names", [
    (["--noise", "1e-300"], ["noise", "not representable"]),
    (["--diameter", "1e300", "--noise", "1e-5"], ["diameter", "noise", "not representable"]),
    (["--diameter", "1e-10", "--noise", "1e300"], ["noise", "1e+300"]),
    (["--diameter", "1e-300", "--noise", "1e10"], ["diameter", "1e-300"]),
    (["--n", "1e20"], ["n=1e+20"]),
    (["--n", "1e300"], ["n=1e+300"]),
    (["--epochs", "1e-300"], ["epochs=1e-300"]),
    (["--epochs", "1e300"], ["epochs=1e+300"]),
    (["--releases", "1e300"], ["releases", "1e+300"]),
    (["--k", "1e300"], ["k=1e+300"]),
    (["--image", "1" + "0" * 300 + "x2"], ["image must have at most"]),
    (["--image", "3x32x32", "--value-range", "0,1e308"], ["image", "value range"]),
    (["--phase", "noise=1e-300", "--phase", "noise=1"], ["noise", "not representable"]),
])
def test_epsilon_extremes_are_refused_by_name(capsys, args, names):
    err = refused(capsys, "epsilon", *args, names=names)
    assert "releases must be" not in err or "releases" in args[0]  # n is blamed, not releases


@pytest.mark.parametrize("args", [
    ["--noise", "1e-20"],  # epsilon huge but finite: a result, not a refusal
    ["--noise", "1e19"],  # eps0 ~ 8e-17: private to within a float's precision, computed
    ["--noise", "1e300"],  # eps0 ~ 8e-298: still a positive float
    ["--diameter", "1e-300"],
    ["--image", "100000x100000x100000"],
    ["--n", "1e20", "--releases", "10", "--labels", "none"],
    ["--delta", "1e-300"],
])
def test_epsilon_extreme_valid_numbers_give_a_result(capsys, args):
    out = answered(capsys, "epsilon", *args)
    assert "tightest sound upper bound: epsilon <=" in out
    assert "inf" not in out.split("tightest sound upper bound")[1]


# flags of every mechanism command, each set to an extreme float on a small, fast run
_BASE = ["--n", "1000", "--diameter", "1", "--releases", "100", "--labels", "none",
         "--noise", "1"]
_EXTRA = {"epsilon": [], "derive": [], "calibrate": ["--target-epsilon", "1"],
          "certify": ["--poisons", "1", "--clean-success", "0.1"]}
_FLAGS = ["--k", "--noise", "--n", "--diameter", "--epochs", "--releases", "--delta", "--norm"]
_OWN = {"calibrate": ["--target-epsilon", "--k-max"], "certify": ["--poisons", "--clean-success"]}


def _extreme_argv(command, flag, value):
    argv = [command] + _EXTRA[command] + list(_BASE)
    if flag == "--epochs":
        i = argv.index("--releases")
        del argv[i:i + 2]
    if flag == "--norm":
        argv += ["--sampler", "poisson", "--relation", "add_remove"]
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    return argv


@pytest.mark.parametrize("command", list(_EXTRA))
@pytest.mark.parametrize("value", ["1e-300", "1e300"])
def test_every_numeric_flag_takes_extreme_floats_without_traceback(capsys, command, value):
    for flag in _FLAGS + _OWN.get(command, []):
        if command == "calibrate" and flag in ("--noise", "--delta", "--k-max") \
                and value == "1e-300":
            continue  # a valid start or delta: the calibration itself, slow; covered below
        argv = _extreme_argv(command, flag, value)
        rc, out, err = cli(capsys, *argv)
        assert rc in (0, 2), (argv, err)
        if rc == 2:
            assert err.startswith("dpaccount: error: ") and err.count("\n") == 1, (argv, err)
            name = flag.lstrip("-").replace("-", " ")
            named = {"clean success": "clean success", "target epsilon": "target epsilon",
                     "k max": "k-max"}.get(name, name)
            assert named in err or (flag == "--norm" and "norm" in err), (argv, err)
        else:
            assert "inf" not in out.replace("info", ""), (argv, out)


def test_calibrate_tiny_target_at_tiny_delta_is_refused_by_name(capsys):
    # was "math domain error": no computable noise meets it
    refused(capsys, "calibrate", "--target-epsilon", "1e-20", "--delta", "1e-300",
            names=["target epsilon 1e-20", "delta 1e-300"])


def test_calibrate_target_no_constraint_is_refused_by_name(capsys):
    refused(capsys, "calibrate", "--target-epsilon", "1e300", *_BASE,
            names=["target epsilon 1e+300"])


def test_derive_refuses_numbers_sympy_would_read_as_zero(capsys):
    refused(capsys, "derive", "--diameter", "1e-40", "--noise", "1e-40", names=["noise"])


@pytest.mark.parametrize("flag", ["--trials", "--confidence", "--k", "--noise", "--n",
                                  "--diameter", "--releases", "--delta", "--epochs"])
def test_audit_mechanism_takes_extreme_floats_without_traceback(capsys, flag):
    for value in ("1e-300", "1e300", "1e308"):
        argv = ["audit", "mechanism", "--trials", "100", flag, value]
        rc, out, err = cli(capsys, *argv)
        assert rc in (0, 2), (argv, err)
        if rc == 2:
            assert err.startswith("dpaccount: error: ") and err.count("\n") == 1, (argv, err)
            assert flag.lstrip("-") in err, (argv, err)


@pytest.mark.parametrize("args,names", [
    (["--hidden", "1e300"], ["hidden"]),
    (["--lr", "1e300"], ["lr"]),
    (["--epochs", "1e300"], ["epochs"]),
    (["--models", "1e300"], ["models"]),
    (["--block", "1e300"], ["block"]),
    (["--batch-size", "1e300"], ["batch_size"]),
    (["--one-run", "--labels", "noised", "--canaries", "1e300"], ["canaries"]),
])
def test_audit_model_extreme_sizes_are_refused_before_training(capsys, no_shadow_training, args,
                                                               names):
    refused(capsys, "audit", "model", "--dataset", "synthetic", *args, names=names)


# (a huge noise is valid: eps0 = 64/(4 * 1e300) is still a positive float, and is computed)
@pytest.mark.parametrize("noise,name", [(1e-300, "not representable")])
def test_training_with_an_uncomputable_epsilon_is_refused_before_training(monkeypatch, noise,
                                                                          name):
    pytest.importorskip("torch")
    import training.model_audit as ma
    import training.train as tr
    from training.config import ModelAuditConfig, TrainConfig

    monkeypatch.setattr(tr, "build_model", _boom)
    monkeypatch.setattr(ma, "_train_block", _boom)
    with pytest.raises(InputError, match=name):
        tr.train(TrainConfig(dataset="synthetic", model="mlp", epochs=1, noise=noise))
    with pytest.raises(InputError, match=name):
        ma.shadow_audit(ModelAuditConfig(dataset="synthetic", noise=noise, models=2))
    with pytest.raises(InputError, match="lr"):
        TrainConfig(lr=1e300)


# ------------------------------------------------------------------ 2. output paths

def test_output_helpers_check_without_leaving_anything(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    before = _tree(tmp_path)
    with pytest.raises(InputError, match="--plot .* is a directory"):
        check_output_file("--plot", tmp_path, ".png")
    with pytest.raises(InputError, match="--plot must name a .png file"):
        check_output_file("--plot", tmp_path / "x.jpg", ".png")
    with pytest.raises(InputError, match="--plot .* is not a directory"):
        check_output_file("--plot", f / "sub" / "x.png", ".png")
    with pytest.raises(InputError, match="--store .* is not a directory"):
        check_output_dir("--store", f)
    with pytest.raises(InputError, match="--store .* is not a directory"):
        check_output_dir("--store", f / "a" / "b")
    # fine: missing folders are created by the write, not by the check
    assert check_output_file("--plot", tmp_path / "new" / "deeper" / "x.png", ".png")
    assert check_output_dir("--store", tmp_path / "new" / "store")
    assert _tree(tmp_path) == before


def test_output_helpers_refuse_a_read_only_place(readonly_dir):
    with pytest.raises(InputError, match="--plot .* not writable"):
        check_output_file("--plot", readonly_dir / "x.png", ".png")
    with pytest.raises(InputError, match="--store .* not writable"):
        check_output_dir("--store", readonly_dir / "store")
    assert _tree(readonly_dir) == []


def _bad_places(tmp_path, suffix):
    f = tmp_path / "file.txt"
    f.write_text("x")
    d = tmp_path / f"adir{suffix}"
    d.mkdir()
    return f, d


@pytest.mark.parametrize("flag", ["--store", "--plot"])
def test_audit_mechanism_output_paths_are_checked_first(capsys, monkeypatch, tmp_path, flag):
    monkeypatch.setattr("dpaccount.audit.run.audit_mechanism", _boom)
    f, d = _bad_places(tmp_path, ".png")
    before = _tree(tmp_path)
    places = [f, f / "sub"] if flag == "--store" else [d, f / "x.png", tmp_path / "x.txt"]
    for place in places:
        refused(capsys, "audit", "mechanism", "--trials", "100", flag, place, names=[flag])
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("flag", ["--store", "--plot"])
def test_audit_mechanism_read_only_output_is_refused_first(capsys, monkeypatch, readonly_dir,
                                                           flag):
    monkeypatch.setattr("dpaccount.audit.run.audit_mechanism", _boom)
    target = readonly_dir / ("store" if flag == "--store" else "x.png")
    refused(capsys, "audit", "mechanism", flag, target, names=[flag, "not writable"])


@pytest.fixture
def no_shadow_training(monkeypatch):
    pytest.importorskip("torch")
    import training.model_audit as ma

    monkeypatch.setattr(ma, "shadow_audit", _boom)
    monkeypatch.setattr(ma, "one_run_audit", _boom)
    monkeypatch.setattr(ma, "bound_from_store", _boom)
    return ma


@pytest.mark.parametrize("flag", ["--store", "--plot", "--roc"])
def test_audit_model_output_paths_are_checked_before_training(capsys, no_shadow_training,
                                                              tmp_path, flag):
    f, d = _bad_places(tmp_path, ".png")
    before = _tree(tmp_path)
    places = [f, f / "sub"] if flag == "--store" else [d, f / "x.png", tmp_path / "x.txt"]
    for place in places:
        refused(capsys, "audit", "model", "--dataset", "synthetic", flag, place, names=[flag])
    assert _tree(tmp_path) == before


def test_audit_model_read_only_store_is_refused_before_training(capsys, no_shadow_training,
                                                                readonly_dir):
    refused(capsys, "audit", "model", "--store", readonly_dir / "s", names=["store",
                                                                           "not writable"])


@pytest.fixture
def no_training(monkeypatch):
    pytest.importorskip("torch")
    import training.train as tr

    monkeypatch.setattr(tr, "train", _boom)
    return tr


def test_train_checkpoint_dir_is_checked_before_training(capsys, no_training, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    before = _tree(tmp_path)
    for place in (f, f / "sub"):
        refused(capsys, "train", "--dataset", "synthetic", "--checkpoint-dir", place,
                names=["--checkpoint-dir", "not a directory"])
    assert _tree(tmp_path) == before


def test_train_read_only_checkpoint_dir_is_refused(capsys, no_training, readonly_dir):
    refused(capsys, "train", "--dataset", "synthetic", "--checkpoint-dir",
            readonly_dir / "ckpt", names=["--checkpoint-dir", "not writable"])


@pytest.fixture
def no_poison_runs(monkeypatch):
    pytest.importorskip("torch")
    import training.poison as po

    monkeypatch.setattr(po, "run_grid", _boom)
    return po


@pytest.mark.parametrize("flag", ["--out", "--plot"])
def test_poison_eval_outputs_are_checked_before_running(capsys, no_poison_runs, tmp_path, flag):
    f, d = _bad_places(tmp_path, ".png")
    before = _tree(tmp_path)
    places = [d, f / "x.png"] + ([tmp_path / "x.txt"] if flag == "--plot" else [])
    for place in places:
        refused(capsys, "poison-eval", flag, place, names=[flag])
    assert _tree(tmp_path) == before


def test_poison_eval_read_only_out_and_malformed_results_are_refused(capsys, no_poison_runs,
                                                                    tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text("{not json")
    refused(capsys, "poison-eval", "--out", bad, names=["results file", "not valid JSON"])
    assert bad.read_text() == "{not json"


def test_poison_eval_read_only_out_is_refused(capsys, no_poison_runs, readonly_dir):
    refused(capsys, "poison-eval", "--out", readonly_dir / "r.json",
            names=["--out", "not writable"])


# ------------------------------------------------------------------ 3. audit model arguments

@pytest.mark.parametrize("args,names", [
    (["--confidence", "2"], ["confidence", "2"]),
    (["--confidence", "0"], ["confidence"]),
    (["--delta", "1.5"], ["delta"]),
    (["--noise", "-1"], ["noise"]),
    (["--noise", "nan"], ["noise"]),
    (["--lr", "inf"], ["lr"]),
    (["--models", "1"], ["models"]),
    (["--canary", "mislabeled"], ["mislabeled", "labels"]),
    (["--guesses", "10"], ["--guesses", "--one-run"]),
    (["--canaries", "10"], ["--canaries", "--one-run"]),
    (["--one-run", "--labels", "soft"], ["labels", "noised"]),
    (["--one-run", "--labels", "noised", "--canaries", "10", "--guesses", "20"], ["guesses"]),
    (["--one-run", "--labels", "noised", "--plot", "x.png"], ["--plot", "--one-run"]),
    (["--from-store"], ["--from-store", "--store"]),
    (["--from-store", "--store", "/nonexistent/store"], ["store", "does not exist"]),
])
def test_audit_model_arguments_are_all_checked_before_training(capsys, no_shadow_training, args,
                                                              names):
    refused(capsys, "audit", "model", "--dataset", "synthetic", *args, names=names)


def test_audit_model_from_store_needs_an_audit_there(capsys, no_shadow_training, tmp_path):
    refused(capsys, "audit", "model", "--from-store", "--store", tmp_path,
            names=["audit.json"])


# ------------------------------------------------------------------ 4. messages that say why

def test_pair_that_is_not_an_npz_says_so(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("dpaccount.audit.run.audit_mechanism", _boom)
    text = tmp_path / "pair.npz"
    text.write_text("d, d_prime\n1, 2\n")
    npy = tmp_path / "pair.npy"
    np.save(npy, np.zeros((4, 1)))
    half = tmp_path / "half.npz"
    np.savez(half, d=np.zeros((4, 1)))
    for path in (text, npy, half):
        err = refused(capsys, "audit", "mechanism", "--pair", path, names=["--pair"])
        assert "valid .npz file with arrays 'd' and 'd_prime'" in err
        assert "pickle" not in err
    refused(capsys, "audit", "mechanism", "--pair", tmp_path, names=["--pair", "not a file"])
    refused(capsys, "audit", "mechanism", "--pair", tmp_path / "nope.npz",
            names=["--pair", "does not exist"])


def test_train_data_dir_that_is_a_file_says_not_a_directory(capsys, no_training, tmp_path):
    f = tmp_path / "data_batch_1.bin"
    f.write_bytes(b"\0" * 3073)
    err = refused(capsys, "train", "--dataset", "cifar10", "--data-dir", f,
                  names=["--data-dir", "is not a directory"])
    assert "does not exist" not in err
    refused(capsys, "train", "--dataset", "cifar10", "--data-dir", tmp_path / "nope",
            names=["does not exist"])
    refused(capsys, "train", "--dataset", "digits", "--data-dir", tmp_path,
            names=["--data-dir", "cifar10"])


def test_load_cifar10_says_not_a_directory(tmp_path):
    pytest.importorskip("torch")
    from training.data import load_cifar10

    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="is not a directory"):
        load_cifar10(f)


# ------------------------------------------------------------------ 5. help shows own defaults

def test_audit_mechanism_help_shows_the_audit_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["audit", "mechanism", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    d = AUDIT_DEFAULTS
    for expected in (f"records mixed per release (default {d['k']})",
                     f"Laplace scale b per coordinate (default {d['noise']:g})",
                     f"training set size N (default {d['n']})",
                     f"instead of --image (default {d['diameter']:g})",
                     f"released (default {d['releases']})",
                     f"target delta (default {d['delta']:g})",
                     f"(default {d['labels']})"):
        assert expected in text, expected
    for epsilon_default in ("default 50000", "default 0.1)", "default 3x32x32", "default 1e-05",
                            "default 40"):
        assert epsilon_default not in text, epsilon_default


def test_epsilon_help_keeps_its_own_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["epsilon", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("(default 4)", "(default 0.1)", "(default 50000)", "(default 3x32x32)",
                     "(default 1e-05)", "(default 40)"):
        assert expected in text, expected


# ------------------------------------------------------------------ 6. one config per command

def test_cli_defaults_are_the_config_dataclasses():
    from training.config import ModelAuditConfig, TrainConfig

    parser = build_parser()
    train_args = vars(parser.parse_args(["train"]))
    for f in dataclasses.fields(TrainConfig):
        flag = {"clip": "no_clip", "augment": "no_augment"}.get(f.name, f.name)
        value = not train_args[flag] if flag.startswith("no_") else train_args[flag]
        assert value == f.default, f.name
    audit_args = vars(parser.parse_args(["audit", "model"]))
    for f in dataclasses.fields(ModelAuditConfig):
        assert audit_args[f.name] == f.default, f.name
    # the Python API builds the same run as the command line's defaults
    assert TrainConfig().noise == train_args["noise"] == 1.0
    assert ModelAuditConfig().noise == audit_args["noise"] == 1.0


@pytest.mark.parametrize("command", [["train"], ["audit", "model"]])
def test_labels_are_soft_or_noised_with_the_old_names_as_aliases(command):
    parser = build_parser()
    for given, meant in (("soft", "soft"), ("noised", "noised"), ("public", "soft"),
                         ("private", "noised")):
        assert parser.parse_args([*command, "--labels", given]).labels == meant


def test_model_audit_labels_flag_refuses_other_names(capsys):
    refused(capsys, "audit", "model", "--labels", "none", names=["--labels", "soft or noised"])


def test_model_audit_config_reads_old_label_names():
    from training.config import ModelAuditConfig

    assert ModelAuditConfig(labels="public").labels == "soft"
    assert ModelAuditConfig(labels="private").labels == "noised"
    with pytest.raises(InputError, match="labels"):
        ModelAuditConfig(labels="none")


# ------------------------------------------------------------------ 7. resuming training

def test_resume_names_the_changed_field_and_allows_more_epochs(tmp_path):
    pytest.importorskip("torch")
    from training.config import TrainConfig
    from training.train import train

    cfg = TrainConfig(dataset="synthetic", model="mlp", epochs=1, k=2, noise=2.0, batch_size=128,
                      device="cpu")
    first = train(cfg, checkpoint_dir=tmp_path)
    assert first["epochs_done"] == 1
    more = train(dataclasses.replace(cfg, epochs=2), checkpoint_dir=tmp_path)
    assert more["resumed_from_epoch"] == 1 and more["epochs_done"] == 2
    assert [h["epoch"] for h in more["history"]] == [1, 2]
    assert more["history"][0] == first["history"][0]
    assert more["releases"] == 2 * first["releases"]
    with pytest.raises(InputError, match=r"different configuration: noise \(checkpoint 2.0, "
                                         r"now 3.0\)"):
        train(dataclasses.replace(cfg, epochs=2, noise=3.0), checkpoint_dir=tmp_path)
    with pytest.raises(InputError, match="k .*lr|lr .*k") as exc:
        train(dataclasses.replace(cfg, epochs=2, k=3, lr=1e-2), checkpoint_dir=tmp_path)
    assert "noise" not in str(exc.value)
    with pytest.raises(InputError, match="2 epochs done, more than epochs=1"):
        train(cfg, checkpoint_dir=tmp_path)


# ------------------------------------------------------------------ 8. calibrate --solve k

_DIGITS = ["--noise", "1", "--n", "1797", "--image", "8x8", "--epochs", "10"]


def test_calibrate_k_small_k_max_answers_at_once(capsys):
    t0 = time.perf_counter()
    out = answered(capsys, "calibrate", "--solve", "k", *_DIGITS, "--target-epsilon", "1e6",
                   "--k-max", "2", "--json")
    assert time.perf_counter() - t0 < 10
    res = json.loads(out)
    assert res["value"] in (1, 2) and res["method"] in ("basic", "advanced", "kov", "rdp", "pld",
                                                      "pld-tilted")
    assert res["meets_target"] and "tightest" in res


def test_calibrate_k_large_k_max_with_no_answer_is_refused_quickly(capsys):
    t0 = time.perf_counter()
    refused(capsys, "calibrate", "--solve", "k", *_DIGITS, "--target-epsilon", "1",
            "--k-max", "1000", names=["no k in 1..1000", "epsilon 1"])
    assert time.perf_counter() - t0 < 20


def test_calibrate_k_is_the_smallest_k_whose_tightest_bound_meets_the_target():
    from dpaccount.calibration import calibrate_k
    from dpaccount.selection import tightest

    m = InstaHide(k=1, noise=0.5, n=30, diameter=4.0, releases=60, labels="none")
    for target in (12.0, 9.9):
        cal = calibrate_k(m, target, 1e-5, k_max=30)
        assert cal.epsilon <= target
        assert tightest(cal.mechanism, 1e-5).epsilon <= target
        for k in range(1, int(cal.value)):
            assert tightest(dataclasses.replace(m, k=k), 1e-5).epsilon > target, k


# ------------------------------------------------------------------ 9. start-up

START = r"""
import sys, time
t0 = time.perf_counter()
import dpaccount.cli
dpaccount.cli.build_parser()
took = time.perf_counter() - t0
heavy = sorted(m for m in ("numpy", "scipy", "sympy", "mpmath", "torch") if m in sys.modules)
print(f"{took:.3f}", ",".join(heavy) or "none")
"""


def test_cli_starts_without_heavy_imports():
    proc = subprocess.run([sys.executable, "-c", START], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    took, heavy = proc.stdout.split()
    assert heavy == "none"
    assert float(took) < 0.5
