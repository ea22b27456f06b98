"""Permutation mixing amplified by the hidden slot (docs/pld_hits.md, "Permutation mixing:
amplification by the hidden position"), against what it replaces and a peer route, timed in the
same run.

Per setting, at delta 1e-5 (labels none):

* ``kov``: the closed form (KOV over the epochs charged, each ``Delta/b``-DP);
* ``revealed law``: every slot's position shown (the only law of the row before);
* ``pld-tilted``: the row now (the smaller of the revealed law and the law with one slot per
  epoch hidden), which law it took, and its time (first call: caches cleared);
* ``peer``: for k = 1 (each epoch a shuffle of N eps0-DP reports), Feldman, McMillan and Talwar's
  own numerical analysis as shipped in ``random-allocation`` (1.0.5): one epoch's epsilon at
  ``delta / (2E)``, composed over the E epochs by KOV at ``delta / 2`` (the route a user of
  that code would take), and its time. For k > 1 no peer expresses an epoch.

Run:  python benchmarks/permutation_shuffle.py   (about a minute on a 2-core machine; the peer
column needs ``pip install --no-deps random-allocation==1.0.5``)
"""

import importlib.util
import os
import time

from dpaccount import InstaHide
from dpaccount.accountants import HitsAccountant, KOVAccountant, hits
from dpaccount.numerics import closed_form as cf
from dpaccount.numerics import shuffle

DELTA = 1e-5
SETTINGS = [
    # (name, k, N, eps0 per slot, epochs)
    ("k=1, N=1000, eps0=1, 1 epoch", 1, 1000, 1.0, 1),
    ("k=1, N=1000, eps0=1, 50 epochs", 1, 1000, 1.0, 50),
    ("k=1, N=1e4, eps0=2, 10 epochs", 1, 10 ** 4, 2.0, 10),
    ("k=1, N=5e4, eps0=0.5, 100 epochs", 1, 5 * 10 ** 4, 0.5, 100),
    ("k=4, N=100, eps0=0.25, 10 epochs", 4, 100, 0.25, 10),
    ("k=4, digits training b=4 (N=1438, 20 epochs)", 4, 1438, 4.0, 20),
    ("k=4, digits b=8 (N=1797, 10 epochs)", 4, 1797, 2.0, 10),
    ("k=2, N=1000, eps0=1, 50 epochs", 2, 1000, 1.0, 50),
    ("k=4, N=1e5, eps0=0.25, T=1e9", 4, 10 ** 5, 0.25, 10 ** 4),
    ("k=4, CIFAR (eps0=7680), 40 epochs", 4, 50000, 7680.0, 40),
]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def fmt_module():
    spec = importlib.util.find_spec("random_allocation")
    if spec is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "external_sources", "shuffle_external.py")
    loader = importlib.util.spec_from_file_location("fmt_shuffle_external", path)
    mod = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(mod)
    return mod


def peer(mod, n, eps0, epochs):
    if mod is None:
        return None

    def run():
        d1 = DELTA / (2 * epochs)
        e1 = mod.numericalanalysis(n, eps0, d1, 30, max(1, int((n / 2) ** 0.5)), True)
        return e1 if epochs == 1 else cf.kov_epsilon(e1, epochs, DELTA / 2)
    return timed(run)


def main():
    mod = fmt_module()
    print("| setting | kov | revealed law | pld-tilted (now) | law | time s | peer (FMT "
          "numerical + KOV) | time s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, k, n, eps0, epochs in SETTINGS:
        m = InstaHide(labels="none", sampler="permutation", k=k, noise=64.0 / (k * eps0), n=n,
                      diameter=64.0, releases=n * epochs)
        hits.law_set.cache_clear()
        shuffle.clone_points.cache_clear()
        ours, t = timed(lambda: HitsAccountant().epsilon(m, DELTA))
        (_, revealed_set), = HitsAccountant.dominating(m)
        revealed = revealed_set.epsilon(DELTA, which=("upper",))[1]
        kov = KOVAccountant().epsilon(m, DELTA).epsilon
        law = ("one slot hidden" if "amplified by the hidden position:" in ours.note
               else "revealed")
        pr = peer(mod, n, eps0, epochs) if k == 1 else None
        pe, pt = (f"{pr[0]:.6g}", f"{pr[1]:.2f}") if pr else ("-", "-")
        print(f"| {name} | {kov:.6g} | {revealed:.6g} | {ours.epsilon:.6g} | {law} | {t:.2f} | "
              f"{pe} | {pt} |")


if __name__ == "__main__":
    main()
