"""pld-tilted with Dirichlet mixing weights and with permutation mixing, against the routes they
replace, timed in the same run (docs/pld_hits.md, "Random mixing weights", "Permutation mixing").

* Dirichlet weights: our interval (the lower end: the concrete pair with the weight hidden; none
  where that pair is not built) and its time (first call: the caches are cleared), beside
  the rows that take the largest weight (KOV, RDP), and the time of the RDP route. No peer
  library expresses a Laplace pair mixed over a Beta weight; RDP is the best route there was.
* Permutation: our upper bound against KOV over the epochs charged (a partial epoch whole) and
  against dp_accounting's Laplace composition over the whole epochs (pessimistic, grid 1e-4),
  which has no partial epoch; its time and the ratio.

Run:  python benchmarks/weights_and_permutation.py   (about 20 s on a 2-core machine)
"""

import time

from dpaccount import InstaHide
from dpaccount.accountants import HitsAccountant, KOVAccountant, RDPAccountant, hits
from dpaccount.numerics import hidden_weight

DELTA = 1e-5
WEIGHTS = [
    ("digits --labels none", dict(k=4, noise=1.0, n=1797, diameter=64.0, releases=17970)),
    ("README certify example", dict(k=4, noise=8.0, n=1797, diameter=64.0, releases=17970)),
    ("T = 1e9, N = 1e8, b = 1", dict(k=4, noise=1.0, n=10 ** 8, diameter=64.0,
                                      releases=10 ** 9)),
]
ALPHAS = (None, 10.0, 1.0, 0.2)
PERMUTATION = [
    ("digits, 10 epochs, b=8", dict(k=4, noise=8.0, n=1797, diameter=64.0, releases=17970)),
    ("digits, 10 epochs + 500 outputs, b=8", dict(k=4, noise=8.0, n=1797, diameter=64.0,
                                                  releases=18470)),
    ("N=100, 10.5 epochs, b=64", dict(k=4, noise=64.0, n=100, diameter=64.0, releases=1050)),
    ("N=1e6, 1000 epochs, b=1", dict(k=4, noise=1.0, n=10 ** 6, diameter=64.0,
                                     releases=10 ** 9)),
]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def clear_caches():
    hits.law_set.cache_clear()
    hidden_weight._points.cache_clear()
    hidden_weight.cell_probabilities.cache_clear()


def weights_table():
    print("| setting | weights | pld-tilted [lower, upper] | time s | kov | rdp | rdp time s | "
          "time ours / rdp |")
    print("|---|---|---|---|---|---|---|---|")
    for name, kw in WEIGHTS:
        for a in ALPHAS:
            m = InstaHide(labels="none", dirichlet_alpha=a, **kw)
            clear_caches()
            ours, t = timed(lambda: HitsAccountant().epsilon(m, DELTA))
            rdp, tr = timed(lambda: RDPAccountant().epsilon(m, DELTA).epsilon)
            kov = KOVAccountant().epsilon(m, DELTA).epsilon
            label = "uniform 1/k" if a is None else f"Dirichlet({a:g})"
            lo = "-" if ours.lower is None else f"{ours.lower:.6g}"
            print(f"| {name} | {label} | [{lo}, {ours.epsilon:.6g}] | {t:.2f} | {kov:.6g} | "
                  f"{rdp:.6g} | {tr:.3f} | {t / tr:.0f} |")


def dp_accounting_laplace(m):
    try:
        from dp_accounting.pld import privacy_loss_distribution as pl
    except ImportError:
        return None
    epochs = m.releases // m.n
    return timed(lambda: pl.from_laplace_mechanism(
        m.noise / m.diameter, 1.0, pessimistic_estimate=True,
        value_discretization_interval=1e-4).self_compose(epochs).get_epsilon_for_delta(DELTA))


def permutation_table():
    print("| run (k = 4) | kov (epochs charged whole) | pld-tilted | time s | dp_accounting "
          "(whole epochs only) | time s | time ours / peer |")
    print("|---|---|---|---|---|---|---|")
    for name, kw in PERMUTATION:
        m = InstaHide(labels="none", sampler="permutation", **kw)
        clear_caches()
        ours, t = timed(lambda: HitsAccountant().epsilon(m, DELTA).epsilon)
        kov = KOVAccountant().epsilon(m, DELTA).epsilon
        peer = dp_accounting_laplace(m)
        pe, pt, ratio = ("-", "-", "-") if peer is None else (
            f"{peer[0]:.6g}", f"{peer[1]:.2f}", f"{t / peer[1]:.2f}")
        print(f"| {name} | {kov:.6g} | {ours:.6g} | {t:.2f} | {pe} | {pt} | {ratio} |")


if __name__ == "__main__":
    weights_table()
    print()
    permutation_table()
