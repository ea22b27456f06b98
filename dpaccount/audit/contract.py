"""The contract a release function under audit must keep, checked before any simulation.

An audit draws every block of trials from its own generator (``SeedSequence(seed, spawn_key=
(side, block))``), so a release function

    release_fn(dataset, trials, rng) -> array (trials, T, d)

must draw *all* its randomness from the ``rng`` it is given. One that also draws from numpy's
global RNG, torch's global generator, ``random``, or a generator it seeds itself breaks what
the audit relies on: a resumed run would mix blocks of a different law, and a fixed internal
seed repeats the same draws in every block, so the trials are no longer independent and the
Clopper-Pearson bound no longer holds. :func:`check_release_fn` probes the function on a few
trials and refuses, in one line, one that is not a function of its ``rng`` (the same generator
twice must give the same output; two different generators must not), returns the wrong shape or
non-finite values. Its digest of the probe's output goes into an audit store's identity, so a
store is not resumed with an implementation that behaves differently.

:func:`load_implementation` turns ``module:function`` (``dpaccount audit mechanism
--implementation``) into a release function. The object named is either

- a **release function** ``release(dataset, trials, rng)`` (any callable taking three
  positional arguments), used as it is; or
- a **factory** ``factory(mechanism)`` (any callable taking one positional argument, e.g. a
  class whose constructor takes the mechanism): called with the audited
  :class:`~dpaccount.events.InstaHide`, it returns the release function. This is how an
  implementation whose parameters (k, noise, T, sampler) come from the mechanism plugs in, e.g.
  the torch augmentation through ``training.augment.torch_release_fn``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import sys
from typing import Callable

import numpy as np

from ..errors import InputError

__all__ = ["PROBE_TRIALS", "check_release_fn", "load_implementation", "as_release_fn",
           "release_fn_kind", "RNG_CONTRACT"]

#: trials per side of the probe that :func:`check_release_fn` runs
PROBE_TRIALS = 4

#: the contract, in words (docstrings and error messages)
RNG_CONTRACT = ("a release function must draw all its randomness from the rng it is given "
                "(a numpy Generator)")

_SPEC = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


def _probe_rng(seed: int, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))


def check_release_fn(release_fn: Callable, data, trials: int, expected_shape: tuple, seed: int,
                     *, name: str = "release_fn") -> str:
    """Probe ``release_fn`` on ``data`` with ``trials`` trials and return a short sha256 digest
    of its output; refuse (:class:`~dpaccount.errors.InputError`, one line naming ``name``) a
    function that breaks the audit's contract:

    - called twice with fresh generators of the same seed (``SeedSequence(seed,
      spawn_key=(7,))``), it must return the same output: otherwise it draws randomness outside
      the rng it is given (numpy's global RNG, torch's global generator, ...);
    - called with a generator of another seed (``spawn_key=(8,)``), it must return a different
      output: otherwise it ignores the rng (a generator seeded inside, or no noise at all), and
      the audit's blocks would repeat the same draws;
    - its output must have ``expected_shape`` (trials, T, d) and be finite.

    An exception raised by ``release_fn`` on the probe is refused the same way (chained, for
    the traceback). Cheap: three calls of ``trials`` trials."""
    expected_shape = tuple(int(s) for s in expected_shape)

    def call(key: int) -> np.ndarray:
        try:
            out = release_fn(data, trials, _probe_rng(seed, key))
        except InputError as exc:
            raise InputError(f"{name} refused a probe of {trials} trials, called as "
                             f"release(dataset, trials, rng): {exc}") from exc
        except Exception as exc:
            raise InputError(f"{name} raised {type(exc).__name__} on a probe of {trials} "
                             f"trials, called as release(dataset, trials, rng): {exc}") from exc
        try:
            z = np.asarray(out, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} returned {type(out).__name__}, not an array of numbers "
                             f"of shape {expected_shape} (trials, T, d): {exc}") from exc
        if z.shape != expected_shape:
            raise InputError(f"{name} returned shape {z.shape}; expected {expected_shape} "
                             "(trials, T, d)")
        if not np.all(np.isfinite(z)):
            raise InputError(f"{name} returned a nan or inf value on a probe of {trials} trials; "
                             "releases must be finite")
        return z

    first = call(7)
    again = call(7)
    if not np.array_equal(first, again):
        raise InputError(f"{name} draws randomness outside the rng it is given (numpy's global "
                         "RNG, torch's global generator, ...): two calls with generators of the "
                         f"same seed returned different releases; {RNG_CONTRACT}")
    if np.array_equal(first, call(8)):
        raise InputError(f"{name} ignores the rng it is given: generators of different seeds "
                         "returned the same releases (a generator seeded inside, or no noise); "
                         f"{RNG_CONTRACT}")
    h = hashlib.sha256()
    h.update(str(first.shape).encode())
    h.update(np.ascontiguousarray(first, dtype="<f8").tobytes())
    return h.hexdigest()[:16]


def _binds(fn, args: int) -> bool | None:
    """Whether ``fn`` accepts ``args`` positional arguments (None: its signature is unknown)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        sig.bind(*([None] * args))
    except TypeError:
        return False
    return True


