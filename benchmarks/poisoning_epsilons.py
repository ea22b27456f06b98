"""The epsilon and certificate columns of docs/poisoning.md, recomputed without training.

`dpaccount poison-eval` trains 270 models (about 11 minutes) and records, for each run, the
mechanism it released (k, b, N, diameter, T, sampler, labels, the poisoned set's class sizes).
This script reads those records from docs/poisoning-results.json, asks the current accountant
for each run's tightest sound upper bound (`dpaccount.tightest`, named after the method that
produced it), and prints the table of docs/poisoning.md with these epsilons and the certificates
computed from them. Accuracies and attack successes are the recorded ones (training results;
rerun `dpaccount poison-eval` to measure them again). The file is not modified.

Run:  python benchmarks/poisoning_epsilons.py [--results docs/poisoning-results.json]
      (about a minute; the full table needs torch, the `train` extra, for its formatting)
"""

import argparse
import json
from pathlib import Path

import dpaccount

FIELDS = ("k", "noise", "n", "diameter", "releases", "sampler", "relation", "labels",
          "class_sizes", "norm")


def recompute(results: dict) -> dict:
    cache = {}
    for r in results.values():
        mech = r.get("mechanism")
        if mech is None or r.get("privacy_method") == "opacus":
            continue
        fields = {k: mech.get(k) for k in FIELDS}
        key = json.dumps(fields, sort_keys=True)
        if key not in cache:
            cache[key] = dpaccount.tightest(dpaccount.InstaHide(**fields), r["delta"])
        best = cache[key]
        r.update(epsilon=best.epsilon, privacy_method=best.method)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(Path(__file__).parent.parent / "docs" /
                                            "poisoning-results.json"))
    args = ap.parse_args()
    results = recompute(json.loads(Path(args.results).read_text()))
    try:
        from training.poison import format_table, summarise
    except ImportError:  # no torch: the epsilons alone
        seen = set()
        for r in sorted(results.values(), key=lambda r: (r["attack"], r["defense"])):
            if (r["attack"], r["defense"]) in seen or r["epsilon"] is None:
                continue
            seen.add((r["attack"], r["defense"]))
            print(f"{r['attack']:12s} {r['defense']:28s} {r['epsilon']:.4g} "
                  f"({r['privacy_method']})")
        return
    print(format_table(summarise(results)))


if __name__ == "__main__":
    main()
