"""The accountant interface and the bound objects every accountant returns.

An accountant interprets an event (:class:`~dpaccount.events.InstaHide` or
:class:`~dpaccount.events.ComposedEvent`) and answers two questions, each with a labelled bound:

* :meth:`Accountant.epsilon` ``(event, delta)`` -> :class:`EpsilonResult`;
* :meth:`Accountant.delta` ``(event, epsilon)`` -> :class:`DeltaResult`.

:meth:`Accountant.supports` says beforehand whether it covers the event (``None``) or why not (a
sentence); asking anyway raises :class:`~dpaccount.errors.Unsupported` with that sentence.
Every result names the method that produced its number: no accountant reports another one's
value under its own name (choosing among them is :mod:`dpaccount.selection`'s job).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import InputError, Unsupported
from ..events import phases_of, sampler_name
from ..validate import check_delta

__all__ = ["Accountant", "EpsilonResult", "DeltaResult", "relative_width", "width_note"]


@dataclass(frozen=True)
class EpsilonResult:
    """One labelled privacy number. ``epsilon`` is an upper bound unless ``bound`` says otherwise;
    ``lower``, where given, is a lower bound on the true epsilon of the worst case the method
    describes (so the truth lies in ``[lower, epsilon]``).

    ``epsilon is None`` means the method does not apply to this event (``note`` says why) or
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
    #: what was released beside the image (:class:`~dpaccount.events.Labels` value)
    labels: str = ""
    #: a lower bound on the true epsilon, where the method gives one
    lower: float | None = None

    @property
    def upper(self) -> float | None:
        return self.epsilon

    @property
    def applies(self) -> bool:
        return self.epsilon is not None

    def to_dict(self) -> dict:
        d = {
            "method": self.method,
            "epsilon": self.epsilon,
            "epsilon_lower": self.lower,
            "epsilon_upper": self.epsilon,
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


@dataclass(frozen=True)
class DeltaResult:
    """A labelled bound on delta at a given epsilon: the true delta lies in ``[lower, delta]``
    (``lower`` 0 where the method gives none)."""

    method: str
    delta: float
    epsilon: float
    relation: str
    sampler: str
    releases: int
    labels: str
    lower: float = 0.0
    note: str = ""
    source: str = ""

    @property
    def upper(self) -> float:
        return self.delta

    def to_dict(self) -> dict:
        return {"method": self.method, "delta": self.delta, "delta_lower": self.lower,
                "epsilon": self.epsilon, "relation": self.relation, "sampler": self.sampler,
                "releases": self.releases, "labels": self.labels, "note": self.note,
                "source": self.source}


def relative_width(lower: float | None, upper: float | None) -> float | None:
    """``(upper - lower) / upper``: 0 for an exact answer, 1 when nothing is known below."""
    if lower is None or upper is None:
        return None
    return (upper - lower) / upper if upper > 0 else 0.0


def width_note(lower: float | None, upper: float | None) -> str:
    """"tight" only when the interval is narrow (relative width under 1%); else its width."""
    w = relative_width(lower, upper)
    if w is None:
        return "no lower bound: the interval's width is unknown"
    if w < 0.01:
        return f"interval width {w:.2%} (tight)"
    return f"interval width {w:.2%}"


def check_epsilon(epsilon) -> float:
    try:
        e = float(epsilon)
    except (TypeError, ValueError):
        raise InputError(f"epsilon must be a finite number >= 0; got {epsilon!r}") from None
    if not (e >= 0 and math.isfinite(e)):
        raise InputError(f"epsilon must be a finite number >= 0; got {epsilon!r}")
    return e


class Accountant(ABC):
    """One method of bounding the privacy of DP-InstaHide events."""

    #: the name every result of this accountant carries
    method: ClassVar[str]
    #: where the method comes from (paper, theorem)
    source: ClassVar[str]

    def supports(self, event) -> str | None:
        """``None`` when this accountant covers ``event``; otherwise why not, in a sentence."""
        return None

    def _check(self, event):
        phases = phases_of(event)
        reason = self.supports(event)
        if reason is not None:
            raise Unsupported(self.method, reason)
        return phases

    def epsilon(self, event, delta) -> EpsilonResult:
        """An upper bound on epsilon at ``delta`` (and a lower bound where the method has one)."""
        delta = check_delta(delta)
        phases = self._check(event)
        return self._epsilon(event, phases, delta)

    def delta(self, event, epsilon) -> DeltaResult:
        """An upper bound on delta at ``epsilon`` (and a lower bound where the method has one)."""
        epsilon = check_epsilon(epsilon)
        phases = self._check(event)
        return self._delta(event, phases, epsilon)

    def row(self, event, delta) -> EpsilonResult:
        """:meth:`epsilon`, or a row with ``epsilon=None`` saying why the method does not apply
        (what the epsilon table prints)."""
        try:
            return self.epsilon(event, delta)
        except Unsupported as exc:
            return self.result(event, None, check_delta(delta),
                               note=f"not applicable: {exc.reason}")

    # ---- helpers for implementations ----
    def result(self, event, epsilon, delta, *, lower=None, note="", extra=None,
               bound="upper") -> EpsilonResult:
        return EpsilonResult(self.method, epsilon, delta, event.relation.value,
                             sampler_name(event), event.releases, bound, note, self.source,
                             dict(extra or {}), labels=event.labels.value, lower=lower)

    def delta_result(self, event, delta, epsilon, *, lower=0.0, note="") -> DeltaResult:
        return DeltaResult(self.method, float(delta), float(epsilon), event.relation.value,
                           sampler_name(event), event.releases, event.labels.value,
                           lower=float(lower), note=note, source=self.source)

    @abstractmethod
    def _epsilon(self, event, phases, delta) -> EpsilonResult:
        """Implementations: the bound for a supported event."""

    @abstractmethod
    def _delta(self, event, phases, epsilon) -> DeltaResult:
        """Implementations: the bound for a supported event."""
