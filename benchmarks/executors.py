"""Benchmark: Ray against the local executor for the three long jobs, measured in the same run.

For each job (audit mechanism: blocks of trials; audit model: blocks of shadow models;
poison-eval: grid cells) the same work is run by
  local      the units one after another in this process (dpaccount.executors.LocalExecutor)
  ray x1     a local Ray runtime with 1 CPU (one worker)
  ray x2     a local Ray runtime with 2 CPUs (two workers: this machine's cores)
and, to isolate Ray's own cost, a null job of trivial units. Each Ray configuration starts its
runtime once (timed apart) and runs every job twice: "cold" (workers start and import numpy,
torch, ...) and "warm" (workers reused). Reported: units per minute, and the overhead per unit
of ray x1 against local, (t_ray1 - t_local) / units, warm and cold. The results are also checked
to be the same under every executor (same seeds). Then the projection of a 1,000-models-per-side
CIFAR-10-shaped shadow audit from a measured CPU training rate (docs/scale.md).

Run:  python benchmarks/executors.py [--json FILE]   (about 5 minutes on the 2-core machine)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray
import torch

from dpaccount.audit.run import audit_mechanism
from dpaccount.events import InstaHide, Labels
from dpaccount.executors import LocalExecutor, RayExecutor
from training.batched import train_batched
from training.data import load_digits
from training.model_audit import ModelAuditConfig, shadow_audit
from training.poison import run_grid


def null_unit(context, unit):
    return unit


def jobs(data):
    mech = InstaHide(k=2, noise=1.0, n=4, diameter=4.0, releases=10, labels=Labels.NONE)
    # 8 blocks of 52,428 trials a side (BLOCK_VALUES / (T x d)): 16 units
    def mechanism(ex):
        r = audit_mechanism(mech, delta=1e-2, trials=400_000, seed=1, executor=ex)
        return 16, (r.test.false_pos, r.test.false_neg, r.epsilon_lower_bound)

    cfg = ModelAuditConfig(dataset="digits", models=64, block=16, epochs=5, hidden=64, k=4,
                           noise=1.0)

    def shadow(ex):  # 128 models in 8 blocks of 16
        r = shadow_audit(cfg, data=data, executor=ex, device="cpu")
        return 8, (tuple(r["scores_in"]), tuple(r["scores_out"]))

    grid = {"dataset": "digits", "model": "mlp", "epochs": 3, "batch_size": 64, "lr": 3e-3,
            "seeds": 2, "delta": 1e-5, "target": 0,
            "attacks": [{"name": "backdoor", "poisons": 20, "budget": 2}],
            "defenses": [{"name": "none"}, {"name": "mixup", "k": 2},
                         {"name": "dp-instahide", "k": 4, "noise": 1.0}]}

    def poison(ex):  # 6 cells
        with tempfile.TemporaryDirectory() as d:
            r = run_grid(grid, Path(d) / "g.json", data=data, log=None, executor=ex,
                         device="cpu")
        return 6, tuple(sorted((k, v["accuracy"], v["success"]) for k, v in r.items()))

    def null(ex):  # 200 trivial units: Ray's own cost per task
        out = []
        ex.run(null_unit, None, list(range(200)), lambda u, r: out.append(r))
        return 200, tuple(sorted(out))

    return {"null (trivial units)": null, "audit mechanism": mechanism,
            "audit model (shadow)": shadow, "poison-eval": poison}


def timed(fn, ex):
    t = time.perf_counter()
    units, result = fn(ex)
    return time.perf_counter() - t, units, result


def cifar_rate(models: int = 8, n: int = 1000, epochs: int = 1) -> float:
    """Seconds per (model x record x epoch) of the batched shadow trainer on CIFAR-10-shaped
    records (3x32x32, 10 classes; MLP hidden 64, k 4, b 1, batch 64) on this CPU."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    pools = torch.arange(n).repeat(models, 1)
    kw = dict(k=4, noise=1.0, epochs=epochs, batch_size=64, lr=3e-3, hidden=64, num_classes=10,
              generator=g, label_privacy="soft")
    train_batched(x[:128], y[:128], torch.arange(128).repeat(2, 1), **kw)  # warm-up
    t = time.perf_counter()
    train_batched(x, y, pools, **kw)
    return (time.perf_counter() - t) / (models * n * epochs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = ap.parse_args()
    data = load_digits()
    work = jobs(data)
    rows = {name: {} for name in work}
    results = {name: {} for name in work}
    threads = torch.get_num_threads()
    for name, fn in work.items():
        timed(fn, LocalExecutor())  # warm this process (imports, caches) like the workers
        rows[name]["local"] = timed(fn, LocalExecutor())
        results[name]["local"] = rows[name]["local"][2]
        # a Ray worker holding 1 CPU runs torch on 1 thread (Ray sets OMP_NUM_THREADS=1):
        # Ray's overhead is measured against local on 1 thread too
        torch.set_num_threads(1)
        rows[name]["local 1 thread"] = timed(fn, LocalExecutor())
        torch.set_num_threads(threads)
    starts = {}
    for cpus in (1, 2):
        t = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
        starts[cpus] = time.perf_counter() - t
        for name, fn in work.items():
            rows[name][f"ray x{cpus} cold"] = timed(fn, RayExecutor())
            rows[name][f"ray x{cpus}"] = timed(fn, RayExecutor())
            results[name][f"ray x{cpus}"] = rows[name][f"ray x{cpus}"][2]
        t = time.perf_counter()
        ray.shutdown()
        starts[cpus] += time.perf_counter() - t
    out = {"runtime_start_stop_s": starts, "jobs": {}}
    print(f"Ray runtime start + stop: {starts[1]:.1f} s (1 CPU), {starts[2]:.1f} s (2 CPUs)")
    print(f"{'job':22s} {'units':>5s} {'local':>9s} {'ray x1':>9s} {'ray x2':>9s} "
          f"{'x2/local':>8s} {'overhead/unit warm':>19s} {'cold':>7s}  same result")
    for name in work:
        r = rows[name]
        units = r["local"][1]
        per_min = {k: units / v[0] * 60 for k, v in r.items()}
        warm = (r["ray x1"][0] - r["local 1 thread"][0]) / units
        cold = (r["ray x1 cold"][0] - r["local 1 thread"][0]) / units
        same = all(results[name][k] == results[name]["local"] for k in results[name])
        out["jobs"][name] = {"units": units, "seconds": {k: v[0] for k, v in r.items()},
                             "units_per_minute": per_min, "overhead_per_unit_s_warm": warm,
                             "overhead_per_unit_s_cold": cold, "same_result": same,
                             "speedup_x2_over_local": r["local"][0] / r["ray x2"][0]}
        print(f"{name:22s} {units:5d} {per_min['local']:9.1f} {per_min['ray x1']:9.1f} "
              f"{per_min['ray x2']:9.1f} {r['local'][0] / r['ray x2'][0]:8.2f} "
              f"{warm * 1e3:16.1f} ms {cold:6.2f}s  {same}")
    print(f"(units per minute; local uses torch's {threads} threads; overhead = (ray x1 - local "
          "on 1 thread) / units; cold: the first run on a fresh runtime, workers starting)")
    rate = cifar_rate()
    models, n, epochs = 2000, 50_000, 10
    cpu_hours = rate * models * n * epochs / 3600
    out["cifar_projection"] = {"seconds_per_model_record_epoch": rate, "models": models,
                               "records": n, "epochs": epochs, "cpu_core_hours": cpu_hours}
    print(f"\nCIFAR-10-shaped shadow audit, 1,000 models per side (2,000), N=50,000, 10 epochs, "
          f"MLP hidden 64: {rate * 1e6:.2f} us per model-record-epoch on this CPU -> "
          f"{cpu_hours:,.0f} hours on this machine ({threads} threads); divide by the workers "
          f"of a cluster (units of 16 models: 125 units)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
