"""Independent Monte Carlo estimate of epsilon(delta) for DP-InstaHide (1-D reduction).

Self-contained (numpy + scipy only); it does not import the dpaccount package.

Mechanism of one release (shift s = Delta/k, Laplace scale b, eps0 = s/b, inclusion prob q):
    P = (1 - q) Lap(0, b) + q Lap(s, b),      Q = Lap(0, b).
With u = (|z| - |z - s|)/b in [-eps0, eps0] the loss is f_q(u) = log(1 - q + q e^u).
Under Lap(0, b): u = -eps0 w.p. 1/2, u = +eps0 w.p. e^-eps0 / 2, else density
(1/4) e^{-eps0/2} e^{-u/2} on (-eps0, eps0)  (i.e. u = -eps0 + w, w ~ Exp(mean 2));
under Lap(s, b) the mirror image (u -> -u).  With soft labels j ~ Hypergeometric(N, n_c, k) is
observed each release and q = j / n_c (j = 0: loss 0).  A run composes T i.i.d. releases;
delta(eps) = max over directions of E[(1 - e^{eps - S})_+], S the summed loss (PQ: sum log p/q
under P; QP: sum log q/p under Q); epsilon(delta) is inverted per direction, the max reported.

Estimators
 * conditioned (main, direction PQ): every release is "rare" if u >= u_c (u_c = 0; for large
   eps0 these are exactly the releases that drew the record, up to prob e^-eps0/2) and "bulk"
   otherwise.  H = #rare ~ Binomial(T, p_E), p_E in closed form; all strata with pmf >= 1e-26
   are enumerated with exact weights.  Given H = h the h rare losses are sampled exactly (optionally
   from an exponentially tilted law with exact likelihood ratio, to reach the 1e-5 tail), and the
   T - h bulk losses are replaced by a Gaussian with their exact mean/variance (quadrature) that is
   integrated analytically: E[(1 - e^{c - B})_+] = Phi(a) - e^{c - mu + sig^2/2} Phi(a - sig),
   a = (mu - c)/sig.  One replicate's rare draws serve all strata (nested partial sums), so
   replicates are i.i.d. and give the standard error.
 * full-run IS (check for PQ; main for QP): the whole run is sampled exactly: counts of
   (label type j, u-atom at -eps0 / continuous / u-atom at +eps0) are multinomial, only continuous
   u's are drawn individually (rejection from a piecewise-exponential envelope), all under an
   exponential tilt e^{theta * loss} with exact likelihood ratio exp(-theta S + T log M(theta)).
   No Gaussian step.  For eps0 ~ 1e4 the continuous u below -eps0/2 is merged into the atom at
   -eps0 (loss identical in double precision; the shift bound is printed).
 * checks: Gaussian bulk vs exact bulk on paired replicates at the full T; plain MC at T = 50;
   quadrature at T = 1; a rigorous moment (Chernoff) upper bound per direction.

Run:  python benchmarks/mc_large_eps0.py [--quick] [--seed 1] [--skip-checks]
"""

import argparse
import math
import time

import numpy as np
from scipy import integrate, optimize, special, stats

DELTA = 1e-5
Z95 = 1.959963984540054
LOG4 = math.log(4.0)
GL_X, GL_W = np.polynomial.legendre.leggauss(20)


# ----------------------------------------------------------------------------------------------
# one release


def f_loss(q, u):
    """log(1 - q + q e^u) (q > 0), stable for huge u."""
    return np.logaddexp(np.log1p(-q), np.log(q) + u)


def f_prime(q, u):
    return special.expit(np.log(q) + u - np.log1p(-q))


def label_types(N, k, n_c=None, q=None):
    """(q_j, P(j)) for the releases that can contain the record (the rest have loss 0), text."""
    if n_c is None:
        q = k / N if q is None else q
        return np.array([q]), np.array([1.0]), f"q={q:.4g}"
    js = np.arange(1, min(k, n_c) + 1)
    return js / n_c, stats.hypergeom(N, n_c, k).pmf(js), f"j~HG({N},{n_c},{k}),q=j/{n_c}"


def logdiffexp(a, b):  # log(e^a - e^b), a >= b
    return a + np.log(-np.expm1(b - a)) if b > -np.inf else a


