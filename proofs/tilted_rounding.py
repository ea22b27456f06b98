"""Proof step: the tilted-measure bounds of the pld-tilted accountant are bounds.

Justifies: dpaccount.numerics.hits.component_pieces, dpaccount.numerics.hits.leaf,
dpaccount.numerics.hits.bennett_eta

(The accountant does not condition on the hit count, the approach issue 13 suggested: rounding
under the tilted measure alone reaches the large-eps0 targets, docs/pld_hits.md. What is checked
here is what the code relies on.)

(1) delta(eps) = E_Q[(e^L - e^eps)_+] = E_P[f(L)], f(s) = (1 - e^{eps - s})_+, for a privacy
    loss L = log dP/dQ (change of measure; checked by quadrature for the Laplace pair, and for T
    i.i.d. releases the tilted law of the sum is the product of the tilted laws).
(2) f is nondecreasing, 1-Lipschitz and in [0, 1] (so a stochastically larger sum gives a larger
    E f, a smaller one a smaller E f, and dropping mass lowers it).
(3) The one-release pieces: in u = (|z| - |z - s|)/b the Laplace images have densities
    e^{-(u+eps0)/2}/4 and e^{(u-eps0)/2}/4 on (-eps0, eps0); the slice masses and means of u are
    the closed forms of dpaccount.numerics.hits._slices (sympy integration).
(4) L(u) = log(1 - q + q e^u) is convex with 0 <= L'' <= 1/4, so on a slice the mean loss lies
    between L(mean u) (Jensen) and the chord at mean u (checked symbolically and by quadrature).
(5) The symmetrised law's tilted masses (+L with the P-mass of u > 0, -L with the Q-mass, the
    atom (1-q)(1 - e^{-eps0/2}) at 0) sum to 1.
(6) The split of a point x in [a, a+h] onto {a, a+h} keeping its mean has conditional mean 0 and
    range h; Azuma-Hoeffding then gives P(D >= eta) <= exp(-2 eta^2 / V), V = sum of ranges^2,
    and on {D >= -eta} f(S) <= f(S' + eta), on {D <= eta} f(S) >= f(S' - eta): the two ends.
(7) Bennett instead of Azuma at the leaves (dpaccount.numerics.hits.bennett_eta): the split X
    of x has E[X | x] = 0, X <= R and E[X^2 | x] = (x - a)(a + h - x) =: s2(x) <= R^2/4, so
    E[e^{lam X} | x] <= exp(s2(x) phi(lam R) / R^2), phi(u) = e^u - 1 - u (Bennett 1962); x is a
    fresh release, so E[e^{lam X} | past] <= E_x exp(s2 phi/R^2) <= 1 - p + p e^{phi(lam R)/4},
    p = E s2 / (R^2/4) (the chord of the convex exp on [0, R^2/4]); s2 is concave, so a piece's
    E s2 is at most s2 at its mean. With the regrids' Hoeffding factors, the tower property and
    Chernoff, P(D >= eta) <= bad for eta = (log(1/bad) + log E e^{lam D}) / lam, any lam > 0.
    Checked: the lemma on two-point laws, the chord, and P(D >= eta) exactly (enumeration) for
    sums of a few splits, against the eta the code computes.
QED at the end when every check holds.
"""

from _common import check

import mpmath as mp
import sympy as sp

print("The tilted-measure rounding bounds delta from both sides")

# (1) change of measure, one release of the pair, by quadrature
mp.mp.dps = 30
for q, e0, eps in ((0.3, 2.0, 0.5), (0.05, 8.0, 1.5), (1.0, 1.0, 0.2)):
    pdf0 = lambda z: mp.e ** (-abs(z)) / 2                    # noqa: E731  b = 1, s = eps0
    pdfs = lambda z: mp.e ** (-abs(z - e0)) / 2               # noqa: E731
    P = lambda z: (1 - q) * pdf0(z) + q * pdfs(z)             # noqa: E731
    lhs = mp.quad(lambda z: max(P(z) - mp.e ** eps * pdf0(z), 0), [-mp.inf, 0, e0, mp.inf])
    rhs = mp.quad(lambda z: P(z) * max(1 - mp.e ** eps * pdf0(z) / P(z), 0),
                  [-mp.inf, 0, e0, mp.inf])
    check(abs(lhs - rhs) < 1e-20, f"E_Q[(e^L - e^eps)_+] = E_P[(1 - e^(eps - L))_+] "
                                  f"(q={q}, eps0={e0}, eps={eps})")

# (2) f nondecreasing, 1-Lipschitz, in [0, 1] above eps (and 0 below)
s, e = sp.symbols("s e", real=True)
f = 1 - sp.exp(e - s)
check(sp.simplify(sp.diff(f, s) - sp.exp(e - s)) == 0,
      "f' = e^(eps - s), in (0, 1] for s >= eps: f nondecreasing and 1-Lipschitz")
