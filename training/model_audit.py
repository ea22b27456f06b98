"""Model-level audits: what a DP-InstaHide-trained model leaks about one record, measured.

- :func:`shadow_audit`: R models trained on D (the canary substituted for record 0 of the
  training set, or for ``copies`` records of one class) and R on D' (those records kept), all
  with the same DP-InstaHide training (:mod:`training.batched`); the canary's loss in each model is
  the raw score. From the scores (a 25% split picks the threshold, the rest certifies it):
  a Clopper-Pearson lower bound on epsilon with the threshold test on the score (``loss``), or on
  LiRA's Gaussian statistic (Carlini et al. 2022, on the logit-scaled confidence ``log(p / (1 -
  p))``): ``lira-offline`` fits a Gaussian to the OUT scores of the selection split only and
  thresholds the one-sided z-score (for one canary a monotone map of the loss: the same test,
  the offline attack's ordering); ``lira-online`` fits Gaussians to the IN and the OUT scores
  and thresholds their log-likelihood ratio (``lira`` is its old name: that is what it always
  fitted). Beside it the ``gdp-estimate``: the largest mu whose Gaussian tradeoff curve the
  certified (FPR, FNR) upper bounds lie below (Dong, Roth, Su 2019, Def. 2.7) and its eps at delta
  (Cor. 2.13) -- a lower bound at the confidence only if the mechanism is mu-GDP, so an estimate,
  not a certificate. Then the accountant's upper bound (the group bound for ``copies`` > 1) and
  the ceiling that R models allow.
- :func:`one_run_audit`: m canaries, each added to the training set with probability 1/2, one
  training run; on the same guesses, Steinke-Nasr-Jagielski (``dpaccount.audit.one_run``) and
  the f-DP audit of Mahloujifar, Melis, Chaudhuri (``dpaccount.audit.fdp_one_run``: eps in the
  (eps, delta) family, and mu in the Gaussian family with its eps).

Scores are data: every block of models is saved (``.npz``: scores, membership, the block's seed)
beside ``audit.json`` (the configuration), so a run resumes without retraining finished models
and every estimate can be recomputed from the saved scores alone (:func:`bound_from_store`).

Canaries (all in [0, 1], so the accountant's diameter covers them):
``mislabeled`` a test image with a wrong label; ``ood`` a random binary patch image with a random
label; ``corner`` the pixelwise complement of record 0 with a wrong label (the farthest record in
L1 from the one it replaces); ``crafted`` the corner of the domain farthest in L1 from the mean
training image (pixel 1 where the mean is below 1/2, else 0: a k-mixture containing the canary
moves by ``(x - mean) / k`` on average, and this x maximises that shift, so mixing dilutes it
least), labelled with the rarest class and substituted for records of that class. With labels
soft (the default, as in the training table; ``public`` is its old name) the soft label is
released without noise and the guarantee (which accounts the class counts it shows) is for
substitutions that keep the label, so ``ood`` and ``corner`` canaries then take the label of the
records they replace and only the image changes; a ``mislabeled`` canary, and the one-run
audit's added canaries, need ``labels="noised"`` (``private``: noised and counted in the
diameter) for a DP run. ``copies`` > 1 replaces that many records of one class by the canary: a
group, audited against the accountant's group bound (:func:`group_accountant`). The
configuration is :class:`training.config.ModelAuditConfig`, shared with ``dpaccount audit model``;
:func:`check_audit_args` checks the other arguments before anything is trained.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from dpaccount import InstaHide, image_diameter
from dpaccount.files import atomic_write_bytes
from dpaccount.audit.bounds import ceiling, certifying_sizes, select_and_bound
from dpaccount.audit.fdp_one_run import fdp_one_run_audit, gdp_epsilon, gdp_mu_from_rates
from dpaccount.audit.one_run import one_run_audit as _one_run

from .batched import per_model_accuracy, per_model_loss, train_batched
from .data import ImageData, load_dataset
from .train import resolve_device
from dpaccount.audit.bounds import check_confidence
from dpaccount.errors import InputError
from dpaccount.executors import check_executor_args, make_executor
from dpaccount.files import check_input_dir, check_output_dir
from dpaccount.validate import check_computable, fmt_count

from .config import AUDIT_LIMITS, CANARIES, SCORES, ModelAuditConfig, canonical_labels, \
    canonical_score, defaults_of

__all__ = ["ModelAuditConfig", "make_canary", "canary_targets", "shadow_audit",
           "bound_from_store", "one_run_audit", "lira_fit", "lira_online_fit", "lira_offline_fit",
           "gdp_estimate", "group_accountant", "check_audit_args", "SCORES", "train_shadow_block",
           "resolve_block", "models_per_block", "bytes_per_model", "gpu_free_bytes"]

#: the most canaries a one-run audit adds (each is a training record)
MAX_CANARIES = 10**7


def _check_k(cfg, n: int) -> None:
    if cfg.k > n:
        raise InputError(f"k must be at most the training set size; got k={cfg.k}, N={n}")


def _check_run(cfg, data, n: int, relation: str) -> None:
    """Before any model is trained: k fits the data and the run's epsilon is computable."""
    _check_k(cfg, n)
    mech = _mechanism(cfg, data, n, cfg.epochs * n, relation)
    if mech is not None:
        check_computable(mech)


