"""One type per sampler: the only place that knows what a sampler does.

A DP-InstaHide run chooses the records of each mixed sample by a *sampler* (``docs/theory.md``
Sec. 2). Everything the rest of the package needs to know about that choice lives here, as
attributes and methods of a :class:`SamplerType`:

* the inclusion probability of a record in one release (:meth:`SamplerType.inclusion_probability`),
  and what a released soft label does to it (:meth:`SamplerType.inclusion_mixtures`);
* the L1 shift of one release's sum when the record changes (:meth:`SamplerType.shift`);
* the pure-DP unit that is composed and how many times (:meth:`SamplerType.composition_unit`),
  including the epochs charged for a partial epoch (:meth:`SamplerType.epochs_charged`);
* whether a dominating pair of one release is known, or the named reason none is
  (:meth:`SamplerType.pair_reason`), and the Renyi bound of one release (:meth:`SamplerType.rdp`);
* the relations it is covered under (:meth:`SamplerType.check_relation`).

Accountants, audits and the CLI ask ``sampler_type(event.sampler)``; they never branch on the
sampler's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from .errors import InputError

__all__ = ["Sampler", "SamplerType", "CompositionUnit", "GroupLaw", "sampler_type",
           "SAMPLER_TYPES", "group_inclusion_probability", "group_components", "count_components",
           "ceil_epochs"]


class Sampler(str, Enum):
    """How each mixed sample chooses its k records (docs/theory.md Sec. 2, "Relations and samplers")."""

    #: i.i.d. uniform k-subsets of the whole training set for every output: what the paper's
    #: theorem covers, and what amplification by subsampling applies to.
    SUBSETS = "subsets"
    #: mixing inside a shuffled epoch with k independent permutations: every record is used in
    #: exactly k output slots per epoch, so there is no amplification by sampling.
    PERMUTATION = "permutation"
    #: each record joins each output independently with probability q = k/N; the sum is divided
    #: by the expected size k. Covered under add/remove-one only.
    POISSON = "poisson"


@dataclass(frozen=True)
class CompositionUnit:
    """What is composed: ``count`` mechanisms, each ``eps``-DP, and why."""

    eps: float
    count: int
    description: str


@dataclass(frozen=True)
class GroupLaw:
    """How a group of p records enters a run, for the group accountant
    (:mod:`dpaccount.accountants.group`, ``docs/pld.md`` "Groups of records",
    ``proofs/group_pair.py``): every unit (a release, or an epoch) is dominated by a *revealed*
    mixture of subsampled Laplace pairs. With weight ``weight`` the unit is the pair at
    inclusion ``q`` and ``eps0`` (``q = 1``: a plain Laplace pair; ``q = 0``: loss 0), and which
    component it came from may be shown to the adversary. ``count`` units are composed."""

    components: tuple  # ((weight, q, eps0), ...)
    count: int
    description: str


class SamplerType:
    """What a sampler does, for the accountants. Subclasses set the class attributes."""

    #: the :class:`Sampler` this type describes
    sampler: Sampler
    #: True when a record's presence in a release is random (amplification by sampling applies)
    amplifies: bool = True
    #: True when every record fills exactly k output slots per epoch (permutation mixing)
    epoch_structured: bool = False
    #: True when each record joins each release independently (Poisson sampling)
    independent_inclusion: bool = False
    #: the relations the accountants cover for this sampler
    relations: frozenset = frozenset({"substitution", "add_remove"})
    #: True when a release moves by a record's norm (a record added), not the diameter
    uses_norm: bool = False
    #: how a release's records are drawn, in words
    description: str = ""

    # ---- coverage ----
    def check_relation(self, relation) -> None:
        """Refuse a relation no accountant covers for this sampler (named reason)."""
        rel = getattr(relation, "value", relation)
        if rel not in self.relations:
            only = " and ".join(sorted(self.relations))
            raise InputError(f"sampler {self.sampler.value!r} is covered under relation "
                             f"{only} only; got relation {rel!r}{self._relation_why()}")

    def _relation_why(self) -> str:
        return ""

    def check_norm(self, norm) -> None:
        """The sampler's requirement on the record norm (only Poisson needs one)."""

    # ---- one release ----
    def inclusion_probability(self, n: int, k: int) -> float:
        """The probability that a given record is in a given release: ``q = k / N``."""
        return k / n

    def shift(self, event) -> float:
        """L1 distance the release's sum (before dividing by k) moves when the record changes:
        the diameter when a record is replaced (substitution, or fixed-size subsets under
        add/remove, where the coupling swaps the record for another one)."""
        return event.diameter

    def inclusion_mixtures(self, event):
        """Per distinct size of the record's class, the law of its inclusion probability given
        what the release shows: ``((n_c, ((weight, q), ...)), ...)``. Without information
        beyond the image: one entry ``(n, ((1, q),))``."""
        return ((event.n, ((1.0, self.inclusion_probability(event.n, event.k)),)),)

    def label_note(self, event) -> str | None:
        """What released soft labels do under this sampler (None: the default words)."""
        return "labels soft (un-noised; no effect under this sampler)"

    # ---- composition ----
    def epochs_charged(self, event) -> float:
        """The epochs a run is charged for: ``releases / n`` (a partial epoch is a fraction)."""
        return event.releases / event.n

    def composition_unit(self, event) -> CompositionUnit:
        """The pure-DP building block of a run and how many times it is composed: each release
        eps1-DP with the largest inclusion probability the release can show ([BBG18] Table 1;
        for fixed-size subsets under add/remove q is taken at the larger dataset, N, which
        covers both neighbours: ``proofs/mixture_ratio_bound.py``), composed over the T
        releases. Pure-DP steps compose by these theorems whatever the other
        records are, so the composition pitfall of substitution pairs does not arise here."""
        from .numerics.closed_form import amplified_epsilon

        return CompositionUnit(amplified_epsilon(event.eps0, event.worst_inclusion),
                               event.releases, "releases, each eps1-DP (amplified)")

    def pair_reason(self, event) -> str | None:
        """None when the subsampled Laplace pair bounds one release (the PLD applies), else
        why not."""
        return None

    def revealed_units(self, event):
        """None when a run is composed release by release (the subsampled pair); else the units
        a PLD accountant composes instead, each a revealed mixture of plain Laplace pairs:
        ``(((weight, q, eps0), ...), count), ...)``."""
        return None

    def shuffled_units(self, event):
        """Further dominating laws a PLD accountant may compose instead of
        :meth:`revealed_units` (it takes the smallest epsilon, every one sound), with components
        that make their own pieces, and the words that name them: ``(options, description)``,
        ``options`` a tuple of unit tuples; or ``(None, why not)``."""
        return None, "no hidden positions under this sampler"

    def group_unit(self, event, p: int) -> CompositionUnit:
        """The pure-DP unit of a run for a group of ``p`` records (poisoning certificates): a
        release meets the group with probability ``q_p`` and then moves by at most the group's
        shift; coupling as for one record (``proofs/mixture_ratio_bound.py`` with ``q -> q_p``)."""
        raise NotImplementedError

    def group_law(self, event, p: int) -> GroupLaw:
        """The revealed mixture that dominates every unit of a run for a group of ``p`` records
        (:class:`GroupLaw`; ``proofs/group_pair.py``)."""
        raise NotImplementedError

    def rdp(self, alpha: int, q: float, eps0: float) -> float:
        """Renyi DP of order ``alpha`` of one release with inclusion probability ``q``."""
        raise NotImplementedError

    def rdp_reason(self, relation) -> str | None:
        """None when :meth:`rdp` covers ``relation``, else why not."""
        return None


