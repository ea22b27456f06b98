"""The ``dpaccount`` command line: argument parsing and printing only.

Every number comes from the accountants (:mod:`dpaccount.selection`, :mod:`dpaccount.accountants`)
or :mod:`dpaccount.symbolic`. Bad input (:class:`~dpaccount.errors.InputError`) is one line on
stderr and exit status 2; anything else is a bug and stays a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from . import __version__
from .errors import InputError
from .executors import EXECUTORS, UnitFailed, check_executor_args
from .files import check_input_dir, check_output_dir, check_output_file
from .events import MAX_RELEASES, ComposedEvent, InstaHide, Labels, Relation, Sampler, \
    image_diameter, image_norm, parse_class_sizes, parse_image_shape, parse_value_range
from .validate import check_computable, check_delta, fmt_count
from training.config import AUDIT_DATASETS, CANARIES, DATASETS, DEVICES, MODELS, SAMPLERS, \
    SCORES, ModelAuditConfig, TrainConfig, canonical_labels, defaults_of

#: The embedded default: the paper's CIFAR-10 setting (Borgnia et al. 2021, Sec. 5): N = 50000
#: training images of 3x32x32 in [0, 1] in 10 classes of 5000, 4-way mixup, with Laplace scale
#: 0.1 (about 25/255 in pixel units) and 40 epochs, at delta = 1e-5. What is released is what
#: ``dpaccount train`` releases by default: each noisy mixed image with its un-noised soft label.
DEFAULTS = {
    "k": 4,
    "noise": 0.1,
    "n": 50000,
    "image": "3x32x32",
    "value_range": "0,1",
    "epochs": 40.0,
    "delta": 1e-5,
    "labels": "soft",
    "class_sizes": "10x5000",
}
DEFAULT_DESCRIPTION = (
    "embedded default: the paper's CIFAR-10 setting (N=50000 images of 3x32x32 in [0,1], "
    "10 classes of 5000, k=4, Laplace scale b=0.1, 40 epochs, soft labels released as "
    "dpaccount train does, delta=1e-5)"
)


#: The embedded default of ``dpaccount audit mechanism``: the configuration of the audit issue's
#: acceptance test. q = k/N = 0.5, eps0 = Delta/(k b) = 2 (eps1 = 1.433 per release), T = 10
#: releases, delta = 1e-2: small enough to simulate 1e5 trials per side in about a second.
AUDIT_DEFAULTS = {
    "k": 2,
    "noise": 1.0,
    "n": 4,
    "diameter": 4.0,
    "releases": 10,
    "delta": 1e-2,
    "labels": "none",
    "value_range": "0,1",
}
AUDIT_DESCRIPTION = (
    "embedded audit default: k=2 of N=4 records (q=0.5), L1 diameter 4, b=1 (eps0=2), "
    "T=10 releases, delta=1e-2"
)
#: refuse audits that would simulate more values (trials x 2 sides x T x d) than this
AUDIT_MAX_VALUES = 10**11
#: refuse audits of the worst-case pair with more records than this (both datasets are held)
AUDIT_MAX_RECORDS = 10**7
#: smallest noise or diameter ``dpaccount derive`` substitutes (sympy's rational conversion reads
#: smaller numbers as 0)
DERIVE_MIN = 1e-30
#: refuse images with more values per record than this (their diameter would not be a float)
MAX_PIXELS = 10**300


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default prints the usage too: keep it to one line
        raise UsageError(message)


def _int_like(name):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer; got {text!r}")
        if not math.isfinite(v) or v != int(v) or v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer; got {text!r}")
        return int(v)

    return parse


def _weights(text):
    """``uniform`` (weights 1/k, the default) or ``dirichlet:ALPHA`` (fresh Dirichlet(ALPHA)
    weights for every release): the value of ``InstaHide.dirichlet_alpha`` (None for uniform)."""
    t = text.strip().lower()
    if t == "uniform":
        return None
    head, _, alpha = t.partition(":")
    if head != "dirichlet" or not alpha:
        raise argparse.ArgumentTypeError(f"weights must be uniform or dirichlet:ALPHA (e.g. "
                                         f"dirichlet:0.5); got {text!r}")
    try:
        a = float(alpha)
    except ValueError:
        a = math.nan
    if not (a > 0 and math.isfinite(a)):
        raise argparse.ArgumentTypeError(f"weights dirichlet:ALPHA needs ALPHA a positive finite "
                                         f"number; got {text!r}")
    return a


def _labels(text):
    """``none``, ``soft`` or ``noised`` (``private`` is the old name of ``noised``); the old
    ``public`` is refused: it said nothing about whether the soft label is released."""
    t = text.strip().lower()
    if t == "private":
        return Labels.NOISED.value
    if t == "public":
        raise argparse.ArgumentTypeError(
            "labels 'public' is ambiguous: use 'soft' if the soft label is released without "
            "noise (what dpaccount train does) or 'none' if no label is released")
    if t not in {m.value for m in Labels}:
        raise argparse.ArgumentTypeError(f"labels must be one of none, soft, noised; got {text!r}")
    return t


def _soft_or_noised(text):
    """``soft`` or ``noised`` (``public`` and ``private`` are their old names), for what training
    releases beside each image."""
    try:
        return canonical_labels(text.strip().lower())
    except InputError:
        raise argparse.ArgumentTypeError(f"labels must be soft or noised (public and private are "
                                         f"the old names); got {text!r}") from None


#: canaries of the one-run model audit when --canaries is left out
ONE_RUN_CANARIES = 1000


def _float(name):
    def parse(text):
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number; got {text!r}")

    return parse


def _add_mechanism_args(p: argparse.ArgumentParser, defaults: dict = DEFAULTS) -> None:
    """The mechanism flags shared by epsilon, derive, calibrate, certify and audit mechanism;
    their help names the command's own embedded ``defaults`` (what :func:`mechanism_from_args`
    takes for a flag left out)."""
    d = defaults

    def default(key, fmt="{}"):
        return f" (default {fmt.format(d[key])})" if key in d else ""

    g = p.add_argument_group("mechanism (any flag left out takes the embedded default)")
    g.add_argument("--k", type=_int_like("k"), help="records mixed per release" + default("k"))
    g.add_argument("--noise", type=_float("noise"), metavar="B",
                   help="Laplace scale b per coordinate" + default("noise", "{:g}"))
    g.add_argument("--n", type=_int_like("n"), help="training set size N" + default("n"))
    dom = g.add_mutually_exclusive_group()
    dom.add_argument("--image", metavar="CxHxW",
                     help="image shape; the L1 diameter is its size times the value range"
                          + default("image"))
    dom.add_argument("--diameter", type=_float("diameter"), metavar="DELTA",
                     help="L1 diameter of a record's domain, instead of --image"
                          + default("diameter", "{:g}"))
    g.add_argument("--value-range", metavar="LOW,HIGH",
                   help="pixel value range for --image" + default("value_range"))
    labels = d.get("labels", Labels.SOFT.value)
    g.add_argument("--labels", type=_labels, metavar="none|soft|noised",
                   help=f"what is released beside each image (default {labels}): soft (the soft "
                        "label, without noise, as dpaccount train releases it), none (the image "
                        "only), noised (the one-hot label is mixed and noised with the image: +2 "
                        "to the diameter)")
    sizes = (f"{d['class_sizes']} while --n is left out, else a class of one record, the worst "
             "case" if "class_sizes" in d else "a class of one record, the worst case")
    g.add_argument("--class-sizes", metavar="SIZES",
                   help="with --labels soft: the size of every class, e.g. 178,182,177 or "
                        f"10x5000 (default: {sizes})")
    g.add_argument("--weights", type=_weights, metavar="uniform|dirichlet:ALPHA",
                   help="mixing weights: uniform 1/k (default), or fresh Dirichlet(ALPHA) weights "
                        "for every release, as mixup implementations draw them (a record's weight "
                        "can then reach 1; labels none or noised)")
    g.add_argument("--norm", type=_float("norm"), metavar="R",
                   help="largest L1 norm of a record, for --sampler poisson (taken from --image "
                        "and --value-range when they are given)")
    t = g.add_mutually_exclusive_group()
    t.add_argument("--epochs", type=_float("epochs"),
                   help="passes over the data" + (default("epochs", "{:g}") if "epochs" in d
                                                  else ", instead of --releases"))
    t.add_argument("--releases", type=_int_like("releases"), metavar="T",
                   help="number of mixed samples released" + (default("releases")
                                                              if "releases" in d
                                                              else ", instead of --epochs"))
    g.add_argument("--sampler", choices=[s.value for s in Sampler], default="subsets",
                   help="how records are chosen for each release (default subsets)")
    g.add_argument("--relation", choices=[r.value for r in Relation],
                   default=Relation.SUBSTITUTION.value,
                   help="neighbouring relation (default substitution)")
    p.add_argument("--delta", type=_float("delta"), help="target delta" + default("delta", "{:g}"))
    p.add_argument("--json", action="store_true", help="print one JSON object")



def _block(text: str):
    if text == "auto":
        return "auto"
    try:
        return _int_like("block")(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"block must be a positive integer or auto; got "
                                         f"{text!r}") from None


def _add_executor_args(p, unit: str) -> None:
    g = p.add_argument_group("executor (where the work units run; docs/scale.md)")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help=f"local: this process; ray: Ray tasks, one per {unit} "
                        "(pip install 'dpaccount[ray]'); default local")
    g.add_argument("--ray-address", metavar="ADDRESS",
                   help="a running Ray cluster (host:port, ray://host:port or auto); "
                        "default: start a local Ray runtime")


def _check_executor(args) -> None:
    check_executor_args(args.executor, args.ray_address, flag="--executor")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dpaccount",
                description="Privacy accounting for DP-InstaHide (k-way mixup + Laplace noise).")
    p.add_argument("--version", action="version", version=f"dpaccount {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    e = sub.add_parser("epsilon", help="epsilon of a run by every method: closed forms and PLD")
    _add_mechanism_args(e)
    e.add_argument("--phase", action="append", metavar="KEY=VALUE,...",
                   help="one phase of a run whose parameters change part-way, e.g. "
                        "k=4,noise=1,epochs=10 (repeat for each phase, in order; keys: "
                        f"{', '.join(PHASE_KEYS)}); the other flags apply to every phase")
    d = sub.add_parser("derive", help="the symbolic derivation, general and with your numbers")
    _add_mechanism_args(d)
    d.add_argument("--latex", action="store_true", help="print LaTeX instead of text")
    c = sub.add_parser("calibrate", help="the noise scale (or k) that meets a target epsilon")
    _add_mechanism_args(c)
    c.add_argument("--target-epsilon", type=_float("target-epsilon"), required=True,
                   metavar="EPS", help="the epsilon to meet at --delta")
    c.add_argument("--solve", choices=("noise", "k"), default="noise",
                   help="which parameter to solve for (default noise; the other flags stay)")
    c.add_argument("--k-max", type=_int_like("k-max"), default=64,
                   help="largest k tried with --solve k (default 64; at most --n is tried)")
    c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr for --solve k (default: when stderr is a "
                        "terminal)")
    f = sub.add_parser("certify", help="poisoning certificate: bound on attack success")
    _add_mechanism_args(f)
    f.add_argument("--poisons", type=_int_like("poisons"), required=True, metavar="P",
                   help="number of poisoned training records")
    f.add_argument("--clean-success", type=_float("clean-success"), required=True,
                   metavar="R", help="the attack's success rate without poisons, in [0, 1]")
    a = sub.add_parser("audit", help="measured lower bounds on epsilon, beside the upper bound")
    asub = a.add_subparsers(dest="audit_command", parser_class=_Parser)
    am = asub.add_parser("mechanism", help="audit the mechanism itself on neighbouring datasets")
    _add_mechanism_args(am, AUDIT_DEFAULTS)
    am.add_argument("--trials", type=_int_like("trials"), default=100_000,
                    help="mechanism runs per dataset (default 100000)")
    am.add_argument("--confidence", type=_float("confidence"), default=0.95,
                    help="confidence of the lower bound (default 0.95)")
    am.add_argument("--seed", type=_seed, default=0,
                    help="random seed (default 0)")
    am.add_argument("--statistic", choices=("exact-llr", "learned-llr", "projection"),
                    default=None,
                    help="exact-llr: the optimal test for the faithful mechanism; learned-llr: a "
                         "black-box likelihood ratio fitted on 10%% of the trials; projection: "
                         "a black-box statistic with nothing fitted (default: exact-llr for the "
                         "reference implementation, the strongest black-box statistic, "
                         "learned-llr, for --implementation)")
    am.add_argument("--implementation", metavar="MODULE:FUNCTION",
                    help="audit your own implementation instead of the numpy reference: a "
                         "release function release(dataset, trials, rng) -> (trials, T, d), or "
                         "a factory(mechanism) returning one, imported with the current "
                         "directory on the path; it must draw all its randomness from rng "
                         "(checked; see docs/audit.md)")
    am.add_argument("--selection", choices=("split", "bonferroni"), default="split",
                    help="how the threshold is chosen soundly (default split)")
    am.add_argument("--pair", metavar="FILE.npz|search",
                    help="neighbouring datasets to audit (arrays 'd' and 'd_prime', shape (N, d); "
                         "with --labels soft also 'label_columns': the last columns, one-hot); "
                         "'search': try where the other records sit on 10%% of the trials and "
                         "audit the pair that shows most; default: the worst case")
    am.add_argument("--store", metavar="DIR",
                    help="directory for resumable results (finished blocks are reused)")
    am.add_argument("--plot", metavar="FILE.png", help="write the privacy-region plot here")
    _add_executor_args(am, "block of trials")
    am.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="progress bar on stderr (default: when stderr is a terminal)")
    mo = asub.add_parser("model", help="audit trained models: shadow models or one run "
                                       "(needs the train extra)")
    md = defaults_of(ModelAuditConfig)  # one source for the defaults: the config dataclass
    mo.add_argument("--dataset", choices=AUDIT_DATASETS, default=md["dataset"],
                    help=f"default {md['dataset']}")
    mo.add_argument("--canary", choices=CANARIES, default=md["canary"],
                    help=f"the audited record (default {md['canary']}: a random binary image; "
                         "crafted: the corner of the domain farthest from the mean image, "
                         "rarest class)")
    mo.add_argument("--copies", type=_int_like("copies"), default=md["copies"],
                    help=f"the canary substitutes for this many records of one class: a group, "
                         f"beside the accountant's group bound (default {md['copies']})")
    mo.add_argument("--k", type=_int_like("k"), default=md["k"], help=f"default {md['k']}")
    mo.add_argument("--noise", type=_float("noise"), default=md["noise"], metavar="B",
                    help=f"Laplace scale per pixel (default {md['noise']:g}; 0: no defense)")
    mo.add_argument("--labels", type=_soft_or_noised, default=md["labels"],
                    metavar="soft|noised",
                    help=f"soft: the soft label is released without noise and accounted with "
                         f"the class sizes; noised: noised with the image (default "
                         f"{md['labels']}; public and private are the old names)")
    mo.add_argument("--epochs", type=_int_like("epochs"), default=md["epochs"],
                    help=f"default {md['epochs']}")
    mo.add_argument("--batch-size", type=_int_like("batch-size"), default=md["batch_size"],
                    help=f"default {md['batch_size']}")
    mo.add_argument("--lr", type=_float("lr"), default=md["lr"], help=f"default {md['lr']:g}")
    mo.add_argument("--hidden", type=_int_like("hidden"), default=md["hidden"],
                    help=f"MLP hidden width (default {md['hidden']})")
    mo.add_argument("--models", type=_int_like("models"), default=md["models"],
                    help=f"shadow models per side (default {md['models']})")
    mo.add_argument("--block", type=_block, default=md["block"],
                    help=f"models trained together, one work unit (default {md['block']}); "
                         "auto: on CUDA as many as fit in the GPU's free memory")

    mo.add_argument("--score", choices=SCORES, default="loss",
                    help="canary loss; LiRA (Carlini et al. 2022) fitted on the selection "
                         "split: lira-offline (OUT models only), lira-online (IN and OUT "
                         "Gaussians; lira is its old name)")
    mo.add_argument("--one-run", action="store_true",
                    help="one model, --canaries canaries each added w.p. 1/2: Steinke et al. "
                         "and the f-DP audit of Mahloujifar et al. on the same guesses")
    mo.add_argument("--canaries", type=_int_like("canaries"), default=None,
                    help=f"with --one-run: canaries m (default {ONE_RUN_CANARIES})")
    mo.add_argument("--guesses", metavar="G1,G2,...",
                    help="one-run guess counts (top G and bottom G each), fixed in advance "
                         "(default m/20, m/10, m/5; Bonferroni over the list)")
    mo.add_argument("--delta", type=_float("delta"), default=md["delta"],
                    help=f"default {md['delta']:g}")
    mo.add_argument("--confidence", type=_float("confidence"), default=0.95,
                    help="confidence of the lower bound, in (0, 1) (default 0.95)")
    mo.add_argument("--seed", type=_seed, default=md["seed"], help=f"default {md['seed']}")
    mo.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    mo.add_argument("--store", metavar="DIR", help="save scores; resume; reuse")
    mo.add_argument("--from-store", action="store_true",
                    help="recompute the bound from the scores in --store, training nothing")
    mo.add_argument("--plot", metavar="FILE.png", help="privacy-region plot (shadow models)")
    mo.add_argument("--roc", metavar="FILE.png", help="ROC curve, log-log (shadow models)")
    _add_executor_args(mo, "block of shadow models")
    mo.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    mo.add_argument("--json", action="store_true")
    pe = sub.add_parser("poison-eval", help="poisoning and backdoor attacks against the "
                                            "defenses, with certificates (train extra)")
    pe.add_argument("--config", metavar="FILE.json",
                    help="the grid (keys left out take the embedded default: digits, CNN, 15 "
                         "epochs, 5 seeds, backdoor/label flip/clean label, 9 defenses)")
    pe.add_argument("--out", metavar="FILE.json", default="poison-eval.json",
                    help="results, written after every run; a rerun skips finished runs "
                         "(default poison-eval.json)")
    pe.add_argument("--plot", metavar="FILE.png", help="attack success against clean accuracy")
    pe.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                    help="where each training runs (cuda: each cell asks Ray for a GPU under "
                         "--executor ray); default auto")
    _add_executor_args(pe, "grid cell")
    pe.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    pe.add_argument("--json", action="store_true", help="print the summary rows as JSON")
    t = sub.add_parser("train", help="train with DP-InstaHide in torch and report its epsilon "
                                     "(needs the train extra)")
    td = defaults_of(TrainConfig)  # one source for the defaults: the config dataclass
    t.add_argument("--dataset", choices=DATASETS, default=td["dataset"],
                   help=f"digits (bundled with scikit-learn), cifar10 (from --data-dir) or "
                        f"synthetic (default {td['dataset']})")
    t.add_argument("--data-dir", metavar="DIR", help="the extracted CIFAR-10 batches folder")
    t.add_argument("--model", choices=MODELS, default=td["model"],
                   help=f"default {td['model']}")
    t.add_argument("--k", type=_int_like("k"), default=td["k"],
                   help=f"records mixed per sample (default {td['k']})")
    t.add_argument("--noise", type=_float("noise"), default=td["noise"], metavar="B",
                   help=f"Laplace scale per pixel, pixels in [0, 1] (default {td['noise']:g}; 0: "
                        f"no noise, not private)")
    t.add_argument("--epochs", type=_int_like("epochs"), default=td["epochs"],
                   help=f"default {td['epochs']}; with --checkpoint-dir, more epochs than a "
                        f"checkpoint has continue its run")
    t.add_argument("--batch-size", type=_int_like("batch-size"), default=td["batch_size"],
                   help=f"default {td['batch_size']}")
    t.add_argument("--lr", type=_float("lr"), default=td["lr"],
                   help=f"Adam learning rate (default {td['lr']:g})")
    t.add_argument("--sampler", choices=SAMPLERS, default=td["sampler"],
                   help="subsets: i.i.d. k-subsets of the training set per sample; permutation: "
                        f"mixing inside shuffled batches (default {td['sampler']})")
    t.add_argument("--labels", type=_soft_or_noised, default=td["labels"],
                   metavar="soft|noised",
                   help="soft: mixed labels released without noise, accounted with the class "
                        "sizes ('public' is the old name); noised: labels get noise too and "
                        f"count in the diameter ('private' is the old name) (default "
                        f"{td['labels']})")
    t.add_argument("--no-clip", action="store_true", help="do not clip images to [0, 1] after "
                                                          "the noise")
    t.add_argument("--no-augment", action="store_true",
                   help="train on clean records (no mixing, no noise): the baseline")
    t.add_argument("--delta", type=_float("delta"), default=td["delta"],
                   help=f"default {td['delta']:g}")
    t.add_argument("--seed", type=_seed, default=td["seed"], help=f"default {td['seed']}")
    t.add_argument("--device", choices=DEVICES, default=td["device"],
                   help=f"auto: CUDA when torch sees one (default {td['device']})")
    t.add_argument("--checkpoint-dir", metavar="DIR",
                   help="save after every epoch and resume from the last checkpoint here")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    t.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    return p


def _seed(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer; got {text!r}")
    if v < 0:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer; got {text!r}")
    return v


def mechanism_from_args(args, defaults: dict = DEFAULTS) -> tuple[InstaHide, float, list[str], str]:
    """Build the mechanism from parsed flags; returns (mechanism, delta, defaults used, domain).

    ``defaults`` names the embedded default of every flag left out; it holds either ``image``
    or ``diameter``, and either ``epochs`` or ``releases``. Every flag is checked here, before
    any work."""
    used = []

    def pick(name):
        v = getattr(args, name)
        if v is None:
            used.append(name.replace("_", "-"))
            return defaults[name]
        return v

    k, noise, n, delta = pick("k"), pick("noise"), pick("n"), None
    if isinstance(k, int) and isinstance(n, int) and k > n:
        raise InputError(f"k must be at most n (a k-subset of n records); got k={fmt_count(k)}, "
                         f"n={fmt_count(n)}")
    labels = Labels(pick("labels"))
    noised = labels is Labels.NOISED
    norm = args.norm
    if args.diameter is None and args.image is None and "diameter" in defaults:
        args.diameter = pick("diameter")
    if args.diameter is not None:
        if args.value_range is not None:
            raise InputError("--value-range applies to --image only, not to --diameter")
        diameter = args.diameter
        if not (isinstance(diameter, float) and math.isfinite(diameter) and diameter > 0):
            raise InputError(f"diameter must be a positive finite number; got {diameter}")
        if noised:
            diameter += 2.0
            norm = None if norm is None else norm + 1.0
        domain = f"L1 diameter {diameter:g}"
    else:
        shape_text = pick("image")
        shape = parse_image_shape(shape_text)
        range_text = pick("value_range")
        lo_hi = parse_value_range(range_text)
        if math.prod(shape) > MAX_PIXELS:
            raise InputError(f"image must have at most {MAX_PIXELS:.0e} values per record; got "
                             f"{shape_text!r}")
        diameter = image_diameter(shape, lo_hi, labels=noised)
        if norm is not None:
            raise InputError("--norm applies to --diameter only; with --image it is taken from "
                             "the image shape and --value-range")
        norm = image_norm(shape, lo_hi, labels=noised)
        if not (math.isfinite(diameter) and math.isfinite(norm)):
            raise InputError(f"image {shape_text!r} with value range {range_text!r} has an L1 "
                             f"diameter too large for a float; use a smaller --image or "
                             f"--value-range")
        domain = (f"images {shape_text} in [{lo_hi[0]:g}, {lo_hi[1]:g}], "
                  f"L1 diameter {diameter:g}")
    if noised:
        domain += " (labels noised: +2 for the one-hot label)"
    class_sizes = None
    if args.class_sizes is not None:
        if labels is not Labels.SOFT:
            raise InputError(f"--class-sizes applies to --labels soft only; got --labels "
                             f"{labels.value}")
        class_sizes = parse_class_sizes(args.class_sizes)
    elif labels is Labels.SOFT and "n" in used and "class_sizes" in defaults:
        used.append("class-sizes")
        class_sizes = parse_class_sizes(defaults["class_sizes"])
    delta = pick("delta")
    check_delta(delta)
    common = dict(k=k, noise=noise, n=n, diameter=diameter, sampler=args.sampler,
                  relation=args.relation, labels=labels, class_sizes=class_sizes, norm=None,
                  dirichlet_alpha=getattr(args, "weights", None))
    if InstaHide.needs_norm(args.sampler):
        common["norm"] = norm
    if args.releases is None and args.epochs is None and "releases" in defaults:
        args.releases = pick("releases")
    if args.releases is not None:
        if args.releases > MAX_RELEASES:
            raise InputError(f"releases must be at most {MAX_RELEASES:.0e}; got "
                             f"{fmt_count(args.releases)}")
        mech = InstaHide(releases=args.releases, **common)
    else:
        epochs = pick("epochs")
        if isinstance(epochs, float) and math.isfinite(epochs) and epochs > 0:
            total = epochs * n
            if total > MAX_RELEASES:
                raise InputError(f"n={fmt_count(n)} times epochs={epochs:g} is {total:.3g} "
                                 f"releases, more than {MAX_RELEASES:.0e}; lower --n or "
                                 f"--epochs (or give --releases)")
            if round(total) < 1:
                raise InputError(f"epochs={epochs:g} with n={fmt_count(n)} is less than one "
                                 f"release; raise --epochs (or give --releases)")
        mech = InstaHide.from_epochs(epochs=epochs, **common)
    check_computable(mech)
    if mech.sampler_type.uses_norm:
        domain += f", largest record norm {mech.norm:g}"
    return mech, delta, used, domain


#: the keys a --phase may set, and the flag each overrides
PHASE_KEYS = {"k": "k", "noise": "noise", "n": "n", "epochs": "epochs", "releases": "releases",
              "diameter": "diameter", "image": "image", "sampler": "sampler",
              "class-sizes": "class_sizes", "norm": "norm"}


def _parse_phase(text: str) -> dict:
    """``k=4,noise=1,epochs=10`` into ``{"k": "4", ...}`` (keys checked, values parsed by the
    flags' own parsers later)."""
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise InputError(f"--phase must look like k=4,noise=1,epochs=10; got {text!r}")
        key, value = (x.strip() for x in part.split("=", 1))
        key = key.replace("_", "-")
        if key not in PHASE_KEYS:
            raise InputError(f"--phase key must be one of {', '.join(PHASE_KEYS)}; got "
                             f"{key!r} in {text!r}")
        if key in out:
            raise InputError(f"--phase sets {key} twice in {text!r}")
        out[key] = value
    if "epochs" in out and "releases" in out:
        raise InputError(f"--phase sets both epochs and releases in {text!r}: choose one")
    if "image" in out and "diameter" in out:
        raise InputError(f"--phase sets both image and diameter in {text!r}: choose one")
    return out


def _phase_value(key: str, value: str):
    parsers = {"k": _int_like("k"), "n": _int_like("n"), "releases": _int_like("releases"),
               "noise": _float("noise"), "epochs": _float("epochs"),
               "diameter": _float("diameter"), "norm": _float("norm")}
    if key in parsers:
        try:
            return parsers[key](value)
        except argparse.ArgumentTypeError as exc:
            raise InputError(f"--phase {exc}") from None
    if key == "sampler" and value not in {m.value for m in Sampler}:
        raise InputError(f"--phase sampler must be one of "
                         f"{', '.join(m.value for m in Sampler)}; got {value!r}")
    return value


def event_from_args(args, defaults: dict = DEFAULTS):
    """The event the flags describe: one phase, or with ``--phase`` (repeated) a composition
    whose phases take the shared flags and override them with their own keys. Returns
    ``(event, delta, defaults used, [(phase, domain), ...])``; every flag and phase is checked
    here, before any work."""
    specs = getattr(args, "phase", None) or []
    if not specs:
        mech, delta, used, domain = mechanism_from_args(args, defaults)
        return mech, delta, used, [(mech, domain)]
    phases, used_all, domains = [], [], []
    delta = None
    for text in specs:
        spec = _parse_phase(text)
        sub = argparse.Namespace(**vars(args))
        for key, value in spec.items():
            setattr(sub, PHASE_KEYS[key], _phase_value(key, value))
        if "epochs" in spec:
            sub.releases = None
        if "releases" in spec:
            sub.epochs = None
        if "image" in spec:
            sub.diameter = None
        if "diameter" in spec:
            sub.image = None
            sub.value_range = None
        if "norm" in spec and sub.image is not None:
            raise InputError(f"--phase norm applies with a diameter only; got {text!r}")
        mech, delta, used, domain = mechanism_from_args(sub, defaults)
        phases.append(mech)
        domains.append((mech, domain))
        used_all.extend(u for u in used if u not in used_all)
    return ComposedEvent(tuple(phases)), delta, used_all, domains


def _fmt(x) -> str:
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    return f"{x:.6g}"


def _header(mech: InstaHide, delta: float, used: list[str], domain: str,
            defaults: dict = DEFAULTS, description: str = DEFAULT_DESCRIPTION) -> list[str]:
    lines = [
        f"DP-InstaHide: k={fmt_count(mech.k)}, noise b={mech.noise:g}, N={fmt_count(mech.n)}, "
        f"{domain}",
        f"releases T={mech.releases} ({mech.epochs:g} epochs), sampler {mech.sampler.value}, "
        f"relation {mech.relation.value}, {mech.label_note}, target delta {delta:g}",
    ]
    if set(used) >= {x.replace("_", "-") for x in defaults} - {"delta", "value-range", "labels",
                                                              "class-sizes"}:
        lines.append(f"(no mechanism flags given: {description})")
    elif used:
        lines.append(f"(embedded defaults used for: {', '.join('--' + u for u in used)})")
    return lines


def _table_lines(rows) -> list[str]:
    head = ("method", "epsilon (upper bound)", "delta", "relation", "sampler", "labels",
            "releases", "interval")
    table = [head] + [
        (r.method, _fmt(r.epsilon), _fmt(r.delta), r.relation, r.sampler, r.labels,
         str(r.releases), f"[{_fmt(r.lower)}, {_fmt(r.epsilon)}]" if r.lower is not None else "")
        for r in rows
    ]
    widths = [max(len(row[c]) for row in table) for c in range(len(head))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]


def cmd_epsilon(args) -> int:
    from .accountants import width_note
    from .selection import epsilon as epsilon_table

    event, delta, used, domains = event_from_args(args)
    table = epsilon_table(event, delta)
    rows, best = list(table.rows), table.tightest
    composed = isinstance(event, ComposedEvent)
    if args.json:
        out = {
            "command": "epsilon",
            "mechanism": event.to_dict(),
            "domain": domains[0][1] if not composed else [d for _, d in domains],
            "delta": delta,
            "defaults_used": used,
            "results": [r.to_dict() for r in rows],
            "tightest": best.to_dict(),
        }
        if composed:
            out["phases"] = [{"mechanism": p.to_dict(), "domain": d,
                              "results": [r.to_dict() for r in prow]}
                             for (p, d), prow in zip(domains, table.phase_rows)]
        if used:
            out["defaults_note"] = DEFAULT_DESCRIPTION
        print(json.dumps(out, indent=2, allow_nan=False))
        return 0
    if composed:
        print(f"{len(event.phases)} phases, run one after the other (T={event.releases} in all), "
              f"relation {event.relation.value}, target delta {delta:g}")
        for i, (p, d) in enumerate(domains, 1):
            print(f"  phase {i}: k={p.k}, b={p.noise:g}, N={p.n}, T={p.releases} "
                  f"({p.epochs:g} epochs), sampler {p.sampler.value}, {d}, {p.label_note}")
        if used:
            print(f"(embedded defaults used for: {', '.join('--' + u for u in used)})")
    else:
        print("\n".join(_header(event, delta, used, domains[0][1])))
    print()
    print("\n".join(_table_lines(rows)))
    print()
    for r in rows:
        print(f"  {r.method}: {r.note} [{r.source}]")
    print(f"\ntightest sound upper bound: epsilon <= {best.epsilon:.6g} at delta {delta:g} "
          f"(method {best.method}; {width_note(best.lower, best.epsilon)})")
    if composed:
        for i, prow in enumerate(table.phase_rows, 1):
            print(f"\nphase {i} alone:")
            print("\n".join("  " + line for line in _table_lines(prow)))
    vacuous = [r.method for r in rows if r.releases == event.releases and
               (r.epsilon is None or r.epsilon > 10)]
    if vacuous:
        print(f"\nnote: {', '.join(vacuous)} exceed epsilon 10 for the whole run (or do not "
              "apply): as a formal guarantee these are vacuous; tighter accountants may do "
              "better.")
    return 0


def cmd_derive(args) -> int:
    from . import symbolic  # sympy is slow to import; only this command needs it

    mech, delta, used, domain = mechanism_from_args(args)
    what = "diameter" if mech.shift == mech.diameter else "norm"
    for name, value in (("noise", mech.noise), (what, mech.shift)):
        if not value >= DERIVE_MIN:  # sympy would read it as 0 (exact rationals)
            raise InputError(f"derive substitutes exact numbers: {name} must be at least "
                             f"{DERIVE_MIN:g} (scale the units of --noise and --{what} "
                             f"together); got {value:g}")
    der = symbolic.derive(mech, delta)
    if args.json:
        out = der.to_dict()
        out.update(command="derive", domain=domain, defaults_used=used)
        print(json.dumps(out, indent=2, allow_nan=False))
    elif args.latex:
        print(der.latex(), end="")
    else:
        print("\n".join(_header(mech, delta, used, domain)))
        print()
        print(der.text(), end="")
    return 0


def cmd_calibrate(args) -> int:
    from .calibration import calibrate

    mech, delta, used, domain = mechanism_from_args(args)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    cal = calibrate(mech, args.target_epsilon, delta, solve=args.solve, k_max=args.k_max,
                    progress=progress)
    if args.json:
        out = cal.to_dict()
        out.update(command="calibrate", domain=domain, defaults_used=used)
        print(json.dumps(out, indent=2, allow_nan=False))
        return 0
    print("\n".join(_header(cal.mechanism, delta, used, domain)))
    print()
    shown = f"{cal.value:.6g}" if cal.parameter == "noise" else str(int(cal.value))
    print(f"calibrated {cal.parameter} = {shown}: epsilon <= {cal.epsilon:.6g} "
          f"(target {cal.target_epsilon:g}) at delta {delta:g}, method {cal.method} ("
          + ("the tightest sound upper bound" if cal.tightest else
             "a sound upper bound that already meets the target; the slower accountants were "
             "not run, so the tightest bound is at most this")
          + f"), "
          f"relation {cal.mechanism.relation.value}, sampler {cal.mechanism.sampler.value}, "
          f"{cal.mechanism.label_note}; re-checked after calibration")
    return 0


def cmd_certify(args) -> int:
    from .certificates import certify

    mech, delta, used, domain = mechanism_from_args(args)
    certs = certify(mech, args.poisons, args.clean_success)
    if args.json:
        out = {"command": "certify", "mechanism": mech.to_dict(), "domain": domain,
               "poisons": args.poisons, "clean_success": args.clean_success,
               "relation": mech.relation.value, "sampler": mech.sampler.value,
               "labels": mech.labels.value, "defaults_used": used,
               "certificates": [c.to_dict() for c in certs]}
        print(json.dumps(out, indent=2, allow_nan=False))
        return 0
    print("\n".join(_header(mech, delta, used, domain)))
    print(f"poisons p={args.poisons}, attack success without poisons {args.clean_success:g}")
    print()
    for c in certs:
        verdict = "VACUOUS (says nothing)" if c.vacuous else f"<= {c.bound:.6g}"
        print(f"  {c.method}: Pr[success | poisoned] {verdict}  (eps {c.epsilon:.6g}, delta "
              f"{c.delta:g}, relation {mech.relation.value}, sampler {mech.sampler.value}, "
              f"labels {mech.labels.value})")
        print(f"      {c.note}")
    return 0


def _training(module: str, command: str):
    """Import ``training.<module>`` (torch) for a command, or a one-line error naming the
    extra; dpaccount itself never imports torch."""
    import importlib

    try:
        return importlib.import_module(f"training.{module}")
    except ImportError as exc:
        raise InputError(f"dpaccount {command} needs torch and scikit-learn (pip install "
                         f"'dpaccount[train]'): {exc}") from None


def _check_plot(flag: str, path) -> None:
    """A plot to write: a .png file that can be written, and matplotlib to draw it; checked
    before any work."""
    if path is None:
        return
    check_output_file(flag, path, ".png")
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise InputError(f"{flag} needs matplotlib: pip install 'dpaccount[plot]'")


def _load_pair(path: str, relation):
    import zipfile

    import numpy as np

    from .audit.simulate import NeighbourPair

    what = "a readable, valid .npz file with arrays 'd' and 'd_prime'"
    if not os.path.exists(path):
        raise InputError(f"--pair file {path!r} does not exist")
    if not os.path.isfile(path):
        raise InputError(f"--pair {path!r} is not a file; it must be {what}")
    try:
        if not zipfile.is_zipfile(path):
            raise InputError(f"--pair file {path!r} is not {what}")
        with np.load(path, allow_pickle=False) as f:
            missing = {"d", "d_prime"} - set(f.files)
            if missing:
                raise InputError(f"--pair file {path!r} is not {what}: it lacks "
                                 f"{', '.join(sorted(missing))}")
            d, dp = f["d"], f["d_prime"]
            labels = int(f["label_columns"]) if "label_columns" in f.files else 0
    except (OSError, EOFError, ValueError, TypeError, zipfile.BadZipFile) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"--pair file {path!r} is not {what} of numbers "
                         f"({type(exc).__name__})") from None
    return NeighbourPair(d, dp, relation, description=f"from {path}", label_columns=labels)


