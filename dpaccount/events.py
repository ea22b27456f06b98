"""Events: immutable, validated descriptions of what ran.

One phase of a DP-InstaHide run is an :class:`InstaHide`; phases run one after the other are a
:class:`ComposedEvent`. An :class:`InstaHide` value says *what was run*: how many records are mixed (``k``), the Laplace
scale ``noise`` (``b``), the dataset size ``n`` (``N``), the L1 diameter of a record's domain
(``diameter``, ``Delta``), how mixed samples are drawn (``sampler``), which neighbouring relation
the guarantee is stated for (``relation``) and how many mixed samples were released
(``releases``, ``T``). Accountants (:mod:`dpaccount.accountants`) interpret it; nothing here
computes privacy, and what the sampler does is :mod:`dpaccount.samplers`' business. A field's
meaning never changes once published (the contract of dp_accounting's ``dp_event.py``).

The mechanism (Borgnia et al. 2021, arXiv:2103.02079, Sec. 4; ``docs/theory.md`` Sec. 1): each release
draws a k-subset ``S`` of the records and outputs ``(1/k) * sum_{i in S} x_i + Lap(0, b)^d``.

Every field is validated at construction. A bad value raises
:class:`~dpaccount.errors.InputError` (a :class:`ValueError`) whose message names the parameter,
the rule it broke and the value, before any object exists.
"""

from __future__ import annotations

import math
import numbers
import re
import sys
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Sequence
from .errors import InputError
from .samplers import Sampler, sampler_type
from .validate import check_enum, check_positive_finite, check_positive_int

__all__ = [
    "Sampler",
    "Relation",
    "Labels",
    "InstaHide",
    "parse_class_sizes",
    "image_diameter",
    "image_norm",
    "hypergeometric_inclusion",
    "hypergeometric_pmf",
    "binomial_pmf",
    "parse_image_shape",
    "parse_value_range",
    "LABEL_DIAMETER",
    "ComposedEvent",
    "phases_of",
    "compose",
    "sampler_name",
]

#: L1 distance between two different one-hot label vectors: what a released label adds to the
#: domain's diameter when labels are part of the record (docs/theory.md Sec. 1).
LABEL_DIAMETER = 2.0

#: Largest number of releases accepted. The closed forms are tested up to 1e9; beyond 1e12 the
#: float arithmetic of ``T * eps`` is no longer checked, so such runs are refused, not guessed.
MAX_RELEASES = 10**12


class Labels(str, Enum):
    """What is released beside each noisy mixed image (docs/theory.md Sec. 1-2).

    The paper's theorem covers the image. Whatever else ships with it must be accounted too."""

    #: no label is released: only the noisy mixed image.
    NONE = "none"
    #: the soft label (the mean of the k one-hot labels) is released WITHOUT noise, as in
    #: mixup and in DP-InstaHide training as commonly run. Labels are public and the same in
    #: both neighbours (the substitution changes a record's image, not its label). The soft label
    #: shows how many records of each class the release holds, so for a record of a class of
    #: ``n_c`` members the inclusion probability given the release is ``j / n_c`` (j of them
    #: drawn), not ``k / N``; a record alone in its class gets no amplification at all.
    SOFT = "soft"
    #: the one-hot label is part of the record and is mixed and noised with it: the released
    #: record's L1 diameter includes the label's 2 (and its L1 norm the label's 1).
    NOISED = "noised"


class Relation(str, Enum):
    """Which datasets count as neighbours."""

    #: replace one record by another (bounded DP): the relation of the paper's claim.
    SUBSTITUTION = "substitution"
    #: add or remove one record (unbounded DP).
    ADD_REMOVE = "add_remove"


