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
           "cell_key", "check_against_data", "COLLAPSE_FLOOR", "success_text",
           "craft", "craft_key", "craft_unit", "crafted_path", "read_crafted", "CRAFTED"]

ATTACKS = ("backdoor", "label_flip", "clean_label", "gradient_matching", "feature_collision")
#: attacks whose poisons carry another label than the records they replace
LABEL_CHANGING = ("backdoor", "label_flip")

#: clean test accuracy below which a trained model counts as collapsed (digits has 10 classes:
#: chance is 0.1, every defense in the table that learns reaches 0.6 or more)
COLLAPSE_FLOOR = 0.5

#: The embedded grid of `dpaccount poison-eval` (the table of docs/poisoning.md).
DEFAULT_CONFIG = {
    "dataset": "digits",
    # the extracted CIFAR-10 batches folder, for "dataset": "cifar10" (nothing is downloaded)
    "data_dir": None,
    "model": "cnn",
    "epochs": 15,
    "batch_size": 64,
    "lr": 2e-3,
    "seeds": 5,
    "delta": 1e-5,
    "target": 0,
    # a run whose clean test accuracy is below this has collapsed: its "success" is not an
    # attack's (a model predicting the target for everything "succeeds" on every input)
    "collapse_floor": COLLAPSE_FLOOR,
    "attacks": [
        {"name": "backdoor", "poisons": 20, "budget": 2},
        {"name": "label_flip", "poisons": 80, "source": 1},
        {"name": "clean_label", "poisons": 60, "budget": 0.6},
        # Witches' Brew and Poison Frogs at training.attacks.DIGITS_SETTING: on digits, most
        # seeds succeed undefended only at a budget this large (docs/poisoning.md)
        {"name": "gradient_matching", "poisons": 14, "budget": 0.75},
        {"name": "feature_collision", "poisons": 14, "budget": 0.75},
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
    cfg = dict(DEFAULT_CONFIG)
    cfg.update(user)
    return check_config(cfg, where=f"config file {str(p)!r}")


def _positive_int(where: str, key: str, v, maximum: int | None = None) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise InputError(f"{where}: {key} must be a positive integer; got {v!r}")
    if maximum is not None and v > maximum:
        raise InputError(f"{where}: {key} must be at most {maximum}; got {v!r}")


def _positive_number(where: str, key: str, v, maximum: float = math.inf) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < math.inf) or \
            v > maximum:
        upto = "" if maximum == math.inf else f" at most {maximum:g}"
        raise InputError(f"{where}: {key} must be a positive finite number{upto}; got {v!r}")


def _class_index(where: str, key: str, v, classes: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not (0 <= v < classes):
        raise InputError(f"{where}: {key} must be a class index of the dataset (0 to "
                         f"{classes - 1}); got {v!r}")


#: the keys each attack takes (beyond ``name``), with their checks: (kind, bound)
ATTACK_KEYS = {
    "backdoor": {"poisons": "poisons", "budget": "trigger"},
    "label_flip": {"poisons": "poisons", "source": "class"},
    "clean_label": {"poisons": "poisons", "budget": "linf"},
    "gradient_matching": {"poisons": "poisons", "budget": "linf", "restarts": "count",
                          "steps": "count", "surrogate_epochs": "count"},
    "feature_collision": {"poisons": "poisons", "budget": "linf", "steps": "count",
                          "surrogate_epochs": "count"},
}
#: attacks whose poisons are optimised on a surrogate model (training.attacks): crafted once per
#: (attack, seed) as work units of their own, kept beside the results file, shared by the cells
CRAFTED = ("gradient_matching", "feature_collision")
#: keys every attack must give (the others take the defaults in :func:`poison`)
ATTACK_REQUIRED = ("name", "poisons")
#: the keys each defense takes, all required
DEFENSE_KEYS = {"none": (), "mixup": ("k",), "noise": ("noise",),
                "dp-instahide": ("k", "noise"), "dpsgd": ("noise_multiplier", "clip")}
#: the keys of a grid; the embedded default has every one of them
GRID_KEYS = ("dataset", "data_dir", "model", "epochs", "batch_size", "lr", "seeds", "delta", "target",
             "collapse_floor", "attacks", "defenses")


def _entry(where: str, list_name: str, i: int, entry: dict, table: dict) -> tuple[str, str]:
    """An attack's or a defense's name checked against ``table`` (name -> the keys it takes),
    and its keys against the name's; returns the name and how messages call the entry."""
    name = entry.get("name")
    if name not in table:
        raise InputError(f"{where}: {list_name}[{i}].name must be one of "
                         f"{', '.join(table)}; got {name!r}")
    at = f"{list_name}[{i}] ({name})"
    unknown = sorted(set(entry) - set(table[name]) - {"name"})
    if unknown:
        raise InputError(f"{where}: {at} has unknown keys: {', '.join(map(str, unknown))} "
                         f"({name} takes {', '.join(table[name]) or 'nothing but its name'})")
    return name, at


def check_config(cfg: dict, where: str = "config") -> dict:
    """Every key of a grid, nested ones included, checked before any run: types, ranges, class
    indices against the dataset's classes, budgets > 0, unknown keys refused; each failure one
    line naming the key and the value. (Poisons against the class sizes need the data:
    :func:`check_against_data`, also before any training.)"""
    from dpaccount.validate import check_delta

    from .data import DATASET_CLASSES, DATASET_SHAPES

    if not isinstance(cfg, dict):
        raise InputError(f"{where} must be a JSON object; got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - set(GRID_KEYS))
    if unknown:
        raise InputError(f"{where} has unknown keys: {', '.join(map(str, unknown))} (a grid "
                         f"takes {', '.join(GRID_KEYS)})")
    missing = [k for k in GRID_KEYS if k not in cfg]
    if missing:
        raise InputError(f"{where} lacks keys: {', '.join(missing)}")
    if cfg["dataset"] not in DATASET_CLASSES:
        raise InputError(f"{where}: dataset must be one of {', '.join(DATASET_CLASSES)}; got "
                         f"{cfg['dataset']!r}")
    data_dir = cfg["data_dir"]
    if cfg["dataset"] == "cifar10":
        if not isinstance(data_dir, str):
            raise InputError(f"{where}: dataset 'cifar10' needs data_dir (the extracted batches "
                             f"folder; nothing is downloaded); got {data_dir!r}")
        if not Path(data_dir).is_dir():
            raise InputError(f"{where}: data_dir {data_dir!r} is not a folder")
    elif data_dir is not None:
        raise InputError(f"{where}: data_dir applies to dataset 'cifar10' only; got "
                         f"{data_dir!r} with dataset {cfg['dataset']!r}")
    classes = DATASET_CLASSES[cfg["dataset"]]
    side = min(DATASET_SHAPES[cfg["dataset"]][1:])
    if cfg["model"] not in ("mlp", "cnn"):
        raise InputError(f"{where}: model must be 'mlp' or 'cnn'; got {cfg['model']!r}")
    for key in ("epochs", "batch_size", "seeds"):
        _positive_int(where, key, cfg[key], 10**6)
    _class_index(where, "target", cfg["target"], classes)
    _positive_number(where, "lr", cfg["lr"])
    try:
        check_delta(cfg["delta"])
    except (TypeError, ValueError):
        raise InputError(f"{where}: delta must be in the open interval (0, 1); got "
                         f"{cfg['delta']!r}") from None
    f = cfg["collapse_floor"]
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not (0 <= f < 1):
        raise InputError(f"{where}: collapse_floor must be a number in [0, 1); got {f!r}")
    for key in ("attacks", "defenses"):
        if not isinstance(cfg[key], list) or not cfg[key] or \
                not all(isinstance(x, dict) for x in cfg[key]):
            raise InputError(f"{where}: {key} must be a non-empty list of objects; got "
                             f"{cfg[key]!r}")
    for i, a in enumerate(cfg["attacks"]):
        name, at = _entry(where, "attacks", i, a, ATTACK_KEYS)
        allowed = ATTACK_KEYS[name]
        for key in ATTACK_REQUIRED + (("budget",) if name in CRAFTED else ()):
            if key not in a:
                raise InputError(f"{where}: {at} lacks {key}")
        for key, kind in allowed.items():
            if key not in a:
                continue
            v, what = a[key], f"{at}.{key}"
            if kind == "poisons":
                _positive_int(where, what, v)
            elif kind == "trigger":  # the side of the square trigger, in pixels
                _positive_int(where, what, v, side)
            elif kind == "linf":  # an L-infinity radius in the [0, 1] pixel range
                _positive_number(where, what, v, 1.0)
            elif kind == "count":
                _positive_int(where, what, v, 10**6)
            elif kind == "class":
                _class_index(where, what, v, classes)
                if v == cfg["target"]:
                    raise InputError(f"{where}: {what} must differ from the target class "
                                     f"{cfg['target']}; got {v!r}")
    for i, d in enumerate(cfg["defenses"]):
        name, at = _entry(where, "defenses", i, d, DEFENSE_KEYS)
        need = DEFENSE_KEYS[name]
        for key in need:
            if key not in d:
                raise InputError(f"{where}: {at} lacks {key}")
            if key == "k":
                _positive_int(where, f"{at}.k", d[key], 10**6)
            else:
                _positive_number(where, f"{at}.{key}", d[key])
    return cfg


def check_against_data(cfg: dict, data: ImageData) -> None:
    """What needs the data, checked before any training: the target class and the attacks'
    class indices exist in it, each attack's poisons fit in the records it draws them from, and
    k is at most N."""
    where = "config"
    y = data.y_train.cpu().numpy()
    classes = int(data.num_classes)
    _class_index(where, "target", cfg["target"], classes)
    for i, a in enumerate(cfg["attacks"]):
        at = f"attacks[{i}] ({a['name']})"
        if a["name"] == "backdoor":
            pool, what = int((y != cfg["target"]).sum()), "training records outside the target class"
        elif a["name"] == "label_flip":
            src = a.get("source", 1)
            _class_index(where, f"{at}.source", src, classes)
            pool, what = int((y == src).sum()), f"training records of the source class {src}"
        else:
            pool, what = int((y == cfg["target"]).sum()), \
                f"training records of the target class {cfg['target']}"
        if a["poisons"] > pool:
            raise InputError(f"{where}: {at}.poisons must be at most {pool} (the {what}); got "
                             f"{a['poisons']}")
    n = int(y.shape[0])
    for i, d in enumerate(cfg["defenses"]):
        if "k" in d and d["k"] > n:
            raise InputError(f"{where}: defenses[{i}] ({d['name']}).k must be at most N={n}; "
                             f"got {d['k']}")


def _trigger(x: torch.Tensor, size: int) -> torch.Tensor:
    x = x.clone()
    x[..., -size:, -size:] = 1.0
    return x


def craft(data: ImageData, attack: dict, target: int, seed: int, *, model: str = "cnn",
          device="cpu") -> tuple[np.ndarray, np.ndarray, int]:
    """The optimised poisons of a ``gradient_matching`` or ``feature_collision`` attack
    (:mod:`training.attacks`) as ``(indices, images, target_index)``: the target is a test image
    of another class than ``target`` (drawn with the seed), to be classified as ``target``; the
    poisons are training images of ``target`` that keep their label."""
    from .attacks import choose_target, feature_collision, gradient_matching

    t_idx = choose_target(data, target, seed)
    extra = {k: attack[k] for k in ("restarts", "steps", "surrogate_epochs") if k in attack}
    common = dict(target_index=t_idx, poisons=int(attack["poisons"]),
                  budget=float(attack["budget"]), seed=seed, model=model, device=device,
                  **extra)
    if attack["name"] == "gradient_matching":
        idx, xp = gradient_matching(data, adversarial_class=target, **common)
    elif attack["name"] == "feature_collision":
        idx, xp = feature_collision(data, base_class=target, **common)
    else:
        raise InputError(f"attack {attack['name']!r} is not crafted on a surrogate")
    return idx.cpu().numpy(), xp.detach().cpu().numpy(), t_idx


def poison(data: ImageData, attack: dict, target: int, seed: int, *,
           crafted=None, model: str = "cnn") -> tuple[ImageData, dict]:
    """The poisoned training set (same size, p records replaced) and what success means.
    ``crafted``: the ``(indices, images, target_index)`` of a crafted attack made earlier
    (:func:`craft`), else it is crafted here on a ``model`` surrogate."""
    rng = np.random.default_rng(seed)
    name, p = attack["name"], int(attack["poisons"])
    x, y = data.x_train.clone(), data.y_train.clone()
    if name in CRAFTED:
        idx, xp, t_idx = crafted if crafted is not None else craft(data, attack, target, seed,
                                                                   model=model)
        x[torch.as_tensor(idx)] = torch.as_tensor(xp, dtype=x.dtype)
        info = {"target_index": int(t_idx), "base_class": target,
                "linf": float(attack["budget"])}
    elif name == "backdoor":
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
        # crafted poisons keep their labels: the class sizes are the clean set's
        pdata = data if attack["name"] in CRAFTED else \
            poison(data, attack, common["target"], seed)[0]
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
    crafted = context.get("crafted", {}).get(craft_key(grid, attack, seed))
    pdata, info = poison(data, attack, grid["target"], seed, crafted=crafted,
                         model=grid["model"])
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
            "relation": privacy["relation"],
            # no defense ran no mechanism: it has no sampler to name
            "sampler": None if defense["name"] == "none" else privacy["sampler"],
            "mechanism": privacy.get("mechanism")}


def craft_key(grid: dict, attack: dict, seed: int) -> str:
    """The name of one crafted set of poisons: what it depends on (the attack, the seed, the
    target class, the data set and the surrogate's architecture)."""
    return json.dumps([attack, seed, grid["target"], grid["dataset"], grid["model"]],
                      sort_keys=True)


def craft_unit(context: dict, key: str):
    """One unit of crafting (:mod:`dpaccount.executors`): the poisons named by ``key``."""
    attack, seed, target, _, model = json.loads(key)
    from .train import resolve_device

    return craft(context["data"], attack, target, seed, model=model,
                 device=resolve_device(context["device"]))


def crafted_path(out_path) -> Path:
    """Where the crafted poisons of a results file are kept: beside it, ``FILE.poisons.npz``."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".poisons.npz")


def read_crafted(path: Path) -> dict:
    """The crafted poisons kept in ``path`` (:func:`crafted_path`), by :func:`craft_key`:
    ``(indices, images, target_index)``; empty when there are none or the file is damaged."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = json.loads(str(z["keys"]))
            return {k: (z[f"idx{i}"], z[f"x{i}"], int(z[f"t{i}"])) for i, k in enumerate(keys)}
    except (OSError, ValueError, KeyError):
        return {}  # damaged: crafted again (deterministic from the seed)


def _write_crafted(path: Path, crafted: dict) -> None:
    import io

    arrays = {"keys": np.array(json.dumps(list(crafted)))}
    for i, (idx, x, t) in enumerate(crafted.values()):
        arrays.update({f"idx{i}": idx, f"x{i}": x, f"t{i}": np.array(t)})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _craft_all(grid, ex, out_path, results, data, device, progress) -> dict:
    """The crafted poisons every cell still to run needs: read back from beside the results
    file, the missing ones crafted as units (one per attack and seed) and kept as they arrive."""
    need = {}
    for a in grid["attacks"]:
        if a["name"] not in CRAFTED:
            continue
        for s in range(grid["seeds"]):
            if any(cell_key(grid, a, d, s) not in results for d in grid["defenses"]):
                need[craft_key(grid, a, s)] = True
    if not need:
        return {}
    path = crafted_path(out_path)
    have = read_crafted(path)
    crafted = {k: have[k] for k in need if k in have}
    todo = [k for k in need if k not in crafted]
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="crafting poisons", unit="set", leave=False)

    def keep(key, out):
        have[key] = crafted[key] = out
        _write_crafted(path, have)
        if bar is not None:
            bar.update(1)

    def label(key):
        attack, seed, *_ = json.loads(key)
        return f"crafting {attack['name']} seed {seed}"

    try:
        ex.run(craft_unit, {"data": data, "device": device}, todo, keep, label=label,
               num_gpus=1 if device == "cuda" and ex.name == "ray" else 0)
    finally:
        if bar is not None:
            bar.close()
    return crafted


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
    if not isinstance(grid, dict):
        raise InputError(f"grid must be a dict of settings; got {type(grid).__name__}")
    grid = check_config({**DEFAULT_CONFIG, **grid})  # keys left out: the embedded default's
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
    data = data if data is not None else load_dataset(grid["dataset"], grid["data_dir"])
    check_against_data(grid, data)  # class sizes, before any training
    if _refresh_privacy(results, data):
        atomic_write_bytes(out_path, json.dumps(results, indent=1).encode())
    crafted = _craft_all(grid, ex, out_path, results, data, device, progress)
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
        ex.run(run_cell, {"grid": grid, "data": data, "device": device, "crafted": crafted},
               todo, keep,
               label=label, num_gpus=1 if device == "cuda" and ex.name == "ray" else 0)
    finally:
        if bar is not None:
            bar.close()
    return results


def _mean_ci(xs, conf=0.95):
    """Mean and a t-interval half-width over seeds (the seeds are the independent units); the
    half-width is None for fewer than two seeds (no interval), the mean None for none."""
    from scipy import stats

    xs = np.asarray(xs, dtype=float)
    if xs.size == 0:
        return None, None
    if xs.size < 2:
        return float(xs.mean()), None
    half = stats.t.ppf(0.5 + conf / 2, xs.size - 1) * xs.std(ddof=1) / math.sqrt(xs.size)
    return float(xs.mean()), float(half)


def summarise(results: dict, collapse_floor: float = COLLAPSE_FLOOR) -> list[dict]:
    """One row per (attack, defense): means with 95% t-intervals over seeds (None with one
    seed), epsilon, and the group-privacy certificate for the attack's p poisons (DP-InstaHide
    rows). Success is measured on inputs not already of the target class (module docstring).
    A run whose poisoned model's clean accuracy is below ``collapse_floor`` has *collapsed*:
    its success is left out of the row's (a model that predicts the target everywhere is not a
    successful attack), and the row says how many seeds collapsed; when all did, the row is
    ``collapsed`` and its success None. The same for the clean models' success."""
    from dpaccount import InstaHide
    from dpaccount.certificates import certify

    cells = {}
    for r in results.values():
        cells.setdefault((r["attack"], r["defense"]), []).append(r)
    rows = []
    for (attack, defense), rs in cells.items():
        acc, acc_h = _mean_ci([r["accuracy"] for r in rs])
        live = [r for r in rs if r["accuracy"] >= collapse_floor]
        suc, suc_h = _mean_ci([r["success"] for r in live])
        clean_live = [r for r in rs if r.get("clean_accuracy", 1.0) >= collapse_floor]
        clean_suc = (float(np.mean([r["clean_success"] for r in clean_live]))
                     if clean_live else None)
        row = {"attack": attack, "defense": defense, "poisons": rs[0]["poisons"],
               "seeds": len(rs), "accuracy": acc, "accuracy_ci": acc_h, "success": suc,
               "success_ci": suc_h, "collapsed": not live,
               "collapsed_seeds": len(rs) - len(live), "collapse_floor": collapse_floor,
               "clean_success": clean_suc,
               "clean_collapsed_seeds": len(rs) - len(clean_live),
               "epsilon": rs[0]["epsilon"], "delta": rs[0]["delta"],
               "privacy_method": rs[0]["privacy_method"], "relation": rs[0]["relation"],
               # no defense ran no mechanism (older results named the default sampler)
               "sampler": None if defense == "none" else rs[0]["sampler"],
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
            elif clean_suc is None:
                row["certificate_note"] = ("no clean success rate: every clean model "
                                           "collapsed")
            else:
                cert = certify(m, rs[0]["poisons"], min(1.0, clean_suc), direct=False)[0]
                row["certificate"] = cert.bound
                row["certificate_vacuous"] = cert.vacuous
        rows.append(row)
    return rows


def _pm(mean, half, fmt=".3f") -> str:
    if mean is None:
        return "n/a"
    return f"{mean:{fmt}}" + (" (one seed)" if half is None else f" +- {half:{fmt}}")


def success_text(r: dict) -> str:
    """A row's attack success as the table shows it: ``collapsed`` where every seed's model
    collapsed, otherwise the mean over the seeds that did not, saying how many were left out."""
    if r["collapsed"]:
        return (f"collapsed (clean accuracy < {r['collapse_floor']:g} in all "
                f"{r['seeds']} seeds)")
    out = _pm(r["success"], r["success_ci"])
    if r["collapsed_seeds"]:
        out += f" ({r['collapsed_seeds']} of {r['seeds']} seeds collapsed, left out)"
    return out


def plot_results(rows: list[dict], path) -> Path:
    """Attack success against clean accuracy, one point per defense setting, one panel per
    attack, with 95% intervals over seeds."""
    from dpaccount.audit.plot import png_path, pyplot, save_figure

    path = png_path(path)
    plt = pyplot()
    attacks = sorted({r["attack"] for r in rows})
    fig, axes = plt.subplots(1, len(attacks), figsize=(4.6 * len(attacks), 4.4), dpi=110,
                             squeeze=False)
    defenses = sorted({r["defense"] for r in rows})
    cmap = plt.get_cmap("tab10")
    colour = {d: cmap(i % 10) for i, d in enumerate(defenses)}  # one colour per defense
    for ax, attack in zip(axes[0], attacks):
        for r in sorted((r for r in rows if r["attack"] == attack), key=lambda r: r["defense"]):
            if r["collapsed"]:  # no success to plot: a cross below the axis, labelled
                ax.plot(r["accuracy"], -0.03, "x", color=colour[r["defense"]], ms=7)
                ax.annotate("collapsed", (r["accuracy"], -0.03), fontsize=6, color="0.3",
                            xytext=(3, 3), textcoords="offset points")
                continue
            ax.errorbar(r["accuracy"], r["success"], xerr=r["accuracy_ci"] or 0.0,
                        yerr=r["success_ci"] or 0.0, fmt="o" if not r["collapsed_seeds"]
                        else "s", ms=5, capsize=2, color=colour[r["defense"]])
        ax.axvline(rows[0]["collapse_floor"], color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("clean test accuracy")
        ax.set_ylabel("attack success")
        ax.set_ylim(-0.08, 1.05)
        p = next(r["poisons"] for r in rows if r["attack"] == attack)
        ax.set_title(f"{attack}, {p} poisons", fontsize=9)
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=colour[d], label=d) for d in defenses]
    handles += [Line2D([], [], marker="s", ls="", color="0.4",
                       label="some seeds collapsed (left out)"),
                Line2D([], [], marker="x", ls="", color="0.4",
                       label=f"all seeds collapsed (accuracy < {rows[0]['collapse_floor']:g})")]
    axes[0][-1].legend(handles=handles, fontsize=6.5, loc="center left",
                       bbox_to_anchor=(1.0, 0.5))
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
        clean = "n/a (collapsed)" if r["clean_success"] is None else f"{r['clean_success']:.3f}"
        lines.append(f"| {r['attack']} ({r['poisons']}) | {r['defense']} | "
                     f"{_pm(r['accuracy'], r['accuracy_ci'])} | {success_text(r)} | {clean} | "
                     f"{eps} | {cert} |")
    return "\n".join(lines)
