"""Proof step: the mixture ratio bound behind amplification, eps1 = log(1 + q (e^eps0 - 1)).

Justifies: dpaccount.numerics.closed_form.amplified_epsilon, dpaccount.symbolic.mixture_ratio_bound,
dpaccount.samplers.SamplerType.composition_unit (fixed-size subsets under add/remove)

Substitution, k-subsets (Balle, Barthe, Gaboardi 2018, Table 1): the density of a release is
(1-q) A + q B for D and (1-q) A + q B' for D', where A is the part without the changed record and
B, B' the parts with x, resp. x'. Coupling each subset containing x with the same subset where x
is swapped for x' (or for a record of A's subsets) gives B <= e^eps0 B' and B <= e^eps0 A
pointwise. We check: (1) the gap (1 - q + q e^eps0) - R is non-negative in both cases A <= B' and
B' <= A with B at its largest value, (2) it is zero at A = B' (attained: all other records equal
x'), (3) under add/remove with fixed-size subsets (P = (1-q) Q + q R, R eps0-close to Q), the
reverse direction log(1/((1-q) + q e^-eps0)) never exceeds eps1, so q = k/N at the larger dataset
covers both directions.
"""

from _common import check

import sympy as sp

from dpaccount.symbolic import eps0, mixture_ratio_bound, q

print("Mixture ratio bound (amplification by subsampling)")
eps1, gaps = mixture_ratio_bound()
check(sp.simplify(eps1 - sp.log(1 + q * (sp.exp(eps0) - 1))) == 0,
      f"eps1 = {eps1}")
w = sp.Symbol("w", nonnegative=True)  # e = e^eps0 = 1 + w >= 1
e = sp.Symbol("e", positive=True)
t = sp.Symbol("t", positive=True)
for case, gap in gaps.items():
    g = sp.factor(sp.simplify(gap.subs(e, 1 + w)))
    check(g.is_nonnegative is True, f"case {case}: gap (1-q+q e^eps0) - R = {g} >= 0")
    check(sp.simplify(g.subs(t, 0)) == 0, f"case {case}: gap is 0 at A = B' (bound attained)")

# (3) reverse direction under add/remove: (1-q+q e)(1-q+q/e) >= 1 for e >= 1, q in (0, 1]
u = sp.Symbol("u", positive=True)
qq = u / (1 + u)
ee = 1 + w
prod = sp.factor(sp.simplify((1 - qq + qq * ee) * (1 - qq + qq / ee) - 1))
check(prod.is_nonnegative is True,
      f"(1-q+q e^eps0)(1-q+q e^-eps0) - 1 = {prod} >= 0: the reverse direction is no worse")
# special values
check(sp.simplify(eps1.subs(q, 1) - eps0) == 0, "q = 1 (k = N): eps1 = eps0, no amplification")
check(sp.limit(eps1, q, 0) == 0, "q -> 0: eps1 -> 0")
wp = sp.Symbol("w_pos", positive=True)  # e^eps0 - 1 > 0 for eps0 > 0
dq = sp.simplify(sp.diff(eps1, q).subs(sp.exp(eps0), 1 + wp))
check(dq.is_positive is True, f"d eps1/dq = {dq} > 0: eps1 increases with q")
de = sp.simplify(sp.diff(eps1, eps0).subs(q, qq))
check(de.is_positive is True, f"d eps1/d eps0 = {de} > 0: eps1 increases with eps0")
# eps1 <= eps0 for q <= 1: e^eps1 = 1 + q(e^eps0 - 1) <= e^eps0
gap01 = sp.simplify((sp.exp(eps0) - (1 + qq * (sp.exp(eps0) - 1))).subs(sp.exp(eps0), 1 + w))
check(sp.factor(gap01).is_nonnegative is True, f"e^eps0 - e^eps1 = {sp.factor(gap01)} >= 0: eps1 <= eps0")
print("QED")
