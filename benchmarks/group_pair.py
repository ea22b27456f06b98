"""The group pair (`pld-tilted-group`) against the closed form it replaces and a peer route.

Per setting and group size p, at delta 1e-5 (``docs/pld.md``, "Groups of records"):

* ``kov (old)``: what `certify`'s direct_group used before: each release
  ``log(1 + q_p (e^{min(p,k) eps0} - 1))``-DP, KOV over T releases;
* ``group pair``: our upper bound (the revealed mixture over the count of members, composed), and
  its time (first call: the caches are cleared);
* ``p x one record``: p times the one-record upper bound at delta / (p e^{(p-1) eps}) would be
  group privacy; shown here is only ``p * eps_1(delta)``, the smaller, looser-than-valid figure a
  reader might compare against (it is NOT a bound on the group at delta);
* ``peer``: dp_accounting's pessimistic PLD of the coarser pair it can express, the Poisson-
  subsampled Laplace pair at ``q_p`` and shift ``min(p,k) eps0`` (every member in one release at
  once), timed in the same run, and the ratio of times. Without labels only (with soft labels no
  amplification is claimed, and the peer route is the plain Laplace composition).

Run:  python benchmarks/group_pair.py   (about 30 s on a 2-core machine)
"""

import time

import dpaccount
from dpaccount.accountants import hits
from dpaccount.accountants.group import group_epsilon
from dpaccount.numerics import closed_form as cf

DELTA = 1e-5
SETTINGS = [
    ("README certify example, labels none", dpaccount.InstaHide.from_epochs(
        k=4, noise=8.0, n=1797, diameter=64.0, epochs=10, labels="none")),
    ("digits --labels none (b=1)", dpaccount.InstaHide(
        k=4, noise=1.0, n=1797, diameter=64.0, releases=17970, labels="none")),
    ("digits training b=4, labels none", dpaccount.InstaHide.from_epochs(
        k=4, noise=4.0, n=1438, diameter=64.0, epochs=20, labels="none")),
    ("CIFAR default, labels none", dpaccount.InstaHide.from_epochs(
        k=4, noise=0.1, n=50000, diameter=3072.0, epochs=40, labels="none")),
    ("permutation, digits b=8", dpaccount.InstaHide.from_epochs(
        k=4, noise=8.0, n=1797, diameter=64.0, epochs=10, labels="none",
        sampler="permutation")),
]
GROUPS = (2, 14)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def peer(event, p):
    """dp_accounting on the coarser pair (q_p, min(p,k) eps0), or None."""
    if event.sampler.value != "subsets" or event.eps0 * min(p, event.k) > 30:
        return None
    try:
        from dp_accounting.pld import privacy_loss_distribution as pl
    except ImportError:
        return None
    from dpaccount.samplers import group_inclusion_probability

    qp = group_inclusion_probability(event.n, event.k, p)
    scale = 1.0 / (min(p, event.k) * event.eps0)
    return timed(lambda: pl.from_laplace_mechanism(
        scale, 1.0, pessimistic_estimate=True, value_discretization_interval=1e-4,
        sampling_prob=qp).self_compose(event.releases).get_epsilon_for_delta(DELTA))


def main():
    print("| setting | p | kov (old) | group pair | time s | p x one record | peer (coarser "
          "pair) | time s | time ours / peer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, ev in SETTINGS:
        one = group_epsilon(ev, 1, DELTA).epsilon
        for p in GROUPS:
            unit = ev.sampler_type.group_unit(ev, p)
            kov = cf.kov_epsilon(unit.eps, unit.count, DELTA)
            hits.law_set.cache_clear()
            res, t = timed(lambda: group_epsilon(ev, p, DELTA))
            pr = peer(ev, p)
            pe, pt = (f"{pr[0]:.6g}", f"{pr[1]:.2f}") if pr else ("-", "-")
            ratio = f"{t / pr[1]:.2f}" if pr else "-"
            print(f"| {name} | {p} | {kov:.6g} | {res.epsilon:.6g} | {t:.2f} | {p * one:.6g} | "
                  f"{pe} | {pt} | {ratio} |")


if __name__ == "__main__":
    main()
