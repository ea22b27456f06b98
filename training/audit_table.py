"""The model-audit tables of docs/model_audit.md, from one command.

    python -m training.audit_table [--models 256] [--canaries 1000] [--store audit-runs]

Digits, MLP 64, 10 epochs, batch 64; delta 1e-5, 95% confidence. For each defense (no defense,
mixup only, DP-InstaHide k=4 at b=1 and b=2):

1. shadow models (``--models`` per side, substitution) for each canary (``corner``, ``crafted``,
   ``crafted`` x4 copies): every estimator on the same saved scores -- the Clopper-Pearson bound
   with the loss threshold, with LiRA offline and with LiRA online, and the GDP estimate of the
   loss test -- beside the accountant's upper bound (the group bound for copies) and the ceiling;
2. one training run with ``--canaries`` ood canaries (add/remove; labels noised, as the one-run
   audit needs for a DP run): Steinke et al. and, on the same guesses, the f-DP audit of
   Mahloujifar et al. (eps in the (eps, delta) family; mu in the Gaussian family and its eps),
   beside the accountant's bound for that run.

Each audit keeps its scores under --store/<name>, so a rerun trains nothing already trained (the
LiRA rows are recomputed from the saved scores, no training).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .model_audit import ModelAuditConfig, bound_from_store, one_run_audit, shadow_audit

DEFENSES = [
    ("no defense", dict(k=1, noise=0.0)),
    ("mixup only, k=4", dict(k=4, noise=0.0)),
    ("DP-InstaHide k=4, b=1", dict(k=4, noise=1.0)),
    ("DP-InstaHide k=4, b=2", dict(k=4, noise=2.0)),
]
CANARIES = [("corner", 1), ("crafted", 1), ("crafted", 4)]


def _fmt(x):
    return "none (no noise)" if x is None else f"{x:.4g}"


def _tag(*parts) -> str:
    return "-".join(str(p) for p in parts).replace(" ", "_").replace(",", "").replace("=", "")


def shadow_rows(root: Path, models: int) -> dict:
    best = {}
    print("| defense | canary | test acc. | accountant eps (upper) | shadow CP, loss | LiRA "
          "offline | LiRA online | GDP estimate: mu (eps) | ceiling |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, kw in DEFENSES:
        for canary, copies in CANARIES:
            cfg = ModelAuditConfig(canary=canary, copies=copies, models=models, **kw)
            store = root / _tag(name, canary, copies)
            loss = shadow_audit(cfg, store=store)
            off = bound_from_store(store, score="lira-offline")
            on = bound_from_store(store, score="lira-online")
            g = loss["gdp_estimate"]
            label = canary if copies == 1 else f"{canary} x{copies}"
            up = _fmt(loss["epsilon_upper_bound"])
            if copies > 1 and loss["epsilon_upper_bound"] is not None:
                up += " (group)"
            print(f"| {name} | {label} | {loss['test_accuracy_mean']:.3f} | {up} | "
                  f"{loss['epsilon_lower_bound']:.3f} | {off['epsilon_lower_bound']:.3f} | "
                  f"{on['epsilon_lower_bound']:.3f} | {g['mu_lower_bound']:.3f} "
                  f"({g['epsilon']:.3f}) | {loss['ceiling']:.3f} |", flush=True)
            if copies == 1:  # the summary compares single-record audits with the accountant
                b = best.setdefault(name, {"upper": loss["epsilon_upper_bound"]})
                for key, val in (("cp", loss["epsilon_lower_bound"]),
                                 ("off", off["epsilon_lower_bound"]),
                                 ("on", on["epsilon_lower_bound"]), ("gdp", g["epsilon"])):
                    if val >= b.get(key, (-1.0, ""))[0]:
                        b[key] = (val, canary)
    return best


def one_run_rows(root: Path, canaries: int, models: int) -> dict:
    rows = {}
    print("| defense | accountant eps (upper; add_remove, labels noised) | one run, Steinke "
          "et al. (eps) | one run, f-DP (eps-delta family: eps) | one run, f-DP (Gaussian "
          "family: mu (eps)) | guesses, correct | test acc. |")
    print("|---|---|---|---|---|---|---|")
    for name, kw in DEFENSES:
        cfg = ModelAuditConfig(canary="ood", labels="noised", models=models, **kw)
        r = one_run_audit(cfg, canaries=canaries, store=root / _tag("one-run", name))
        o, f = r["one_run"], r["fdp"]
        print(f"| {name} | {_fmt(r['epsilon_upper_bound'])} | {o['epsilon_lower_bound']:.3f} | "
              f"{f['epsilon_lower_bound']:.3f} | {f['mu_lower_bound']:.3f} "
              f"({f['epsilon_from_mu']:.3f}) | {o['guesses_in']}+{o['guesses_out']}, "
              f"{o['correct']} | {r['test_accuracy']:.3f} |", flush=True)
        rows[name] = r
    return rows


def summary(best: dict, one: dict) -> None:
    """One row per defense: the strongest single-record shadow audit of each estimator (its
    canary in brackets) and the one-run audits, each beside its accountant bound."""
    print("| defense | accountant (upper; substitution, labels soft) | shadow CP, loss | LiRA "
          "offline | LiRA online | GDP estimate (eps; if mu-GDP) | accountant (upper; add_remove, "
          "labels noised) | one run, Steinke | one run, f-DP eps-delta | one run, f-DP GDP (eps; "
          "if mu-GDP) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, _ in DEFENSES:
        b, r = best[name], one[name]
        cells = [f"{b[k][0]:.3f} ({b[k][1]})" for k in ("cp", "off", "on", "gdp")]
        f = r["fdp"]
        print(f"| {name} | {_fmt(b['upper'])} | {' | '.join(cells)} | "
              f"{_fmt(r['epsilon_upper_bound'])} | {r['epsilon_lower_bound']:.3f} | "
              f"{f['epsilon_lower_bound']:.3f} | {f['epsilon_from_mu']:.3f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=256, help="shadow models per side")
    ap.add_argument("--canaries", type=int, default=1000, help="one-run canaries")
    ap.add_argument("--store", default="audit-runs")
    args = ap.parse_args(argv)
    root = Path(args.store)
    t0 = time.perf_counter()
    best = shadow_rows(root, args.models)
    print()
    one = one_run_rows(root, args.canaries, args.models)
    print()
    summary(best, one)
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
