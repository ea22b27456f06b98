"""Random mixing weights (W ~ Dirichlet(alpha)): dpaccount.exact.DirichletProfile and
dirichlet_exact_delta against uniform weights, each other, and hand-derived closed forms.

Accuracy measured when this was written: the B-integral E[e^{-s|B - x|}] to under 1e-14 relative
(vs 30-digit mpmath); DirichletProfile's bracket *before* its widening by rel_tol = 3e-5 and
tol = 1e-9 already holds dirichlet_exact_delta at one release (raw ends within ~5e-6 relative of
it); dirichlet_exact_delta agrees with the 30-digit hand value below to ~1e-12.
"""

import math

import mpmath as mp
import numpy as np
import pytest

from dpaccount.errors import InputError
from dpaccount.exact import (ConcreteProfile, DirichletProfile, beta_laplace,
                             dirichlet_exact_delta)

# two-valued pairs {0, Delta}: (data, data_prime, k, b)
PAIR2 = (np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(4), 2, 0.5)
PAIR3 = (np.array([2.0, 0.0, 2.0, 0.0, 0.0]), np.array([0.0, 0.0, 2.0, 0.0, 0.0]), 3, 0.7)


def _mid(bounds):
    return (bounds[0] + bounds[1]) / 2


# --- the B-integral ---------------------------------------------------------------------------

def _ref_h(x, p, q, s):
    """E[exp(-s|B - x|)], B ~ Beta(p, q), 30 digits: pieces split at x and 1/2; below 1/2 in
    u = B^p, above in v = (1 - B)^q (so the integrands have no endpoint singularity)."""
    with mp.workdps(30):
        x, p, q = mp.mpf(x), mp.mpf(p), mp.mpf(q)
        norm = mp.beta(p, q)
        g = lambda t: mp.exp(-s * abs(t - x)) / norm  # noqa: E731
        cuts = sorted({mp.mpf(0), mp.mpf(1) / 2, x, mp.mpf(1)})
        total = mp.mpf(0)
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            if hi <= 0.5:
                total += mp.quad(lambda u: (1 - u ** (1 / p)) ** (q - 1) * g(u ** (1 / p)) / p,
                                 [lo ** p, hi ** p])
            else:
                total += mp.quad(lambda v: (1 - v ** (1 / q)) ** (p - 1) * g(1 - v ** (1 / q))
                                 / q, [(1 - hi) ** q, (1 - lo) ** q])
        return float(total)


@pytest.mark.parametrize("p,q", [(0.2, 0.4), (2.2, 0.6), (1.0, 1.0), (5.0, 10.0), (0.01, 3.0)])
def test_beta_integral_against_mpmath(p, q):
    # interior points (near both ends too) and the ends, where h(0) = 1F1(p; p+q; -s) and
    # h(1) = 1F1(q; p+q; -s). 1e-13: the rule's own error is under 1e-15 (singularities kept a
    # piece length away, see beta_laplace) plus rounding of ~1e4 summed pieces (< 1e-14)
    s = 4.0
    xs = np.array([0.0, 1e-12, 0.013, 0.3, 0.5, 0.77, 1 - 1e-9, 1.0])
    h = beta_laplace(xs, p, q, s)
    for xi, hi in zip(xs[1:-1], h[1:-1]):
        assert hi == pytest.approx(_ref_h(xi, p, q, s), rel=1e-13, abs=0)
    with mp.workdps(30):
        assert h[0] == pytest.approx(float(mp.hyp1f1(p, p + q, -s)), rel=1e-13, abs=0)
        assert h[-1] == pytest.approx(float(mp.hyp1f1(q, p + q, -s)), rel=1e-13, abs=0)


def test_beta_integral_narrow_peak():
    # alpha = 1e4 in k = 3: Beta(1e4, 2e4), standard deviation 2.7e-3; the ends' closed form.
    # 1e-13 as above (the log-weights are ~1e4 in size, but normalised by the rule's mass)
    p, q, s = 1e4, 2e4, 6.0
    h = beta_laplace(np.array([0.0, 1.0]), p, q, s)
    with mp.workdps(30):
        assert h[0] == pytest.approx(float(mp.hyp1f1(p, p + q, -s)), rel=1e-13, abs=0)
        assert h[1] == pytest.approx(float(mp.hyp1f1(q, p + q, -s)), rel=1e-13, abs=0)


# --- the profile against uniform weights --------------------------------------------------------

