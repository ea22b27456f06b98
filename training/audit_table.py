"""The model-audit tables of docs/model_audit.md, from one command.

    python -m training.audit_table [--models 256] [--store audit-runs]

Shadow-model audits on digits (MLP 64, 10 epochs, batch 64; delta 1e-5, 95% confidence) for no
defense, mixup only and DP-InstaHide at the noise levels of the training table, with the
accountant's upper bound and the ceiling beside each audited lower bound; then the one-run audit
(1000 canaries) of the undefended model next to the shadow-model bound for the same canaries.
Each audit keeps its scores under --store/<name>, so a rerun trains nothing already trained.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .model_audit import ModelAuditConfig, one_run_audit, shadow_audit

SETTINGS = [
    ("no defense", dict(k=1, noise=0.0), ("ood", "corner", "mislabeled")),
    ("mixup only, k=4", dict(k=4, noise=0.0), ("ood", "corner")),
    ("DP-InstaHide k=4, b=1", dict(k=4, noise=1.0), ("ood", "corner")),
    ("DP-InstaHide k=4, b=2", dict(k=4, noise=2.0), ("ood", "corner")),
    ("DP-InstaHide k=4, b=4", dict(k=4, noise=4.0), ("ood", "corner")),
]


def _fmt(x):
    return "none (no noise)" if x is None else f"{x:.4g}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=256)
    ap.add_argument("--canaries", type=int, default=1000)
    ap.add_argument("--store", default="audit-runs")
    args = ap.parse_args(argv)
    root = Path(args.store)
    print("| setting | canary | test accuracy | accountant eps (upper; pld, substitution, "
          "subsets, delta 1e-5) | audited eps (lower, 95%, same delta) | ceiling | models per "
          "side |")
    print("|---|---|---|---|---|---|---|")
    for name, kw, canaries in SETTINGS:
        for c in canaries:
            cfg = ModelAuditConfig(canary=c, models=args.models, **kw)
            tag = f"{name}-{c}".replace(" ", "_").replace(",", "").replace("=", "")
            r = shadow_audit(cfg, store=root / tag)
            print(f"| {name} | {c} | {r['test_accuracy_mean']:.3f} | "
                  f"{_fmt(r['epsilon_upper_bound'])} | {r['epsilon_lower_bound']:.3f} | "
                  f"{r['ceiling']:.3f} | {r['models_per_side']} |", flush=True)
    print()
    cfg = ModelAuditConfig(canary="ood", labels="private", k=1, noise=0.0, models=args.models)
    shadow = shadow_audit(cfg, store=root / "no_defense-ood-random-label")
    one = one_run_audit(cfg, canaries=args.canaries, store=root / "one-run")
    o = one["one_run"]
    print("| audit (no defense, ood canaries with random labels; delta 1e-5, subsets) | models "
          "trained | audited eps (lower, 95%) | relation | details |")
    print("|---|---|---|---|---|")
    print(f"| shadow models | {2 * shadow['models_per_side']} | "
          f"{shadow['epsilon_lower_bound']:.3f} | substitution | ceiling "
          f"{shadow['ceiling']:.3f} |")
    print(f"| one run (Steinke et al.) | 1 | {one['epsilon_lower_bound']:.3f} | add_remove | "
          f"{o['canaries']} "
          f"canaries, {o['included']} included; {o['guesses_in']}+{o['guesses_out']} guesses, "
          f"{o['correct']} correct; Bonferroni over {o['choices']} guess counts; test accuracy "
          f"{one['test_accuracy']:.3f} |")


if __name__ == "__main__":
    main()