check(sp.simplify(f.subs(s, e)) == 0, "f is continuous at s = eps (0 below, 1 - e^(eps-s) above)")

# (3) slice masses and means of u
u, u1, u2, e0s = sp.symbols("u u1 u2 eps0", real=True)
d0 = sp.exp(-(u + e0s) / 2) / 4
ds = sp.exp((u - e0s) / 2) / 4
m0 = sp.integrate(d0, (u, u1, u2))
ms = sp.integrate(ds, (u, u1, u2))
check(sp.simplify(m0 - sp.Rational(1, 2) * sp.exp(-(u1 + e0s) / 2)
                  * (1 - sp.exp(-(u2 - u1) / 2))) == 0,
      "Lap(0) mass of a slice = e^{-(u1+eps0)/2} (1 - e^{-(u2-u1)/2}) / 2")
check(sp.simplify(ms - sp.Rational(1, 2) * sp.exp(-(e0s - u2) / 2)
                  * (1 - sp.exp(-(u2 - u1) / 2))) == 0,
      "Lap(s) mass of a slice = e^{-(eps0-u2)/2} (1 - e^{-(u2-u1)/2}) / 2")
D = sp.Symbol("D", positive=True)
mean0 = sp.integrate((u1 + sp.Symbol("t")) * sp.exp(-sp.Symbol("t") / 2),
                     (sp.Symbol("t"), 0, D)) / sp.integrate(sp.exp(-sp.Symbol("t") / 2),
                                                           (sp.Symbol("t"), 0, D))
check(sp.simplify(mean0 - (u1 + 2 - D / (sp.exp(D / 2) - 1))) == 0,
      "mean of u on a slice under Lap(0) = u1 + 2 - D/(e^{D/2} - 1), D = u2 - u1")
series = sp.series(2 - D / (sp.exp(D / 2) - 1), D, 0, 6).removeO()
check(sp.simplify(series - (D / 2 - D ** 2 / 24 + D ** 4 / 5760)) == 0,
      "its series D/2 - D^2/24 + D^4/5760 + O(D^6) (used for D < 1e-3)")
tot = sp.integrate(d0, (u, -e0s, e0s)) + sp.Rational(1, 2) + sp.exp(-e0s) / 2
check(sp.simplify(tot - 1) == 0, "Lap(0): atoms 1/2 (u = -eps0), e^-eps0/2 (u = eps0) and the "
                                 "continuous part sum to 1")

# (4) convexity of L and the bracket
qq = sp.Symbol("q", positive=True)
L = sp.log(1 - qq + qq * sp.exp(u))
L2 = sp.simplify(sp.diff(L, u, 2))
check(sp.simplify(L2 - qq * (1 - qq) * sp.exp(u) / (1 - qq + qq * sp.exp(u)) ** 2) == 0,
      "L'' = q(1-q)e^u / (1 - q + q e^u)^2 >= 0 for q in (0, 1]")
x = sp.Symbol("x", positive=True)  # x = q e^u, y = 1 - q
y = sp.Symbol("y", nonnegative=True)
check(sp.factor((x + y) ** 2 - 4 * x * y) == (x - y) ** 2, "(1 - q + q e^u)^2 >= 4 q(1-q) e^u: L'' <= 1/4")
for q, a, b in ((0.01, -3.0, 2.0), (0.5, -1.0, 1.0), (1e-4, 5.0, 12.0)):
    Lf = lambda t: mp.log(1 - q + q * mp.e ** t)  # noqa: E731
    w = lambda t: (1 - q) * mp.e ** (-t / 2) + q * mp.e ** (t / 2)  # noqa: E731
    Z = mp.quad(w, [a, b])
    ub = mp.quad(lambda t: t * w(t), [a, b]) / Z
    mL = mp.quad(lambda t: Lf(t) * w(t), [a, b]) / Z
    chord = Lf(a) + (Lf(b) - Lf(a)) * (ub - a) / (b - a)
    check(Lf(ub) <= mL <= chord, f"L(mean u) <= mean L <= chord (q={q}, slice [{a}, {b}])")

# (5) the symmetrised law's tilted masses
E = sp.Symbol("E", positive=True)  # E = e^{-eps0/2}
Pq = (1 - qq) * E / 2 + qq * (1 - E / 2)  # P*(u > 0), atom at eps0 included
Qq = E / 2                                 # Q*(u > 0)
atom = (1 - qq) * (1 - E)
check(sp.simplify(Pq + Qq + atom - 1) == 0, "P(u > 0) + Q(u > 0) + (1-q)(1 - e^{-eps0/2}) = 1")

