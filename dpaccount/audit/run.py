"""Mechanism-level audit: simulate, score, threshold soundly, and compare with the accountant.

:func:`audit_mechanism` draws ``trials`` runs of the mechanism on each of two neighbouring
datasets, scores every run with a statistic, certifies a Clopper-Pearson lower bound on epsilon
(:mod:`dpaccount.audit.bounds`) and puts it beside the accountant's upper bound for the same
mechanism and delta, and beside the ceiling (the most any audit with this many trials could
show). A lower bound above the upper bound means the implementation or the accountant is wrong.

Work is split into blocks of trials with their own seeds (derived from ``seed``, the side and
the block index), so a run with a ``store`` directory can be interrupted and resumed: finished
blocks are read back, and the result is identical to an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..files import atomic_write_bytes, check_output_dir
from ..validate import check_count, check_delta
from ..events import InstaHide
from .bounds import ThresholdBound, best_projected_epsilon, error_counts, ceiling, \
    certifying_sizes, check_confidence, epsilon_lower_bound, select_and_bound
from .simulate import InstaHideReleases, NeighbourPair, candidate_pairs, check_pair_against, \
    worst_case_pair
from .statistics import ExactLLR, LearnedLLR, Projection
from ..errors import InputError
from ..executors import check_executor_args, make_executor

__all__ = ["MechanismAudit", "audit_mechanism", "score_block", "privacy_region", "accountant_region",
           "accountant_upper", "accountant_tradeoff", "expected_audit_bound", "BLOCK_VALUES",
           "available_memory", "audit_memory", "check_memory", "trials_for_conclusive",
           "CONCLUSIVE_FRACTION", "accountant_profile", "fit_trials", "FIT_FRACTION",
           "search_trials", "SEARCH_FRACTION"]

#: values (trials x T x d) simulated per block: 4 MiB of float64, whatever T and d are
BLOCK_VALUES = 1 << 19

#: bytes per trial and side that an audit holds at its peak: the scores (float64), their
#: concatenation from blocks, and the copies the threshold selection sorts (4 x 8 bytes)
BYTES_PER_SCORE = 32


def available_memory() -> int | None:
    """Bytes of memory available to this process now (Linux ``MemAvailable``), or None where
    the system does not say."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def audit_memory(trials: int, values_per_trial: int) -> int:
    """Peak bytes of an audit: both sides' scores with their copies, one block of releases
    (simulated values, their noise and the statistic's work: about 4 float64 arrays of it),
    and both sides' fitting trials when a learned statistic is fitted."""
    block = max(1, min(trials, BLOCK_VALUES // max(values_per_trial, 1))) * values_per_trial
    fit = min(FIT_FRACTION * trials * values_per_trial, FIT_VALUES)  # a learned statistic's
    return int(2 * trials * BYTES_PER_SCORE + 4 * 8 * block + 2 * 8 * fit)


def check_memory(trials: int, values_per_trial: int, available: int | None = None) -> None:
    """Refuse, before any simulation, an audit whose peak memory exceeds what is available."""
    need = audit_memory(trials, values_per_trial)
    have = available_memory() if available is None else available
    if have is not None and need > have:
        raise InputError(f"trials={trials} needs about {need / 2**30:.3g} GiB of memory at its "
                         f"peak (scores of both sides, a block of releases); about "
                         f"{have / 2**30:.3g} GiB is available: lower trials")


@dataclass(frozen=True)
class MechanismAudit:
    """The outcome of one audit. ``epsilon_lower_bound`` holds with probability ``confidence``;
    ``epsilon_upper_bound`` is the accountant's (method ``accountant``) at the same delta."""

    epsilon_lower_bound: float
    epsilon_upper_bound: float
    ceiling: float
    delta: float
    confidence: float
    trials: int
    test: ThresholdBound
    statistic: str
    implementation: str
    accountant: str
    mechanism: InstaHide
    pair: NeighbourPair
    seed: int
    expected: float | None = None
    region: dict = field(default_factory=dict)
    #: trials per side at which the audit would become conclusive (None: it already is, or no
    #: number of trials up to 1e12 makes it so)
    trials_for_conclusive: int | None = None
    #: trials per side (of ``trials``) that fitted a learned statistic and certify nothing
    fit_trials: int = 0
    #: with ``pair="search"``: the trials per side the search used, and each candidate's
    #: description with what its search trials showed (the chosen pair is ``pair``)
    search_trials: int = 0
    search: tuple = ()

    @property
    def verdict(self) -> str:
        """``violation`` (the lower bound exceeds the accountant's upper bound), ``consistent``,
        or ``inconclusive``: with these trials even an ideal audit (the ceiling, and where
        known the expected exact-LLR audit of the worst case) stays below
        :data:`CONCLUSIVE_FRACTION` of the upper bound, so a violation by the inverse of that
        factor could not be shown either."""
        if self.exceeds_upper_bound or self.violates_profile:
            return "violation"
        if not _reaches(self.ceiling, self.expected, self.epsilon_upper_bound):
            return "inconclusive"
        return "consistent"

    @property
    def ratio(self) -> float:
        """lower / upper: 1 means the audit meets the accountant (the bound is tight)."""
        if self.epsilon_upper_bound == 0:
            return float("inf") if self.epsilon_lower_bound > 0 else 1.0
        return self.epsilon_lower_bound / self.epsilon_upper_bound

    @property
    def violates_profile(self) -> bool:
        """True when the certified errors of the profile test refute the accountant's claim
        ``(eps, delta(eps))`` at some eps (:class:`~dpaccount.audit.bounds.ProfileCheck`)."""
        return self.test.profile is not None and self.test.profile.violated

    @property
    def exceeds_upper_bound(self) -> bool:
        """True when the audit proves more privacy loss than the accountant allows: a bug in
        the implementation audited or in the accountant (with probability >= confidence)."""
        return self.epsilon_lower_bound > self.epsilon_upper_bound

    def to_dict(self) -> dict:
        return {
            "method": f"audit: Clopper-Pearson lower bound, {self.statistic} statistic, "
                      f"threshold by {self.test.selection}",
            "bound": "lower",
            "epsilon_lower_bound": self.epsilon_lower_bound,
            "epsilon_upper_bound": self.epsilon_upper_bound,
            "upper_bound_method": self.accountant,
            "ceiling": self.ceiling,
            "expected_ideal_audit": self.expected,
            "ratio": self.ratio,
            "exceeds_upper_bound": self.exceeds_upper_bound,
            "violates_profile": self.violates_profile,
            "profile_check": (None if self.test.profile is None else
                              self.test.profile.to_dict()),
            "verdict": self.verdict,
            "trials_for_conclusive": self.trials_for_conclusive,
            "delta": self.delta,
            "confidence": self.confidence,
            "trials_per_side": self.trials,
            "fit_trials_per_side": self.fit_trials,
            "search_trials_per_side": self.search_trials,
            "pair_search": [{"pair": d, "search_epsilon": e if math.isfinite(e) else None,
                             **({} if math.isfinite(e) else
                                {"note": "not searched: the statistic cannot score this pair"})}
                            for d, e in self.search],
            "relation": self.mechanism.relation.value,
            "sampler": self.mechanism.sampler.value,
            "releases": self.mechanism.releases,
            "statistic": self.statistic,
            "implementation": self.implementation,
            "seed": self.seed,
            "test": self.test.to_dict(),
            "mechanism": self.mechanism.to_dict(),
            "pair": self.pair.to_dict(),
        }

    def summary(self) -> str:
        flag = ("  ** EXCEEDS THE UPPER BOUND: the implementation or the accountant is wrong **"
                if self.exceeds_upper_bound else "")
        pc = self.test.profile
        profile = [] if pc is None else [
            "profile check: the certified errors force no delta at any eps (consistent)"
        ] if pc.delta_shown == 0 else [
            f"profile check: at eps {pc.epsilon:.4g} the certified errors force delta >= "
            f"{pc.delta_shown:.4g}; the accountant ({self.accountant}) claims delta <= "
            f"{pc.delta_claimed:.4g} there"
            + ("  ** VIOLATED: the implementation or the accountant is wrong **"
               if pc.violated else " (consistent)")]
        verdict = f"verdict: {self.verdict}"
        if self.verdict == "inconclusive":
            verdict += (f" (with {self.trials} trials per side no audit is expected to reach "
                        f"{CONCLUSIVE_FRACTION:g} of the upper bound; "
                        + (f"about {self.trials_for_conclusive:.3g} trials per side would)"
                           if self.trials_for_conclusive else "no number up to 1e12 would)"))
        t = self.test
        return "\n".join([
            f"audited epsilon >= {self.epsilon_lower_bound:.4f} (lower bound, "
            f"{self.confidence:.0%} confidence, delta {self.delta:g}){flag}",
            f"accountant epsilon <= {self.epsilon_upper_bound:.4f} (upper bound, method "
            f"{self.accountant}, same delta); audit/accountant = {self.ratio:.3f}",
            f"ceiling: no audit with {t.negatives} certifying trials per side can show more than "
            f"{self.ceiling:.4f}" + (
                "" if self.expected is None else
                f"; an ideal exact-LLR audit of the worst case with this many trials is expected "
                f"to show about {self.expected:.4f} (median run, estimated from the loss law)"),
            f"test: {self.statistic} >= {t.threshold:.6g} says D; false positives {t.false_pos}/"
            f"{t.negatives}, false negatives {t.false_neg}/{t.positives} (threshold chosen by "
            f"{t.selection}{'' if t.candidates == 1 else f' over {t.candidates}'}); relation "
            f"{self.mechanism.relation.value}, sampler {self.mechanism.sampler.value}, T "
            f"{self.mechanism.releases}"
            + (f"; {self.fit_trials} trials per side fitted the statistic" if self.fit_trials
               else ""),
            *profile,
            *([f"pair chosen by a search over {len(self.search)} candidates on "
               f"{self.search_trials} trials per side of their own: {self.pair.description}"]
              if self.search else []),
            verdict,
        ])


def accountant_upper(mech: InstaHide, delta: float, accountant=None) -> tuple[float, str]:
    """The tightest sound upper bound dpaccount has (:func:`dpaccount.tightest`), and
    the name of the method that produced it; or ``accountant``'s (any object with
    ``epsilon(mech, delta)`` and ``method``: to audit an accountant of your own, or a past one)."""
    if accountant is not None:
        return float(accountant.epsilon(mech, delta).epsilon), str(accountant.method)
    from ..selection import tightest

    row = tightest(mech, delta)
    return row.epsilon, row.method


def expected_audit_bound(mech: InstaHide, certifying: int, delta: float,
                         confidence: float) -> float | None:
    """What an ideal exact-LLR audit of the worst-case pair with ``certifying`` trials per side
    can expect to certify (an estimate, not a bound): the best threshold on the composed law of
    the privacy loss (:meth:`~dpaccount.numerics.lattice.LossComposition.loss_law`), each error count at its
    median, through the same Clopper-Pearson bound. Where it is far below the accountant,
    the trials, not the bound, are what is missing. None where no loss law is available
    (permutation sampler, or eps0 beyond the lattice)."""
    from ..accountants.pld import PLDAccountant, attained_composition

    if PLDAccountant().supports(mech) is not None:
        return None
    try:
        # the worst-case pair's own loss (the audited pair): its first law, log p/q under P
        losses, p = attained_composition(mech).loss_law(0)
    except ArithmeticError:
        return None
    q = p * np.exp(-losses)
    p_ge = np.cumsum(p[::-1])[::-1]  # P(L >= l_i)
    q_ge = np.cumsum(q[::-1])[::-1]
    from scipy.stats import binom

    # the median error counts of a run (a typical audit, not an average of fractional counts)
    fn = binom.ppf(0.5, certifying, np.clip(1.0 - p_ge, 0.0, 1.0))
    fp = binom.ppf(0.5, certifying, np.clip(q_ge, 0.0, 1.0))
    eps = epsilon_lower_bound(fp, certifying, fn, certifying, delta, confidence)
    return float(np.max(eps))


def privacy_region(pos: np.ndarray, neg: np.ndarray, points: int = 400) -> dict:
    """Empirical (FPR, FNR) of "score >= t says D" over thresholds t (both orientations are the
    same curve reflected); at most ``points`` points, for plotting."""
    # quantile levels dense in both tails (log-spaced), where the informative tests are
    tail = np.geomspace(1e-8, 0.5, points // 2)
    levels = np.unique(np.clip(np.concatenate([[0.0], tail, 1.0 - tail, [1.0]]), 0.0, 1.0))
    t = np.unique(np.quantile(np.concatenate([pos, neg]), levels))
    fp, fn = error_counts(pos, neg, t)
    return {"fpr": (fp / neg.size).tolist(), "fnr": (fn / pos.size).tolist()}


def _pair_digest(pair: NeighbourPair) -> str:
    h = hashlib.sha256()
    for a in (pair.d, pair.d_prime):
        h.update(np.ascontiguousarray(a).tobytes())
        h.update(str(a.shape).encode())
    return h.hexdigest()[:16]


class _Store:
    """Blocks of scores on disk, one .npy per (side, block), written atomically."""

    def __init__(self, path, identity: dict):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        meta = self.path / "audit.json"
        if meta.exists():
            try:
                old = json.loads(meta.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(f"store {str(self.path)!r} has a malformed audit.json ({exc}); "
                                 "delete it or use another store") from None
            if old.get("identity") != identity:
                diff = sorted(k for k in set(old.get("identity", {})) | set(identity)
                              if old.get("identity", {}).get(k) != identity.get(k))
                raise InputError(f"store {str(self.path)!r} holds a different audit (differs in "
                                 f"{', '.join(diff)}); use another store or delete it")
        else:
            atomic_write_bytes(meta, json.dumps({"identity": identity}, indent=2).encode())

    def _file(self, side: str, block: int) -> Path:
        return self.path / f"scores-{side}-{block:06d}.npy"

    def load(self, side: str, block: int, size: int):
        f = self._file(side, block)
        if not f.exists():
            return None
        try:
            a = np.load(f, allow_pickle=False)
        except (OSError, ValueError):
            return None  # a damaged block is simply recomputed
        return a if a.shape == (size,) else None

    def save(self, side: str, block: int, scores: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, scores, allow_pickle=False)
        atomic_write_bytes(self._file(side, block), buf.getvalue())

    def save_result(self, result: dict) -> None:
        atomic_write_bytes(self.path / "result.json",
                           json.dumps(result, indent=2, allow_nan=False).encode())


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="trial", unit_scale=True, leave=False)


def score_block(context: dict, unit: tuple[int, int]) -> np.ndarray:
    """One unit of a mechanism audit (:mod:`dpaccount.executors`): the statistic's scores of
    ``block`` trials of side ``unit[0]`` (0: D, 1: D'), block ``unit[1]``, simulated from the
    seed (seed, side, block) whatever process runs it."""
    s_i, b_i = unit
    size = context["block"]  # every block holds `block` trials, so more trials reuse them all
    rng = np.random.default_rng(np.random.SeedSequence(context["seed"], spawn_key=(s_i, b_i)))
    z = np.asarray(context["release_fn"](context["data"][s_i], size, rng), dtype=float)
    if z.shape != tuple(context["shape"]):
        raise InputError(f"release_fn returned shape {z.shape}; expected "
                         f"{tuple(context['shape'])} (trials, T, d)")
    got = np.asarray(context["statistic"](z), dtype=float)
    if got.shape != (size,):
        raise InputError(f"statistic returned shape {got.shape}; expected ({size},)")
    return got


def _pickle_by_value(release_fn, ex) -> None:
    """A user's implementation travels to Ray's workers with its code, not as a reference to a
    module they may not have (a file beside the user, not installed on the cluster)."""
    if ex.name != "ray":
        return
    mod = getattr(release_fn, "__module__", None) or getattr(type(release_fn), "__module__",
                                                             None)
    if not mod or mod.split(".")[0] in ("dpaccount", "training", "numpy", "builtins"):
        return
    import sys

    from ray import cloudpickle  # the copy Ray serialises tasks with

    module = sys.modules.get(mod)
    if module is not None and getattr(module, "__file__", None) and \
            "site-packages" not in str(module.__file__):
        cloudpickle.register_pickle_by_value(module)


def audit_mechanism(
    mech: InstaHide,
    *,
    delta: float,
    trials: int = 100_000,
    confidence: float = 0.95,
    seed: int = 0,
    pair: NeighbourPair | None = None,
    release_fn: Callable | None = None,
    statistic: str | Callable | None = None,
    selection: str = "split",
    select_fraction: float = 0.1,
    thresholds=None,
    store=None,
    progress: bool = False,
    implementation: str | None = None,
    profile: bool = True,
    accountant=None,
    executor="local",
    ray_address: str | None = None,
) -> MechanismAudit:
    """Audit ``mech``: a measured lower bound on its epsilon at ``delta``, beside its upper one.

    ``pair`` defaults to :func:`~dpaccount.audit.simulate.worst_case_pair` (where the
    accountant's bound is attained). ``release_fn`` defaults to the numpy reference
    implementation of ``mech``; pass any ``release_fn(dataset, trials, rng) -> (trials, T, d)``
    to audit another implementation against the same accountant; it must draw all its
    randomness from the ``rng`` it is given (checked). ``statistic`` is ``"exact-llr"`` (the
    optimal test for the faithful mechanism), ``"learned-llr"`` (black box, fitted on
    :data:`FIT_FRACTION` of the trials, which then certify nothing), ``"projection"`` (black
    box), or a callable ``(trials, T, d) -> (trials,)`` (with a ``fit(pos, neg)`` method, it is
    fitted like the learned one). None takes ``"exact-llr"`` for the reference implementation
    and ``"learned-llr"`` for any other. ``selection`` is ``"split"`` (threshold chosen on
    ``select_fraction`` of the scored trials) or ``"bonferroni"`` (over ``thresholds``, or for
    the exact LLR a fixed 200-point grid over its known range). ``profile`` also checks the
    errors against the accountant's whole privacy profile (:func:`accountant_profile`), with the
    error budget shared between the two certificates. ``store`` is a directory for resumable
    results. ``pair="search"`` searches :func:`~dpaccount.audit.simulate.candidate_pairs` on
    :data:`SEARCH_FRACTION` of the trials (own seeds, which then certify nothing) and audits the
    pair that shows the most. ``accountant`` replaces dpaccount's tightest bound as the upper
    bound audited against (an object with ``method``, ``epsilon(mech, delta)`` and
    ``delta(mech, eps)``, like :class:`~dpaccount.accountants.base.Accountant`).
    ``executor`` runs the scored blocks (:mod:`dpaccount.executors`): ``"local"``, ``"ray"``
    (a local Ray runtime, or the cluster at ``ray_address``) or an executor object; the result
    is the same for the same seed under any executor. The fit and the pair search (at most
    :data:`FIT_FRACTION` and :data:`SEARCH_FRACTION` of the trials) run in this process.
    """
    check_executor_args(executor, ray_address)
    delta = check_delta(delta)
    if store is not None:
        check_output_dir("store", store)
    confidence = check_confidence(confidence)
    trials = check_count("trials", trials)
    if trials < 2:
        raise InputError(f"trials must be at least 2 per side; got {trials}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer; got {seed!r}")
    seed = int(seed)
    if isinstance(pair, str):
        if pair != "search":
            raise InputError(f"pair must be a NeighbourPair, None or 'search'; got {pair!r}")
        candidates = candidate_pairs(mech)
    else:
        candidates = [worst_case_pair(mech) if pair is None else pair]
    check_memory(trials, mech.releases * max(c.d.shape[1] for c in candidates))
    for c in candidates:
        if c.relation is not mech.relation:
            raise InputError(f"pair relation {c.relation.value!r} differs from the mechanism's "
                             f"{mech.relation.value!r}")
        check_pair_against(c, mech)
    if statistic is None:  # the exact LLR is that of the reference with weights 1/k
        statistic = ("exact-llr" if release_fn is None and not mech.random_weights
                     else "learned-llr")
    if isinstance(statistic, str) and statistic not in ("exact-llr", "learned-llr", "projection"):
        raise InputError(f"statistic must be 'exact-llr', 'learned-llr', 'projection' or a "
                         f"callable; got {statistic!r}")
    # every candidate pair has the same label columns (the mechanism's), so one reference
    faithful = InstaHideReleases.from_mechanism(mech, label_columns=candidates[0].label_columns)
    if release_fn is None:
        release_fn = faithful
    if implementation is None:
        describe = getattr(release_fn, "describe", None)
        implementation = describe() if callable(describe) else getattr(
            release_fn, "__name__", type(release_fn).__name__)
    # the rng contract, before any simulation: a function of the rng it is given, of the right
    # shape, finite (dpaccount.audit.contract); its probe digest joins the store's identity
    from .contract import PROBE_TRIALS, check_release_fn

    probe = check_release_fn(release_fn, candidates[0].d, PROBE_TRIALS,
                             (PROBE_TRIALS, mech.releases, candidates[0].d.shape[1]), seed,
                             name=f"release_fn {implementation!r}")
    # the executor is up (a cluster reached) before any simulation
    with make_executor(executor, ray_address) as ex:
        n_search, search = 0, ()
        if len(candidates) > 1:
            per_trial = mech.releases * candidates[0].d.shape[1]
            n_search = search_trials(trials, per_trial)
            rest = trials - n_search
            rest -= fit_trials(rest, per_trial) if statistic == "learned-llr" else 0
            pair, search = _search_pair(mech, candidates, release_fn, faithful, statistic,
                                        max(4, n_search // len(candidates)), delta, confidence,
                                        seed, certifying_sizes(rest, selection,
                                                               select_fraction))
            trials -= n_search
        else:
            pair = candidates[0]
        if statistic == "exact-llr":
            stat = ExactLLR(faithful, pair)
        elif statistic == "projection":
            stat = Projection(pair)
        elif statistic == "learned-llr":
            stat = LearnedLLR(pair, delta, confidence)
        elif callable(statistic):
            stat = statistic
        else:
            raise InputError(f"statistic must be 'exact-llr', 'learned-llr', 'projection' or a "
                             f"callable; got {statistic!r}")
        stat_name = getattr(stat, "name", getattr(stat, "__name__", type(stat).__name__))
        if selection == "bonferroni" and thresholds is None:
            rng_ = getattr(stat, "range", None)
            if rng_ is None:
                raise InputError("selection 'bonferroni' needs thresholds fixed in advance for "
                                 "this statistic (its range is unknown); use selection 'split'")
            thresholds = np.linspace(rng_[0], rng_[1], 200)

        dim = pair.d.shape[1]
        per_trial = mech.releases * dim
        n_fit = fit_trials(trials, per_trial) if callable(getattr(stat, "fit", None)) else 0
        total, trials = trials, trials - n_fit  # from here on, trials are the scored ones
        block = max(1, min(trials, BLOCK_VALUES // per_trial))
        n_blocks = -(-trials // block)
        identity = {"mechanism": mech.to_dict(), "pair": _pair_digest(pair), "seed": seed,
                    "search_trials": n_search,
                    "statistic": stat_name, "implementation": implementation, "block": block,
                    "probe": probe, "fit_trials": n_fit}
        st = _Store(store, identity) if store is not None else None

        bar = _progress(2 * total, progress, "audit")
        scores = {}
        try:
            if n_fit:
                # the fit's own trials (own seeds): recomputed on resume, never certifying
                fitted = [np.asarray(release_fn(data, n_fit, np.random.default_rng(
                    np.random.SeedSequence(seed, spawn_key=(3 + s_i,)))), dtype=float)
                    for s_i, data in enumerate((pair.d, pair.d_prime))]
                for z in fitted:
                    if z.shape != (n_fit, mech.releases, dim):
                        raise InputError(f"release_fn returned shape {z.shape}; expected "
                                         f"{(n_fit, mech.releases, dim)} (trials, T, d)")
                if isinstance(stat, LearnedLLR):  # judged by what the certifying trials can show
                    stat.fit(*fitted, certifying=certifying_sizes(trials, selection,
                                                                  select_fraction))
                else:
                    stat.fit(*fitted)
                del fitted
                if bar is not None:
                    bar.update(2 * n_fit)
            # the scored blocks are the units (dpaccount.executors): each seeded by (side, block),
            # computed where the executor runs them, kept in the store here as they arrive
            sides = ("d", "d_prime")
            parts: dict = {}
            todo = []
            for s_i, side in enumerate(sides):
                for b_i in range(n_blocks):
                    got = st.load(side, b_i, block) if st is not None else None
                    if got is None:
                        todo.append((s_i, b_i))
                    else:
                        parts[s_i, b_i] = got
                        if bar is not None:
                            bar.update(min(block, trials - b_i * block))

            def keep(unit, got):
                s_i, b_i = unit
                if st is not None:
                    st.save(sides[s_i], b_i, got)
                parts[unit] = got
                if bar is not None:
                    bar.update(min(block, trials - b_i * block))

            context = {"data": (pair.d, pair.d_prime), "release_fn": release_fn, "statistic": stat,
                       "seed": seed, "block": block, "shape": (block, mech.releases, dim)}
            _pickle_by_value(release_fn, ex)
            ex.run(score_block, context, todo, keep,
                   label=lambda u: f"block {u[1]} of side {sides[u[0]]} (trials "
                                  f"{u[1] * block}-{min(trials, (u[1] + 1) * block) - 1})")
            for s_i, side in enumerate(sides):
                scores[side] = np.concatenate([parts[s_i, b_i] for b_i in range(n_blocks)])[:trials]
        finally:
            if bar is not None:
                bar.close()
        pos, neg = scores["d"], scores["d_prime"]
        upper, acc_name = accountant_upper(mech, delta, accountant)
        describe = getattr(stat, "describe", None)
        if callable(describe):
            stat_name = describe()
        test = select_and_bound(pos, neg, delta=delta, confidence=confidence, selection=selection,
                                select_fraction=select_fraction, thresholds=thresholds,
                                llr=isinstance(stat, ExactLLR),
                                rng=np.random.default_rng(np.random.SeedSequence(seed,
                                                                                 spawn_key=(2,))),
                                profile=(accountant_profile(mech, upper, accountant=accountant)
                                         if profile else None))
        n_cert = certifying_sizes(trials, selection, select_fraction)
        # a split with the profile check certifies the eps bound with half the error budget
        cert_conf = confidence if (test.profile is None or selection != "split") else \
            1.0 - (1.0 - confidence) / 2.0
        expected = expected_audit_bound(mech, n_cert, delta, cert_conf)
        top = ceiling(n_cert, n_cert, delta, cert_conf)
        result = MechanismAudit(
            epsilon_lower_bound=test.epsilon_lower_bound, epsilon_upper_bound=upper,
            ceiling=top, delta=delta, confidence=confidence, trials=total + n_search,
            search_trials=n_search, search=search, test=test,
            statistic=stat_name, fit_trials=n_fit, implementation=implementation,
            accountant=acc_name, mechanism=mech, pair=pair, seed=seed, expected=expected,
            region=privacy_region(pos, neg),
            trials_for_conclusive=None if _reaches(top, expected, upper) else
            trials_for_conclusive(mech, upper, trials, delta, cert_conf, selection,
                                  select_fraction))
        if st is not None:
            st.save_result(result.to_dict())
        return result


#: an audit is conclusive when an ideal audit with its trials can reach this fraction of the
#: accountant's upper bound (so a violation by the inverse factor would be shown)
CONCLUSIVE_FRACTION = 0.5


#: of an audit's trials per side, the share that fits a learned statistic (at most
#: :data:`FIT_VALUES` simulated values per side)
FIT_FRACTION = 0.1

#: the fitting trials are held in memory whole: 64 MiB of float64 per side at most
FIT_VALUES = 1 << 23


#: of an audit's trials per side, the share that searches for the pair (``pair="search"``)
SEARCH_FRACTION = 0.1


def search_trials(trials: int, values_per_trial: int) -> int:
    """Trials per side that each candidate pair of a search gets: :data:`SEARCH_FRACTION` of
    ``trials``, at most :data:`FIT_VALUES` values and a quarter of ``trials``, at least 4."""
    n = min(int(round(SEARCH_FRACTION * trials)), FIT_VALUES // max(1, values_per_trial))
    return max(4, min(n, trials // 4))


def _search_pair(mech, candidates, release_fn, faithful, statistic, n, delta, confidence,
                 seed, certifying):
    """The candidate pair whose own ``n`` trials per side (seeds of their own; the search's
    trials are shared out between the candidates) show the most:
    the best eps at ``delta`` a threshold test of the statistic would certify with
    ``certifying`` trials (:func:`~dpaccount.audit.bounds.best_projected_epsilon`; for the
    learned statistic, the best of its candidates on its held-out half). No certificate uses
    these trials, so the choice costs no confidence."""
    shown = []
    for i, cand in enumerate(candidates):
        z = [np.asarray(release_fn(data, n, np.random.default_rng(np.random.SeedSequence(
            seed, spawn_key=(6, i, s_i)))), dtype=float)
            for s_i, data in enumerate((cand.d, cand.d_prime))]
        if statistic == "learned-llr":
            stat = LearnedLLR(cand, delta, confidence).fit(*z, certifying=certifying)
            e = max(stat.scores_of_candidates.values())
        else:
            try:
                if statistic == "exact-llr":
                    stat = ExactLLR(faithful, cand)
                elif statistic == "projection":
                    stat = Projection(cand)
                else:
                    stat = statistic
            except InputError:
                # a pair this statistic cannot score (the permutation sampler's exact LLR
                # covers one shape of pair) is left out of the search, and shown as -inf
                shown.append(-math.inf)
                continue
            e = best_projected_epsilon(stat(z[0]), stat(z[1]), delta=delta,
                                       confidence=confidence, size=certifying)
        shown.append(float(e))
    best = int(np.argmax(shown))
    if shown[best] == -math.inf:
        raise InputError(f"the statistic {statistic!r} can score none of the candidate pairs; "
                         "use a black-box statistic (learned-llr or projection)")
    return candidates[best], tuple((c.description, e) for c, e in zip(candidates, shown))


def fit_trials(trials: int, values_per_trial: int) -> int:
    """Trials per side that fit a learned statistic: :data:`FIT_FRACTION` of ``trials``, at
    least 4 (two per half), at most :data:`FIT_VALUES` values, and never more than half."""
    n = int(round(FIT_FRACTION * trials))
    n = min(n, FIT_VALUES // max(1, values_per_trial))
    return max(4, min(n, trials // 2))


def accountant_profile(mech: InstaHide, upper: float, points: int = 48, accountant=None):
    """(eps grid, delta at each eps): the smallest delta(eps) any of dpaccount's sound
    accountants (or only ``accountant``) gives for ``mech``, on ``points`` values of eps from 0
    to 1.5 times ``upper``. Each accountant's delta(eps) is an upper bound, so their minimum is
    one too. None where no finite grid exists."""
    from ..accountants import ACCOUNTANTS
    from ..errors import Unsupported

    if not (np.isfinite(upper) and upper > 0):
        return None
    grid = np.linspace(0.0, 1.5 * upper, points)
    best = np.ones(points)
    for acc in (ACCOUNTANTS if accountant is None else (accountant,)):
        if accountant is not None:
            for i, e in enumerate(grid):
                best[i] = min(best[i], float(accountant.delta(mech, float(e)).delta))
            break
        if acc.supports(mech) is not None:
            continue
        for i, e in enumerate(grid):
            try:
                best[i] = min(best[i], acc.delta(mech, float(e)).delta)
            except (Unsupported, ArithmeticError, InputError):
                pass
    return grid, best


def _reaches(ceiling_: float, expected: float | None, upper: float) -> bool:
    best = ceiling_ if expected is None else min(ceiling_, expected)
    return best >= CONCLUSIVE_FRACTION * upper


def trials_for_conclusive(mech: InstaHide, upper: float, trials: int, delta: float,
                          confidence: float, selection: str = "split",
                          select_fraction: float = 0.5) -> int | None:
    """The trials per side (``trials`` times a power of 8, up to 8^6 times and 1e12) at which
    an ideal audit would reach :data:`CONCLUSIVE_FRACTION` of ``upper``; None when ``trials``
    already does, or when none of those does (the expected audit levels off below it: the
    accountant's dominating pair is then more than twice the worst concrete pair's epsilon)."""
    def best(t: int) -> float:
        n = certifying_sizes(t, selection, select_fraction)
        cap = ceiling(n, n, delta, confidence)
        if cap < CONCLUSIVE_FRACTION * upper:  # the cheap bound already says no
            return cap
        exp = expected_audit_bound(mech, n, delta, confidence)
        return cap if exp is None else min(cap, exp)

    target = CONCLUSIVE_FRACTION * upper
    last = best(trials)
    if last >= target:
        return None
    t = trials
    for _ in range(6):
        t *= 8
        if t > 10**12:
            return None
        now = best(t)
        if now >= target:
            return t
        if now <= last * 1.01:  # levelled off: more trials will not get there
            return None
        last = now
    return None


def accountant_tradeoff(mech: InstaHide, points: int = 400, grid: int = 80) -> dict | None:
    """The accountant's whole privacy profile as a region in (FPR, FNR): every test must have
    FNR >= max over eps of max(0, 1 - delta(eps) - e^eps FPR, e^-eps (1 - delta(eps) - FPR)),
    with delta(eps) the accountant's upper bound (PLD; KOV without amplification) on a grid
    of eps. Tighter than the single (eps, delta) region, and what an optimal test approaches.
    None where no profile is available (eps0 beyond the lattice)."""
    from ..accountants import BasicAccountant, KOVAccountant, PLDAccountant

    acc = PLDAccountant()
    if acc.supports(mech) is not None:
        if mech.sampler_type.amplifies:  # eps0 beyond the lattice: no profile
            return None
        acc = KOVAccountant()  # no amplification: the closed-form profile
    top = BasicAccountant().epsilon(mech, 0.5).epsilon
    eps_grid = np.linspace(0.0, top, grid)
    deltas = np.array([acc.delta(mech, e).delta for e in eps_grid])
    fpr = np.concatenate([[0.0], np.geomspace(1e-7, 1.0, points - 1)])
    fnr = np.zeros_like(fpr)
    for e, d in zip(eps_grid, deltas):
        fnr = np.maximum.reduce([fnr, 1 - d - np.exp(e) * fpr, np.exp(-e) * (1 - d - fpr)])
    return {"fpr": fpr.tolist(), "fnr": fnr.tolist()}


def accountant_region(eps: float, delta: float, points: int = 400) -> dict:
    """The boundary of the (eps, delta)-DP region in (FPR, FNR): every test's error pair must
    satisfy FNR >= max(0, 1 - delta - e^eps FPR, e^-eps (1 - delta - FPR))."""
    fpr = np.linspace(0.0, 1.0, points)
    fnr = np.maximum.reduce([np.zeros_like(fpr), 1 - delta - np.exp(eps) * fpr,
                             np.exp(-eps) * (1 - delta - fpr)])
    return {"fpr": fpr.tolist(), "fnr": fnr.tolist()}