class ContPart:
    """Continuous part of u on (lo, hi) for one label type, tilted by e^{theta * loss}:
    log density phi(u) = base(u) + theta * sign * f_q(u) (unnormalised, in u).  phi is convex
    (PQ, theta >= 0) or concave (QP, theta >= 0); sampled by rejection from a piecewise
    exponential envelope (chords for convex, mid-point tangents for concave), refined until the
    envelope is within `tol` (in log) of phi wherever the mass is not negligible."""

    def __init__(self, q, eps0, direction, theta, lo, hi, tol=0.03):
        self.q, self.eps0, self.dir, self.theta = q, eps0, direction, theta
        self.sign = 1.0 if direction == "PQ" else -1.0
        assert theta >= 0
        self.convex = direction == "PQ" or theta == 0
        nodes = np.linspace(lo, hi, 65)
        for _ in range(60):
            a, s, lm, gap = self._envelope(nodes)
            top = np.max(lm)
            bad = (gap > tol) & (lm > top - 60) & (np.diff(nodes) > 1e-9)
            if not bad.any() or len(nodes) > 20000:
                break
            mids = 0.5 * (nodes[:-1] + nodes[1:])[bad]
            nodes = np.sort(np.concatenate([nodes, mids]))
        self.nodes, self.alpha, self.slope, self.seg_lm = nodes, a, s, lm
        self.seg_lse = special.logsumexp(lm)
        self.seg_cdf = np.cumsum(np.exp(lm - self.seg_lse))
        # exact log-mass by Gauss-Legendre on the refined segments
        L = np.diff(nodes)
        x = nodes[:-1, None] + 0.5 * L[:, None] * (GL_X[None, :] + 1)
        self.log_mass = float(special.logsumexp(self.phi(x) + np.log(0.5 * L[:, None] * GL_W[None, :])))
        # loss mean under this (tilted) part, for the saddle-point choice of theta
        wts = np.exp(self.phi(x) + np.log(0.5 * L[:, None] * GL_W[None, :]) - self.log_mass)
        self.mean_loss = float(np.sum(wts * self.sign * f_loss(q, x)))

    def phi(self, u):
        eps0, q = self.eps0, self.q
        if self.dir == "PQ":
            base = np.logaddexp(np.log1p(-q) - (u + eps0) / 2, np.log(q) + (u - eps0) / 2) - LOG4
        else:
            base = -(u + eps0) / 2 - LOG4
        return base + self.theta * self.sign * f_loss(q, u) if self.theta else base

    def dphi(self, u):
        eps0, q = self.eps0, self.q
        if self.dir == "PQ":
            base = special.expit(np.log(q) + (u - eps0) / 2 - np.log1p(-q) + (u + eps0) / 2) - 0.5
        else:
            base = -0.5 + 0 * u
        return base + self.theta * self.sign * f_prime(q, u)

    def _envelope(self, nodes):
        a, b = nodes[:-1], nodes[1:]
        L = b - a
        if self.convex:  # chord
            pa, pb = self.phi(a), self.phi(b)
            s = (pb - pa) / L
            alpha = pa
        else:  # tangent at the midpoint
            m = 0.5 * (a + b)
            s = self.dphi(m)
            alpha = self.phi(m) - s * L / 2
        t = np.linspace(0.05, 0.95, 7)[None, :]
        uu = a[:, None] + t * L[:, None]
        gap = np.max(alpha[:, None] + s[:, None] * (uu - a[:, None]) - self.phi(uu), axis=1)
        if self.convex:
            gap = np.maximum(gap, 0.0)
        else:  # for tangents the gap is largest at the ends
            gap = np.maximum(gap, np.maximum(alpha - self.phi(a), alpha + s * L - self.phi(b)))
        sl = s * L
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lm = np.where(np.abs(sl) < 1e-12, alpha + np.log(L),
                          np.where(sl > 0, alpha + sl + np.log(-np.expm1(-np.abs(sl))) - np.log(np.abs(s)),
                                   alpha + np.log(-np.expm1(-np.abs(sl))) - np.log(np.abs(s))))
        return alpha, s, lm, gap

    def sample(self, rng, n):
        out = np.empty(n)
        todo = np.arange(n)
        while len(todo):
            m = len(todo)
            i = np.minimum(np.searchsorted(self.seg_cdf, rng.random(m) * self.seg_cdf[-1], side="right"),
                           len(self.seg_lm) - 1)
            a, L, s, al = self.nodes[i], self.nodes[i + 1] - self.nodes[i], self.slope[i], self.alpha[i]
            U = rng.random(m)
            sl = s * L
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                t = np.where(np.abs(sl) < 1e-12, U * L,
                             np.where(sl > 0, L + np.log(U + (1 - U) * np.exp(-np.abs(sl))) / s,
                                      np.log1p(U * np.expm1(-np.abs(sl))) / s))
            t = np.clip(t, 0.0, L)
            u = a + t
            ok = np.log(rng.random(m)) <= self.phi(u) - (al + s * t)
            out[todo[ok]] = u[ok]
            todo = todo[~ok]
        return out