@dataclass(frozen=True)
class InstaHide:
    """One DP-InstaHide run, as the accountants need to know it.

    Parameters
    ----------
    k:
        records mixed into each release (uniform weights 1/k), ``1 <= k <= n``.
    noise:
        Laplace scale ``b`` of the noise added to every coordinate, in the records' units.
    n:
        number of records in the training set ``N``.
    diameter:
        the L1 diameter ``Delta`` of a record's domain, ``max ||x - x'||_1``. Use
        :func:`image_diameter` for images. Under ``add_remove`` with the ``poisson`` sampler it is
        read as the largest L1 norm of a record (equal to the diameter for ``[0, hi]^d``).
    releases:
        number of mixed samples released ``T`` (``epochs * n`` for whole epochs; see
        :meth:`from_epochs`).
    sampler, relation:
        see :class:`Sampler` and :class:`Relation`. Combinations that no accountant here covers
        are refused: ``poisson`` is defined under ``add_remove`` only, ``permutation`` under
        ``substitution`` only (under add/remove the number of outputs per epoch itself reveals N).
    labels:
        what is released beside each image (:class:`Labels`): ``"soft"`` (default: the soft label
        without noise, what DP-InstaHide training releases), ``"none"`` (the image only, the
        paper's theorem) or ``"noised"`` (the label mixed and noised with the image; include its
        2 in ``diameter``). ``"soft"`` is covered under substitution only.
    class_sizes:
        with ``labels="soft"``: the size of every class (summing to ``n``); the accountants take
        the worst. ``None``: a class of one record is assumed (the worst case).
    norm:
        the largest L1 norm of a record: what adding one moves a Poisson-sampled sum by
        (required by ``sampler="poisson"``; at least ``diameter / 2``).
    dirichlet_alpha:
        ``None`` (default): every record of a release has weight ``1/k``. A number ``alpha > 0``:
        the k weights are drawn ``Dirichlet(alpha, ..., alpha)`` for every release, as mixup
        implementations do; a record's weight is then ``Beta(alpha, (k-1) alpha)`` and can be
        close to 1, so one release moves by up to the whole diameter
        (:meth:`weight_mixture`). Covered with the subsets and permutation samplers, with labels
        ``none`` or ``noised`` (an un-noised soft label would show the weights of each class).
    """

    k: int
    noise: float
    n: int
    diameter: float
    releases: int
    sampler: Sampler = Sampler.SUBSETS
    relation: Relation = Relation.SUBSTITUTION
    labels: Labels = Labels.SOFT
    class_sizes: tuple[int, ...] | None = None
    norm: float | None = None
    dirichlet_alpha: float | None = None

    def __post_init__(self):
        # Validate everything before the (frozen) object is visible: a refused construction
        # leaves nothing behind.
        k = check_positive_int("k", self.k)
        n = check_positive_int("n", self.n)
        noise = check_positive_finite("noise", self.noise)
        diameter = check_positive_finite("diameter", self.diameter)
        releases = check_positive_int("releases", self.releases, maximum=MAX_RELEASES)
        sampler = check_enum(Sampler, "sampler", self.sampler)
        relation = check_enum(Relation, "relation", self.relation)
        labels = check_enum(Labels, "labels", self.labels)
        norm = None if self.norm is None else check_positive_finite("norm", self.norm)
        alpha = (None if self.dirichlet_alpha is None
                 else check_positive_finite("dirichlet_alpha", self.dirichlet_alpha))
        class_sizes = None
        if self.class_sizes is not None:
            if labels is not Labels.SOFT:
                raise InputError(f"class_sizes apply to labels 'soft' only (the class counts the "
                                 f"released soft label shows); got labels {labels.value!r}")
            if isinstance(self.class_sizes, (str, bytes)) or not hasattr(self.class_sizes,
                                                                         "__iter__"):
                raise InputError(f"class_sizes must be a sequence of positive integers; got "
                                 f"{self.class_sizes!r}")
            class_sizes = tuple(check_positive_int("class_sizes entry", c) for c in self.class_sizes)
            if not class_sizes:
                raise InputError("class_sizes must name at least one class; got an empty list")
            if sum(class_sizes) != n:
                raise InputError(f"class_sizes must sum to n (every record is in one class); "
                                 f"got sum {sum(class_sizes)} for n={n}")
        if k > n:
            raise InputError(f"k must be at most n (a k-subset of n records); got k={k}, n={n}")
        if not diameter / (k * noise) >= sys.float_info.min:
            raise InputError(
                f"noise must be small enough that eps0 = diameter/(k*noise) is a positive float "
                f"(it underflows to {diameter / (k * noise):g}); got diameter={diameter:g}, "
                f"k={k}, noise={noise:g}")
        if not math.isfinite(diameter / noise):
            raise InputError(
                f"noise must be large enough that diameter/noise is finite; "
                f"got diameter={diameter}, noise={noise}"
            )
        stype = sampler_type(sampler)
        stype.check_relation(relation)
        if labels is Labels.SOFT and relation is not Relation.SUBSTITUTION:
            raise InputError(
                "labels 'soft' are covered under relation 'substitution' only: adding or removing "
                "a record changes the class counts that the un-noised soft label shows; use labels "
                "'noised' or 'none'"
            )
        stype.check_norm(norm)
        if norm is not None and not norm >= diameter / 2.0 * (1 - 1e-12):
            raise InputError(
                f"norm must be at least diameter/2 (two records of norm at most r are at most 2r "
                f"apart); got norm={norm}, diameter={diameter}"
            )
        if norm is not None and not math.isfinite(norm / noise):
            raise InputError(f"noise must be large enough that norm/noise is finite; got "
                             f"norm={norm}, noise={noise}")
        if alpha is not None:
            if labels is Labels.SOFT:
                raise InputError("labels 'soft' are not covered with Dirichlet weights (the "
                                 "un-noised soft label shows the weight of each class); use "
                                 "labels 'none' or 'noised'")
            if stype.independent_inclusion:
                raise InputError(f"Dirichlet weights are covered with the subsets and permutation "
                                 f"samplers; got sampler {sampler.value!r} (a Poisson release has "
                                 f"no fixed k to draw weights for)")
        for name, value in (
            ("k", k),
            ("n", n),
            ("noise", noise),
            ("diameter", diameter),
            ("releases", releases),
            ("sampler", sampler),
            ("relation", relation),
            ("labels", labels),
            ("class_sizes", class_sizes),
            ("norm", norm),
            ("dirichlet_alpha", alpha),
        ):
            object.__setattr__(self, name, value)

    @classmethod
    def from_epochs(
        cls,
        *,
        k: int,
        noise: float,
        n: int,
        diameter: float,
        epochs,
        sampler: Sampler | str = Sampler.SUBSETS,
        relation: Relation | str = Relation.SUBSTITUTION,
        labels: Labels | str = Labels.SOFT,
        class_sizes=None,
        norm: float | None = None,
        dirichlet_alpha: float | None = None,
    ) -> "InstaHide":
        """A run of ``epochs`` passes of ``n`` mixed samples each: ``releases = epochs * n``.

        Fractional epochs are allowed when ``epochs * n`` is a whole number of releases. An epoch is
        ``n`` releases, with ``n`` the dataset size given here; under ``add_remove`` the neighbour
        has ``n - 1`` or ``n + 1`` records, but the count of releases is what ran (T), whatever
        the neighbour's size.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Real):
            raise InputError(f"epochs must be a positive number; got {epochs!r}")
        e = float(epochs)
        if not math.isfinite(e) or e <= 0:
            raise InputError(f"epochs must be a positive finite number; got {epochs!r}")
        n_int = check_positive_int("n", n)
        t = e * n_int
        if abs(t - round(t)) > 1e-9 * max(1.0, t):
            raise InputError(
                f"epochs * n must be a whole number of releases; got epochs={epochs}, n={n_int}"
            )
        return cls(
            k=k,
            noise=noise,
            n=n_int,
            diameter=diameter,
            releases=int(round(t)),
            sampler=sampler,
            relation=relation,
            labels=labels,
            class_sizes=class_sizes,
            norm=norm,
            dirichlet_alpha=dirichlet_alpha,
        )

    # ---- derived quantities that are facts of the run, not privacy arithmetic ----
    @property
    def epochs(self) -> float:
        """``releases / n``: passes over the data (not necessarily whole)."""
        return self.releases / self.n

    @staticmethod
    def needs_norm(sampler) -> bool:
        """True when ``sampler`` moves a release by a record's norm (give ``norm``)."""
        return sampler_type(sampler).uses_norm

    @property
    def sampler_type(self):
        """The :class:`~dpaccount.samplers.SamplerType` that says what the sampler does."""
        return sampler_type(self.sampler)

    @property
    def epochs_charged(self) -> float:
        """The epochs the run is charged for (the sampler's rule: a partial permutation epoch
        counts whole)."""
        return self.sampler_type.epochs_charged(self)

    @property
    def sampling_rate(self) -> float:
        """``q = k / N``: the probability that a given record is in a given release."""
        return self.sampler_type.inclusion_probability(self.n, self.k)

    @property
    def random_weights(self) -> bool:
        """True when the mixing weights are drawn at random (Dirichlet) for k >= 2."""
        return self.dirichlet_alpha is not None and self.k > 1

    @property
    def max_weight(self) -> float:
        """The largest weight a record can have in a release: ``1/k``, or 1 with random
        weights (a Dirichlet weight can be arbitrarily close to 1)."""
        return 1.0 if self.random_weights else 1.0 / self.k

    @property
    def weight_per_epoch(self) -> float:
        """The largest total weight of a record over its k slots of a permutation epoch: 1 for
        weights 1/k, k for random weights."""
        return float(self.k) if self.random_weights else 1.0

    def weight_mixture(self, cells: int = 256) -> tuple[tuple[float, float], ...]:
        """The law of the changed record's weight in a release that holds it, rounded up onto
        ``cells`` cells of [0, 1]: ``((P(cell), upper end), ...)``. ``((1, 1/k),)`` for uniform
        weights; ``Beta(alpha, (k-1) alpha)`` (a coordinate of ``Dirichlet(alpha 1_k)``) for
        random weights, with each cell's probability from scipy's regularised incomplete beta
        function. Rounding up makes each cell's shift an upper bound for every weight in it
        (``docs/pld_hits.md``, "Random mixing weights"; ``proofs/dirichlet_weights.py``)."""
        if not self.random_weights:
            return ((1.0, 1.0 / self.k),)
        import numpy as np
        from scipy.special import betainc

        a, b = self.dirichlet_alpha, (self.k - 1) * self.dirichlet_alpha
        edges = np.linspace(0.0, 1.0, cells + 1)
        # P(V > e) two ways (the complement of the CDF, and the CDF of 1 - V ~ Beta(b, a)):
        # each loses accuracy somewhere at extreme alpha (1e-300, 1e30), and never both in the
        # same place. The larger is taken (more weight moved up: the law used dominates the true
        # one stochastically, which keeps the bound an upper bound), nan counts as 1, and it is
        # made non-increasing from the right; masses are its differences, so they sum to 1.
        with np.errstate(invalid="ignore"):
            sf = np.fmax(1.0 - betainc(a, b, edges), betainc(b, a, 1.0 - edges))
        sf = np.clip(np.where(np.isnan(sf), 1.0, sf), 0.0, 1.0)
        sf[0], sf[-1] = 1.0, 0.0
        sf = np.maximum.accumulate(sf[::-1])[::-1]
        mass = -np.diff(sf)
        if not float(mass @ edges[1:]) >= 1.0 / self.k * (1.0 - 1e-9):  # the mean is 1/k
            raise InputError(f"dirichlet_alpha={self.dirichlet_alpha:g} with k={self.k}: the "
                             f"law of a weight cannot be computed in double precision")
        out, carry = [], 0.0
        for m, e in zip(mass, edges[1:]):  # a mass too small to keep moves up a cell
            m += carry
            if m > 1e-300 or (e == 1.0 and m > 0.0):
                out.append((float(m), float(e)))
                carry = 0.0
            else:
                carry = m
        return tuple(out)

    @property
    def sensitivity(self) -> float:
        """L1 distance between the mixed means of neighbouring datasets in one release that
        holds the record: the sampler's shift times the largest weight (``Delta / k`` when a
        record is replaced, ``norm / k`` when a record is added to a Poisson-sampled sum; the
        whole shift with random weights, whose weight can come close to 1)."""
        return self.sampler_type.shift(self) * self.max_weight

    @property
    def shift(self) -> float:
        """What the record moves one release's sum by: the diameter, or the record norm for the
        Poisson sampler (:meth:`~dpaccount.samplers.SamplerType.shift`)."""
        return self.sampler_type.shift(self)

    @property
    def eps0(self) -> float:
        """``eps0 = sensitivity / b``: one release that contains the record (Borgnia et al. 2021,
        Sec. 4; the Laplace log-ratio bound). The one definition every accountant uses."""
        return self.sensitivity / self.noise

    def inclusion_mixtures(self) -> tuple[tuple[int, tuple[tuple[float, float], ...]], ...]:
        """What the release shows about whether the record is in it: per distinct size ``n_c`` of
        the record's class, the law of its inclusion probability given the release, as
        ``(n_c, ((weight, q), ...))`` with the weights summing to 1
        (:meth:`~dpaccount.samplers.SamplerType.inclusion_mixtures`)."""
        return self.sampler_type.inclusion_mixtures(self)

    @property
    def worst_inclusion(self) -> float:
        """The largest inclusion probability the release can show for the record: ``k/N``, or
        with soft labels ``min(k, n_c) / n_c`` for the smallest class (1 for a class of one).
        What a per-release pure-DP bound must use."""
        return max(q for _, law in self.inclusion_mixtures() for _, q in law)

    @property
    def label_note(self) -> str:
        """What the release holds beside the image, and the mixing weights where they are not
        1/k, in words (every row names it)."""
        note = self._labels_text()
        if self.random_weights:
            note += f"; weights Dirichlet({self.dirichlet_alpha:g}) (a record's weight up to 1)"
        return note

    def _labels_text(self) -> str:
        if self.labels is Labels.NONE:
            return "labels none (image only)"
        if self.labels is Labels.NOISED:
            return "labels noised (one-hot label mixed and noised with the image)"
        special = self.sampler_type.label_note(self)
        if special is not None:
            return special
        if self.class_sizes is None:
            return "labels soft (un-noised; class of one record assumed: give class sizes)"
        return (f"labels soft (un-noised; {len(self.class_sizes)} classes, smallest "
                f"{min(self.class_sizes)})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sampler"] = self.sampler.value
        d["relation"] = self.relation.value
        d["labels"] = self.labels.value
        d["class_sizes"] = None if self.class_sizes is None else list(self.class_sizes)
        d["epochs"] = self.epochs
        return d


