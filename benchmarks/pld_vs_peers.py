"""Benchmark: dpaccount's PLD against dp_accounting's PLD and KOV, measured in the same run.

Prints, for each configuration, epsilon and wall time of:
  ours    dpaccount.pld (upper bound, with its lower bound and interval width)
  kov     dpaccount.closed_form.kov_epsilon (optimal composition of T eps1-DP steps)
  dpa-def dp_accounting PLD, PoissonSampled(Laplace) under add/remove, default grid (1e-4)
  dpa-1e5 the same at a 1e-5 grid (closer to 1% accuracy)
and the ratios ours/peer for epsilon and time. Run:  python benchmarks/pld_vs_peers.py [--full]
(--full: the issue's grid N in {1797, 50000}, k in {1,2,4,8}, b in {0.5,1,2}, T in {1, 10N, 2e6};
default: a small subset). Requires `pip install .[peers]`.
"""

import argparse
import math
import time

from dpaccount import InstaHide
from dpaccount import closed_form as cf
from dpaccount.pld import pld_result

try:
    from dp_accounting.pld import privacy_loss_distribution as pl
except ImportError:  # pragma: no cover
    pl = None


def timed(f):
    t = time.perf_counter()
    v = f()
    return v, time.perf_counter() - t


def dpa(q, s, b, T, delta, disc):
    pld = pl.from_laplace_mechanism(b / s, 1.0, pessimistic_estimate=True,
                                    value_discretization_interval=disc, sampling_prob=q)
    return pld.self_compose(T).get_epsilon_for_delta(delta)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--delta", type=float, default=1e-5)
    args = ap.parse_args()
    if args.full:
        grid = [(n, k, b, T) for n in (1797, 50000) for k in (1, 2, 4, 8) for b in (0.5, 1.0, 2.0)
                for T in (1, 10 * n, 2_000_000)]
    else:
        grid = [(50000, 4, 1.0, 2_000_000), (50000, 1, 1.0, 2_000_000), (1797, 4, 1.0, 17970),
                (1797, 2, 0.5, 2_000_000)]
    delta = args.delta
    print(f"delta = {delta:g}, Delta = 1, relation substitution (ours) / add_remove Poisson "
          "(dp_accounting: same dominating pair)")
    head = (f"{'N':>6} {'k':>2} {'b':>4} {'T':>8} | {'ours up':>10} {'width':>6} {'s':>6} | "
            f"{'kov':>10} {'s':>6} | {'dpa-def':>10} {'s':>6} | {'dpa-1e5':>10} {'s':>6} | "
            f"{'up/kov':>6} {'up/dpa5':>7} {'t dpa5/ours':>11}")
    print(head)
    print("-" * len(head))
    for n, k, b, T in grid:
        m = InstaHide(k=k, noise=b, n=n, diameter=1.0, releases=T)
        row, t_ours = timed(lambda: pld_result(m, delta))
        e1 = cf.amplified_epsilon(1.0 / (k * b), k / n)
        kov, t_kov = timed(lambda: cf.kov_epsilon(e1, T, delta))
        if pl is not None:
            d1, t_d1 = timed(lambda: dpa(k / n, 1.0 / k, b, T, delta, 1e-4))
            d2, t_d2 = timed(lambda: dpa(k / n, 1.0 / k, b, T, delta, 1e-5))
        else:
            d1 = t_d1 = d2 = t_d2 = math.nan
        width = row.extra.get("interval_width") or 0.0
        up = row.epsilon
        print(f"{n:>6} {k:>2} {b:>4g} {T:>8} | {up:>10.5g} {width:>6.2%} {t_ours:>6.2f} | "
              f"{kov:>10.5g} {t_kov:>6.2f} | {d1:>10.5g} {t_d1:>6.2f} | {d2:>10.5g} {t_d2:>6.2f} | "
              f"{up / kov if kov else math.nan:>6.3f} {up / d2 if d2 else math.nan:>7.3f} "
              f"{t_d2 / t_ours:>11.1f}")


if __name__ == "__main__":
    main()
