"""The training loop: DP-InstaHide augmentation, a small model, and the epsilon of what ran.

The loop draws every mixed sample through a sampler of :mod:`training.samplers`, so it knows the
number of releases ``T`` it actually made. At the end it describes the run to dpaccount as an
:class:`dpaccount.InstaHide` (k, b, N, the L1 diameter from the data's shape and value range, the
sampler, T) and reports dpaccount's tightest upper bound for it
through a :class:`dpaccount.step.StepAccountant` that the loop steps with every batch of
releases and that is saved with each checkpoint (its bound is :func:`dpaccount.tightest`, what
``dpaccount epsilon`` prints): there is no privacy arithmetic here. With ``noise = 0`` (mixup only, or no augmentation) the run is not
differentially private and the report says so instead of giving a number.

Checkpoints (one per finished epoch, written atomically) hold weights, optimizer state,
generator state and history as tensors and plain types only, and are loaded with
``torch.load(weights_only=True)``: no pickled code is executed. A run resumed from one gives the
same result as an uninterrupted run.
"""

from __future__ import annotations

import io
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from dpaccount import InstaHide, image_diameter
from dpaccount.files import atomic_write_bytes, check_output_dir
from dpaccount.step import StepAccountant
from dpaccount.validate import check_computable

from .augment import InstaHideAugment
from .config import TrainConfig
from .data import ImageData, load_dataset
from .models import build_model
from .samplers import torch_sampler
from dpaccount.errors import InputError

