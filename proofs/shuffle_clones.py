"""Proof step: a permutation epoch is dominated by the Laplace pair of the shown slots times the
clone pair of the hidden one (amplification by shuffling).

Justifies: dpaccount.numerics.shuffle.clone_points, dpaccount.numerics.shuffle.ShuffledEpoch, dpaccount.samplers.PermutationType.shuffled_units

Setting (docs/pld_hits.md, "Permutation mixing: amplification by the hidden position"). An epoch
draws k independent uniform permutations of the N records into N slots; slot j releases the mean
of its k records plus Laplace noise per coordinate. D and D' differ in one record, x vs x'. Each
record's report in a slot, R(x) = x/k + Lap(b), is eps0-DP, eps0 = Delta/(k b).

(1) Showing the record's slots of permutations 2..k (and, if the hidden slot falls into one of
    them, everything) is post-processing in reverse: it can only help the adversary. Given
    that, and given which records permutation 1 puts into the shown slots, permutation 1 is a
    uniform bijection between the remaining records (the record among them) and the remaining
    slots: at least N - (k - 1) reports. Subtracting the known tokens of other records, those
    slots are a shuffle of eps0-DP reports; the shown slots are a Laplace mechanism whose L1
    shift is at most (k - 1) Delta / k, dominated by the 1-D Laplace pair at (k - 1) eps0
    (proofs/group_pair.py (1), the L1 Laplace bound). The two parts use different noise, so
    their product dominates. With probability rho = 1 - (1 - 1/N)^(k - 1) the hidden slot falls
    into a shown one; that epoch is shown whole: the 1-D Laplace pair at k eps0.
(2) Feldman, McMillan, Talwar 2021, Thm 3.2 (the clone reduction). For eps0-DP R,
    W_0 = (a R(x) - (1-a) R(x')) / (2a - 1) and W_1 = (a R(x') - (1-a) R(x)) / (2a - 1),
    a = e^eps0 / (1 + e^eps0), are distributions with R(x) = a W_0 + (1-a) W_1 and R(x') =
    (1-a) W_0 + a W_1; and every other report satisfies R(x_i) >= (p/2)(W_0 + W_1) with
    p = e^-eps0, since W_0 + W_1 = R(x) + R(x'). Hence the shuffled reports are a post-processing
    of the count S of W_0 draws among C + 1 clone-or-record draws, C ~ Bin(n - 1, p) shown:
    P: S = Bin(C, 1/2) + Bern(a), Q: S = Bin(C, 1/2) + Bern(1 - a).
    Checked below: the decomposition on random finite randomizers, and the whole reduction by
    exact enumeration of shuffled finite reports (every multiset) against the clone pair.
(3) The pair at C = c dominates the pair at c + 1 (one more Bern(1/2) added to S on both sides),
    so capping C from above, moving its lower tail to 0, and fewer reports are all sound; the
    pair is symmetric. Checked below.
(4) The law ShuffledEpoch builds (cell aggregation, long double FFT, errors to the top loss) is
    checked against the independent atom-by-atom sum in tests/accountants/test_shuffle.py, and
    the whole epoch against brute force of the permutation mechanism (dpaccount.exact_permutation)
    in tests/accountants/test_permutation_brute.py.
"""

import math
import random
from collections import defaultdict

import numpy as np

from _common import check
from dpaccount.numerics.shuffle import clone_delta, clone_points


def clone_exact(n, eps0, eps):
    """The clone pair by plain enumeration (float64, small n)."""
    p = math.exp(-eps0)
    a = math.exp(eps0) / (1 + math.exp(eps0))
    tot = 0.0
    for c in range(n):
        wc = math.comb(n - 1, c) * p ** c * (1 - p) ** (n - 1 - c)
        for s in range(c + 2):
            ba = math.comb(c, s - 1) / 2 ** c if s >= 1 else 0.0
            bb = math.comb(c, s) / 2 ** c if s <= c else 0.0
            tot += max(wc * (a * ba + (1 - a) * bb) - math.exp(eps) * wc * ((1 - a) * ba + a * bb),
                       0.0)
    return tot


def random_randomizer(rng, inputs, outputs, eps0):
    """A finite eps0-DP randomizer: row i proportional to exp(u_i), u_i in [0, eps0/2]^outputs
    random (each ratio of entries is at most e^{eps0/2}, each ratio of normalisers too). Its
    exact eps0 (the largest log ratio) is what the checks use."""
    u = np.array([[rng.uniform(0, eps0 / 2) for _ in range(outputs)] for _ in range(inputs)])
    r = np.exp(u)
    r /= r.sum(axis=1, keepdims=True)
    assert np.log(r[:, None, :] / r[None, :, :]).max() <= eps0 + 1e-12
    return r