def hypergeometric_pmf(n: int, m: int, k: int) -> tuple[tuple[int, float], ...]:
    """``((j, P(J = j)), ...)`` for ``J ~ Hypergeometric(N, m, k)``: how many of ``m`` marked
    records a uniform k-subset of N holds. Log space (gammaln), so N = 1e9 is exact to rounding;
    weights below 1e-300 are dropped (they cannot move a delta) and the rest renormalised. The
    one definition of this law: the soft-label mixture (marked = the record's class) and the
    group pair (marked = the group) both use it."""
    from scipy.special import gammaln

    def log_comb(a, b):
        return gammaln(a + 1.0) - gammaln(b + 1.0) - gammaln(a - b + 1.0)

    out = []
    for j in range(max(0, k - (n - m)), min(k, m) + 1):
        w = math.exp(float(log_comb(m, j) + log_comb(n - m, k - j) - log_comb(n, k)))
        if w > 1e-300:
            out.append((j, w))
    total = sum(w for _, w in out)
    return tuple((j, w / total) for j, w in out)


def binomial_pmf(n: int, q: float) -> tuple[tuple[int, float], ...]:
    """``((j, P(J = j)), ...)`` for ``J ~ Binomial(n, q)`` (scipy), weights below 1e-300 dropped
    and the rest renormalised, as :func:`hypergeometric_pmf`: the members of a group that join a
    Poisson-sampled release, the slots of a record in a cut-short permutation epoch."""
    from scipy.stats import binom

    out = [(j, float(w)) for j, w in enumerate(binom.pmf(range(n + 1), n, q)) if w > 1e-300]
    total = math.fsum(w for _, w in out)
    return tuple((j, w / total) for j, w in out)


