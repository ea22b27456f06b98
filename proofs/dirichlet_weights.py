"""Proof step: with Dirichlet mixing weights, revealing the changed record's weight gives a pair
that dominates one release, and rounding the weight up keeps it dominating.

Justifies: dpaccount.events.InstaHide.weight_mixture

Setting (docs/pld_hits.md, "Random mixing weights"). A release draws a k-subset S in random
order and weights W ~ Dirichlet(alpha 1_k), independent of S; it outputs sum_i W_i x_{S_i} +
Laplace noise. I is the slot of the changed record if it is in S, else a uniform slot drawn
independently; V = W_I.

(1) I is uniform on {1..k} given inclusion and given exclusion, so I (and V) is independent of
    inclusion, with the same law on both neighbours; V ~ Beta(alpha, (k-1) alpha), the marginal
    of a Dirichlet coordinate. Checked by exact enumeration of I and by the Beta marginal
    (the density of one coordinate, integrated out symbolically for k = 2, 3).
(2) Given V = v the release is the one-record setting with shift v Delta (the coupling changes
    slot I only), so the subsampled pair at q and v Delta / b bounds it (proofs/symmetrised_pair.py
    with s -> v Delta); revealing V only helps the adversary (joint convexity).
(3) H_a((1-q) Lap(0) + q Lap(s) || Lap(0)) is nondecreasing in s for every a >= 1 (checked
    numerically), so rounding v up onto cells keeps an upper bound.
(4) Brute force, one release: dpaccount.exact.dirichlet_exact_delta (direct quadrature, written
    without the accountants) of two-valued pairs never exceeds the revealed, rounded pair's H.
"""

from _common import check

import itertools

import numpy as np
import sympy as sp

from dpaccount import InstaHide
from dpaccount.exact import dirichlet_exact_delta

print("Dirichlet weights: the revealed weight dominates")

# (1) the slot I is uniform whether or not the record is included (exact enumeration, k = 3)
k = 3
pos = {}
for order in itertools.permutations(range(k)):  # the record, if included, sits in slot order[0]
    pos[order[0]] = pos.get(order[0], 0) + 1
check(len(set(pos.values())) == 1, "given inclusion, the record's slot is uniform over k slots")
a = sp.Symbol("alpha", positive=True)
x, y = sp.symbols("x y", positive=True)
for kk in (2, 3):
    al = 2  # a concrete alpha: the Dirichlet(2,...,2) density, one coordinate integrated out
    if kk == 2:
        marg = sp.gamma(2 * al) / sp.gamma(al) ** 2 * x ** (al - 1) * (1 - x) ** (al - 1)
    else:
        dens = sp.gamma(3 * al) / sp.gamma(al) ** 3 * x ** (al - 1) * y ** (al - 1) \
            * (1 - x - y) ** (al - 1)
        marg = sp.integrate(dens, (y, 0, 1 - x))
    beta = sp.gamma(kk * al) / (sp.gamma(al) * sp.gamma((kk - 1) * al)) * x ** (al - 1) \
        * (1 - x) ** ((kk - 1) * al - 1)
    check(sp.simplify(marg - beta) == 0,
          f"k = {kk}: a Dirichlet(2,...,2) coordinate has the Beta(2, {2 * (kk - 1)}) density")

# (3) monotone in the shift, at several orders a = e^eps
z = np.linspace(-24, 28, 104_001)
dz = z[1] - z[0]
lap = lambda m: 0.5 * np.exp(-np.abs(z - m))  # noqa: E731
for q in (0.1, 0.5, 1.0):
    prev = None
    for s in np.linspace(0.0, 4.0, 9):
        p = (1 - q) * lap(0.0) + q * lap(s)
        h = [np.sum(np.maximum(p - np.exp(e) * lap(0.0), 0)) * dz for e in (0.0, 0.5, 1.5)]
        if prev is not None:
            check(all(b >= a_ - 1e-9 for a_, b in zip(prev, h)),
                  f"q={q}, s={s:.2f}: H_a of the subsampled pair does not fall as s grows")
        prev = h

# (4) brute force, one release, two-valued pairs: the truth below the revealed rounded pair
for n, kk, alpha, b in ((4, 2, 0.2, 1.0), (5, 3, 1.0, 0.5), (4, 2, 5.0, 0.25)):
    ev = InstaHide(k=kk, noise=b, n=n, diameter=1.0, releases=1, labels="none",
                   dirichlet_alpha=alpha)
    q = kk / n
    comps = ev.weight_mixture(128)
    for eps in (0.0, 1.5):
        ours = sum(w * np.sum(np.maximum((1 - q) * lap(0.0) + q * lap(v / b)
                                         - np.exp(eps) * lap(0.0), 0)) * dz for w, v in comps)
        truth = max(dirichlet_exact_delta(d1, d2, kk, b, alpha, eps) for d1, d2 in (
            (np.r_[1.0, np.zeros(n - 1)], np.zeros(n)),
            (np.ones(n), np.r_[0.0, np.ones(n - 1)])))
        check(truth <= ours + 1e-6, f"N={n}, k={kk}, alpha={alpha}, b={b}, eps={eps}: "
                                    f"truth {truth:.6f} <= revealed pair {ours:.6f}")
print("QED")
