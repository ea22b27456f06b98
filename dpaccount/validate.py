"""Argument checks shared by the accountants: one rule, one message, everywhere."""

from __future__ import annotations

import math
import numbers
import sys

from .errors import InputError


def check_delta(delta) -> float:
    """delta in the open interval (0, 1); nan is refused."""
    d = float(delta)
    if not (0.0 < d < 1.0):  # also refuses nan
        raise InputError(f"delta must be in the open interval (0, 1); got {delta!r}")
    return d


def check_count(name: str, t) -> int:
    """A positive integer (bool refused)."""
    if isinstance(t, bool) or int(t) != t or t < 1:
        raise InputError(f"{name} must be a positive integer; got {t!r}")
    return int(t)


def check_eps(name: str, eps) -> float:
    """A finite number >= 0."""
    e = float(eps)
    if math.isnan(e) or e < 0 or not math.isfinite(e):
        raise InputError(f"{name} must be a finite number >= 0; got {eps!r}")
    return e


def check_enum(enum_cls, name: str, value):
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in enum_cls)
        raise InputError(f"{name} must be one of {choices}; got {value!r}") from None


def check_positive_int(name: str, value, *, maximum: int | None = None) -> int:
    # bool is an int subclass; "k=True" is a bug in the caller, not a count.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            fv = float(value)
            if math.isfinite(fv) and fv == int(fv) and fv >= 1:
                # 50000.0 is accepted as 50000; 2.5 is not.
                value = int(fv)
            else:
                raise InputError(f"{name} must be a positive integer; got {value!r}")
        else:
            raise InputError(f"{name} must be a positive integer; got {value!r}")
    value = int(value)
    if value < 1:
        raise InputError(f"{name} must be a positive integer (>= 1); got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be at most {maximum:.0e}; got {value}")
    return value


def check_positive_finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a positive finite number; got {value!r}")
    fv = float(value)
    if math.isnan(fv):
        raise InputError(f"{name} must be a positive finite number; got nan")
    if not math.isfinite(fv):
        raise InputError(f"{name} must be a positive finite number; got {fv}")
    if fv <= 0.0:
        raise InputError(f"{name} must be a positive finite number (> 0); got {fv}")
    return fv


def fmt_count(value) -> str:
    """An integer for a message: as is up to 1e15, else in ``%g`` form (a 300-digit number
    helps no one)."""
    try:
        if abs(value) < 1e15:
            return str(value)
        return f"{float(value):.6g}"
    except OverflowError:  # an int beyond the largest float
        return f"about 1e+{len(str(abs(int(value)))) - 1}"
    except (TypeError, ValueError):
        return repr(value)


#: Smallest one-release epsilon ``eps0 = shift / (k b)`` the accountants compute: the smallest
#: positive normal float (below it eps0 underflows; :class:`~dpaccount.events.InstaHide` refuses
#: such runs too). Tiny eps0 are computed, not refused: the run is then private to within a
#: float's precision and every accountant says so.
MIN_EPS0 = sys.float_info.min

#: Largest ``T * eps0`` (the pure-DP bound of the whole run) the accountants compute: beyond it
#: their arithmetic overflows and an epsilon would not be representable as a float.
MAX_TOTAL_EPS = 1e300


def check_computable(event) -> None:
    """Refuse, naming the parameters, an event whose epsilon the accountants cannot compute in
    floating point: one release's ``eps0 = shift / (k b)`` below :data:`MIN_EPS0` (noise far
    larger than the sensitivity), or ``T * eps0`` above :data:`MAX_TOTAL_EPS` (epsilon not
    representable). ``event``: an :class:`~dpaccount.events.InstaHide` or a composition of them."""
    phases = getattr(event, "phases", None) or (event,)
    for i, p in enumerate(phases):
        where = "" if len(phases) == 1 else f"phase {i + 1}: "
        what = "diameter" if p.shift == p.diameter else "norm"
        eps0 = p.eps0
        setting = (f"noise={p.noise:g} with {what}={p.shift:g} and k={fmt_count(p.k)} give one "
                   f"release eps0 = {what}/(k*noise) = {eps0:.3g}")
        if not eps0 >= MIN_EPS0:
            most = p.shift / (p.k * MIN_EPS0)
            raise InputError(f"{where}noise is too large to compute with: {setting}, below "
                             f"{MIN_EPS0:g} (float precision); use noise <= {most:.3g} or a "
                             f"larger {what}")
        total = eps0 * p.releases
        if not total <= MAX_TOTAL_EPS:
            least = p.shift * p.releases / (p.k * MAX_TOTAL_EPS)
            shown = f"{total:.3g}" if math.isfinite(total) else "more than 1.8e308"
            raise InputError(f"{where}epsilon is not representable as a float: {setting}, and "
                             f"T={fmt_count(p.releases)} releases can reach epsilon {shown} "
                             f"(above {MAX_TOTAL_EPS:g}); use noise >= {least:.3g}, a smaller "
                             f"{what} or fewer releases")