def hypergeometric_inclusion(n: int, n_class: int, k: int) -> tuple[tuple[float, float], ...]:
    """``((P(j), j / n_class) for j = ...)`` with ``j ~ Hypergeometric(N, n_class, k)``
    (:func:`hypergeometric_pmf`): the count of the record's class in a uniform k-subset of N,
    and the record's inclusion probability given it (a uniform j-subset of its class). Checked
    by enumeration in ``proofs/soft_label_mixture.py``."""
    return tuple((w, j / n_class) for j, w in hypergeometric_pmf(n, n_class, k))


def parse_class_sizes(text: str) -> tuple[int, ...]:
    """``"178,182,177"`` or ``"10x5000"`` (ten classes of 5000) or a mix, into a tuple."""
    sizes = []
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"class sizes must look like 178,182,177 or 10x5000; got {text!r}")
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*[xX]\s*(\d+)", part)
        try:
            if m:
                count, size = int(m.group(1)), int(m.group(2))
                if count < 1 or count > 10**6:
                    raise InputError
                sizes.extend([size] * count)
            else:
                sizes.append(int(part))
        except ValueError:
            raise InputError(f"class sizes must look like 178,182,177 or 10x5000; got "
                             f"{text!r}") from None
    if any(c < 1 for c in sizes):
        raise InputError(f"class sizes must be positive integers; got {text!r}")
    return tuple(sizes)


