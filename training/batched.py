"""Many small models trained at once, each on its own dataset, with DP-InstaHide.

Shadow-model audits need hundreds of models. Training them one at a time wastes the machine on
tiny matrix products; here R one-hidden-layer MLPs live as stacked parameters (``W1`` of shape
(R, d, h), ...) and train together with batched matrix products (``torch.bmm``): one optimizer
step updates all R models, each from its own mini-batch, its own draws of the sampler and its own
noise. The parameters of different models never mix, so autograd and Adam (elementwise) treat
them as R independent trainings.

Each model r has its own training set, given as a row of ``pools`` (R, N): indices into a shared
record tensor. All models of one call have the same N (shadow models on D and D' under
substitution do; the one-run audit trains a single model). The augmentation is
:class:`training.augment.InstaHideAugment` and the subsets come from
:func:`training.samplers.k_subsets`: the same mechanism as :mod:`training.train`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .augment import InstaHideAugment, canonical_labels
from .samplers import k_subsets
from .train import clean_soft_labels

__all__ = ["BatchedMLP", "train_batched", "per_model_loss", "per_model_accuracy"]


class BatchedMLP(torch.nn.Module):
    """R independent MLPs d -> hidden -> classes (ReLU), as stacked parameters."""

    def __init__(self, models: int, d: int, hidden: int, classes: int,
                 generator: torch.Generator, device="cpu"):
        super().__init__()

        def init(fan_in, *shape):  # PyTorch's default Linear init, U(-1/sqrt(fan_in), ...)
            bound = 1.0 / math.sqrt(fan_in)
            w = torch.rand(*shape, generator=generator, device=device) * 2 * bound - bound
            return torch.nn.Parameter(w)

        self.w1 = init(d, models, d, hidden)
        self.b1 = init(d, models, 1, hidden)
        self.w2 = init(hidden, models, hidden, classes)
        self.b2 = init(hidden, models, 1, classes)

    def forward(self, x):  # x: (R, B, d) -> (R, B, classes)
        h = torch.relu(torch.baddbmm(self.b1, x, self.w1))
        return torch.baddbmm(self.b2, h, self.w2)


def train_batched(records: torch.Tensor, labels: torch.Tensor, pools: torch.Tensor, *,
                  k: int, noise: float, epochs: int, batch_size: int, lr: float,
                  hidden: int, num_classes: int, generator: torch.Generator,
                  clip=(0.0, 1.0), label_privacy: str = "public") -> tuple[BatchedMLP, int]:
    """Train one MLP per row of ``pools`` with DP-InstaHide (sampler ``subsets``; ``noise=0``:
    mixup only; ``k=1, noise=0``: plain training on i.i.d. draws). Returns the models and the
    number of releases each one drew (T = epochs * N)."""
    dev = records.device
    r_models, n = pools.shape
    x_all = records.reshape(records.shape[0], -1)
    onehot = F.one_hot(labels, num_classes).to(x_all.dtype)
    model = BatchedMLP(r_models, x_all.shape[1], hidden, num_classes, generator, dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    aug = InstaHideAugment(k, noise, generator=generator, clip=clip,
                           labels=label_privacy)
    rows = torch.arange(r_models, device=dev)[:, None, None]
    releases = 0
    for _ in range(epochs):
        done = 0
        while done < n:
            b = min(batch_size, n - done)
            pos = k_subsets(n, k, r_models * b, generator, dev).view(r_models, b, k)
            idx = pools[rows, pos]  # (R, b, k) record indices, each model from its own pool
            z, soft = aug(x_all[idx].view(r_models * b, k, -1),
                          onehot[idx].view(r_models * b, k, -1))
            logits = model(z.view(r_models, b, -1))
            soft = soft.view(r_models, b, -1)
            if canonical_labels(label_privacy) == "noised":
                soft = clean_soft_labels(soft)
            loss = -(soft * F.log_softmax(logits, dim=2)).sum(2)
            opt.zero_grad(set_to_none=True)
            loss.mean(dim=1).sum().backward()  # per-model mean; models independent
            opt.step()
            done += b
        releases += n
    return model, releases


@torch.no_grad()
def per_model_loss(model: BatchedMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each model on each of the points (x: (P, ...), y: (P,)) -> (R, P)."""
    r = model.w1.shape[0]
    xs = x.reshape(1, x.shape[0], -1).expand(r, -1, -1)
    logits = model(xs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(r),
                           reduction="none").view(r, -1)


@torch.no_grad()
def per_model_accuracy(model: BatchedMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r = model.w1.shape[0]
    logits = model(x.reshape(1, x.shape[0], -1).expand(r, -1, -1))
    return (logits.argmax(2) == y[None]).float().mean(1)


