"""Benchmark: dpaccount's PLD against dp_accounting's PLD and KOV, measured in the same run.

Prints, for each configuration, epsilon and wall time of:
  ours    dpaccount.accountants.PLDAccountant under add/remove with Poisson sampling: the same pair as the peers
          (upper bound, and the width of the interval from its lower bound)
  ours-sub dpaccount.accountants.PLDAccountant under substitution with k-subsets (the paper's relation): the
          symmetrised pair, the sound bound there (docs/theory.md Sec. 3); its ratio to ``ours``
          is what soundness under composition costs
  rdp     dpaccount.accountants.RDPAccountant (Renyi DP, improved conversion)
  kov     dpaccount.numerics.closed_form.kov_epsilon (optimal composition of T eps1-DP steps)
  dpa-def dp_accounting PLD, PoissonSampled(Laplace) under add/remove, default grid (1e-4)
  dpa-1e5 the same at a 1e-5 grid (closer to 1% accuracy)
  dpa-pure dp_accounting PLD of a generic eps1-DP mechanism composed T times (its KOV analogue)
  autodp  autodp RDP accountant, Laplace subsampled without replacement (Wang et al. Thm 9)
and the ratios ours/peer for epsilon and time. Run:  python benchmarks/pld_vs_peers.py [--full]
(--full: the issue's grid N in {1797, 50000}, k in {1,2,4,8}, b in {0.5,1,2}, T in {1, 10N, 2e6};
default: a small subset). Requires `pip install .[peers]`.
"""

import argparse
import math
import time

from dpaccount import InstaHide
from dpaccount.accountants import PLDAccountant, RDPAccountant
from dpaccount.numerics import closed_form as cf


def pld_result(mech, delta):
    return PLDAccountant().row(mech, delta)


def rdp_result(mech, delta):
    return RDPAccountant().row(mech, delta)


try:
    from dp_accounting.pld import common as pl_common
    from dp_accounting.pld import privacy_loss_distribution as pl
except ImportError:  # pragma: no cover
    pl = None
try:
    from autodp import rdp_acct, rdp_bank
except ImportError:  # pragma: no cover
    rdp_acct = None


def timed(f):
    t = time.perf_counter()
    v = f()
    return v, time.perf_counter() - t


def dpa(q, s, b, T, delta, disc):
    pld = pl.from_laplace_mechanism(b / s, 1.0, pessimistic_estimate=True,
                                    value_discretization_interval=disc, sampling_prob=q)
    return pld.self_compose(T).get_epsilon_for_delta(delta)


def dpa_pure(eps1, T, delta):
    pld = pl.from_privacy_parameters(pl_common.DifferentialPrivacyParameters(eps1, 0.0),
                                     value_discretization_interval=1e-4)
    return pld.self_compose(T).get_epsilon_for_delta(delta)


def autodp_eps(q, eps0, T, delta):
    acct = rdp_acct.anaRDPacct(m=100, m_max=1024)
    acct.compose_subsampled_mechanism(lambda x: rdp_bank.RDP_laplace({"b": 1 / eps0}, x), q,
                                      coeff=T)
    return acct.get_eps(delta)


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
    print(f"delta = {delta:g}, Delta = 1; ours: add_remove Poisson (the peers' pair); ours-sub: "
          "substitution k-subsets (symmetrised pair); rdp, kov, autodp: substitution")
    cols = ["N", "k", "b", "T", "ours up", "width", "s", "ours-sub", "s", "rdp", "s", "kov", "s",
            "dpa-def", "s", "dpa-1e5", "s", "dpa-pure", "s", "autodp", "s", "up/kov",
            "up/dpa5", "sub/up", "t dpa5/ours"]
    print(" ".join(f"{c:>9}" for c in cols))
    nan = math.nan
    for n, k, b, T in grid:
        m = InstaHide(labels="none", k=k, noise=b, n=n, diameter=1.0, releases=T)
        ar = InstaHide(labels="none", k=k, noise=b, n=n, diameter=1.0, releases=T,
                       sampler="poisson", relation="add_remove", norm=1.0)
        row, t_ours = timed(lambda: pld_result(ar, delta))
        sub, t_sub = timed(lambda: pld_result(m, delta))
        rdp_row, t_rdp = timed(lambda: rdp_result(m, delta))
        e1 = cf.amplified_epsilon(1.0 / (k * b), k / n)
        kov, t_kov = timed(lambda: cf.kov_epsilon(e1, T, delta))
        d1 = t_d1 = d2 = t_d2 = dp_ = t_dp = ad = t_ad = nan
        if pl is not None:
            d1, t_d1 = timed(lambda: dpa(k / n, 1.0 / k, b, T, delta, 1e-4))
            d2, t_d2 = timed(lambda: dpa(k / n, 1.0 / k, b, T, delta, 1e-5))
            if T <= 20000:  # a generic eps1-DP PLD self-composed 2e6 times takes minutes
                dp_, t_dp = timed(lambda: dpa_pure(e1, T, delta))
        if rdp_acct is not None:
            ad, t_ad = timed(lambda: autodp_eps(k / n, 1.0 / (k * b), T, delta))
        width = row.extra.get("interval_width") or 0.0
        up = row.epsilon
        vals = [n, k, b, T, up, f"{width:.2%}", t_ours, sub.epsilon, t_sub, rdp_row.epsilon,
                t_rdp, kov, t_kov, d1, t_d1, d2, t_d2, dp_, t_dp, ad, t_ad,
                up / kov if kov else nan, up / d2 if d2 else nan, sub.epsilon / up,
                t_d2 / t_ours]
        print(" ".join(f"{v:>9.5g}" if isinstance(v, float) else f"{v!s:>9}" for v in vals),
              flush=True)


if __name__ == "__main__":
    main()
