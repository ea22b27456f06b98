"""Poisoning and backdoor attacks, the defenses to compare, and a resumable evaluation grid.

Attacks (each replaces p training records in place, so the poisoned set is a substitution
neighbour p steps away from the clean one: the relation of the accountant and of
``dpaccount certify``):
- ``backdoor`` (BadNets, Gu et al. 2017): p images of other classes get a bright square trigger
  in the bottom-right corner (side ``budget`` pixels) and the target label. Success: triggered test
  images of other classes classified as the target.
- ``label_flip``: p images of the source class relabelled as the target. Success: clean test
  images of the source class classified as the target.
- ``clean_label`` (feature collision in pixel space, after Shafahi et al. 2018): p images of a
  base class are moved towards one target test image of another class, within an L-infinity ball
  of radius ``budget``, and keep their correct (base) label. Success: the target image
  classified as the base class (0 or 1 per run).

Defenses, all under the same training budget (model, epochs, batch size, learning rate): none;
mixup only (k = 2, 4); Laplace noise only; DP-InstaHide over a grid of k and b; DP-SGD through
Opacus (the ``dpsgd`` extra), whose noise multiplier is chosen in the config to reach a
comparable clean accuracy.

Every cell runs ``seeds`` times: a poisoned run (attack success, clean accuracy) and an
unpoisoned run (the attack's success rate without poisons, which the certificate needs). For the
DP-InstaHide runs the group-privacy certificate for p poisons comes from
``dpaccount.certify``; results are written after every run (JSON, atomically) and a rerun
skips the runs already there.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from dpaccount.files import atomic_write_bytes, check_output_file

from .data import ImageData, load_dataset
from .train import TrainConfig, train
from dpaccount.errors import InputError
from dpaccount.executors import check_executor_args, make_executor

__all__ = ["poison", "attack_success", "DEFAULT_CONFIG", "run_grid", "summarise", "load_config",
           "plot_results", "format_table", "check_config", "read_results", "run_cell",
           "cell_key"]

ATTACKS = ("backdoor", "label_flip", "clean_label")
#: attacks whose poisons carry another label than the records they replace
LABEL_CHANGING = ("backdoor", "label_flip")

#: The embedded grid of `dpaccount poison-eval` (the table of docs/poisoning.md).
DEFAULT_CONFIG = {
    "dataset": "digits",
    "model": "cnn",
    "epochs": 15,
    "batch_size": 64,
    "lr": 2e-3,
    "seeds": 5,
    "delta": 1e-5,
    "target": 0,
    "attacks": [
        {"name": "backdoor", "poisons": 20, "budget": 2},
        {"name": "label_flip", "poisons": 80, "source": 1},
        {"name": "clean_label", "poisons": 60, "budget": 0.6},
    ],
    "defenses": [
        {"name": "none"},
        {"name": "mixup", "k": 2},
        {"name": "mixup", "k": 4},
        {"name": "noise", "noise": 1.0},
        {"name": "dp-instahide", "k": 2, "noise": 1.0},
        {"name": "dp-instahide", "k": 4, "noise": 1.0},
        {"name": "dp-instahide", "k": 4, "noise": 2.0},
        {"name": "dp-instahide", "k": 4, "noise": 4.0},
        {"name": "dpsgd", "noise_multiplier": 1.0, "clip": 1.0},
    ],
}


def load_config(path) -> dict:
    """A grid from a JSON file; keys left out take the embedded default's values."""
    p = Path(path)
    try:
        user = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"config file {str(p)!r} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"config file {str(p)!r} is not valid JSON ({exc})") from None
    if not isinstance(user, dict):
        raise InputError(f"config file {str(p)!r} must hold a JSON object")
    unknown = set(user) - set(DEFAULT_CONFIG)
    if unknown:
        raise InputError(f"config file {str(p)!r} has unknown keys: {', '.join(sorted(unknown))}")
    cfg = dict(DEFAULT_CONFIG)
    cfg.update(user)
    return check_config(cfg, where=f"config file {str(p)!r}")


def _positive_int(where: str, key: str, v) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise InputError(f"{where}: {key} must be a positive integer; got {v!r}")