def check_audit_args(cfg: ModelAuditConfig, *, score: str = "loss", confidence: float = 0.95,
                     select_fraction: float = 0.25, one_run: bool = False,
                     canaries: int = 1000, guesses=None, store=None,
                     from_store: bool = False) -> None:
    """Every argument of an audit checked before any data is loaded or model trained (the
    configuration itself is checked when it is built): one :class:`InputError` naming the first
    bad one."""
    if not isinstance(cfg, ModelAuditConfig):
        raise InputError(f"cfg must be a ModelAuditConfig; got {cfg!r}")
    canonical_score(score)
    check_confidence(confidence)
    if isinstance(select_fraction, bool) or not isinstance(select_fraction, (int, float)) or \
            not (0.0 < select_fraction < 1.0):
        raise InputError(f"select_fraction must be in the open interval (0, 1); got "
                         f"{select_fraction!r}")
    if one_run:
        if cfg.canary != "ood":
            raise InputError(f"canary must be 'ood' for the one-run audit (its m canaries are "
                             f"random binary images with random labels); got {cfg.canary!r}")
        if cfg.copies != 1:
            raise InputError(f"copies must be 1 for the one-run audit (each canary is one "
                             f"record of the add/remove relation); got {cfg.copies}")
        if isinstance(canaries, bool) or not isinstance(canaries, (int, np.integer)) or \
                not 2 <= canaries <= MAX_CANARIES:
            raise InputError(f"canaries must be an integer from 2 to {MAX_CANARIES:g}; got "
                             f"{fmt_count(canaries)}")
        if cfg.noise > 0 and cfg.labels == "soft":
            raise InputError("one-run canaries are added with their labels: with labels 'soft' "
                             "the accountant does not cover that; use labels 'noised' (old "
                             "name: labels 'private')")
        if guesses is not None:
            try:
                pairs = [(int(a), int(b)) for a, b in guesses]
            except (TypeError, ValueError):
                raise InputError(f"guesses must be (k+, k-) pairs; got {guesses!r}") from None
            if not pairs or any(a < 0 or b < 0 or not 0 < a + b <= canaries for a, b in pairs):
                raise InputError(f"guesses must be (k+, k-) pairs with 0 < k+ + k- <= canaries "
                                 f"({canaries}); got {guesses!r}")
    elif guesses is not None:
        raise InputError("guesses apply to the one-run audit only")
    if from_store:
        if store is None:
            raise InputError("recomputing from a store needs the store directory")
        check_input_dir("store", store)
        if not (Path(store) / "audit.json").is_file():
            raise InputError(f"store {str(store)!r} holds no audit (audit.json is missing)")
    elif store is not None:
        check_output_dir("store", store)


def _rarest_class(data: ImageData) -> int:
    counts = torch.bincount(data.y_train.cpu(), minlength=data.num_classes).numpy()
    present = np.flatnonzero(counts > 0)
    return int(present[np.argmin(counts[present])])


def make_canary(data: ImageData, kind: str, rng: np.random.Generator, *,
                keep_label: bool = False):
    """One canary (image, label) of the given kind (module docstring). ``keep_label``: the
    canary takes the label of record 0, the record it replaces, so that only features change
    (what a features-only guarantee, labels soft, covers). A ``crafted`` canary always has the
    rarest class's label and replaces records of that class (:func:`canary_targets`)."""
    shape = data.shape
    if kind == "mislabeled":
        if keep_label:
            raise InputError("a mislabeled canary cannot keep the label")
        x = data.x_test[0].clone()
        y = (int(data.y_test[0]) + 1) % data.num_classes
    elif kind == "ood":
        x = torch.as_tensor(rng.integers(0, 2, shape), dtype=torch.float32)
        y = int(rng.integers(0, data.num_classes))
    elif kind == "corner":
        x = 1.0 - data.x_train[0].clone()
        y = (int(data.y_train[0]) + 1) % data.num_classes
    elif kind == "crafted":
        lo, hi = (float(v) for v in data.value_range)
        mean = data.x_train.float().mean(0)
        x = torch.where(mean < 0.5 * (lo + hi), torch.full_like(mean, hi),
                        torch.full_like(mean, lo)).cpu()
        return x, _rarest_class(data)
    else:
        raise InputError(f"canary must be one of {', '.join(CANARIES)}; got {kind!r}")
    if keep_label:
        y = int(data.y_train[0])
    return x, y


