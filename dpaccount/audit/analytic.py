"""Closed-form lower bounds on epsilon: hypothesis tests on the worst-case one-dimensional pair,
computed exactly (binomial tails bounded in the safe direction), no simulation.

Every sound upper bound is at least the true epsilon, so a lower bound above a target shows that
no accountant can meet it: :mod:`dpaccount.calibration` uses :func:`release_test_lower_bound` to
rule candidates out in about a millisecond. The audits (:mod:`dpaccount.audit.run`) measure
lower bounds by simulation; these are the same kind of statement, derived instead of sampled.
"""

from __future__ import annotations

import math

from ..events import InstaHide, Relation
from ..validate import check_delta

__all__ = ["release_test_lower_bound"]


def _log_sf(x):
    """log P(Z > x), Z ~ Laplace(0, 1)."""
    import numpy as np

    return np.where(x >= 0, math.log(0.5) - np.maximum(x, 0.0),
                    np.log1p(-0.5 * np.exp(np.minimum(x, 0.0))))


def _log_cdf(x):
    """log P(Z <= x), Z ~ Laplace(0, 1)."""
    import numpy as np

    return np.where(x < 0, math.log(0.5) + np.minimum(x, 0.0),
                    np.log1p(-0.5 * np.exp(-np.maximum(x, 0.0))))


def _accurate(lp, l1p):
    """``(log p, log(1 - p))`` with the larger of ``p`` and ``1 - p`` recomputed from the smaller
    (``log1p``), so that each has a small error relative to its own magnitude."""
    import numpy as np

    half = math.log(0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        l1p_ = np.where(lp <= half, np.log1p(-np.exp(np.minimum(lp, half))), l1p)
        lp_ = np.where(l1p < half, np.log1p(-np.exp(np.minimum(l1p, half))), lp)
    return lp_, l1p_


def _eta(x):
    """A bound on the rounding error of a computed log probability ``x`` (``_accurate``)."""
    import numpy as np

    return 1e-13 * np.abs(x) + 1e-300


def _t_kl(m, t, log_p, log_1mp):
    """``T * KL(m/T || p)`` (binary KL) and a bound on its rounding error; ``m <= T``."""
    import numpy as np

    a = m / t
    rest = t - m
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a = np.log(np.maximum(a, 1e-300))
        log_1ma = np.log1p(-np.minimum(a, 1.0 - 1e-16))
        first = np.where(m > 0, m * (log_a - log_p), 0.0)
        second = np.where(rest > 0, rest * (log_1ma - log_1mp), 0.0)
        err = (np.where(m > 0, m * (_eta(log_p) + _eta(log_a)), 0.0)
               + np.where(rest > 0, rest * (_eta(log_1mp) + _eta(log_1ma)), 0.0)
               + 1e-13 * (np.abs(first) + np.abs(second)) + 1e-300)
    return first + second, err


def _count_test(lp1, l1p1, lp0, l1p0, T: float, delta: float) -> float:
    """The best ``log((P1 - delta) / P0)`` over ``m`` for events "at least m of T independent
    releases are hits", hits with probability ``p1`` (D) or ``p0`` (D'), one row per test (the
    log probabilities and log complements are column vectors). ``P1`` is bounded from below and
    ``P0`` from above, with an allowance for rounding; -inf where no row says anything."""
    import numpy as np
    from scipy.special import gammaln

    lp1, l1p1 = _accurate(lp1, l1p1)
    lp0, l1p0 = _accurate(lp0, l1p0)
    mean0, mean1 = T * np.exp(lp0), T * np.exp(lp1)
    fr = np.linspace(0.0, 1.0, 25)[None, :]
    small = np.broadcast_to(np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128])[None, :],
                            (lp1.shape[0], 13))
    m = np.clip(np.concatenate([np.ceil(mean0 + fr * (mean1 - mean0)), small], axis=1), 1.0, T)
    # P0 = P(Bin(T, p0) >= m) <= exp(-T KL(m/T || p0)) when m/T > p0 (Chernoff)
    kl0, err0 = _t_kl(m, T, lp0, l1p0)
    log_p0_up = np.where(m / T > np.exp(lp0), -np.maximum(kl0 - err0, 0.0), 0.0)
    # P1 = P(Bin(T, p1) >= m) >= 1 - P(Bin <= m - 1) >= 1 - exp(-T KL((m-1)/T || p1))
    kl1, err1 = _t_kl(m - 1.0, T, lp1, l1p1)
    safe = np.maximum(kl1 - err1, 0.0)
    with np.errstate(divide="ignore"):
        chern = np.where(((m - 1.0) / T < np.exp(lp1)) & (safe > 0),
                         np.log(-np.expm1(-safe)), -np.inf)
    # ... and >= P(Bin = m), one term of the tail
    parts = (gammaln(T + 1.0), gammaln(m + 1.0), gammaln(T - m + 1.0), m * lp1,
             (T - m) * l1p1)
    with np.errstate(invalid="ignore"):
        term = parts[0] - parts[1] - parts[2] + parts[3] + parts[4]
        term = term - (1e-13 * sum(np.abs(x) for x in parts) + m * _eta(lp1)
                       + (T - m) * _eta(l1p1) + 1e-12)
    term = np.where(np.isnan(term), -np.inf, term)
    log_p1_lo = np.minimum(np.maximum(chern, term), 0.0)
    log_delta = math.log(delta)
    ok = log_p1_lo > log_delta + 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(ok, log_p1_lo + np.log1p(-np.exp(log_delta - np.where(
            ok, log_p1_lo, 0.0))) - log_p0_up, -np.inf)
    return float(np.max(gain)) if gain.size else -math.inf


