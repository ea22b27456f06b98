"""Brute-force privacy profile of one-dimensional "permutation mixing", for tiny N.

This module is a self-contained reference computation (numpy only).  It is meant as
an independent cross-check for tiny datasets, not as an accountant.

Mechanism
---------
A dataset is ``N`` real numbers ``x_1..x_N``.  One epoch draws ``k`` independent,
uniformly random permutations ``pi_1..pi_k`` of ``{1..N}`` and releases, for the
first ``m`` slots ``j = 1..m`` (``m = N`` is a full epoch),

    y_j = (1/k) * sum_i x_{pi_i(j)} + Z_j,      Z_j iid Laplace(0, b),

with density ``exp(-|z|/b) / (2b)``.  Only the vector ``(y_1..y_m)`` in slot order is
released, not the permutations.  ``E`` epochs are ``E`` independent repetitions
(fresh permutations and noise), all released.

Neighbouring relation: ``D`` and ``D'`` agree except that ``x_1`` is replaced by
``x_1'`` (an add/remove relation is not modelled).  The privacy profile is

    delta(eps) = int (p_D(y) - e^eps p_D'(y))_+ dy      (over R^m, or R^{mE}),

where ``p_D(y) = (N!)^{-k} sum_tuples prod_j g(y_j - mu_j(tuple))``, ``g`` the
Laplace density and ``mu_j`` the slot mean of the tuple.  Equivalently
``delta(eps) = E_{y~p_D}[(1 - e^{eps - L(y)})_+]`` with ``L = log p_D - log p_D'``.
Any real ``eps`` is accepted (for ``eps < 0`` the same integral is returned).

Exact computation (``permutation_epoch_delta``)
-----------------------------------------------
* All ``(N!)^k`` tuples are enumerated; their slot-mean vectors are grouped into a
  dense weight tensor ``W[a_1..a_m]`` indexed by the sorted distinct slot-mean
  values ("breakpoints") of coordinate ``j``, the union over ``D`` and ``D'``.  Then
  ``p_D(y) = sum_a W[a] prod_j g(y_j - bp_j[a_j])`` (a Tucker form), evaluated on
  tensor grids by successive mode products.
* Each coordinate line is split into left tail ``(-inf, bp_min]``, interior
  ``[bp_min, bp_max]`` and right tail ``[bp_max, inf)``; ``R^m`` splits into ``3^m``
  regions.  On a right tail every Laplace factor equals
  ``e^{-(y_j - bp_max)/b} g(bp_max - bp)`` for both datasets, so ``(p_D - e^eps
  p_D')_+`` factorises and the tail integral is exactly ``b`` times the integrand
  at ``y_j = bp_max`` (left tail likewise).  Tails are therefore integrated exactly:
  there is no truncation and no dropped mass.
* In a region with interior coordinates, the first interior coordinate is
  integrated in closed form: between consecutive breakpoints ``[l, r]`` (width
  ``w``) the integrand is ``h(t) = P e^{-t/b} + Q e^{-(w-t)/b}`` (``t = y - l``), with
  ``P, Q`` linear in ``e^eps``; ``h`` has at most one zero
  ``t* = (w - b log(-Q/P)) / 2``, and ``int (h)_+`` is an explicit sum of
  exponentials.  The remaining interior coordinates are integrated by tensor
  Gauss-Legendre on panels whose edges contain every breakpoint (panels longer
  than ``max_panel * b`` are subdivided).  After the closed-form inner integration
  the kink of ``(.)_+`` is integrated out and the outer integrand is C^1 (weaker
  singularities remain where the zero set of ``p_D - e^eps p_D'`` is tangent to
  the inner direction), so the rule converges, if only algebraically.
* The released coordinates are exchangeable (relabelling slots by a permutation
  of ``{1..m}`` is a bijection of permutation tuples), so by default only sorted
  index tuples of the equal-node outer coordinates are evaluated, with their
  multiplicities (``symmetry=False`` evaluates the full grid).
* Two epochs: ``delta_2(eps) = int p_D(y) H(eps - L(y)) dy`` where
  ``H(e) = int (p_D - e^e p_D')_+`` is the one-epoch profile at any real ``e``.
  The one-epoch law of ``L`` under ``p_D`` is taken as weighted nodes (tails exact,
  interior Gauss-Legendre).  Its atoms ``a_c`` at ``L_c`` come from the ``2^m`` corner
  regions (every coordinate in a tail, where ``L`` is constant); they are also the
  only kinks of ``H = H_atom + H_cont``, ``H_atom(e) = sum_c a_c (1 - e^{e - L_c})_+``.
  Splitting both factors,
  ``delta_2 = sum_{c,d} a_c a_d (1 - e^{eps-L_c-L_d})_+ + 2 sum_c a_c H_cont(eps - L_c)
  + E_cont[H_cont(eps - L)]``; the first two terms are evaluated directly, in the
  last one the C^1 function ``H_cont`` is interpolated linearly on a grid of ``e``
  (which contains the ``L_c``), refined until midpoint deviations are small.
  Cost: about 1-3 s for N = 3; N = 4 works for m <= 3 (m = 3: ~8 s) but a full
  N = 4 epoch (m = 4) with two epochs took over 10 minutes.

Error argument.  Tails are exact, so the only approximations are (i) the
Gauss-Legendre rule for the outer coordinates and (ii) for two epochs the linear
interpolation of ``H_cont``.  (i) is estimated a posteriori: everything is computed with
``nodes[0]`` and ``nodes[1]`` points per panel, the finer value is returned and
``|fine - coarse|`` is reported (the coarse rule's error, so a conservative estimate
of the fine rule's error for a convergent rule; not a rigorous bound).  (ii) is
estimated by the largest midpoint deviation of the linear interpolant on the grid
of twice the final spacing (interpolation error scales like spacing^2, so this is
about 4x the error of the interpolant used), times the total node mass.  A
floating-point allowance of ``1e-12`` is added.  ``err`` is the sum.  In tests the
reported ``err`` exceeded the change seen when refining the rule further (e.g.
``nodes=(16, 24), max_panel=0.25``), and the closed forms for N = 1 (Laplace, one
and two epochs) were matched to 1e-8 or better.  Identical datasets return the
exact ``max(0, 1 - e^eps)`` with ``err = 0``.  Densities are formed without
rescaling, so ``b`` must not be tiny relative to the spread of the data (about
``spread * m / b < 700``; the two-epoch node generation raises
``FloatingPointError`` on underflow).

Monte Carlo (``permutation_monte_carlo_delta``)
-----------------------------------------------
Independent code path: permutations are drawn by arg-sorting uniforms, noise with
``numpy``'s Laplace sampler, and ``L(y)`` is evaluated from an ungrouped enumeration
of all tuples (log-sum-exp); the estimate is the sample mean of
``(1 - e^{eps - L})_+`` (``L`` summed over epochs) with its standard error.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .errors import InputError

__all__ = ["permutation_epoch_delta", "permutation_monte_carlo_delta"]

_MAX_TUPLES = 2_000_000
_ROUNDOFF = 1e-12


# ----------------------------------------------------------------------------- inputs
def _validate(data, data_prime, k, b, m, epochs, eps):
    x = np.asarray(data, dtype=float)
    xp = np.asarray(data_prime, dtype=float)
    if x.ndim != 1 or x.size < 1:
        raise InputError("data must be a non-empty 1-D sequence of numbers")
    if xp.ndim != 1 or xp.size != x.size:
        raise InputError("data_prime must be 1-D with the same length as data")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(xp))):
        raise InputError("data and data_prime must be finite")
    if not np.array_equal(x[1:], xp[1:]):
        raise InputError("data_prime must differ from data only in the first entry")
    n = x.size
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError("k must be an integer")
    k = int(k)
    if k < 1 or k > n:
        raise InputError(f"k must satisfy 1 <= k <= N = {n}, got {k}")
    if math.factorial(n) ** k > _MAX_TUPLES:
        raise InputError(f"k: (N!)^k = {math.factorial(n) ** k} permutation tuples is too many")
    if isinstance(b, bool) or not isinstance(b, (int, float, np.integer, np.floating)):
        raise InputError("b must be a positive finite number")
    b = float(b)
    if not (math.isfinite(b) and b > 0):
        raise InputError(f"b must be a positive finite number, got {b}")
    if m is None:
        m = n
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
        raise InputError("m must be an integer or None")
    m = int(m)
    if m < 1 or m > n:
        raise InputError(f"m must satisfy 1 <= m <= N = {n}, got {m}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise InputError("epochs must be a positive integer")
    epochs = int(epochs)
    scalar = np.ndim(eps) == 0
    e = np.atleast_1d(np.asarray(eps, dtype=float)).ravel()
    if not np.all(np.isfinite(e)):
        raise InputError("eps must be finite")
    return x, xp, k, b, m, epochs, e, scalar


def _shape_out(a, eps_in, scalar):
    if scalar:
        return float(a[0])
    return a.reshape(np.shape(eps_in))


# ----------------------------------------------------------------------- exact setup
def _tuple_means(x, k, m):
    """Slot means of the first m slots for all (N!)^k permutation tuples."""
    perms = np.array(list(itertools.permutations(range(x.size))))
    vals = x[perms[:, :m]]  # (N!, m)
    tot = vals
    for _ in range(k - 1):
        tot = (tot[:, None, :] + vals[None, :, :]).reshape(-1, m)
    return tot / k


class _Setup:
    def __init__(self, x, xp, k, b, m):
        self.b, self.m = b, m
        mu_d, mu_p = _tuple_means(x, k, m), _tuple_means(xp, k, m)
        self.bps = [np.unique(np.concatenate([mu_d[:, j], mu_p[:, j]])) for j in range(m)]
        shape = tuple(len(bp) for bp in self.bps)
        self.W = []
        for mu in (mu_d, mu_p):
            W = np.zeros(shape)
            idx = tuple(np.searchsorted(self.bps[j], mu[:, j]) for j in range(m))
            np.add.at(W, idx, 1.0 / mu.shape[0])
            self.W.append(W)
        self.same_bps = all(np.array_equal(self.bps[0], bp) for bp in self.bps)

    def g(self, y, j):
        """Laplace density matrix g(y_i - bp_j[a]), shape (len(y), B_j)."""
        return np.exp(-np.abs(y[:, None] - self.bps[j][None, :]) / self.b) / (2 * self.b)


def _gl_nodes(bp, b, n, max_panel):
    """Gauss-Legendre nodes/weights on [bp_min, bp_max], panel edges at breakpoints."""
    if len(bp) < 2:
        return np.zeros(0), np.zeros(0)
    xs, ws = np.polynomial.legendre.leggauss(n)
    nodes, weights = [], []
    for lo, hi in zip(bp[:-1], bp[1:]):
        parts = max(1, int(math.ceil((hi - lo) / (max_panel * b))))
        edges = np.linspace(lo, hi, parts + 1)
        edges[-1] = hi
        for a, c in zip(edges[:-1], edges[1:]):
            nodes.append(0.5 * (a + c) + 0.5 * (c - a) * xs)
            weights.append(0.5 * (c - a) * ws)
    return np.concatenate(nodes), np.concatenate(weights)


def _coord_nodes(setup, t, j, gl):
    """Nodes/weights of coordinate j for region type t (0 left tail, 1 interior, 2 right tail)."""
    bp = setup.bps[j]
    if t == 0:
        return bp[:1].copy(), np.array([setup.b])
    if t == 2:
        return bp[-1:].copy(), np.array([setup.b])
    return gl[j]


def _contract(W, mats, skip=None):
    """Mode products W x_j mats[j] for all j != skip (axes keep their order)."""
    T = W
    order = sorted((j for j in range(len(mats)) if j != skip), key=lambda j: mats[j].shape[0])
    for j in order:
        T = np.moveaxis(np.tensordot(T, mats[j], axes=([j], [1])), -1, j)
    return T


def _sym_select(shape, axes):
    """Flat-index selection of the grid (C order) keeping nondecreasing indices along
    ``axes`` (which all carry the same node list), with permutation multiplicities."""
    grids = np.indices(shape).reshape(len(shape), -1)
    keep = np.ones(grids.shape[1], dtype=bool)
    for a0, a1 in zip(axes[:-1], axes[1:]):
        keep &= grids[a0] <= grids[a1]
    sel = np.flatnonzero(keep)
    sub = np.sort(grids[np.array(axes)][:, sel], axis=0)
    mult = np.full(sel.size, float(math.factorial(len(axes))))
    # divide by the factorials of the run lengths of equal indices
    run = np.ones(sel.size)
    for r in range(1, len(axes)):
        same = sub[r] == sub[r - 1]
        run = np.where(same, run + 1, 1.0)
        mult /= np.where(same, run, 1.0)
    return sel, mult


def _pos_int(P, Q, w, b):
    """int_0^w (P e^{-t/b} + Q e^{-(w-t)/b})_+ dt, elementwise (w broadcasts on last axis)."""
    full = (P >= 0) & (Q >= 0)
    left = (P > 0) & (Q < 0)  # positive on [0, t*]
    right = (P < 0) & (Q > 0)  # positive on [t*, w]
    mixed = left | right
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mixed, -Q / np.where(mixed, P, 1.0), 1.0)
        tstar = 0.5 * (w - b * np.log(ratio))
    tstar = np.clip(tstar, 0.0, w)
    s1 = np.where(right, tstar, 0.0)
    s2 = np.where(full | right, w, np.where(left, tstar, 0.0))
    return b * (P * (np.exp(-s1 / b) - np.exp(-s2 / b))
                + Q * (np.exp(-(w - s2) / b) - np.exp(-(w - s1) / b)))


def _hockey_level(setup, n, max_panel, mults, symmetry, corners=True, chunk=65536):
    """One-epoch int (p_D - c p_D')_+ for each multiplier c in ``mults`` (rule with n nodes);
    with ``corners=False`` the corner regions (all coordinates in tails) are left out."""
    b, m = setup.b, setup.m
    gl = [_gl_nodes(setup.bps[j], b, n, max_panel) for j in range(m)]
    out = np.zeros(mults.size)
    for types in itertools.product((0, 1, 2), repeat=m):
        inner = [j for j in range(m) if types[j] == 1]
        if any(len(setup.bps[j]) < 2 for j in inner):
            continue  # interior of zero length
        nw = [_coord_nodes(setup, types[j], j, gl) for j in range(m)]
        if not inner:  # corner region: every coordinate in a tail
            if not corners:
                continue
            mats = [setup.g(nw[j][0], j) for j in range(m)]
            p0 = float(np.ravel(_contract(setup.W[0], mats))[0])
            q0 = float(np.ravel(_contract(setup.W[1], mats))[0])
            out += b ** m * np.maximum(p0 - mults * q0, 0.0)
            continue
        js = inner[0]
        outer = [j for j in range(m) if j != js]
        mats = [None if j == js else setup.g(nw[j][0], j) for j in range(m)]
        cd = np.moveaxis(_contract(setup.W[0], mats, skip=js), js, -1)
        cp = np.moveaxis(_contract(setup.W[1], mats, skip=js), js, -1)
        oshape = cd.shape[:-1]
        bstar = cd.shape[-1]
        cd, cp = cd.reshape(-1, bstar), cp.reshape(-1, bstar)
        wt = np.ones(1)
        for j in outer:
            wt = np.multiply.outer(wt, nw[j][1]).ravel()
        sym_axes = [i for i, j in enumerate(outer) if types[j] == 1]
        if symmetry and setup.same_bps and len(sym_axes) >= 2:
            sel, mult = _sym_select(oshape, sym_axes)
            cd, cp, wt = cd[sel], cp[sel], wt[sel] * mult
        # closed-form integration over the interior cells of coordinate js
        bp = setup.bps[js]
        lo, hi = bp[:-1], bp[1:]
        w = hi - lo
        a = np.arange(bstar)[:, None]
        c = np.arange(bstar - 1)[None, :]
        MP = np.where(a <= c, np.exp(-np.abs(lo[None, :] - bp[:, None]) / b), 0.0) / (2 * b)
        MQ = np.where(a >= c + 1, np.exp(-np.abs(bp[:, None] - hi[None, :]) / b), 0.0) / (2 * b)
        for s in range(0, cd.shape[0], chunk):
            pd, qd = cd[s:s + chunk] @ MP, cd[s:s + chunk] @ MQ
            pp, qp = cp[s:s + chunk] @ MP, cp[s:s + chunk] @ MQ
            ws = wt[s:s + chunk]
            for i, cm in enumerate(mults):
                out[i] += ws @ _pos_int(pd - cm * pp, qd - cm * qp, w, b).sum(axis=1)
    return out


def _epoch_nodes(setup, n, max_panel, symmetry):
    """One-epoch law of L under p_D as weighted nodes (tails exact, interior GL).

    Returns (weights, L values, atoms) where atoms are the L values of the corner
    regions (all coordinates in tails), the only places L is constant on a set of
    positive measure."""
    b, m = setup.b, setup.m
    gl = [_gl_nodes(setup.bps[j], b, n, max_panel) for j in range(m)]
    ws, ls, atoms = [], [], []
    for types in itertools.product((0, 1, 2), repeat=m):
        inner = [j for j in range(m) if types[j] == 1]
        if any(len(setup.bps[j]) < 2 for j in inner):
            continue
        nw = [_coord_nodes(setup, types[j], j, gl) for j in range(m)]
        mats = [setup.g(nw[j][0], j) for j in range(m)]
        p = _contract(setup.W[0], mats)
        q = _contract(setup.W[1], mats)
        shape = p.shape
        p, q = np.ravel(p), np.ravel(q)
        wt = np.ones(1)
        for j in range(m):
            wt = np.multiply.outer(wt, nw[j][1]).ravel()
        if symmetry and setup.same_bps and len(inner) >= 2:
            sel, mult = _sym_select(shape, inner)
            p, q, wt = p[sel], q[sel], wt[sel] * mult
        if np.any(p <= 0) or np.any(q <= 0):
            raise FloatingPointError("density underflow; b is too small relative to the data "
                                     "spread")
        L = np.log(p) - np.log(q)
        if inner:
            ws.append(p * wt)
            ls.append(L)
        else:
            atoms.append((float(p[0] * wt[0]), float(L[0])))
    atoms = np.array(atoms).reshape(-1, 2)
    return np.concatenate(ws), np.concatenate(ls), atoms[:, 0], atoms[:, 1]


def _two_epoch_level(setup, n, max_panel, eps, symmetry, interp_tol):
    """Two-epoch profile with the rule of n nodes per panel; returns (values, interp_err).

    The one-epoch law of L under p_D is mu = sum_c a_c delta_{L_c} + mu_cont (atoms from
    the corner regions), and H = H_atom + H_cont accordingly, where
    H_atom(e) = sum_c a_c (1 - e^{e - L_c})_+ carries all kinks of H.  Then
        delta_2(eps) = sum_{c,d} a_c a_d (1 - e^{eps - L_c - L_d})_+
                       + 2 sum_c a_c H_cont(eps - L_c) + E_{mu_cont}[H_cont(eps - L)],
    the first two terms evaluated directly, the last one with H_cont (C^1) linearly
    interpolated on a grid."""
    w1, l1, a_c, l_c = _epoch_nodes(setup, n, max_panel, symmetry)
    # atoms x atoms
    vals = np.array([a_c @ np.maximum(1.0 - np.exp(e - l_c[:, None] - l_c[None, :]), 0.0) @ a_c
                     for e in eps])
    # atoms x continuous (twice, by symmetry of the double integral)
    ev = (eps[:, None] - l_c[None, :]).ravel()
    hc = _hockey_level(setup, n, max_panel, np.exp(ev), symmetry, corners=False)
    vals += 2.0 * (hc.reshape(eps.size, l_c.size) @ a_c)
    if w1.size == 0:
        return vals, 0.0
    # continuous x continuous
    lo, hi = eps.min() - l1.max(), eps.max() - l1.min()
    span = max(hi - lo, 1e-9)
    grid = np.linspace(lo, hi, max(9, int(math.ceil(span / 0.02)) + 1))
    grid = np.unique(np.concatenate([grid, l_c[(l_c > lo) & (l_c < hi)]]))
    hv = _hockey_level(setup, n, max_panel, np.exp(grid), symmetry, corners=False)
    for _ in range(12):
        mid = 0.5 * (grid[:-1] + grid[1:])
        hm = _hockey_level(setup, n, max_panel, np.exp(mid), symmetry, corners=False)
        dev = float(np.max(np.abs(hm - 0.5 * (hv[:-1] + hv[1:]))))
        g2 = np.empty(grid.size + mid.size)
        h2 = np.empty_like(g2)
        g2[0::2], g2[1::2] = grid, mid
        h2[0::2], h2[1::2] = hv, hm
        grid, hv = g2, h2
        if dev <= interp_tol:
            break
    vals += np.array([w1 @ np.interp(e - l1, grid, hv) for e in eps])
    return vals, dev * float(w1.sum())


# -------------------------------------------------------------------------- public API
def permutation_epoch_delta(data, data_prime, k, b, eps, m=None, epochs=1, *,
                            nodes=(6, 10), max_panel=0.5, symmetry=True, interp_tol=2e-6):
    """Privacy profile delta(eps) of permutation mixing by deterministic quadrature.

    Parameters: ``data``, ``data_prime`` (length-N sequences differing at most in the
    first entry), ``k`` permutations per epoch (1 <= k <= N), Laplace scale ``b > 0``,
    ``eps`` (float or array), ``m`` released slots (default N), ``epochs`` (1 or 2).
    Keyword-only tuning: ``nodes`` = (coarse, fine) Gauss-Legendre points per panel,
    ``max_panel`` = longest panel in units of b, ``symmetry`` = use exchangeability of
    the slots, ``interp_tol`` = target midpoint deviation of the two-epoch H grid.

    Returns ``(value, err)`` (floats for scalar eps, arrays otherwise): the fine-rule
    value and an error estimate (see the module docstring)."""
    x, xp, k, b, m, epochs, e, scalar = _validate(data, data_prime, k, b, m, epochs, eps)
    if epochs not in (1, 2):
        raise InputError(f"epochs must be 1 or 2 for the exact computation, got {epochs}")
    n_c, n_f = (int(v) for v in nodes)
    if not (1 <= n_c < n_f):
        raise InputError("nodes must be (coarse, fine) with 1 <= coarse < fine")
    if x[0] == xp[0]:  # identical datasets: L = 0 identically
        val = np.maximum(1.0 - np.exp(e), 0.0)
        return _shape_out(val, eps, scalar), _shape_out(np.zeros_like(val), eps, scalar)
    setup = _Setup(x, xp, k, b, m)
    if epochs == 1:
        vc = _hockey_level(setup, n_c, max_panel, np.exp(e), symmetry)
        vf = _hockey_level(setup, n_f, max_panel, np.exp(e), symmetry)
        err = np.abs(vf - vc) + _ROUNDOFF
    else:
        vc, _ = _two_epoch_level(setup, n_c, max_panel, e, symmetry, interp_tol)
        vf, ie = _two_epoch_level(setup, n_f, max_panel, e, symmetry, interp_tol)
        err = np.abs(vf - vc) + ie + _ROUNDOFF
    return _shape_out(vf, eps, scalar), _shape_out(err, eps, scalar)


def _logsumexp_rows(a):
    mx = a.max(axis=1, keepdims=True)
    return (mx + np.log(np.exp(a - mx).sum(axis=1, keepdims=True)))[:, 0]


def permutation_monte_carlo_delta(data, data_prime, k, b, eps, m=None, epochs=1,
                                  samples=200000, seed=0):
    """Monte Carlo estimate of the same delta(eps); returns ``(estimate, stderr)``.

    y is sampled under ``data`` by drawing k uniform permutations (arg-sort of
    uniforms) and Laplace noise per epoch; L(y) = log p_D(y) - log p_D'(y) is
    evaluated exactly from an ungrouped enumeration of all (N!)^k tuples."""
    x, xp, k, b, m, epochs, e, scalar = _validate(data, data_prime, k, b, m, epochs, eps)
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 2:
        raise InputError("samples must be an integer >= 2")
    samples = int(samples)
    n = x.size
    perms = list(itertools.permutations(range(n)))
    mus = []
    for data_vec in (x, xp):
        rows = []
        for tup in itertools.product(perms, repeat=k):
            rows.append([sum(data_vec[pi[j]] for pi in tup) / k for j in range(m)])
        mus.append(np.array(rows))
    rng = np.random.default_rng(seed)
    L = np.zeros(samples)
    cs = max(1, min(samples, 4_000_000 // (mus[0].shape[0] * m)))
    for _ in range(epochs):
        for s in range(0, samples, cs):
            c = min(cs, samples - s)
            pis = np.argsort(rng.random((c, k, n)), axis=2)
            y = x[pis[:, :, :m]].mean(axis=1) + rng.laplace(0.0, b, size=(c, m))
            lp = [_logsumexp_rows(-np.abs(y[:, None, :] - mu[None, :, :]).sum(axis=2) / b)
                  for mu in mus]
            L[s:s + c] += lp[0] - lp[1]
    f = np.maximum(1.0 - np.exp(e[:, None] - L[None, :]), 0.0)
    est = f.mean(axis=1)
    se = f.std(axis=1, ddof=1) / math.sqrt(samples)
    return _shape_out(est, eps, scalar), _shape_out(se, eps, scalar)