def canary_targets(data: ImageData, cfg: ModelAuditConfig) -> np.ndarray:
    """The training records the canary substitutes for in D: the first ``cfg.copies`` records of
    one class (record 0's class; the rarest class for a ``crafted`` canary), so that with labels
    soft every substitution keeps the label. Record 0 alone for one copy of the other canaries."""
    y = data.y_train.cpu().numpy()
    cls = _rarest_class(data) if cfg.canary == "crafted" else int(y[0])
    idx = np.flatnonzero(y == cls)
    if idx.size < cfg.copies:
        raise InputError(f"copies must be at most {idx.size} (the training records of class "
                         f"{cls} that the canary replaces); got {cfg.copies}")
    return idx[:cfg.copies]


def _logit_confidence(scores) -> np.ndarray:
    """LiRA's logit scaling ``phi = log(p / (1 - p))`` of the canary's confidence p, from the
    score ``s = log p`` (minus the cross-entropy): ``phi = s - log(1 - e^s)`` (Carlini et al. 2022,
    Sec. IV-B: this makes the per-example distributions close to Gaussian). ``p = 1`` in float32
    is taken as ``1 - 1e-300``."""
    s = np.minimum(np.asarray(scores, dtype=float), -1e-300)
    return s - np.log(-np.expm1(s))


def _gauss(a):
    a = np.asarray(a, dtype=float)
    mean, sd = float(np.mean(a)), float(np.std(a))
    return mean, sd + 1e-9 * max(1.0, abs(mean))  # a point mass would divide by zero


def lira_online_fit(sel_pos, sel_neg):
    """LiRA online (Carlini et al. 2022, Alg. 1): Gaussians fitted to the logit-scaled
    confidence of the canary in the IN models (``sel_pos``) and the OUT models (``sel_neg``) of
    the selection split; the statistic is the log-likelihood ratio ``log N(phi; mu_in, s_in) -
    log N(phi; mu_out, s_out)`` (per-example variances: one canary)."""
    from scipy import stats

    mi, si = _gauss(_logit_confidence(sel_pos))
    mo, so = _gauss(_logit_confidence(sel_neg))

    def statistic(s):
        phi = _logit_confidence(s)
        return stats.norm.logpdf(phi, mi, si) - stats.norm.logpdf(phi, mo, so)

    return statistic


#: the old name of :func:`lira_online_fit` (it always fitted IN and OUT)
lira_fit = lira_online_fit


def lira_offline_fit(sel_pos, sel_neg):
    """LiRA offline (Carlini et al. 2022, Sec. VI-C): only the OUT models (``sel_neg``) are
    fitted; the statistic is the one-sided z-score ``(phi - mu_out) / s_out`` of the logit-scaled
    confidence, the order of the offline test ``Phi(z)`` without its saturation. For one canary it
    is a monotone map of the loss, so it certifies what the loss threshold does."""
    del sel_pos  # the offline attack trains no IN models
    mo, so = _gauss(_logit_confidence(sel_neg))
    return lambda s: (_logit_confidence(s) - mo) / so


_FITS = {"loss": None, "lira-offline": lira_offline_fit, "lira-online": lira_online_fit}


def gdp_estimate(fpr_upper: float, fnr_upper: float, delta: float) -> dict:
    """The Gaussian-DP estimate of a certified threshold test: the largest mu such that the
    Clopper-Pearson upper bounds (fpr, fnr) lie below the tradeoff curve G_mu (Dong, Roth, Su 2019,
    Def. 2.7: ``mu = Phi^{-1}(1 - fpr) - Phi^{-1}(fnr)``), and the eps at delta of a mu-GDP
    mechanism (Cor. 2.13). At the test's confidence, mu is a lower bound if the mechanism is
    mu-GDP for some mu; eps follows only under that assumption (hence "estimate")."""
    mu = gdp_mu_from_rates(fpr_upper, fnr_upper)
    return {
        "name": "gdp-estimate",
        "method": "gdp-estimate: largest mu with the certified (FPR, FNR) upper bounds below "
                  "G_mu (Dong-Roth-Su Def. 2.7), eps at delta by Cor. 2.13",
        "mu_lower_bound": mu,
        "epsilon": gdp_epsilon(mu, delta),
        "delta": delta,
        "note": "a lower bound at the confidence only if the mechanism is mu-GDP (an estimate "
                "otherwise); the eps is that of a mu-GDP mechanism",
    }