def _audit_model(args) -> int:
    # every argument is checked here, before torch is loaded or anything trained
    _check_executor(args)
    if args.executor != "local" and (args.one_run or args.from_store):
        other = "--one-run trains one model" if args.one_run else "--from-store trains nothing"
        raise InputError(f"--executor {args.executor} runs blocks of shadow models; {other}")
    _check_plot("--plot", args.plot)
    _check_plot("--roc", args.roc)
    if args.from_store and args.store is None:
        raise InputError("--from-store needs --store DIR")
    if args.store is not None:
        if args.from_store:
            check_input_dir("--store", args.store)
            if not os.path.isfile(os.path.join(args.store, "audit.json")):
                raise InputError(f"--store {args.store!r} holds no audit (audit.json is "
                                 "missing)")
        else:
            check_output_dir("--store", args.store)
    if args.one_run and (args.plot or args.roc):
        raise InputError("--plot and --roc draw the shadow models' scores; the one-run audit "
                         "(--one-run) has none")
    if not args.one_run and (args.canaries is not None or args.guesses is not None):
        raise InputError(f"--{'canaries' if args.canaries is not None else 'guesses'} applies "
                         "to the one-run audit only (--one-run)")
    if args.from_store and args.one_run:
        raise InputError("--from-store recomputes a shadow-model audit; it does not apply to "
                         "--one-run")
    if args.one_run and args.score != "loss":
        raise InputError(f"--score {args.score} applies to the shadow-model audit; the one-run "
                         "audit guesses on the canaries' loss")
    canaries = ONE_RUN_CANARIES if args.canaries is None else args.canaries
    guesses = None
    if args.guesses is not None:
        try:
            guesses = [(int(g), int(g)) for g in args.guesses.split(",")]
        except ValueError:
            raise InputError(f"--guesses must be comma-separated integers; got "
                             f"{args.guesses!r}") from None
    cfg = ModelAuditConfig(dataset=args.dataset, canary=args.canary, k=args.k,
                           noise=args.noise, labels=args.labels, epochs=args.epochs,
                           batch_size=args.batch_size, lr=args.lr, hidden=args.hidden,
                           models=args.models, block=args.block, delta=args.delta,
                           seed=args.seed, copies=args.copies)
    ma = _training("model_audit", "audit model")
    ma.check_audit_args(cfg, score=args.score, confidence=args.confidence,
                        one_run=args.one_run, canaries=canaries, guesses=guesses,
                        store=args.store, from_store=args.from_store)
    device = args.device  # resolved (and checked) by training: no torch in dpaccount
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    if args.from_store:
        out = ma.bound_from_store(args.store, score=args.score, confidence=args.confidence)
    else:
        if args.one_run:
            out = ma.one_run_audit(cfg, canaries=canaries, guesses=guesses, device=device,
                                   confidence=args.confidence, store=args.store)
        else:
            out = ma.shadow_audit(cfg, store=args.store, progress=progress, device=device,
                                  score=args.score, confidence=args.confidence,
                                  executor=args.executor, ray_address=args.ray_address)
    if "scores_in" in out:
        import numpy as np

        from .audit.plot import plot_region, plot_roc
        from .audit.run import privacy_region

        pos, neg = np.array(out["scores_in"]), np.array(out["scores_out"])
        c = out["config"]
        title = (f"{c['dataset']}, canary {c['canary']}, k={c['k']}, b={c['noise']:g}, "
                 f"{out['models_per_side']} models per side")
        if args.roc:
            out["roc_plot"] = str(plot_roc(args.roc, pos, neg, title=title))
        if args.plot:
            from types import SimpleNamespace

            out["region_plot"] = str(plot_region(
                args.plot, region=privacy_region(pos, neg), eps_lower=out["epsilon_lower_bound"],
                eps_upper=out["epsilon_upper_bound"], delta=out["delta"],
                test=SimpleNamespace(**out["test"]), statistic=f"canary {args.score}",
                title=title))
    if args.json:
        print(json.dumps(out, indent=2, allow_nan=False))
        return 0
    c = out["config"]
    print(f"{out['kind']}: {c['dataset']}, canary {c['canary']}, k={c['k']}, b={c['noise']:g}, "
          f"labels {c['labels']}, {c['epochs']} epochs, MLP hidden {c['hidden']}")
    if "one_run" in out:
        o = out["one_run"]
        print(f"{o['canaries']} canaries ({o['included']} included), guesses {o['guesses_in']} in "
              f"+ {o['guesses_out']} out, {o['correct']} correct; test accuracy "
              f"{out['test_accuracy']:.4f}")
    else:
        t = out["test"]
        print(f"{out['models_per_side']} models per side, mean test accuracy "
              f"{out['test_accuracy_mean']:.4f}; threshold test: false positives "
              f"{t['false_pos']}/{t['negatives']}, false negatives {t['false_neg']}/"
              f"{t['positives']}; ceiling {out['ceiling']:.4f}")
    for key in ("roc_plot", "region_plot"):
        if out.get(key):
            print(f"{key.replace('_', ' ')}: {out[key]}")
    for e in out["estimates"]:  # every number with its method, relation and delta
        if e["name"] == "accountant":
            continue
        at = "" if e["delta"] is None else f" at delta {e['delta']:g}"
        print(f"  {e['name']}: {e['quantity']} >= {e['value']:.4f} ({e['bound']}, "
              f"{e['confidence']:.0%} confidence{at}, relation {e['relation']}) -- {e['method']}")
    if "fdp" in out:
        f = out["fdp"]
        print(f"  f-DP guesses: eps from {f['guesses_in']} in + {f['guesses_out']} out, "
              f"{f['correct']} correct; mu from {f['mu_guesses_in']} in + {f['mu_guesses_out']} "
              f"out, {f['mu_correct']} correct")
    up = out["epsilon_upper_bound"]
    if up is None:
        upper = "no upper bound (no noise: the run is not differentially private)"
    else:
        upper = (f"accountant epsilon <= {up:.6g} (upper bound, method "
                 f"{out['upper_bound_method']})")
    flag = "  ** EXCEEDS THE UPPER BOUND **" if out["exceeds_upper_bound"] else ""
    print(f"audited epsilon >= {out['epsilon_lower_bound']:.4f} (lower bound, "
          f"{out['confidence']:.0%} confidence, {out['method'].split(':')[0]}) | {upper} | delta "
          f"{out['delta']:g}, relation {out['relation']}, sampler {out['sampler']}{flag}")
    return 0


