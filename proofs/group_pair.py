"""Proof step: the pair that dominates one release for a group of p records.

Justifies: dpaccount.samplers.group_components, dpaccount.samplers.SubsetsType.group_law, dpaccount.samplers.PoissonType.group_law, dpaccount.samplers.PermutationType.group_law

Setting. D and D' differ in the records of a group G of size p (substitution: same indices, other
values; add/remove: D' = D with G added). One release draws a subset S (uniform k-subset, or
Poisson); J = |S n G|, pi_j = P(J = j), q_p = P(J >= 1) = 1 - pi_0, pi'_j = pi_j / q_p. With
C the release law given J = 0 (the same under D and D'), A_j and B_j the laws given J = j under
D and D', A = sum_j pi'_j A_j and B = sum_j pi'_j B_j:

    M(D) = (1 - q_p) C + q_p A,     M(D') = (1 - q_p) C + q_p B.

Write L_j = Lap(j s, b), s = Delta/k (norm/k for Poisson), L_0 = Lap(0, b).

(1) Couplings. Given J = j, replacing the j members of S by j records drawn uniformly from
    outside G u S gives a subset uniform on {J = 0}: the law of S given J = j, and the
    replacement, are invariant under permutations of the records outside G, so the image is too,
    and those permutations act transitively on {J = 0}. Checked by enumeration below. The two
    subsets differ in j records, so the means differ by at most j s in L1; A_j and B_j are coupled
    by the same subset, also at most j s apart. For Poisson (add/remove) A_j is C shifted by the
    sum of the j members that joined. The L1 Laplace bound (a shift of L1 norm at most t is no
    worse at any order than Lap(t) against Lap(0)) and joint convexity over each coupling give
    H_a(A_j || C) <= H_a(L_j || L_0) and H_a(A_j || B_j) <= H_a(L_j || L_0) for every a.
(2) Mixtures over j (joint convexity, the weights pi'_j are the same on both sides):
    H_a(A || C) <= sum_j pi'_j H_a(L_j || L_0), and the same for H_a(A || B).
(3) Advanced joint convexity (Balle, Barthe, Gaboardi 2018, Thm 2), as for one record
    (proofs/symmetrised_pair.py (1)): for a' = 1 + q_p (a - 1) >= 1, beta = a'/a in [0, 1],
    H_a'(M(D) || M(D')) = q_p H_a(A || (1 - beta) C + beta B)
                        <= q_p ((1 - beta) H_a(A || C) + beta H_a(A || B))
                        <= q_p sum_j pi'_j H_a(L_j || L_0).
(4) The right-hand side is H_a' of the pair P~ = sum_j pi'_j [j] x ((1 - q_p) L_0 + q_p L_j),
    Q~ = sum_j pi'_j [j] x L_0 (a label j drawn from pi' and shown, then the subsampled pair at
    q_p and shift j s): H_a'((1 - q) L_0 + q L || L_0) = q H_a(L || L_0) exactly (the integrands
    are equal pointwise, checked below). The roles of D and D' are symmetric, so both orders are
    bounded, for every a' >= 1; as for one record (proofs/symmetrised_pair.py (3)-(4)), the
    symmetrised P~ (which is the revealed mixture of the symmetrised components: the construction
    is linear in the masses) dominates every ordered pair at every order, and composes.
    Under add/remove (D' = D u G, so B = C... the pair is ((1 - q_p) C + q_p A, C)) the same steps
    give the pair in the PQ and QP directions, per component.
(5) Checked numerically below, by brute force on small datasets (every dataset pair with values
    at the ends of the domain): one release's H_a' never exceeds that of the pair.
(6) Soft labels (subsets): the class counts can show which members are in a release, so the
    whole subset S is taken as shown (the labels are the same on both sides): given S the
    release is the plain Laplace pair at J s, J = |S n G|, and J = 0 is the same on both sides.
    The pair is the revealed mixture over J ~ Hypergeometric(N, p, k) of those Laplace pairs.
    Permutation sampler: a member fills k slots of weight 1/k per epoch, so an epoch moves by at
    most p Delta in L1: the Laplace pair at p Delta / b per epoch.
"""

from _common import check

import itertools
import random
from fractions import Fraction

import numpy as np
import sympy as sp

from dpaccount.events import hypergeometric_pmf
from dpaccount.exact import subset_means
from dpaccount.samplers import group_components

print("The group pair dominates one release for a group of p records")

