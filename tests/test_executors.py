"""The executors (dpaccount.executors): each long job under Ray gives the local executor's result
for the same seed; a run killed part-way resumes without losing or redoing a kept unit; a unit
that raises is retried by Ray, and one that keeps failing stops the run with its error while
what finished is kept.

One local Ray runtime (2 CPUs) serves the whole module; the jobs find it already started and
leave it running. The kill is an interrupt raised in the driver after some units were kept (as
Ctrl-C or a dying driver would stop it), in process: what matters is what the store holds."""

import dataclasses
import json

import pytest

from dpaccount.errors import InputError
from dpaccount.executors import (FailingUnits, LocalExecutor, RayExecutor, UnitFailed,
                                 check_executor_args, make_executor)

from .conftest import assert_usage_error, run_cli

# one xdist worker for every test of this module: they share a module-scoped fixture
pytestmark = pytest.mark.xdist_group("ray")


# ------------------------------------------------------------ argument checks (no Ray needed)

@pytest.mark.parametrize("executor, address, match", [
    ("dask", None, "executor must be one of local, ray; got 'dask'"),
    ("local", "1.2.3.4:6379", "applies to the ray executor only"),
    ("ray", "not an address", "host:port"),
    ("ray", 6379, "host:port"),
])
def test_bad_executor_arguments_are_refused(executor, address, match, monkeypatch):
    monkeypatch.setattr("dpaccount.executors.ray_available", lambda: True)
    with pytest.raises(InputError, match=match):
        check_executor_args(executor, address)


def test_ray_missing_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setattr("dpaccount.executors.ray_available", lambda: False)
    with pytest.raises(InputError, match=r"pip install 'dpaccount\[ray\]'"):
        make_executor("ray")
    # the CLI refuses it before any work, and before writing anything
    store = tmp_path / "s"
    res = run_cli("audit", "mechanism", "--executor", "ray", "--trials", "100", "--store", store)
    assert_usage_error(res, "--executor 'ray' needs Ray")
    assert not store.exists()
    res = run_cli("audit", "model", "--one-run", "--executor", "ray")
    assert_usage_error(res, "--executor 'ray' needs Ray")


def test_cli_refuses_executor_where_nothing_runs_in_units(monkeypatch):
    monkeypatch.setattr("dpaccount.executors.ray_available", lambda: True)
    assert_usage_error(run_cli("audit", "model", "--one-run", "--executor", "ray"),
                       "--one-run trains one model")
    assert_usage_error(run_cli("audit", "mechanism", "--ray-address", "h:1"),
                       "applies to the ray executor only")


