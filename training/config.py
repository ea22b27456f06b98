"""What to train and what to audit: the configuration of ``dpaccount train`` and ``dpaccount
audit model``, one dataclass each, shared by the command line and the Python API.

This module imports no torch (nor numpy): ``dpaccount``'s command line reads its defaults from
these dataclasses (``dataclasses.fields``) while building its parser, so that a flag and the
Python argument it stands for cannot disagree. Every field is checked at construction; a bad
value raises :class:`dpaccount.errors.InputError` naming the field and the value.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields, replace

from dpaccount.errors import InputError
from dpaccount.validate import check_delta, fmt_count

__all__ = ["TrainConfig", "ModelAuditConfig", "canonical_labels", "defaults_of", "LABELS",
           "CANARIES", "DATASETS", "AUDIT_DATASETS", "MODELS", "SAMPLERS", "DEVICES",
           "AUDIT_LIMITS", "SCORES", "canonical_score"]

DATASETS = ("digits", "cifar10", "synthetic")
AUDIT_DATASETS = ("digits", "synthetic")
MODELS = ("mlp", "cnn")
SAMPLERS = ("subsets", "permutation")
DEVICES = ("auto", "cpu", "cuda")
CANARIES = ("mislabeled", "ood", "corner", "crafted")
#: what the shadow-model audit thresholds: the canary's loss, or LiRA's Gaussian likelihood ratio
#: (Carlini et al. 2022) in its offline form (OUT models only) or online form (IN and OUT);
#: ``lira`` is the old name of ``lira-online`` (what it always computed)
SCORES = ("loss", "lira-offline", "lira-online", "lira")
_SCORE_ALIASES = {"lira": "lira-online"}
#: what is released beside each mixed image; ``public`` and ``private`` are their old names
LABELS = ("soft", "noised")
_LABEL_ALIASES = {"public": "soft", "private": "noised"}


def canonical_labels(value) -> str:
    """``soft`` (the mean one-hot label is released without noise: what DP-InstaHide training
    does, and what the accountant then covers with the class sizes) or ``noised`` (the label is
    noised with the image and counts in the diameter). ``public`` and ``private`` are the old
    names of the same two releases."""
    name = _LABEL_ALIASES.get(value, value) if isinstance(value, str) else value
    if name not in LABELS:
        raise InputError(f"labels must be 'soft' or 'noised' ('public' and 'private' are their "
                         f"old names); got {value!r}")
    return name


def canonical_score(value) -> str:
    """``loss``, ``lira-offline`` or ``lira-online`` (``lira`` is the old name of the last)."""
    if not isinstance(value, str) or value not in SCORES:
        raise InputError(f"score must be one of {', '.join(SCORES)}; got {value!r}")
    return _SCORE_ALIASES.get(value, value)


def defaults_of(cls) -> dict:
    """``{field: default}`` of a config dataclass: what the command line shows and uses."""
    return {f.name: f.default for f in fields(cls)}


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _positive_int(name: str, value, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or int(value) != value or value < 1:
        raise InputError(f"{name} must be a positive integer; got {value!r}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be at most {maximum:g}; got {fmt_count(value)}")


#: the largest sizes a model audit accepts (a larger one only fails inside torch, later)
AUDIT_LIMITS = {"k": 10**6, "epochs": 10**6, "batch_size": 10**7, "hidden": 2**20,
                "models": 10**7, "block": 10**5, "copies": 10**4}


def _non_negative_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or int(value) != value or value < 0:
        raise InputError(f"{name} must be a non-negative integer; got {value!r}")


def _noise(value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or value < 0:
        raise InputError(f"noise must be a finite number >= 0; got {value!r}")


#: the largest learning rate accepted (torch keeps it in float32; 1e30 leaves room)
MAX_LR = 1e30


def _lr(value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not (math.isfinite(value) and value > 0):
        raise InputError(f"lr must be a positive finite number; got {value!r}")
    if value > MAX_LR:
        raise InputError(f"lr must be at most {MAX_LR:g} (torch keeps it in float32); got "
                         f"{value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """What to train (``dpaccount train``). ``augment=False`` trains on the clean records
    (shuffled batches, no mixing, no noise); ``noise=0`` is mixup without noise; ``k=1`` is noise
    without mixing. ``noise`` is the Laplace scale per pixel, pixels in [0, 1]."""

    dataset: str = "digits"
    data_dir: str | None = None
    model: str = "cnn"
    k: int = 4
    noise: float = 1.0
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    sampler: str = "subsets"
    labels: str = "soft"
    clip: bool = True
    augment: bool = True
    delta: float = 1e-5
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        _choice("dataset", self.dataset, DATASETS)
        _choice("model", self.model, MODELS)
        _positive_int("k", self.k)
        _noise(self.noise)
        for name in ("epochs", "batch_size"):
            _positive_int(name, getattr(self, name))
        _lr(self.lr)
        _choice("sampler", self.sampler, SAMPLERS)
        object.__setattr__(self, "labels", canonical_labels(self.labels))
        _choice("device", self.device, DEVICES)
        _non_negative_int("seed", self.seed)
        check_delta(self.delta)

    @property
    def effective(self) -> "TrainConfig":
        """No augmentation is shuffled batches of single records without noise."""
        if self.augment:
            return self
        return replace(self, k=1, noise=0.0, sampler="permutation")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelAuditConfig:
    """What the model audit trains (``dpaccount audit model``): ``models`` models per side, in
    blocks of ``block``, each with DP-InstaHide at ``k`` and ``noise`` (0: no defense; mixup
    only if k > 1). With ``labels="soft"`` the soft label is released without noise and the
    guarantee covers substitutions that keep the label; a ``mislabeled`` canary then needs
    ``labels="noised"`` for a DP run. ``copies``: the canary substitutes for that many records
    (of one class) at once, a group of ``copies`` records, audited against the accountant's
    group bound."""

    dataset: str = "digits"
    canary: str = "ood"
    k: int = 4
    noise: float = 1.0
    labels: str = "soft"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    hidden: int = 64
    models: int = 256  # per side
    block: int | str = 128  # models trained together; "auto": as many as fit (on CUDA)
    delta: float = 1e-5
    seed: int = 0
    copies: int = 1

    def __post_init__(self):
        _choice("dataset", self.dataset, AUDIT_DATASETS)
        _choice("canary", self.canary, CANARIES)
        object.__setattr__(self, "labels", canonical_labels(self.labels))
        for name in ("k", "epochs", "batch_size", "hidden", "models", "block", "copies"):
            if name == "block" and self.block == "auto":
                continue  # resolved when the audit runs (training.model_audit.resolve_block)
            _positive_int(name, getattr(self, name), AUDIT_LIMITS[name])
        if self.models < 2:
            raise InputError(f"models must be at least 2 per side; got {self.models}")
        _noise(self.noise)
        _lr(self.lr)
        _non_negative_int("seed", self.seed)
        if self.labels == "soft" and self.noise > 0 and self.canary == "mislabeled":
            raise InputError("a mislabeled canary changes the label: with labels 'soft' the "
                             "accountant does not cover it; use labels 'noised' (old name: "
                             "labels 'private') or another canary")
        check_delta(self.delta)

    def to_dict(self) -> dict:
        return asdict(self)
