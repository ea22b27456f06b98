"""dpaccount: privacy accounting, auditing and property tests for DP-InstaHide.

Layers, top to bottom: :mod:`dpaccount.events` describes what ran (immutable, validated: one
:class:`InstaHide` phase, or a :class:`ComposedEvent` of phases); :mod:`dpaccount.samplers` says
what each sampler does; :mod:`dpaccount.accountants` interpret events behind one interface and
return labelled bounds; :mod:`dpaccount.numerics` computes without policy;
:mod:`dpaccount.selection` chooses among bounds; :mod:`dpaccount.step` counts releases for a
training loop. Nothing in this package imports torch.

The everyday calls::

    import dpaccount
    run = dpaccount.InstaHide.from_epochs(k=4, noise=0.1, n=50000, diameter=3072.0, epochs=40,
                                          class_sizes=(5000,) * 10)
    dpaccount.epsilon(run, 1e-5)          # every method's bound (the CLI's table)
    dpaccount.tightest(run, 1e-5)         # the smallest sound upper bound, and its method

Heavy modules (scipy, sympy) load on first use, so ``import dpaccount`` and ``dpaccount
--version`` stay fast.
"""

from .errors import InputError, Unsupported
from .events import (
    ComposedEvent,
    InstaHide,
    Labels,
    Relation,
    compose,
    image_diameter,
    image_norm,
    parse_class_sizes,
    parse_image_shape,
)
from .samplers import Sampler

__version__ = "0.2.0"

#: public names that load their module on first use: name -> (module, attribute)
_LAZY = {
    "epsilon": ("dpaccount.selection", "epsilon"),
    "tightest": ("dpaccount.selection", "tightest"),
    "EpsilonTable": ("dpaccount.selection", "EpsilonTable"),
    "calibrate": ("dpaccount.calibration", "calibrate"),
    "certify": ("dpaccount.certificates", "certify"),
    "StepAccountant": ("dpaccount.step", "StepAccountant"),
    "EpsilonResult": ("dpaccount.accountants.base", "EpsilonResult"),
    "DeltaResult": ("dpaccount.accountants.base", "DeltaResult"),
    "audit_mechanism": ("dpaccount.audit.run", "audit_mechanism"),
    "worst_case_pair": ("dpaccount.audit.simulate", "worst_case_pair"),
    "NeighbourPair": ("dpaccount.audit.simulate", "NeighbourPair"),
    "InstaHideReleases": ("dpaccount.audit.simulate", "InstaHideReleases"),
}

__all__ = ["InputError", "Unsupported", "ComposedEvent", "InstaHide", "Labels", "Relation",
           "Sampler", "compose", "image_diameter", "image_norm", "parse_class_sizes",
           "parse_image_shape", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dpaccount' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
