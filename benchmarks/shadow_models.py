"""Benchmark: shadow models per minute, batched against one at a time, in the same run.

Digits-sized models (MLP 64 -> 64 -> 10 on digits' 1438 training images, 10 epochs, batch 64,
DP-InstaHide k and b as given; the configuration of the model audits in docs/model_audit.md):
  batched     R models as stacked parameters, one optimizer step for all (training/batched.py)
  one-by-one  the same code with R = 1, models trained in turn
  loop        the plain training loop of training/train.py (nn.Module MLP), models in turn
Prints models per minute for each and the ratios. Device-agnostic: --device cuda on a GPU.
Target (issue 6): >= 500 models per minute on the 2-core CPU.

Run:  python benchmarks/shadow_models.py [--models 256] [--device cpu] [--k 4] [--noise 1]
"""

import argparse
import time

import torch

from training.batched import train_batched
from training.data import load_digits
from training.train import TrainConfig, train


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=256)
    ap.add_argument("--single", type=int, default=8, help="models timed one at a time")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    dev = torch.device(args.device)
    data = load_digits().to(dev)
    n = data.x_train.shape[0]
    common = dict(k=args.k, noise=args.noise, epochs=args.epochs, batch_size=64, lr=3e-3,
                  hidden=64, num_classes=10)

    def run(r, seed):
        g = torch.Generator(device=dev)
        g.manual_seed(seed)
        pools = torch.arange(n, device=dev).repeat(r, 1)
        train_batched(data.x_train, data.y_train, pools, generator=g, **common)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    run(2, 0)  # warm-up
    t0 = time.perf_counter()
    done = 0
    while done < args.models:
        r = min(128, args.models - done)
        run(r, done)
        done += r
    batched = args.models / (time.perf_counter() - t0) * 60
    t0 = time.perf_counter()
    for i in range(args.single):
        run(1, 1000 + i)
    single = args.single / (time.perf_counter() - t0) * 60
    t0 = time.perf_counter()
    for i in range(args.single):
        train(TrainConfig(model="mlp", k=args.k, noise=args.noise, epochs=args.epochs,
                          lr=3e-3, seed=i, device=args.device), data=data)
    loop = args.single / (time.perf_counter() - t0) * 60
    print(f"digits MLP (64 hidden), {args.epochs} epochs, k={args.k}, b={args.noise:g}, device "
          f"{dev}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"  batched (blocks of up to 128)  {batched:9.0f} models/min  ({args.models} models)")
    print(f"  one-by-one (same code, R = 1)  {single:9.0f} models/min  ({args.single} models)")
    print(f"  plain loop (training/train.py) {loop:9.0f} models/min  ({args.single} models)")
    print(f"  batched / one-by-one = {batched / single:.1f}x; batched / loop = "
          f"{batched / loop:.1f}x; target >= 500 models/min: "
          f"{'met' if batched >= 500 else 'NOT met'}")


if __name__ == "__main__":
    main()
