"""Epsilon lower bounds from a distinguishing test, with Clopper-Pearson confidence.

A test that says "D" on an event ``E`` has false-positive rate ``alpha = Pr[M(D') in E]`` and
false-negative rate ``beta = Pr[M(D) not in E]``. Under (eps, delta)-DP, for a symmetric
neighbouring relation, both ``1 - beta <= e^eps alpha + delta`` and ``1 - alpha <= e^eps beta +
delta`` hold, so

    eps >= max(log((1 - delta - beta) / alpha), log((1 - delta - alpha) / beta))

(Kairouz, Oh, Viswanath 2015, Thm 2.1; Jagielski, Ullman, Oprea 2020, "Auditing differentially
private machine learning", Sec. 3; docs/audit.md). The right-hand side decreases in both
rates, so replacing ``alpha`` and ``beta`` by one-sided Clopper-Pearson *upper* bounds, each at
level ``(1 - confidence) / 2`` (a union bound over the two), gives a lower bound on eps that
holds with probability at least ``confidence`` over the trials.

Threshold selection must not see the trials that certify it: :func:`select_and_bound` chooses on
a separate split, or corrects for every threshold tried (Bonferroni). The largest value any test
with ``n`` trials per side can certify (perfect separation, zero errors) is :func:`ceiling`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaincinv

from ..validate import check_count
from ..errors import InputError

__all__ = [
    "clopper_pearson_upper",
    "clopper_pearson_lower",
    "epsilon_from_rates",
    "epsilon_lower_bound",
    "ceiling",
    "check_confidence",
    "check_audit_delta",
    "ThresholdBound",
    "ProfileCheck",
    "forced_delta",
    "check_profile",
    "best_projected_epsilon",
    "select_and_bound",
    "certifying_sizes",
]


def check_confidence(confidence) -> float:
    c = float(confidence)
    if not (0.0 < c < 1.0):
        raise InputError(f"confidence must be in the open interval (0, 1); got {confidence!r}")
    return c


def check_audit_delta(delta) -> float:
    """Audits accept delta = 0 (pure DP) as well as the accountants' open interval (0, 1)."""
    d = float(delta)
    if not (0.0 <= d < 1.0):  # also refuses nan
        raise InputError(f"delta must be in [0, 1); got {delta!r}")
    return d


def clopper_pearson_upper(successes, trials, level):
    """One-sided upper confidence bound on a binomial proportion: ``Pr[p <= upper] >= 1 - level``.

    Exact (Clopper & Pearson 1934): the ``1 - level`` quantile of Beta(x + 1, n - x); 1 when
    ``x = n``. Vectorised over ``successes``.
    """
    x = np.asarray(successes, dtype=float)
    n = float(trials)
    out = np.ones_like(x)
    inner = x < n
    out[inner] = betaincinv(x[inner] + 1.0, n - x[inner], 1.0 - level)
    return out if out.ndim else float(out)


def clopper_pearson_lower(successes, trials, level):
    """One-sided lower confidence bound: the ``level`` quantile of Beta(x, n - x + 1); 0 at x=0."""
    x = np.asarray(successes, dtype=float)
    n = float(trials)
    out = np.zeros_like(x)
    inner = x > 0
    out[inner] = betaincinv(x[inner], n - x[inner] + 1.0, level)
    return out if out.ndim else float(out)