_SHAPE_RE = re.compile(r"^\s*\d+(\s*[xX,]\s*\d+)*\s*$")


def parse_image_shape(text: str) -> tuple[int, ...]:
    """Parse ``"3x32x32"`` (or ``"3,32,32"``) into ``(3, 32, 32)``; every side must be >= 1."""
    if not isinstance(text, str) or not _SHAPE_RE.match(text):
        raise InputError(
            f"image shape must look like CxHxW with positive integers, e.g. 3x32x32; got {text!r}"
        )
    dims = tuple(int(p) for p in re.split(r"\s*[xX,]\s*", text.strip()))
    if any(d < 1 for d in dims):
        raise InputError(f"image shape must have every side >= 1; got {text!r}")
    return dims


def parse_value_range(text: str) -> tuple[float, float]:
    """Parse ``"0,1"`` or ``"0:255"`` into ``(low, high)``."""
    parts = re.split(r"[,:]", text.strip()) if isinstance(text, str) else []
    try:
        if len(parts) != 2:
            raise InputError
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"value range must look like LOW,HIGH, e.g. 0,1; got {text!r}") from None
    return low, high


def image_norm(
    shape: Sequence[int],
    value_range: tuple[float, float] = (0.0, 1.0),
    *,
    labels: bool = False,
) -> float:
    """Largest L1 norm of an image of ``shape`` with values in ``value_range``:
    ``prod(shape) * max(|low|, |high|)`` (what adding one record moves a sum by); a noised one-hot
    label adds 1. ``[1, 2]`` gives 2 per pixel although the diameter is 1 per pixel."""
    image_diameter(shape, value_range)  # the same checks
    low, high = value_range
    size = math.prod(int(d) for d in shape)
    return float(size) * max(abs(float(low)), abs(float(high))) + (1.0 if labels else 0.0)