@pytest.mark.parametrize("pair,T", [(PAIR2, 2), (PAIR3, 1)])
def test_large_alpha_approaches_uniform_weights(pair, T):
    d, dp, k, b = pair
    uniform = ConcreteProfile(d, dp, k, b, T)
    gaps = {}
    for alpha in (1e2, 1e3, 1e4):
        prof = DirichletProfile(d, dp, k, b, alpha, T)
        gaps[alpha] = [_mid(uniform.delta_bounds(e)) - _mid(prof.delta_bounds(e))
                       for e in (0.0, 0.3)]
    delta_shift = float(np.max(d) - np.min(d))
    for e_i, eps in enumerate((0.0, 0.3)):
        # Given the subset, E[B] = m/k (the uniform mean) and Var(Delta B) <= Delta^2 /
        # (4 (k alpha + 1)): the release is the uniform one smoothed by that variance, moving
        # each density by about Var/(2 b^2) relative, so delta by about T (1 + e^eps) Var / b^2
        # at most (2e-4 for k = 2, T = 2, alpha = 1e4; measured gap 6e-6)
        var = delta_shift ** 2 / (4 * (k * 1e4 + 1))
        assert abs(gaps[1e4][e_i]) <= T * (1 + math.exp(eps)) * var / b ** 2
        # the gap is of order Var, i.e. 1/alpha: from alpha = 100 to 1000 it shrinks by the Var
        # ratio, 9.96 (k = 2) or 9.97 (k = 3); 9..11 leaves room for the next order (Var^2,
        # ~1e-2 of the gap at alpha = 100) and the brackets' mid-point noise (<= 1e-6 of delta
        # against panels 4x finer; the gap at alpha = 1000 is 7e-5..4e-4 of delta); measured
        # 9.94..9.99
        ratio = gaps[1e2][e_i] / gaps[1e3][e_i]
        assert 9.0 < ratio < 11.0, (eps, gaps)
        # ... and it keeps shrinking so to alpha = 1e4 (predicted 0.1 of the gap at 1000; 0.2
        # allows the mid-point noise, ~2e-7 absolute here against a predicted 2e-6..6e-6)
        assert abs(gaps[1e4][e_i]) <= 0.2 * abs(gaps[1e3][e_i]), (eps, gaps)


def test_one_record_per_release_is_the_plain_release():
    # k = 1: the weight is 1 whatever alpha; same panels, nodes and rounding as ConcreteProfile,
    # so the brackets agree to rounding (1e-12 relative: the densities are computed by different
    # arithmetic, e^{-s x} vs e^{-|z - m|/b})
    d, dp, _, b = PAIR2
    for alpha in (0.2, 5.0):
        prof = DirichletProfile(d, dp, 1, b, alpha, 3)
        plain = ConcreteProfile(d, dp, 1, b, 3)
        for eps in (0.0, 0.4, 1.0):
            lo, up = prof.delta_bounds(eps)
            lo_c, up_c = plain.delta_bounds(eps)
            assert lo == pytest.approx(lo_c, rel=1e-12, abs=1e-15)
            assert up == pytest.approx(up_c, rel=1e-12, abs=1e-15)


# --- one release: the direct quadrature inside the bracket --------------------------------------

@pytest.mark.parametrize("pair,alpha", [(PAIR2, 0.2), (PAIR3, 1.0), (PAIR2, 5.0)])
def test_direct_quadrature_inside_bracket(pair, alpha):
    # no tolerance beyond the bracket's own (its widening, rel 3e-5 + 1e-9, is for the panel
    # quadrature; dirichlet_exact_delta's own error, ~1e-12, is far below it). The bracket must
    # also be tight: width under 1e-4 relative + 3e-9 (2 rel_tol + 2 tol + rounding)
    d, dp, k, b = pair
    prof = DirichletProfile(d, dp, k, b, alpha, 1)
    for eps in (0.0, 0.25, 0.6):
        exact = dirichlet_exact_delta(d, dp, k, b, alpha, eps)
        lo, up = prof.delta_bounds(eps)
        assert lo <= exact <= up, (eps, lo, exact, up)
        assert up - lo <= 1e-4 * exact + 3e-9


# --- a closed form by hand ----------------------------------------------------------------------

def _hand_delta(shift, b, eps):
    """N = k = 2, alpha = 1 (B ~ U(0,1)): D = (shift, 0) gives p(y) = E_B Lap(y - shift B),
    D' = (0, 0) gives q(y) = Lap(y). p in closed form, integrated with mpmath at 30 digits."""
    with mp.workdps(30):
        D, b = mp.mpf(shift), mp.mpf(b)
        tail = 1 - mp.exp(-D / b)

        def p(y):
            if y <= 0:
                return mp.exp(y / b) * tail / (2 * D)
            if y >= D:
                return mp.exp(-(y - D) / b) * tail / (2 * D)
            return (2 - mp.exp(-y / b) - mp.exp(-(D - y) / b)) / (2 * D)

        def q(y):
            return mp.exp(-abs(y) / b) / (2 * b)

        out = []
        for f, g in ((p, q), (q, p)):
            h = lambda y: f(y) - mp.exp(eps) * g(y)  # noqa: E731
            # (f - e^eps g) is constant in sign beyond [0, D] (constant ratio): roots inside
            grid = [D * i / 400 for i in range(401)]
            cuts = [grid[0]]
            for lo, hi in zip(grid[:-1], grid[1:]):
                if h(lo) * h(hi) < 0:
                    cuts.append(mp.findroot(h, (lo, hi), solver="anderson"))
            cuts.append(D)
            pts = [-mp.inf] + cuts + [mp.inf]
            out.append(mp.quad(lambda y: max(h(y), 0), pts))
        return float(max(out))


