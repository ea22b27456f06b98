"""The tilted-lattice accountant (`pld-tilted`) against today's bound, Monte Carlo and dp_accounting.

Per setting: the smallest bound of the accountants before this one (its method), the new interval
[lower, upper] with its width and time, the dominating pair's own interval (discretisation
width), the Monte Carlo estimate of the attained pair (`benchmarks/mc_large_eps0.py`, reference
values quoted from its run), and dp_accounting's pessimistic PLD of the pair (P*, Q*) where it can
express it (no soft labels: `PoissonSampledDpEvent(q, LaplaceDpEvent(b/s))`, add/remove; at eps0
in the thousands its grid cannot hold the loss range and it is skipped). The last column times
the peer route in the same run: dp_accounting where it applies, else the accountant that gave
the "before" number, with the ratio pld-tilted time / peer time.

Run:  python benchmarks/hits_accountant.py   (about 10 s on a 2-core machine)
"""

import time

import dpaccount
from dpaccount.accountants import ACCOUNTANTS
from dpaccount.accountants import hits
from dpaccount.accountants.hits import HitsAccountant
from dpaccount.accountants.pld import shared_composition
from dpaccount.accountants.rdp import phase_rdp

DELTA = 1e-5
DIGITS = (142, 146, 142, 146, 145, 146, 145, 143, 139, 144)
SETTINGS = [
    ("CIFAR default (soft, 10x5000)", dpaccount.InstaHide.from_epochs(
        k=4, noise=0.1, n=50000, diameter=3072.0, epochs=40, class_sizes=(5000,) * 10),
     1_664_360.0),
    ("CIFAR default, no class sizes", dpaccount.InstaHide.from_epochs(
        k=4, noise=0.1, n=50000, diameter=3072.0, epochs=40), None),
    ("digits --labels none", dpaccount.InstaHide(
        k=4, noise=1.0, n=1797, diameter=64.0, releases=17970, labels="none"), 585.29),
    ("digits training b=1", dpaccount.InstaHide.from_epochs(
        k=4, noise=1.0, n=1438, diameter=64.0, epochs=20, class_sizes=DIGITS), 1167.0),
    ("digits training b=2", dpaccount.InstaHide.from_epochs(
        k=4, noise=2.0, n=1438, diameter=64.0, epochs=20, class_sizes=DIGITS), 264.3),
    ("digits training b=4", dpaccount.InstaHide.from_epochs(
        k=4, noise=4.0, n=1438, diameter=64.0, epochs=20, class_sizes=DIGITS), 33.45),
]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def dp_accounting_eps(event):
    """(epsilon, seconds) of dp_accounting's PLD for the pair, or None where it cannot."""
    if event.labels.value == "soft" or event.eps0 > 30:
        return None
    try:
        import dp_accounting
        from dp_accounting.pld import pld_privacy_accountant
    except ImportError:
        return None
    ev = dp_accounting.PoissonSampledDpEvent(
        event.sampling_rate, dp_accounting.LaplaceDpEvent(event.noise / event.sensitivity))
    def run():
        acc = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-3)
        acc.compose(ev, event.releases)
        return acc.get_epsilon(DELTA)
    return timed(run)


def main():
    print(f"delta = {DELTA:g}; times on this machine, first call (no cache)")
    print("| setting | eps0 | before (smallest other row) | new [lower, upper] | width | disc. width | time s "
          "| MC (attained pair) | dp_accounting (pair, add/remove) | peer route, same run |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, event, mc in SETTINGS:
        others = [a for a in ACCOUNTANTS if a.method != HitsAccountant.method]
        rows = []
        for a in others:  # each peer row timed (cold: its own caches cleared where it has one)
            shared_composition.cache_clear()
            phase_rdp.cache_clear()
            r, secs_a = timed(lambda a=a: a.row(event, DELTA))
            rows.append((r, secs_a))
        old, old_secs = min(((r, t) for r, t in rows if r.epsilon is not None),
                            key=lambda rt: rt[0].epsilon)
        hits.law_set.cache_clear()  # the time of a first call, not of a cached one
        t = time.perf_counter()
        res = HitsAccountant().epsilon(event, DELTA)
        secs = time.perf_counter() - t
        dpa = dp_accounting_eps(event)
        peer = (f"{old.method} {old_secs:.2f} s ({secs / old_secs:.1f}x)" if dpa is None else
                f"dp_accounting {dpa[1]:.2f} s ({secs / dpa[1]:.2f}x)")
        print(f"| {name} | {event.eps0:.4g} | {old.epsilon:.7g} ({old.method}) | "
              f"[{res.lower:.7g}, {res.epsilon:.7g}] | {res.extra['interval_width']:.2%} | "
              f"{res.extra['discretisation_width']:.2%} | {secs:.2f} | "
              f"{'-' if mc is None else f'{mc:.7g}'} | {'-' if dpa is None else f'{dpa[0]:.6g}'} | "
              f"{peer} |",
              flush=True)


if __name__ == "__main__":
    main()
