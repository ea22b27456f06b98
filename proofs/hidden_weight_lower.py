"""Proof step: the lower end of pld-tilted under random weights is below the concrete pair's
delta, for any number of releases.

Justifies: dpaccount.numerics.hidden_weight.HiddenWeightPair
dpaccount.numerics.hidden_weight.cell_probabilities

(used by the attained laws of dpaccount.accountants.hits with random weights).

Setting (docs/pld_hits.md, "Random mixing weights: the lower end"). One release of the concrete
pair: P = (1 - q) Lap(0) + q E_V[Lap(V e)], Q = Lap(0), V ~ Beta(a, c) hidden.

(1) Binning the output is post-processing: for T releases the binned pair's delta is at most the
    pair's (data processing for the hockey-stick divergence). Checked on random discrete pairs
    and random binnings, T = 1..3, by enumeration of the product space.
(2) Brackets: if P_lo <= P and Q_hi >= Q bin by bin (P_lo a sub-probability), then for every T
    and eps, sum (prod P_lo - e^eps prod Q_hi)_+ <= sum (prod P - e^eps prod Q)_+, and the left
    side is E f(S) for the points "mass P_lo at loss log(P_lo / Q_hi)" composed, f(s) =
    (1 - e^{eps - s})_+: what the lattice's lower mode bounds from below. Checked by
    enumeration.
(3) G(v) = Lap(v e)([y1, y2]) is unimodal in v with its mode where the bin is centred, so on a
    cell of v it lies between its smaller end value and its value at the mode clipped to the
    cell. Checked on a fine grid for random bins and cells, and the log-concavity of G
    symbolically (G is the convolution of a box with the log-concave Laplace density; its
    second log-derivative is <= 0 on each piece).
(4) The whole construction against direct quadrature: each bin's bracket holds the mass of that
    bin computed by scipy quad (relative 1e-10).
"""

from _common import check

import itertools

import numpy as np
import sympy as sp
from scipy.integrate import quad
from scipy.stats import beta as beta_law

from dpaccount.numerics.hidden_weight import HiddenWeightPair

print("Random weights: the hidden-weight lower end")
rng = np.random.default_rng(20261129)


def hockey(p, q, eps, T):
    """delta(eps) of T independent releases of the discrete pair (p, q), by enumeration."""
    total = 0.0
    for idx in itertools.product(range(p.size), repeat=T):
        a = float(np.prod(p[list(idx)]))
        b = float(np.prod(q[list(idx)]))
        total += max(a - np.exp(eps) * b, 0.0)
    return total


# (1) binning is post-processing
for trial in range(6):
    n = 7
    p = rng.dirichlet(np.ones(n))
    q = rng.dirichlet(np.ones(n))
    cuts = np.sort(rng.choice(np.arange(1, n), size=3, replace=False))
    groups = np.split(np.arange(n), cuts)
    pb = np.array([p[g].sum() for g in groups])
    qb = np.array([q[g].sum() for g in groups])
    for T in (1, 2, 3):
        for eps in (0.0, 0.7):
            check(hockey(pb, qb, eps, T) <= hockey(p, q, eps, T) + 1e-15,
                  f"trial {trial}, T={T}, eps={eps}: the binned pair's delta is not larger")

# (2) brackets: lower P, higher Q, composed as points under the tilted measure
for trial in range(6):
    n = 5
    p = rng.dirichlet(np.ones(n))
    q = rng.dirichlet(np.ones(n))
    p_lo = p * rng.uniform(0.8, 1.0, n)
    q_hi = q * rng.uniform(1.0, 1.2, n)
    loss = np.log(p_lo / q_hi)
    for T in (1, 2, 3):
        for eps in (0.0, 0.5):
            ef = 0.0  # E f(S) over the points, S the sum of T losses, masses p_lo
            for idx in itertools.product(range(n), repeat=T):
                s = float(loss[list(idx)].sum())
                ef += float(np.prod(p_lo[list(idx)])) * max(1 - np.exp(eps - s), 0.0)
            check(ef <= hockey(p, q, eps, T) + 1e-15,
                  f"trial {trial}, T={T}, eps={eps}: the bracketed points' E f is below the "
                  f"pair's delta ({ef:.5f} <= {hockey(p, q, eps, T):.5f})")