# (6) the split
a_, h_, x_ = sp.symbols("a h x", real=True)
p_hi = (x_ - a_) / h_
mean_split = (1 - p_hi) * a_ + p_hi * (a_ + h_)
check(sp.simplify(mean_split - x_) == 0, "split of x onto {a, a+h} keeps its mean: E[D | x] = 0")
check(sp.simplify((a_ + h_ - x_) - (a_ - x_) - h_) == 0, "and D takes values in [a - x, a + h - x]: range h")
check(all(mp.e ** (-2 * mp.mpf(t) ** 2 / 3) <= 1 for t in (0, 1, 2)),
      "Azuma-Hoeffding: P(D >= eta) <= exp(-2 eta^2 / sum h_i^2) (McDiarmid 1989, Thm 6.7)")

# (7) Bennett at the leaves
import math  # noqa: E402

import numpy as np  # noqa: E402

from dpaccount.numerics.hits import split_variance, bennett_eta  # noqa: E402

rng = np.random.default_rng(7)
worst = -1.0
for _ in range(2000):  # Bennett's lemma on the two-point split, R >= h
    h = 1.0
    x = rng.uniform(0, h)
    r = h * rng.uniform(1.0, 2.0)
    lam = math.exp(rng.uniform(-4, 4))
    pa = (h - x) / h  # P(X = a - x = -x), P(X = h - x) = x / h
    mgf = pa * math.exp(-lam * x) + (1 - pa) * math.exp(lam * (h - x))
    s2 = x * (h - x)
    phi = math.expm1(lam * r) - lam * r
    worst = max(worst, math.log(mgf) - s2 * phi / r ** 2)
    # and for -X (also <= R)
    mgf_m = pa * math.exp(lam * x) + (1 - pa) * math.exp(-lam * (h - x))
    worst = max(worst, math.log(mgf_m) - s2 * phi / r ** 2)
check(worst <= 1e-12, f"Bennett: log E e^(lam X) <= s2 phi(lam R)/R^2 on 2000 splits "
                      f"(largest excess {worst:.1e})")
zs = np.linspace(0, 1, 101)
check(bool(np.all(np.exp(zs * 3.0) <= 1 - zs + zs * math.exp(3.0) + 1e-12)),
      "chord: e^(c s) <= 1 - s/smax + (s/smax) e^(c smax) on [0, smax]")
sv = split_variance(np.array([0.0, 0.0]), np.array([1.0, 2.0]), np.array([0.2, 0.5]),
                     np.array([0.3, 1.5]), 2.0)
check(abs(sv[0] - 0.3 * 0.7 / 4) < 1e-15 and abs(sv[1] - 1.0 / 4) < 1e-15,
      "the piece's variance bound: the concave s2 at the bracket point nearest the cell centre")


def split_sum_law(pts, w, n):
    """The exact law of the sum of n i.i.d. splits onto {0, 1} of a point drawn from ``pts``
    with probabilities ``w``: atoms (values, probabilities), by outer sums; and p = E s2 /
    (1/4)."""
    vals = np.concatenate([-pts, 1 - pts])
    probs = np.concatenate([w * (1 - pts), w * pts])
    tot_v, tot_p = vals, probs
    for _ in range(n - 1):
        tot_v = np.add.outer(tot_v, vals).ravel()
        tot_p = np.multiply.outer(tot_p, probs).ravel()
    return tot_v, tot_p, 4 * float(np.dot(w, pts * (1 - pts)))


# exact tails: random laws of 4 points, 5 releases (8^5 atoms)
for trial in range(5):
    n = 5
    tot_v, tot_p, p_ = split_sum_law(rng.uniform(0, 1, 4), rng.dirichlet(np.ones(4) * 0.3), n)
    for log_bad in (2.0, 5.0):
        eta = bennett_eta(((n, p_, 1.0),), 0.0, log_bad)
        tail = float(tot_p[tot_v >= eta].sum())
        check(tail <= math.exp(-log_bad), f"trial {trial}: P(D >= {eta:.3f}) = {tail:.2e} <= "
                                          f"e^-{log_bad:g} (n = {n}, p = {p_:.3f})")
# the regime the coarse leaves rely on: most mass a hair above a lattice point (rare hits), a
# little in the middle of a cell; 8 releases (4^8 atoms)
for w_mid in (1e-3, 3e-2):
    n = 8
    tot_v, tot_p, p_ = split_sum_law(np.array([1e-3, 0.5]), np.array([1 - w_mid, w_mid]), n)
    for log_bad in (2.0, 5.0, 9.0):
        eta = bennett_eta(((n, p_, 1.0),), 0.0, log_bad)
        tail = float(tot_p[tot_v >= eta].sum())
        azuma = math.sqrt(n * log_bad / 2)
        check(tail <= math.exp(-log_bad) and eta < azuma,
              f"sparse law (middle mass {w_mid:g}): P(D >= {eta:.3f}) = {tail:.2e} <= "
              f"e^-{log_bad:g}; Azuma's eta would be {azuma:.2f}")
print("QED")

