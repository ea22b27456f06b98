"""Selection among sound bounds: the epsilon table and the tightest upper bound.

:func:`epsilon` runs every accountant once (and, per phase, the one-release rows) and returns the
table the CLI prints; :func:`tightest` picks the smallest sound upper bound and says which method
produced it. The choice is made here, never inside an accountant: a row is always named after
the method that produced its number.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass

from .accountants import ACCOUNTANTS, EpsilonResult, release_rows, width_note
from .accountants.base import relative_width
from .events import phases_of
from .validate import check_delta

__all__ = ["EpsilonTable", "epsilon", "tightest", "select_tightest"]


def select_tightest(rows, event, delta: float) -> EpsilonResult:
    """The smallest upper bound among ``rows`` (whole-run rows at ``delta``), relabelled with
    nothing: its ``method`` is the method that produced it. The largest lower bound among the
    rows becomes its ``lower``; the note states the interval's width and says "tight" only under
    1%."""
    candidates = [r for r in rows if r.epsilon is not None and r.releases == event.releases
                  and r.delta <= delta]
    if not candidates:  # pragma: no cover - basic always applies
        raise AssertionError("no accountant produced a bound")
    best = min(candidates, key=lambda r: r.epsilon)
    lowers = [r.lower for r in rows if r.lower is not None]
    lower = min(max(lowers), best.epsilon) if lowers else None
    others = ", ".join(f"{r.method} {r.epsilon:.6g}" for r in candidates if r is not best)
    note = (f"smallest sound upper bound: {best.method}; {width_note(lower, best.epsilon)}"
            + (f"; others: {others}" if others else ""))
    extra = {"interval_width": relative_width(lower, best.epsilon), "chosen_note": best.note}
    return EpsilonResult(best.method, best.epsilon, best.delta, best.relation, best.sampler,
                         best.releases, "upper", note, best.source, extra, labels=best.labels,
                         lower=lower)


@dataclass(frozen=True)
class EpsilonTable:
    """What ``dpaccount epsilon`` prints, as bound objects: ``rows`` (the one-release rows of a
    single phase, then every accountant for the whole run), ``tightest`` (the smallest sound
    upper bound, named after its method) and, for a composition, ``phase_rows`` (each phase's
    one-release rows and accountants, alone)."""

    event: object
    delta: float
    rows: tuple
    tightest: EpsilonResult
    phase_rows: tuple = ()

    def __iter__(self):
        return iter(self.rows)

    def row(self, method: str) -> EpsilonResult:
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(method)

    def to_dict(self) -> dict:
        d = {"delta": self.delta, "event": self.event.to_dict(),
             "results": [r.to_dict() for r in self.rows], "tightest": self.tightest.to_dict()}
        if self.phase_rows:
            d["phases"] = [[r.to_dict() for r in rows] for rows in self.phase_rows]
        return d


def _whole_run(event, delta) -> list:
    """Every accountant's row for the whole run. Kept for the last 256 (event, delta) asked:
    events are frozen, so the same question (a certificate after a summary of the same run, a
    re-check after a calibration) is answered once."""
    try:
        return list(_rows(event, delta))
    except TypeError:  # an event that cannot be hashed is simply computed
        return [acc.row(event, delta) for acc in ACCOUNTANTS]


@functools.lru_cache(maxsize=256)
def _rows(event, delta) -> tuple:
    return tuple(acc.row(event, delta) for acc in ACCOUNTANTS)


def epsilon(event, delta: float) -> EpsilonTable:
    """Every method's bound for ``event`` at ``delta`` (each accountant run once)."""
    delta = check_delta(delta)
    phases = phases_of(event)
    rows = _whole_run(event, delta)
    phase_rows = ()
    if len(phases) == 1:
        rows = release_rows(phases[0], delta) + rows
    else:
        phase_rows = tuple(tuple(release_rows(p, delta) + _whole_run(p, delta)) for p in phases)
    return EpsilonTable(event, delta, tuple(rows), select_tightest(rows, event, delta),
                        phase_rows)


def tightest(event, delta: float) -> EpsilonResult:
    """The smallest sound upper bound dpaccount has for ``event`` at ``delta``, named after the
    method that produced it, with the best lower bound known and the interval's width."""
    delta = check_delta(delta)
    return select_tightest(_whole_run(event, delta), event, delta)
