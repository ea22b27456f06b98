"""Where the long jobs' work units run: in this process, or on a Ray cluster.

The three long jobs (``dpaccount audit mechanism``, ``dpaccount audit model`` and
``dpaccount poison-eval``) are split into *units* that are independent of each other and seeded
by their own index, never by the order in which they finish:

========================  ===============================================  ===================
job                       unit                                             seeded by
========================  ===============================================  ===================
audit mechanism           a block of trials of one side (scores)           (seed, side, block)
audit model (shadow)      a block of shadow models trained together        (seed, block)
poison-eval               one grid cell: a poisoned and a clean training   the cell's seed
========================  ===============================================  ===================

The job keeps every unit's result in its resumable store *in this process* (the driver), as the
result arrives; the executor only computes. So a run can be killed under either executor and
resumed under either, and the results are the same for the same seed.

:class:`LocalExecutor` runs the units one after another here. :class:`RayExecutor` submits them
as Ray tasks (``pip install "dpaccount[ray]"``): to a local Ray runtime it starts itself, or to
a cluster at ``address``. A unit that raises is retried by Ray (``max_retries``,
``retry_exceptions``); one that keeps failing stops the run with :class:`UnitFailed`, naming
the unit and its error, after the results that had arrived are kept. No scheduling of our own:
Ray places, retries and cancels.

:class:`FailingUnits` (a unit function that fails on chosen units a chosen number of times, and
records every attempt) and the ``observe`` hook exist for tests of retry and resume.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Hashable, Iterable

from .errors import InputError

__all__ = ["EXECUTORS", "LocalExecutor", "RayExecutor", "UnitFailed", "FailingUnits",
           "InjectedFailure", "make_executor", "check_executor_args", "ray_available",
           "check_reachable", "apply_unit"]

EXECUTORS = ("local", "ray")

#: how many times Ray reruns a unit that raised or whose worker died, before the run stops
RETRIES = 2

# host:port, ray://host:port, or "auto" (the cluster this machine belongs to)
_ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5})$")


class UnitFailed(RuntimeError):
    """A unit kept failing after Ray's retries: ``unit`` names it, ``error`` is its last error
    (``ExceptionType: message``), ``attempts`` how many times it ran. The results that had
    arrived before are kept in the job's store."""

    def __init__(self, unit: str, attempts: int, error: str):
        super().__init__(f"unit {unit} failed {attempts} time{'s' if attempts != 1 else ''} "
                         f"(Ray retried it {attempts - 1} time{'s' if attempts != 2 else ''}): "
                         f"{error}")
        self.unit, self.attempts, self.error = unit, attempts, error


class InjectedFailure(RuntimeError):
    """The failure :class:`FailingUnits` raises."""


def ray_available() -> bool:
    """Whether Ray is installed. A directory named ``ray`` on the path (Ray's own session folder
    /tmp/ray, seen from /tmp) imports as an empty namespace package: that is not Ray."""
    try:
        spec = importlib.util.find_spec("ray")
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "namespace")


