"""The immutable description of one DP-InstaHide run.

A :class:`InstaHide` value says *what was run*: how many records are mixed (``k``), the Laplace
scale ``noise`` (``b``), the dataset size ``n`` (``N``), the L1 diameter of a record's domain
(``diameter``, ``Delta``), how mixed samples are drawn (``sampler``), which neighbouring relation
the guarantee is stated for (``relation``) and how many mixed samples were released
(``releases``, ``T``). Accountants (:mod:`dpaccount.closed_form`, later the tight ones) interpret
it; nothing here computes privacy.

The mechanism (Borgnia et al. 2021, arXiv:2103.02079, Sec. 4; ``THEORY.md`` Sec. 1): each release
draws a k-subset ``S`` of the records and outputs ``(1/k) * sum_{i in S} x_i + Lap(0, b)^d``.

Every field is validated at construction. A bad value raises :class:`ValueError` whose message
names the parameter, the rule it broke and the value, before any object exists.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Sequence

__all__ = [
    "Sampler",
    "Relation",
    "Labels",
    "InstaHide",
    "parse_class_sizes",
    "image_diameter",
    "image_norm",
    "hypergeometric_inclusion",
    "parse_image_shape",
    "parse_value_range",
    "LABEL_DIAMETER",
]

#: L1 distance between two different one-hot label vectors: what a released label adds to the
#: domain's diameter when labels are part of the record (THEORY.md Sec. 1).
LABEL_DIAMETER = 2.0

#: Largest number of releases accepted. The closed forms are tested up to 1e9; beyond 1e12 the
#: float arithmetic of ``T * eps`` is no longer checked, so such runs are refused, not guessed.
MAX_RELEASES = 10**12


class Sampler(str, Enum):
    """How each mixed sample chooses its k records (THEORY.md Sec. 4)."""

    #: i.i.d. uniform k-subsets of the whole training set for every output: what the paper's
    #: theorem covers, and what amplification by subsampling applies to.
    SUBSETS = "subsets"
    #: mixing inside a shuffled epoch with k independent permutations: every record is used in
    #: exactly k output slots per epoch, so there is no amplification by sampling.
    PERMUTATION = "permutation"
    #: each record joins each output independently with probability q = k/N; the sum is divided
    #: by the expected size k. Covered under add/remove-one only.
    POISSON = "poisson"


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


def _enum_value(enum_cls, name: str, value):
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in enum_cls)
        raise ValueError(f"{name} must be one of {choices}; got {value!r}") from None


def _positive_int(name: str, value, *, maximum: int | None = None) -> int:
    # bool is an int subclass; "k=True" is a bug in the caller, not a count.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            fv = float(value)
            if math.isfinite(fv) and fv == int(fv) and fv >= 1:
                # 50000.0 is accepted as 50000; 2.5 is not.
                value = int(fv)
            else:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        else:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1); got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:.0e}; got {value}")
    return value


def _positive_finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    fv = float(value)
    if math.isnan(fv):
        raise ValueError(f"{name} must be a positive finite number; got nan")
    if not math.isfinite(fv):
        raise ValueError(f"{name} must be a positive finite number; got {fv}")
    if fv <= 0.0:
        raise ValueError(f"{name} must be a positive finite number (> 0); got {fv}")
    return fv


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

    def __post_init__(self):
        # Validate everything before the (frozen) object is visible: a refused construction
        # leaves nothing behind.
        k = _positive_int("k", self.k)
        n = _positive_int("n", self.n)
        noise = _positive_finite("noise", self.noise)
        diameter = _positive_finite("diameter", self.diameter)
        releases = _positive_int("releases", self.releases, maximum=MAX_RELEASES)
        sampler = _enum_value(Sampler, "sampler", self.sampler)
        relation = _enum_value(Relation, "relation", self.relation)
        labels = _enum_value(Labels, "labels", self.labels)
        norm = None if self.norm is None else _positive_finite("norm", self.norm)
        class_sizes = None
        if self.class_sizes is not None:
            if labels is not Labels.SOFT:
                raise ValueError(f"class_sizes apply to labels 'soft' only (the class counts the "
                                 f"released soft label shows); got labels {labels.value!r}")
            if isinstance(self.class_sizes, (str, bytes)) or not hasattr(self.class_sizes,
                                                                         "__iter__"):
                raise ValueError(f"class_sizes must be a sequence of positive integers; got "
                                 f"{self.class_sizes!r}")
            class_sizes = tuple(_positive_int("class_sizes entry", c) for c in self.class_sizes)
            if not class_sizes:
                raise ValueError("class_sizes must name at least one class; got an empty list")
            if sum(class_sizes) != n:
                raise ValueError(f"class_sizes must sum to n (every record is in one class); "
                                 f"got sum {sum(class_sizes)} for n={n}")
        if k > n:
            raise ValueError(f"k must be at most n (a k-subset of n records); got k={k}, n={n}")
        if not math.isfinite(diameter / noise):
            raise ValueError(
                f"noise must be large enough that diameter/noise is finite; "
                f"got diameter={diameter}, noise={noise}"
            )
        if sampler is Sampler.POISSON and relation is not Relation.ADD_REMOVE:
            raise ValueError(
                f"sampler 'poisson' is covered under relation 'add_remove' only; got relation "
                f"{relation.value!r}"
            )
        if sampler is Sampler.PERMUTATION and relation is not Relation.SUBSTITUTION:
            raise ValueError(
                f"sampler 'permutation' is covered under relation 'substitution' only; got "
                f"relation {relation.value!r}"
            )
        if labels is Labels.SOFT and relation is not Relation.SUBSTITUTION:
            raise ValueError(
                "labels 'soft' are covered under relation 'substitution' only: adding or removing "
                "a record changes the class counts that the un-noised soft label shows; use labels "
                "'noised' or 'none'"
            )
        if sampler is Sampler.POISSON and norm is None:
            raise ValueError(
                "sampler 'poisson' under add_remove needs norm, the largest L1 norm of a record "
                "(adding a record moves the sum by its norm, not by the diameter); give --image "
                "with --value-range, or --norm"
            )
        if norm is not None and not norm >= diameter / 2.0 * (1 - 1e-12):
            raise ValueError(
                f"norm must be at least diameter/2 (two records of norm at most r are at most 2r "
                f"apart); got norm={norm}, diameter={diameter}"
            )
        if norm is not None and not math.isfinite(norm / noise):
            raise ValueError(f"noise must be large enough that norm/noise is finite; got "
                             f"norm={norm}, noise={noise}")
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
    ) -> "InstaHide":
        """A run of ``epochs`` passes of ``n`` mixed samples each: ``releases = epochs * n``.

        Fractional epochs are allowed when ``epochs * n`` is a whole number of releases. An epoch is
        ``n`` releases, with ``n`` the dataset size given here; under ``add_remove`` the neighbour
        has ``n - 1`` or ``n + 1`` records, but the count of releases is what ran (T), whatever
        the neighbour's size.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Real):
            raise ValueError(f"epochs must be a positive number; got {epochs!r}")
        e = float(epochs)
        if not math.isfinite(e) or e <= 0:
            raise ValueError(f"epochs must be a positive finite number; got {epochs!r}")
        n_int = _positive_int("n", n)
        t = e * n_int
        if abs(t - round(t)) > 1e-9 * max(1.0, t):
            raise ValueError(
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
        )

    # ---- derived quantities that are facts of the run, not privacy arithmetic ----
    @property
    def epochs(self) -> float:
        """``releases / n``: passes over the data (not necessarily whole)."""
        return self.releases / self.n

    @property
    def sampling_rate(self) -> float:
        """``q = k / N``: the probability that a given record is in a given release."""
        return self.k / self.n

    @property
    def sensitivity(self) -> float:
        """L1 distance between the mixed means of neighbouring datasets in one release that
        holds the record: ``Delta / k`` when a record is replaced (substitution, or the subsets
        sampler under add/remove, where the coupling swaps the record for another one), and
        ``norm / k`` when a record is added to a Poisson-sampled sum."""
        if self.sampler is Sampler.POISSON:
            return self.norm / self.k
        return self.diameter / self.k

    @property
    def eps0(self) -> float:
        """``eps0 = sensitivity / b``: one release that contains the record (Borgnia et al. 2021,
        Sec. 4; the Laplace log-ratio bound). The one definition every accountant uses."""
        return self.sensitivity / self.noise

    def inclusion_mixtures(self) -> tuple[tuple[int, tuple[tuple[float, float], ...]], ...]:
        """What the release shows about whether the record is in it: per distinct size ``n_c`` of
        the record's class, the law of its inclusion probability given the release, as
        ``(n_c, ((weight, q), ...))`` with the weights summing to 1.

        Without released soft labels there is one entry: ``(n, ((1, k/N),))``. With soft labels
        the release shows ``j``, the number of records of the record's class it holds:
        ``j ~ Hypergeometric(N, n_c, k)`` (the same law on both neighbours: labels are public and
        unchanged), and given ``j`` the record is in it with probability ``j / n_c``
        (``docs/theory.md`` Sec. 2, ``proofs/soft_label_mixture.py``). ``j = 0`` gives
        ``q = 0``: the record is surely absent. Unknown class sizes are taken as 1, the worst
        case (the label then says exactly whether the record was drawn).
        """
        if self.labels is not Labels.SOFT or self.sampler is not Sampler.SUBSETS:
            return ((self.n, ((1.0, self.sampling_rate),)),)
        sizes = sorted(set(self.class_sizes)) if self.class_sizes is not None else [1]
        out = []
        for nc in sizes:
            out.append((nc, hypergeometric_inclusion(self.n, nc, self.k)))
        return tuple(out)

    @property
    def worst_inclusion(self) -> float:
        """The largest inclusion probability the release can show for the record: ``k/N``, or
        with soft labels ``min(k, n_c) / n_c`` for the smallest class (1 for a class of one).
        What a per-release pure-DP bound must use."""
        return max(q for _, law in self.inclusion_mixtures() for _, q in law)

    @property
    def label_note(self) -> str:
        """What the release holds beside the image, in words (every row names it)."""
        if self.labels is Labels.NONE:
            return "labels none (image only)"
        if self.labels is Labels.NOISED:
            return "labels noised (one-hot label mixed and noised with the image)"
        if self.sampler is not Sampler.SUBSETS:
            return "labels soft (un-noised; no effect under this sampler)"
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


