"""Report: how close the mechanism audit comes to the accountant, and whether it ever exceeds it.

Prints the tables of docs/audit.md, all measured in this run:
  1. one release (q = 0.5, eps0 = 2, eps1 = 1.434) and T = 10 releases at delta = 1e-2, 1e-3,
     1e-5, 1e6 trials per side, exact LLR, threshold on a 10% split, 95% confidence: the
     audited lower bound, the tight PLD upper bound, their ratio, the ceiling and the expected
     ideal audit (median run, from the loss law), over several seeds;
  2. broken implementations (weights 0.8/0.2, noise b/2, k-subsets with replacement) audited
     as black boxes (projection statistic) beside the faithful one;
  3. soundness: audits of random configurations (sampler, k, N, eps0, T, delta), counting how
     often the 95% lower bound exceeded the upper bound (expected: at most about 5%).

Run:  python benchmarks/audit_tightness.py [--configs 200] [--seeds 5]   (a few minutes)
"""

import argparse
import math
import time

import numpy as np

from dpaccount import InstaHide
from dpaccount.audit import InstaHideReleases, audit_mechanism


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=10**6)
    args = ap.parse_args()
    one = dict(k=2, noise=1.0, n=4, diameter=4.0)
    print(f"1. acceptance configuration: q = 0.5, eps0 = 2, eps1 = "
          f"{math.log1p(0.5 * math.expm1(2)):.4f}; substitution, sampler subsets, upper bound "
          f"by the pld accountant; {args.trials} trials per side, 95%")
    print(f"{'T':>3} {'delta':>6} {'audit (min..max over seeds)':>28} {'PLD upper':>9} "
          f"{'ratio mean':>10} {'ratio min':>9} {'ceiling':>8} {'expected':>8}")
    for t, delta in ((1, 1e-5), (10, 1e-2), (10, 1e-3), (10, 1e-5)):
        mech = InstaHide(labels="none", releases=t, **one)
        rs = [audit_mechanism(mech, delta=delta, trials=args.trials, seed=s)
              for s in range(args.seeds)]
        lo = [r.epsilon_lower_bound for r in rs]
        ratios = [r.ratio for r in rs]
        r0 = rs[0]
        print(f"{t:>3} {delta:>6g} {min(lo):>13.4f} .. {max(lo):<12.4f} "
              f"{r0.epsilon_upper_bound:>9.4f} {np.mean(ratios):>10.3f} {min(ratios):>9.3f} "
              f"{r0.ceiling:>8.3f} {r0.expected:>8.3f}")

    print("\n2. broken implementations, one release, 2e5 trials per side, projection statistic "
          "(black box), claimed eps1 = 1.4338 at delta 1e-5")
    mech = InstaHide(labels="none", releases=1, **one)
    variants = [("faithful", None),
                ("weights 0.8/0.2 (not 1/k)", InstaHideReleases(2, 1.0, 1, weights=(0.8, 0.2))),
                ("noise b/2", InstaHideReleases(2, 0.5, 1)),
                ("record reused (with replacement)", InstaHideReleases(2, 1.0, 1, replace=True))]
    for name, fn in variants:
        for stat in ("projection", "exact-llr"):
            r = audit_mechanism(mech, delta=1e-5, trials=200_000, seed=3, release_fn=fn,
                                statistic=stat)
            print(f"  {name:34s} {stat:10s} audit >= {r.epsilon_lower_bound:.4f}  "
                  f"{'FLAGGED (exceeds the claimed eps)' if r.exceeds_upper_bound else 'not flagged'}")

    print(f"\n3. soundness over {args.configs} random configurations (2e4 trials per side, 95%)")
    rng = np.random.default_rng(2026)
    combos = [("subsets", "substitution"), ("subsets", "add_remove"),
              ("permutation", "substitution"), ("poisson", "add_remove")]
    exceed, ratios, t0 = [], [], time.perf_counter()
    for i in range(args.configs):
        sampler, relation = combos[rng.integers(len(combos))]
        k = int(rng.integers(1, 4))
        n = k + int(rng.integers(0, 5)) + (1 if relation == "add_remove" else 0)
        eps0 = float(rng.uniform(0.25, 4.0))
        t = int(rng.integers(1, 7))
        delta = float(rng.choice([1e-1, 1e-2, 1e-3]))
        m = InstaHide(labels="none", k=k, noise=1.0, n=n, diameter=eps0 * k, releases=t,
                      sampler=sampler, relation=relation,
                      norm=eps0 * k if sampler == "poisson" else None)
        r = audit_mechanism(m, delta=delta, trials=20000, seed=i)
        exceed.append(r.exceeds_upper_bound)
        ratios.append(r.ratio)
        if r.exceeds_upper_bound:
            print(f"  exceeded: {sampler}/{relation} k={k} N={n} eps0={eps0:.3f} T={t} "
                  f"delta={delta:g}: {r.epsilon_lower_bound:.4f} > {r.epsilon_upper_bound:.4f}")
    n_ex = sum(exceed)
    print(f"  {n_ex} of {args.configs} audits exceeded the upper bound ({n_ex / args.configs:.1%};"
          f" 95% confidence allows about 5%); median audit/upper {np.median(ratios):.3f}; "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