class Parts:
    """Per-release law under an exponential tilt, as a list of parts per label type.

    region 'full': u in [-eps0, eps0] (atoms at both ends + continuous part); zero-loss type j = 0
      included.  With merge_below = u_a, the continuous u < u_a is merged into the atom at -eps0.
    region 'rare': u >= u_c only (continuous (u_c, eps0) + atom at eps0), types j >= 1.
    Masses are relative to one release (unnormalised), tilted by e^{theta * loss}."""

    def __init__(self, eps0, qs, ws, direction, theta=0.0, region="full", u_c=0.0, merge_below=None):
        self.eps0, self.dir, self.theta, self.region = eps0, direction, theta, region
        self.sign = 1.0 if direction == "PQ" else -1.0
        self.types = []  # per type: list of (logmass, value or ContPart)
        logw = []
        self.shift_bound = 0.0
        for q, w in zip(qs, ws):
            pR = q if direction == "PQ" else 0.0
            parts = []
            loss_lo, loss_hi = self.sign * float(f_loss(q, -eps0)), self.sign * float(f_loss(q, eps0))
            l1p = math.log1p(-pR) if pR < 1 else -np.inf
            lpR = math.log(pR) if pR > 0 else -np.inf
            lp_hi = float(np.logaddexp(l1p - eps0, lpR) + math.log(0.5))  # atom u = +eps0
            parts.append((lp_hi + theta * loss_hi, loss_hi))
            if region == "full":
                lo = -eps0
                lp_lo = float(np.logaddexp(l1p, lpR - eps0) + math.log(0.5))  # atom u = -eps0
                if merge_below is not None:
                    lo = merge_below
                    # base mass of the continuous part on (-eps0, u_a), merged into the atom
                    mq = math.log(0.5) + logdiffexp(0.0, -(merge_below + eps0) / 2)
                    terms = [math.log(1 - pR) + mq] if pR < 1 else []
                    if pR > 0:
                        terms.append(math.log(pR) + math.log(0.5) + logdiffexp((merge_below - eps0) / 2, -eps0))
                    lp_lo = float(special.logsumexp([lp_lo] + terms))
                    self.shift_bound = max(self.shift_bound, float(f_loss(q, merge_below) - f_loss(q, -eps0)))
                parts.append((lp_lo + theta * loss_lo, loss_lo))
            else:
                lo = u_c
            cp = ContPart(q, eps0, direction, theta, lo, eps0)
            parts.append((cp.log_mass, cp))
            self.types.append(parts)
            logw.append(math.log(w))
        self.logw = np.array(logw)
        self.w0 = max(0.0, 1.0 - float(np.sum(ws))) if region == "full" else 0.0
        self.logM_j = np.array([special.logsumexp([p[0] for p in parts]) for parts in self.types])
        all_l = list(self.logw + self.logM_j) + ([math.log(self.w0)] if self.w0 > 0 else [])
        self.logM = float(special.logsumexp(all_l))  # log E[e^{theta loss}; region]
        # flattened (type, part) table for sampling
        self.flat = []
        for ti, parts in enumerate(self.types):
            for lp, v in parts:
                self.flat.append((self.logw[ti] + lp, v))

    def mean_loss(self):
        """E_theta[loss | region]."""
        tot = 0.0
        for lp, v in self.flat:
            pr = math.exp(lp - self.logM)
            tot += pr * (v.mean_loss if isinstance(v, ContPart) else v)
        return tot

    def sample(self, rng, n):
        """n i.i.d. losses from the tilted law restricted to the region (region 'rare')."""
        lps = np.array([lp for lp, _ in self.flat])
        pr = np.exp(lps - special.logsumexp(lps))
        idx = rng.choice(len(pr), size=n, p=pr)
        out = np.empty(n)
        for i, (_, v) in enumerate(self.flat):
            sel = np.nonzero(idx == i)[0]
            if len(sel) == 0:
                continue
            if isinstance(v, ContPart):
                out[sel] = self.sign * f_loss(v.q, v.sample(rng, len(sel)))
            else:
                out[sel] = v
        return out

    def sample_run_sums(self, rng, T, n_rep):
        """S for n_rep runs of T releases (region 'full'), exact, under the tilt."""
        logp_types = list(self.logw + self.logM_j) + [math.log(self.w0) if self.w0 > 0 else -np.inf]
        logp_types = np.array(logp_types) - self.logM
        pt = np.exp(logp_types)
        pt = pt / pt.sum()
        N = rng.multinomial(T, pt, size=n_rep)  # last column: zero-loss type
        S = np.zeros(n_rep)
        for ti, parts in enumerate(self.types):
            lps = np.array([lp for lp, _ in parts])
            pp = np.exp(lps - special.logsumexp(lps))
            C = rng.multinomial(N[:, ti], pp / pp.sum())
            for pi, (_, v) in enumerate(parts):
                if isinstance(v, ContPart):
                    K = C[:, pi]
                    tot = int(K.sum())
                    if tot:
                        vals = self.sign * f_loss(v.q, v.sample(rng, tot))
                        S += np.bincount(np.repeat(np.arange(n_rep), K), weights=vals, minlength=n_rep)
                else:
                    S += C[:, pi] * v
        return S


def make_parts(eps0, qs, ws, direction, theta, region="full", atomic=False):
    return Parts(eps0, qs, ws, direction, theta, region, merge_below=(-eps0 / 2 if atomic else None))


