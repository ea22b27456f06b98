"""A step-wise accountant for training loops (the shape of Opacus' ``accountant.step()``).

::

    acc = StepAccountant(k=4, noise=0.1, n=50000, diameter=3072.0, class_sizes=(5000,) * 10)
    for batch in loader:
        ...                              # release len(batch) mixed samples
        acc.step(releases=len(batch))
    acc.get_epsilon(1e-5)                # the tightest sound bound so far
    state = acc.state_dict()             # save with the checkpoint
    acc = StepAccountant.from_state_dict(state)

The accountant records what ran as events (phases of :class:`~dpaccount.events.InstaHide`;
a step with different parameters, ``step(releases=..., noise=...)``, starts a new phase) and
asks :func:`dpaccount.tightest` for the bound. It computes no privacy itself.
"""

from __future__ import annotations

import dataclasses
import json

from .errors import InputError
from .events import ComposedEvent, InstaHide
from .validate import check_positive_int

__all__ = ["StepAccountant"]

_PARAMS = ("k", "noise", "n", "diameter", "sampler", "relation", "labels", "class_sizes", "norm")
_STATE_VERSION = 1


class StepAccountant:
    """Counts releases as a training loop makes them; answers with the tightest sound bound.

    Parameters are those of :class:`~dpaccount.events.InstaHide` without ``releases`` (or a
    ``template`` InstaHide whose release count is ignored). They are validated now, before any
    training runs.
    """

    def __init__(self, template: InstaHide | None = None, **params):
        if template is not None:
            if params:
                raise InputError(f"give a template or parameters, not both; got "
                                 f"{sorted(params)}")
            if not isinstance(template, InstaHide):
                raise InputError(f"template must be an InstaHide; got {template!r}")
            params = {p: getattr(template, p) for p in _PARAMS}
        unknown = set(params) - set(_PARAMS)
        if unknown:
            raise InputError(f"unknown parameter(s) {sorted(unknown)}; expected some of "
                             f"{list(_PARAMS)}")
        self._current = InstaHide(releases=1, **params)  # validates now
        self._phases: list[InstaHide] = []

    # ---- recording ----
    def step(self, releases: int = 1, **changes) -> "StepAccountant":
        """Record ``releases`` more mixed samples; ``changes`` (e.g. ``noise=0.2``) apply to
        this step and every later one."""
        releases = check_positive_int("releases", releases)
        if changes:
            unknown = set(changes) - set(_PARAMS)
            if unknown:
                raise InputError(f"unknown parameter(s) {sorted(unknown)}; expected some of "
                                 f"{list(_PARAMS)}")
            self._current = dataclasses.replace(self._current, **changes)
        if self._phases and self._same(self._phases[-1], self._current):
            last = self._phases[-1]
            self._phases[-1] = dataclasses.replace(last, releases=last.releases + releases)
        else:
            self._phases.append(dataclasses.replace(self._current, releases=releases))
        return self

    @staticmethod
    def _same(a: InstaHide, b: InstaHide) -> bool:
        return all(getattr(a, p) == getattr(b, p) for p in _PARAMS)

    # ---- questions ----
    @property
    def releases(self) -> int:
        return sum(p.releases for p in self._phases)

    @property
    def event(self):
        """What ran so far: one :class:`InstaHide`, or a :class:`ComposedEvent` of phases."""
        if not self._phases:
            raise InputError("no releases recorded yet: call step() first")
        return self._phases[0] if len(self._phases) == 1 else ComposedEvent(tuple(self._phases))

    def get_bound(self, delta: float):
        """The tightest sound bound so far (:func:`dpaccount.tightest`)."""
        from .selection import tightest

        return tightest(self.event, delta)

    def get_epsilon(self, delta: float) -> float:
        """The number of :meth:`get_bound`: an upper bound on epsilon at ``delta``."""
        return self.get_bound(delta).epsilon

    # ---- checkpoints ----
    def state_dict(self) -> dict:
        """A JSON-serialisable description of what ran: save it with the checkpoint."""
        def clean(p: InstaHide) -> dict:
            d = {name: getattr(p, name) for name in _PARAMS}
            for name in ("sampler", "relation", "labels"):
                d[name] = d[name].value
            d["class_sizes"] = None if p.class_sizes is None else list(p.class_sizes)
            d["releases"] = p.releases
            return d
        return {"version": _STATE_VERSION, "current": clean(self._current),
                "phases": [clean(p) for p in self._phases]}

    @classmethod
    def from_state_dict(cls, state) -> "StepAccountant":
        """Restore from :meth:`state_dict` (validated: a malformed state names what is wrong)."""
        if isinstance(state, (str, bytes)):
            try:
                state = json.loads(state)
            except json.JSONDecodeError as exc:
                raise InputError(f"accountant state is not JSON: {exc}") from None
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise InputError(f"accountant state must be a dict of version {_STATE_VERSION}; got "
                             f"{str(state)[:80]!r}")
        try:
            cur = dict(state["current"])
            cur.pop("releases", None)
            obj = cls(**cur)
            for p in state["phases"]:
                p = dict(p)
                obj.step(releases=p.pop("releases"), **p)
        except (KeyError, TypeError) as exc:
            raise InputError(f"accountant state is malformed: missing or bad {exc}") from None
        obj._current = InstaHide(releases=1, **{k: v for k, v in cur.items()})
        return obj

    def load_state_dict(self, state) -> None:
        other = self.from_state_dict(state)
        self._current, self._phases = other._current, other._phases

    def __repr__(self) -> str:
        return f"StepAccountant(releases={self.releases}, phases={len(self._phases)})"
