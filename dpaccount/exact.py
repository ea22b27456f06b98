"""The exact privacy profile of DP-InstaHide on a concrete pair of small datasets.

For validating the accountants against the truth: given neighbouring datasets ``D`` and ``D'``
(N <= 8 records in 1 or 2 dimensions), the release under each is a finite mixture of Laplace
densities, one component per k-subset (the mean of its records). The hockey-stick divergence of
T releases,

    delta_T(eps) = max over directions of E_B[(e^{L_1 + ... + L_T} - e^eps)_+],

is computed by quadrature: the real line is cut at every component mean (between two cuts each
density is a sum of exponentials; beyond the outermost cuts the density ratio is constant, so
each tail is an atom of known mass), each piece is cut further to width <= b/2 and integrated
by Gauss-Legendre on panels of width <= b/256. For T = 2, 3 the sums over node pairs/triples are done exactly (sorting and
suffix sums for T = 3); :class:`ConcreteProfile` brackets the profile of up to T = 64 releases by
rounding every node's loss down (and up) onto a fine grid and composing by FFT: the rounded-down
sum is below the true one, and ``x -> (1 - e^{eps - x})_+`` is increasing, so the result is a
lower bound (an upper bound for rounding up), up to the quadrature accuracy. Labelled datasets
(``labels``: the public class of every record, the same in both datasets) release the soft label
too: the count of every class in the subset, so the loss law is the mixture over count vectors of
the conditional pairs, the count being seen. In 2-D the same is done on the product of the two coordinates' panels
(T = 1 only). Accuracy is that of the quadrature (~1e-10 absolute), checked in the tests against
the closed form of a single Laplace pair.

Random mixing weights (:class:`DirichletProfile`, :func:`dirichlet_exact_delta`): the weights of
the k chosen records drawn from Dirichlet(alpha, ..., alpha) instead of 1/k, on datasets of two
values a, c, where the mean given the subset is ``a + (c - a) B``, B a Beta variable; the
release's density is the mixture of Laplace densities over B, computed by Gauss-Jacobi quadrature
split at the Laplace kernel's kink (about 1e-14 relative), and the profile is then bracketed by
the same nodes, rounding and composition as :class:`ConcreteProfile`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from .errors import InputError

__all__ = ["subset_means", "exact_delta", "loss_nodes", "release_loss_law", "ConcreteProfile",
           "beta_laplace", "DirichletProfile", "dirichlet_exact_delta"]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)

#: panels are at most b / RESOLUTION wide: the hockey-stick integrand has a kink where the loss
#: crosses eps, and the quadrature error there shrinks with the square of the panel width
RESOLUTION = 256


def subset_means(data: np.ndarray, k: int) -> np.ndarray:
    """The mean of every k-subset of the rows of ``data`` (shape (C(N,k), d))."""
    data = np.asarray(data, dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    n = data.shape[0]
    if not (1 <= k <= n):
        raise InputError(f"k must be in 1..N; got k={k}, N={n}")
    if n > 12:
        raise InputError(f"exact profiles enumerate subsets: N must be at most 12; got {n}")
    idx = np.array(list(itertools.combinations(range(n), k)))
    return data[idx].mean(axis=1)


def _mix_density_1d(z, means, b):
    # uniform mixture of Lap(m, b) at points z: shape (len(z),)
    return np.exp(-np.abs(z[:, None] - means[None, :]) / b).mean(axis=1) / (2 * b)


def _panels_1d(cuts, b, resolution=None):
    """GL nodes and weights on [cuts[0], cuts[-1]], pieces no wider than b/resolution."""
    width = b / (resolution or RESOLUTION)
    edges = [cuts[0]]
    for a, c in zip(cuts[:-1], cuts[1:]):
        m = max(1, int(math.ceil((c - a) / width)))
        edges.extend(np.linspace(a, c, m + 1)[1:].tolist())
    edges = np.asarray(edges)
    a, c = edges[:-1], edges[1:]
    keep = c > a
    a, c = a[keep], c[keep]
    mid, half = (a + c) / 2, (c - a) / 2
    z = (mid[:, None] + half[:, None] * _GL_X[None, :]).ravel()
    w = (half[:, None] * _GL_W[None, :]).ravel()
    return z, w


def _nodes_on_panels(cuts, b, resolution, tails, densities):
    """The loss ``log p/q`` and its law under q, as nodes and masses, of two densities on the
    line that are, left of ``cuts[0]`` (right of ``cuts[-1]``), a constant factor times
    ``e^{-|z - cut|/b} / (2b)``: ``tails`` = (log p's left factor, log q's, log p's right factor,
    log q's) make the two tail atoms (a tail's mass is half its factor); ``densities(z)`` gives
    ``(p(z), q(z))`` at the quadrature nodes between the outermost cuts."""
    lp_left, lq_left, lp_right, lq_right = tails
    vals = [lp_left - lq_left, lp_right - lq_right]
    masses = [0.5 * math.exp(lq_left), 0.5 * math.exp(lq_right)]  # Q-mass of each tail
    if cuts[-1] > cuts[0]:
        z, w = _panels_1d(cuts, b, resolution)
        p, q = densities(z)
        vals = np.concatenate([vals, np.log(p) - np.log(q)])
        masses = np.concatenate([masses, w * q])
    return np.asarray(vals, dtype=float), np.asarray(masses, dtype=float)


def loss_nodes(mp: np.ndarray, mq: np.ndarray, b: float, resolution: int | None = None):
    """1-D: the loss ``log p/q`` and its law under Q (the release of the *second* dataset), as
    nodes and masses: the two tail atoms plus quadrature nodes in between."""
    mp, mq = np.ravel(mp), np.ravel(mq)
    cuts = np.unique(np.concatenate([mp, mq]))
    lo, hi = cuts[0], cuts[-1]
    # tails: for z <= lo every component is e^{(z - m)/b}/(2b); ratio is constant
    tails = (np.log(np.mean(np.exp(-(mp - lo) / b))), np.log(np.mean(np.exp(-(mq - lo) / b))),
             np.log(np.mean(np.exp(-(hi - mp) / b))), np.log(np.mean(np.exp(-(hi - mq) / b))))
    return _nodes_on_panels(cuts, b, resolution, tails,
                            lambda z: (_mix_density_1d(z, mp, b), _mix_density_1d(z, mq, b)))


def _loss_nodes_2d(mp, mq, b):
    """2-D product Laplace mixtures: loss and Q-mass on the product of per-axis panels, with
    the tails (constant ratio along that axis) as atoms per axis."""
    axes = []
    for ax in range(2):
        cuts = np.unique(np.concatenate([mp[:, ax], mq[:, ax]]))
        lo, hi = cuts[0], cuts[-1]
        z, w = _panels_1d(cuts, b) if hi > lo else (np.zeros(0), np.zeros(0))
        axes.append((lo, hi, z, w))

    def axis_terms(ax, means):
        # per-axis factor of each component's density, on (left atom, nodes, right atom),
        # where an atom's "density" is its integrated mass
        lo, hi, z, w = axes[ax]
        m = means[:, ax]
        left = 0.5 * np.exp(-(m - lo) / b)  # integral over z <= lo
        right = 0.5 * np.exp(-(hi - m) / b)
        mid = np.exp(-np.abs(z[:, None] - m[None, :]) / b) / (2 * b) * w[:, None]
        return np.vstack([left[None, :], mid, right[None, :]])  # (nodes+2, comps)

    ax0_p, ax1_p = axis_terms(0, mp), axis_terms(1, mp)
    ax0_q, ax1_q = axis_terms(0, mq), axis_terms(1, mq)
    # mixture mass on each product cell: mean over components of the product of factors
    p = ax0_p @ ax1_p.T / mp.shape[0]
    q = ax0_q @ ax1_q.T / mq.shape[0]
    # (on atom cells the ratio of integrated masses equals the constant density ratio); cells
    # where a mass underflows to 0 carry less than 1e-300 and are dropped
    keep = (p > 0) & (q > 0)
    return np.log(p[keep]) - np.log(q[keep]), q[keep]


def _hockey_sum(vals, masses, eps, T):
    """E[(e^{sum of T i.i.d. losses} - e^eps)_+] under the node law, exactly over nodes."""
    if T == 1:
        m = vals > eps
        return float(np.sum(masses[m] * (np.exp(vals[m]) - math.exp(eps))))
    if T == 2:
        s = (vals[:, None] + vals[None, :]).ravel()
        w = (masses[:, None] * masses[None, :]).ravel()
        m = s > eps
        return float(np.sum(w[m] * (np.exp(s[m]) - math.exp(eps))))
    if T == 3:
        s = (vals[:, None] + vals[None, :]).ravel()
        w = (masses[:, None] * masses[None, :]).ravel()
        order = np.argsort(s)
        s, w = s[order], w[order]
        ew = w * np.exp(s)
        suf_ew = np.concatenate([np.cumsum(ew[::-1])[::-1], [0.0]])
        suf_w = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])
        pos = np.searchsorted(s, eps - vals, side="right")
        tot = masses * (np.exp(vals) * suf_ew[pos] - math.exp(eps) * suf_w[pos])
        return float(np.sum(tot))
    raise InputError(f"exact profiles compose at most T = 3 releases; got T={T}")


def exact_delta(data: np.ndarray, data_prime: np.ndarray, k: int, b: float, eps: float,
                releases: int = 1) -> float:
    """delta(eps) of ``releases`` i.i.d. DP-InstaHide releases on the concrete pair, both
    directions. Records are rows (1-D: a vector)."""
    d1 = np.asarray(data, dtype=float)
    d2 = np.asarray(data_prime, dtype=float)
    if d1.shape != d2.shape:
        raise InputError(f"datasets must have the same shape (substitution); got {d1.shape} "
                         f"and {d2.shape}")
    if not (b > 0 and math.isfinite(b)):
        raise InputError(f"noise must be a positive finite number; got {b!r}")
    mp, mq = subset_means(d1, k), subset_means(d2, k)
    dim = mp.shape[1]
    out = []
    for a, c in ((mp, mq), (mq, mp)):
        if dim == 1:
            vals, masses = loss_nodes(a, c, b)
        elif dim == 2:
            if releases != 1:
                raise InputError("2-D exact profiles are computed for one release only")
            vals, masses = _loss_nodes_2d(a, c, b)
        else:
            raise InputError(f"records must be 1- or 2-dimensional; got {dim}")
        out.append(_hockey_sum(vals, masses, eps, releases))
    return max(0.0, max(out))


def _subset_groups(n: int, k: int, labels):
    """Index arrays of the k-subsets, grouped by the class-count vector their soft label shows
    (one group without labels)."""
    idx = np.array(list(itertools.combinations(range(n), k)))
    if labels is None:
        return [idx]
    lab = np.asarray(labels)
    if lab.shape != (n,):
        raise InputError(f"labels must give one class per record ({n}); got shape {lab.shape}")
    classes = np.unique(lab)
    counts = (lab[idx][:, :, None] == classes[None, None, :]).sum(axis=1)
    groups = {}
    for row, c in zip(idx, map(tuple, counts)):
        groups.setdefault(c, []).append(row)
    return [np.array(g) for g in groups.values()]


def release_loss_law(data, data_prime, k: int, b: float, labels=None,
                     resolution: int | None = None):
    """One release of the concrete 1-D pair: the loss ``log p/q`` (p: ``data``, q:
    ``data_prime``) and its law under q, as nodes and masses (quadrature). With ``labels`` (the
    public class of each record, the same in both datasets) the release also shows the class
    counts of its subset: the law is the mixture over count vectors, each with its conditional
    pair. Returns ``(values, q_masses)``."""
    d1 = np.ravel(np.asarray(data, dtype=float))
    d2 = np.ravel(np.asarray(data_prime, dtype=float))
    if d1.shape != d2.shape:
        raise InputError(f"datasets must have the same shape (substitution); got {d1.shape} "
                         f"and {d2.shape}")
    if not (b > 0 and math.isfinite(b)):
        raise InputError(f"noise must be a positive finite number; got {b!r}")
    n = d1.size
    if not (1 <= k <= n) or n > 12:
        raise InputError(f"need 1 <= k <= N <= 12; got k={k}, N={n}")
    groups = _subset_groups(n, k, labels)
    total = sum(len(g) for g in groups)
    vals, masses = [], []
    for g in groups:
        v, m = loss_nodes(d1[g].mean(axis=1), d2[g].mean(axis=1), b, resolution)
        vals.append(v)
        masses.append(m * (len(g) / total))
    return np.concatenate(vals), np.concatenate(masses)


class _RoundedProfile:
    """The shared end of the bracketed profiles: per direction, the one-release loss law of every
    phase under the direction's first distribution, rounded down (and up) onto one grid of step
    ``h`` and composed by FFT; :meth:`delta_bounds` reads the bracket off the four laws."""

    def _finish(self, dirs, points):
        # dirs: per direction, per phase (losses, masses under the first distribution, releases)
        self._dirs = dirs
        span = max(sum(float(v.max() - v.min()) * t for v, _, t in per_phase)
                   for per_phase in self._dirs)
        self.h = max(span / points, 1e-12)
        self._laws = [self._compose_phases(per_phase, rnd) for per_phase in self._dirs
                      for rnd in (np.floor, np.ceil)]

    def _compose_phases(self, per_phase, rnd):
        from scipy.signal import fftconvolve

        total, offset = None, 0.0
        for v, pm, t in per_phase:
            losses, out = self._compose(v, pm, rnd, t)
            offset += float(losses[0])
            total = out if total is None else np.maximum(fftconvolve(total, out), 0.0)
        return offset + np.arange(total.size) * self.h, total

    def _compose(self, v, pm, rnd, releases=None):
        from scipy.signal import fftconvolve

        releases = self.releases if releases is None else releases
        lo = float(v.min())
        i = rnd((v - lo) / self.h).astype(np.int64)
        one = np.bincount(i, weights=pm)
        out, base, t = None, one, releases
        while True:
            if t & 1:
                out = base if out is None else np.maximum(fftconvolve(out, base), 0.0)
            t >>= 1
            if not t:
                break
            base = np.maximum(fftconvolve(base, base), 0.0)
        losses = releases * lo + np.arange(out.size) * self.h
        return losses, out

    def delta_bounds(self, eps: float) -> tuple[float, float]:
        """(lower, upper) on delta(eps), the max over both directions."""
        vals = []
        for losses, p in self._laws:
            m = losses > eps
            vals.append(float(np.sum(p[m] * -np.expm1(eps - losses[m]))))
        lower = max(vals[0], vals[2]) * (1 - self.rel_tol) - self.tol
        upper = max(vals[1], vals[3]) * (1 + self.rel_tol) + self.tol
        return max(0.0, lower), min(1.0, upper)


class ConcreteProfile(_RoundedProfile):
    """delta(eps) of ``releases`` i.i.d. releases on a concrete 1-D pair (labelled or not), both
    directions, bracketed: :meth:`delta_bounds` returns ``(lower, upper)``.

    Each release's loss nodes are rounded down (and up) onto a grid of step ``h`` and composed by
    FFT in the tilted measure (the law under the first distribution of the direction, where
    convolution's round-off is absolute in delta units). The true sum lies between the two
    rounded sums, and ``E_P[(1 - e^{eps - S})_+]`` is increasing in ``S``. The ends are moved
    out by ``rel_tol`` (3e-5) relative plus ``tol`` (1e-9) for the quadrature of the nodes and
    the FFT round-off. The quadrature runs on panels of width ``b / resolution`` (2048 here, 8x
    finer than :func:`exact_delta`): its error shrinks with the square of the width, and was up
    to 1.4e-4 relative at 256 panels per b (just below the top loss, where the integrand's kink
    falls inside a panel and composition compounds it), so about 2e-6 here (tests compare with
    40-digit mpmath and with finer panels). Independent of the
    accountants: this is the truth they are tested against."""

    def __init__(self, data, data_prime, k: int, b: float, releases: int, labels=None, *,
                 points: int = 1 << 20, tol: float = 1e-9, rel_tol: float = 3e-5,
                 resolution: int = 2048):
        self._build(data, data_prime, [(k, b, releases)], labels, points, tol, rel_tol,
                    resolution)

    @classmethod
    def composed(cls, data, data_prime, phases, labels=None, *, points: int = 1 << 20,
                 tol: float = 1e-9, rel_tol: float = 3e-5, resolution: int = 2048):
        """Phases run one after the other on the same pair: ``phases`` is ``[(k, b, releases),
        ...]`` (64 releases in all at most); the loss of the run is the sum of every release's,
        each phase's law composed its number of times and the phases convolved, on one grid."""
        obj = cls.__new__(cls)
        obj._build(data, data_prime, list(phases), labels, points, tol, rel_tol, resolution)
        return obj

    def _build(self, data, data_prime, phases, labels, points, tol, rel_tol, resolution):
        if not phases:
            raise InputError("phases must hold at least one (k, b, releases)")
        counts = []
        for _, _, releases in phases:
            if isinstance(releases, bool) or int(releases) != releases or releases < 1:
                raise InputError(f"releases must be a positive integer; got {releases!r}")
            counts.append(int(releases))
        if sum(counts) > 64:
            raise InputError(f"releases must be an integer in 1..64 in all; got {sum(counts)}")
        self.releases = sum(counts)
        self.tol, self.rel_tol = tol, rel_tol
        # per direction, per phase: the one-release law under the first distribution
        dirs = []
        for a, c in ((data, data_prime), (data_prime, data)):
            per_phase = []
            for (k, b, _), t in zip(phases, counts):
                v, qm = release_loss_law(a, c, k, b, labels, resolution)
                pm = qm * np.exp(v)  # the law under the first distribution
                keep = pm > 0
                per_phase.append((v[keep], pm[keep], t))
            dirs.append(per_phase)
        self._finish(dirs, points)


# --- random mixing weights: W ~ Dirichlet(alpha, ..., alpha) on two-valued datasets -----------

#: Gauss-Legendre on the pieces of [0, 1] inside the Beta integral
_BETA_GL_X, _BETA_GL_W = np.polynomial.legendre.leggauss(20)
#: at an end of [0, 1] where the Beta exponent ``p - 1`` is below this, the weight ``B^{p-1}`` is
#: taken into Gauss-Jacobi (singular or few-times differentiable); above it it is smooth enough
#: for Gauss-Legendre (and the mass next to the end is negligible anyway)
_JACOBI_BELOW = 20.0
#: the largest ``|c - a| / b``: the B-integral's exponentials are then at most e^300 apart, and
#: the terms it drops below float range are under 1e-308 * e^600 relative (nothing)
_MAX_SHIFT = 300.0


def beta_laplace(x, p: float, q: float, s: float) -> np.ndarray:
    """``h(x) = E[exp(-s |B - x|)]`` for ``B ~ Beta(p, q)``, at every ``x`` in [0, 1].

    The Laplace kernel's kink sits at ``B = x``, so the integral is split there: ``h(x) =
    e^{-sx} int_0^x w e^{sB} + e^{sx} int_x^1 w e^{-sB}`` (w the Beta density). All ``x`` (and
    0, 1) cut [0, 1] into pieces; both one-sided integrals are then sums over the pieces of
    positive terms (cumulative sums from the left and from the right: no cancellation), each
    piece's integral by a 20-point rule: Gauss-Jacobi with the weight ``B^{p-1}``
    (``(1-B)^{q-1}``) on the piece touching 0 (1), Gauss-Legendre on the others. The pieces are
    refined so that a rule never sees a singularity closer than its own length (which costs a
    20-point rule under 1e-15 relative): a 1/64 grid, steps of a quarter of B's standard
    deviation within 40 of them of its mean (large ``p + q``: a narrow peak), and dyadic points
    ``2^-j``, ``1 - 2^-j`` down past the point nearest an end. Every node's log-weight is
    normalised by the rule's total mass. Relative accuracy of ``h``: under 1e-14 for p, q from
    0.01 to 1e4 and s up to 40 (measured against 30-digit mpmath: the closed form
    ``h(0) = 1F1(p; p + q; -s)`` and quadrature after ``u = B^p``; tests repeat part of it)."""
    from scipy.special import betaln, logsumexp, roots_jacobi

    if not (0 < p < math.inf and 0 < q < math.inf and 0 <= s <= _MAX_SHIFT):
        raise InputError(f"beta_laplace needs p, q > 0 finite and 0 <= s <= {_MAX_SHIFT:g}; got "
                         f"p={p!r}, q={q!r}, s={s!r}")
    x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
    mean = p / (p + q)
    sd = math.sqrt(p * q / (p + q) ** 2 / (p + q + 1))
    peak = np.arange(max(0.0, mean - 40 * sd), min(1.0, mean + 40 * sd), sd / 4)
    grid = np.unique(np.concatenate([[0.0, 1.0], x, np.linspace(0, 1, 65), peak]))
    # dyadic points down to below the point nearest an end: then every piece but the two end
    # ones is at least its own length away from 0 and from 1
    tiny = min(grid[1], 1 - grid[-2])
    geo = np.ldexp(1.0, -np.arange(1, min(1074, int(math.ceil(-math.log2(tiny))) + 1) + 1))
    grid = np.unique(np.concatenate([grid, geo, 1 - geo]))
    lo, hi = grid[:-1], grid[1:]
    norm = betaln(p, q)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    beta = mid[:, None] + half[:, None] * _BETA_GL_X[None, :]
    # 1 - B from the upper end down where B > 1/2 (1 - lo, 1 - hi are exact there), so that
    # (1 - B)^{q-1} keeps its relative accuracy next to 1
    gam = np.where((mid > 0.5)[:, None],
                   ((1 - lo) + (1 - hi))[:, None] / 2 - half[:, None] * _BETA_GL_X[None, :],
                   1 - beta)
    with np.errstate(divide="ignore"):  # the branch not taken may hit log(0)
        log_b = np.where((mid > 0.5)[:, None], np.log1p(-gam), np.log(beta))
    lw = (np.log(half)[:, None] + np.log(_BETA_GL_W)[None, :]
          + (p - 1) * log_b + (q - 1) * np.log(gam) - norm)
    n = _BETA_GL_X.size
    if p - 1 < _JACOBI_BELOW:  # the piece [0, hi[0]]: weight B^{p-1}
        u, wj = roots_jacobi(n, 0.0, p - 1)
        beta[0] = hi[0] * (1 + u) / 2
        lw[0] = p * math.log(hi[0] / 2) + np.log(wj) + (q - 1) * np.log1p(-beta[0]) - norm
    if q - 1 < _JACOBI_BELOW:  # the piece [lo[-1], 1]: weight (1 - B)^{q-1}
        u, wj = roots_jacobi(n, 0.0, q - 1)
        g = (1 - lo[-1]) * (1 + u) / 2  # 1 - B
        beta[-1] = 1 - g
        lw[-1] = q * math.log((1 - lo[-1]) / 2) + np.log(wj) + (p - 1) * np.log1p(-g) - norm
    # normalised by the rule's own total mass (1 up to rounding): cancels the rounding of
    # betaln and of the large logs when p + q is large
    lw -= logsumexp(lw)
    # per piece: U = int w e^{-s(hi - B)}, D = int w e^{-s(B - lo)} (both <= the piece's mass)
    log_u = logsumexp(lw - s * (hi[:, None] - beta), axis=1)
    log_d = logsumexp(lw - s * (beta - lo[:, None]), axis=1)
    # left(g_i) = sum_{j<i} U_j e^{-s(g_i - hi_j)}, right(g_i) = sum_{j>=i} D_j e^{-s(lo_j - g_i)},
    # summed with every term scaled to at most 1 (e^{s hi_j - s}, e^{-s lo_j})
    left = np.concatenate([[0.0], np.cumsum(np.exp(log_u + s * (hi - 1)))])
    right = np.concatenate([np.cumsum(np.exp(log_d - s * lo)[::-1])[::-1], [0.0]])
    h = np.exp(s * (1 - grid)) * left + np.exp(s * grid) * right
    return h[np.searchsorted(grid, x)]


def _two_valued(data, data_prime, k, b, alpha):
    """Checks the Dirichlet scope; returns ``(a, c - a, s, (P(m) under data, under data'))``
    with ``s = (c - a)/b`` and P the hypergeometric law of the number m of chosen records at
    ``c`` (``c = a + 1`` and m = 0 when both datasets hold one value only)."""
    d1, d2 = (np.asarray(d, dtype=float) for d in (data, data_prime))
    d1, d2 = (d.ravel() if d.ndim == 2 and d.shape[1] == 1 else d for d in (d1, d2))
    if d1.ndim != 1 or d2.ndim != 1:
        raise InputError(f"random-weight profiles take 1-D datasets; got shapes "
                         f"{np.shape(data)} and {np.shape(data_prime)}")
    if d1.shape != d2.shape:
        raise InputError(f"datasets must have the same shape (substitution); got {d1.shape} "
                         f"and {d2.shape}")
    n = d1.size
    if not (1 <= n <= 12):
        raise InputError(f"exact profiles enumerate subsets: N must be in 1..12; got {n}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not (1 <= k <= n):
        raise InputError(f"k must be an integer in 1..N; got k={k!r}, N={n}")
    if isinstance(b, bool) or not (isinstance(b, (int, float, np.number))
                                   and b > 0 and math.isfinite(b)):
        raise InputError(f"noise must be a positive finite number; got {b!r}")
    if isinstance(alpha, bool) or not (isinstance(alpha, (int, float, np.number))
                                       and alpha > 0 and math.isfinite(alpha)):
        raise InputError(f"alpha (the Dirichlet concentration) must be a positive finite "
                         f"number; got {alpha!r}")
    if not (np.all(np.isfinite(d1)) and np.all(np.isfinite(d2))):
        raise InputError("dataset values must be finite")
    values = np.unique(np.concatenate([d1, d2]))
    if values.size > 2:
        raise InputError(f"random-weight profiles need datasets with at most two distinct values "
                         f"(both together); got {values.size}: {values[:4].tolist()}...")
    a = float(values[0])
    shift = float(values[-1] - values[0]) if values.size == 2 else 1.0
    s = shift / float(b)
    if s > _MAX_SHIFT:
        raise InputError(f"random-weight profiles need |c - a| / b <= {_MAX_SHIFT:g}; got {s:g}")
    laws = []
    for d in (d1, d2):
        at_c = int(np.sum(d == values[-1])) if values.size == 2 else 0
        laws.append(np.array([math.comb(at_c, m) * math.comb(n - at_c, k - m)
                              for m in range(k + 1)], dtype=float) / math.comb(n, k))
    return a, shift, s, tuple(laws)


def _beta_parts(k, alpha, s, x):
    """``h_m(x) = E[exp(-s |B_m - x|)]`` for m = 0..k records at c among the k chosen:
    ``B_0 = 0``, ``B_k = 1``, ``B_m ~ Beta(m alpha, (k - m) alpha)``; shape (k + 1, len(x))."""
    x = np.asarray(x, dtype=float)
    rows = [np.exp(-s * x)]
    rows += [beta_laplace(x, m * alpha, (k - m) * alpha, s) for m in range(1, k)]
    rows.append(np.exp(-s * (1 - x)))
    return np.vstack(rows)


def _dirichlet_loss_law(data, data_prime, k, b, alpha, resolution=None):
    """One random-weight release: the loss ``log p/q`` (p: ``data``) and its law under q, as
    nodes and masses, on the same panels (and tail atoms) as :func:`loss_nodes`."""
    a, shift, s, (law_p, law_q) = _two_valued(data, data_prime, k, b, alpha)
    ends = _beta_parts(k, float(alpha), s, np.array([0.0, 1.0]))
    p_end, q_end = law_p @ ends, law_q @ ends  # E[e^{-sB}] and E[e^{-s(1-B)}]
    tails = (math.log(p_end[0]), math.log(q_end[0]), math.log(p_end[1]), math.log(q_end[1]))

    def densities(z):
        h = _beta_parts(k, float(alpha), s, (z - a) / shift) / (2 * b)
        return law_p @ h, law_q @ h

    return _nodes_on_panels(np.array([a, a + shift]), b, resolution, tails, densities)


class DirichletProfile(_RoundedProfile):
    """delta(eps) of ``releases`` i.i.d. releases with random mixing weights on a concrete 1-D
    pair, both directions, bracketed: :meth:`delta_bounds` returns ``(lower, upper)``.

    A release picks a uniform k-subset S, draws ``W ~ Dirichlet(alpha, ..., alpha)`` and outputs
    ``sum_j W_j x_{S_j} + Lap(0, b)``. Scope: the two datasets hold at most two distinct values
    ``a < c`` together (N <= 12), so given S the mean is ``a + (c - a) B`` with ``B ~ Beta(m
    alpha, (k - m) alpha)``, m the number of chosen records at c (hypergeometric; ``B = 0`` at
    m = 0, 1 at m = k; k = 1 is the plain release). The density of y is the hypergeometric
    mixture over m of ``E_B[Lap(y - a - (c - a) B; b)]``, computed by :func:`beta_laplace`
    (split at the kink, Gauss-Jacobi at the Beta's singular ends, about 1e-14 relative); it is
    a constant times ``e^{-|y - cut|/b}`` outside [a, c], so the loss nodes, their rounding and
    the composition are those of :class:`ConcreteProfile` (panels of width ``b / resolution``,
    ends moved out by ``rel_tol`` relative plus ``tol``). The density is smooth inside (a, c)
    (no kinks but at a and c), so the panel quadrature is at least as accurate as for
    ConcreteProfile; the bracket is sound to that accuracy (tests: it holds
    :func:`dirichlet_exact_delta`, the hand-derived uniform case at 30 digits, and tends to
    ConcreteProfile as alpha grows)."""

    def __init__(self, data, data_prime, k: int, b: float, alpha: float, releases: int, *,
                 points: int = 1 << 20, tol: float = 1e-9, rel_tol: float = 3e-5,
                 resolution: int = 2048):
        if (isinstance(releases, bool) or not isinstance(releases, (int, np.integer))
                or not (1 <= releases <= 64)):
            raise InputError(f"releases must be an integer in 1..64; got {releases!r}")
        v, qm = _dirichlet_loss_law(data, data_prime, k, b, alpha, resolution)  # checks
        self.releases, self.alpha = int(releases), float(alpha)
        self.tol, self.rel_tol = tol, rel_tol
        pm = qm * np.exp(v)  # the same nodes under data: the law of the loss in direction 1
        dirs = []
        for loss, first in ((v, pm), (-v, qm)):  # (data, data'), then (data', data)
            keep = first > 0
            dirs.append([(loss[keep], first[keep], self.releases)])
        self._finish(dirs, points)


def dirichlet_exact_delta(data, data_prime, k: int, b: float, alpha: float,
                          eps: float) -> float:
    """delta(eps) of one random-weight release (see :class:`DirichletProfile`) on the concrete
    two-valued pair, both directions, by direct quadrature of ``int (p - e^eps q)_+`` on the
    line, independently of the node and rounding machinery: ``E_B[e^{-s|B - x|}]`` by its power
    series in s (``e^{-sx} sum_j s^j/j! E[B^j; B < x] + ...``: positive terms, each an
    incomplete beta function, summed past the Poisson(s) tail), the integral over [a, c]
    by adaptive quadrature (scipy ``quad``, relative 1e-12) between the roots of
    ``p - e^eps q`` (located on a 1601-point grid and refined by ``brentq``), and each tail
    beyond [a, c] in closed form (the ratio is constant there). Accuracy about 1e-12 relative
    (2e-16 against the hand-derived alpha = 1 case in the tests), short of two roots closer
    than the grid step (where the integrand is tiny)."""
    from scipy.integrate import quad
    from scipy.optimize import brentq
    from scipy.special import betainc, gammaln

    a, shift, s, (law_p, law_q) = _two_valued(data, data_prime, k, b, alpha)
    if isinstance(eps, bool) or not (isinstance(eps, (int, float, np.number))
                                     and math.isfinite(eps)):
        raise InputError(f"eps must be a finite number; got {eps!r}")
    alpha = float(alpha)
    terms = int(math.ceil(math.e ** 2 * s + 60))
    j = np.arange(terms)

    def series(x, p, q):
        # sum_j s^j/j! E[B^j; B < x] for B ~ Beta(p, q), scaled by e^{-sx}
        logc = (j * math.log(s) - gammaln(j + 1) + gammaln(p + j) - gammaln(p)
                + gammaln(p + q) - gammaln(p + q + j))
        inc = betainc(p + j[None, :], q, x[:, None])
        return np.sum(np.exp(logc[None, :] - s * x[:, None]) * inc, axis=1)

    def parts(x):
        x = np.atleast_1d(np.asarray(x, dtype=float))
        rows = [np.exp(-s * x)]
        for m in range(1, k):
            p, q = m * alpha, (k - m) * alpha
            # e^{-sx} int_0^x w e^{sB} + e^{-s(1-x)} int_0^{1-x} w~ e^{sG}, G = 1 - B ~ Beta(q, p)
            rows.append(series(x, p, q) + series(1 - x, q, p))
        rows.append(np.exp(-s * (1 - x)))
        return np.vstack(rows)

    ends = parts([0.0, 1.0])
    out = []
    for lp, lq in ((law_p, law_q), (law_q, law_p)):
        # tails: beyond [a, c] the densities are factor * e^{-|y - end|/b} / (2b): mass / 2
        total = sum(0.5 * max(0.0, lp @ ends[:, i] - math.exp(eps) * (lq @ ends[:, i]))
                    for i in (0, 1))

        def f(x):  # (p - e^eps q) in the variable x = (y - a)/(c - a), dy = (c - a) dx
            h = parts(x)
            return (lp @ h - math.exp(eps) * (lq @ h)) * shift / (2 * b)

        grid = np.linspace(0.0, 1.0, 1601)
        vals = f(grid)
        cuts = [0.0, 1.0] + grid[vals == 0].tolist()
        for i in np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)[0]:
            cuts.append(brentq(lambda t: float(f(t)[0]), grid[i], grid[i + 1], xtol=1e-15,
                               rtol=1e-15))
        cuts = sorted(set(cuts))
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            if hi > lo and f((lo + hi) / 2)[0] > 0:
                total += quad(lambda t: float(f(t)[0]), lo, hi, epsabs=1e-15, epsrel=1e-12,
                              limit=200)[0]
        out.append(total)
    return max(0.0, max(out))
