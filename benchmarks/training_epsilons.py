"""The epsilons of the digits runs in docs/training.md and docs/model_audit.md, from dpaccount alone.

No training: the mechanism of `dpaccount train` on digits is fixed by the data and the flags.
N = 1438 training records in 10 classes (142, 146, 142, 146, 145, 146, 145, 143, 139, 144), 8x8
images in [0, 1] (L1 diameter 64), k-subsets, substitution, the soft label released without
noise, delta 1e-5; T = epochs * N releases. Prints:

  1. the accuracy/epsilon table of docs/training.md (20 epochs): the tightest sound upper bound
     (`dpaccount.tightest`), its interval [lower, upper], the method that produced it, and the
     same run had no label been released (labels none); then the pair (P*, Q*) composed in both
     directions without a label (what the accountant reported before it composed the
     symmetrised pair) and what the symmetrised pair costs over it;
  2. the accountant column of docs/model_audit.md (the shadow models: 10 epochs), and the same
     "before" values;
  3. the float32 noise cut of docs/training.md ("Noise in float64").

Run:  python benchmarks/training_epsilons.py      (about 20 s on a 2-core machine)
"""

import math

import dpaccount
from dpaccount.accountants.pld import attained_composition

CLASS_SIZES = (142, 146, 142, 146, 145, 146, 145, 143, 139, 144)
N = sum(CLASS_SIZES)  # 1438
DIAMETER = 64.0  # 8x8 in [0, 1]
DELTA = 1e-5
SETTINGS = [("noise only, k=1, b=1", 1, 1.0), ("DP-InstaHide k=4, b=1", 4, 1.0),
            ("DP-InstaHide k=4, b=2", 4, 2.0), ("DP-InstaHide k=4, b=4", 4, 4.0)]


def run(k, b, epochs, labels="soft"):
    return dpaccount.InstaHide.from_epochs(
        k=k, noise=b, n=N, diameter=DIAMETER, epochs=epochs, labels=labels,
        class_sizes=CLASS_SIZES if labels == "soft" else None)


def before(k, b, epochs):
    """The pair (P*, Q*) in both directions, no label: the old substitution bound (upper end)."""
    try:
        return attained_composition(run(k, b, epochs, "none")).epsilon(DELTA)[1]
    except dpaccount.Unsupported:
        return None


def fmt(x):
    return "n/a" if x is None else f"{x:.4g}"


def table(epochs):
    print(f"{epochs} epochs, T = {epochs} * {N} = {epochs * N} releases, delta {DELTA:g}")
    print("| setting | k | b | epsilon (soft labels) | interval [attained, upper] | method | "
          "epsilon had no label been released | before: (P*, Q*) pair, no label | "
          "symmetrised / before |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, k, b in SETTINGS:
        best = dpaccount.tightest(run(k, b, epochs), DELTA)
        bare = dpaccount.tightest(run(k, b, epochs, "none"), DELTA)
        old = before(k, b, epochs)
        interval = "" if best.lower is None else f"[{fmt(best.lower)}, {fmt(best.epsilon)}]"
        ratio = "" if old is None else f"{bare.epsilon / old:.3f}"
        print(f"| {name} | {k} | {b:g} | {fmt(best.epsilon)} | {interval} | {best.method} | "
              f"{fmt(bare.epsilon)} | {fmt(old)} | {ratio} |")
    print()


def main():
    print("1. docs/training.md, accuracy and epsilon on digits")
    table(20)
    print("2. docs/model_audit.md, the accountant column of the shadow-model audit")
    table(10)
    print("3. docs/training.md, the float32 noise cut")
    cut32 = -math.log(2.0 ** -24)  # a float32 uniform has a 2^-24 grid: Laplace cut at this * b
    cut64 = -math.log(2.0 ** -53)
    q = 4 / N
    hit = 20 * N * q  # releases of a 20-epoch run (k=4) that contain the record
    tail = 0.5 * math.exp(-cut32)  # P(Laplace noise beyond the cut, one side), per pixel
    print(f"   float32 cut at {cut32:.1f} b, float64 cut at {cut64:.1f} b")
    print(f"   20 epochs, k=4: {hit:.0f} releases hold the record, 64 pixels each, "
          f"{tail:.2g} per pixel beyond the cut: delta about {hit * 64 * tail:.1g}")


if __name__ == "__main__":
    main()