def release_fn_kind(obj, *, name: str = "implementation") -> str:
    """``"release"`` for a callable that takes three positional arguments ``(dataset, trials,
    rng)`` (or whose signature Python cannot tell), ``"factory"`` for one that takes one
    ``(mechanism)``; refused by ``name`` when it is not callable, takes neither, or both."""
    if not callable(obj):
        raise InputError(f"{name} is not callable (it is a {type(obj).__name__!r} object): "
                         "give a release function release(dataset, trials, rng) or a "
                         "factory(mechanism)")
    three, one = _binds(obj, 3), _binds(obj, 1)
    if three is None or (three and not one):
        return "release"
    if one and three:
        raise InputError(f"{name} takes both one and three arguments: it is ambiguous whether "
                         "it is a release function release(dataset, trials, rng) or a "
                         "factory(mechanism); give a function with a fixed signature")
    if not one:
        raise InputError(f"{name} takes neither (dataset, trials, rng), as a release function "
                         "does, nor (mechanism), as a factory does")
    return "factory"


def as_release_fn(obj, mechanism, *, name: str = "implementation") -> Callable:
    """``obj`` as a release function: itself when it takes ``(dataset, trials, rng)``, or
    ``obj(mechanism)`` when it takes one argument (a factory; :func:`release_fn_kind`). Refused
    by ``name`` when it is neither, or when the factory fails or returns something that is not
    a release function."""
    if release_fn_kind(obj, name=name) == "release":
        return obj
    try:
        fn = obj(mechanism)
    except InputError as exc:
        raise InputError(f"{name}: the factory refused the mechanism: {exc}") from exc
    except Exception as exc:
        raise InputError(f"{name}: the factory raised {type(exc).__name__} when called with the "
                         f"mechanism: {exc}") from exc
    if not callable(fn) or _binds(fn, 3) is False:
        raise InputError(f"{name}: the factory returned {type(fn).__name__}, not a release "
                         "function release(dataset, trials, rng)")
    return fn


def _import(module: str, what: str):
    # like `python -m`: the current directory is on the path, so a module beside the user is
    # found (the `dpaccount` console script does not put it there itself)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            hint = (f"; name the module without .py ({module[:-3]})"
                    if module.endswith(".py") else "")
            raise InputError(f"{what}: no module named {exc.name!r} (searched the current "
                             f"directory and sys.path){hint}") from exc
        raise InputError(f"{what}: importing {module} raised ModuleNotFoundError: {exc}") \
            from exc
    except (Exception, SystemExit) as exc:
        raise InputError(f"{what}: importing {module} raised {type(exc).__name__}: {exc}") \
            from exc


def load_implementation(spec: str, mechanism, *, flag: str = "--implementation"):
    """``(release_fn, name)`` from ``spec`` = ``"module:function"`` (``module:Class.attr`` for
    a nested name): the module is imported with the current directory on the path, as ``python
    -m`` does, and the object is taken as a release function or a factory
    (:func:`as_release_fn`). ``name`` is the spec, with the function's ``describe()`` where it
    has one. Every failure (no colon, no such module, the import raising, no such attribute,
    not callable, a failing factory) is one :class:`~dpaccount.errors.InputError` naming
    ``flag`` and ``spec``. The rng contract is checked separately (:func:`check_release_fn`)."""
    what = f"{flag} {spec!r}"
    if not isinstance(spec, str) or not _SPEC.match(spec):
        raise InputError(f"{flag} must be module:function (a Python module on the path and a "
                         f"name in it, e.g. mypkg.impl:release); got {spec!r}")
    module_name, attr = spec.split(":")
    obj = _import(module_name, what)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"{what}: module {module_name} has no attribute {attr!r}") \
                from None
        except Exception as exc:
            raise InputError(f"{what}: reading {attr} raised {type(exc).__name__}: {exc}") \
                from exc
    fn = as_release_fn(obj, mechanism, name=what)
    describe = getattr(fn, "describe", None)
    label = spec
    if callable(describe):
        try:
            label = f"{spec} ({describe()})"
        except Exception:  # a description is a courtesy; its failure is not the audit's
            label = spec
    return fn, label