def release_test_lower_bound(mech: InstaHide, delta: float, *, enough: float = math.inf
                             ) -> float:
    """A sound lower bound on the epsilon (at ``delta``) of the worst case ``mech`` must cover,
    in closed form; 0 where it has none. Every sound upper bound is at least it.

    The pair: one-dimensional records in ``[0, Delta]`` (a domain of the run's L1 diameter, which
    every accountant's bound covers), every record at 0 but the audited one, at ``Delta`` in D and
    at 0 in D' (with released soft labels, its label kept, in a class of each size the run
    has). Each release independently draws a k-subset (the ``subsets`` sampler); it shows what
    the record's inclusion law is (:meth:`~dpaccount.events.InstaHide.inclusion_mixtures`: the
    class count ``j`` with soft labels, nothing without) and its value is shifted by ``eps0``
    noise scales when the record is in. A release is a *hit* when what it shows is among the
    likeliest inclusions (a set ``C`` of components) and its value exceeds ``t``; at least ``m``
    hits among the T releases is an event whose probabilities ``P1`` (D) and ``P0`` (D') give
    ``epsilon >= log((P1 - delta) / P0)``. Binomial tails are bounded in the safe direction
    (Chernoff for ``P0``; Chernoff or one term for ``P1``) with an allowance for rounding, and
    the best ``(C, t, m)`` on a grid is returned, less 1e-6 of it. A second test sums the
    releases' log-likelihood ratios (values binned, shown inclusions grouped) and bounds its tail
    by exponential tilting (:func:`_tilted_test`); it is skipped when the first already exceeds
    ``enough``. Other samplers and relations: 0. Random (Dirichlet) weights: 0, since the test
    moves the record by ``eps0`` whenever it is in, and with random weights ``eps0`` is the
    largest weight's (1), not what the record's weight does in a release: a lower bound taken
    from it would not be attained."""
    import numpy as np

    delta = check_delta(delta)
    if (mech.relation is not Relation.SUBSTITUTION or not mech.sampler_type.amplifies
            or mech.sampler_type.independent_inclusion or mech.sampler_type.uses_norm
            or mech.random_weights):
        return 0.0
    e0, T = float(mech.eps0), float(mech.releases)
    if not (math.isfinite(e0) and e0 > 0):
        return 0.0
    ts = np.unique(np.concatenate([e0 * np.linspace(0.0, 1.0, 33),
                                   e0 + np.array([0.5, 1, 2, 4, 8, 16, 32]),
                                   np.array([0.25, 0.5, 1, 2, 4, 8])]))[None, :]
    s_hi, s_lo = _log_sf(ts - e0), _log_sf(ts)  # log P(value > t): record in / out
    f_hi, f_lo = _log_cdf(ts - e0), _log_cdf(ts)
    mixtures = mech.inclusion_mixtures()
    rows = []  # (log g, log h, log (g - h), log (1 - g)) per set C of components
    for _, law in mixtures:
        comps = sorted(((float(w), float(q)) for w, q in law if w > 0), key=lambda c: -c[1])
        comps_in = [c for c in comps if c[1] > 0]
        if not comps_in:
            continue
        n_in = len(comps_in)
        ws = np.array([w for w, _ in comps])
        qs = np.array([q for _, q in comps])
        cum_w, cum_h, cum_gh = np.cumsum(ws), np.cumsum(ws * qs), np.cumsum(ws * (1.0 - qs))
        tail_w = np.cumsum(ws[::-1])[::-1]  # weight from index i on
        for cut in sorted({max(1, int(round(x))) for x in np.geomspace(1, n_in, min(n_in, 12))}):
            g, h, g_h = float(cum_w[cut - 1]), float(cum_h[cut - 1]), float(cum_gh[cut - 1])
            out = float(tail_w[cut]) if cut < len(comps) else 0.0
            if g <= 0 or h <= 0:
                continue
            rows.append((math.log(g), math.log(h), math.log(g_h) if g_h > 0 else -math.inf,
                         math.log(out) if out > 0 else -math.inf))
    best = -math.inf
    if rows:
        best = _count_rows(rows, s_hi, s_lo, f_hi, f_lo, T, delta)
    if best * (1.0 - 1e-6) <= enough:
        for _, law in mixtures:
            comps = [(float(wt), float(q)) for wt, q in law if wt > 0]
            binned = _binned_laws(sorted(comps, key=lambda c: c[1]), e0)
            if binned is not None:
                best = max(best, _tilted_test(binned[0], binned[1], T, delta))
    if not math.isfinite(best) or best <= 0:
        return 0.0
    return best * (1.0 - 1e-6)