class BulkLaw:
    """Bulk part (u < u_c) of one release: exact mean/variance by quadrature, exact samplers."""

    def __init__(self, eps0, qs, ws, direction, u_c=0.0):
        self.eps0, self.direction, self.u_c = float(eps0), direction, float(u_c)
        self.sign = 1.0 if direction == "PQ" else -1.0
        self.qs, self.ws = np.asarray(qs, float), np.asarray(ws, float)
        w0 = max(0.0, 1.0 - self.ws.sum())
        self.w_c, self.v_c = eps0 + u_c, eps0 - u_c
        self.mQr = 0.5 * math.exp(-self.w_c / 2)  # Lap(0,b) mass of u >= u_c
        self.mRb = 0.5 * math.exp(-self.v_c / 2)  # Lap(s,b) mass of u <  u_c
        qR = self.qs if direction == "PQ" else np.zeros_like(self.qs)
        self.p_rare = (1 - qR) * self.mQr + qR * (1 - self.mRb)
        self.pE = float(np.sum(self.ws * self.p_rare))
        p_bulk = 1.0 - self.p_rare
        wb = np.concatenate([[w0], self.ws * p_bulk])
        self.piB = wb / wb.sum()
        self.qB = np.concatenate([[0.5], self.qs])
        self.pR_bulkB = np.concatenate([[0.0], qR * self.mRb / p_bulk])
        m1, m2 = np.zeros(len(self.piB)), np.zeros(len(self.piB))
        for i, q in enumerate(self.qs):
            I0, I1, I2 = self._integrals(q, qR[i])
            m1[i + 1], m2[i + 1] = self.sign * I1 / I0, I2 / I0
        self.mu_b = float(np.sum(self.piB * m1))
        self.var_b = float(max(np.sum(self.piB * m2) - self.mu_b**2, 0.0))

    def _integrals(self, q, qR):
        eps0, u_c = self.eps0, self.u_c
        fa = float(f_loss(q, -eps0))
        t_c = math.exp(-self.w_c / 2)

        def gQ(t, p):  # Q continuous part on w in (0, w_c): t = e^{-w/2} uniform, density 1/2
            u = min(-eps0 - 2 * math.log(t), u_c) if t > 0 else u_c
            return float(f_loss(q, u)) ** p

        quad = lambda g, a, b, p: 0.5 * integrate.quad(g, a, b, args=(p,), epsabs=0, epsrel=1e-12, limit=400)[0]
        I0, I1, I2 = 1.0 - self.mQr, 0.5 * fa + quad(gQ, t_c, 1.0, 1), 0.5 * fa**2 + quad(gQ, t_c, 1.0, 2)
        if qR > 0:
            tlo, thi = math.exp(-eps0), math.exp(-self.v_c / 2)
            R0 = R1 = R2 = 0.0
            if thi > tlo:
                gR = lambda t, p: float(f_loss(q, max(eps0 + 2 * math.log(t), -eps0))) ** p
                R0 = self.mRb
                R1 = 0.5 * math.exp(-eps0) * fa + quad(gR, tlo, thi, 1)
                R2 = 0.5 * math.exp(-eps0) * fa**2 + quad(gR, tlo, thi, 2)
            I0, I1, I2 = (1 - qR) * I0 + qR * R0, (1 - qR) * I1 + qR * R1, (1 - qR) * I2 + qR * R2
        return I0, I1, I2

    def sample(self, rng, n):
        eps0 = self.eps0
        i = np.minimum(np.searchsorted(np.cumsum(self.piB), rng.random(n), side="right"), len(self.piB) - 1)
        U = rng.random(n)
        a = 0.5 / (1.0 - self.mQr)  # atom u = -eps0
        Uc = np.clip((U - a) / (1 - a), 0.0, 1.0)
        w = -2.0 * np.log1p(-Uc * (-math.expm1(-self.w_c / 2)))
        u = np.where(U < a, -eps0, np.minimum(-eps0 + w, self.u_c))
        if self.direction == "PQ" and self.mRb > 0:
            isR = rng.random(n) < self.pR_bulkB[i]
            u = np.where(isR, np.maximum(eps0 - self.v_c - rng.exponential(2.0, n), -eps0), u)
        return self.sign * np.where(i == 0, 0.0, f_loss(self.qB[i], u))

    def atomic_sum(self, rng, n_terms, size):
        """sum of n_terms bulk losses with u taken at the atom -eps0 (valid for eps0 ~ 1e4)."""
        vals = np.concatenate([[0.0], self.sign * f_loss(self.qs, -self.eps0)])
        return rng.multinomial(n_terms, self.piB, size=size) @ vals


def sample_plain(rng, eps0, qs, ws, direction, n):
    """One release's loss, straight from the definition (for the plain-MC cross-check)."""
    pr = np.concatenate([[max(0.0, 1 - ws.sum())], ws])
    i = np.minimum(np.searchsorted(np.cumsum(pr), rng.random(n), side="right"), len(pr) - 1)
    q = np.concatenate([[0.5], qs])[i]
    b = 1.0
    z0 = rng.laplace(0.0, b, n)  # z ~ Lap(0, b), s = eps0 * b
    if direction == "PQ":
        z = np.where(rng.random(n) < q, z0 + eps0 * b, z0)  # P: record's component w.p. q
    else:
        z = z0
    u = (np.abs(z) - np.abs(z - eps0 * b)) / b
    return np.where(i == 0, 0.0, (1.0 if direction == "PQ" else -1.0) * f_loss(q, u))


# ----------------------------------------------------------------------------------------------
# estimators


def gauss_D(c, mu, sig):
    """E[(1 - e^{c - B})_+] for B ~ N(mu, sig^2), elementwise (sig >= 0, broadcast)."""
    c, mu, sig = np.broadcast_arrays(np.asarray(c, float), np.asarray(mu, float), np.asarray(sig, float))
    out = np.empty(c.shape)
    z = sig > 0
    if np.any(~z):
        out[~z] = -np.expm1(np.minimum(c[~z] - mu[~z], 0.0))
    if np.any(z):
        cc, mm, ss = c[z], mu[z], sig[z]
        a = (mm - cc) / ss
        t1 = special.log_ndtr(a)
        t2 = cc - mm + 0.5 * ss * ss + special.log_ndtr(a - ss)
        out[z] = np.exp(t1) * -np.expm1(np.minimum(t2 - t1, 0.0))
    return out


def solve_eps(fun, target, hi, lo=0.0):
    """smallest eps >= lo with fun(eps) <= target (fun decreasing)."""
    if fun(lo) <= target:
        return lo
    while fun(hi) > target:
        hi = 2 * hi + 1
    g = lambda e: math.log(max(fun(e), 1e-300)) - math.log(target)
    return optimize.brentq(g, lo, hi, xtol=1e-10, rtol=1e-13, maxiter=200)