def _load_implementation(args, mech, pair, dim):
    """``--implementation MODULE:FUNCTION`` as (release_fn, name), refused in one line naming
    the flag before any simulation: the spec, the import, the factory, then the rng contract on
    a probe of a few trials (:mod:`dpaccount.audit.contract`)."""
    from .audit.contract import PROBE_TRIALS, check_release_fn, load_implementation
    from .audit.run import check_memory
    from .audit.simulate import NeighbourPair, check_pair_against, worst_case_pair

    check_memory(args.trials, mech.releases * dim)  # refused before the user's code runs
    probe_pair = pair if isinstance(pair, NeighbourPair) else worst_case_pair(mech)
    check_pair_against(probe_pair, mech)
    release_fn, name = load_implementation(args.implementation, mech)
    check_release_fn(release_fn, probe_pair.d, PROBE_TRIALS,
                     (PROBE_TRIALS, mech.releases, probe_pair.d.shape[1]), args.seed,
                     name=f"--implementation {args.implementation!r}")
    return release_fn, name


def cmd_audit(args) -> int:
    if args.audit_command is None:
        raise UsageError("choose what to audit: dpaccount audit mechanism or dpaccount audit "
                         "model (see --help)")
    if args.audit_command == "model":
        return _audit_model(args)
    from .audit.run import audit_mechanism
    from .audit.simulate import NeighbourPair as NeighbourPairType

    pair = None
    if args.pair == "search":
        pair = "search"
    elif args.pair is not None:
        pair = _load_pair(args.pair, args.relation)
        if args.n is None:  # N is the pair's, not the embedded default's
            args.n = pair.d.shape[0]
    mech, delta, used, domain = mechanism_from_args(args, AUDIT_DEFAULTS)
    if mech.labels is Labels.NOISED:
        raise InputError("audit mechanism simulates the image, or the image and its soft label "
                         "(--labels none or soft); a noised label is one more noised coordinate: "
                         "audit it as --labels none with the label in --pair's records")
    if args.store is not None:
        check_output_dir("--store", args.store)
    _check_plot("--plot", args.plot)
    _check_executor(args)
    if not isinstance(pair, NeighbourPairType) and mech.n > AUDIT_MAX_RECORDS:
        raise InputError(f"audit mechanism simulates the n records of its worst-case datasets: "
                         f"n must be at most {AUDIT_MAX_RECORDS:.0e}; got n={fmt_count(mech.n)}")
    dim = pair.d.shape[1] if isinstance(pair, NeighbourPairType) else (
        1 + (len(mech.class_sizes) if mech.class_sizes else 2) if mech.labels is Labels.SOFT
        else 1)
    work = 2 * args.trials * mech.releases * dim
    if work > AUDIT_MAX_VALUES:
        raise InputError(f"trials x releases x dimension = {fmt_count(work)} values to simulate "
                         f"is more than {AUDIT_MAX_VALUES:.0e}; lower --trials or --releases")
    release_fn = implementation = None
    if args.implementation is not None:
        release_fn, implementation = _load_implementation(args, mech, pair, dim)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    res = audit_mechanism(mech, delta=delta, trials=args.trials, confidence=args.confidence,
                          seed=args.seed, pair=pair, statistic=args.statistic,
                          selection=args.selection, store=args.store, progress=progress,
                          release_fn=release_fn, implementation=implementation,
                          executor=args.executor, ray_address=args.ray_address)
    plot = None
    if args.plot is not None:
        from .audit.plot import plot_privacy_region

        plot = str(plot_privacy_region(res, args.plot))
    if args.json:
        out = res.to_dict()
        out.update(command="audit mechanism", domain=domain, defaults_used=used, plot=plot,
                   store=args.store)
        if used:
            out["defaults_note"] = AUDIT_DESCRIPTION
        print(json.dumps(out, indent=2, allow_nan=False))
        return 0
    print("\n".join(_header(mech, delta, used, domain, AUDIT_DEFAULTS, AUDIT_DESCRIPTION)))
    print(f"pair: {res.pair.description or 'user supplied'} "
          f"(L1 change {res.pair.l1_distance:g}); implementation: {res.implementation}")
    print()
    print(res.summary())
    if plot:
        print(f"\nprivacy-region plot: {plot}")
    return 0