class SubsetsType(SamplerType):
    sampler = Sampler.SUBSETS
    description = "k-subset without replacement"

    def inclusion_mixtures(self, event):
        """With released soft labels the release shows ``j``, the number of records of the
        record's class it holds: ``j ~ Hypergeometric(N, n_c, k)`` (the same law on both
        neighbours: labels are public and unchanged), and given ``j`` the record is in it with
        probability ``j / n_c`` (``docs/theory.md`` Sec. 2, ``proofs/soft_label_mixture.py``).
        ``j = 0`` gives ``q = 0``. Unknown class sizes are taken as 1, the worst case."""
        if event.labels.value != "soft":
            return super().inclusion_mixtures(event)
        from .events import hypergeometric_inclusion

        sizes = sorted(set(event.class_sizes)) if event.class_sizes is not None else [1]
        return tuple((nc, hypergeometric_inclusion(event.n, nc, event.k)) for nc in sizes)

    def label_note(self, event) -> str | None:
        return None

    def group_unit(self, event, p: int) -> CompositionUnit:
        """``q_p = 1 - C(N-p, k)/C(N, k)`` and shift ``min(p, k) Delta / k``. With un-noised
        soft labels the class counts can show the group: no amplification is claimed."""
        from .numerics.closed_form import amplified_epsilon

        shift_eps = min(p, event.k) * event.eps0
        if event.labels.value == "soft":
            qp, how = 1.0, "soft labels: q_p = 1 (the class counts can show the group)"
        else:
            qp = group_inclusion_probability(event.n, event.k, p)
            how = f"q_p = {qp:.4g}"
        step = amplified_epsilon(shift_eps, qp)
        return CompositionUnit(step, event.releases, f"{how}, per-release group eps {step:.4g}")

    def group_law(self, event, p: int) -> GroupLaw:
        """``J ~ Hypergeometric(N, p, k)`` members of the group in a release (N the larger
        dataset under add/remove, as for one record), each moving it by ``Delta/k``:
        :func:`group_components` of that law. With un-noised soft labels the class counts can
        show the group: the subset is taken as shown, so only the releases that hold no member
        are free (a revealed mixture over ``J`` of plain Laplace pairs at ``J eps0``;
        ``proofs/group_pair.py``)."""
        from .events import hypergeometric_pmf

        pmf = hypergeometric_pmf(event.n, p, event.k)
        if event.labels.value == "soft":
            # the class counts can show which members are in the release: shown the whole
            # subset, a release holding j members is the plain Laplace pair at j eps0, and one
            # holding none is the same on both sides
            return GroupLaw(count_components(pmf, event.eps0),
                            event.releases,
                            f"soft labels: the subset shown (the class counts can show the "
                            f"group), J ~ Hypergeometric(N={event.n}, p={p}, k={event.k}) "
                            f"members per release, each the plain Laplace pair at J Delta/k")
        comps = group_components(pmf, event.eps0)
        return GroupLaw(comps, event.releases,
                        f"J ~ Hypergeometric(N={event.n}, p={p}, k={event.k}) members per "
                        f"release, q_p = P(J >= 1) = {comps[0][1]:.4g}")

    def rdp(self, alpha: int, q: float, eps0: float) -> float:
        from .numerics.rdp import subsampled_rdp_wor

        return subsampled_rdp_wor(alpha, q, eps0)

    def rdp_reason(self, relation) -> str | None:
        if getattr(relation, "value", relation) != "substitution":
            return ("the RDP accountant covers sampler 'subsets' under relation 'substitution' "
                    "only (Wang et al. 2019 Thm 9); got 'add_remove'")
        return None