def check_config(cfg: dict, where: str = "config") -> dict:
    """Every key of a grid checked, each failure one line naming the key and the value."""
    from dpaccount.validate import check_delta

    if cfg["dataset"] not in ("digits", "synthetic"):
        raise InputError(f"{where}: dataset must be 'digits' or 'synthetic'; got "
                         f"{cfg['dataset']!r}")
    if cfg["model"] not in ("mlp", "cnn"):
        raise InputError(f"{where}: model must be 'mlp' or 'cnn'; got {cfg['model']!r}")
    for key in ("epochs", "batch_size", "seeds"):
        _positive_int(where, key, cfg[key])
    t = cfg["target"]
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise InputError(f"{where}: target must be a class index (integer >= 0); got {t!r}")
    lr = cfg["lr"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < lr < math.inf):
        raise InputError(f"{where}: lr must be a positive finite number; got {lr!r}")
    try:
        check_delta(cfg["delta"])
    except (TypeError, ValueError):
        raise InputError(f"{where}: delta must be in the open interval (0, 1); got "
                         f"{cfg['delta']!r}") from None
    for key in ("attacks", "defenses"):
        if not isinstance(cfg[key], list) or not cfg[key] or \
                not all(isinstance(x, dict) for x in cfg[key]):
            raise InputError(f"{where}: {key} must be a non-empty list of objects; got "
                             f"{cfg[key]!r}")
    for a in cfg["attacks"]:
        if a.get("name") not in ATTACKS:
            raise InputError(f"attack name must be one of {', '.join(ATTACKS)}; got "
                             f"{a.get('name')!r}")
        _positive_int(where, f"attack {a['name']!r}: poisons", a.get("poisons"))
    for d in cfg["defenses"]:
        if d.get("name") not in ("none", "mixup", "noise", "dp-instahide", "dpsgd"):
            raise InputError(f"defense name must be none, mixup, noise, dp-instahide or dpsgd; "
                             f"got {d.get('name')!r}")
        need = {"mixup": ("k",), "noise": ("noise",), "dp-instahide": ("k", "noise"),
                "dpsgd": ("noise_multiplier", "clip")}.get(d["name"], ())
        for key in need:
            v = d.get(key)
            if key == "k":
                _positive_int(where, f"defense {d['name']!r}: k", v)
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or \
                    not (0 < v < math.inf):
                raise InputError(f"{where}: defense {d['name']!r}: {key} must be a positive "
                                 f"finite number; got {v!r}")
    return cfg


def _trigger(x: torch.Tensor, size: int) -> torch.Tensor:
    x = x.clone()
    x[..., -size:, -size:] = 1.0
    return x


def poison(data: ImageData, attack: dict, target: int, seed: int) -> tuple[ImageData, dict]:
    """The poisoned training set (same size, p records replaced) and what success means."""
    rng = np.random.default_rng(seed)
    name, p = attack["name"], int(attack["poisons"])
    x, y = data.x_train.clone(), data.y_train.clone()
    if name == "backdoor":
        size = int(attack.get("budget", 2))
        idx = rng.choice(np.flatnonzero(y.numpy() != target), p, replace=False)
        x[idx] = _trigger(x[idx], size)
        y[idx] = target
        info = {"trigger": size}
    elif name == "label_flip":
        src = int(attack.get("source", 1))
        idx = rng.choice(np.flatnonzero(y.numpy() == src), p, replace=False)
        y[idx] = target
        info = {"source": src}
    elif name == "clean_label":
        eps = float(attack.get("budget", 0.3))
        # the target: the first test image whose class is not the base class
        base = target
        t_idx = int(np.flatnonzero(data.y_test.numpy() != base)[0])
        xt = data.x_test[t_idx]
        idx = rng.choice(np.flatnonzero(y.numpy() == base), p, replace=False)
        x[idx] = (x[idx] + (xt - x[idx]).clamp(-eps, eps)).clamp(0.0, 1.0)
        info = {"target_index": t_idx, "base_class": base, "linf": eps}
    else:
        raise InputError(f"attack name must be one of {', '.join(ATTACKS)}; got {name!r}")
    poisoned = ImageData(data.name, x, y, data.x_test, data.y_test, data.value_range,
                         data.num_classes)
    return poisoned, {"attack": name, "poisons": p, "target": target, **info}


@torch.no_grad()
def attack_success(model, data: ImageData, info: dict) -> float:
    """The attack's success rate on the test set (module docstring)."""
    model.eval()
    name, target = info["attack"], info["target"]
    xt, yt = data.x_test, data.y_test
    if name == "backdoor":
        keep = yt != target
        pred = model(_trigger(xt[keep], info["trigger"])).argmax(1)
        out = float((pred == target).float().mean())
    elif name == "label_flip":
        keep = yt == info["source"]
        out = float((model(xt[keep]).argmax(1) == target).float().mean())
    else:
        i = info["target_index"]
        out = float(model(xt[i:i + 1]).argmax(1).item() == info["base_class"])
    model.train()
    return out


