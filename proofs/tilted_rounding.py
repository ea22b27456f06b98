"""Proof step: the tilted-measure bounds of the pld-tilted accountant are bounds.

Justifies: dpaccount.numerics.hits.component_pieces, dpaccount.numerics.hits.leaf

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
print("QED")
