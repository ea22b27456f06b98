"""Symbolic derivation of DP-InstaHide's closed forms with sympy, printable as text or LaTeX.

Each step is derived here, not typed in: the supremum of the Laplace log density ratio is computed
region by region, the mixture ratio bound is reduced to a sign check, and the special cases are
substitutions. Each function names the script in ``proofs/`` that checks it, and the numeric
values with the user's numbers substituted are evaluated by sympy/mpmath at 30 digits, an
independent check of :mod:`dpaccount.numerics.closed_form`'s log-space arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp
from sympy.calculus.util import maximum

from .errors import InputError
from .events import InstaHide
from .numerics import closed_form
from .validate import check_delta

__all__ = [
    "laplace_log_ratio_sup",
    "mixture_ratio_bound",
    "Step",
    "Derivation",
    "derive",
]

# Symbols shared by every derivation.
z = sp.Symbol("z", real=True)
b = sp.Symbol("b", positive=True)
s = sp.Symbol("s", positive=True)
Delta = sp.Symbol("Delta", positive=True)
k = sp.Symbol("k", positive=True, integer=True)
N = sp.Symbol("N", positive=True, integer=True)
T = sp.Symbol("T", positive=True, integer=True)
q = sp.Symbol("q", positive=True)
eps0 = sp.Symbol("epsilon_0", positive=True)
eps1 = sp.Symbol("epsilon_1", positive=True)
delta = sp.Symbol("delta", positive=True)
eps_p = sp.Symbol("epsilon'", positive=True)
i = sp.Symbol("i", integer=True, nonnegative=True)


def laplace_density(x, mu, scale):
    """Density of Laplace(mu, scale) at x."""
    return sp.exp(-sp.Abs(x - mu) / scale) / (2 * scale)


def laplace_log_ratio_sup():
    """``sup_z log(f_{0,b}(z) / f_{s,b}(z)) = s / b`` for a shift ``s > 0``.

    Derived by splitting the real line where the absolute values change form (z <= 0,
    0 <= z <= s, z >= s), maximising the linear log-ratio on each piece, and taking the largest.
    By symmetry the shift -s gives the same value, so the supremum is ``|s| / b``; in d dimensions
    the log-ratio is a sum over coordinates, giving ``||s||_1 / b``.
    Proof: ``proofs/laplace_log_ratio.py``.

    Returns ``(sup, pieces)`` where ``pieces`` lists ``(interval, log-ratio on it, max on it)``.
    """
    log_ratio = sp.log(laplace_density(z, 0, b)) - sp.log(laplace_density(z, s, b))
    log_ratio = sp.expand_log(log_ratio, force=True)
    pieces = []
    for interval, subs in (
        (sp.Interval(-sp.oo, 0), {sp.Abs(z): -z, sp.Abs(z - s): s - z}),
        (sp.Interval(0, s), {sp.Abs(z): z, sp.Abs(z - s): s - z}),
        (sp.Interval(s, sp.oo), {sp.Abs(z): z, sp.Abs(z - s): z - s}),
    ):
        expr = sp.simplify(log_ratio.subs(subs))
        pieces.append((interval, expr, sp.simplify(maximum(expr, z, interval))))
    sup = sp.simplify(sp.Max(*[p[2] for p in pieces]))
    return sup, pieces


def mixture_ratio_bound():
    """The pointwise bound behind amplification by subsampling, reduced to a sign check.

    With ``A`` the density of a release without the changed record and ``B``, ``B'`` the
    densities with ``x``, resp. ``x'``, in it, the coupling gives ``B <= e^eps0 min(A, B')``.
    The ratio of the two neighbours' densities is ``R = ((1-q)A + qB) / ((1-q)A + qB')``. It is
    largest at ``B = e^eps0 min(A, B')``; in both cases (``A <= B'`` and ``B' <= A``) the gap
    ``(1 - q + q e^eps0) - R`` is returned as a factored expression in positive symbols, which is
    non-negative, and zero at ``A = B'``: ``eps1 = log(1 + q (e^eps0 - 1))``, attained.
    Proof: ``proofs/mixture_ratio_bound.py``.

    Returns ``(eps1_expr, gaps)`` with ``gaps`` a dict ``case -> factored gap`` where ``t >= 0``
    is the distance between ``A`` and ``B'`` and ``u > 0`` parametrises ``q = u/(1+u)``.
    """
    a, t, u, e = sp.symbols("A t u e", positive=True)  # e stands for e^eps0 >= 1
    qq = u / (1 + u)
    bound = 1 - qq + qq * e
    gaps = {}
    # case A <= B': B' = A + t, B = e*A
    r1 = ((1 - qq) * a + qq * e * a) / ((1 - qq) * a + qq * (a + t))
    gaps["A <= B'"] = sp.factor(sp.simplify(bound - r1))
    # case B' <= A: A = B' + t, B = e*B' (write B' = a)
    r2 = ((1 - qq) * (a + t) + qq * e * a) / ((1 - qq) * (a + t) + qq * a)
    gaps["B' <= A"] = sp.factor(sp.simplify(bound - r2))
    eps1_expr = sp.log(1 + q * (sp.exp(eps0) - 1))
    return eps1_expr, gaps


@dataclass(frozen=True)
class Step:
    """One step of a derivation: a formula, and its value with the user's numbers."""

    title: str
    lhs: sp.Expr
    general: sp.Expr
    substituted: sp.Expr | None
    value: float | None
    source: str
    proof: str = ""
    note: str = ""
    #: when set, the value is of this quantity (not of ``lhs``) and is printed as "label = value"
    value_label: str = ""

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "general": f"{self.lhs} = {sp.sstr(self.general)}",
            "general_latex": f"{sp.latex(self.lhs)} = {sp.latex(self.general)}",
            "substituted": None if self.substituted is None else sp.sstr(self.substituted),
            "substituted_latex": None if self.substituted is None else sp.latex(self.substituted),
            "value": self.value,
            "value_label": self.value_label or sp.sstr(self.lhs),
            "source": self.source,
            "proof": self.proof,
            "note": self.note,
        }