def invert(delta_r, hi, target=DELTA):
    """eps estimate, 95% interval and rel. SE of delta-hat at eps, from per-replicate i.i.d.
    estimates delta_r(eps).  The interval is {eps : |mean - target| <= 1.96 SE} around the estimate
    (bracketed locally, stepping out from the delta-method half-width)."""
    def stat(e):
        d = delta_r(e)
        return float(np.mean(d)), float(np.std(d, ddof=1) / math.sqrt(len(d)))
    eps = solve_eps(lambda e: max(stat(e)[0], 1e-300), target, hi)
    m, se = stat(eps)
    if se <= 1e-12 * m:  # deterministic (e.g. no rare strata and a degenerate bulk)
        return eps, eps, eps, 0.0
    step = 1e-2
    slope = abs(stat(eps + step)[0] - stat(max(eps - step, 0.0))[0]) / (eps + step - max(eps - step, 0.0))
    h0 = Z95 * se / slope if slope > 0 else 1.0
    h0 = min(max(h0, 1e-9 * max(1.0, eps)), max(1.0, eps))

    def side(sgn):  # sgn = -1: lower end (mean - 1.96 se = target); +1: upper end
        def g(e):  # lower end: mean - 1.96 se crosses target; upper end: mean + 1.96 se does
            m_, se_ = stat(e)
            return m_ + sgn * Z95 * se_ - target

        h, e0 = h0, eps
        for _ in range(60):
            e1 = max(eps + sgn * h, 0.0)
            if (g(e1) > 0) if sgn < 0 else (g(e1) < 0):
                if np.sign(g(e0)) == np.sign(g(e1)):
                    return e0
                return optimize.brentq(g, min(e0, e1), max(e0, e1), xtol=1e-10, rtol=1e-13)
            if e1 == 0.0:
                return 0.0
            e0, h = e1, 2 * h
        return float("nan")

    return eps, side(-1), side(+1), (se / m if m > 0 else float("nan"))