class PoissonType(SamplerType):
    sampler = Sampler.POISSON
    independent_inclusion = True
    uses_norm = True
    relations = frozenset({"add_remove"})
    description = "Poisson sampling"

    def check_norm(self, norm) -> None:
        if norm is None:
            raise InputError(
                "sampler 'poisson' under add_remove needs norm, the largest L1 norm of a record "
                "(adding a record moves the sum by its norm, not by the diameter); give --image "
                "with --value-range, or --norm")

    def shift(self, event) -> float:
        """Adding a record to a Poisson-sampled sum moves it by the record's norm."""
        return event.norm

    def group_unit(self, event, p: int) -> CompositionUnit:
        """Each of the p records joins independently with probability k/N, and all p may join:
        ``q_p = 1 - (1 - k/N)^p``, shift ``p * norm / k``."""
        from .numerics.closed_form import amplified_epsilon

        q = self.inclusion_probability(event.n, event.k)
        qp = -math.expm1(p * math.log1p(-q)) if q < 1.0 else 1.0
        step = amplified_epsilon(p * event.eps0, qp)
        return CompositionUnit(step, event.releases,
                               f"Poisson: q_p = {qp:.4g}, per-release group eps {step:.4g}")

    def group_law(self, event, p: int) -> GroupLaw:
        """``J ~ Binomial(p, k/N)`` members join a release, each moving it by ``norm/k``:
        :func:`group_components` of that law (``proofs/group_pair.py``)."""
        from .events import binomial_pmf

        q = self.inclusion_probability(event.n, event.k)
        pmf = binomial_pmf(p, q)
        comps = group_components(pmf, event.eps0)
        return GroupLaw(comps, event.releases,
                        f"J ~ Binomial(p={p}, k/N={q:.4g}) members per release, q_p = "
                        f"{comps[0][1]:.4g}")

    def rdp(self, alpha: int, q: float, eps0: float) -> float:
        from .numerics.rdp import poisson_subsampled_rdp

        return poisson_subsampled_rdp(alpha, q, eps0)