def _mechanism(cfg: ModelAuditConfig, data: ImageData, n: int, releases: int,
               relation: str) -> InstaHide | None:
    if cfg.noise == 0:
        return None
    noised = cfg.labels == "noised"
    diameter = image_diameter(data.shape, data.value_range, labels=noised)
    if noised:
        return InstaHide(k=cfg.k, noise=cfg.noise, n=n, diameter=diameter, releases=releases,
                         sampler="subsets", relation=relation, labels="noised")
    # labels soft: the soft label is released without noise (the canary keeps the label of
    # the record it replaces, so the class sizes are the training set's)
    sizes = [int(c) for c in torch.bincount(data.y_train.cpu()).tolist() if c > 0]
    return InstaHide(k=cfg.k, noise=cfg.noise, n=n, diameter=diameter, releases=releases,
                     sampler="subsets", relation=relation, labels="soft", class_sizes=sizes)


def _accountant(mech, delta, copies: int = 1):
    if mech is None:
        return None, "none (no noise: no guarantee)"
    if copies > 1:
        return group_accountant(mech, copies, delta)
    from dpaccount.selection import tightest as tightest_result

    row = tightest_result(mech, delta)
    return row.epsilon, row.method


def group_accountant(mech: InstaHide, copies: int, delta: float):
    """The upper bound for a group of ``copies`` records substituted at once, at ``delta``:
    the smallest of (0) the group pair (``dpaccount.accountants.group``, ``pld-tilted-group``),
    (1) the closed form for the group (each release meets the group with probability q_p and
    moves by ``min(p, k) Delta / k``; KOV over the releases) and (2) group privacy on the tightest single-record bound, ``(c eps_1, c
    e^{(c-1) eps_1} delta_1)`` (Dwork & Roth 2014, Thm 2.2 and its delta term by induction) with
    delta_1 chosen so that the group's delta is at most ``delta`` (fixed-point search; skipped
    when it would need delta_1 below 1e-300). Returns (eps, method)."""
    from dpaccount.accountants.group import group_epsilon
    from dpaccount.errors import Unsupported
    from dpaccount.numerics.closed_form import kov_epsilon
    from dpaccount.selection import tightest as tightest_result

    c = int(copies)
    unit = mech.sampler_type.group_unit(mech, c)
    best = (kov_epsilon(unit.eps, unit.count, delta),
            f"group of {c}: direct group accounting ({unit.description}; KOV over "
            f"{unit.count} releases)")
    try:
        pair = group_epsilon(mech, c, delta)
    except Unsupported:
        pair = None
    if pair is not None and pair.epsilon < best[0]:
        best = (pair.epsilon, f"group of {c}: {pair.method} ({pair.note})")
    d1 = delta / c
    row = tightest_result(mech, d1)
    for _ in range(6):
        if (c - 1) * row.epsilon > 690.0:
            break
        d2 = delta / (2 * c) * math.exp(-(c - 1) * row.epsilon)
        row2 = tightest_result(mech, d2)
        if math.log(c) + (c - 1) * row2.epsilon + math.log(d2) <= math.log(delta):
            if c * row2.epsilon < best[0]:
                best = (c * row2.epsilon,
                        f"group of {c}: group privacy (c eps, c e^((c-1) eps) delta) on "
                        f"{row2.method} eps {row2.epsilon:.4g} at delta {d2:.3g}")
            break
        row = row2
    return best


def _config_json(cfg) -> str:
    return json.dumps(asdict(cfg), sort_keys=True)


