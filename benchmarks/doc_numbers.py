"""The accounting numbers quoted in the prose of docs/theory.md, docs/pld.md and docs/audit.md.

Each line names the page and section that quotes it. Everything is computed here, with
dpaccount's API, in a few seconds; the tables of those pages have their own scripts
(benchmarks/pld_vs_peers.py, benchmarks/audit_tightness.py, benchmarks/training_epsilons.py).

Run:  python benchmarks/doc_numbers.py      (about 15 s on a 2-core machine)
"""

import math

import numpy as np

import dpaccount
from dpaccount.accountants import PLDAccountant, RDPAccountant
from dpaccount.accountants.pld import attained_composition
from dpaccount.exact import ConcreteProfile
from dpaccount.numerics import closed_form as cf


def theory():
    print("docs/theory.md")
    # Sec. 1: what an un-noised soft label does to a record alone in its class
    bare = dpaccount.InstaHide(n=4, k=2, noise=1, diameter=1, releases=1, labels="none")
    eps = dpaccount.tightest(bare, 1e-5).epsilon
    eps0 = bare.eps0
    # the record alone in its class: the label shows whether it is in the release (q = 1/2);
    # when it is, the release is the Laplace mechanism with eps0: delta(eps) = 1 - e^{(eps-eps0)/2}
    true_delta = 0.5 * -math.expm1((eps - eps0) / 2)
    soft = dpaccount.tightest(dpaccount.InstaHide(n=4, k=2, noise=1, diameter=1, releases=1,
                                                  labels="soft"), 1e-5).epsilon
    print(f"  Sec. 1: n=4 k=2 b=1 Delta=1 T=1, labels none: epsilon {eps:.4f} at delta 1e-5; "
          f"alone in its class with the soft label, true delta there {true_delta:.3f}; "
          f"labels soft: {soft:.5f}")
    # Sec. 2: the Poisson sampler moves a release by the record's norm
    pois = dpaccount.InstaHide(n=4, k=2, noise=1, diameter=1.0, norm=2.0, releases=1,
                               sampler="poisson", relation="add_remove", labels="none")
    print(f"  Sec. 2: pixels in [1, 2] (diameter 1, norm 2), Poisson, add/remove: "
          f"{dpaccount.tightest(pois, 1e-5).epsilon:.4f}")
    # Sec. 3: the pair (P*, Q*) composed is not sound under substitution
    for n, k, b, t, delta in ((6, 1, 2.0, 3, 0.0105), (2, 1, 1.0, 2, 0.128)):
        m = dpaccount.InstaHide(n=n, k=k, noise=b, diameter=1.0, releases=t, labels="none")
        old = attained_composition(m).epsilon(delta)[1]
        d = np.array([0.0] + [0.5] * (n - 1))
        d_prime = np.array([1.0] + [0.5] * (n - 1))
        concrete = ConcreteProfile(d, d_prime, k, b, t).delta_bounds(old)[0]
        sym = PLDAccountant().epsilon(m, delta).epsilon
        print(f"  Sec. 3: N={n} k={k} b={b:g} Delta=1 T={t}: the pair (P*, Q*) says "
              f"{old:.4f} at delta {delta:g}; records 0 vs 1, the others at 0.5, need delta "
              f">= {concrete:.5f} there; the symmetrised pair gives {sym:.4f}")
    # Sec. 4: the CIFAR-10 default
    cifar = dpaccount.InstaHide.from_epochs(k=4, noise=0.1, n=50000, diameter=3072.0, epochs=40,
                                            class_sizes=(5000,) * 10)
    table = dpaccount.epsilon(cifar, 1e-5)
    cifar_none = dpaccount.InstaHide.from_epochs(k=4, noise=0.1, n=50000, diameter=3072.0,
                                                 epochs=40, labels="none")
    whole = [r.epsilon for r in table.rows if r.releases == cifar.releases and r.epsilon]
    print(f"  Sec. 4: CIFAR-10 default: naive {table.row('naive').epsilon:g}, eps0 "
          f"{cifar.eps0:g}, eps1 {table.row('amplified').epsilon:.2f} (labels none: "
          f"{cf.amplified_epsilon(cifar_none.eps0, cifar_none.sampling_rate):.2f}), whole run "
          f"{min(whole):.3g} to {max(whole):.3g} ({table.tightest.method} smallest)")
    digits = dpaccount.InstaHide(k=4, noise=1.0, n=1797, diameter=64.0, releases=1,
                                 labels="none")
    print(f"  Sec. 4: digits N=1797 Delta=64 k=4 b=1: eps1 "
          f"{cf.amplified_epsilon(digits.eps0, digits.sampling_rate):.1f}")


def pld():
    print("docs/pld.md")
    target = dpaccount.InstaHide(k=4, noise=1.0, n=50000, diameter=1.0, releases=2_000_000,
                                 labels="none")
    p = PLDAccountant().epsilon(target, 1e-5).epsilon
    r = RDPAccountant().epsilon(target, 1e-5).epsilon
    print(f"  Renyi DP: target setting (N=50000 k=4 b=1 Delta=1 T=2e6, substitution): rdp "
          f"{r:.4f} / pld {p:.4f} = {r / p:.2f}")
    for sizes in (None, (142, 146, 142, 146, 145, 146, 145, 143, 139, 144)):
        one = dpaccount.InstaHide.from_epochs(k=4, noise=1.0, n=1438, diameter=64.0, epochs=20,
                                              class_sizes=sizes)
        row = PLDAccountant().epsilon(one, 1e-5)
        what = "no class sizes (a class of one)" if sizes is None else "the training class sizes"
        print(f"  Limits: digits b=1 (eps0 = {one.eps0:g}), 20 epochs, soft labels, {what}: "
              f"[{row.lower:.4g}, {row.epsilon:.4g}], width {row.extra['interval_width']:.1%}; "
              f"the lattice's own lower bound {row.extra['pair_epsilon_lower']:.4g} "
              f"(discretisation width {row.extra['discretisation_width']:.1%})")


def audit():
    print("docs/audit.md")
    mech = dpaccount.InstaHide(k=2, noise=1.0, n=4, diameter=4.0, releases=10, labels="none")
    print(f"  the pair the audit simulates, T=10 delta=1e-2: "
          f"{attained_composition(mech).epsilon(1e-2)[1]:.3f} (the accountant: "
          f"{dpaccount.tightest(mech, 1e-2).epsilon:.3f})")
    perm = dpaccount.InstaHide(k=1, noise=1.0, n=2, diameter=2.0, releases=1,
                               sampler="permutation", labels="none")
    res = dpaccount.audit_mechanism(perm, delta=1e-2, trials=10**6, seed=0)
    print(f"  Limits: permutation k=1 N=2 T=1 (eps0 = 2), delta 1e-2, 1e6 trials: audit "
          f"{res.epsilon_lower_bound:.2f} against {res.epsilon_upper_bound:.2f} "
          f"({res.accountant})")


if __name__ == "__main__":
    theory()
    pld()
    audit()