def epsilon_from_rates(fpr, fnr, delta):
    """The largest eps that the rates (fpr, fnr) rule out at ``delta`` (0 if none): the formula
    of the module docstring, vectorised; ``inf`` where a rate is 0 and the other leaves room."""
    a = np.asarray(fpr, dtype=float)
    b = np.asarray(fnr, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = np.log(np.maximum(1.0 - delta - b, 0.0)) - np.log(a)
        e2 = np.log(np.maximum(1.0 - delta - a, 0.0)) - np.log(b)
    e = np.fmax(np.fmax(e1, e2), 0.0)  # nan (0/0) loses to the other candidates
    return e if e.ndim else float(e)


def epsilon_lower_bound(false_pos, negatives, false_neg, positives, delta, confidence):
    """Lower bound on eps that holds with probability ``confidence``: Clopper-Pearson upper
    bounds on both error rates at level ``(1 - confidence) / 2`` each, then
    :func:`epsilon_from_rates`."""
    level = (1.0 - check_confidence(confidence)) / 2.0
    a = clopper_pearson_upper(false_pos, negatives, level)
    b = clopper_pearson_upper(false_neg, positives, level)
    return epsilon_from_rates(a, b, delta)


def ceiling(negatives: int, positives: int, delta: float, confidence: float) -> float:
    """The largest eps lower bound any test with these trial counts can certify: the bound of a
    perfect test (no errors at all). No audit with this many trials can show more than this,
    whatever the mechanism."""
    return float(epsilon_lower_bound(0, negatives, 0, positives, delta, confidence))


@dataclass(frozen=True)
class ThresholdBound:
    """A threshold test "say D when score >= threshold" and the bound it certified."""

    epsilon_lower_bound: float
    threshold: float
    false_pos: int  # negatives (trials on D') with score >= threshold, in the certifying set
    negatives: int
    false_neg: int  # positives (trials on D) with score < threshold, in the certifying set
    positives: int
    fpr_upper: float
    fnr_upper: float
    selection: str  # "split" or "bonferroni"
    candidates: int  # thresholds the correction paid for (1 for a split)
    confidence: float
    #: the same errors checked against the accountant's whole privacy profile (None: not asked)
    profile: "ProfileCheck | None" = None

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["profile"] = None if self.profile is None else self.profile.to_dict()
        return out


@dataclass(frozen=True)
class ProfileCheck:
    """A threshold test's certified errors checked against an accountant's whole privacy
    profile: the accountant claims ``(eps, delta(eps))``-DP for *every* eps, so errors with
    ``max(1 - FNR - e^eps FPR, 1 - FPR - e^eps FNR) > delta(eps)`` at any eps refute it (the
    (eps, delta)-DP inequality of Kairouz, Oh and Viswanath 2015, Thm 2.1, at each eps). A
    violation at small eps needs far fewer trials than one at the eps of a single small delta:
    the mass that refutes it is not in the far tail.

    Sound at the confidence it states: the certified upper bounds (``fpr_upper``, ``fnr_upper``)
    hold together with that probability, and every error pair above a point inside the
    profile's region is inside it too (the region is monotone)."""

    violated: bool
    epsilon: float  # where the certified errors come closest to (or go furthest beyond) the profile
    delta_claimed: float  # the accountant's delta(eps) there
    delta_shown: float  # the delta the certified errors force at that eps
    threshold: float
    false_pos: int
    negatives: int
    false_neg: int
    positives: int
    fpr_upper: float
    fnr_upper: float
    confidence: float

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def forced_delta(fpr, fnr, eps_grid) -> np.ndarray:
    """For error rates (``fpr``, ``fnr``) of shape (m,) and eps of shape (g,): the smallest
    delta an (eps, delta)-DP mechanism can have with those errors, shape (m, g):
    ``max(0, 1 - fnr - e^eps fpr, 1 - fpr - e^eps fnr)``."""
    a = np.asarray(fpr, dtype=float)[:, None]
    b = np.asarray(fnr, dtype=float)[:, None]
    e = np.exp(np.minimum(np.asarray(eps_grid, dtype=float), 700.0))[None, :]
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.fmax(np.fmax(1.0 - b - e * a, 1.0 - a - e * b), 0.0)
    return out


def _profile_choice(a, b, eps_grid, deltas) -> tuple[int, int]:
    """(threshold index, eps index) where the errors (a, b) exceed the profile the most."""
    gap = forced_delta(a, b, eps_grid) - np.asarray(deltas, dtype=float)[None, :]
    i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
    return int(i), int(j)


def check_profile(a: float, b: float, eps_grid, deltas, *, threshold: float, fp: int, neg: int,
                  fn: int, pos: int, confidence: float) -> ProfileCheck:
    """:class:`ProfileCheck` of one certified error pair against ``deltas`` (the accountant's
    delta at each eps of ``eps_grid``)."""
    forced = forced_delta(np.array([a]), np.array([b]), eps_grid)[0]
    gap = forced - np.asarray(deltas, dtype=float)
    # the closest approach among the eps where the errors force anything at all (elsewhere
    # both are 0 and the comparison says nothing)
    j = int(np.argmax(np.where(forced > 0, gap, -np.inf))) if np.any(forced > 0) else 0
    shown = float(forced[j])
    claimed = float(np.asarray(deltas, dtype=float)[j])
    return ProfileCheck(shown > claimed, float(np.asarray(eps_grid)[j]), claimed, shown,
                        float(threshold), int(fp), int(neg), int(fn), int(pos), float(a),
                        float(b), confidence)


def error_counts(pos: np.ndarray, neg: np.ndarray, thresholds: np.ndarray):
    """For each threshold t: #neg >= t (false positives) and #pos < t (false negatives)."""
    ps, ns = np.sort(pos), np.sort(neg)
    fn = np.searchsorted(ps, thresholds, side="left")
    fp = ns.size - np.searchsorted(ns, thresholds, side="left")
    return fp, fn


def _candidates(pos: np.ndarray, neg: np.ndarray, limit: int = 4096) -> np.ndarray:
    """Observed scores to try as thresholds: every distinct value in the two tails (where the
    tight tests live) and an even spread of ranks in between."""
    u = np.unique(np.concatenate([pos, neg]))
    if u.size <= limit:
        return u
    tail = limit // 4
    mid = np.linspace(tail, u.size - tail - 1, limit - 2 * tail).astype(int)
    return np.unique(np.concatenate([u[:tail], u[mid], u[-tail:]]))


def _llr_projected_bounds(sel_p, sel_n, t, n_ev_p, n_ev_n, level):
    """Clopper-Pearson bounds at the certifying sizes for the error counts *expected* there.

    Each rate is estimated from the side where its estimator has weights at most 1 (so variance
    no larger than a direct count's): ``Q(L >= t)`` by ``E_P[e^{-L}; L >= t]`` for t >= 0 and by
    direct counts below; ``P(L < t)`` by ``E_Q[e^{L}; L < t]`` for t <= 0 and directly above."""
    ps, ns = np.sort(sel_p), np.sort(sel_n)
    ip = np.searchsorted(ps, t, side="left")  # positives below t
    i_n = np.searchsorted(ns, t, side="left")  # negatives below t
    w_p = np.exp(-np.clip(ps, -700.0, 700.0))
    tail_p = np.concatenate([np.cumsum(w_p[::-1])[::-1], [0.0]])  # sum_{pos >= t} e^{-L}
    w_n = np.exp(np.clip(ns, -700.0, 700.0))
    head_n = np.concatenate([[0.0], np.cumsum(w_n)])  # sum_{neg < t} e^{L}
    fpr = np.where(t >= 0, tail_p[ip] / ps.size, (ns.size - i_n) / ns.size)
    fnr = np.where(t <= 0, head_n[i_n] / ns.size, ip / ps.size)
    a = clopper_pearson_upper(np.clip(fpr, 0.0, 1.0) * n_ev_n, n_ev_n, level)
    b = clopper_pearson_upper(np.clip(fnr, 0.0, 1.0) * n_ev_p, n_ev_p, level)
    return a, b


def select_and_bound(pos, neg, *, delta: float, confidence: float, selection: str = "split",
                     select_fraction: float = 0.1, thresholds=None,
                     rng: np.random.Generator | None = None, llr: bool = False,
                     fit=None, profile=None) -> ThresholdBound:
    """Choose a threshold soundly and certify an eps lower bound with it.

    ``pos`` are scores of trials on D (the dataset with the audited record), ``neg`` of trials on
    D'. Larger scores mean "more like D"; the bound uses both directions of the test, so the
    sign convention only matters for which side the threshold sits.

    - ``selection="split"``: a random ``select_fraction`` of each side picks the threshold (the
      one whose bound, projected to the size of the rest, is largest); the rest certifies it.
    - ``selection="bonferroni"``: every threshold in ``thresholds`` (fixed before looking at the
      scores: a data-chosen grid would not be sound) is evaluated on all trials, each at level
      ``(1 - confidence) / (2 m)``; the best is reported.
    An uncorrected maximum over thresholds is never returned.

    ``llr=True`` says the scores are the exact log-likelihood ratio ``L = log(dP/dQ)`` of the
    mechanism as described. The split then estimates each threshold's error rates from *both*
    sides through the likelihood-ratio identity ``Q(L >= t) = E_P[e^{-L}; L >= t]`` (and
    ``P(L < t) = E_Q[e^{L}; L < t]``), which sees the far tails where the optimal test lives
    long before the tail has any direct counts, and projects them to the certifying set's size.
    This only steers the choice; the certificate still counts errors on unseen trials, so it
    stays sound when the identity is wrong (a broken implementation).

    ``fit(sel_pos, sel_neg) -> transform`` (split only) learns a score transform from the
    selection trials alone (e.g. LiRA's Gaussian likelihood ratio) and applies it to every score
    before thresholding: still sound, since the certifying trials are not seen by the fit.

    ``profile=(eps_grid, deltas)`` (an accountant's delta at each eps) adds a
    :class:`ProfileCheck`. With a split, a second threshold is chosen on the selection trials for
    it (the one whose projected errors leave the profile most) and both certificates are made at
    half the error budget each, so that together they hold with probability ``confidence``. With
    Bonferroni every threshold's bounds already hold together, so the check costs nothing.
    """
    confidence = check_confidence(confidence)
    delta = check_audit_delta(delta)
    pos = np.asarray(pos, dtype=float).ravel()
    neg = np.asarray(neg, dtype=float).ravel()
    check_count("positive trials", pos.size)
    check_count("negative trials", neg.size)
    if np.isnan(pos).any() or np.isnan(neg).any():
        raise InputError("scores must not be nan")
    if selection == "bonferroni":
        if fit is not None:
            raise InputError("a fitted score transform needs selection 'split' (the fit must "
                             "not see the certifying trials)")
        if thresholds is None:
            raise InputError("selection 'bonferroni' needs thresholds fixed in advance "
                             "(a grid chosen from the scores would not be sound)")
        t = np.unique(np.asarray(thresholds, dtype=float))
        m = t.size
        check_count("thresholds", m)
        level = (1.0 - confidence) / (2.0 * m)
        fp, fn = error_counts(pos, neg, t)
        a = clopper_pearson_upper(fp, neg.size, level)
        b = clopper_pearson_upper(fn, pos.size, level)
        eps = epsilon_from_rates(a, b, delta)
        i = int(np.argmax(eps))
        check = None
        if profile is not None:
            j, _ = _profile_choice(a, b, *profile)
            check = check_profile(a[j], b[j], *profile, threshold=t[j], fp=fp[j], neg=neg.size,
                                  fn=fn[j], pos=pos.size, confidence=confidence)
        return ThresholdBound(float(eps[i]), float(t[i]), int(fp[i]), neg.size, int(fn[i]),
                              pos.size, float(a[i]), float(b[i]), "bonferroni", m, confidence,
                              check)
    if selection != "split":
        raise InputError(f"selection must be 'split' or 'bonferroni'; got {selection!r}")
    f = float(select_fraction)
    if not (0.0 < f < 1.0):
        raise InputError(f"select_fraction must be in (0, 1); got {select_fraction!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    n_sel_p = max(1, int(round(f * pos.size)))
    n_sel_n = max(1, int(round(f * neg.size)))
    if n_sel_p >= pos.size or n_sel_n >= neg.size:
        raise InputError(f"too few trials to split ({pos.size} and {neg.size}); need at least 2 "
                         "per side")
    pp, nn = rng.permutation(pos), rng.permutation(neg)
    sel_p, ev_p = pp[:n_sel_p], pp[n_sel_p:]
    sel_n, ev_n = nn[:n_sel_n], nn[n_sel_n:]
    if fit is not None:
        tf = fit(sel_p, sel_n)
        sel_p, ev_p, sel_n, ev_n = (np.asarray(tf(a), dtype=float)
                                    for a in (sel_p, ev_p, sel_n, ev_n))
    t = _candidates(sel_p, sel_n)
    # two error rates per certificate; two certificates when the profile is checked too
    level = (1.0 - confidence) / (2.0 if profile is None else 4.0)
    if llr:
        a, b = _llr_projected_bounds(sel_p, sel_n, t, ev_p.size, ev_n.size, level)
    else:
        # what the selection trials themselves would certify: a threshold seen in 3 tail
        # samples is worth less than one seen in 3000, and an empty tail is not a perfect test
        fp, fn = error_counts(sel_p, sel_n, t)
        a = clopper_pearson_upper(fp, sel_n.size, level)
        b = clopper_pearson_upper(fn, sel_p.size, level)
    i = int(np.argmax(epsilon_from_rates(a, b, delta)))
    thr = float(t[i])
    fp1, fn1 = error_counts(ev_p, ev_n, np.array([thr]))
    a1 = clopper_pearson_upper(fp1, ev_n.size, level)[0]
    b1 = clopper_pearson_upper(fn1, ev_p.size, level)[0]
    eps = float(epsilon_from_rates(a1, b1, delta))
    check = None
    if profile is not None:
        j, _ = _profile_choice(a, b, *profile)
        fp2, fn2 = error_counts(ev_p, ev_n, np.array([t[j]]))
        check = check_profile(clopper_pearson_upper(fp2, ev_n.size, level)[0],
                              clopper_pearson_upper(fn2, ev_p.size, level)[0], *profile,
                              threshold=t[j], fp=fp2[0], neg=ev_n.size, fn=fn2[0],
                              pos=ev_p.size, confidence=confidence)
    return ThresholdBound(eps, thr, int(fp1[0]), ev_n.size, int(fn1[0]), ev_p.size, float(a1),
                          float(b1), "split", 1, confidence, check)


def best_projected_epsilon(pos, neg, *, delta: float, confidence: float,
                           size: int | None = None) -> float:
    """The largest eps lower bound that a test at one of these trials' thresholds would
    certify, *without* correcting for the choice: a score for comparing statistics on data that
    no certificate uses (never itself a bound). With ``size``, each error rate seen here is
    projected to ``size`` certifying trials (Clopper-Pearson of ``rate * size`` errors out of
    ``size``), so that a test whose errors are all in a tail too thin for these trials (a
    perfect separation, say) is judged by what the certifying trials can show."""
    pos = np.asarray(pos, dtype=float).ravel()
    neg = np.asarray(neg, dtype=float).ravel()
    t = _candidates(pos, neg)
    fp, fn = error_counts(pos, neg, t)
    level = (1.0 - confidence) / 2.0
    if size is None:
        a = clopper_pearson_upper(fp, neg.size, level)
        b = clopper_pearson_upper(fn, pos.size, level)
    else:
        a = clopper_pearson_upper(fp / neg.size * size, size, level)
        b = clopper_pearson_upper(fn / pos.size * size, size, level)
    return float(np.max(epsilon_from_rates(a, b, delta)))


def certifying_sizes(trials: int, selection: str, select_fraction: float) -> int:
    """Trials per side that certify the bound (what the ceiling must be computed for)."""
    if selection == "split":
        return trials - max(1, int(round(select_fraction * trials)))
    return trials

