"""Proof step: what an un-noised soft label does to amplification, checked by enumeration.

Justifies: dpaccount.samplers.SubsetsType.inclusion_mixtures,
dpaccount.events.hypergeometric_inclusion

A release with a soft label is (j-vector, z): the counts of every class in the k-subset S (what
the mean of the k one-hot labels shows exactly) and the noisy mean image. Labels are public and
the same in D and D' (the substitution changes an image, not a label). For the record r of class
c, with n_c records in class c:
(1) the law of the count vector is the same under D and D' (it depends on labels only), and the
    count j of class c is Hypergeometric(N, n_c, k);
(2) given the count vector, S is a uniform j-subset of class c times independent subsets of the
    other classes, so r is in S with probability j / n_c (not k / N);
(3) given the count vector, the release is (1 - j/n_c) A + (j/n_c) B under D and
    (1 - j/n_c) A + (j/n_c) B' under D', where coupling r with a uniform other member of class c
    not in S makes A the mixture without r: the subsampled pair at q = j/n_c, whose dominating
    laws (docs/theory.md Sec. 3) apply with that q;
(4) the count vector is seen, so one release's privacy loss law is the mixture over j of those
    laws (a revealed mixture: hockey-stick divergences and e^{(a-1) D_a} add with the weights).
(1)-(3) are checked by exact enumeration of every k-subset (rational arithmetic, sympy) on small
labelled datasets; (4) is the definition of a disjoint mixture. Unknown class sizes: n_c = 1 is
the worst case (j in {0, 1}, j/n_c in {0, 1}: the label says whether r was drawn).
"""

from _common import check

import itertools
from collections import Counter

import sympy as sp

from dpaccount.events import hypergeometric_inclusion

print("Soft labels: the class count is seen, and the inclusion probability is j / n_c")

for labels, k in (((0, 0, 1, 1, 1, 2), 2), ((0, 1, 1, 1, 1), 3), ((0, 0, 0, 1, 1, 2, 2), 3),
                  ((0, 1), 1), ((0, 0, 0, 0), 2)):
    n = len(labels)
    r = 0  # the record whose image changes
    c = labels[r]
    nc = labels.count(c)
    subsets = list(itertools.combinations(range(n), k))
    total = sp.Integer(len(subsets))
    by_counts = {}
    for s in subsets:
        key = tuple(sorted(Counter(labels[i] for i in s).items()))
        by_counts.setdefault(key, []).append(s)
    law_j = Counter()
    for key, group in by_counts.items():
        j = dict(key).get(c, 0)
        law_j[j] += sp.Integer(len(group)) / total
        incl = sp.Integer(sum(r in s for s in group)) / len(group)
        check(incl == sp.Rational(j, nc),
              f"labels {labels}, k={k}, counts {dict(key)}: P(r in S | counts) = {incl} = j/n_c")
        # (3) coupling: subsets of the group with r, r swapped for each other class-c member
        # outside S, give the group's subsets without r, each equally often
        if 0 < j < nc:
            swapped = Counter()
            for s in group:
                if r in s:
                    for o in range(n):
                        if labels[o] == c and o not in s:
                            swapped[tuple(sorted((set(s) - {r}) | {o}))] += 1
            without = [s for s in group if r not in s]
            check(set(swapped) == set(without) and len(set(swapped.values())) == 1,
                  f"labels {labels}, k={k}, counts {dict(key)}: the swap coupling maps the "
                  "subsets with r uniformly onto those without")
    # (1) the count of class c is hypergeometric, and so is what dpaccount computes
    hyp = {j: sp.binomial(nc, j) * sp.binomial(n - nc, k - j) / sp.binomial(n, k)
           for j in range(0, min(k, nc) + 1)}
    check(all(law_j[j] == hyp.get(j, 0) for j in set(law_j) | set(hyp)),
          f"labels {labels}, k={k}: the class count j ~ Hypergeometric(N={n}, n_c={nc}, k={k})")
    mine = {round(q * nc): w for w, q in hypergeometric_inclusion(n, nc, k)}
    check(all(abs(mine.get(j, 0.0) - float(p)) < 1e-12 for j, p in hyp.items() if p > 0),
          f"labels {labels}, k={k}: dpaccount.events.hypergeometric_inclusion agrees")

# a class of one: the label says whether the record was drawn
one = hypergeometric_inclusion(10, 1, 3)
check(sorted(q for _, q in one) == [0.0, 1.0] and abs(dict((q, w) for w, q in one)[1.0] - 0.3)
      < 1e-15, "n_c = 1: q is 0 or 1, and 1 with probability k/N (no amplification)")
print("QED")
