"""Benchmark: how large a budget clean-label poisons need on digits, undefended.

For each budget and seed s: the adversarial class is (s + 1) mod 10, the target is a test image
of another class (`training.attacks.choose_target`), and 14 training images of the adversarial
class (about 10% of it) are replaced by
  gm     Witches' Brew gradient matching (training.attacks.gradient_matching, its defaults)
  fc     Poison Frogs feature collision (training.attacks.feature_collision)
  blend  the same records moved straight towards the target in pixel space, clipped to the
         budget (what the grid's `clean_label` attack does)
and a CNN victim is trained from scratch on the poisoned digits (15 epochs, batch 64, Adam 2e-3,
no augmentation), beside one trained on the clean data ("clean": how often the target is already
in the adversarial class). Success: the victim puts the target in the adversarial class. Prints
successes per seed count and the victim's probability of the adversarial class per seed; the
table of docs/poisoning.md ("How large a budget").

Run:  python benchmarks/gradient_matching_budget.py [--budgets 0.5,0.6,0.75] [--seeds 10]
      [--augment]
(about 2 minutes per budget on one core of the 2-core machine)
"""

from __future__ import annotations

import argparse
import time

import torch

from training.attacks import (apply_poisons, choose_target, feature_collision,
                              gradient_matching, targeted_success)
from training.data import load_digits
from training.train import TrainConfig, train

POISONS = 14


def victim(data, clean, seed, target, adv):
    cfg = TrainConfig(dataset="digits", model="cnn", epochs=15, batch_size=64, lr=2e-3,
                      augment=False, seed=seed, device="cpu")
    _, model = train(cfg, data=data, return_model=True)
    with torch.no_grad():
        p = float(torch.softmax(model(clean.x_test[target:target + 1]), 1)[0, adv])
    return targeted_success(model, clean, target, adv), p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budgets", default="0.5,0.6,0.75")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--augment", action="store_true",
                    help="gradient matching with its differentiable one-pixel shifts")
    args = ap.parse_args()
    torch.set_num_threads(1)  # one training per core; two threads oversubscribe this machine
    d = load_digits()
    print(f"{'budget':>6s} {'gm':>6s} {'fc':>6s} {'blend':>6s} {'clean':>6s}   (successes of "
          f"{args.seeds} seeds; per seed: P[adversarial class] gm/clean)")
    for budget in (float(b) for b in args.budgets.split(",")):
        wins = {"gm": 0, "fc": 0, "blend": 0, "clean": 0}
        per_seed = []
        t0 = time.perf_counter()
        for s in range(args.seeds):
            adv = (s + 1) % 10
            t = choose_target(d, adv, s)
            idx, xp = gradient_matching(d, target_index=t, adversarial_class=adv,
                                        poisons=POISONS, budget=budget, seed=s,
                                        augment=args.augment)
            gm = victim(apply_poisons(d, idx, xp), d, s, t, adv)
            fidx, fxp = feature_collision(d, target_index=t, base_class=adv, poisons=POISONS,
                                          budget=budget, seed=s)
            fc = victim(apply_poisons(d, fidx, fxp), d, s, t, adv)
            x0 = d.x_train[idx]  # the blend moves gradient matching's own records
            blend = victim(apply_poisons(d, idx, (x0 + (d.x_test[t] - x0).clamp(-budget, budget))
                                         .clamp(0.0, 1.0)), d, s, t, adv)
            clean = victim(d, d, s, t, adv)
            for k, v in (("gm", gm), ("fc", fc), ("blend", blend), ("clean", clean)):
                wins[k] += int(v[0])
            per_seed.append(f"{gm[1]:.2f}/{clean[1]:.2f}")
        print(f"{budget:6g} {wins['gm']:6d} {wins['fc']:6d} {wins['blend']:6d} "
              f"{wins['clean']:6d}   {' '.join(per_seed)}  ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