def check_executor_args(executor, ray_address=None, *, flag: str = "executor") -> None:
    """Refuse a bad executor choice in one line, before any work: an unknown name, a Ray
    address without the Ray executor or in a form Ray cannot read, Ray not installed."""
    if isinstance(executor, (LocalExecutor, RayExecutor)):
        if ray_address is not None:
            raise InputError("ray_address goes to RayExecutor(address=...) when an executor "
                             "object is given")
        return
    if executor not in EXECUTORS:
        raise InputError(f"{flag} must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    if ray_address is not None:
        if executor != "ray":
            raise InputError(f"ray address {ray_address!r} applies to the ray executor only; "
                             f"got {flag} {executor!r}")
        if not isinstance(ray_address, str) or not _ADDRESS.match(ray_address):
            raise InputError(f"ray address must be host:port, ray://host:port or 'auto'; got "
                             f"{ray_address!r}")
    if executor == "ray" and not ray_available():
        raise InputError(f"{flag} 'ray' needs Ray: pip install 'dpaccount[ray]'")


#: seconds to wait for a cluster's head to answer before refusing the address (Ray itself would
#: keep trying for minutes)
CONNECT_TIMEOUT = 5.0


def check_reachable(address: str) -> None:
    """Refuse ``host:port`` (or ``ray://host:port``) at once when nothing answers there."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except (OSError, ValueError) as exc:
        raise InputError(f"ray address {address!r}: nothing answers at {host}:{port} "
                         f"({type(exc).__name__}: {exc}); start the head with ray start "
                         "--head, or leave --ray-address out for a local runtime") from None


def make_executor(executor="local", ray_address: str | None = None, **kwargs):
    """An executor from a name (``"local"`` or ``"ray"``, with ``ray_address`` for a cluster;
    None starts a local Ray runtime) or the executor object itself."""
    check_executor_args(executor, ray_address)
    if not isinstance(executor, str):
        return executor
    if executor == "local":
        return LocalExecutor(**kwargs)
    return RayExecutor(address=ray_address, **kwargs)


@dataclass
class LocalExecutor:
    """The units one after another in this process. A unit's exception propagates as it is
    (there is nothing to retry it on). ``wrap`` (fn -> fn) and ``observe`` (called with each
    unit after its result was kept) are hooks for tests."""

    wrap: Callable | None = None
    observe: Callable | None = None
    name: str = field(default="local", init=False)

    def describe(self) -> str:
        return "local (this process)"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def require(self, num_gpus: float = 0) -> None:
        """Nothing to check: a local unit uses whatever device the job resolved."""

    def run(self, fn: Callable, context, units: Iterable[Hashable], on_result: Callable, *,
            label: Callable = str, num_gpus: float = 0) -> None:
        """``on_result(unit, fn(context, unit))`` for every unit, in order."""
        fn = self.wrap(fn) if self.wrap is not None else fn
        for unit in units:
            on_result(unit, fn(context, unit))
            if self.observe is not None:
                self.observe(unit)


@dataclass
class RayExecutor:
    """The units as Ray tasks. ``address``: a running cluster (``host:port``,
    ``ray://host:port`` or ``"auto"``); None starts a local Ray runtime with ``num_cpus`` CPUs
    (all of this machine's when None) and shuts it down afterwards. A runtime that is already
    up in this process (``ray.init`` called by the user) is used as it is and left running.
    ``retries``: Ray's reruns of a unit that raised or lost its worker. At most ``window``
    units are in flight at once (default: twice the cluster's CPUs, or its GPUs for GPU units),
    so a failure stops the run soon and results arrive steadily."""

    address: str | None = None
    num_cpus: int | None = None
    retries: int = RETRIES
    window: int | None = None
    wrap: Callable | None = None
    observe: Callable | None = None
    name: str = field(default="ray", init=False)
    _started: bool = field(default=False, init=False, repr=False)
    _depth: int = field(default=0, init=False, repr=False)

    def __post_init__(self):
        if not ray_available():
            raise InputError("executor 'ray' needs Ray: pip install 'dpaccount[ray]'")
        if self.address is not None:
            check_executor_args("ray", self.address)
        if self.num_cpus is not None and (isinstance(self.num_cpus, bool) or
                                          not isinstance(self.num_cpus, int) or
                                          self.num_cpus < 1):
            raise InputError(f"num_cpus must be a positive integer; got {self.num_cpus!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or \
                self.retries < 0:
            raise InputError(f"retries must be a non-negative integer; got {self.retries!r}")

    def describe(self) -> str:
        where = self.address or "a local Ray runtime"
        return f"ray ({where})"

    def __enter__(self):
        import ray

        self._depth += 1  # `with` nests (a job entering the executor its caller entered)
        if not ray.is_initialized() and self.address not in (None, "auto"):
            try:
                check_reachable(self.address)
            except InputError:
                self._depth -= 1
                raise
        if not ray.is_initialized():
            kwargs = dict(include_dashboard=False, log_to_driver=False,
                          configure_logging=True, logging_level="ERROR")
            try:
                if self.address is None:
                    ray.init(num_cpus=self.num_cpus, **kwargs)
                else:
                    ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                self._depth -= 1
                msg = " ".join(str(exc).split())[:300]
                raise InputError(f"ray address {self.address!r}: could not connect "
                                 f"({type(exc).__name__}: {msg})") from None
            self._started = True
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._started and self._depth == 0:  # only the runtime this executor started
            import ray

            ray.shutdown()
            self._started = False
        return False

    def require(self, num_gpus: float = 0) -> None:
        """Refuse units that ask for more GPUs than the cluster has (Ray would wait for them
        for ever). Call it inside ``with``, before anything is written."""
        import ray

        if num_gpus > 0:
            have = ray.cluster_resources().get("GPU", 0)
            if have < num_gpus:
                raise InputError(f"device 'cuda' asks Ray for {num_gpus:g} GPU per unit; the "
                                 f"cluster has {have:g}")

    def _window(self, num_gpus: float) -> int:
        import ray

        if self.window is not None:
            return max(1, int(self.window))
        res = ray.cluster_resources()
        if num_gpus > 0:
            return max(1, int(2 * res.get("GPU", 0) / num_gpus))
        return max(2, int(2 * res.get("CPU", 1)))

    def run(self, fn: Callable, context, units: Iterable[Hashable], on_result: Callable, *,
            label: Callable = str, num_gpus: float = 0) -> None:
        """``on_result(unit, result)`` in this process for every unit, as results arrive (in
        any order). ``num_gpus``: what each unit asks Ray for (refused at once when the cluster
        has fewer GPUs than one unit needs, rather than waiting for them for ever)."""
        import ray
        from ray.exceptions import RayError, RayTaskError

        started_here = not ray.is_initialized()
        if started_here:  # run() without `with`: a runtime for this call only
            self.__enter__()
        try:
            self.require(num_gpus)
            fn = self.wrap(fn) if self.wrap is not None else fn
            remote = ray.remote(num_cpus=1, num_gpus=num_gpus, max_retries=self.retries,
                                retry_exceptions=True)(apply_unit)
            ctx = ray.put((fn, context))  # once, shared by every unit
            todo = list(units)
            pending: dict = {}
            window = self._window(num_gpus)
            try:
                while todo or pending:
                    while todo and len(pending) < window:
                        unit = todo.pop(0)
                        pending[remote.remote(ctx, unit)] = unit
                    done, _ = ray.wait(list(pending), num_returns=1)
                    for ref in done:
                        unit = pending.pop(ref)
                        try:
                            result = ray.get(ref)
                        except RayError as exc:
                            # keep what else has already finished, then stop
                            self._drain(pending, on_result)
                            cause = exc.cause if isinstance(exc, RayTaskError) else exc
                            if isinstance(cause, InputError):
                                raise InputError(str(cause)) from None
                            text = " ".join(str(cause).split())
                            raise UnitFailed(label(unit), self.retries + 1,
                                             f"{type(cause).__name__}: {text}"[:500]) from None
                        on_result(unit, result)
                        if self.observe is not None:
                            self.observe(unit)
            finally:
                # stopped early (a failed unit, an interrupt): the units still running are
                # killed with their workers, which Ray replaces. An interrupt raised inside a
                # running unit instead (ray.cancel without force) can land mid-import and leave
                # that worker's modules half-initialised for every later unit
                for ref in pending:
                    ray.cancel(ref, force=True)
        finally:
            if started_here:
                self.__exit__(None, None, None)

    def _drain(self, pending: dict, on_result: Callable) -> None:
        """Deliver the units that have already finished (without waiting for the others)."""
        import ray
        from ray.exceptions import RayError

        if not pending:
            return
        done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for ref in done:
            unit = pending.pop(ref)
            try:
                result = ray.get(ref)
            except RayError:
                continue
            on_result(unit, result)


def apply_unit(packed: tuple, unit):
    """What a Ray task runs: ``fn(context, unit)`` for ``packed = (fn, context)``."""
    fn, context = packed
    return fn(context, unit)


class FailingUnits:
    """A unit function that raises :class:`InjectedFailure` the first ``times`` attempts at each
    unit in ``fail`` (a dict unit -> times, or a set: every attempt), and otherwise calls
    ``fn``. Every attempt is recorded as a file in ``record_dir`` (``attempts(unit)`` counts
    them, ``calls(unit)`` counts completed ones), across Ray's worker processes. For tests of
    retry and resume."""

    def __init__(self, fn: Callable, fail, record_dir):
        self.fn = fn
        self.fail = dict(fail) if isinstance(fail, dict) else {u: sys.maxsize for u in fail}
        self.record_dir = str(record_dir)
        Path(self.record_dir).mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _key(unit) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", repr(unit))

    def _count(self, prefix: str, unit) -> int:
        stem = f"{prefix}-{self._key(unit)}-"
        return sum(1 for f in os.listdir(self.record_dir) if f.startswith(stem))

    def _mark(self, prefix: str, unit) -> int:
        stem = f"{prefix}-{self._key(unit)}-"
        i = 0
        while True:  # O_EXCL: two workers never take the same number
            try:
                fd = os.open(os.path.join(self.record_dir, f"{stem}{i}"),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                return i
            except FileExistsError:
                i += 1

    def attempts(self, unit) -> int:
        return self._count("attempt", unit)

    def calls(self, unit) -> int:
        return self._count("done", unit)

    def __call__(self, context, unit):
        n = self._mark("attempt", unit)
        if n < self.fail.get(unit, 0):
            raise InjectedFailure(f"injected failure of unit {unit!r} (attempt {n + 1})")
        out = self.fn(context, unit)
        self._mark("done", unit)
        return out