class Conditioned:
    """MC conditioned on the rare count H; Gaussian bulk (or exact bulk for the checks)."""

    def __init__(self, bulk, rare, T, n, rng, chunk=2000):
        self.bulk, self.T, self.n = bulk, T, n
        p = bulk.pE
        if p > 0:  # strata with pmf >= 1e-26 (scipy's isf is unreliable that far out)
            top = int(min(T, T * p + 60 * math.sqrt(T * p * (1 - p)) + 60))
            lp = stats.binom.logpmf(np.arange(top + 1), T, p)
            keep = np.nonzero(lp >= math.log(1e-26))[0]
            lo, hi = int(keep[0]), int(keep[-1])
        else:
            lo = hi = 0
        self.hs = np.arange(lo, hi + 1)
        self.pmf = stats.binom.pmf(self.hs, T, p) if p > 0 else np.array([1.0])
        self.neglected = max(0.0, 1.0 - float(math.fsum(self.pmf)))
        self.theta = rare.theta
        # per-rare-term CGF at theta (rare law normalised): kappa = log M_rare(theta) - log p_E
        self.kappa = rare.logM - math.log(p) if p > 0 else 0.0
        self.A = np.empty((n, len(self.hs)))
        for r0 in range(0, n, chunk):
            r1 = min(n, r0 + chunk)
            if hi > 0:
                X = rare.sample(rng, (r1 - r0) * hi).reshape(r1 - r0, hi)
                cs = np.concatenate([np.zeros((r1 - r0, 1)), np.cumsum(X, axis=1)], axis=1)
                self.A[r0:r1] = cs[:, lo:]
            else:
                self.A[r0:r1] = 0.0
        self.mu = (T - self.hs) * bulk.mu_b
        self.sig = np.sqrt((T - self.hs) * bulk.var_b)
        self.colmin, self.colmax = self.A.min(axis=0), self.A.max(axis=0)
        self.B = None

    def logW(self, cols):
        return self.hs[cols] * self.kappa - self.theta * self.A[:, cols]

    def add_exact_bulk(self, rng, n_exact, atomic=False, chunk=100):
        """exact bulk sums B_{T-h} for the first n_exact replicates (nested over h)."""
        bulk, T = self.bulk, self.T
        lo, hi = self.hs[0], self.hs[-1]
        B = np.empty((n_exact, len(self.hs)))
        for r0 in range(0, n_exact, chunk):
            nr = min(n_exact, r0 + chunk) - r0
            if atomic:
                base = bulk.atomic_sum(rng, T - hi, nr)
            else:
                base, left = np.zeros(nr), T - hi
                while left > 0:
                    step = min(left, max(1, 4_000_000 // nr))
                    base += bulk.sample(rng, nr * step).reshape(nr, step).sum(axis=1)
                    left -= step
            extra = bulk.sample(rng, nr * (hi - lo)).reshape(nr, hi - lo)
            ext = np.concatenate([np.zeros((nr, 1)), np.cumsum(extra, axis=1)], axis=1)
            B[r0:r0 + nr] = base[:, None] + ext[:, (hi - self.hs)]  # T - h = (T - hi) + (hi - h)
        self.B = B

    def contrib(self, eps, exact=False):
        """(n x m) per-replicate, per-stratum terms W * D (before the pmf weights)."""
        if exact:
            nB = len(self.B)
            W = np.exp(self.hs * self.kappa - self.theta * self.A[:nB])
            return -np.expm1(np.minimum(eps - self.A[:nB] - self.B, 0.0)) * W, np.arange(len(self.hs))
        with np.errstate(divide="ignore", invalid="ignore"):
            zmax = np.where(self.sig > 0, (self.mu + self.colmax - eps) / self.sig,
                            np.where(self.mu + self.colmax > eps, 50.0, -50.0))
            lbound = special.log_ndtr(zmax) + self.hs * self.kappa - self.theta * self.colmin
        act = np.nonzero(lbound > math.log(1e-24))[0]
        if len(act) == 0:
            return np.zeros((self.n, 0)), act
        cols = np.arange(act[0], act[-1] + 1)
        D = gauss_D(eps - self.A[:, cols], self.mu[cols], self.sig[cols])
        if self.theta:
            D *= np.exp(self.logW(cols))
        return D, cols

    def delta_r(self, eps, exact=False):
        C, cols = self.contrib(eps, exact)
        return C @ self.pmf[cols] if len(cols) else np.zeros(self.n)

    def hi0(self):
        return float(max(1.0, np.max(self.colmax + self.mu + 12 * self.sig)))

    def estimate(self, exact=False):
        return invert(lambda e: self.delta_r(e, exact), self.hi0())


class FullRun:
    """Exact sampling of whole runs under a tilt theta (likelihood-ratio weighted)."""

    def __init__(self, parts, T, n, rng, chunk=500):
        self.S = np.concatenate([parts.sample_run_sums(rng, T, min(chunk, n - r)) for r in range(0, n, chunk)])
        self.logLR = -parts.theta * self.S + T * parts.logM
        self.theta = parts.theta

    def delta_r(self, eps):
        with np.errstate(over="ignore"):
            return -np.expm1(np.minimum(eps - self.S, 0.0)) * np.exp(self.logLR)

    def estimate(self, target=DELTA):
        return invert(self.delta_r, float(max(1.0, np.max(self.S) + 1)), target)


def saddle_theta(make, target, th_max):
    """theta >= 0 with E_theta[loss] = target (make(theta) -> Parts)."""
    g = lambda th: make(th).mean_loss() - target
    if g(0.0) >= 0:
        return 0.0
    hi = th_max
    while g(hi) < 0 and hi < 1e6:
        hi *= 4
    return optimize.brentq(g, 0.0, hi, xtol=1e-12, rtol=1e-8)


def moment_bound(eps0, qs, ws, direction, T, atomic=False):
    """Rigorous: delta(eps) <= e^{T log M(th) - th eps} th^th / (1 + th)^(1 + th) for th > 0,
    M(th) = E[e^{th loss}] of one release by quadrature.  Returns the eps at which it reaches DELTA."""
    def eps_of(lth):
        th = math.exp(lth)
        lm = make_parts(eps0, qs, ws, direction, th, atomic=atomic).logM
        return (T * lm + math.log(1 / DELTA) + th * math.log(th) - (1 + th) * math.log1p(th)) / th
    best = min((eps_of(x), x) for x in np.linspace(-14, 6, 41))
    r = optimize.minimize_scalar(eps_of, bounds=(best[1] - 0.5, best[1] + 0.5), method="bounded",
                                 options=dict(xatol=1e-6))
    return min(best[0], float(r.fun))


# ----------------------------------------------------------------------------------------------
# exact T = 1 by quadrature over z (b = 1, s = eps0)


def exact_T1(eps, eps0, qs, ws, direction):
    s = eps0
    lap = lambda z, m: 0.5 * math.exp(-abs(z - m))
    tot = 0.0
    for q, w in zip(qs, ws):
        p = lambda z: (1 - q) * lap(z, 0) + q * lap(z, s)
        if direction == "PQ":
            g = lambda z: max(p(z) - math.exp(eps) * lap(z, 0), 0.0)
            arg = (math.exp(eps) - 1 + q) / q
        else:
            g = lambda z: max(lap(z, 0) - math.exp(eps) * p(z), 0.0)
            arg = (math.exp(-eps) - 1 + q) / q
        pts = [0.0, s]
        if arg > 0 and 0 < (s + math.log(arg)) / 2 < s:
            pts = [0.0, (s + math.log(arg)) / 2, s]
        edges = [-np.inf] + pts + [np.inf]
        tot += w * sum(integrate.quad(g, a, c, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
                       for a, c in zip(edges[:-1], edges[1:]))
    return tot


# ----------------------------------------------------------------------------------------------
# one setting


def run_setting(name, N, k, Delta, b, T, n_c, rng, n, n_pilot, n_full, n_ex, checks=True):
    t0 = time.perf_counter()
    eps0 = Delta / k / b
    qs, ws, qdesc = label_types(N, k, n_c)
    atomic = eps0 > 1000  # merge u < -eps0/2 into the atom at -eps0 (exact in double precision)
    out = dict(name=name, eps0=eps0, qdesc=qdesc, T=T)

    # ---- PQ: conditioned estimator (pilot untilted, then tilted rare terms)
    bulk = BulkLaw(eps0, qs, ws, "PQ")
    rare0 = Parts(eps0, qs, ws, "PQ", 0.0, "rare")
    assert abs(rare0.logM - math.log(bulk.pE)) < 1e-8, (rare0.logM, math.log(bulk.pE))
    pil = Conditioned(bulk, rare0, T, n_pilot, rng)
    e_pil = pil.estimate()[0]
    C, cols = pil.contrib(e_pil)
    h_d = int(pil.hs[cols][np.argmax(C.mean(axis=0) * pil.pmf[cols])])
    target = (e_pil - (T - h_d) * bulk.mu_b) / h_d
    th_r = saddle_theta(lambda th: Parts(eps0, qs, ws, "PQ", th, "rare"), target, 0.5)
    est = Conditioned(bulk, Parts(eps0, qs, ws, "PQ", th_r, "rare") if th_r else rare0, T, n, rng)
    e, lo, hi, rse = est.estimate()
    pq = dict(eps=e, lo=lo, hi=hi, rse=rse, theta=th_r, h_d=h_d, EH=T * bulk.pE, mu_b=bulk.mu_b,
              sd_b=math.sqrt(bulk.var_b), neglected=est.neglected)
    if checks:
        tc = time.perf_counter()
        est.add_exact_bulk(rng, min(n_ex, n), atomic=atomic)
        dg = est.delta_r(e)[: len(est.B)]
        de = est.delta_r(e, exact=True)
        diff = de - dg
        step = 1e-2
        slope = (np.mean(est.delta_r(e + step)) - np.mean(est.delta_r(e - step))) / (2 * step)
        dh = float(np.mean(est.delta_r(e)))
        pq["gcheck"] = dict(n=len(diff), rel=np.mean(diff) / dh, rel_se=np.std(diff, ddof=1) / math.sqrt(len(diff)) / dh,
                            deps=np.mean(diff) / abs(slope), deps_se=np.std(diff, ddof=1) / math.sqrt(len(diff)) / abs(slope),
                            atomic=atomic, secs=time.perf_counter() - tc)
        # full-run exact IS (no Gaussian, no conditioning)
        tc = time.perf_counter()
        mk = lambda th: make_parts(eps0, qs, ws, "PQ", th, atomic=atomic)
        th_f = saddle_theta(mk, e / T, 1e-3)
        fr = FullRun(mk(th_f), T, n_full, rng)
        ef = fr.estimate()
        pq["full"] = dict(eps=ef[0], lo=ef[1], hi=ef[2], rse=ef[3], theta=th_f, n=n_full, secs=time.perf_counter() - tc,
                          shift=mk(th_f).shift_bound * T)
        pq["bound"] = moment_bound(eps0, qs, ws, "PQ", T, atomic)
    out["PQ"] = pq

    # ---- QP: conditioned (Gaussian bulk) as a pilot, then full-run exact IS
    bulkq = BulkLaw(eps0, qs, ws, "QP")
    estq = Conditioned(bulkq, Parts(eps0, qs, ws, "QP", 0.0, "rare"), T, n_pilot, rng)
    eg = estq.estimate()
    mk = lambda th: make_parts(eps0, qs, ws, "QP", th, atomic=atomic)
    th_q = saddle_theta(mk, eg[0] / T, 1.0)
    fr = FullRun(mk(th_q), T, n_full, rng)
    ef = fr.estimate()
    out["QP"] = dict(eps=ef[0], lo=ef[1], hi=ef[2], rse=ef[3], theta=th_q, n=n_full,
                     gauss=dict(eps=eg[0], lo=eg[1], hi=eg[2]), shift=mk(th_q).shift_bound * T,
                     bound=moment_bound(eps0, qs, ws, "QP", T, atomic) if checks else None)
    out["secs"] = time.perf_counter() - t0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer samples (~4x faster)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-checks", action="store_true", help="main estimates only")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    sz = dict(n=4000, n_pilot=1000, n_full=1000, n_ex=200) if args.quick else \
        dict(n=16000, n_pilot=2000, n_full=4000, n_ex=800)
    checks = not args.skip_checks
    t_all = time.perf_counter()
    settings = [
        ("1 cifar10 soft", dict(N=50000, k=4, Delta=3072, b=0.1, T=2_000_000, n_c=5000)),
        ("1 cifar10 none", dict(N=50000, k=4, Delta=3072, b=0.1, T=2_000_000, n_c=None)),
        ("2 digits none", dict(N=1797, k=4, Delta=64, b=1.0, T=17970, n_c=None)),
        # the digits command on its default labels (soft, a class of one: q = 1 given
        # the label shows the record)
        ("2 digits soft1", dict(N=1797, k=4, Delta=64, b=1.0, T=17970, n_c=1)),
        ("3 digits b=1", dict(N=1438, k=4, Delta=64, b=1.0, T=28760, n_c=139)),
        ("3 digits b=2", dict(N=1438, k=4, Delta=64, b=2.0, T=28760, n_c=139)),
        ("3 digits b=4", dict(N=1438, k=4, Delta=64, b=4.0, T=28760, n_c=139)),
    ]
    print(f"delta = {DELTA:g}; epsilon = max over directions (PQ: conditioned MC, {sz['n']} replicates; "
          f"QP: full-run exact IS, {sz['n_full']} replicates); 95% interval = MC error only\n")
    hdr = f"{'setting':<15} {'eps0':>6} {'q / j-mixture':<26} {'T':>8} {'epsilon':>13} {'95% MC interval':<27} {'dir':<3} {'eps(QP)':>9} {'secs':>5}"
    print(hdr)
    rows = []
    for name, kw in settings:
        r = run_setting(name, rng=rng, checks=checks, **sz, **kw)
        rows.append(r)
        w = "PQ" if r["PQ"]["eps"] >= r["QP"]["eps"] else "QP"
        x = r[w]
        print(f"{name:<15} {r['eps0']:>6.4g} {r['qdesc']:<26} {r['T']:>8d} {x['eps']:>13.7g} "
              f"[{x['lo']:.7g}, {x['hi']:.7g}]".ljust(70) + f" {w:<3} {r['QP']['eps']:>9.5g} {r['secs']:>5.1f}", flush=True)

    print("\ndetails (E[H]: expected # rare releases (u >= 0); bulk: per-release mean/sd of the Gaussian part;"
          " theta: tilt of the rare terms / of the full-run IS)")
    for r in rows:
        p, q = r["PQ"], r["QP"]
        print(f"  {r['name']}: PQ eps={p['eps']:.9g} [{p['lo']:.9g}, {p['hi']:.9g}]  rel.SE(delta)={p['rse']:.2%}"
              f"  E[H]={p['EH']:.4g}  h_dom={p['h_d']}  theta={p['theta']:.3g}  bulk mean={p['mu_b']:.4g} sd={p['sd_b']:.3g}"
              f"  strata mass left out={p['neglected']:.1e}")
        if "gcheck" in p:
            c = p["gcheck"]
            print(f"      Gaussian bulk vs exact bulk ({'multinomial/atomic' if c['atomic'] else 'exact'}, full T,"
                  f" {c['n']} paired replicates, {c['secs']:.1f}s): (exact-gauss)/delta = {c['rel']:+.2%} +- {c['rel_se']:.2%}"
                  f"  => eps shift {c['deps']:+.3g} +- {c['deps_se']:.2g}")
            f = p["full"]
            print(f"      full-run exact IS ({f['n']} runs, theta={f['theta']:.3g}, {f['secs']:.1f}s): eps={f['eps']:.9g}"
                  f" [{f['lo']:.9g}, {f['hi']:.9g}] rel.SE={f['rse']:.1%}" + (f"  (merge shift <= {f['shift']:.1e})" if f["shift"] else "")
                  + f";  moment upper bound {p['bound']:.7g}")
        g = q["gauss"]
        print(f"      QP: full-run exact IS eps={q['eps']:.9g} [{q['lo']:.9g}, {q['hi']:.9g}] rel.SE={q['rse']:.1%}"
              f" theta={q['theta']:.3g};  conditioned+Gaussian bulk {g['eps']:.9g} [{g['lo']:.9g}, {g['hi']:.9g}]"
              + (f";  moment upper bound {q['bound']:.7g}" if q["bound"] is not None else ""))

    if checks:
        print("\ncross-checks")
        for lab, (qs, ws, _) in (("none", label_types(20, 2)), ("soft n_c=5", label_types(20, 2, 5))):
            eps0 = 1.0
            for d in ("PQ", "QP"):
                nn = 50000 if args.quick else 200000
                est = Conditioned(BulkLaw(eps0, qs, ws, d), Parts(eps0, qs, ws, d, 0.0, "rare"), 1, nn, rng)
                est.add_exact_bulk(rng, nn)
                S = sample_plain(rng, eps0, qs, ws, d, nn)
                fr = FullRun(make_parts(eps0, qs, ws, d, 0.0), 1, nn, rng, chunk=nn)
                parts = []
                for e in (0.0, 0.02, 0.05):
                    v = [est.delta_r(e, exact=True), -np.expm1(np.minimum(e - S, 0.0)), fr.delta_r(e)]
                    parts.append(f"eps={e}: quad {exact_T1(e, eps0, qs, ws, d):.5f} | " +
                                 " ".join(f"{x.mean():.5f}+-{x.std() / math.sqrt(nn):.5f}" for x in v))
                print(f"  T=1 N=20 k=2 eps0=1 {lab} {d} (quad | conditioned, plain, full-run): " + "; ".join(parts))
        n_plain = 300_000 if args.quick else 1_000_000
        for b in (0.5, 0.1):
            eps0 = 1.0 / 2 / b
            qs, ws, _ = label_types(20, 2)
            for d in ("PQ", "QP"):
                t0 = time.perf_counter()
                est = Conditioned(BulkLaw(eps0, qs, ws, d), Parts(eps0, qs, ws, d, 0.0, "rare"), 50, n_plain // 10, rng)
                est.add_exact_bulk(rng, n_plain // 10)
                S = np.concatenate([sample_plain(rng, eps0, qs, ws, d, 50 * 100000).reshape(-1, 50).sum(axis=1)
                                    for _ in range(n_plain // 100000)])
                txt = []
                for tgt in (1e-3, 1e-5):
                    ce = invert(lambda e: est.delta_r(e, exact=True), est.hi0(), tgt)
                    pe = invert(lambda e: -np.expm1(np.minimum(e - S, 0.0)), float(S.max() + 1), tgt)
                    mk = lambda th: make_parts(eps0, qs, ws, d, th)
                    fr = FullRun(mk(saddle_theta(mk, ce[0] / 50, 0.1)), 50, n_plain // 50, rng, chunk=5000)
                    fe = fr.estimate(tgt)
                    txt.append(f"delta={tgt:g}: " + "  ".join(f"{lab} {x[0]:.4f} [{x[1]:.4f}, {x[2]:.4f}]" for lab, x in
                                                              (("cond", ce), ("plain", pe), ("full-run", fe))))
                print(f"  T=50 N=20 k=2 Delta=1 b={b} (eps0={eps0:g}, q=0.1) {d} (conditioned exact-bulk {n_plain // 10},"
                      f" plain {n_plain}, full-run IS {n_plain // 50}; {time.perf_counter() - t0:.1f}s):\n      " + ";\n      ".join(txt), flush=True)
    print(f"\ntotal {time.perf_counter() - t_all:.1f}s")


if __name__ == "__main__":
    main()