def _train_config(grid: dict, defense: dict, seed: int) -> TrainConfig:
    common = dict(dataset=grid["dataset"], model=grid["model"], epochs=grid["epochs"],
                  batch_size=grid["batch_size"], lr=grid["lr"], delta=grid["delta"], seed=seed,
                  device=grid.get("device", "auto"))
    name = defense["name"]
    if name == "none":
        return TrainConfig(augment=False, **common)
    if name == "mixup":
        return TrainConfig(k=int(defense["k"]), noise=0.0, **common)
    if name == "noise":
        return TrainConfig(k=1, noise=float(defense["noise"]), **common)
    return TrainConfig(k=int(defense["k"]), noise=float(defense["noise"]), **common)


def _defense_label(d: dict) -> str:
    n = d["name"]
    if n == "mixup":
        return f"mixup only k={d['k']}"
    if n == "noise":
        return f"noise only b={d['noise']:g}"
    if n == "dp-instahide":
        return f"DP-InstaHide k={d['k']} b={d['noise']:g}"
    if n == "dpsgd":
        return f"DP-SGD sigma={d['noise_multiplier']:g} C={d['clip']:g}"
    return "none"


def _run_one(grid, defense, data, seed):
    """Train one model on ``data``; return (clean accuracy, model, privacy dict)."""
    if defense["name"] == "dpsgd":
        from .dpsgd import train_dpsgd

        return train_dpsgd(grid, defense, data, seed)
    cfg = _train_config(grid, defense, seed)
    m, model = train(cfg, data=data, return_model=True)
    return m["test_accuracy"], model, m["privacy"]


def _refresh_privacy(results: dict, data: ImageData) -> int:
    """Keep every stored run's privacy what the accountant says today. Runs recorded before the
    accountant covered the released soft label (their mechanism has no ``labels``) carry an
    epsilon that is too small; runs recorded before the accountant layer may carry a fallback
    under another method's name. Recompute the privacy of every DP-InstaHide run for what it
    released (soft labels, with the class sizes of its poisoned training set, rebuilt from the
    attack and seed without training) and store it where the number or its method changed; the
    accuracies and successes stay. Returns how many changed."""
    from .train import accountant_of, epsilon_report

    changed = 0
    for key, r in results.items():
        mech = r.get("mechanism")
        if mech is None or r.get("privacy_method") == "opacus":
            continue
        attack, defense, seed, common = json.loads(key)
        if common["dataset"] != data.name:
            continue
        pdata, _ = poison(data, attack, common["target"], seed)
        cfg = _train_config(common, defense, seed)
        acc = accountant_of(cfg, pdata)
        if acc is not None:
            acc.step(releases=int(mech["releases"]))
        privacy = epsilon_report(cfg, acc, mech["releases"])
        if ("labels" in mech and privacy["epsilon"] == r.get("epsilon")
                and privacy["method"] == r.get("privacy_method")):
            continue
        r.update(epsilon=privacy["epsilon"], delta=privacy["delta"],
                 privacy_method=privacy["method"], relation=privacy["relation"],
                 sampler=privacy["sampler"], mechanism=privacy.get("mechanism"),
                 privacy_recomputed=True)
        changed += 1
    return changed


def read_results(path) -> dict:
    """The results saved by an earlier run (to resume), or ``{}`` when the file does not exist;
    a file that is not a JSON object of results is refused by name."""
    path = Path(path)
    if not path.exists():
        return {}
    if not path.is_file():
        raise InputError(f"results file {str(path)!r} is not a regular file")
    try:
        results = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"results file {str(path)!r} is not valid JSON "
                         f"({type(exc).__name__}); delete it or use another --out") from None
    if not isinstance(results, dict):
        raise InputError(f"results file {str(path)!r} is malformed (not a JSON object); delete "
                         "it or use another --out")
    return results


def cell_key(grid: dict, attack: dict, defense: dict, seed: int) -> str:
    """The name of a grid cell in the results file (and of its unit): attack, defense, seed and
    the settings every cell shares, as canonical JSON."""
    return json.dumps([attack, defense, seed, {k: grid[k] for k in (
        "dataset", "model", "epochs", "batch_size", "lr", "delta", "target")}], sort_keys=True)


