"""The command line: the README's examples, the JSON contract, and one-line errors."""

import json
import math
import os
import shlex

import pytest

from dpaccount.numerics import closed_form as cf
from dpaccount.cli import main

from .conftest import ROOT, run_cli
from .conftest import CLOSED_FORM_METHODS

README = open(os.path.join(ROOT, "README.md")).read()


def readme_cli_examples():
    block = README.split("## Command line", 1)[1].split("```", 2)[1]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("dpaccount ")]


def test_readme_has_examples():
    assert len(readme_cli_examples()) >= 3


#: the commands that need an optional extra, and the modules that extra installs
EXTRAS = {"train": ("torch", "sklearn"), "poison-eval": ("torch", "sklearn"),
          "audit model": ("torch", "sklearn")}


@pytest.mark.parametrize("line", readme_cli_examples())
def test_readme_example_runs(line):
    # an example whose extra is not installed is skipped, never failed
    for command, modules in EXTRAS.items():
        if line.startswith("dpaccount " + command):
            for module in modules:
                pytest.importorskip(module)
    if "--defense dpsgd" in line or "dpsgd" in line.split():
        pytest.importorskip("opacus")
    proc = run_cli(*shlex.split(line)[1:])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and not proc.stderr


def test_quick_start_commands_are_what_ci_runs():
    block = README.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [c.strip() for c in block.strip().splitlines() if c.strip()]
    assert len(commands) == 2
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    for c in commands:
        assert c in ci


def _json(*args):
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


CONTRACT = ["epsilon", "--k", "4", "--noise", "0.1", "--n", "50000", "--image", "3x32x32",
            "--epochs", "40", "--delta", "1e-5", "--class-sizes", "10x5000", "--json"]


def test_json_contract():
    out = _json(*CONTRACT)
    methods = [r["method"] for r in out["results"]]
    assert methods == ["naive", "per_release", "amplified", "basic", "advanced", "kov", "rdp",
                       "pld", "pld-tilted"]
    for r in out["results"]:
        assert {"method", "epsilon", "delta", "relation", "sampler"} <= set(r)
        assert r["relation"] == "substitution" and r["sampler"] == "subsets"
        assert r["epsilon"] is None or (isinstance(r["epsilon"], float) and
                                        math.isfinite(r["epsilon"]))
    rows = {r["method"]: r for r in out["results"]}
    # independent values: Delta = 3*32*32 = 3072, b = 0.1, k = 4
    assert rows["naive"]["epsilon"] == 30720.0
    assert rows["per_release"]["epsilon"] == 7680.0
    # soft labels (the default release) of 10 classes of 5000: the label can show all k = 4
    # records of the record's class, so q = 4/5000, not k/N = 4/50000;
    # eps1 = 7680 + log(q) + log1p((1-q) e^-7680 / q): the last term underflows to 0
    assert rows["amplified"]["epsilon"] == pytest.approx(7680 + math.log(4 / 5000), rel=1e-15)
    assert all(r["labels"] == "soft" for r in out["results"])
    assert rows["basic"]["epsilon"] == pytest.approx(2e6 * rows["amplified"]["epsilon"],
                                                     rel=1e-15)
    assert rows["kov"]["delta"] == 1e-5 and rows["basic"]["delta"] == 0.0
    assert rows["kov"]["epsilon"] <= rows["basic"]["epsilon"]
    # eps0 = 7680 is beyond the lattice: the pld row says it does not apply, and no other
    # method's number appears under its name; the tightest bound names the method it came from
    assert rows["pld"]["epsilon"] is None and "not applicable" in rows["pld"]["note"]
    assert "eps0 = 7680" in rows["pld"]["note"]
    best = min((r for r in out["results"] if r["releases"] == 2_000_000 and
                r["epsilon"] is not None), key=lambda r: r["epsilon"])
    assert out["tightest"]["method"] == best["method"] != "pld"
    assert out["tightest"]["epsilon"] == best["epsilon"]
    # the tilted lattice covers it with both ends: within 1% of the independent Monte Carlo
    # estimate 1,664,360 (benchmarks/mc_large_eps0.py) and 4 orders below the closed forms
    tilted = rows["pld-tilted"]
    assert tilted["epsilon_lower"] <= 1_664_360 <= tilted["epsilon"]
    assert (tilted["epsilon"] - tilted["epsilon_lower"]) / tilted["epsilon"] < 0.01
    assert tilted["epsilon"] < 1e-3 * rows["rdp"]["epsilon"]
    assert out["mechanism"]["releases"] == 2_000_000


def test_diameter_and_releases_replace_image_and_epochs():
    a = _json(*CONTRACT)
    b = _json("epsilon", "--k", "4", "--noise", "0.1", "--n", "50000", "--diameter", "3072",
              "--releases", "2e6", "--delta", "1e-5", "--class-sizes", "10x5000", "--json")
    assert [r["epsilon"] for r in a["results"]] == [r["epsilon"] for r in b["results"]]