def hypergeometric_inclusion(n: int, n_class: int, k: int) -> tuple[tuple[float, float], ...]:
    """``((P(j), j / n_class) for j = ...)`` with ``j ~ Hypergeometric(N, n_class, k)``: the count
    of the record's class in a uniform k-subset of N, and the record's inclusion probability
    given it (a uniform j-subset of its class). Log space (gammaln); weights below 1e-300 are
    dropped, as they cannot move a delta. Checked by enumeration in
    ``proofs/soft_label_mixture.py``."""
    from scipy.special import gammaln

    def log_comb(a, b):
        return gammaln(a + 1.0) - gammaln(b + 1.0) - gammaln(a - b + 1.0)

    out = []
    for j in range(max(0, k - (n - n_class)), min(k, n_class) + 1):
        lw = log_comb(n_class, j) + log_comb(n - n_class, k - j) - log_comb(n, k)
        w = math.exp(float(lw))
        if w > 1e-300:
            out.append((w, j / n_class))
    total = sum(w for w, _ in out)
    return tuple((w / total, q) for w, q in out)


def parse_class_sizes(text: str) -> tuple[int, ...]:
    """``"178,182,177"`` or ``"10x5000"`` (ten classes of 5000) or a mix, into a tuple."""
    sizes = []
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"class sizes must look like 178,182,177 or 10x5000; got {text!r}")
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*[xX]\s*(\d+)", part)
        try:
            if m:
                count, size = int(m.group(1)), int(m.group(2))
                if count < 1 or count > 10**6:
                    raise ValueError
                sizes.extend([size] * count)
            else:
                sizes.append(int(part))
        except ValueError:
            raise ValueError(f"class sizes must look like 178,182,177 or 10x5000; got "
                             f"{text!r}") from None
    if any(c < 1 for c in sizes):
        raise ValueError(f"class sizes must be positive integers; got {text!r}")
    return tuple(sizes)