def run_cell(context: dict, key: str) -> dict:
    """One unit of the grid (:mod:`dpaccount.executors`): the cell named by ``key`` (attack,
    defense, seed and the common settings), a poisoned and a clean training seeded by the
    cell's seed whatever process runs it. Returns the cell's result record."""
    attack, defense, seed, _ = json.loads(key)
    grid, data = context["grid"], context["data"]
    grid = dict(grid, device=context["device"])
    pdata, info = poison(data, attack, grid["target"], seed)
    acc, model, privacy = _run_one(grid, defense, pdata, seed)
    success = attack_success(model, data, info)
    clean_acc, clean_model, _ = _run_one(grid, defense, data, seed)
    clean_success = attack_success(clean_model, data, info)
    return {"attack": attack["name"], "poisons": info["poisons"],
            "defense": _defense_label(defense), "seed": seed,
            "accuracy": acc, "success": success,
            "clean_accuracy": clean_acc, "clean_success": clean_success,
            "epsilon": privacy["epsilon"], "delta": privacy["delta"],
            "privacy_method": privacy["method"],
            "relation": privacy["relation"], "sampler": privacy["sampler"],
            "mechanism": privacy.get("mechanism")}


def run_grid(grid: dict, out_path, *, progress: bool = False, data: ImageData | None = None,
             log=print, executor="local", ray_address: str | None = None,
             device: str = "auto") -> dict:
    """Run every (attack, defense, seed) cell, poisoned and clean, saving after each cell.
    ``executor`` runs the cells (:mod:`dpaccount.executors`): ``"local"``, ``"ray"`` (a local
    Ray runtime, or the cluster at ``ray_address``) or an executor object; each cell asks Ray
    for a GPU when ``device`` is ``"cuda"``. The results are the same for the same seeds under
    any executor (on the same device)."""
    check_executor_args(executor, ray_address)
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda; got {device!r}")
    out_path = check_output_file("results file", out_path)
    results = read_results(out_path)
    ex = make_executor(executor, ray_address)
    if ex.name == "local" and device == "cuda":
        from .train import resolve_device

        resolve_device(device)  # refused here, before any training, when torch sees no GPU
    with ex:  # the executor is up (a cluster reached) before any training
        ex.require(num_gpus=1 if device == "cuda" else 0)  # before anything is written
        return _run_cells(grid, ex, out_path, results, data, progress, log, device)


def _run_cells(grid, ex, out_path, results, data, progress, log, device) -> dict:
    data = data if data is not None else load_dataset(grid["dataset"])
    if _refresh_privacy(results, data):
        atomic_write_bytes(out_path, json.dumps(results, indent=1).encode())
    jobs = [(a, d, s) for a in grid["attacks"] for d in grid["defenses"]
            for s in range(grid["seeds"])]
    keys = [cell_key(grid, a, d, s) for a, d, s in jobs]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="poison-eval", unit="cell", leave=False)
    todo = [k for k in dict.fromkeys(keys) if k not in results]
    if bar is not None:
        bar.update(len(keys) - len(todo))

    def keep(key: str, record: dict) -> None:
        results[key] = record
        atomic_write_bytes(out_path, json.dumps(results, indent=1).encode())
        if log is not None and bar is None:
            log(f"{record['attack']:11s} {record['defense']:28s} seed {record['seed']}: "
                f"accuracy {record['accuracy']:.3f}, success {record['success']:.3f}")
        if bar is not None:
            bar.update(1)

    def label(key: str) -> str:
        attack, defense, seed, _ = json.loads(key)
        return f"cell {attack['name']} / {_defense_label(defense)} / seed {seed}"

    try:
        ex.run(run_cell, {"grid": grid, "data": data, "device": device}, todo, keep,
               label=label, num_gpus=1 if device == "cuda" and ex.name == "ray" else 0)
    finally:
        if bar is not None:
            bar.close()
    return results


def _mean_ci(xs, conf=0.95):
    """Mean and a t-interval half-width over seeds (the seeds are the independent units)."""
    from scipy import stats

    xs = np.asarray(xs, dtype=float)
    if xs.size < 2:
        return float(xs.mean()), float("nan")
    half = stats.t.ppf(0.5 + conf / 2, xs.size - 1) * xs.std(ddof=1) / math.sqrt(xs.size)
    return float(xs.mean()), float(half)


