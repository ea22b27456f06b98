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
    "InstaHide",
    "image_diameter",
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
    """

    k: int
    noise: float
    n: int
    diameter: float
    releases: int
    sampler: Sampler = Sampler.SUBSETS
    relation: Relation = Relation.SUBSTITUTION

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
        for name, value in (
            ("k", k),
            ("n", n),
            ("noise", noise),
            ("diameter", diameter),
            ("releases", releases),
            ("sampler", sampler),
            ("relation", relation),
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
    ) -> "InstaHide":
        """A run of ``epochs`` passes of ``n`` mixed samples each: ``releases = epochs * n``.

        Fractional epochs are allowed when ``epochs * n`` is a whole number of releases.
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
        """L1 distance between the means of two neighbouring mixed samples: ``Delta / k``."""
        return self.diameter / self.k

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sampler"] = self.sampler.value
        d["relation"] = self.relation.value
        d["epochs"] = self.epochs
        return d


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
        }
        d.update(self.extra)
        return d
