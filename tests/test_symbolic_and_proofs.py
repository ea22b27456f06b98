"""The sympy derivation, the proofs/ scripts, and the links between them and the code."""

import glob
import importlib
import os
import re
import subprocess
import sys

import pytest
import sympy as sp

from dpaccount import InstaHide
from dpaccount.numerics import closed_form as cf
from dpaccount import symbolic

from .conftest import ROOT
from .conftest import closed_rows

PROOFS = sorted(p for p in glob.glob(os.path.join(ROOT, "proofs", "*.py"))
                if not os.path.basename(p).startswith("_"))


def test_there_are_proofs():
    assert len(PROOFS) >= 4


@pytest.mark.parametrize("path", PROOFS, ids=[os.path.basename(p) for p in PROOFS])
def test_proof_script_runs_and_concludes(path):
    proc = subprocess.run([sys.executable, path], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("QED")
    assert "FAILED" not in proc.stdout


def _resolve(dotted):
    """A function or a method (``module.Class.method``): the longest importable module prefix,
    then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("path", PROOFS, ids=[os.path.basename(p) for p in PROOFS])
def test_each_proof_names_functions_that_name_it_back(path):
    text = open(path).read()
    m = re.search(r"Justifies:(.*?)\n\n", text, re.S)
    assert m, f"{path} does not say which function it justifies"
    names = [n.strip().rstrip(",") for n in m.group(1).split()]
    names = [n for n in names if n.startswith("dpaccount.")]
    assert names
    rel = "proofs/" + os.path.basename(path)
    for dotted in names:
        func = _resolve(dotted)
        assert rel in (func.__doc__ or ""), f"{dotted} does not name {rel}"


def test_laplace_supremum_derived():
    sup, pieces = symbolic.laplace_log_ratio_sup()
    assert sp.simplify(sup - symbolic.s / symbolic.b) == 0
    # independent numeric check: maximise the log-ratio on a grid (b = 0.7, s = 1.3)
    import numpy as np
    zs = np.linspace(-10, 10, 200001)
    lr = (np.abs(zs - 1.3) - np.abs(zs)) / 0.7
    assert lr.max() == pytest.approx(1.3 / 0.7, rel=1e-12)


def test_derivation_values_match_log_space_closed_forms():
    m = InstaHide.from_epochs(labels="none", k=4, noise=0.1, n=50000, diameter=3072.0, epochs=40)
    der = symbolic.derive(m, 1e-5)
    vals = {st.title.split(":")[0]: st.value for st in der.steps}
    table = {r.method: r.epsilon for r in closed_rows(m, 1e-5)}
    # sympy evaluates exp(7680) at 30 digits: an independent check of the log-space arithmetic
    assert vals["per release"] == pytest.approx(table["per_release"], rel=1e-15)
    assert vals["amplified"] == pytest.approx(table["amplified"], rel=1e-14)
    assert vals["basic composition"] == pytest.approx(table["basic"], rel=1e-14)
    assert vals["advanced composition, slack delta"] is None and table["advanced"] is None


def test_derivation_advanced_matches_when_representable():
    m = InstaHide(labels="none", k=4, noise=1.0, n=1797, diameter=64.0, releases=17970)
    der = symbolic.derive(m, 1e-5)
    adv = [st for st in der.steps if st.title.startswith("advanced")][0]
    assert adv.value == pytest.approx(cf.advanced_composition(
        cf.amplified_epsilon(16.0, 4 / 1797), 17970, 1e-5), rel=1e-12)


def test_derivation_renders_text_latex_and_json():
    m = InstaHide(labels="none", k=2, noise=0.5, n=100, diameter=1.0, releases=1000)
    der = symbolic.derive(m, 1e-6)
    text = der.text()
    assert "epsilon_0 = Delta/(b*k)" in text
    assert "log(1 + k*(exp(Delta/(b*k)) - 1)/N)" in text
    assert "relation substitution, sampler subsets, delta 1e-06" in text
    latex = der.latex()
    assert latex.startswith(r"\begin{align*}") and r"\frac{\Delta}{b k}" in latex
    d = der.to_dict()
    assert d["mechanism"]["k"] == 2 and len(d["steps"]) == len(der.steps)


def test_derivation_permutation_sampler():
    m = InstaHide(labels="none", k=4, noise=1.0, n=100, diameter=2.0, releases=250, sampler="permutation")
    der = symbolic.derive(m, 1e-5)
    basic = [st for st in der.steps if st.title == "basic composition"][0]
    assert basic.value == pytest.approx(6.0)
