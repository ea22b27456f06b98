"""Proof step: the optimal-composition formula equals the hockey-stick divergence of T-fold
randomized response, checked against brute-force enumeration.

Justifies: dpaccount.numerics.closed_form.kov_delta, dpaccount.numerics.closed_form.kov_epsilon

Kairouz, Oh, Viswanath 2015 (Thm 3.3): T eps-DP mechanisms compose to at worst T randomized
responses P = (e^eps, 1)/(1+e^eps), Q = (1, e^eps)/(1+e^eps). Murtagh and Vadhan 2016 (Eq. 1)
write its privacy profile as
    delta(eps') = sum_i C(T,i) max(0, e^(eps (T-i)) - e^eps' e^(eps i)) / (1 + e^eps)^T.
We enumerate all 2^T outcomes of the composed pair, compute sum_o max(0, P(o) - e^eps' Q(o))
symbolically (exact, in sympy), and check it equals the formula for T = 1..4 at several eps and
eps', and in the reverse direction (Q against P), which is the same by symmetry. Then we check
that dpaccount.numerics.closed_form.kov_delta agrees with the exact value (an upper bound, within 1e-10).
"""

import itertools

from _common import check

import sympy as sp

from dpaccount.numerics.closed_form import kov_delta


def brute(eps, T, epsp):
    p = [sp.exp(eps) / (1 + sp.exp(eps)), 1 / (1 + sp.exp(eps))]
    qd = [p[1], p[0]]
    tot_pq, tot_qp = 0, 0
    for o in itertools.product((0, 1), repeat=T):
        P = sp.Mul(*[p[j] for j in o])
        Q = sp.Mul(*[qd[j] for j in o])
        tot_pq += sp.Max(0, P - sp.exp(epsp) * Q)
        tot_qp += sp.Max(0, Q - sp.exp(epsp) * P)
    return sp.nsimplify(tot_pq), sp.nsimplify(tot_qp)


def formula(eps, T, epsp):
    return sum(sp.binomial(T, i) * sp.Max(0, sp.exp(eps * (T - i)) - sp.exp(epsp) * sp.exp(eps * i))
               for i in range(T + 1)) / (1 + sp.exp(eps)) ** T


print("KOV optimal composition profile")
for T in (1, 2, 3, 4):
    for eps in (sp.Rational(1, 2), sp.Integer(1), sp.Rational(3, 2)):
        for epsp in (sp.Integer(0), sp.Rational(1, 3), eps, 2 * eps):
            pq, qp = brute(eps, T, epsp)
            f = formula(eps, T, epsp)
            check(sp.simplify(pq - f) == 0 and sp.simplify(qp - f) == 0,
                  f"T={T}, eps={eps}, eps'={epsp}: brute force = formula = {float(f):.6g}")
            ours = kov_delta(float(eps), T, float(epsp))
            exact = float(sp.N(f, 30))
            check(ours >= exact * (1 - 1e-15) and ours <= exact * (1 + 1e-10) + 1e-14,
                  f"   kov_delta = {ours:.12g} is an upper bound within 1e-10 (+1e-14 absolute)")
print("QED")