def summarise(results: dict) -> list[dict]:
    """One row per (attack, defense): means with 95% t-intervals over seeds, epsilon, and the
    group-privacy certificate for the attack's p poisons (DP-InstaHide rows)."""
    from dpaccount import InstaHide
    from dpaccount.certificates import certify

    cells = {}
    for r in results.values():
        cells.setdefault((r["attack"], r["defense"]), []).append(r)
    rows = []
    for (attack, defense), rs in cells.items():
        acc, acc_h = _mean_ci([r["accuracy"] for r in rs])
        suc, suc_h = _mean_ci([r["success"] for r in rs])
        clean_suc = float(np.mean([r["clean_success"] for r in rs]))
        row = {"attack": attack, "defense": defense, "poisons": rs[0]["poisons"],
               "seeds": len(rs), "accuracy": acc, "accuracy_ci": acc_h, "success": suc,
               "success_ci": suc_h, "clean_success": clean_suc, "epsilon": rs[0]["epsilon"],
               "delta": rs[0]["delta"], "privacy_method": rs[0]["privacy_method"],
               "relation": rs[0]["relation"], "sampler": rs[0]["sampler"],
               "certificate": None, "certificate_vacuous": None}
        mech = rs[0].get("mechanism")
        row["certificate_note"] = None
        if mech is not None and rs[0]["privacy_method"] != "opacus":
            # results written before the labels were recorded released soft labels
            fields = {k: mech.get(k) for k in ("k", "noise", "n", "diameter", "releases",
                                               "sampler", "relation", "labels", "class_sizes",
                                               "norm")}
            fields["labels"] = fields["labels"] or "soft"
            m = InstaHide(**fields)
            if m.labels.value == "soft" and attack in LABEL_CHANGING:
                # the guarantee with un-noised soft labels is for substitutions that keep the
                # label: poisons that change labels are not covered by it
                row["certificate_note"] = ("not covered: the attack changes labels and the soft "
                                           "label is released without noise")
            else:
                cert = certify(m, rs[0]["poisons"], min(1.0, clean_suc))[0]
                row["certificate"] = cert.bound
                row["certificate_vacuous"] = cert.vacuous
        rows.append(row)
    return rows



def plot_results(rows: list[dict], path) -> Path:
    """Attack success against clean accuracy, one point per defense setting, one panel per
    attack, with 95% intervals over seeds."""
    from dpaccount.audit.plot import png_path, pyplot, save_figure

    path = png_path(path)
    plt = pyplot()
    attacks = sorted({r["attack"] for r in rows})
    fig, axes = plt.subplots(1, len(attacks), figsize=(4.6 * len(attacks), 4.4), dpi=110,
                             squeeze=False)
    for ax, attack in zip(axes[0], attacks):
        for r in sorted((r for r in rows if r["attack"] == attack), key=lambda r: r["defense"]):
            ax.errorbar(r["accuracy"], r["success"], xerr=r["accuracy_ci"],
                        yerr=r["success_ci"], fmt="o", ms=5, capsize=2, label=r["defense"])
        ax.set_xlabel("clean test accuracy")
        ax.set_ylabel("attack success")
        ax.set_ylim(-0.05, 1.05)
        p = next(r["poisons"] for r in rows if r["attack"] == attack)
        ax.set_title(f"{attack}, {p} poisons", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return save_figure(fig, plt, path)


def format_table(rows: list[dict]) -> str:
    """The Markdown table of the evaluation (95% t-intervals over seeds)."""
    lines = ["| attack (poisons) | defense | clean accuracy | attack success | success without "
             "poisons | epsilon (upper bound) | group-privacy certificate on success |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["attack"], r["defense"])):
        if r["epsilon"] is None:
            eps = "none (not private)"
        else:
            eps = (f"{r['epsilon']:.4g} ({r['privacy_method']}, {r['relation']}, sampler "
                   f"{r['sampler']}, delta {r['delta']:g})")
        if r["certificate"] is None:
            cert = "n/a" if r["epsilon"] is None or r["privacy_method"] == "opacus" else ""
            if r["privacy_method"] == "opacus":
                cert = "not computed (Opacus's accountant)"
            elif r.get("certificate_note"):
                cert = r["certificate_note"]
        else:
            cert = "VACUOUS (>= 1)" if r["certificate_vacuous"] else f"<= {r['certificate']:.4g}"
        lines.append(f"| {r['attack']} ({r['poisons']}) | {r['defense']} | "
                     f"{r['accuracy']:.3f} +- {r['accuracy_ci']:.3f} | "
                     f"{r['success']:.3f} +- {r['success_ci']:.3f} | {r['clean_success']:.3f} | "
                     f"{eps} | {cert} |")
    return "\n".join(lines)