class PermutationType(SamplerType):
    sampler = Sampler.PERMUTATION
    amplifies = False
    epoch_structured = True
    relations = frozenset({"substitution"})
    description = "k independent permutations per epoch"

    def _relation_why(self) -> str:
        return " (under add/remove the number of outputs per epoch itself reveals N)"

    def epochs_charged(self, event) -> int:
        """A partial epoch counts whole: ``ceil(T / N)``."""
        return ceil_epochs(event.releases, event.n)

    def composition_unit(self, event) -> CompositionUnit:
        """Within one epoch a record fills exactly k slots with weight 1/k each, so the whole
        epoch (given the permutations, which are data-independent) is a Laplace mechanism with
        L1 sensitivity Delta: ``Delta/b``-DP per epoch ([DMNS06]), composed over the epochs
        charged. No amplification by sampling."""
        from .numerics.closed_form import naive_epsilon

        if event.random_weights:
            return CompositionUnit(naive_epsilon(event.diameter * event.weight_per_epoch,
                                                 event.noise), self.epochs_charged(event),
                                   "epochs, each k Delta/b-DP (k slots of random weight up to 1 "
                                   "per record per epoch)")
        return CompositionUnit(naive_epsilon(event.diameter, event.noise),
                               self.epochs_charged(event),
                               "epochs, each Delta/b-DP (k slots of weight 1/k per record per "
                               "epoch)")

    def pair_reason(self, event) -> str | None:
        return ("permutation mixing has no amplification by sampling (every record is in k "
                "slots of every epoch); see the closed forms and the pld-tilted row")

    def revealed_units(self, event):
        """Per epoch, each of the k permutations puts the record in one output, at a uniform
        position; shown where (which only helps the adversary), an epoch is a Laplace mechanism
        moved by ``J`` slots of shift ``eps0`` (``Delta/(k b)``; ``Delta/b`` with random
        weights): ``J = k`` in a whole epoch, and ``J ~ Binomial(k, m/N)`` in a last epoch cut
        after m outputs (each permutation's slot lands among the first m independently). The
        plain Laplace pair at ``J eps0``, composed over the epochs: a partial epoch is charged
        as what it is. No amplification by the hidden positions is counted here
        (:meth:`shuffled_units` counts one hidden slot per epoch; ``docs/pld_hits.md``,
        "Permutation mixing")."""
        from .events import binomial_pmf

        full, m = divmod(int(event.releases), int(event.n))
        units = []
        if full:
            units.append((count_components(((event.k, 1.0),), event.eps0), full))
        if m:
            units.append((count_components(binomial_pmf(event.k, m / event.n), event.eps0), 1))
        return tuple(units)

    def shuffled_units(self, event):
        """Whole epochs amplified by the hidden slot of one permutation
        (:class:`~dpaccount.numerics.shuffle.ShuffledEpoch`, ``docs/pld_hits.md``, "Permutation
        mixing: amplification by the hidden position"): the record's slots of ``k - 1``
        permutations shown, its report in the remaining one shuffled among the reports of the
        slots not shown (Feldman, McMillan, Talwar 2021, Thm 3.2). A last partial epoch gives
        two options: its revealed count as in :meth:`revealed_units`, or one more whole hidden
        epoch (what it releases is a post-processing of the whole epoch). With un-noised soft
        labels a slot's label shows the class of
        the record it holds, so the report is hidden among its class only (the smallest class
        size given; unknown sizes: a class of one, nothing hidden). Not built with random
        weights, or where fewer than one clone is expected (it could not beat the revealed
        law). The argument: ``proofs/shuffle_clones.py``."""
        from .events import binomial_pmf
        from .numerics.shuffle import ShuffledEpoch

        full, m = divmod(int(event.releases), int(event.n))
        if event.random_weights:
            return None, "not built for random mixing weights"
        pool = event.n
        if event.labels.value == "soft":
            pool = min(event.class_sizes) if event.class_sizes is not None else 1
        others = pool - event.k
        if others < 1 or others * math.exp(-min(event.eps0, 745.0)) < 1.0:
            return None, (f"fewer than one clone expected among {max(others, 0)} other reports "
                          f"at eps0 = {event.eps0:.4g}")
        epoch = (ShuffledEpoch(event.k, event.n, pool, event.eps0),)
        words = (f"one slot per epoch hidden among {pool - event.k + 1} reports (Feldman, "
                 f"McMillan, Talwar 2021 Thm 3.2)")
        if not m:
            return (((epoch, full),),), words
        # a last partial epoch: its revealed count, or the whole epoch's law (the outputs it
        # releases are a post-processing of the whole epoch's); both are composed and the
        # smaller taken, so that the row does not fall when T grows (a revealed count of a
        # nearly whole epoch can cost more than one more hidden epoch)
        partial = count_components(binomial_pmf(event.k, m / event.n), event.eps0)
        first = ((epoch, full), (partial, 1)) if full else ((partial, 1),)
        return (first, ((epoch, full + 1),)), words

    def group_unit(self, event, p: int) -> CompositionUnit:
        """A record fills k slots per epoch: the group's p records move the epoch's outputs by
        at most ``p * Delta`` in L1, so ``p Delta / b`` per epoch (Laplace)."""
        from .numerics.closed_form import naive_epsilon

        return CompositionUnit(p * naive_epsilon(event.diameter * event.weight_per_epoch,
                                                 event.noise),
                               self.epochs_charged(event), "permutation: p Delta/b per epoch"
                               + (" times k (random weights)" if event.random_weights else ""))

    def group_law(self, event, p: int) -> GroupLaw:
        """An epoch is a Laplace mechanism of L1 sensitivity ``p Delta`` for the group (each
        member fills k slots of weight 1/k): the plain Laplace pair at ``p Delta / b`` per epoch
        charged (``proofs/group_pair.py``)."""
        from .numerics.closed_form import naive_epsilon

        return GroupLaw(((1.0, 1.0, p * naive_epsilon(event.diameter * event.weight_per_epoch,
                                                      event.noise)),),
                        self.epochs_charged(event),
                        f"permutation: Laplace pair at p Delta/b per epoch, "
                        f"{self.epochs_charged(event)} epochs charged")

    def rdp_reason(self, relation) -> str | None:
        return ("the RDP accountant covers samplers 'subsets' and 'poisson', not 'permutation' "
                "(an epoch is a Laplace mechanism on many coordinates)")