def _read_config(meta: Path) -> dict:
    """The configuration saved in a store's audit.json, with the old label names read as the
    new ones (``public`` is ``soft``, ``private`` is ``noised``)."""
    try:
        old = json.loads(meta.read_text())
        config = dict(old["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"store {str(meta.parent)!r} has a malformed audit.json "
                         f"({type(exc).__name__}); delete it or use another store") from None
    if "labels" in config:
        try:
            config["labels"] = canonical_labels(config["labels"])
        except InputError:
            pass
    if "canary" in config:  # a store from before ``copies`` existed audited one copy
        config.setdefault("copies", defaults_of(ModelAuditConfig)["copies"])
    return config


def _store_check(store: Path, cfg) -> None:
    meta = store / "audit.json"
    if meta.exists():
        old = _read_config(meta)
        new = json.loads(_config_json(cfg))
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            raise InputError(f"store {str(store)!r} holds a different audit (differs in "
                             f"{', '.join(diff)}); use another store or delete it")
    else:
        atomic_write_bytes(meta, json.dumps({"config": json.loads(_config_json(cfg))},
                                            indent=1).encode())


def _save_block(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _train_block(cfg, data, records, labels, pools, seed, device):
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    model, releases = train_batched(
        records, labels, pools, k=cfg.k, noise=cfg.noise, epochs=cfg.epochs,
        batch_size=cfg.batch_size, lr=cfg.lr, hidden=cfg.hidden,
        num_classes=data.num_classes, generator=g,
        label_privacy=cfg.labels if cfg.noise > 0 else "soft")
    return model, releases


#: the most models one unit trains together (the configuration's own limit on ``block``)
AUDIT_BLOCK_MAX = AUDIT_LIMITS["block"]

#: share of a GPU's free memory that one unit of shadow models may fill (the rest: allocator
#: slack, CUDA's own workspaces)
GPU_FILL = 0.7


def bytes_per_model(cfg: ModelAuditConfig, d: int, classes: int, n: int, n_test: int) -> int:
    """Peak bytes one shadow model adds to a block (float32; :mod:`training.batched`): its
    parameters four times (weights, gradients, Adam's two moments), one step's activations (the
    k gathered records, the noised mix and its noise, the hidden layer and logits with their
    gradients), its pool of indices, and the test pass (hidden layer and logits over the test
    set), all doubled for what autograd and the allocator keep beside them."""
    params = d * cfg.hidden + cfg.hidden + cfg.hidden * classes + classes
    b = cfg.batch_size
    step = b * (cfg.k * d + 3 * d + cfg.k * classes + 3 * cfg.hidden + 4 * classes)
    test = n_test * (cfg.hidden + classes)
    return int(2 * (4 * (4 * params + step + test) + 8 * 2 * n))


def models_per_block(cfg: ModelAuditConfig, d: int, classes: int, n: int, n_test: int,
                     free_bytes: int) -> int:
    """How many shadow models one unit trains together in ``free_bytes`` of GPU memory
    (:data:`GPU_FILL` of it), at least 1 and at most all of them."""
    per = bytes_per_model(cfg, d, classes, n, n_test)
    return int(max(1, min(2 * cfg.models, AUDIT_BLOCK_MAX, (GPU_FILL * free_bytes) // per)))


def gpu_free_bytes(context=None, unit=None) -> int:
    """The free memory of the GPU this process sees (a unit's, under Ray)."""
    free, _ = torch.cuda.mem_get_info()
    return int(free)


def resolve_block(cfg: ModelAuditConfig, data: ImageData, device: str, ex, store=None):
    """``cfg`` with ``block="auto"`` made a number: a store's own block when it holds one (so a
    resumed audit keeps its blocks, hence its seeds); on CUDA as many models as fit in the free
    memory of the GPU a unit gets (asked of that GPU: this process's, or a Ray worker's); else
    the default, 128."""
    from dataclasses import replace

    if cfg.block != "auto":
        return cfg
    meta = Path(store) / "audit.json" if store is not None else None
    if meta is not None and meta.is_file():
        old = _read_config(meta).get("block")
        if isinstance(old, int) and old >= 1:
            return replace(cfg, block=old)
    cuda = device == "cuda" or (device == "auto" and ex.name == "local" and
                                torch.cuda.is_available())
    if not cuda:
        return replace(cfg, block=defaults_of(ModelAuditConfig)["block"])
    free = []
    ex.run(gpu_free_bytes, None, [0], lambda u, r: free.append(r),
           label=lambda u: "GPU memory probe", num_gpus=1 if ex.name == "ray" else 0)
    d = int(np.prod(data.x_train.shape[1:]))
    return replace(cfg, block=models_per_block(cfg, d, data.num_classes,
                                               int(data.x_train.shape[0]),
                                               int(data.x_test.shape[0]), free[0]))


def train_shadow_block(context: dict, b: int) -> dict:
    """One unit of a shadow-model audit (:mod:`dpaccount.executors`): block ``b`` of
    ``cfg.block`` models trained together, seeded by (cfg.seed, b) whatever process or device
    runs it; the models alternate between D (with the canary) and D'. Returns their canary
    scores (minus the loss), membership, test accuracies, releases and seed."""
    cfg = context["cfg"]
    dev = resolve_device(context["device"])
    total = 2 * cfg.models
    size = min(cfg.block, total - b * cfg.block)
    seed = int(np.random.SeedSequence([cfg.seed, b]).generate_state(1)[0])
    m_ = (np.arange(b * cfg.block, b * cfg.block + size) % 2 == 0)  # alternate
    base, with_canary = context["base"].to(dev), context["with_canary"].to(dev)
    pools = torch.stack([with_canary if i else base for i in m_])
    data = context["data"].to(dev)
    model, rel = _train_block(cfg, data, context["records"].to(dev), context["labels"].to(dev),
                              pools, seed, dev)
    cx, cy = context["canary"]
    s_ = -per_model_loss(model, cx[None].to(dev),
                         torch.tensor([cy], device=dev))[:, 0].cpu().numpy()
    a_ = per_model_accuracy(model, data.x_test, data.y_test).cpu().numpy()
    return {"scores": s_, "member": m_, "accuracy": a_, "releases": int(rel), "seed": seed}


def shadow_audit(cfg: ModelAuditConfig, *, store=None, data: ImageData | None = None,
                 progress: bool = False, device: str = "auto", score: str = "loss",
                 confidence: float = 0.95, select_fraction: float = 0.25,
                 executor="local", ray_address: str | None = None) -> dict:
    """Train ``cfg.models`` models per side (in blocks, resumable with ``store``) and audit.
    ``executor`` trains the blocks (:mod:`dpaccount.executors`): ``"local"``, ``"ray"`` (a
    local Ray runtime, or the cluster at ``ray_address``) or an executor object; each block
    asks Ray for a GPU when ``device`` is ``"cuda"``. The result is the same for the same seed
    under any executor (on the same device)."""
    check_executor_args(executor, ray_address)
    check_audit_args(cfg, score=score, confidence=confidence, select_fraction=select_fraction,
                     store=store)
    ex = make_executor(executor, ray_address)
    # with Ray the device is the workers': resolved (and refused) where a block runs
    dev = resolve_device(device) if ex.name == "local" else torch.device("cpu")
    data = (data if data is not None else load_dataset(cfg.dataset, seed=0)).to(dev)
    n = int(data.x_train.shape[0])
    _check_run(cfg, data, n, "substitution")
    targets = canary_targets(data, cfg)
    cx, cy = make_canary(data, cfg.canary, np.random.default_rng(cfg.seed),
                         keep_label=cfg.labels == "soft" and cfg.canary != "mislabeled")
    records = torch.cat([data.x_train, cx[None].to(dev)])
    labels = torch.cat([data.y_train, torch.tensor([cy], device=dev)])
    base = torch.arange(n, device=dev)
    with_canary = base.clone()
    # D: the canary substitutes for the target records (record 0 for one copy; a group of
    # ``copies`` records of one class, each replaced by the same canary, otherwise)
    with_canary[torch.as_tensor(targets, device=dev)] = n
    st = Path(store) if store is not None else None
    with ex:
        ex.require(num_gpus=1 if device == "cuda" else 0)  # before the store is touched
        cfg = resolve_block(cfg, data, device, ex, st)
        if st is not None:
            st.mkdir(parents=True, exist_ok=True)
            _store_check(st, cfg)
        return _shadow_blocks(cfg, ex, st, data, device, dev, n, records, labels, base,
                              with_canary, cx, cy, progress, score, confidence,
                              select_fraction)


def _shadow_blocks(cfg, ex, st, data, device, dev, n, records, labels, base, with_canary,
                   cx, cy, progress, score, confidence, select_fraction) -> dict:
    total = 2 * cfg.models
    n_blocks = -(-total // cfg.block)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="shadow models", unit="model", leave=False)
    blocks: dict = {}
    todo = []
    for b in range(n_blocks):
        f = st / f"block-{b:05d}.npz" if st is not None else None
        if f is not None and f.exists():
            with np.load(f, allow_pickle=False) as z:
                blocks[b] = {"scores": z["scores"], "member": z["member"],
                             "accuracy": z["accuracy"], "releases": int(z["releases"])}
            if bar is not None:
                bar.update(blocks[b]["scores"].shape[0])
        else:
            todo.append(b)

    def keep(b: int, out: dict) -> None:
        if st is not None:
            _save_block(st / f"block-{b:05d}.npz", **out)
        blocks[b] = out
        if bar is not None:
            bar.update(out["scores"].shape[0])

    context = {"cfg": cfg, "device": str(dev) if ex.name == "local" else device,
               "data": data, "records": records, "labels": labels, "base": base,
               "with_canary": with_canary, "canary": (cx, cy)}
    try:
        ex.run(train_shadow_block, context, todo, keep,
               label=lambda b: f"block {b} of {n_blocks} (shadow models "
                               f"{b * cfg.block}-{min(total, (b + 1) * cfg.block) - 1})",
               num_gpus=1 if device == "cuda" and ex.name == "ray" else 0)
    finally:
        if bar is not None:
            bar.close()
    parts = [blocks[b] for b in range(n_blocks)]
    return _report(cfg, data, np.concatenate([p["scores"] for p in parts]),
                   np.concatenate([p["member"] for p in parts]).astype(bool),
                   np.concatenate([p["accuracy"] for p in parts]), parts[-1]["releases"], n,
                   score, confidence, select_fraction, st)


def _report(cfg, data, scores, member, accs, releases, n, score, confidence, select_fraction,
            st) -> dict:
    score = canonical_score(score)
    pos, neg = scores[member], scores[~member]
    test = select_and_bound(pos, neg, delta=cfg.delta, confidence=confidence,
                            select_fraction=select_fraction, fit=_FITS[score],
                            rng=np.random.default_rng(cfg.seed))
    mech = _mechanism(cfg, data, n, releases, "substitution")
    upper, method = _accountant(mech, cfg.delta, cfg.copies)
    n_cert = certifying_sizes(min(pos.size, neg.size), "split", select_fraction)
    gdp = gdp_estimate(test.fpr_upper, test.fnr_upper, cfg.delta)
    group = "" if cfg.copies == 1 else f", group of {cfg.copies} (copies)"
    cp_method = f"shadow-cp: Clopper-Pearson lower bound, canary {score} score, threshold by split"
    out = {
        "command": "audit model",
        "kind": "shadow models",
        "method": cp_method,
        "score": score,
        "bound": "lower",
        "epsilon_lower_bound": test.epsilon_lower_bound,
        "epsilon_upper_bound": upper,
        "upper_bound_method": method,
        "ceiling": ceiling(n_cert, n_cert, cfg.delta, confidence),
        "exceeds_upper_bound": upper is not None and test.epsilon_lower_bound > upper,
        "gdp_estimate": gdp,
        "delta": cfg.delta,
        "confidence": confidence,
        "relation": "substitution" + group,
        "sampler": "subsets",
        "releases": releases,
        "models_per_side": int(min(pos.size, neg.size)),
        "test_accuracy_mean": float(np.mean(accs)),
        "test": test.to_dict(),
        "estimates": [
            _estimate("shadow-cp", cp_method, "epsilon", "lower", test.epsilon_lower_bound,
                      cfg.delta, "substitution" + group, confidence),
            _estimate("gdp-estimate", gdp["method"], "mu", "lower if mu-GDP",
                      gdp["mu_lower_bound"], None, "substitution" + group, confidence),
            _estimate("gdp-estimate", gdp["method"], "epsilon", "lower if mu-GDP",
                      gdp["epsilon"], cfg.delta, "substitution" + group, confidence),
            _estimate("accountant", method, "epsilon", "upper", upper, cfg.delta,
                      "substitution" + group, None),
        ],
        "config": asdict(cfg),
        "mechanism": None if mech is None else mech.to_dict(),
        "scores_in": pos.tolist(),
        "scores_out": neg.tolist(),
        "store": None if st is None else str(st),
    }
    if st is not None:
        atomic_write_bytes(st / "result.json", json.dumps(out, indent=1).encode())
    return out


def _estimate(name, method, quantity, bound, value, delta, relation, confidence) -> dict:
    """One number of an audit's output, with what it is: name, method, the quantity (epsilon or
    mu), lower or upper, the delta it is at (None for mu), the relation and the confidence."""
    return {"name": name, "method": method, "quantity": quantity, "bound": bound,
            "value": value, "delta": delta, "relation": relation, "confidence": confidence}


def bound_from_store(store, *, score: str = "loss", confidence: float = 0.95,
                     select_fraction: float = 0.25, data: ImageData | None = None) -> dict:
    """Recompute the shadow-model bound (any score, the GDP estimate) from saved scores alone: no
    model is trained."""
    canonical_score(score)
    check_confidence(confidence)
    if store is None:
        raise InputError("recomputing from a store needs the store directory")
    st = check_input_dir("store", store)
    meta = st / "audit.json"
    if not meta.is_file():
        raise InputError(f"store {str(st)!r} holds no audit (audit.json is missing)")
    cfg = ModelAuditConfig(**_read_config(meta))
    blocks = sorted(st.glob("block-*.npz"))
    if not blocks:
        raise InputError(f"{str(st)!r} holds no finished block of models")
    s, m, a, rel = [], [], [], None
    for f in blocks:
        with np.load(f, allow_pickle=False) as z:
            s.append(z["scores"])
            m.append(z["member"])
            a.append(z["accuracy"])
            rel = int(z["releases"])
    data = data if data is not None else load_dataset(cfg.dataset, seed=0)
    return _report(cfg, data, np.concatenate(s), np.concatenate(m).astype(bool),
                   np.concatenate(a), rel, int(data.x_train.shape[0]), score, confidence,
                   select_fraction, None)


def one_run_audit(cfg: ModelAuditConfig, *, canaries: int = 1000, guesses=None,
                  data: ImageData | None = None, device: str = "auto",
                  confidence: float = 0.95, store=None) -> dict:
    """One training run: ``canaries`` ood canaries (random binary images, random labels), each
    added with probability 1/2; one model; guesses on the top and bottom scores, audited by
    Steinke-Nasr-Jagielski and, on the same guesses, by the f-DP bound of Mahloujifar et al."""
    check_audit_args(cfg, confidence=confidence, one_run=True, canaries=canaries,
                     guesses=guesses, store=store)
    dev = resolve_device(device)
    data = (data if data is not None else load_dataset(cfg.dataset, seed=0)).to(dev)
    rng = np.random.default_rng(cfg.seed)
    n = int(data.x_train.shape[0])
    _check_run(cfg, data, n + canaries // 2, "add_remove")
    cx = torch.as_tensor(rng.integers(0, 2, (canaries, *data.shape)), dtype=torch.float32,
                         device=dev)
    cy = torch.as_tensor(rng.integers(0, data.num_classes, canaries), device=dev)
    included = rng.random(canaries) < 0.5
    records = torch.cat([data.x_train, cx])
    labels = torch.cat([data.y_train, cy])
    pool = torch.cat([torch.arange(n, device=dev),
                      n + torch.as_tensor(np.flatnonzero(included), device=dev)])[None]
    seed = int(np.random.SeedSequence([cfg.seed, 10**6]).generate_state(1)[0])
    model, releases = _train_block(cfg, data, records, labels, pool, seed, dev)
    scores = -per_model_loss(model, cx, cy)[0].cpu().numpy()
    acc = float(per_model_accuracy(model, data.x_test, data.y_test)[0])
    if guesses is None:
        guesses = [(g, g) for g in (canaries // 20, canaries // 10, canaries // 5)]
    res = _one_run(scores, included, guesses, delta=cfg.delta, confidence=confidence)
    fdp = fdp_one_run_audit(scores, included, guesses, delta=cfg.delta, confidence=confidence)
    n_train = int(pool.shape[1])
    mech = _mechanism(cfg, data, n_train, releases, "add_remove")
    upper, method = _accountant(mech, cfg.delta)
    steinke = ("one-run (Steinke et al. 2023): p-value test with the delta term, guesses fixed "
               f"in advance (Bonferroni over {len(guesses)})")
    fdp_eps = ("one-run f-DP (Mahloujifar et al. 2024, Thm 9 / Alg. 3): (eps, delta) tradeoff "
               f"family, same guesses (Bonferroni over {len(guesses)})")
    fdp_mu = ("one-run f-DP (Mahloujifar et al. 2024, Thm 9 / Alg. 3): Gaussian tradeoff family "
              f"G_mu, same guesses (Bonferroni over {len(guesses)}); eps at delta by Dong-Roth-Su "
              "Cor. 2.13")
    out = {
        "command": "audit model",
        "kind": "one run (Steinke, Nasr, Jagielski 2023; Mahloujifar, Melis, Chaudhuri 2024)",
        "method": steinke,
        "bound": "lower",
        "epsilon_lower_bound": res.epsilon_lower_bound,
        "epsilon_upper_bound": upper,
        "upper_bound_method": method,
        "exceeds_upper_bound": upper is not None and max(
            res.epsilon_lower_bound, fdp.epsilon_lower_bound) > upper,
        "delta": cfg.delta,
        "confidence": confidence,
        "relation": "add_remove",
        "sampler": "subsets",
        "releases": releases,
        "n_train": n_train,
        "test_accuracy": acc,
        "one_run": res.to_dict(),
        "fdp": fdp.to_dict(),
        "estimates": [
            _estimate("one-run-steinke", steinke, "epsilon", "lower", res.epsilon_lower_bound,
                      cfg.delta, "add_remove", confidence),
            _estimate("one-run-fdp", fdp_eps, "epsilon", "lower", fdp.epsilon_lower_bound,
                      cfg.delta, "add_remove", confidence),
            _estimate("one-run-fdp-gdp", fdp_mu, "mu", "lower if mu-GDP", fdp.mu_lower_bound,
                      None, "add_remove", confidence),
            _estimate("one-run-fdp-gdp", fdp_mu, "epsilon", "lower if mu-GDP",
                      fdp.epsilon_from_mu, cfg.delta, "add_remove", confidence),
            _estimate("accountant", method, "epsilon", "upper", upper, cfg.delta, "add_remove",
                      None),
        ],
        "config": asdict(cfg),
        "mechanism": None if mech is None else mech.to_dict(),
    }
    if store is not None:
        st = Path(store)
        st.mkdir(parents=True, exist_ok=True)
        _save_block(st / "one-run-scores.npz", scores=scores, included=included, seed=seed)
        atomic_write_bytes(st / "one-run-result.json", json.dumps(out, indent=1).encode())
    return out