def shuffled_law(rows):
    """Exact law of the multiset (counts per output) of independent reports with these rows."""
    law = {tuple([0] * rows.shape[1]): 1.0}
    for row in rows:
        nxt = defaultdict(float)
        for counts, pr in law.items():
            for y, py in enumerate(row):
                c = list(counts)
                c[y] += 1
                nxt[tuple(c)] += pr * py
        law = nxt
    return law


def hockey(p, q, eps):
    keys = set(p) | set(q)
    return sum(max(p.get(x, 0.0) - math.exp(eps) * q.get(x, 0.0), 0.0) for x in keys)


print("(2a) the randomized-response decomposition and the clones, on random finite randomizers")
rng = random.Random(11)
worst_w = math.inf
worst_clone = math.inf
for trial in range(200):
    eps0 = rng.choice([0.1, 0.5, 1.0, 2.0, 4.0])
    r = random_randomizer(rng, 4, 5, eps0)
    true_eps0 = float(np.log(r[:, None, :] / r[None, :, :]).max())
    a = math.exp(true_eps0) / (1 + math.exp(true_eps0))
    x, xp = r[0], r[1]
    w0 = (a * x - (1 - a) * xp) / (2 * a - 1) if a > 0.5 else None
    if w0 is None:
        continue
    w1 = (a * xp - (1 - a) * x) / (2 * a - 1)
    worst_w = min(worst_w, w0.min(), w1.min())
    p = math.exp(-true_eps0)
    for i in range(2, 4):
        worst_clone = min(worst_clone, float((r[i] - p / 2 * (w0 + w1)).min()))
# (round-off only: at the output where the ratio e^eps0 is attained W is exactly 0)
check(worst_w >= -1e-14, f"W_0, W_1 >= 0 on 200 random randomizers (smallest {worst_w:.3g})")
check(worst_clone >= -1e-14, f"R(x_i) - (p/2)(W_0 + W_1) >= 0 (smallest {worst_clone:.3g})")

print("(2b) exact shuffles of finite reports against the clone pair, both orders")
worst_ratio = 0.0
count = 0
violations = []
for n in (2, 3, 4, 5):
    for trial in range(12):
        eps0 = rng.choice([0.2, 0.7, 1.5, 3.0])
        r = random_randomizer(rng, 5, 3, eps0)
        true_eps0 = float(np.log(r[:, None, :] / r[None, :, :]).max())
        others = [rng.randrange(2, 5) for _ in range(n - 1)]
        if trial % 3 == 0:
            others = [rng.choice([0, 1]) for _ in range(n - 1)]  # clones of the pair itself
        pd = shuffled_law(np.array([r[0]] + [r[i] for i in others]))
        pdp = shuffled_law(np.array([r[1]] + [r[i] for i in others]))
        for eps in (0.0, 0.1, 0.3, 0.6, 1.0, 2.0):
            if eps >= true_eps0:
                continue
            truth = max(hockey(pd, pdp, eps), hockey(pdp, pd, eps))
            bound = clone_exact(n, true_eps0, eps)
            count += 1
            if bound > 1e-12:
                worst_ratio = max(worst_ratio, truth / bound)
            if truth > bound + 1e-12:
                violations.append((n, true_eps0, eps, truth, bound))
check(count > 100 and not violations,
      f"{count} exact shuffles never above the clone pair (largest ratio {worst_ratio:.4f}); "
      f"violations: {violations[:3]}")

print("(3) fewer clones dominate; the pair is symmetric; the code's atoms are the pair")
for eps0 in (0.3, 1.0, 3.0):
    for eps in (0.0, 0.2 * eps0, 0.6 * eps0):
        seq = [clone_exact(n, eps0, eps) for n in range(1, 14)]
        check(all(b <= a + 1e-15 for a, b in zip(seq, seq[1:])),
              f"eps0={eps0}, eps={eps:.2f}: delta nonincreasing in n = 1..13")
for n, eps0 in ((6, 0.5), (9, 2.0)):
    mass, loss = clone_points(n, eps0)
    # symmetry: the law of -loss under Q equals the law of loss under P (reflect s -> C + 1 - s)
    q_mass = mass * np.exp(-loss)
    check(abs(q_mass.sum() - 1) < 1e-12, f"n={n}, eps0={eps0}: Q-masses (e^-loss P) sum to 1")
    for eps in np.linspace(0.0, eps0, 9):
        d_pq = float(np.dot(mass, np.maximum(-np.expm1(eps - loss), 0.0)))
        d_qp = float(np.dot(q_mass, np.maximum(-np.expm1(eps + loss), 0.0)))
        check(abs(d_pq - d_qp) < 1e-13, f"n={n}, eps0={eps0}, eps={eps:.3f}: H(P||Q) = H(Q||P) "
                                        f"(the pair is symmetric)")
    for eps in (0.0, 0.4 * eps0):
        check(abs(clone_delta(n, eps0, eps) - clone_exact(n, eps0, eps)) < 1e-13,
              f"n={n}, eps0={eps0}, eps={eps}: clone_points sums to the enumerated pair")
print("QED")
