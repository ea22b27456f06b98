"""dpaccount: privacy accounting, auditing and property tests for DP-InstaHide.

Layers: :mod:`dpaccount.mechanism` describes a run (immutable, validated); accountants such as
:mod:`dpaccount.closed_form` interpret it and return labelled :class:`EpsilonResult` values;
:mod:`dpaccount.symbolic` derives the formulas with sympy; :mod:`dpaccount.cli` only parses and
prints. Nothing in this package imports torch.
"""

from .mechanism import (
    EpsilonResult,
    InstaHide,
    Labels,
    Relation,
    Sampler,
    image_diameter,
    image_norm,
    parse_class_sizes,
    parse_image_shape,
)
from . import closed_form

__all__ = [
    "EpsilonResult",
    "InstaHide",
    "Labels",
    "Relation",
    "Sampler",
    "image_diameter",
    "image_norm",
    "parse_class_sizes",
    "parse_image_shape",
    "closed_form",
]

__version__ = "0.1.0"
