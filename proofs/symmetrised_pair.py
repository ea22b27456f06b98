"""Proof step: the pair the accountant composes under substitution dominates every neighbour pair.

Justifies: dpaccount.accountants.pld.dominating_laws, dpaccount.numerics.laplace_pair.LaplaceMixturePair.log_zero_atom

Setting (docs/theory.md Sec. 3). One release of D is (1-q) A + q B and of D' is (1-q) A + q B',
where, given the k - 1 other records S' of the subset (a common mixing variable with the same law
on both sides), B = Lap(c + x/k), B' = Lap(c + x'/k) and A = the mixture over the remaining
records j of Lap(c + x_j/k). With P* = (1-q) Lap(0) + q Lap(s), Q* = Lap(0), s = Delta/k:

(1) Advanced joint convexity (Balle, Barthe, Gaboardi 2018, Thm 2): for a' = 1 + q (a - 1) and
    beta = a'/a, the integrands of H_a'((1-q)A + qB || (1-q)A + qB') and of
    q H_a(B || (1-beta) A + beta B') are equal pointwise (checked symbolically), and
    0 <= beta <= 1 for a >= 1.
(2) Hence, by convexity of H_a in its second argument and the Laplace bound
    H_a(Lap(u) || Lap(v)) <= H_a(Lap(0) || Lap(s)) for |u - v| <= s, every ordered neighbour pair
    has H_a'(M(D) || M(D')) <= q H_a(Lap(0) || Lap(s)) = H_a'(P* || Q*) for every a' >= 1, with
    equality when A = B' (every other record at x'). Mixtures over S' (common to both sides) keep
    this (joint convexity). This is a bound per order a', not one pair for all orders: the
    worst arrangement of the other records depends on a' (the composition pitfall).
(3) The symmetrised law L_sym, in the reference measure of its pair: the PQ loss l > 0 with its
    Q*-mass, the mirrored loss -l with the P*-mass of l, and an atom at 0. Checked symbolically:
    the atom is 1 - Q*(z > s/2) - P*(z > s/2) = (1-q)(1 - e^{-eps0/2}) >= 0, the law has total
    mass 1 and E[e^{L_sym}] = 1 under its reference (a valid privacy loss distribution of a
    symmetric pair).
(4) Its profile: for eps >= 0 only losses above eps count, where L_sym equals the PQ loss, so
    delta_sym(eps) = H_{e^eps}(P* || Q*); it is symmetric, so for eps < 0 it is the reverse-order
    bound. By (2) every ordered neighbour pair, in both orders, lies below it at every order:
    its trade-off function is at least the symmetrised one, and trade-off functions compose
    (Dong, Roth, Su 2022, Thm 4; Zhu, Dong, Wang 2022, Sec. 5), so T releases are bounded by
    T-fold composition of L_sym. Checked numerically: delta_sym equals H(P*||Q*) for eps >= 0, and
    max(H(P*||Q*), H(Q*||P*)) = H(P*||Q*) there.
(5) It is the tightest single pair: the other records at x' attain H(P*||Q*), the other records at
    x attain the reverse, and a single pair below both trade-off functions is below their convex
    lower envelope, which is the symmetrised one.
"""

from _common import check

import numpy as np
import sympy as sp

print("The symmetrised pair dominates every substitution pair")

# (1) advanced joint convexity, pointwise
q, a = sp.symbols("q a", positive=True)
a0, a1, a1p = sp.symbols("A B Bp", nonnegative=True)
ap = 1 + q * (a - 1)
beta = ap / a
lhs = (1 - q) * a0 + q * a1 - ap * ((1 - q) * a0 + q * a1p)
rhs = q * (a1 - a * ((1 - beta) * a0 + beta * a1p))
check(sp.simplify(lhs - rhs) == 0,
      "(1-q)A + qB - a'((1-q)A + qB') = q (B - a((1-beta)A + beta B')) pointwise, a' = 1 + q(a-1)")
w = sp.Symbol("w", nonnegative=True)  # a = 1 + w >= 1
qq = sp.Symbol("u", positive=True) / (1 + sp.Symbol("u", positive=True))  # q in (0, 1)
b_sub = sp.simplify(beta.subs({a: 1 + w, q: qq}))
check(sp.simplify(b_sub).is_nonnegative is True, f"beta = {b_sub} >= 0 for a >= 1")
check(sp.factor(sp.simplify(1 - b_sub)).is_nonnegative is True, "beta <= 1 for a >= 1")