_SHAPE_RE = re.compile(r"^\s*\d+(\s*[xX,]\s*\d+)*\s*$")


def parse_image_shape(text: str) -> tuple[int, ...]:
    """Parse ``"3x32x32"`` (or ``"3,32,32"``) into ``(3, 32, 32)``; every side must be >= 1."""
    if not isinstance(text, str) or not _SHAPE_RE.match(text):
        raise ValueError(
            f"image shape must look like CxHxW with positive integers, e.g. 3x32x32; got {text!r}"
        )
    dims = tuple(int(p) for p in re.split(r"\s*[xX,]\s*", text.strip()))
    if any(d < 1 for d in dims):
        raise ValueError(f"image shape must have every side >= 1; got {text!r}")
    return dims


def parse_value_range(text: str) -> tuple[float, float]:
    """Parse ``"0,1"`` or ``"0:255"`` into ``(low, high)``."""
    parts = re.split(r"[,:]", text.strip()) if isinstance(text, str) else []
    try:
        if len(parts) != 2:
            raise ValueError
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"value range must look like LOW,HIGH, e.g. 0,1; got {text!r}") from None
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
        raise ValueError(f"shape must have at least one dimension; got {shape!r}")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1:
            raise ValueError(f"shape must contain positive integers; got {shape!r}")
    low, high = value_range
    for name, v in (("value_range low", low), ("value_range high", high)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number; got {v!r}")
    if not high > low:
        raise ValueError(f"value_range must have high > low; got {value_range!r}")
    size = math.prod(int(d) for d in dims)
    diameter = float(size) * (float(high) - float(low))
    if labels:
        diameter += LABEL_DIAMETER
    return diameter


@dataclass(frozen=True)
class EpsilonResult:
    """One labelled privacy number. ``epsilon`` is an upper bound unless ``bound`` says otherwise.

    ``epsilon is None`` means the method does not apply to this mechanism (``note`` says why) or
    its value is not representable as a float (``note`` says so). ``delta`` is the delta the
    epsilon holds for (0 for pure DP).
    """

    method: str
    epsilon: float | None
    delta: float
    relation: str
    sampler: str
    releases: int
    bound: str = "upper"
    note: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict)
    #: what was released beside the image (:class:`Labels` value), "" where it does not apply
    labels: str = ""

    def to_dict(self) -> dict:
        d = {
            "method": self.method,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "relation": self.relation,
            "sampler": self.sampler,
            "releases": self.releases,
            "bound": self.bound,
            "note": self.note,
            "source": self.source,
            "labels": self.labels,
        }
        d.update(self.extra)
        return d
