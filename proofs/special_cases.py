"""Proof step: the special cases k = 1 and k = N, and the paper's "k times" claim.

Justifies: dpaccount.numerics.closed_form.per_release_epsilon, dpaccount.numerics.closed_form.amplified_epsilon

With eps0 = Delta/(k b) (Laplace step on the mean of k records) and q = k/N:
(1) k = 1: eps0 is the naive Laplace epsilon Delta/b, and eps1 = log(1 + (e^(Delta/b) - 1)/N),
    the classic amplified Laplace mechanism on one sampled record;
(2) k = N: q = 1, no amplification, eps1 = eps0 = Delta/(N b);
(3) eps0(k) = eps0(1)/k for every k: k-way mixup is k times stronger per release than the naive
    mechanism (Borgnia et al. 2021, abstract and Sec. 4).
"""

from _common import check

import sympy as sp

from dpaccount.symbolic import Delta, N, b, k, laplace_log_ratio_sup, mixture_ratio_bound, s, q, eps0

print("Special cases")
sup, _ = laplace_log_ratio_sup()
e0 = sup.subs(s, Delta / k)
e1_expr, _ = mixture_ratio_bound()
e1 = e1_expr.subs({q: k / N, eps0: e0})
check(sp.simplify(e0.subs(k, 1) - Delta / b) == 0, "k = 1: eps0 = Delta/b (naive)")
check(sp.simplify(e1.subs(k, 1) - sp.log(1 + (sp.exp(Delta / b) - 1) / N)) == 0,
      "k = 1: eps1 = log(1 + (e^(Delta/b) - 1)/N)")
check(sp.simplify(e1.subs(k, N) - Delta / (N * b)) == 0, "k = N: eps1 = eps0 = Delta/(N b)")
check(sp.simplify(e0 - e0.subs(k, 1) / k) == 0, "eps0(k) = eps0(1)/k: k times stronger")
print("QED")
