"""Auditing a user's implementation: ``dpaccount audit mechanism --implementation
module:function``, the release-function contract (all randomness from the rng it is given) and
its probe digest in a store's identity."""

import itertools
import json
import sys
import textwrap

import numpy as np
import pytest

from dpaccount.audit import InstaHideReleases, audit_mechanism, worst_case_pair
from dpaccount.audit.contract import PROBE_TRIALS, as_release_fn, check_release_fn, \
    load_implementation, release_fn_kind
from dpaccount.errors import InputError
from dpaccount.events import InstaHide

from ..conftest import assert_usage_error, run_cli

MECH = InstaHide(k=2, noise=1.0, n=4, diameter=4.0, releases=3, labels="none")
FLAGS = ["--k", "2", "--noise", "1", "--n", "4", "--diameter", "4", "--releases", "3"]
_names = itertools.count()

#: a user's module: the faithful mechanism in plain numpy (from the rng only), the same with a
#: factory, one that draws from numpy's global RNG, one that seeds its own generator, a
#: counter of the trials it was asked for
MODULE = '''
import numpy as np

CALLS = []

def release(dataset, trials, rng):
    CALLS.append(trials)
    data = np.asarray(dataset, dtype=float)
    n, d = data.shape
    out = np.empty((trials, 3, d))
    for t in range(3):
        idx = np.argsort(rng.random((trials, n)), axis=1)[:, :2]
        out[:, t] = data[idx].mean(1) + rng.laplace(0.0, 1.0, (trials, d))
    return out

def factory(mechanism):
    assert mechanism.k == 2 and mechanism.releases == 3
    return release

def global_rng(dataset, trials, rng):
    out = release(dataset, trials, rng)
    return out + np.random.laplace(0.0, 1e-6, out.shape)

def own_seed(dataset, trials, rng):
    return release(dataset, trials, np.random.default_rng(1234))

NOT_CALLABLE = 3

def two_arguments(dataset, trials):
    return None

def failing_factory(mechanism):
    raise RuntimeError("no GPU here")
'''


def _module(tmp_path, monkeypatch, source=MODULE):
    """Write ``source`` as a fresh module (a new name each time: sys.modules caches) on the
    path, as a user's file beside them would be."""
    name = f"user_impl_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_cli_audits_an_implementation_and_resumes_its_store(tmp_path, monkeypatch):
    name = _module(tmp_path, monkeypatch)
    store = tmp_path / "store"
    args = ["audit", "mechanism", *FLAGS, "--trials", "6000", "--implementation",
            f"{name}:release", "--store", store, "--json"]
    first = run_cli(*args, check=True)
    out = json.loads(first.stdout)
    assert out["implementation"] == f"{name}:release"
    # the default for --implementation: the audit's strongest black-box statistic
    assert out["statistic"].startswith("learned-llr")
    assert out["verdict"] in ("consistent", "inconclusive") and not out["exceeds_upper_bound"]
    identity = json.loads((store / "audit.json").read_text())["identity"]
    assert len(identity["probe"]) == 16 and identity["implementation"] == f"{name}:release"
    calls = sys.modules[name].CALLS
    assert sum(c for c in calls if c != PROBE_TRIALS) >= 2 * 6000  # both sides simulated
    calls.clear()
    # the second run reads every block back: only the contract's probes and the statistic's
    # fitting trials (which certify nothing and are not stored) call the function again
    again = run_cli(*args, check=True)
    assert PROBE_TRIALS in calls
    assert sum(c for c in calls if c != PROBE_TRIALS) == 2 * out["fit_trials_per_side"]
    assert json.loads(again.stdout)["epsilon_lower_bound"] == out["epsilon_lower_bound"]
    assert json.loads(again.stdout)["test"] == out["test"]
    # the factory form gives the same releases (same seeds), so the same audit
    fac = run_cli("audit", "mechanism", *FLAGS, "--trials", "6000", "--implementation",
                  f"{name}:factory", "--json", check=True)
    assert json.loads(fac.stdout)["epsilon_lower_bound"] == out["epsilon_lower_bound"]


def test_cli_text_output_names_the_implementation(tmp_path, monkeypatch):
    name = _module(tmp_path, monkeypatch)
    p = run_cli("audit", "mechanism", *FLAGS, "--trials", "3000", "--implementation",
                f"{name}:release", "--statistic", "exact-llr", check=True)
    assert f"implementation: {name}:release" in p.stdout
    assert "test: exact-llr" in p.stdout  # an explicit --statistic is kept


@pytest.mark.parametrize("attr,match", [
    ("global_rng", "draws randomness outside the rng it is given"),
    ("own_seed", "ignores the rng it is given"),
    ("two_arguments", "takes neither"),
    ("NOT_CALLABLE", "not callable"),
    ("missing", "has no attribute 'missing'"),
    ("failing_factory", "the factory raised RuntimeError when called with the mechanism: no GPU"),
])
def test_cli_refuses_a_bad_implementation_before_simulating(attr, match, tmp_path,
                                                            monkeypatch):
    name = _module(tmp_path, monkeypatch)
    store = tmp_path / "store"
    p = run_cli("audit", "mechanism", *FLAGS, "--trials", "6000", "--implementation",
                f"{name}:{attr}", "--store", store)
    assert_usage_error(p, match)
    assert f"--implementation '{name}:{attr}'" in p.stderr
    assert not (store / "audit.json").exists()
    assert all(c == PROBE_TRIALS for c in sys.modules[name].CALLS)  # probes only