@dataclass(frozen=True)
class Derivation:
    mechanism: InstaHide
    delta: float
    steps: list = field(default_factory=list)

    def text(self) -> str:
        m = self.mechanism
        out = [
            "Derivation of the DP-InstaHide closed forms "
            f"(relation {m.relation.value}, sampler {m.sampler.value}, delta {self.delta:g})",
            f"  numbers: k={m.k}, b={m.noise:g}, N={m.n}, Delta={m.diameter:g}, T={m.releases}",
            "",
        ]
        for n_, st in enumerate(self.steps, 1):
            out.append(f"{n_}. {st.title}")
            out.append(f"   {st.lhs} = {sp.sstr(st.general)}")
            if st.substituted is not None:
                out.append(f"      = {sp.sstr(st.substituted)}")
            if st.value_label and st.value is not None:
                out.append(f"   {st.value_label} = {st.value:.12g}")
            elif st.value is not None and not (
                st.substituted is not None and st.substituted.is_Number
            ):
                out.append(f"      = {st.value:.12g}")
            if st.note:
                out.append(f"   note: {st.note}")
            out.append(f"   source: {st.source}" + (f"; checked by {st.proof}" if st.proof else ""))
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def latex(self) -> str:
        lines = [r"\begin{align*}"]
        for st in self.steps:
            rhs = sp.latex(st.general)
            if st.substituted is not None:
                rhs += r" \\ &= " + sp.latex(st.substituted)
            if st.value is not None:
                if st.value_label:
                    label = sp.latex(sp.Symbol(st.value_label))
                    rhs += r" \\ " + label + r" &\approx " + f"{st.value:.12g}"
                else:
                    rhs += r" \\ &\approx " + f"{st.value:.12g}"
            lines.append(f"{sp.latex(st.lhs)} &= {rhs} && \\text{{{st.title}}} \\\\")
        lines.append(r"\end{align*}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {
            "mechanism": self.mechanism.to_dict(),
            "delta": self.delta,
            "steps": [st.to_dict() for st in self.steps],
        }


def _num(expr, digits: int = 30) -> float:
    return float(sp.N(expr, digits))


