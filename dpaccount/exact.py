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
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from .errors import InputError

__all__ = ["subset_means", "exact_delta", "loss_nodes", "release_loss_law", "ConcreteProfile"]

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


def loss_nodes(mp: np.ndarray, mq: np.ndarray, b: float, resolution: int | None = None):
    """1-D: the loss ``log p/q`` and its law under Q (the release of the *second* dataset), as
    nodes and masses: the two tail atoms plus quadrature nodes in between."""
    mp, mq = np.ravel(mp), np.ravel(mq)
    cuts = np.unique(np.concatenate([mp, mq]))
    lo, hi = cuts[0], cuts[-1]
    # tails: for z <= lo every component is e^{(z - m)/b}/(2b); ratio is constant
    lp_left = np.log(np.mean(np.exp(-(mp - lo) / b)))
    lq_left = np.log(np.mean(np.exp(-(mq - lo) / b)))
    lp_right = np.log(np.mean(np.exp(-(hi - mp) / b)))
    lq_right = np.log(np.mean(np.exp(-(hi - mq) / b)))
    vals = [lp_left - lq_left, lp_right - lq_right]
    masses = [0.5 * math.exp(lq_left), 0.5 * math.exp(lq_right)]  # Q-mass of each tail
    if hi > lo:
        z, w = _panels_1d(cuts, b, resolution)
        p = _mix_density_1d(z, mp, b)
        q = _mix_density_1d(z, mq, b)
        vals = np.concatenate([vals, np.log(p) - np.log(q)])
        masses = np.concatenate([masses, w * q])
    return np.asarray(vals, dtype=float), np.asarray(masses, dtype=float)


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


class ConcreteProfile:
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
        self._dirs = []
        for a, c in ((data, data_prime), (data_prime, data)):
            per_phase = []
            for (k, b, _), t in zip(phases, counts):
                v, qm = release_loss_law(a, c, k, b, labels, resolution)
                pm = qm * np.exp(v)  # the law under the first distribution
                keep = pm > 0
                per_phase.append((v[keep], pm[keep], t))
            self._dirs.append(per_phase)
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
