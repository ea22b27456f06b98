"""Test statistics: what an audit thresholds.

A statistic maps releases of shape ``(trials, T, d)`` to one score per trial; larger means "more
like D" (the dataset holding the audited record). Any callable with that signature works.

- :class:`ExactLLR`: the log-likelihood ratio ``log p_D(z_1..z_T) - log p_D'(z_1..z_T)`` of the
  mechanism *as the accountant describes it*, for a concrete pair. By Neyman-Pearson it is the
  most powerful statistic when the implementation is faithful, so it is the one whose audit must
  approach the accountant's epsilon. Applied to a broken implementation it is still a valid
  statistic (any statistic gives a sound lower bound for whatever produced the releases); it is
  just no longer guaranteed to be optimal.
- :class:`Projection`: a black-box statistic that needs no density: the sum over releases of the
  projection of each release on a direction (by default, from D' towards D), optionally clipped.
- :class:`LearnedLLR`: a black-box statistic *fitted* on trials of its own (never the ones that
  certify): an estimate of the implementation's own likelihood ratio, from histograms of each
  release's projection (pooled over releases, or one per position), of each coordinate, or an
  order statistic over releases (the max or min projection), whichever separates a held-out
  half of the fitting trials best. It follows a wrong implementation's likelihood ratio (a
  heavier or lighter noise tail, a position that leaks more) where the fixed statistics average
  a tail violation away. The default for implementations other than the reference.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, logsumexp

from ..samplers import ceil_epochs, sampler_type
from .simulate import InstaHideReleases, NeighbourPair, distinct_records
from ..errors import InputError

__all__ = ["ExactLLR", "Projection", "LearnedLLR", "MAX_COMPONENTS", "LLR_RESOLUTION"]

#: refuse an exact LLR whose mixture has more components than this (use a black-box statistic)
MAX_COMPONENTS = 20000

#: the exact LLR is rounded to this grid. Where the density ratio is constant (the atoms of the
#: privacy loss, e.g. every z >= Delta/k in the worst case) the true LLR is one number, but its
#: floating-point evaluation is not: it varies in the last bits with z, and z itself lies on a
#: coarser float grid when computed as ``Delta/k + noise`` than as ``noise`` alone. A threshold
#: between such last-bit values then picks a float artefact that tells D from D' (Mironov 2012,
#: "On significance of the least significant bits for differential privacy") and the audit would
#: measure the representation, not the mechanism the accountant bounds. Rounding to 1e-9 merges
#: each atom back into one value and moves no threshold by more than 1e-9 nats.
LLR_RESOLUTION = 1e-9


def _compositions(counts: np.ndarray, k: int):
    """All count vectors c with sum k and 0 <= c_j <= counts_j."""
    out = []

    def rec(j, left, cur):
        if j == counts.size - 1:
            if left <= counts[j]:
                out.append(cur + [left])
            return
        for c in range(min(left, int(counts[j])) + 1):
            rec(j + 1, left - c, cur + [c])
            if len(out) > MAX_COMPONENTS:
                raise InputError(f"the exact LLR of this pair has more than {MAX_COMPONENTS} "
                                 "mixture components; use a black-box statistic (projection)")

    rec(0, k, [])
    return np.array(out, dtype=float)


def _mixture(model: InstaHideReleases, data: np.ndarray):
    """(means, log_weights) of the law of one release's noiseless mean, for the subsets or
    poisson sampler: a finite mixture over the composition of the draw."""
    values, counts = distinct_records(data)
    k = model.k
    if not sampler_type(model.sampler).independent_inclusion:
        comp = _compositions(counts, k)
        n = counts.sum()
        # multivariate hypergeometric: prod_j C(n_j, c_j) / C(N, k)
        lw = (gammaln(counts + 1) - gammaln(comp + 1) - gammaln(counts - comp + 1)).sum(1)
        lw -= gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
        return comp @ values / k, lw
    # poisson: independent binomial counts; records at 0 do not move the mean
    q = model.rate
    means = np.zeros((1, values.shape[1]))
    lw = np.zeros(1)
    for v, nj in zip(values, counts):
        if not np.any(v != 0):
            continue
        c = np.arange(nj + 1, dtype=float)
        lp = (gammaln(nj + 1) - gammaln(c + 1) - gammaln(nj - c + 1) + c * math.log(q)
              + (nj - c) * math.log1p(-q) if q < 1 else np.where(c == nj, 0.0, -np.inf))
        keep = lp > lp.max() - 40.0  # terms below e^-40 of the largest cannot change a score
        c, lp = c[keep], lp[keep]
        means = (means[:, None, :] + c[None, :, None] * v / k).reshape(-1, v.size)
        lw = (lw[:, None] + lp[None, :]).ravel()
        if lw.size > MAX_COMPONENTS:
            raise InputError(f"the exact LLR of this pair has more than {MAX_COMPONENTS} mixture "
                             "components; use a black-box statistic (projection)")
    return means, lw


#: un-noised coordinates (the soft label) match a component's mean when within this: they are
#: counts over k computed in two orders (the simulation's and the mixture's), equal but for the
#: last bits, and distinct values differ by at least 1/k
LABEL_MATCH = 1e-9


def mixture_log_density(z: np.ndarray, means: np.ndarray, lw: np.ndarray, b: float,
                         block: int = 1 << 18, exact: int = 0) -> np.ndarray:
    """log of sum_c w_c prod_i Lap(z_i - mu_ci; b), without the constant -d log(2b).

    The last ``exact`` coordinates are released without noise (the soft label): a component
    contributes only where they equal its mean (a point mass: the density is with respect to
    Lebesgue measure on the image times counting measure on the label).
    Log-sum-exp over components, computed in blocks so memory stays flat; one and two
    components (the worst-case pair) take direct paths."""
    out = np.empty(z.shape[0])
    c = means.shape[0]
    w = z.shape[1] - exact
    step = max(1, block // max(1, c * z.shape[1]))
    for s in range(0, z.shape[0], step):
        zz = z[s:s + step]
        terms = [lw[i] - np.abs(zz[:, :w] - means[i, :w]).sum(axis=1) / b for i in range(c)]
        if exact:
            for i in range(c):
                miss = np.abs(zz[:, w:] - means[i, w:]).max(axis=1) > LABEL_MATCH
                terms[i] = np.where(miss, -np.inf, terms[i])
        if c == 1:
            out[s:s + step] = terms[0]
        elif c == 2:
            out[s:s + step] = np.logaddexp(terms[0], terms[1])
        else:
            a = np.stack(terms, axis=1)
            top = a.max(axis=1, keepdims=True)
            out[s:s + step] = (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))[:, 0]
    return out


def _quantise(llr: np.ndarray) -> np.ndarray:
    return np.round(llr / LLR_RESOLUTION) * LLR_RESOLUTION


class ExactLLR:
    """The exact log-likelihood ratio of T releases of the faithful mechanism on ``pair``.

    subsets / poisson: releases are i.i.d. given the dataset, so the LLR is the sum over releases
    of ``log p_D(z_t) - log p_D'(z_t)``, each density a Laplace mixture over the composition of
    the draw. permutation: releases within an epoch are dependent; for pairs whose datasets are
    ``n - 1`` copies of one record ``v`` plus one other record (the worst-case shape), the joint
    density of an epoch relative to "all records are v" is

        E[prod_j r_j(c_j)] = k! / N^k * [t^k] prod_j (sum_c r_j(c) t^c / c!)

    where ``c_j`` counts how many of the k independent permutations put the special record in
    output j (a multinomial over outputs) and ``r_j(c)`` is the Laplace density ratio of output j
    with ``c/k`` of the special record mixed in. Other permutation pairs are refused.
    """

    name = "exact-llr"

    def __init__(self, model: InstaHideReleases, pair: NeighbourPair):
        if not model.faithful:
            raise InputError("the exact LLR is that of the faithful mechanism; build it from the "
                             "accountant's description, not a broken variant")
        if model.random_weights:
            raise InputError("the exact LLR is computed for weights 1/k; with Dirichlet weights "
                             "use statistic 'learned-llr' or 'projection'")
        self.model = model
        self.pair = pair
        self.b = model.noise
        if sampler_type(model.sampler).epoch_structured:
            self._perm = self._outliers(pair.d, pair.d_prime)
        else:
            self.mixtures = [_mixture(model, pair.d), _mixture(model, pair.d_prime)]
        self.range = self._range()

    @staticmethod
    def _outliers(d: np.ndarray, dp: np.ndarray):
        """((v, u), (v, u')): the record ``v`` that both datasets hold n - 1 times, and each
        dataset's other record (None when all n are ``v``)."""
        n = d.shape[0]
        for v in np.unique(np.concatenate([d, dp]), axis=0):
            rest = []
            for data in (d, dp):
                other = data[np.any(data != v, axis=1)]
                if other.shape[0] > 1 or data.shape[0] != n:
                    break
                rest.append(other[0] if other.shape[0] else None)
            else:
                return (v, rest[0]), (v, rest[1])
        raise InputError("exact LLR under the permutation sampler needs datasets of n - 1 "
                         "identical records plus at most one other; use a black-box statistic")

    def _range(self):
        """Bounds on the score (for fixed Bonferroni grids): per release the log ratio of two
        Laplace mixtures lies within the largest L1 distance between their means over b."""
        if sampler_type(self.model.sampler).epoch_structured:
            (v, u), (_, u2) = self._perm
            span = sum(float(np.abs(w - v).sum()) for w in (u, u2) if w is not None)
            per_epoch = span / self.b
            epochs = ceil_epochs(self.model.releases, self.pair.d.shape[0])
            return (-per_epoch * epochs, per_epoch * epochs)
        (m1, _), (m2, _) = self.mixtures
        w = self.pair.image_columns
        span = float(np.abs(m1[:, None, :w] - m2[None, :, :w]).sum(2).max()) / self.b
        t = self.model.releases
        return (-span * t, span * t)

    def _perm_log_ratio(self, z: np.ndarray, v: np.ndarray, u) -> np.ndarray:
        """log p(epoch outputs) - log p(epoch outputs | all records are v), for z of shape
        (M, n_obs, d), the special record ``u`` (None: no special record)."""
        if u is None:
            return np.zeros(z.shape[0])
        k, n, b = self.model.k, self.pair.d.shape[0], self.b
        m, n_obs, _ = z.shape
        c = np.arange(k + 1)
        base = np.abs(z - v).sum(2)  # (M, n_obs)
        step = (u - v) / k
        # log r_j(c) - log c!, shape (M, n_obs, k+1)
        la = np.stack([-(np.abs(z - v - ci * step).sum(2) - base) / b for ci in c], axis=2)
        la -= gammaln(c + 1)
        poly = np.full((m, k + 1), -np.inf)
        poly[:, 0] = 0.0
        for j in range(n_obs):
            nxt = np.full_like(poly, -np.inf)
            for ci in range(k + 1):
                nxt[:, ci] = logsumexp(poly[:, :ci + 1] + la[:, j, ci::-1], axis=1)
            poly = nxt
        n_un = n - n_obs
        if n_un:  # unobserved outputs: ratio 1, generating function e^{n_un t}
            lu = c * math.log(n_un) - gammaln(c + 1)
            poly = np.stack([logsumexp(poly[:, :ci + 1] + lu[ci::-1], axis=1)
                             for ci in range(k + 1)], axis=1)
        return gammaln(k + 1) - k * math.log(n) + poly[:, k]

    def __call__(self, releases: np.ndarray) -> np.ndarray:
        z = np.asarray(releases, dtype=float)
        m, t, d = z.shape
        if sampler_type(self.model.sampler).epoch_structured:
            n = self.pair.d.shape[0]
            (v, u), (_, u2) = self._perm
            out = np.zeros(m)
            for s in range(0, t, n):
                ze = z[:, s:s + n]
                out += self._perm_log_ratio(ze, v, u) - self._perm_log_ratio(ze, v, u2)
            return _quantise(out)
        flat = z.reshape(m * t, d)
        (m1, w1), (m2, w2) = self.mixtures
        lab = self.pair.label_columns
        with np.errstate(invalid="ignore"):
            llr = (mixture_log_density(flat, m1, w1, self.b, exact=lab)
                   - mixture_log_density(flat, m2, w2, self.b, exact=lab))
        if np.isnan(llr).any():
            raise InputError("a release's soft label is impossible under both datasets: the "
                             "releases do not come from the mechanism on this pair")
        return _quantise(llr.reshape(m, t).sum(1))


class Projection:
    """Black-box statistic: ``sum_t clip(<z_t, u>, lo, hi)``, ``u`` a unit direction.

    The default direction points from the mean of D' to the mean of D (the only place the two
    differ on average). It needs no knowledge of the mechanism's densities."""

    name = "projection"

    def __init__(self, pair: NeighbourPair | None = None, direction=None, clip=None):
        if direction is None:
            if pair is None:
                raise InputError("Projection needs a pair or a direction")
            direction = pair.d.mean(0) - pair.d_prime.mean(0)
        u = np.asarray(direction, dtype=float).ravel()
        norm = float(np.linalg.norm(u))
        if not np.isfinite(norm) or norm == 0:
            raise InputError("the projection direction must be finite and nonzero (do D and D' "
                             "have the same mean?)")
        self.u = u / norm
        self.clip = clip
        self.range = None  # unbounded unless clipped: thresholds come from a split

    def __call__(self, releases: np.ndarray) -> np.ndarray:
        p = np.asarray(releases, dtype=float) @ self.u  # (M, T)
        if self.clip is not None:
            np.clip(p, self.clip[0], self.clip[1], out=p)
        return p.sum(1)


def _direction(pair: NeighbourPair) -> np.ndarray:
    """Unit vector from the mean of D' to the mean of D; the first axis where they share it."""
    u = (pair.d.mean(0) - pair.d_prime.mean(0)).ravel()
    norm = float(np.linalg.norm(u))
    if not np.isfinite(norm) or norm == 0:
        u = np.zeros(pair.d.shape[1])
        u[0] = 1.0
        return u
    return u / norm


class _Histogram:
    """log(p_D(x) / p_D'(x)) of a 1-D feature, as a histogram on quantile bins of the pooled
    fitting values: bins dense in both tails (quantile levels from 1/n to 1/2, log-spaced), so
    that a tail where one side is heavier gets bins of its own. Half a count is added to every
    bin (the Jeffreys prior of a bin's probability), so an empty bin has a finite ratio."""

    def __init__(self, pos: np.ndarray, neg: np.ndarray, bins: int = 200, edges=None,
                 prior: "_Histogram | None" = None):
        pos, neg = pos.ravel(), neg.ravel()
        if edges is None:
            both = np.concatenate([pos, neg])
            low = max(1.0 / both.size, 1e-7)
            tail = np.geomspace(low, 0.5, max(2, bins // 2))
            edges = np.unique(np.quantile(both, np.concatenate([tail, 1.0 - tail])))
        self.edges = edges
        cp = np.bincount(np.searchsorted(edges, pos), minlength=edges.size + 1) + 0.5
        cn = np.bincount(np.searchsorted(edges, neg), minlength=edges.size + 1) + 0.5
        if prior is not None:
            # shrunk towards the prior histogram (same edges): a Dirichlet prior centred on its
            # bin probabilities, as strong as half this histogram's own trials
            cp = cp + 0.5 * pos.size * prior.p
            cn = cn + 0.5 * neg.size * prior.q
        self.p, self.q = cp / cp.sum(), cn / cn.sum()
        self.log_ratio = np.log(self.p) - np.log(self.q)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.log_ratio[np.searchsorted(self.edges, x)]

    def monotone(self) -> "_Histogram":
        """The same histogram with its log ratio made non-decreasing (pool adjacent violators,
        each bin weighted by its probability under both sides): the shape of the likelihood
        ratio of a shift of any log-concave noise (Laplace, Gaussian, sums of them), for which
        the monotone fit pools the noisy tail bins instead of following their noise."""
        out = object.__new__(_Histogram)
        out.edges, out.p, out.q = self.edges, self.p, self.q
        out.log_ratio = _isotonic(self.log_ratio, self.p + self.q)
        return out


class LearnedLLR:
    """A statistic fitted on trials of its own: an estimated likelihood ratio of the
    implementation itself (module docstring).

    :meth:`fit` takes releases of shape ``(F, T, d)`` from D and from D' (trials that nothing
    certifies), fits every candidate on one half and keeps the one whose best test on the other
    half certifies the most at ``delta`` (an uncorrected score used only to choose; the audit's
    certificate comes later, from trials this never saw), then refits that candidate on all of
    them. Candidates:

    - ``pooled-monotone`` and ``pooled``: ``sum_t h(<z_t, u>)``, ``h`` a histogram log ratio of
      one release's projection on ``u`` (from D' towards D), pooled over positions: the
      likelihood ratio of i.i.d. releases when the projection is sufficient; the first made
      non-decreasing (the shape for a shift of log-concave noise), the second free;
    - ``per-position``: ``sum_t h_t(<z_t, u>)``, one histogram per position (T <= 64), each
      shrunk towards the pooled one: releases that are not interchangeable (a position, or an
      epoch, that leaks more);
    - ``per-coordinate``: ``sum_t sum_j h_j(z_tj)`` (1 < d <= 64): a leak in one coordinate that
      the projection dilutes;
    - ``max``, ``min`` and ``spread``: the largest projection over releases, minus the
      smallest, and their difference: one release in a tail, however many releases there are,
      and releases that differ more than independent noise would make them.
    """

    name = "learned-llr"

    def __init__(self, pair: NeighbourPair, delta: float, confidence: float = 0.95,
                 bins: int = 200):
        self.u = _direction(pair)
        self.delta = float(delta)
        self.confidence = float(confidence)
        self.bins = int(bins)
        self.range = None  # thresholds come from a split
        self.chosen: str | None = None
        self.scores_of_candidates: dict = {}
        self._score = None

    def _candidates(self, pos: np.ndarray, neg: np.ndarray):
        t, d = pos.shape[1], pos.shape[2]
        pp, pn = pos @ self.u, neg @ self.u  # (F, T)
        pooled = _Histogram(pp, pn, self.bins)
        out = {"pooled-monotone": lambda: _pooled(pooled.monotone(), self.u),
               "pooled": lambda: _pooled(pooled, self.u)}
        if 1 < t <= 64:
            out["per-position"] = lambda: _per_position(
                [_Histogram(pp[:, i], pn[:, i], edges=pooled.edges, prior=pooled)
                 for i in range(t)], self.u)
        if 1 < d <= 64:
            out["per-coordinate"] = lambda: _per_coordinate(
                [_Histogram(pos[..., j], neg[..., j], self.bins) for j in range(d)])
        if t > 1:
            out["max"] = lambda: _order(self.u, 1.0)
            out["min"] = lambda: _order(self.u, -1.0)
            out["spread"] = lambda: _spread(self.u)
        return out

    def fit(self, pos, neg, certifying: int | None = None) -> "LearnedLLR":
        """Choose and fit the statistic on releases ``pos`` (from D) and ``neg`` (from D'),
        judging each candidate by what ``certifying`` trials per side would certify with it
        (:func:`~dpaccount.audit.bounds.best_projected_epsilon`)."""
        from .bounds import best_projected_epsilon

        pos = np.asarray(pos, dtype=float)
        neg = np.asarray(neg, dtype=float)
        if pos.ndim != 3 or neg.ndim != 3 or pos.shape[1:] != neg.shape[1:]:
            raise InputError(f"fit needs releases of shape (F, T, d) from both sides; got "
                             f"{pos.shape} and {neg.shape}")
        if min(pos.shape[0], neg.shape[0]) < 4:
            raise InputError("fit needs at least 4 trials per side")
        hp, hn = pos.shape[0] // 2, neg.shape[0] // 2
        best, best_eps = None, -1.0
        for name, make in self._candidates(pos[:hp], neg[:hn]).items():
            score = make()
            e = best_projected_epsilon(score(pos[hp:]), score(neg[hn:]), delta=self.delta,
                                       confidence=self.confidence, size=certifying)
            self.scores_of_candidates[name] = e
            # a candidate that assumes less (candidates come simplest first) must beat the
            # simpler one by more than the held-out half's noise: 5% of the eps it shows
            if best is None or e > best_eps * 1.05:
                best, best_eps = name, e
        self.chosen = best
        self._score = self._candidates(pos, neg)[best]()
        return self

    def describe(self) -> str:
        return self.name if self.chosen is None else f"{self.name} ({self.chosen})"

    def __call__(self, releases: np.ndarray) -> np.ndarray:
        if self._score is None:
            raise InputError("the learned statistic must be fitted (on trials of its own) "
                             "before it scores")
        return self._score(np.asarray(releases, dtype=float))


def _isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit of ``y`` (pool adjacent violators)."""
    vals, wts, sizes = [], [], []
    for yi, wi in zip(y.tolist(), w.tolist()):
        vals.append(yi)
        wts.append(wi)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            v2, w2, n2 = vals.pop(), wts.pop(), sizes.pop()
            v1, w1, n1 = vals.pop(), wts.pop(), sizes.pop()
            vals.append((v1 * w1 + v2 * w2) / (w1 + w2))
            wts.append(w1 + w2)
            sizes.append(n1 + n2)
    return np.repeat(vals, sizes)


def _pooled(h: _Histogram, u: np.ndarray):
    return lambda z: h(z @ u).sum(1)


def _per_position(hs: list, u: np.ndarray):
    def score(z):
        p = z @ u
        return sum(h(p[:, i]) for i, h in enumerate(hs))
    return score


def _per_coordinate(hs: list):
    def score(z):
        return sum(h(z[..., j]).sum(1) for j, h in enumerate(hs))
    return score


def _order(u: np.ndarray, sign: float):
    return lambda z: (sign * (z @ u)).max(1)


def _spread(u: np.ndarray):
    def score(z):
        p = z @ u
        return p.max(1) - p.min(1)
    return score
