"""The privacy loss of one DP-InstaHide release: the subsampled Laplace pair and revealed mixtures.

The subsampled Laplace pair of one release (docs/theory.md Sec. 3; Zhu, Dong, Wang 2022, Def. 7)
is, with ``s`` the release's L1 shift, ``eps0 = s/b`` and ``q`` the inclusion probability,

    P = (1 - q) Lap(0, b) + q Lap(s, b),     Q = Lap(0, b).

Its loss is composed in one of three directions (``PQ``: log p/q under Q; ``QP``: log q/p under
P; ``sym``: the symmetrised pair of Zhu, Dong, Wang 2022, Sec. 5, ``proofs/symmetrised_pair.py``).
Which direction a run needs is the accountant's decision (:mod:`dpaccount.accountants.pld`);
this module only computes the laws. No policy here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from ..errors import InputError

__all__ = ["LaplaceMixturePair", "LossLaw", "DIRECTIONS", "MAX_EPS0", "check_direction"]

#: Largest eps0 the lattice handles: the reference mass of the top loss is ~e^-eps0 and must not
#: vanish in double precision next to its e^eps0-weighted contribution.
MAX_EPS0 = 30.0

#: The loss laws of a pair: ``PQ`` (log p/q under Q), ``QP`` (log q/p under P), ``sym`` (the
#: symmetrised pair).
DIRECTIONS = ("PQ", "QP", "sym")

_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
    return direction


@dataclass(frozen=True)
class LaplaceMixturePair:
    """``P = (1-q) Lap(0,b) + q Lap(s,b)``, ``Q = Lap(0,b)``: the subsampled Laplace pair of one
    DP-InstaHide release (also of Poisson-sampled Laplace under add/remove). With ``q = 1`` it is
    the plain Laplace pair of shift ``s``."""

    q: float
    s: float
    b: float

    def __post_init__(self):
        if not (0.0 < self.q <= 1.0):
            raise InputError(f"q must be in (0, 1]; got {self.q!r}")
        for name in ("s", "b"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise InputError(f"{name} must be a positive finite number; got {v!r}")
        if self.eps0 > MAX_EPS0:
            raise InputError(
                f"eps0 = s/b must be at most {MAX_EPS0:g} for the PLD lattice; got {self.eps0:g}"
            )

    @property
    def eps0(self) -> float:
        return self.s / self.b

    def top_loss(self) -> float:
        """The largest loss of the ``PQ`` and ``sym`` laws: ``eps1 = log(1 - q + q e^eps0)``."""
        return float(self.log_ratio(self.eps0))

    # The loss as a function of u = (|z| - |z - s|)/b in [-eps0, eps0]:
    #   log p/q = log(1 - q + q e^u)   (monotone increasing in u)
    def log_ratio(self, u):
        """``log(1 - q + q e^u)``, the loss log p/q as a function of u, without overflow."""
        u = np.asarray(u, dtype=float)
        log1mq = math.log1p(-self.q) if self.q < 1.0 else -math.inf
        with np.errstate(over="ignore"):
            small = np.log1p(self.q * np.expm1(np.minimum(u, 700.0)))
        big = np.logaddexp(log1mq, math.log(self.q) + u)
        return np.where(u <= 700.0, small, big)

    def _log_density_u(self, u, reference: str):
        """Log density of u on (-eps0, eps0) under the reference measure; z = (b u + s)/2."""
        z = (self.b * u + self.s) / 2.0
        log_dz = math.log(self.b / 2.0)
        log_f0 = -z / self.b - math.log(2 * self.b)  # Lap(0,b) on z in (0, s)
        if reference == "Q":
            return log_f0 + log_dz
        log_fs = -(self.s - z) / self.b - math.log(2 * self.b)  # Lap(s,b) on z in (0, s)
        log1mq = math.log1p(-self.q) if self.q < 1.0 else -math.inf
        return np.logaddexp(log1mq + log_f0, math.log(self.q) + log_fs) + log_dz

    def _log_atoms(self, reference: str):
        """log masses at u = -eps0 (z <= 0) and u = +eps0 (z >= s)."""
        e0, l2 = self.eps0, math.log(0.5)
        if reference == "Q":
            return l2, l2 - e0
        log1mq = math.log1p(-self.q) if self.q < 1.0 else -math.inf
        lq = math.log(self.q)
        return (float(np.logaddexp(log1mq + l2, lq + l2 - e0)),
                float(np.logaddexp(log1mq + l2 - e0, lq + l2)))

    def log_zero_atom(self) -> float:
        """log of the ``sym`` law's atom at loss 0: ``1 - Q(u > 0) - P(u > 0)``, which is
        ``(1-q)(1 - e^{-eps0/2})`` (``proofs/symmetrised_pair.py``)."""
        log1mq = math.log1p(-self.q) if self.q < 1.0 else -math.inf
        return log1mq + math.log(-math.expm1(-self.eps0 / 2.0))

    def u_of_loss(self, loss, direction: str):
        """Inverse of the loss map: the u at which the loss equals ``loss`` (monotone). For
        ``sym`` the u in [0, eps0] where the positive part has loss ``|loss|`` (the mirror of a
        negative loss ``-l`` is the point of loss ``l``)."""
        loss = np.asarray(loss, dtype=float)
        ell = {"PQ": loss, "QP": -loss, "sym": np.abs(loss)}[check_direction(direction)]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            small = np.log((np.expm1(np.minimum(ell, 700.0)) + self.q) / self.q)
            # ell > 700: log(e^ell - 1 + q) - log q = ell + log1p((q - 1) e^-ell) - log q
            big = ell + np.log1p((self.q - 1.0) * np.exp(-np.maximum(ell, 700.0))) \
                - math.log(self.q)
        return np.where(ell <= 700.0, small, big)

    def u_range(self, direction: str) -> tuple[float, float]:
        """The u-interval whose points the law of ``direction`` is built from."""
        return (0.0, self.eps0) if check_direction(direction) == "sym" else (-self.eps0,
                                                                              self.eps0)

    def _slices(self, edges_u, reference: str, sign: float):
        """Mass (log) and conditional mean of ``sign * loss`` of each u-slice under the
        reference measure (16-point Gauss-Legendre per slice)."""
        a, bnd = edges_u[:-1], edges_u[1:]
        mid, half = (a + bnd) / 2, (bnd - a) / 2
        u = mid[:, None] + half[:, None] * _GL_X[None, :]
        with np.errstate(divide="ignore"):
            logd = self._log_density_u(u, reference) + np.log(half[:, None] * _GL_W[None, :])
        log_mass = logsumexp(logd, axis=1)
        ok = np.isfinite(log_mass)
        wts = np.exp(logd[ok] - log_mass[ok, None])  # normalised within each slice
        mean = sign * (self.log_ratio(u[ok]) * wts).sum(axis=1)
        return mean, log_mass[ok]

    def loss_pieces(self, direction: str, edges_u: np.ndarray):
        """The loss distribution of one release for ``direction`` as ``(values, log_masses)``
        under the direction's reference measure: atoms plus one piece per u-slice
        ``(edges_u[i], edges_u[i+1])`` of the continuous part, given by its mass and conditional
        mean. Masses are in log space: under Q the top atom has mass ~e^-eps0, which underflows
        for large eps0 while its weight e^loss does not vanish.

        * ``PQ``: loss ``log p/q`` under Q; ``QP``: loss ``log q/p`` under P; both with the two
          atoms (z <= 0 and z >= s).
        * ``sym``: under the symmetrised pair's reference, the points u > 0 with their loss and
          Q-mass, the same points with the opposite loss and P-mass, and an atom at 0
          (:meth:`log_zero_atom`); ``edges_u`` is cut to [0, eps0]."""
        direction = check_direction(direction)
        e0 = self.eps0
        lo_q, hi_q = self._log_atoms("Q")
        lo_p, hi_p = self._log_atoms("P")
        top = self.top_loss()
        if direction == "sym":
            edges = np.unique(np.concatenate([[0.0, e0], edges_u[(edges_u > 0) & (edges_u < e0)]]))
            m_q, lm_q = self._slices(edges, "Q", 1.0)
            m_p, lm_p = self._slices(edges, "P", -1.0)
            # renormalise each continuous part to its analytic total: Q(0 < u < eps0) =
            # (e^{-eps0/2} - e^{-eps0})/2 and P(0 < u < eps0) = (1-q) of that + q (1 - e^{-eps0/2})/2
            lq_cont = math.log(0.5) - e0 / 2 + math.log(-math.expm1(-e0 / 2))
            log1mq = math.log1p(-self.q) if self.q < 1.0 else -math.inf
            lp_cont = float(np.logaddexp(log1mq + lq_cont, math.log(self.q) + math.log(0.5)
                                         + math.log(-math.expm1(-e0 / 2))))
            lm_q = lm_q + lq_cont - logsumexp(lm_q)
            lm_p = lm_p + lp_cont - logsumexp(lm_p)
            values = np.concatenate([m_q, [top], m_p, [-top], [0.0]])
            log_masses = np.concatenate([lm_q, [hi_q], lm_p, [hi_p], [self.log_zero_atom()]])
            return values, log_masses
        ref, sign = ("Q", 1.0) if direction == "PQ" else ("P", -1.0)
        mean, log_mass = self._slices(edges_u, ref, sign)
        lo_m, hi_m = (lo_q, hi_q) if ref == "Q" else (lo_p, hi_p)
        values = np.concatenate([[sign * float(self.log_ratio(-e0))], mean, [sign * top]])
        log_masses = np.concatenate([[lo_m], log_mass, [hi_m]])
        # quadrature masses: renormalise the continuous part to its analytic total: the mass of
        # 0 < z < s, (1 - e^{-eps0}) / 2 under both Lap(0, b) and Lap(s, b), so under either
        # reference (computed directly: 1 - atoms cancels to 0 in doubles for tiny eps0)
        log_cont = math.log(-math.expm1(-e0)) + math.log(0.5)
        log_masses[1:-1] += log_cont - logsumexp(log_masses[1:-1])
        return values, log_masses


@dataclass(frozen=True)
class LossLaw:
    """The law of one release's privacy loss as a *revealed* mixture: with weight ``w`` the
    release is a draw from ``pair``'s law in ``direction`` (``pair=None``: a loss of exactly 0,
    the record surely absent), and which component it came from is visible to the adversary
    (a released soft label shows the class count). Built by :func:`dominating_laws` and
    :func:`attained_laws`."""

    components: tuple  # ((weight, LaplaceMixturePair | None, direction), ...)

    def __post_init__(self):
        total = 0.0
        for w, pair, direction in self.components:
            if not (w > 0 and math.isfinite(w)):
                raise InputError(f"loss-law weights must be positive; got {w!r}")
            if pair is not None:
                check_direction(direction)
            total += w
        if not self.components or abs(total - 1.0) > 1e-9:
            raise InputError(f"loss-law weights must sum to 1; got {total!r}")

    @property
    def pairs(self):
        return [(w, p, d) for w, p, d in self.components if p is not None]

    def pieces(self, lattice=None, *, coarse: bool = False):
        """``(values, log_masses)`` of all components, each piece inside one cell of
        ``lattice`` (slices are cut at the preimages of the lattice points, so the two-point
        split of a piece's mean dominates the piece in convex order)."""
        vals, logm = [], []
        for w, pair, direction in self.components:
            lw = math.log(w)
            if pair is None:
                vals.append(np.zeros(1))
                logm.append(np.array([lw]))
                continue
            lo, hi = pair.u_range(direction)
            grid = np.linspace(lo, hi, 257 if coarse else 4097)
            if lattice is not None:
                pre = pair.u_of_loss(lattice, direction)
                pre = pre[np.isfinite(pre) & (pre > lo) & (pre < hi)]
                grid = np.unique(np.concatenate([grid, pre]))
            v, m = pair.loss_pieces(direction, grid)
            vals.append(v)
            logm.append(m + lw)
        return np.concatenate(vals), np.concatenate(logm)