@pytest.mark.parametrize("eps", [0.0, 0.25, 0.5])
def test_uniform_weight_pair_against_hand_closed_form(eps):
    shift, b = 1.0, 0.5
    truth = _hand_delta(shift, b, eps)
    assert truth > 1e-3  # a non-trivial point of the profile
    # the direct quadrature: 1e-10 relative (its own accuracy ~1e-12, see its docstring)
    exact = dirichlet_exact_delta([shift, 0.0], [0.0, 0.0], 2, b, 1.0, eps)
    assert exact == pytest.approx(truth, rel=1e-10, abs=1e-14)
    # the bracket holds the truth, and is tight (width: 2 rel_tol + 2 tol + rounding)
    lo, up = DirichletProfile([shift, 0.0], [0.0, 0.0], 2, b, 1.0, 1).delta_bounds(eps)
    assert lo <= truth <= up
    assert up - lo <= 1e-4 * truth + 3e-9


# --- shape of the profile -----------------------------------------------------------------------

def test_monotone_in_eps_and_ordered():
    d, dp, k, b = PAIR3
    prof = DirichletProfile(d, dp, k, b, 0.5, 4)
    eps = np.linspace(0.0, 3.0, 61)
    bounds = np.array([prof.delta_bounds(e) for e in eps])
    assert np.all(bounds[:, 0] <= bounds[:, 1])
    assert bounds[0, 0] > 0.1 and bounds[-1, 1] < bounds[0, 0]  # a non-trivial range
    # non-increasing: each term of the sum is; 1e-16 absolute allows the summation order to
    # change as terms drop out (rounding of sums of ~1e6 terms below 1)
    assert np.all(np.diff(bounds[:, 0]) <= 1e-16)
    assert np.all(np.diff(bounds[:, 1]) <= 1e-16)


def test_identical_datasets_have_no_loss():
    # one value in both datasets: both releases are Lap(a, b); delta(eps >= 0) = 0 (upper: the
    # bracket's tol, 1e-9)
    prof = DirichletProfile(np.full(3, 0.4), np.full(3, 0.4), 2, 1.0, 0.7, 5)
    assert prof.delta_bounds(0.0) == (0.0, pytest.approx(1e-9, rel=1e-6))
    assert dirichlet_exact_delta(np.full(3, 0.4), np.full(3, 0.4), 2, 1.0, 0.7, 0.0) == 0.0


# --- refusals ---------------------------------------------------------------------------------

D0, D1 = np.array([1.0, 0.0, 0.0]), np.zeros(3)


@pytest.mark.parametrize("call", [
    lambda: DirichletProfile([0.0, 1.0, 2.0], [0.0, 1.0, 1.0], 2, 1.0, 1.0, 1),  # 3 values
    lambda: DirichletProfile([0.0, 1.0], [0.0, 2.0], 1, 1.0, 1.0, 1),  # 3 values together
    lambda: DirichletProfile(D0, D1, 2, 1.0, 0.0, 1),
    lambda: DirichletProfile(D0, D1, 2, 1.0, -1.0, 1),
    lambda: DirichletProfile(D0, D1, 2, 1.0, float("nan"), 1),
    lambda: DirichletProfile(D0, D1, 2, 1.0, float("inf"), 1),
    lambda: DirichletProfile(D0, D1, 2, 1.0, True, 1),
    lambda: DirichletProfile(D0, D1, 0, 1.0, 1.0, 1),
    lambda: DirichletProfile(D0, D1, 4, 1.0, 1.0, 1),
    lambda: DirichletProfile(np.zeros(13), np.ones(13), 2, 1.0, 1.0, 1),
    lambda: DirichletProfile(D0, D1, 2, 1.0, 1.0, 65),
    lambda: DirichletProfile(D0, D1, 2, 1.0, 1.0, 0),
    lambda: DirichletProfile(D0, D1, 2, 0.0, 1.0, 1),
    lambda: DirichletProfile(D0, np.zeros(4), 2, 1.0, 1.0, 1),
    lambda: DirichletProfile(np.zeros((3, 2)), np.zeros((3, 2)), 2, 1.0, 1.0, 1),
    lambda: dirichlet_exact_delta([0.0, 1.0, 2.0], [0.0, 1.0, 1.0], 2, 1.0, 1.0, 0.1),
    lambda: dirichlet_exact_delta(D0, D1, 2, 1.0, 0.0, 0.1),
    lambda: dirichlet_exact_delta(D0, D1, 5, 1.0, 1.0, 0.1),
])
def test_bad_inputs_refused_in_one_line(call):
    with pytest.raises(InputError) as err:
        call()
    assert "\n" not in str(err.value) and str(err.value)