__all__ = ["TrainConfig", "train", "accountant_of", "mechanism_of", "epsilon_report",
           "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """'auto' (CUDA when torch sees one), 'cpu' or 'cuda' (refused when absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was asked for but torch sees no CUDA device")
    return torch.device(name)


def accountant_of(cfg: TrainConfig, data: ImageData) -> StepAccountant | None:
    """A step-wise accountant for the run described to dpaccount (k, b, N, the L1 diameter from
    the data's shape and value range, the sampler, what is released beside the image), or None
    when it adds no noise."""
    eff = cfg.effective
    if eff.noise == 0:
        return None
    noised = eff.labels == "noised"
    diameter = image_diameter(data.shape, data.value_range, labels=noised)
    # soft labels: the accountant needs the class sizes (the label shows the class counts)
    sizes = None if noised else [int(c) for c in
                                 torch.bincount(data.y_train.cpu()).tolist() if c > 0]
    return StepAccountant(k=eff.k, noise=eff.noise, n=int(data.x_train.shape[0]),
                          diameter=diameter, sampler=eff.sampler, relation="substitution",
                          labels="noised" if noised else "soft", class_sizes=sizes)


def mechanism_of(cfg: TrainConfig, data: ImageData, releases: int) -> InstaHide | None:
    """The dpaccount description of a run of ``releases`` releases, or None without noise."""
    acc = accountant_of(cfg, data)
    return None if acc is None else acc.step(releases=int(releases)).event


def _sync(accountant: StepAccountant | None, sampler) -> None:
    """Tell the accountant about the releases the sampler drew since the last call."""
    if accountant is not None and sampler.releases > accountant.releases:
        accountant.step(releases=sampler.releases - accountant.releases)


def epsilon_report(cfg: TrainConfig, accountant: StepAccountant | None,
                   releases: int) -> dict:
    """The accountant's tightest upper bound for what ran, labelled; or why there is none."""
    if accountant is None:
        return {"epsilon": None, "delta": cfg.delta, "method": "none", "bound": "none",
                "relation": "substitution", "sampler": cfg.effective.sampler,
                "releases": int(releases), "mechanism": None,
                "note": "no noise was added: the run is not differentially private"}
    out = accountant.get_bound(cfg.delta).to_dict()
    out["mechanism"] = accountant.event.to_dict()
    out["accountant_state"] = accountant.state_dict()
    return out


def clean_soft_labels(soft: torch.Tensor) -> torch.Tensor:
    """Noisy (private) soft labels can be negative: clip at 0 and renormalise over the last
    axis, uniform where nothing is left (post-processing: it costs no privacy)."""
    soft = soft.clamp_min(0)
    total = soft.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, soft / total.clamp_min(1e-12),
                       torch.full_like(soft, 1.0 / soft.shape[-1]))


def _soft_cross_entropy(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    soft = clean_soft_labels(soft)
    return -(soft * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


@torch.no_grad()
def evaluate(model, x, y, batch: int = 1024) -> float:
    model.eval()
    correct = 0
    for s in range(0, x.shape[0], batch):
        correct += (model(x[s:s + batch]).argmax(1) == y[s:s + batch]).sum().item()
    model.train()
    return correct / x.shape[0]


@dataclass
class _State:
    epoch: int = 0
    releases: int = 0
    history: list = field(default_factory=list)
    accountant: dict | None = None  # the step-wise accountant's state_dict


def _config_key(cfg: TrainConfig) -> str:
    return json.dumps(asdict(cfg), sort_keys=True)


#: fields a resumed run may change: more epochs continue the run where it stopped
_RESUMABLE = ("epochs",)


def _config_differences(saved: dict, cfg: TrainConfig) -> list[str]:
    """The fields (other than :data:`_RESUMABLE`) in which ``cfg`` differs from a checkpoint's
    saved configuration, as ``"name (checkpoint X, now Y)"``."""
    now = asdict(cfg)
    out = []
    for name in sorted(set(saved) | set(now)):
        if name in _RESUMABLE:
            continue
        old, new = saved.get(name, "<missing>"), now.get(name, "<missing>")
        if old != new:
            out.append(f"{name} (checkpoint {old!r}, now {new!r})")
    return out


def _save_checkpoint(path: Path, cfg, model, opt, gen, state: _State) -> None:
    blob = {
        "config": _config_key(cfg),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "epoch": state.epoch,
        "releases": state.releases,
        "history": json.dumps(state.history),
        "accountant": json.dumps(state.accountant),
    }
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path, cfg, model, opt, gen, device) -> _State:
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or unsafe file
        raise InputError(f"checkpoint {str(path)!r} cannot be loaded safely "
                         f"({type(exc).__name__}); delete it to start over") from None
    try:
        saved = json.loads(blob["config"]) if isinstance(blob, dict) else None
    except (KeyError, TypeError, ValueError):
        saved = None
    if not isinstance(saved, dict):
        raise InputError(f"checkpoint {str(path)!r} holds no readable configuration; use "
                         "another --checkpoint-dir or delete it")
    diff = _config_differences(saved, cfg)
    if diff:
        raise InputError(f"checkpoint {str(path)!r} is from a different configuration: "
                         f"{'; '.join(diff)}; use another --checkpoint-dir or delete it "
                         "(only epochs may change, to continue the run)")
    done = int(blob["epoch"])
    if done > cfg.epochs:
        raise InputError(f"checkpoint {str(path)!r} has {done} epochs done, more than epochs="
                         f"{cfg.epochs}; ask for at least {done} epochs to resume it")
    model.load_state_dict(blob["model"])
    opt.load_state_dict(blob["optimizer"])
    gen.set_state(blob["generator"].cpu())
    return _State(int(blob["epoch"]), int(blob["releases"]), json.loads(blob["history"]),
                  json.loads(blob.get("accountant", "null")))


def train(cfg: TrainConfig, *, data: ImageData | None = None, checkpoint_dir=None,
          progress: bool = False, stop_after_epoch: int | None = None,
          return_model: bool = False):
    """Train one model; return the metrics (``test_accuracy``, the accountant's ``epsilon`` for
    the releases drawn, with its ``delta``, method, relation and sampler; history; timing).

    ``checkpoint_dir``: save after every epoch and resume from the last checkpoint there.
    ``stop_after_epoch``: stop early (as an interruption would), for tests of resumption.
    ``return_model``: return ``(metrics, model)`` (for evaluations such as attack success)."""
    eff = cfg.effective
    if checkpoint_dir is not None:
        check_output_dir("checkpoint_dir", checkpoint_dir)
    device = resolve_device(cfg.device)
    data = (data if data is not None else load_dataset(cfg.dataset, cfg.data_dir, cfg.seed))
    data = data.to(device)
    n = int(data.x_train.shape[0])
    if eff.k > n:
        raise InputError(f"k must be at most the training set size; got k={eff.k}, N={n}")
    planned = mechanism_of(cfg, data, releases=cfg.epochs * n)
    if planned is not None:  # the epsilon of the whole run must be computable: checked now
        check_computable(planned)
    torch.manual_seed(cfg.seed)  # model initialisation
    model = build_model(cfg.model, data.shape, data.num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed + 1)
    aug = InstaHideAugment(eff.k, eff.noise, generator=gen,
                           clip=data.value_range if cfg.clip else None, labels=eff.labels,
                           num_classes=data.num_classes)
    sampler_cls = torch_sampler(eff.sampler)
    sampler = sampler_cls(n, eff.k, cfg.batch_size, gen)
    state = _State()
    ckpt = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir is not None else None
    resumed_from = None
    if ckpt is not None and ckpt.exists():
        state = _load_checkpoint(ckpt, cfg, model, opt, gen, device)
        resumed_from = state.epoch
    sampler.releases = state.releases
    accountant = accountant_of(cfg, data)
    if accountant is not None and state.accountant is not None:
        accountant.load_state_dict(state.accountant)
        if accountant.releases != state.releases:
            raise InputError(f"checkpoint {str(ckpt)!r} is inconsistent: its accountant counts "
                             f"{accountant.releases} releases, its sampler {state.releases}")
    onehot = F.one_hot(data.y_train, data.num_classes).to(data.x_train.dtype)
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, initial=state.epoch, desc="train", unit="epoch",
                   file=sys.stderr, leave=False)
    try:
        while state.epoch < cfg.epochs:
            total, steps = 0.0, 0
            for idx in sampler.epoch():
                x, soft = aug.mix_indices(data.x_train, idx, onehot)
                loss = _soft_cross_entropy(model(x), soft)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item()
                steps += 1
                _sync(accountant, sampler)
            _sync(accountant, sampler)
            state.epoch += 1
            state.releases = sampler.releases
            state.accountant = None if accountant is None else accountant.state_dict()
            state.history.append({"epoch": state.epoch, "train_loss": total / steps})
            if ckpt is not None:
                _save_checkpoint(ckpt, cfg, model, opt, gen, state)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total / steps:.3f}")
            if stop_after_epoch is not None and state.epoch >= stop_after_epoch:
                break
    finally:
        if bar is not None:
            bar.close()
    acc = evaluate(model, data.x_test, data.y_test)
    report = epsilon_report(cfg, accountant, state.releases)
    metrics = {
        "command": "train",
        "dataset": data.name,
        "model": cfg.model,
        "config": asdict(cfg),
        "n_train": n,
        "n_test": int(data.x_test.shape[0]),
        "epochs_done": state.epoch,
        "test_accuracy": acc,
        "train_loss": state.history[-1]["train_loss"] if state.history else None,
        "history": state.history,
        "epsilon": report["epsilon"],
        "delta": report["delta"],
        "privacy": report,
        "releases": state.releases,
        "device": str(device),
        "resumed_from_epoch": resumed_from,
        "seconds": time.perf_counter() - t0,
    }
    return (metrics, model) if return_model else metrics
