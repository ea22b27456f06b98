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
L1 from the one it replaces: the domain's worst case). With labels public (the default, as in
the training table) the soft label is released without noise and the guarantee (which accounts
the class counts it shows) is for substitutions that keep the label, so ``ood`` and ``corner``
canaries then take the label of record 0 and only the image changes; a ``mislabeled`` canary,
and the one-run audit's added canaries, need ``labels="private"`` (noised and counted in the
diameter) for a DP run.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from dpaccount import InstaHide, image_diameter
from dpaccount.files import atomic_write_bytes
from dpaccount.validate import check_delta
from dpaccount.audit.bounds import ceiling, certifying_sizes, select_and_bound
from dpaccount.audit.one_run import one_run_audit as _one_run

from .batched import per_model_accuracy, per_model_loss, train_batched
from .data import ImageData, load_dataset
from .train import resolve_device
from dpaccount.errors import InputError

__all__ = ["ModelAuditConfig", "make_canary", "shadow_audit", "bound_from_store",
           "one_run_audit", "lira_fit"]

CANARIES = ("mislabeled", "ood", "corner")


@dataclass(frozen=True)
class ModelAuditConfig:
    dataset: str = "digits"
    canary: str = "ood"
    k: int = 4
    noise: float = 0.0  # 0: undefended (mixup only if k > 1)
    labels: str = "public"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    hidden: int = 64
    models: int = 256  # per side
    block: int = 128  # models trained together
    delta: float = 1e-5
    seed: int = 0

    def __post_init__(self):
        if self.canary not in CANARIES:
            raise InputError(f"canary must be one of {', '.join(CANARIES)}; got {self.canary!r}")
        if self.labels not in ("public", "private"):
            raise InputError(f"labels must be 'public' or 'private'; got {self.labels!r}")
        if self.labels == "public" and self.noise > 0 and self.canary == "mislabeled":
            raise InputError("a mislabeled canary changes the label: with labels 'public' the "
                             "accountant does not cover it; use labels 'private' or another "
                             "canary")
        for name in ("k", "epochs", "batch_size", "hidden", "models", "block"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise InputError(f"{name} must be a positive integer; got {v!r}")
        if self.models < 2:
            raise InputError(f"models must be at least 2 per side; got {self.models}")
        if not (np.isfinite(self.noise) and self.noise >= 0):
            raise InputError(f"noise must be a finite number >= 0; got {self.noise!r}")
        check_delta(self.delta)


def make_canary(data: ImageData, kind: str, rng: np.random.Generator, *,
                keep_label: bool = False):
    """One canary (image, label) of the given kind (module docstring). ``keep_label``: the
    canary takes the label of record 0, the record it replaces, so that only features change
    (what a features-only guarantee, labels public, covers)."""
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
    noised = cfg.labels == "private"
    diameter = image_diameter(data.shape, data.value_range, labels=noised)
    if noised:
        return InstaHide(k=cfg.k, noise=cfg.noise, n=n, diameter=diameter, releases=releases,
                         sampler="subsets", relation=relation, labels="noised")
    # labels public: the soft label is released without noise (the canary keeps the label of
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


def _store_check(store: Path, cfg) -> None:
    meta = store / "audit.json"
    if meta.exists():
        try:
            old = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"store {str(store)!r} has a malformed audit.json ({exc})") from None
        if old.get("config") != json.loads(_config_json(cfg)):
            raise InputError(f"store {str(store)!r} holds a different audit; use another store "
                             "or delete it")
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
        label_privacy=cfg.labels if cfg.noise > 0 else "public")
    return model, releases


def shadow_audit(cfg: ModelAuditConfig, *, store=None, data: ImageData | None = None,
                 progress: bool = False, device: str = "auto", score: str = "loss",
                 confidence: float = 0.95, select_fraction: float = 0.25) -> dict:
    """Train ``cfg.models`` models per side (in blocks, resumable with ``store``) and audit."""
    dev = resolve_device(device)
    data = (data if data is not None else load_dataset(cfg.dataset, seed=0)).to(dev)
    n = int(data.x_train.shape[0])
    cx, cy = make_canary(data, cfg.canary, np.random.default_rng(cfg.seed),
                         keep_label=cfg.labels == "public" and cfg.canary != "mislabeled")
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
    st = Path(store)
    meta = st / "audit.json"
    if not meta.exists():
        raise InputError(f"{str(st)!r} holds no audit (audit.json is missing)")
    cfg = ModelAuditConfig(**json.loads(meta.read_text())["config"])
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
    if cfg.noise > 0 and cfg.labels == "public":
        raise InputError("one-run canaries are added with their labels: with labels 'public' "
                         "the accountant does not cover that; use labels 'private'")
    dev = resolve_device(device)
    data = (data if data is not None else load_dataset(cfg.dataset, seed=0)).to(dev)
    rng = np.random.default_rng(cfg.seed)
    n = int(data.x_train.shape[0])
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
