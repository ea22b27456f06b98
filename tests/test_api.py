"""The top-level Python API says what the CLI says, for the same run (the issue's acceptance)."""

import json

import pytest

import dpaccount

from .conftest import run_cli

DIGITS = ["--k", "4", "--noise", "2", "--n", "1797", "--image", "8x8", "--labels", "none",
          "--delta", "1e-5"]


def _cli_json(*args):
    proc = run_cli(*args, "--json", check=True)
    return json.loads(proc.stdout)


def _digits(epochs):
    return dpaccount.InstaHide.from_epochs(k=4, noise=2.0, n=1797, diameter=64.0, epochs=epochs,
                                           labels="none")


def test_table_and_tightest_equal_the_cli():
    out = _cli_json("epsilon", *DIGITS, "--epochs", "10")
    table = dpaccount.epsilon(_digits(10), 1e-5)
    assert [r.to_dict() for r in table.rows] == out["results"]
    best = dpaccount.tightest(_digits(10), 1e-5)
    assert best.to_dict() == out["tightest"]
    assert best.method == out["tightest"]["method"]


def test_two_phase_composition_equals_the_cli():
    out = _cli_json("epsilon", *DIGITS, "--phase", "epochs=6", "--phase", "noise=4,epochs=4")
    event = dpaccount.compose(_digits(6), dpaccount.InstaHide.from_epochs(
        k=4, noise=4.0, n=1797, diameter=64.0, epochs=4, labels="none"))
    table = dpaccount.epsilon(event, 1e-5)
    assert [r.to_dict() for r in table.rows] == out["results"]
    assert dpaccount.tightest(event, 1e-5).epsilon == out["tightest"]["epsilon"]
    assert len(out["phases"]) == 2
    assert out["phases"][1]["mechanism"]["noise"] == 4.0
    assert [r["method"] for r in out["phases"][0]["results"]] == [
        "naive", "per_release", "amplified", "basic", "advanced", "kov", "rdp", "pld",
        "pld-tilted"]


def test_step_accountant_equals_the_cli():
    out = _cli_json("epsilon", *DIGITS, "--releases", str(10 * 1797))
    acc = dpaccount.StepAccountant(k=4, noise=2.0, n=1797, diameter=64.0, labels="none")
    for _ in range(10):
        for start in range(0, 1797, 64):
            acc.step(releases=min(64, 1797 - start))
    assert acc.get_epsilon(1e-5) == out["tightest"]["epsilon"]


def test_calibrate_and_certify_are_top_level():
    m = _digits(10)
    cal = dpaccount.calibrate(m, 5.0, 1e-5, solve="noise")
    assert cal.epsilon <= 5.0 and cal.method == dpaccount.tightest(cal.mechanism, 1e-5).method
    certs = dpaccount.certify(m, 1, 0.01)
    assert {c.method for c in certs} == {"group_privacy", "direct_group"}
    with pytest.raises(dpaccount.InputError, match="solve"):
        dpaccount.calibrate(m, 5.0, 1e-5, solve="b")


def test_audit_entry_points_are_top_level():
    m = dpaccount.InstaHide(k=2, noise=1.0, n=4, diameter=4.0, releases=2, labels="none")
    audit = dpaccount.audit_mechanism(m, delta=1e-2, trials=2000, seed=0)
    assert audit.epsilon_lower_bound <= audit.epsilon_upper_bound
    assert dpaccount.worst_case_pair(m).d.shape == (4, 1)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        dpaccount.no_such_thing  # noqa: B018