def cmd_poison_eval(args) -> int:
    check_output_file("--out", args.out)
    _check_plot("--plot", args.plot)
    _check_executor(args)
    poison = _training("poison", "poison-eval")
    grid = poison.load_config(args.config) if args.config else dict(poison.DEFAULT_CONFIG)
    poison.read_results(args.out)  # a file to resume from must be readable: checked now
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    results = poison.run_grid(grid, args.out, progress=progress,
                              log=None if args.json else print, executor=args.executor,
                              ray_address=args.ray_address, device=args.device)
    rows = poison.summarise(results, grid["collapse_floor"])
    if args.plot:
        poison.plot_results(rows, args.plot)
    if args.json:
        print(json.dumps({"command": "poison-eval", "results_file": args.out,
                          "plot": args.plot, "rows": rows}, indent=2, allow_nan=False))
        return 0
    print()
    print(poison.format_table(rows))
    print(f"\nresults: {args.out}" + (f"; plot: {args.plot}" if args.plot else ""))
    return 0


def cmd_train(args) -> int:
    # every argument is checked here, before torch is loaded or anything trained
    cfg = TrainConfig(dataset=args.dataset, data_dir=args.data_dir, model=args.model, k=args.k,
                      noise=args.noise, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, sampler=args.sampler, labels=args.labels,
                      clip=not args.no_clip, augment=not args.no_augment, delta=args.delta,
                      seed=args.seed, device=args.device)
    if args.data_dir is not None:
        if args.dataset != "cifar10":
            raise InputError(f"--data-dir applies to --dataset cifar10 only; got --dataset "
                             f"{args.dataset}")
        if not os.path.exists(args.data_dir):
            raise InputError(f"CIFAR-10 folder {args.data_dir!r} (--data-dir) does not exist")
        check_input_dir("--data-dir", args.data_dir)
    elif args.dataset == "cifar10":
        raise InputError("dataset 'cifar10' needs --data-dir (the extracted batches folder); "
                         "nothing is downloaded")
    if args.checkpoint_dir is not None:
        check_output_dir("--checkpoint-dir", args.checkpoint_dir)
    tr = _training("train", "train")
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    m = tr.train(cfg, checkpoint_dir=args.checkpoint_dir, progress=progress)
    if args.json:
        print(json.dumps(m, indent=2, allow_nan=False))
        return 0
    eff = cfg.effective
    what = ("no augmentation" if not cfg.augment else
            f"DP-InstaHide k={eff.k}, b={eff.noise:g}, sampler {eff.sampler}, labels "
            f"{eff.labels}" if eff.noise > 0 else f"mixup k={eff.k} without noise")
    print(f"{m['dataset']} (N={m['n_train']} train, {m['n_test']} test), model {m['model']}, "
          f"{what}, {m['epochs_done']} epochs, seed {cfg.seed}, {m['device']}, "
          f"{m['seconds']:.1f} s" + (f" (resumed after epoch {m['resumed_from_epoch']})"
                                     if m["resumed_from_epoch"] else ""))
    print(f"test accuracy {m['test_accuracy']:.4f}, final train loss {m['train_loss']:.4f}")
    pr = m["privacy"]
    if pr["epsilon"] is None:
        print(f"epsilon: none ({pr['note']}); releases T={pr['releases']}")
    else:
        mech = pr["mechanism"]
        # the epsilon command adds the label's 2 itself for --labels noised
        diameter = mech["diameter"] - (2.0 if mech["labels"] == "noised" else 0.0)
        sizes = ("" if not mech["class_sizes"] else
                 " --class-sizes " + ",".join(str(c) for c in mech["class_sizes"]))
        print(f"epsilon <= {pr['epsilon']:.6g} at delta {pr['delta']:g} (upper bound, method "
              f"{pr['method']}, relation {pr['relation']}, sampler {pr['sampler']}, labels "
              f"{mech['labels']}, releases T={pr['releases']}); the same as dpaccount epsilon "
              f"with --k {eff.k} --noise {eff.noise:g} --n {m['n_train']} --diameter "
              f"{diameter:g} --releases {pr['releases']} --sampler {pr['sampler']} --labels "
              f"{mech['labels']}{sizes} --delta {pr['delta']:g}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("choose a command: epsilon, derive, calibrate, certify, audit, "
                             "train or poison-eval (see dpaccount --help)")
        handler = {"epsilon": cmd_epsilon, "derive": cmd_derive, "calibrate": cmd_calibrate,
                   "certify": cmd_certify, "audit": cmd_audit, "train": cmd_train,
                   "poison-eval": cmd_poison_eval}[args.command]
        return handler(args)
    except (UsageError, InputError) as exc:
        msg = " ".join(str(exc).split())  # one line, whatever the message held
        print(f"dpaccount: error: {msg}", file=sys.stderr)
        return 2
    except UnitFailed as exc:  # not bad input: a work unit kept failing on the executor
        msg = " ".join(str(exc).split())
        kept = getattr(args, "out", None) or getattr(args, "store", None)
        tail = (f"the units that finished are kept in {kept!r}: rerun to resume" if kept else
                "nothing was kept (no --store)")
        print(f"dpaccount: error: {msg}; {tail}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
