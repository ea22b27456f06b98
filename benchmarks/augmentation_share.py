"""Benchmark: the DP-InstaHide augmentation's share of a training step (digits CNN, CPU).

One training step = draw k-subsets for a batch, mix and noise it (the augmentation), then
forward, backward and an Adam step. Prints the time of each part per step and the
augmentation's share of the whole step (target <= 10% on CPU for the digits CNN), next to two
peers measured in the same run: a per-sample Python loop (numpy choice + laplace, then a tensor),
and the same batched code drawing noise with torch.distributions.Laplace.

Run:  python benchmarks/augmentation_share.py [--steps 300] [--batch-size 64] [--device cpu]
"""

import argparse
import statistics
import time

import numpy as np
import torch

from training.augment import InstaHideAugment
from training.data import load_digits
from training.models import build_model
from training.samplers import k_subsets
from training.train import _soft_cross_entropy


def timed(fn, steps, device):
    fn()  # warm up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    dev = torch.device(args.device)
    data = load_digits().to(dev)
    n, bs, k = data.x_train.shape[0], args.batch_size, args.k
    g = torch.Generator(device=dev)
    g.manual_seed(0)
    aug = InstaHideAugment(k, args.noise, generator=g, clip=(0.0, 1.0), num_classes=10)
    torch.manual_seed(0)
    model = build_model("cnn", data.shape, 10).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    onehot = torch.nn.functional.one_hot(data.y_train, 10).float()  # once, as training does
    fixed = aug.mix_indices(data.x_train, k_subsets(n, k, bs, g, dev), onehot)

    def augment():
        return aug.mix_indices(data.x_train, k_subsets(n, k, bs, g, dev), onehot)

    def learn(batch):
        x, soft = batch
        loss = _soft_cross_entropy(model(x), soft)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def step():
        learn(augment())

    rng = np.random.default_rng(0)
    xs = data.x_train.cpu().numpy()
    ys = np.eye(10, dtype=np.float32)[data.y_train.cpu().numpy()]

    def naive():
        out, lab = [], []
        for _ in range(bs):
            idx = rng.choice(n, k, replace=False)
            out.append(xs[idx].mean(0) + rng.laplace(0, args.noise, xs.shape[1:]))
            lab.append(ys[idx].mean(0))
        return (torch.as_tensor(np.clip(np.stack(out), 0, 1), dtype=torch.float32, device=dev),
                torch.as_tensor(np.stack(lab), device=dev))

    lap = torch.distributions.Laplace(torch.tensor(0.0, device=dev),
                                      torch.tensor(args.noise, device=dev))

    def dist_noise():
        idx = k_subsets(n, k, bs, g, dev)
        z = data.x_train[idx].mean(1)
        z = (z + lap.sample(z.shape)).clamp(0, 1)
        return z, torch.nn.functional.one_hot(data.y_train[idx], 10).float().mean(1)

    rows = {name: [] for name in ("augment", "learn", "step", "naive", "dist")}
    for _ in range(args.repeats):
        rows["augment"].append(timed(augment, args.steps, dev))
        rows["learn"].append(timed(lambda: learn(fixed), args.steps, dev))
        rows["step"].append(timed(step, args.steps, dev))
        rows["naive"].append(timed(naive, max(20, args.steps // 10), dev))
        rows["dist"].append(timed(dist_noise, args.steps, dev))
    med = {k_: statistics.median(v) * 1e3 for k_, v in rows.items()}
    print(f"digits CNN, batch {bs}, k={k}, b={args.noise:g}, device {dev}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; median of "
          f"{args.repeats} x {args.steps} steps, ms per step:")
    print(f"  augmentation (k-subsets + mix + Laplace + clip + labels) {med['augment']:8.3f}")
    print(f"  forward + backward + Adam step                          {med['learn']:8.3f}")
    print(f"  whole training step                                     {med['step']:8.3f}")
    share = med["augment"] / med["step"]
    print(f"  augmentation share of a step: {share:.1%} (target <= 10%: "
          f"{'met' if share <= 0.10 else 'NOT met'})")
    print(f"  peer: per-sample numpy loop augmentation {med['naive']:8.3f} ms "
          f"({med['naive'] / med['augment']:.1f}x ours)")
    print(f"  peer: torch.distributions.Laplace noise   {med['dist']:8.3f} ms "
          f"({med['dist'] / med['augment']:.2f}x ours)")


if __name__ == "__main__":
    main()