@pytest.mark.parametrize("spec,match", [
    ("no_colon_here", "must be module:function"),
    ("a:b:c", "must be module:function"),
    (":release", "must be module:function"),
    ("surely_no_such_module_xyz:release", "no module named 'surely_no_such_module_xyz'"),
    ("dpaccount.no_such_submodule:f", "no module named 'dpaccount.no_such_submodule'"),
])
def test_cli_refuses_a_bad_spec(spec, match):
    p = run_cli("audit", "mechanism", "--trials", "1000", "--implementation", spec)
    assert_usage_error(p, match)
    assert "--implementation" in p.stderr and spec in p.stderr


def test_an_import_that_raises_is_one_line(tmp_path, monkeypatch):
    name = _module(tmp_path, monkeypatch, "import numpy\nraise ImportError('needs cuda')\n")
    p = run_cli("audit", "mechanism", "--trials", "1000", "--implementation", f"{name}:f")
    assert_usage_error(p, f"importing {name} raised ImportError: needs cuda")
    missing = _module(tmp_path, monkeypatch, "import surely_not_installed_xyz\n")
    p = run_cli("audit", "mechanism", "--trials", "1000", "--implementation", f"{missing}:f")
    assert_usage_error(p, "raised ModuleNotFoundError")  # the module exists; its import fails


def test_the_current_directory_is_on_the_path(tmp_path, monkeypatch):
    # like `python -m`: a module in the directory the command runs in is found
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.chdir(tmp_path)
    name = f"user_impl_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    fn, label = load_implementation(f"{name}:factory", MECH)
    assert label == f"{name}:factory" and fn.__name__ == "release"


def test_the_contract_check_refuses_and_digests():
    data = worst_case_pair(MECH).d
    ref = InstaHideReleases.from_mechanism(MECH)
    shape = (PROBE_TRIALS, 3, 1)
    digest = check_release_fn(ref, data, PROBE_TRIALS, shape, seed=0)
    assert len(digest) == 16 and digest == check_release_fn(ref, data, PROBE_TRIALS, shape, 0)
    assert digest != check_release_fn(ref, data, PROBE_TRIALS, shape, seed=1)

    def global_numpy(dataset, trials, rng):
        return ref(dataset, trials, np.random.default_rng(np.random.randint(2**31)))

    def wrong_shape(dataset, trials, rng):
        return ref(dataset, trials, rng)[:, 0]

    def not_finite(dataset, trials, rng):
        z = ref(dataset, trials, rng)
        z[0, 0, 0] = np.nan
        return z

    def raises(dataset, trials, rng):
        raise KeyError("oops")

    for fn, match in ((global_numpy, "outside the rng"),
                      (wrong_shape, r"shape \(4, 1\); expected \(4, 3, 1\)"),
                      (not_finite, "nan or inf"), (raises, "raised KeyError")):
        with pytest.raises(InputError, match=match):
            check_release_fn(fn, data, PROBE_TRIALS, shape, seed=0)


def test_torch_global_generator_is_refused():
    torch = pytest.importorskip("torch")
    ref = InstaHideReleases.from_mechanism(MECH)

    def torch_global(dataset, trials, rng):
        z = ref(dataset, trials, rng)
        return z + torch.rand(z.shape, dtype=torch.float64).numpy() * 1e-6  # global generator

    with pytest.raises(InputError, match="torch's global generator"):
        audit_mechanism(MECH, delta=1e-2, trials=1000, release_fn=torch_global)


def test_audit_mechanism_checks_before_any_block_and_stores_the_probe(tmp_path):
    calls = []

    def leaky(dataset, trials, rng):
        calls.append(trials)
        return InstaHideReleases.from_mechanism(MECH)(dataset, trials, np.random.default_rng())

    with pytest.raises(InputError, match="outside the rng"):
        audit_mechanism(MECH, delta=1e-2, trials=5000, release_fn=leaky, store=tmp_path / "s")
    assert calls == [PROBE_TRIALS, PROBE_TRIALS] and not (tmp_path / "s").exists()
    # a store of one implementation is not resumed with another of the same name that
    # behaves differently: the probe digest is part of the store's identity
    store = tmp_path / "store"
    good = InstaHideReleases.from_mechanism(MECH)
    audit_mechanism(MECH, delta=1e-2, trials=2000, release_fn=good, implementation="mine",
                    store=store, statistic="projection")
    other = InstaHideReleases(2, 0.5, 3)
    with pytest.raises(InputError, match="different audit.*probe"):
        audit_mechanism(MECH, delta=1e-2, trials=2000, release_fn=other, implementation="mine",
                        store=store, statistic="projection")


def test_release_function_or_factory():
    def release(dataset, trials, rng):
        return None

    def factory(mechanism):
        return release

    class Impl:  # a class whose constructor takes the mechanism is a factory
        def __init__(self, mechanism):
            self.k = mechanism.k

        def __call__(self, dataset, trials, rng):
            return None

    assert release_fn_kind(release) == "release" and release_fn_kind(factory) == "factory"
    assert as_release_fn(factory, MECH) is release and as_release_fn(release, MECH) is release
    assert isinstance(as_release_fn(Impl, MECH), Impl)
    with pytest.raises(InputError, match="ambiguous"):
        release_fn_kind(lambda *args: None)
    with pytest.raises(InputError, match="returned int, not a release function"):
        as_release_fn(lambda mechanism: 3, MECH)