def _count_rows(rows, s_hi, s_lo, f_hi, f_lo, T: float, delta: float) -> float:
    """:func:`_count_test` for the hit laws of each set of shown components (rows of
    ``(log g, log h, log (g - h), log (1 - g))``) and each threshold."""
    import numpy as np

    lg, lh, lgh, lout = (np.array(x)[:, None] for x in zip(*rows))
    # D: a hit is "C shown, record in, value > t" or "C shown, record out, value > t"
    lp1 = np.logaddexp(lh + s_hi, lgh + s_lo)
    l1p1 = np.logaddexp(lout, np.logaddexp(lh + f_hi, lgh + f_lo))
    # D': the record's value is 0, so only "C shown, value > t"
    lp0 = lg + s_lo
    l1p0 = np.logaddexp(lout, lg + f_lo)
    shape = (lp1.shape[0] * lp1.shape[1], 1)
    return _count_test(lp1.reshape(shape), l1p1.reshape(shape),
                       np.broadcast_to(lp0, lp1.shape).reshape(shape),
                       np.broadcast_to(l1p0, lp1.shape).reshape(shape), T, delta)


def _log_slice(lo, hi):
    """log P(lo < Z <= hi), Z ~ Laplace(0, 1), for ``lo < hi`` (arrays; infinite ends allowed)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        width = hi - lo
        right = math.log(0.5) - lo + np.log(-np.expm1(-np.minimum(width, 1e300)))  # lo >= 0
        left = math.log(0.5) + hi + np.log(-np.expm1(-np.minimum(width, 1e300)))  # hi <= 0
        mid = np.log1p(-0.5 * np.exp(-np.abs(hi)) - 0.5 * np.exp(-np.abs(lo)))  # lo < 0 < hi
    return np.where(lo >= 0, right, np.where(hi <= 0, left, mid))


def _tilted_test(lp1, lp0, T: float, delta: float) -> float:
    """The test "sum over releases of the binned log-likelihood ratio >= s": one release falls
    in bin b with probability ``e^lp1[b]`` (D) or ``e^lp0[b]`` (D'); weights ``w = lp1 - lp0``.
    ``P_D'(S >= s) <= e^-s P_D(S >= s)`` (w is the likelihood ratio), and ``P_D(S >= s)`` is
    bounded from below by tilting D by ``e^(theta w)`` (mean m, standard deviation sd under the
    tilt): with ``s = m - c sd``, Cantelli gives ``P_theta(S >= s) >= p = c^2 / (1 + c^2)``, and
    Jensen with Cauchy-Schwarz ``P_D(S >= s) >= p exp(T A(theta) - theta (m + sd / sqrt(p)))``.
    Returns the best ``s + log(1 - delta / P_D(S >= s))`` over (theta, c), with every rounding
    allowed for; -inf where nothing is shown."""
    import numpy as np
    from scipy.special import logsumexp

    w = lp1 - lp0
    dw = 1e-12 * float(np.max(np.abs(lp1) + np.abs(lp0) + 1.0))  # error of each weight
    wmax = float(np.max(np.abs(w)))
    lmax = float(np.max(np.abs(lp1)))
    if not T * (wmax + lmax) < 1e150:  # beyond what this arithmetic is checked for
        return -math.inf
    thetas = np.concatenate([[0.0], np.geomspace(1e-3, 64.0, 120)])[:, None]
    z = lp1[None, :] + thetas * w[None, :]
    a = logsumexp(z, axis=1, keepdims=True)
    pi = np.exp(z - a)
    mean1 = np.sum(pi * w[None, :], axis=1)
    var1 = np.sum(pi * (w[None, :] - mean1[:, None]) ** 2, axis=1)
    th, a = thetas, a  # columns: theta; rows of c below broadcast against them
    e_m = T * 1e-12 * (wmax + 1.0)
    m = (T * mean1)[:, None]
    sd = np.sqrt(T * var1 * (1 + 1e-9) + 1e-300)[:, None]
    c = np.array([0.5, 0.75, 1.0, 1.5, 2.0, 3.0])[None, :]
    p = c * c / (1.0 + c * c)
    s = m - c * sd - e_m
    err_a = T * 1e-12 * (lmax + th * wmax + 1.0)
    log_p = (np.log(p) + T * a - th * (m + e_m + sd / np.sqrt(p)) - err_a
             - 1e-12 * np.abs(th * m) - 1e-12)
    log_p = np.minimum(log_p, 0.0)
    log_delta = math.log(delta)
    ok = log_p > log_delta + 1e-9
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where(ok, s - T * dw + np.log1p(-np.exp(np.minimum(log_delta - log_p, 0.0))),
                       -np.inf)
    val = np.where(np.isnan(val), -np.inf, val)
    return float(np.max(val))


def _binned_laws(comps, e0: float):
    """Per-release bin probabilities ``(lp1, lp0)`` of the observation (group of shown
    inclusion components, slice of the value): coarsening what a release shows is
    post-processing."""
    import numpy as np

    edges = np.concatenate([[-np.inf], e0 * np.linspace(0.0, 1.0, 25), [np.inf]])
    la0 = _log_slice(edges[:-1], edges[1:])  # record out: Laplace(0)
    la1 = _log_slice(edges[:-1] - e0, edges[1:] - e0)  # record in: Laplace(e0)
    zero = math.fsum(wt for wt, q in comps if q <= 0)
    inside = [(wt, q) for wt, q in comps if q > 0]
    n_groups = min(len(inside), 48)
    groups = np.array_split(np.arange(len(inside)), n_groups) if n_groups else []
    lp1, lp0 = [], []
    for g in groups:
        gw = math.fsum(inside[i][0] for i in g)
        gh = math.fsum(inside[i][0] * inside[i][1] for i in g)
        gwh = math.fsum(inside[i][0] * (1.0 - inside[i][1]) for i in g)
        if gw <= 0 or gh <= 0:
            continue
        with np.errstate(divide="ignore"):
            lp1.append(np.logaddexp(math.log(gh) + la1, (math.log(gwh) if gwh > 0 else -np.inf)
                                    + la0))
        lp0.append(math.log(gw) + la0)
    if zero > 0:  # releases that show the record is not in them: no information
        lp1.append(np.array([math.log(zero)]))
        lp0.append(np.array([math.log(zero)]))
    if not lp1:
        return None
    return np.concatenate(lp1), np.concatenate(lp0)