def count_components(pmf, eps0: float) -> tuple:
    """A revealed count ``J`` (``pmf``: ``((j, P(J = j)), ...)``) of shifts of ``eps0`` each: the
    plain Laplace pair at ``J eps0`` with weight ``P(J = j)``, and ``J = 0`` a loss of 0 (the same
    release on both sides). Components ``(weight, q, eps0)``; what is shown when the positions
    of the record (a permutation epoch) or of a group's members (un-noised soft labels) are."""
    return tuple((w, 0.0 if j == 0 else 1.0, max(j, 1) * eps0) for j, w in pmf)


def group_components(pmf, eps0: float) -> tuple:
    """The pair that dominates one release for a group whose release holds ``J`` members
    (``pmf``: ``((j, P(J = j)), ...)``), each member moving the release by ``eps0`` (in units of
    b): with ``q_p = P(J >= 1)``, a label ``j`` drawn from the law of ``J`` given ``J >= 1`` and
    shown to the adversary, then the subsampled Laplace pair at ``q_p`` and ``j eps0``:
    components ``(P(J = j) / q_p, q_p, j eps0)``.

    The one-record argument (Balle, Barthe, Gaboardi 2018, Thm 2) with ``q -> q_p``, where the
    release given a hit is the mixture over ``j`` of releases ``j eps0`` away from a miss
    (``proofs/group_pair.py``): whether the group is in the release stays hidden; only the label
    is revealed, and it has the same law whatever the data. With ``p = 1`` this is the one-record
    pair; with ``q_p = 1`` (the group cannot be avoided) a revealed mixture of Laplace pairs."""
    hits = [(j, w) for j, w in pmf if j >= 1 and w > 0.0]
    if not hits:  # the group is never in a release (cannot happen for p >= 1, k >= 1)
        return ((1.0, 0.0, eps0),)
    qp = min(1.0, math.fsum(w for _, w in hits))
    return tuple((w / qp, qp, j * eps0) for j, w in hits)


def ceil_epochs(releases: int, n: int) -> int:
    """Epochs of ``n`` outputs that ``releases`` outputs touch: ``ceil(releases / n)``."""
    return -(-int(releases) // int(n))


def group_inclusion_probability(n: int, k: int, p: int) -> float:
    """``q_p = 1 - C(N-p, k) / C(N, k)``: a uniform k-subset of N meets a fixed p-set."""
    if p >= n - k + 1:
        return 1.0
    # C(N-p, k)/C(N, k) = prod_{i<k} (1 - p/(N-i)), in log1p form, summed with fsum
    log_miss = math.fsum(math.log1p(-p / (n - i)) for i in range(k))
    return -math.expm1(log_miss)


#: The sampler types, by sampler.
SAMPLER_TYPES = {t.sampler: t() for t in (SubsetsType, PoissonType, PermutationType)}


def sampler_type(sampler) -> SamplerType:
    """The :class:`SamplerType` of ``sampler`` (a :class:`Sampler` or its name)."""
    try:
        return SAMPLER_TYPES[Sampler(getattr(sampler, "value", sampler))]
    except ValueError:
        choices = ", ".join(repr(m.value) for m in Sampler)
        raise InputError(f"sampler must be one of {choices}; got {sampler!r}") from None