def test_an_address_where_nothing_answers_is_refused_at_once():
    import socket
    import time

    from dpaccount.executors import check_reachable

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    with pytest.raises(InputError, match=f"nothing answers at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(InputError, match="nothing answers"):
        check_reachable(f"ray://127.0.0.1:{port}")
    assert time.monotonic() - t < 30  # refused, not waited on (Ray itself waits minutes)


def test_local_executor_keeps_order_and_hooks(tmp_path):
    seen = []
    rec = FailingUnits(lambda ctx, u: ctx * u, {}, tmp_path)
    LocalExecutor(wrap=lambda fn: rec, observe=seen.append).run(
        None, 3, [2, 1, 5], lambda u, r: seen.append((u, r)))
    assert seen == [(2, 6), 2, (1, 3), 1, (5, 15), 5]
    assert [rec.calls(u) for u in (1, 2, 5, 7)] == [1, 1, 1, 0]


def test_unit_failed_is_exit_1_naming_the_unit_and_what_was_kept(monkeypatch, tmp_path):
    def boom(*a, **k):
        raise UnitFailed("block 3 of side d", 3, "MemoryError: out of memory")

    monkeypatch.setattr("dpaccount.audit.run.audit_mechanism", boom)
    res = run_cli("audit", "mechanism", "--trials", "100", "--store", tmp_path / "s")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1
    assert "unit block 3 of side d failed 3 times (Ray retried it 2 times): MemoryError" in \
        res.stderr and "kept in" in res.stderr and "rerun to resume" in res.stderr


# ------------------------------------------------------------------------- under Ray

ray = None


@pytest.fixture(scope="module")
def runtime():
    global ray
    from dpaccount.executors import ray_available

    if not ray_available():
        pytest.skip("ray is not installed (pip install 'dpaccount[ray]')")
    import ray
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    yield
    if started:
        ray.shutdown()


class Interrupted(KeyboardInterrupt):
    pass


def interrupt_after(n: int):
    """An ``observe`` hook that stops the driver once ``n`` units were kept."""
    kept = []

    def observe(unit):
        kept.append(unit)
        if len(kept) == n:
            raise Interrupted
    return observe


def kill_resume_retry_fail(run, units, tmp_path, same):
    """The executor contract on one job. ``run(executor, store)`` runs the job into ``store``
    and returns its result; ``units`` are its unit keys; ``same(a, b)`` compares results.
    Returns nothing; asserts:

    - killed after 2 units under Ray, the store keeps those 2 (and whatever else arrived);
    - resumed under Ray with one unit failing once: the kept units are not recomputed, every
      other unit is computed exactly once, the failed one retried (2 attempts), and the result
      equals the local executor's uninterrupted run;
    - a unit failing on every attempt (the last) stops the run with UnitFailed naming it and
      its error, after Ray's retries, with the other units kept.

    Returns the third run's store, for the job's own look at what it kept."""
    reference = run(LocalExecutor(), None)
    store = tmp_path / "store"
    first = None

    def wrap1(fn):
        nonlocal first
        first = FailingUnits(fn, {}, tmp_path / "run1")
        return first

    with pytest.raises(Interrupted):
        run(RayExecutor(wrap=wrap1, observe=interrupt_after(2), window=2), store)
    second = None
    flaky = units[-1]

    def wrap2(fn):
        nonlocal second
        second = FailingUnits(fn, {flaky: 1}, tmp_path / "run2")
        return second

    resumed = run(RayExecutor(wrap=wrap2), store)
    assert same(resumed, reference)
    done_first = [u for u in units if first.calls(u) and second.calls(u) == 0]
    assert len(done_first) >= 2  # what was kept before the kill was not redone
    for u in units:
        # each unit's kept result was computed once: in the first run or in the resumed one
        # (a unit running when the kill came may have finished unkept, and is redone)
        assert second.calls(u) <= 1
    assert second.attempts(flaky) == 2 and second.calls(flaky) == 1  # retried once by Ray
    # a unit that fails on every attempt: the run stops with its name and error
    store3 = tmp_path / "store3"
    third = None

    def wrap3(fn):
        nonlocal third
        third = FailingUnits(fn, {units[-1]}, tmp_path / "run3")
        return third

    with pytest.raises(UnitFailed, match=r"failed 2 times .*InjectedFailure: injected failure"):
        run(RayExecutor(wrap=wrap3, retries=1, window=1), store3)
    assert third.attempts(units[-1]) == 2
    assert all(third.calls(u) == 1 for u in units[:-1])
    return store3


def test_mechanism_audit_under_ray(runtime, tmp_path, monkeypatch):
    from dpaccount.audit import run as audit_run
    from dpaccount.events import InstaHide, Labels

    monkeypatch.setattr(audit_run, "BLOCK_VALUES", 4000)  # 400 trials a block: 5 per side
    mech = InstaHide(k=2, noise=1.0, n=4, diameter=4.0, releases=10, labels=Labels.NONE)

    def run(ex, store):
        return audit_run.audit_mechanism(mech, delta=1e-2, trials=2000, seed=7, executor=ex,
                                         store=store)

    units = [(s, b) for s in (0, 1) for b in range(5)]
    store3 = kill_resume_retry_fail(run, units, tmp_path,
                                    lambda a, b: a.test == b.test and
                                    a.epsilon_lower_bound == b.epsilon_lower_bound)
    kept = sorted(p.name for p in store3.glob("scores-*.npy"))
    # every unit but the failing one (side D', block 4) is kept
    assert kept == sorted([f"scores-d-{b:06d}.npy" for b in range(5)] +
                          [f"scores-d_prime-{b:06d}.npy" for b in range(4)])


def test_a_gpu_the_cluster_lacks_is_refused_not_waited_for(runtime, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from training.data import synthetic
    from training.model_audit import ModelAuditConfig, shadow_audit

    if ray.cluster_resources().get("GPU", 0):
        pytest.skip("this machine's Ray runtime has a GPU")
    cfg = ModelAuditConfig(dataset="synthetic", epochs=1, models=2, block=2, hidden=8)
    for block in (2, "auto"):  # the probe of --block auto asks for the GPU first
        with pytest.raises(InputError, match="asks Ray for 1 GPU per unit; the cluster has 0"):
            shadow_audit(dataclasses.replace(cfg, block=block), data=synthetic(),
                         executor="ray", device="cuda", store=tmp_path / "s")
        assert not (tmp_path / "s").exists()  # refused before the store was begun


def test_mechanism_audit_cli_under_ray_matches_local(runtime, tmp_path):
    args = ("audit", "mechanism", "--trials", "3000", "--seed", "2", "--json")
    local = json.loads(run_cli(*args, check=True).stdout)
    on_ray = json.loads(run_cli(*args, "--executor", "ray", check=True).stdout)
    assert on_ray["epsilon_lower_bound"] == local["epsilon_lower_bound"]
    assert on_ray["test"] == local["test"]


def test_shadow_audit_under_ray(runtime, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from training.data import synthetic
    from training.model_audit import ModelAuditConfig, shadow_audit

    data = synthetic()
    cfg = ModelAuditConfig(dataset="synthetic", epochs=2, models=4, block=2, hidden=16, k=1,
                           noise=0.0)

    def run(ex, store):
        return shadow_audit(cfg, data=data, executor=ex, store=store)

    store3 = kill_resume_retry_fail(run, [0, 1, 2, 3], tmp_path,
                                    lambda a, b: a["scores_in"] == b["scores_in"] and
                                    a["scores_out"] == b["scores_out"] and
                                    a["epsilon_lower_bound"] == b["epsilon_lower_bound"])
    assert sorted(p.name for p in store3.glob("block-*.npz")) == \
        [f"block-{b:05d}.npz" for b in range(3)]


def test_poison_grid_under_ray(runtime, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from training.data import synthetic
    from training.poison import cell_key, run_grid

    data = synthetic()
    # defenses without an accountant: the cells are trainings only (privacy is not the point)
    grid = {"dataset": "synthetic", "model": "mlp", "epochs": 1, "batch_size": 64, "lr": 3e-3,
            "seeds": 2, "delta": 1e-5, "target": 0,
            "attacks": [{"name": "backdoor", "poisons": 40, "budget": 3}],
            "defenses": [{"name": "none"}, {"name": "mixup", "k": 2}]}
    units = [cell_key(grid, a, d, s) for a in grid["attacks"] for d in grid["defenses"]
             for s in range(grid["seeds"])]
    counter = iter(range(100))

    def run(ex, store):
        if store is None:
            out = tmp_path / f"ref{next(counter)}.json"
        else:
            store.mkdir(exist_ok=True)
            out = store / "grid.json"
        return run_grid(grid, out, data=data, log=None, executor=ex)

    store3 = kill_resume_retry_fail(run, units, tmp_path, lambda a, b: a == b)
    kept = json.loads((store3 / "grid.json").read_text())
    assert sorted(kept) == sorted(units[:-1])