# (1) the coupling: replacing the members by uniform records outside G u S is uniform on J = 0
for n, k, p in ((6, 2, 2), (7, 3, 2), (7, 3, 3), (8, 2, 3)):
    group = set(range(p))
    subsets = [frozenset(s) for s in itertools.combinations(range(n), k)]
    for j in range(1, min(p, k) + 1):
        given = [s for s in subsets if len(s & group) == j]
        image = {}
        for s in given:
            outside = [r for r in range(n) if r not in group and r not in s]
            reps = list(itertools.combinations(outside, j))
            keep = s - group
            for rep in reps:
                t = keep | frozenset(rep)
                image[t] = image.get(t, 0) + Fraction(1, len(given) * len(reps))
        targets = [s for s in subsets if not (s & group)]
        check(set(image) == set(targets) and all(v == Fraction(1, len(targets))
                                                 for v in image.values()),
              f"N={n}, k={k}, p={p}, J={j}: the replacement gives the uniform law on J = 0")
    # the law of J, by enumeration, against hypergeometric_pmf
    counts = {}
    for s in subsets:
        counts[len(s & group)] = counts.get(len(s & group), 0) + 1
    pmf = dict(hypergeometric_pmf(n, p, k))
    check(all(abs(pmf[j] - c / len(subsets)) < 1e-12 for j, c in counts.items()),
          f"N={n}, k={k}, p={p}: hypergeometric_pmf agrees with enumeration")

# (3)-(4) the subsampled identity, pointwise: ((1-q) Q + q L) - a' Q = q (L - a Q), a' = 1+q(a-1)
q, a, L_, Q_ = sp.symbols("q a L Q", positive=True)
check(sp.simplify(((1 - q) * Q_ + q * L_) - (1 + q * (a - 1)) * Q_ - q * (L_ - a * Q_)) == 0,
      "((1-q) Q + q L) - a' Q = q (L - a Q) pointwise, so H_a'((1-q)Q + qL || Q) = q H_a(L||Q)")

# group_components: p = 1 is the one-record pair; weights sum to 1
one = group_components(hypergeometric_pmf(50, 1, 4), 1.5)
check(len(one) == 1 and abs(one[0][1] - 4 / 50) < 1e-14 and one[0][2] == 1.5,
      "p = 1: the one-record pair (q = k/N, eps0)")
for n, k, p in ((50, 4, 3), (1797, 4, 14), (6, 5, 2)):
    comps = group_components(hypergeometric_pmf(n, p, k), 1.0)
    check(abs(sum(w for w, _, _ in comps) - 1) < 1e-12 and len({c[1] for c in comps}) == 1,
          f"N={n}, k={k}, p={p}: label weights sum to 1, one q_p = {comps[0][1]:.4g}")


# (5) brute force, one release, 1-D, Laplace(b): H_a' of every end-point dataset pair against the
# pair's, on a fine grid (the same grid for both, so the comparison is like for like)
def lap(z, m, b):
    return np.exp(-np.abs(z - m) / b) / (2 * b)


def hockey(p_dens, q_dens, eps, dz):
    return float(np.sum(np.maximum(p_dens - np.exp(eps) * q_dens, 0.0)) * dz)


rng = random.Random(7)
zz = np.linspace(-12.0, 14.0, 65_001)
dz = zz[1] - zz[0]
EPS = (0.0, 0.3, 1.0, 2.0)
worst_ratio = 0.0
for n, k, p, b in ((5, 2, 2, 0.5), (6, 2, 2, 1.0), (6, 3, 2, 0.4), (6, 3, 3, 0.7), (5, 1, 2, 0.6)):
    comps = group_components(hypergeometric_pmf(n, p, k), 1.0 / (k * b))
    f0 = lap(zz, 0.0, b)
    pairs = [(w, (1 - qp) * f0 + qp * lap(zz, e0 * b, b)) for w, qp, e0 in comps]
    ours = [sum(w * hockey(pd, f0, eps, dz) for w, pd in pairs) for eps in EPS]
    datasets = []
    for rest in itertools.product((0.0, 1.0), repeat=n - p):
        for g in itertools.product((0.0, 1.0), repeat=p):
            for g2 in itertools.product((0.0, 1.0), repeat=p):
                if g < g2:  # both orders are checked below
                    datasets.append((np.array(g + rest), np.array(g2 + rest)))
    datasets = rng.sample(datasets, min(len(datasets), 16))
    for _ in range(6):  # interior values too
        rest = [rng.random() for _ in range(n - p)]
        datasets.append((np.array([rng.random() for _ in range(p)] + rest),
                         np.array([rng.random() for _ in range(p)] + rest)))
    best = [0.0] * len(EPS)
    for d1, d2 in datasets:
        p1 = lap(zz[:, None], subset_means(d1, k)[None, :, 0], b).mean(axis=1)
        p2 = lap(zz[:, None], subset_means(d2, k)[None, :, 0], b).mean(axis=1)
        for i, eps in enumerate(EPS):
            best[i] = max(best[i], hockey(p1, p2, eps, dz), hockey(p2, p1, eps, dz))
    # the symmetrised pair's profile at eps >= 0 is H(P~ || Q~) (proofs/symmetrised_pair.py)
    for eps, mine, theirs in zip(EPS, ours, best):
        if mine > 1e-9:
            worst_ratio = max(worst_ratio, theirs / mine)
        check(theirs <= mine + 1e-7, f"N={n}, k={k}, p={p}, b={b}, eps={eps}: brute force "
                                     f"{theirs:.6f} <= group pair {mine:.6f}")
print(f"  largest brute-force / group-pair ratio over these cases: {worst_ratio:.4f}")
print("QED")