def derive(mech: InstaHide, delta_value: float) -> Derivation:
    """The derivation of every closed form, general and with ``mech``'s numbers substituted.

    The numeric values of eps0, eps1 and basic/advanced composition are evaluated by sympy with
    30 significant digits (mpmath underneath), independently of the float arithmetic in
    :mod:`dpaccount.numerics.closed_form`; the KOV value, a sum of up to T/2 terms, is taken from
    :func:`dpaccount.numerics.closed_form.kov_epsilon` and says so.
    """
    delta_value = check_delta(delta_value)
    if mech.random_weights:
        raise InputError("the derivation is written for weights 1/k; with Dirichlet weights a "
                         "record's weight can reach 1 (use dpaccount epsilon, whose rows take "
                         "the largest weight, or the pld-tilted row)")
    # Delta is the shift of one record: the diameter, or under Poisson add/remove the largest
    # record norm (InstaHide.sensitivity)
    shift = mech.shift
    num = {
        b: sp.nsimplify(mech.noise),
        Delta: sp.nsimplify(shift),
        k: mech.k,
        N: mech.n,
    }
    sup, _ = laplace_log_ratio_sup()
    steps = [
        Step(
            "Laplace log-ratio supremum: L* = sup_z log(f_0(z)/f_s(z)), shift s, scale b",
            sp.Symbol("L^*"),
            sup,
            None,
            None,
            "Dwork et al. 2006 Prop. 1",
            "proofs/laplace_log_ratio.py",
            "in d dimensions the log-ratio is a sum over coordinates: ||s||_1/b",
        )
    ]
    naive = Delta / b
    steps.append(Step("naive: one record, no mixing (s = Delta)", sp.Symbol("epsilon_naive"),
                      naive, naive.subs(num), _num(naive.subs(num)),
                      "Dwork et al. 2006 Prop. 1", "proofs/laplace_log_ratio.py"))
    e0 = sup.subs(s, Delta / k)
    steps.append(Step("per release: mean of k records moves by s = Delta/k", eps0, e0,
                      e0.subs(num), _num(e0.subs(num)), "Borgnia et al. 2021 Sec. 4",
                      "proofs/laplace_log_ratio.py, proofs/special_cases.py"))
    if mech.sampler_type.amplifies:
        e1_expr, _ = mixture_ratio_bound()
        if mech.worst_inclusion == mech.sampling_rate:
            e1 = e1_expr.subs({q: k / N, eps0: e0})
            what = "amplified: record in the release with probability q = k/N"
            proof = "proofs/mixture_ratio_bound.py, proofs/special_cases.py"
        else:
            e1 = e1_expr.subs({q: sp.nsimplify(mech.worst_inclusion), eps0: e0})
            what = ("amplified: the un-noised soft label shows the class count, so q is the "
                    "largest inclusion probability it can show, min(k, n_c)/n_c")
            proof = ("proofs/mixture_ratio_bound.py, proofs/special_cases.py, "
                     "proofs/soft_label_mixture.py")
        e1_val = e1.subs(num)
        steps.append(Step(what, eps1, e1, e1_val, _num(e1_val), "Balle et al. 2018 Table 1",
                          proof, mech.label_note))
        step_eps, count = eps1, T
        step_val, count_val = e1_val, mech.releases
        unit_note = "T releases, each eps1-DP"
    else:
        steps.append(Step("permutation mixing: one epoch is a Laplace mechanism of sensitivity"
                          " Delta (k slots of weight 1/k)", sp.Symbol("epsilon_epoch"),
                          k * e0, (k * e0).subs(num), _num((k * e0).subs(num)),
                          "Dwork et al. 2006 Prop. 1", "proofs/laplace_log_ratio.py"))
        step_eps, count = sp.Symbol("epsilon_epoch"), sp.Symbol("E")
        step_val = (k * e0).subs(num)
        count_val = mech.epochs_charged
        unit_note = "E = ceil(T/N) epochs, each Delta/b-DP"
    basic = count * step_eps
    bsub = basic.subs({count: count_val, step_eps: step_val})
    steps.append(Step("basic composition", sp.Symbol("epsilon_basic"), basic, bsub,
                      _num(bsub), "Dwork & Roth 2014 Thm 3.16", "", unit_note))
    adv = sp.sqrt(2 * count * sp.log(1 / delta)) * step_eps + count * step_eps * (
        sp.exp(step_eps) - 1)
    asub = adv.subs({count: count_val, step_eps: step_val, delta: sp.Float(delta_value, 30)})
    aval = _num(asub)
    steps.append(Step("advanced composition, slack delta", sp.Symbol("epsilon_advanced"), adv,
                      asub, aval if math.isfinite(aval) and aval < 1.7e308 else None,
                      "Dwork, Rothblum, Vadhan 2010 Thm III.3", "",
                      "" if math.isfinite(aval) and aval < 1.7e308 else
                      "value exceeds the largest float: vacuous"))
    e = step_eps
    kov_delta_expr = sp.Sum(
        sp.binomial(count, i) * sp.Max(0, sp.exp(e * (count - i)) - sp.exp(eps_p) * sp.exp(e * i)),
        (i, 0, count),
    ) / (1 + sp.exp(e)) ** count
    kov_val = closed_form.kov_epsilon(float(sp.N(step_val, 30)), count_val, delta_value)
    steps.append(Step("optimal (KOV) composition: delta(eps') for T eps-DP releases; eps is the"
                      " smallest eps' with delta(eps') <= delta", sp.Symbol("delta(epsilon')"),
                      kov_delta_expr, None, kov_val,
                      "Kairouz, Oh, Viswanath 2015 Thm 3.3; Murtagh, Vadhan 2016 Eq. (1)",
                      "proofs/kov_profile.py",
                      "eps' solved numerically in log space by dpaccount.numerics.closed_form.kov_epsilon",
                      value_label="epsilon_kov"))
    return Derivation(mech, delta_value, steps)