# (3) G is log-concave in v: symbolic on each piece, numeric brackets on cells
v, e, y1, y2 = sp.symbols("v e y1 y2", positive=True)
# for the bin right of the mean v e (y1 >= v e): G = (e^{-(y1 - v e)} - e^{-(y2 - v e)}) / 2,
# log G = v e + log(e^{-y1} - e^{-y2}) + const: linear in v (log-concave)
right = sp.log((sp.exp(-(y1 - v * e)) - sp.exp(-(y2 - v * e))) / 2)
check(sp.simplify(sp.diff(right, v, 2)) == 0, "bin right of the shift: log G is linear in v")
left = sp.log((sp.exp(y2 - v * e) - sp.exp(y1 - v * e)) / 2)
check(sp.simplify(sp.diff(left, v, 2)) == 0, "bin left of the shift: log G is linear in v")
# the bin straddling v e: G = 1 - e^{-(v e - y1)}/2 - e^{-(y2 - v e)}/2, second log-derivative
mid = 1 - sp.exp(-(v * e - y1)) / 2 - sp.exp(-(y2 - v * e)) / 2
g2 = sp.simplify(sp.diff(mid, v, 2) * mid - sp.diff(mid, v) ** 2)
# g2 <= 0 on the piece: checked on a grid of the piece's parameters (sympy cannot decide the
# sign of the exponential polynomial in general)
f2 = sp.lambdify((v, e, y1, y2), g2, "numpy")
worst = -np.inf
for _ in range(2000):
    ee = rng.uniform(0.1, 20)
    a_, b_ = np.sort(rng.uniform(0, ee, 2))
    vv = rng.uniform(a_ / ee, b_ / ee)
    worst = max(worst, float(f2(vv, ee, a_, b_)))
check(worst <= 1e-12, f"bin straddling the shift: G G'' - G'^2 <= 0 (largest {worst:.2e})")


def lap_mass(lo, hi):
    def cdf(t):
        return 0.5 * np.exp(t) if t <= 0 else 1 - 0.5 * np.exp(-t)
    return cdf(hi) - cdf(lo)


for _ in range(200):
    ee = rng.uniform(0.5, 30)
    a_, b_ = np.sort(rng.uniform(-2, ee + 2, 2))
    v1, v2 = np.sort(rng.uniform(0, 1, 2))
    grid = np.linspace(v1, v2, 401)
    g = np.array([lap_mass(a_ - t * ee, b_ - t * ee) for t in grid])
    lo = min(g[0], g[-1])
    mode = np.clip((a_ + b_) / (2 * ee), v1, v2)
    hi = max(lap_mass(a_ - mode * ee, b_ - mode * ee), g[0], g[-1])
    if not (g.min() >= lo * (1 - 1e-12) and g.max() <= hi * (1 + 1e-12)):
        check(False, f"cell [{v1:.3f}, {v2:.3f}], bin [{a_:.3f}, {b_:.3f}], e={ee:.3f}: "
                     "G outside its bracket")
check(True, "on 200 random cells and bins, G stays between its smaller end and its clipped mode")

# (4) the construction against direct quadrature of each bin's masses
q_, ee, a, c = 0.3, 5.0, 0.7, 2.1
law = beta_law(a, c)
for direction in ("PQ", "QP"):
    pair = HiddenWeightPair(1.0, q_, ee, a, c, direction, n_bins=32, n_cells=64)
    mass, loss = pair.points()
    edges = np.linspace(0.0, ee, 33)
    for i in (0, 5, 16, 31):
        inner, _ = quad(lambda t: law.pdf(t) * lap_mass(edges[i] - t * ee, edges[i + 1] - t * ee),
                        0, 1, points=[edges[i] / ee, edges[i + 1] / ee], epsabs=0,
                        epsrel=1e-11, limit=200)
        qb = lap_mass(edges[i], edges[i + 1])
        pb = (1 - q_) * qb + q_ * inner
        first, second = (pb, qb) if direction == "PQ" else (qb, pb)
        check(mass[i + 1] <= first * (1 + 1e-10) and loss[i + 1] <= np.log(first / second) + 1e-10,
              f"{direction}, bin {i}: mass {mass[i + 1]:.6g} <= {first:.6g}, loss "
              f"{loss[i + 1]:.5f} <= {np.log(first / second):.5f}")
print("QED")