def image_diameter(
    shape: Sequence[int],
    value_range: tuple[float, float] = (0.0, 1.0),
    *,
    labels: bool = False,
) -> float:
    """L1 diameter of images of ``shape`` with every value in ``value_range``.

    ``prod(shape) * (high - low)``: two images at opposite corners of the box differ by
    ``high - low`` in every coordinate. 3x32x32 in [0, 1] gives 3072. With ``labels=True`` the
    one-hot label is part of the released record and adds :data:`LABEL_DIAMETER` (= 2).
    """
    dims = tuple(shape)
    if not dims:
        raise InputError(f"shape must have at least one dimension; got {shape!r}")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1:
            raise InputError(f"shape must contain positive integers; got {shape!r}")
    low, high = value_range
    for name, v in (("value_range low", low), ("value_range high", high)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise InputError(f"{name} must be a finite number; got {v!r}")
    if not high > low:
        raise InputError(f"value_range must have high > low; got {value_range!r}")
    size = math.prod(int(d) for d in dims)
    diameter = float(size) * (float(high) - float(low))
    if labels:
        diameter += LABEL_DIAMETER
    return diameter


@dataclass(frozen=True)
class ComposedEvent:
    """Phases run one after the other on the same records: a run whose noise, k or N changes
    part-way, or two releases of the same dataset. Each phase is an :class:`InstaHide`; the
    privacy loss of the composition is the sum of the phases' (every accountant composes them:
    closed forms by the composition theorems, RDP by adding orders, PLD by convolving).

    The phases must share the neighbouring relation and what is released beside the image (one
    guarantee is stated for the whole run); samplers, k, noise, N and domains may differ. A
    field's meaning never changes once published: ``phases`` is a tuple of :class:`InstaHide`,
    in the order they ran.
    """

    phases: tuple

    def __post_init__(self):
        phases = self.phases
        if isinstance(phases, InstaHide) or isinstance(phases, (str, bytes)) or not hasattr(
                phases, "__iter__"):
            raise InputError(f"phases must be a sequence of InstaHide phases; got {phases!r}")
        flat = []
        for i, p in enumerate(phases):
            if isinstance(p, ComposedEvent):
                flat.extend(p.phases)
            elif isinstance(p, InstaHide):
                flat.append(p)
            else:
                raise InputError(f"phases[{i}] must be an InstaHide phase; got {p!r}")
        if not flat:
            raise InputError("phases must hold at least one phase; got an empty sequence")
        for name in ("relation", "labels"):
            values = {getattr(p, name) for p in flat}
            if len(values) > 1:
                raise InputError(f"every phase must have the same {name}; got "
                                 f"{sorted(v.value for v in values)}")
        if sum(p.releases for p in flat) > MAX_RELEASES:
            raise InputError(f"releases must be at most {MAX_RELEASES:.0e} in all; got "
                             f"{sum(p.releases for p in flat)}")
        object.__setattr__(self, "phases", tuple(flat))

    @property
    def relation(self) -> Relation:
        return self.phases[0].relation

    @property
    def labels(self) -> Labels:
        return self.phases[0].labels

    @property
    def releases(self) -> int:
        """All releases of all phases."""
        return sum(p.releases for p in self.phases)

    @property
    def sampler_name(self) -> str:
        names = {p.sampler.value for p in self.phases}
        return names.pop() if len(names) == 1 else "mixed"

    @property
    def label_note(self) -> str:
        notes = []
        for p in self.phases:
            if p.label_note not in notes:
                notes.append(p.label_note)
        return "; ".join(notes)

    def to_dict(self) -> dict:
        return {"phases": [p.to_dict() for p in self.phases], "relation": self.relation.value,
                "labels": self.labels.value, "releases": self.releases}


def phases_of(event) -> tuple:
    """The phases of an event: ``(event,)`` for one :class:`InstaHide`, ``event.phases`` for a
    :class:`ComposedEvent`. Anything else is refused by name."""
    if isinstance(event, InstaHide):
        return (event,)
    if isinstance(event, ComposedEvent):
        return event.phases
    raise InputError(f"event must be an InstaHide phase or a ComposedEvent; got {event!r}")


def compose(*phases) -> ComposedEvent:
    """``compose(phase_a, phase_b, ...)``: the phases run one after the other."""
    return ComposedEvent(tuple(phases))


def sampler_name(event) -> str:
    """The sampler of an event, in words (``mixed`` for phases with different samplers)."""
    return event.sampler.value if isinstance(event, InstaHide) else event.sampler_name