# (3) the atom and the normalisation, with Laplace(0, 1) units (eps0 = s)
z = sp.Symbol("z", real=True)
e0 = sp.Symbol("epsilon_0", positive=True)
lap = lambda mu: sp.exp(-sp.Abs(z - mu)) / 2  # noqa: E731
qstar_pos = sp.simplify(sp.integrate(sp.exp(-z) / 2, (z, e0 / 2, sp.oo)))  # Lap(0) on z > s/2
lap_s_pos = sp.simplify(sp.integrate(sp.exp(-(e0 - z)) / 2, (z, e0 / 2, e0))
                        + sp.integrate(sp.exp(-(z - e0)) / 2, (z, e0, sp.oo)))
pstar_pos = (1 - q) * qstar_pos + q * lap_s_pos
atom = sp.simplify(1 - qstar_pos - pstar_pos)
check(sp.simplify(atom - (1 - q) * (1 - sp.exp(-e0 / 2))) == 0,
      f"atom at 0 = 1 - Q*(L > 0) - P*(L > 0) = {sp.factor(atom)} = (1-q)(1 - e^(-eps0/2))")
x_ = sp.Symbol("x", positive=True)
check(sp.factor((atom.subs(sp.exp(-e0 / 2), 1 / (1 + x_))).subs(q, qq)).is_nonnegative is True,
      "the atom is >= 0")
# total mass under the reference: Q*(L>0) [positive part] + P*(L>0) [mirror] + atom = 1, and
# E_ref[e^L] = P*(L>0) [positive part tilted] + Q*(L>0) [mirror tilted by e^-L] + atom = 1
check(sp.simplify(qstar_pos + pstar_pos + atom - 1) == 0, "the symmetrised law has total mass 1")
check(sp.simplify(pstar_pos + qstar_pos + atom - 1) == 0,
      "E_ref[e^L_sym] = 1: it is the loss law of a pair of probability laws")

# (4) numerically: the profile for eps >= 0 and the symmetry, by quadrature on a fine grid
zz = np.linspace(-60.0, 70.0, 2_600_001)
dz = zz[1] - zz[0]
worst = 0.0
for qv, sv in ((0.5, 2.0), (0.1, 1.0), (0.9, 4.0), (0.02, 6.0)):
    f0 = 0.5 * np.exp(-np.abs(zz))
    fs = 0.5 * np.exp(-np.abs(zz - sv))
    p, qd = (1 - qv) * f0 + qv * fs, f0
    loss = np.log(p) - np.log(qd)
    pos = loss > 0
    # the symmetrised law in the reference measure: values, masses
    vals = np.concatenate([loss[pos], -loss[pos], [0.0]])
    mass = np.concatenate([qd[pos] * dz, p[pos] * dz, [0.0]])
    mass[-1] = 1.0 - mass[:-1].sum()
    for eps in (0.0, 0.2, 0.7, 1.5):
        if eps > np.log(1 - qv + qv * np.exp(sv)):
            continue
        h_pq = np.sum(np.maximum(p - np.exp(eps) * qd, 0.0)) * dz
        h_qp = np.sum(np.maximum(qd - np.exp(eps) * p, 0.0)) * dz
        m = vals > eps
        h_sym = np.sum(mass[m] * (np.exp(vals[m]) - np.exp(eps)))
        worst = max(worst, abs(h_sym - h_pq))
        check(h_qp <= h_pq + 1e-9, f"q={qv}, s={sv}, eps={eps}: H(Q*||P*) = {h_qp:.6f} <= "
                                   f"H(P*||Q*) = {h_pq:.6f}")
        # symmetry: H_{e^-eps}(sym) = 1 - e^-eps + e^-eps H_{e^eps}(sym)
        mneg = vals > -eps
        h_neg = np.sum(mass[mneg] * (np.exp(vals[mneg]) - np.exp(-eps)))
        check(abs(h_neg - (1 - np.exp(-eps) + np.exp(-eps) * h_sym)) < 1e-6,
              f"q={qv}, s={sv}, eps={eps}: the symmetrised profile is symmetric")
check(worst < 1e-6, f"the symmetrised profile equals H(P*||Q*) for eps >= 0 (max gap {worst:.1e})")
print("QED")