def test_kov_at_2e6_releases_with_eps0_in_the_hundreds():
    # eps0 = 300: Delta = 120, k = 4, b = 0.1
    out = _json("epsilon", "--k", "4", "--noise", "0.1", "--n", "50000", "--diameter", "120",
                "--releases", "2000000", "--labels", "none", "--json")
    kov = {r["method"]: r for r in out["results"]}["kov"]["epsilon"]
    e1 = cf.amplified_epsilon(300.0, 4 / 50000)
    assert kov == pytest.approx(2e6 * e1 + math.log1p(-1e-5), rel=1e-12)


def test_no_flags_uses_and_announces_the_default(capsys):
    assert main(["epsilon"]) == 0
    out = capsys.readouterr().out
    assert "embedded default" in out and "CIFAR-10" in out
    for word in ("naive", "per_release", "amplified", "basic", "advanced", "kov",
                 "substitution", "subsets", "1e-05"):
        assert word in out


def test_every_row_in_text_output_names_relation_sampler_delta(capsys):
    assert main(["epsilon", "--k", "2", "--noise", "1", "--n", "100", "--diameter", "1",
                 "--releases", "50", "--relation", "add_remove", "--sampler", "poisson",
                 "--norm", "1", "--labels", "none"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.split()[:1] and line.split()[0] in
            CLOSED_FORM_METHODS + ("rdp", "pld")]
    assert len(rows) == 8
    for line in rows:
        assert "add_remove" in line and "poisson" in line


def test_derive_text_latex_json():
    text = run_cli("derive", "--k", "4", "--noise", "1", "--n", "1797", "--image", "8x8",
                   "--epochs", "10", check=True).stdout
    assert "epsilon_0 = Delta/(b*k)" in text and "= 16" in text
    latex = run_cli("derive", "--k", "4", "--noise", "1", "--n", "1797", "--image", "8x8",
                    "--epochs", "10", "--latex", check=True).stdout
    assert latex.startswith(r"\begin{align*}")
    out = _json("derive", "--k", "4", "--noise", "1", "--n", "1797", "--image", "8x8",
                "--epochs", "10", "--labels", "none", "--json")
    amp = [s for s in out["steps"] if s["title"].startswith("amplified")][0]
    assert amp["value"] == pytest.approx(cf.amplified_epsilon(16.0, 4 / 1797), rel=1e-14)
    # the default release has an un-noised soft label: a record alone in its class (no class
    # sizes given) gets no amplification, q = 1
    out = _json("derive", "--k", "4", "--noise", "1", "--n", "1797", "--image", "8x8",
                "--epochs", "10", "--json")
    amp = [s for s in out["steps"] if s["title"].startswith("amplified")][0]
    assert amp["value"] == pytest.approx(16.0, rel=1e-14) and "soft label" in amp["title"]


BAD = [
    (["--noise", "-1"], "noise"),
    (["--noise", "0"], "noise"),
    (["--noise", "nan"], "noise"),
    (["--noise", "inf"], "noise"),
    (["--noise", "abc"], "noise"),
    (["--k", "0"], "k"),
    (["--k", "2.5"], "k"),
    (["--k", "5", "--n", "4"], "k must be at most n"),
    (["--n", "-3"], "n"),
    (["--delta", "0"], "delta"),
    (["--delta", "1"], "delta"),
    (["--delta", "1.5"], "delta"),
    (["--delta", "nan"], "delta"),
    (["--image", "3xAx32"], "image shape"),
    (["--image", "0x32x32"], "image shape"),
    (["--image", "3x32x32", "--diameter", "5"], "not allowed"),
    (["--diameter", "-5"], "diameter"),
    (["--diameter", "5", "--value-range", "0,1"], "value-range"),
    (["--value-range", "1,0"], "value_range"),
    (["--value-range", "zero,one"], "value range"),
    (["--epochs", "0"], "epochs"),
    (["--epochs", "40", "--releases", "100"], "not allowed"),
    (["--releases", "0"], "releases"),
    (["--sampler", "shuffle"], "sampler"),
    (["--sampler", "poisson"], "poisson"),
    (["--sampler", "permutation", "--relation", "add_remove"], "permutation"),
    (["--bogus"], "unrecognized"),
    (["--labels", "public"], "ambiguous"),
    (["--labels", "hard"], "labels"),
    (["--class-sizes", "10x500"], "sum to n"),
    (["--class-sizes", "3,a,4"], "class sizes"),
    (["--class-sizes", "0,50000"], "class sizes"),
    (["--labels", "none", "--class-sizes", "10x5000"], "--class-sizes applies"),
    (["--labels", "soft", "--relation", "add_remove"], "soft"),
    (["--diameter", "1", "--norm", "0.1", "--sampler", "poisson", "--relation", "add_remove",
      "--labels", "none"], "norm must be at least"),
    (["--diameter", "1", "--norm", "nan", "--sampler", "poisson", "--relation", "add_remove",
      "--labels", "none"], "norm"),
    (["--image", "8x8", "--norm", "5"], "--norm applies"),
]


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2(args, needle, capsys):
    assert main(["epsilon", *args]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dpaccount: error:")
    assert needle in lines[0]


@pytest.mark.parametrize("args", [["epsilon", "--noise", "-1"], ["derive", "--k", "0"], [],
                                  ["epsilon", "--delta", "2", "--json"]])
def test_bad_input_in_a_real_process_has_no_traceback(args):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
