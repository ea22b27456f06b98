"""Accountants behind one interface (:class:`Accountant`): ``supports(event)``,
``epsilon(event, delta)`` and ``delta(event, epsilon)``, each result labelled with the method that
produced it. Closed forms (basic, advanced, KOV), RDP and PLD implement it; all compose phases."""

from .base import Accountant, DeltaResult, EpsilonResult, relative_width, width_note
from .closed_form import AdvancedAccountant, BasicAccountant, KOVAccountant, release_rows
from .hits import HitsAccountant
from .pld import PLDAccountant
from .rdp import RDPAccountant

__all__ = ["Accountant", "EpsilonResult", "DeltaResult", "BasicAccountant", "AdvancedAccountant",
           "KOVAccountant", "RDPAccountant", "PLDAccountant", "HitsAccountant", "ACCOUNTANTS", "by_method",
           "release_rows", "relative_width", "width_note"]

#: Every whole-run accountant, in the order the epsilon table prints them.
ACCOUNTANTS = (BasicAccountant(), AdvancedAccountant(), KOVAccountant(), RDPAccountant(),
               PLDAccountant(), HitsAccountant())


def by_method(method: str) -> Accountant:
    """The accountant named ``method`` (``basic``, ``advanced``, ``kov``, ``rdp``, ``pld``,
    ``pld-tilted``)."""
    for acc in ACCOUNTANTS:
        if acc.method == method:
            return acc
    from ..errors import InputError

    names = ", ".join(a.method for a in ACCOUNTANTS)
    raise InputError(f"method must be one of {names}; got {method!r}")
