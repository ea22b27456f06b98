"""Proof step: the supremum of the log-ratio of two Laplace densities is |shift| / b.

Justifies: dpaccount.numerics.closed_form.naive_epsilon, dpaccount.numerics.closed_form.per_release_epsilon,
dpaccount.symbolic.laplace_log_ratio_sup

For f_mu(z) = exp(-|z - mu|/b) / (2b): log f_0(z) - log f_s(z) = (|z - s| - |z|)/b. We check,
with sympy, (1) the region-by-region derivation in dpaccount.symbolic gives s/b for s > 0, (2) by
the triangle inequality |z - s| - |z| <= |s| for every real z and s (checked on each sign region
of z and s), with equality at z = 0 for both signs of s, and (3) in d dimensions the log-ratio of
product densities is the sum of the coordinates' log-ratios, so its supremum is ||s||_1 / b.
"""

from _common import check

import sympy as sp

from dpaccount.symbolic import b, laplace_log_ratio_sup, s

print("Laplace log-ratio supremum")
sup, pieces = laplace_log_ratio_sup()
check(sp.simplify(sup - s / b) == 0, f"derived sup over z of log f_0/f_s = {sup} (shift s > 0)")
check(len(pieces) == 3 and all(sp.simplify(p[2] - s / b) <= 0 for p in pieces),
      "the maximum on each of the three pieces is at most s/b")

# (2) every sign region of (z, s): |z - s| - |z| - |s| <= 0
zz = sp.Symbol("z", real=True)
ss = sp.Symbol("s_any", real=True)
u, v = sp.symbols("u v", nonnegative=True)
regions = {
    "z>=0, s>=0, z>=s": {zz: ss + u, ss: v},
    "z>=0, s>=0, z<s": {zz: v, ss: v + u},
    "z<0, s>=0": {zz: -u, ss: v},
    "z>=0, s<0": {zz: u, ss: -v},
    "z<0, s<0, z>=s": {zz: -v, ss: -v - u},
    "z<0, s<0, z<s": {zz: -v - u, ss: -v},
}
expr = sp.Abs(zz - ss) - sp.Abs(zz) - sp.Abs(ss)
for name, sub in regions.items():
    # substitute s first where z depends on it
    e = expr.subs(zz, sub[zz]).subs(ss, sub[ss]) if ss in sp.sympify(sub[zz]).free_symbols \
        else expr.subs(sub)
    e = sp.simplify(e)
    check(e.is_nonpositive is True, f"|z - s| - |z| - |s| = {e} <= 0 on {name}")
check(sp.simplify(expr.subs(zz, 0)) == 0, "equality at z = 0: the supremum |s|/b is attained")

# (3) product densities: log-ratio is the sum of coordinates' log-ratios
d = 3
zs = sp.symbols("z1:4", real=True)
shifts = sp.symbols("s1:4", positive=True)
f0 = sp.Mul(*[sp.exp(-sp.Abs(zi) / b) / (2 * b) for zi in zs])
fs = sp.Mul(*[sp.exp(-sp.Abs(zi - si) / b) / (2 * b) for zi, si in zip(zs, shifts)])
lr = sp.expand_log(sp.log(f0) - sp.log(fs), force=True)
per_coord = sum((sp.Abs(zi - si) - sp.Abs(zi)) / b for zi, si in zip(zs, shifts))
check(sp.simplify(lr - per_coord) == 0, f"in d = {d} dimensions the log-ratio is a sum over coordinates")
check(sp.simplify(lr.subs({zi: 0 for zi in zs}) - sum(shifts) / b) == 0,
      "at z = 0 it equals ||s||_1 / b, so the supremum is the L1 norm over b")
print("QED")
