"""Benchmark: the audit's release simulator, against two plain numpy implementations, same run.

Prints releases per second (d = 1, one process; numpy's generators are single-threaded) for:
  ours/worst   InstaHideReleases on the worst-case pair's D (grouped path: one Bernoulli each)
  ours/floyd   InstaHideReleases on N = 1000 distinct records (Floyd's algorithm, column-wise)
  ours/perm    the permutation sampler on the worst-case D (only the record's k slots drawn)
  ours/perm-g  the permutation sampler on N = 1000 distinct records (k full permutations)
  naive        a loop of rng.choice(N, k, replace=False) + rng.laplace per release
  argpart      vectorised: argpartition of uniform keys (N per release) + rng.laplace
and the ratios ours/peer. Then the peak memory (tracemalloc) of whole audits at 1e4, 1e5 and
1e6 trials per side, to show that streaming in blocks keeps it flat.

Run:  python benchmarks/release_simulator.py          (about a minute)
Target (issue 4): >= 1e7 releases per second for d = 1 on one core.
"""

import time
import tracemalloc

import numpy as np

from dpaccount import InstaHide
from dpaccount.audit import ExactLLR, InstaHideReleases, audit_mechanism, worst_case_pair


def rate(fn, releases_per_call, min_time=1.0):
    fn()  # warm up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time:
        fn()
        n += releases_per_call
    return n / (time.perf_counter() - t0)


def main():
    rng = np.random.default_rng(0)
    k, b, T = 4, 1.0, 10
    mech = InstaHide(labels="none", k=k, noise=b, n=1000, diameter=4.0, releases=T)
    worst = worst_case_pair(mech).d
    distinct = rng.random((1000, 1))
    sim = InstaHideReleases(k, b, T)
    perm = InstaHideReleases(k, b, T, "permutation")
    trials = 1 << 14  # a block of the audit: 163840 releases

    def naive(data, m=20000):
        out = np.empty(m)
        for i in range(m):
            idx = rng.choice(data.shape[0], k, replace=False)
            out[i] = data[idx, 0].mean() + rng.laplace(0.0, b)
        return out

    def argpart(data, m=1 << 12):
        idx = np.argpartition(rng.random((m, data.shape[0])), k, axis=1)[:, :k]
        return data[idx, 0].mean(1) + rng.laplace(0.0, b, m)

    rows = [
        ("ours/worst", rate(lambda: sim(worst, trials, rng), trials * T)),
        ("ours/floyd", rate(lambda: sim(distinct, trials, rng), trials * T)),
        ("ours/perm", rate(lambda: perm(worst, trials // 10, rng), trials // 10 * T)),
        ("ours/perm-g", rate(lambda: perm(distinct, 1 << 12, rng), (1 << 12) * T)),
        ("naive", rate(lambda: naive(worst), 20000)),
        ("argpart", rate(lambda: argpart(distinct), 1 << 12)),
    ]
    print(f"releases per second, d = 1, k = {k}, N = 1000, T = {T} per trial")
    for name, r in rows:
        print(f"  {name:12s} {r / 1e6:10.2f} M/s")
    d = dict(rows)
    print(f"  ratio ours/worst : naive   = {d['ours/worst'] / d['naive']:.0f}x")
    print(f"  ratio ours/floyd : argpart = {d['ours/floyd'] / d['argpart']:.1f}x")
    print(f"  target >= 1e7/s: worst {'met' if d['ours/worst'] >= 1e7 else 'NOT met'}, "
          f"floyd {'met' if d['ours/floyd'] >= 1e7 else 'NOT met'}")

    print("\npeak memory of a whole audit (T = 10, exact LLR), by trials per side, against the "
          "same work with every release in memory at once (no blocks):")
    small = InstaHide(labels="none", k=2, noise=1.0, n=4, diameter=4.0, releases=10)
    pair_small = worst_case_pair(small)
    audit_mechanism(small, delta=1e-2, trials=1000, seed=0)  # imports and first-call set-up
    for n in (10**4, 10**5, 10**6):
        tracemalloc.start()
        t0 = time.perf_counter()
        audit_mechanism(small, delta=1e-2, trials=n, seed=0)
        dt = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # the kept scores are 2 x 8 bytes per trial; everything else is one block
        tracemalloc.start()
        ref = InstaHideReleases.from_mechanism(small)
        stat = ExactLLR(ref, pair_small)
        rng2 = np.random.default_rng(0)
        whole = [stat(ref(data, n, rng2)) for data in (pair_small.d, pair_small.d_prime)]
        peak_all = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del whole
        print(f"  {n:>8d} trials: peak {peak / 2**20:7.1f} MiB (scores kept: "
              f"{2 * 8 * n / 2**20:5.1f} MiB), {dt:5.2f} s, "
              f"{2 * n * 10 / dt / 1e6:5.1f} M releases/s simulated and scored; all at once: "
              f"{peak_all / 2**20:7.1f} MiB ({peak_all / peak:.1f}x)")


if __name__ == "__main__":
    main()
