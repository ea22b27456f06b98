"""The accuracy/epsilon table of docs/training.md: every setting over several seeds.

    python -m training.table [--seeds 3] [--epochs 20] [--dataset digits] [--model cnn]
                             [--out results.json]

Settings: no augmentation; mixup only (k = 2, 4; no noise: not private); noise only (k = 1);
DP-InstaHide (k = 4) at three noise levels. Each row: mean and standard deviation of the clean
test accuracy over the seeds, and the epsilon each run reports (dpaccount's upper bound for the
releases it drew, soft labels included, at delta 1e-5; the same for every seed), with the pld
row's interval (its lower end is attained by a concrete pair of 1-D datasets) and, for
comparison, the upper bound had no label been released (``labels="none"``, the paper's
theorem). Results are written to --out after every run, and runs already there are not repeated
(resumable); the epsilons are recomputed from the recorded mechanism at print time.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict
from pathlib import Path

from dpaccount.files import atomic_write_bytes

from .train import TrainConfig, train

SETTINGS = [
    ("no augmentation", dict(augment=False)),
    ("mixup only, k=2", dict(k=2, noise=0.0)),
    ("mixup only, k=4", dict(k=4, noise=0.0)),
    ("noise only, k=1, b=1", dict(k=1, noise=1.0)),
    ("DP-InstaHide k=4, b=1", dict(k=4, noise=1.0)),
    ("DP-InstaHide k=4, b=2", dict(k=4, noise=2.0)),
    ("DP-InstaHide k=4, b=4", dict(k=4, noise=4.0)),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--out", default="training-table.json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    done = json.loads(out.read_text()) if out.exists() else {}
    for name, kw in SETTINGS:
        for seed in range(args.seeds):
            cfg = TrainConfig(dataset=args.dataset, model=args.model, epochs=args.epochs,
                              seed=seed, **kw)
            key = json.dumps(asdict(cfg), sort_keys=True)
            if key in done:
                continue
            m = train(cfg)
            done[key] = {"setting": name, "seed": seed, "test_accuracy": m["test_accuracy"],
                         "epsilon": m["epsilon"], "delta": m["delta"],
                         "method": m["privacy"]["method"], "releases": m["releases"],
                         "mechanism": m["privacy"].get("mechanism"), "seconds": m["seconds"]}
            atomic_write_bytes(out, json.dumps(done, indent=1).encode())
            print(f"{name:24s} seed {seed}: accuracy {m['test_accuracy']:.4f}, epsilon "
                  f"{m['epsilon']}, {m['seconds']:.1f} s", flush=True)
    print()
    print("| setting | k | b | test accuracy (mean +- sd over seeds) | epsilon (upper bound; "
          "delta 1e-5, substitution, sampler subsets, soft labels as released) | interval "
          "[attained, upper] | method | epsilon had no label been released (labels none) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, kw in SETTINGS:
        rows = [r for r in done.values() if r["setting"] == name]
        accs = [r["test_accuracy"] for r in rows]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        cfg = TrainConfig(**kw).effective
        eps, interval, method, bare = _privacy(rows[0])
        print(f"| {name} | {cfg.k} | {cfg.noise:g} | {statistics.mean(accs):.4f} +- {sd:.4f} "
              f"({len(accs)} seeds) | {eps} | {interval} | {method} | {bare} |")


def _privacy(run: dict):
    """The run's epsilon from its recorded mechanism (the current accountant), its interval,
    method, and the same without a released label."""
    from dpaccount import InstaHide
    from dpaccount.selection import tightest as tightest_result

    mech = run.get("mechanism")
    if mech is None:
        return "none (not private)", "", "none", ""
    fields = {k: mech[k] for k in ("k", "noise", "n", "diameter", "releases", "sampler",
                                   "relation", "labels", "class_sizes")}
    row = tightest_result(InstaHide(**fields), run["delta"])
    bare = tightest_result(InstaHide(**{**fields, "labels": "none", "class_sizes": None}),
                           run["delta"])
    lo = row.lower
    interval = "" if lo is None else f"[{lo:.4g}, {row.epsilon:.4g}]"
    return f"{row.epsilon:.4g}", interval, row.method, f"{bare.epsilon:.4g}"


if __name__ == "__main__":
    main()
