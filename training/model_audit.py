"""Model-level audits: what a DP-InstaHide-trained model leaks about one record, measured.

- :func:`shadow_audit`: R models trained on D (the canary substituted for record 0 of the
  training set) and R on D' (record 0 kept), all with the same DP-InstaHide training
  (:mod:`training.batched`); the canary's loss in each model is the score; a Clopper-Pearson
  lower bound on epsilon from the scores (threshold on a held-out split, optionally LiRA's
  Gaussian likelihood ratio fitted on that split), beside the accountant's upper bound for the
  run and the ceiling that R models allow.
- :func:`one_run_audit`: m canaries, each added to the training set with probability 1/2, one
  training run, Steinke-Nasr-Jagielski guesses (``dpaccount.audit.one_run``).

Scores are data: every block of models is saved (``.npz``: scores, membership, the block's seed)
beside ``audit.json`` (the configuration), so a run resumes without retraining finished models
and the bound can be recomputed from the saved scores alone (:func:`bound_from_store`).

Canaries (all in [0, 1], so the accountant's diameter covers them):
``mislabeled`` a test image with a wrong label; ``ood`` a random binary patch image with a random
label; ``corner`` the pixelwise complement of record 0 with a wrong label (the farthest record in
L1 from the one it replaces: the domain's worst case). With labels soft (the default, as in
the training table; ``public`` is its old name) the soft label is released without noise and
the guarantee (which accounts the class counts it shows) is for substitutions that keep the
label, so ``ood`` and ``corner`` canaries then take the label of record 0 and only the image
changes; a ``mislabeled`` canary, and the one-run audit's added canaries, need
``labels="noised"`` (``private``: noised and counted in the diameter) for a DP run. The
configuration is :class:`training.config.ModelAuditConfig`, shared with ``dpaccount audit
model``; :func:`check_audit_args` checks the other arguments before anything is trained.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from dpaccount import InstaHide, image_diameter
from dpaccount.files import atomic_write_bytes
from dpaccount.audit.bounds import ceiling, certifying_sizes, select_and_bound
from dpaccount.audit.one_run import one_run_audit as _one_run

from .batched import per_model_accuracy, per_model_loss, train_batched
from .data import ImageData, load_dataset
from .train import resolve_device
from dpaccount.audit.bounds import check_confidence
from dpaccount.errors import InputError
from dpaccount.files import check_input_dir, check_output_dir
from dpaccount.validate import check_computable, fmt_count

from .config import CANARIES, ModelAuditConfig, canonical_labels

__all__ = ["ModelAuditConfig", "make_canary", "shadow_audit", "bound_from_store",
           "one_run_audit", "lira_fit", "check_audit_args"]

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
    if score not in ("loss", "lira"):
        raise InputError(f"score must be 'loss' or 'lira'; got {score!r}")
    check_confidence(confidence)
    if isinstance(select_fraction, bool) or not isinstance(select_fraction, (int, float)) or \
            not (0.0 < select_fraction < 1.0):
        raise InputError(f"select_fraction must be in the open interval (0, 1); got "
                         f"{select_fraction!r}")
    if one_run:
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


def make_canary(data: ImageData, kind: str, rng: np.random.Generator, *,
                keep_label: bool = False):
    """One canary (image, label) of the given kind (module docstring). ``keep_label``: the
    canary takes the label of record 0, the record it replaces, so that only features change
    (what a features-only guarantee, labels soft, covers)."""
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
    else:
        raise InputError(f"canary must be one of {', '.join(CANARIES)}; got {kind!r}")
    if keep_label:
        y = int(data.y_train[0])
    return x, y


def lira_fit(sel_pos, sel_neg):
    """LiRA (Carlini et al. 2022), offline per-example form: Gaussians fitted to the in and out
    scores of the selection split; the statistic is their log density ratio."""
    from scipy import stats

    mi, si = float(np.mean(sel_pos)), float(np.std(sel_pos)) + 1e-9
    mo, so = float(np.mean(sel_neg)), float(np.std(sel_neg)) + 1e-9
    return lambda s: stats.norm.logpdf(s, mi, si) - stats.norm.logpdf(s, mo, so)


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


def _accountant(mech, delta):
    if mech is None:
        return None, "none (no noise: no guarantee)"
    from dpaccount.selection import tightest as tightest_result

    row = tightest_result(mech, delta)
    return row.epsilon, row.method


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


def shadow_audit(cfg: ModelAuditConfig, *, store=None, data: ImageData | None = None,
                 progress: bool = False, device: str = "auto", score: str = "loss",
                 confidence: float = 0.95, select_fraction: float = 0.25) -> dict:
    """Train ``cfg.models`` models per side (in blocks, resumable with ``store``) and audit."""
    check_audit_args(cfg, score=score, confidence=confidence, select_fraction=select_fraction,
                     store=store)
    dev = resolve_device(device)
    data = (data if data is not None else load_dataset(cfg.dataset, seed=0)).to(dev)
    n = int(data.x_train.shape[0])
    _check_run(cfg, data, n, "substitution")
    cx, cy = make_canary(data, cfg.canary, np.random.default_rng(cfg.seed),
                         keep_label=cfg.labels == "soft" and cfg.canary != "mislabeled")
    records = torch.cat([data.x_train, cx[None].to(dev)])
    labels = torch.cat([data.y_train, torch.tensor([cy], device=dev)])
    base = torch.arange(n, device=dev)
    with_canary = base.clone()
    with_canary[0] = n  # D: the canary substitutes for record 0
    st = Path(store) if store is not None else None
    if st is not None:
        st.mkdir(parents=True, exist_ok=True)
        _store_check(st, cfg)
    total = 2 * cfg.models
    n_blocks = -(-total // cfg.block)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="shadow models", unit="model", leave=False)
    scores, member, accs, releases = [], [], [], None
    try:
        for b in range(n_blocks):
            size = min(cfg.block, total - b * cfg.block)
            f = st / f"block-{b:05d}.npz" if st is not None else None
            if f is not None and f.exists():
                with np.load(f, allow_pickle=False) as z:
                    s_, m_, a_, rel = z["scores"], z["member"], z["accuracy"], int(z["releases"])
            else:
                seed = int(np.random.SeedSequence([cfg.seed, b]).generate_state(1)[0])
                m_ = (np.arange(b * cfg.block, b * cfg.block + size) % 2 == 0)  # alternate
                pools = torch.stack([with_canary if i else base for i in m_])
                model, rel = _train_block(cfg, data, records, labels, pools, seed, dev)
                s_ = -per_model_loss(model, cx[None].to(dev),
                                     torch.tensor([cy], device=dev))[:, 0].cpu().numpy()
                a_ = per_model_accuracy(model, data.x_test, data.y_test).cpu().numpy()
                if f is not None:
                    _save_block(f, scores=s_, member=m_, accuracy=a_, releases=rel,
                                seed=seed)
            scores.append(s_)
            member.append(m_)
            accs.append(a_)
            releases = rel
            if bar is not None:
                bar.update(size)
    finally:
        if bar is not None:
            bar.close()
    return _report(cfg, data, np.concatenate(scores), np.concatenate(member).astype(bool),
                   np.concatenate(accs), releases, n, score, confidence, select_fraction, st)


def _report(cfg, data, scores, member, accs, releases, n, score, confidence, select_fraction,
            st) -> dict:
    pos, neg = scores[member], scores[~member]
    fit = lira_fit if score == "lira" else None
    if score not in ("loss", "lira"):
        raise InputError(f"score must be 'loss' or 'lira'; got {score!r}")
    test = select_and_bound(pos, neg, delta=cfg.delta, confidence=confidence,
                            select_fraction=select_fraction, fit=fit,
                            rng=np.random.default_rng(cfg.seed))
    mech = _mechanism(cfg, data, n, releases, "substitution")
    upper, method = _accountant(mech, cfg.delta)
    n_cert = certifying_sizes(min(pos.size, neg.size), "split", select_fraction)
    out = {
        "command": "audit model",
        "kind": "shadow models",
        "method": f"audit: Clopper-Pearson lower bound, canary {score} score, threshold by "
                  "split",
        "bound": "lower",
        "epsilon_lower_bound": test.epsilon_lower_bound,
        "epsilon_upper_bound": upper,
        "upper_bound_method": method,
        "ceiling": ceiling(n_cert, n_cert, cfg.delta, confidence),
        "exceeds_upper_bound": upper is not None and test.epsilon_lower_bound > upper,
        "delta": cfg.delta,
        "confidence": confidence,
        "relation": "substitution",
        "sampler": "subsets",
        "releases": releases,
        "models_per_side": int(min(pos.size, neg.size)),
        "test_accuracy_mean": float(np.mean(accs)),
        "test": test.to_dict(),
        "config": asdict(cfg),
        "mechanism": None if mech is None else mech.to_dict(),
        "scores_in": pos.tolist(),
        "scores_out": neg.tolist(),
        "store": None if st is None else str(st),
    }
    if st is not None:
        atomic_write_bytes(st / "result.json", json.dumps(out, indent=1).encode())
    return out


def bound_from_store(store, *, score: str = "loss", confidence: float = 0.95,
                     select_fraction: float = 0.25, data: ImageData | None = None) -> dict:
    """Recompute the shadow-model bound from saved scores alone: no model is trained."""
    if score not in ("loss", "lira"):
        raise InputError(f"score must be 'loss' or 'lira'; got {score!r}")
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
    """Steinke-Nasr-Jagielski: ``canaries`` ood canaries (random binary images, random labels),
    each added with probability 1/2; one model; guesses on the top and bottom scores."""
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
    n_train = int(pool.shape[1])
    mech = _mechanism(cfg, data, n_train, releases, "add_remove")
    upper, method = _accountant(mech, cfg.delta)
    out = {
        "command": "audit model",
        "kind": "one run (Steinke, Nasr, Jagielski 2023)",
        "method": "audit: one-run p-value test with the delta term, guesses fixed in advance "
                  f"(Bonferroni over {len(guesses)})",
        "bound": "lower",
        "epsilon_lower_bound": res.epsilon_lower_bound,
        "epsilon_upper_bound": upper,
        "upper_bound_method": method,
        "exceeds_upper_bound": upper is not None and res.epsilon_lower_bound > upper,
        "delta": cfg.delta,
        "confidence": confidence,
        "relation": "add_remove",
        "sampler": "subsets",
        "releases": releases,
        "n_train": n_train,
        "test_accuracy": acc,
        "one_run": res.to_dict(),
        "config": asdict(cfg),
        "mechanism": None if mech is None else mech.to_dict(),
    }
    if store is not None:
        st = Path(store)
        st.mkdir(parents=True, exist_ok=True)
        _save_block(st / "one-run-scores.npz", scores=scores, included=included, seed=seed)
        atomic_write_bytes(st / "one-run-result.json", json.dumps(out, indent=1).encode())
    return out
