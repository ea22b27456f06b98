"""DP-InstaHide as a torch transform (Borgnia et al. 2021, Sec. 4; docs/theory.md Sec. 1).

``InstaHideAugment(k, noise)`` maps records grouped as ``(B, k, ...)`` (row j: the k records of
output j, as drawn by a sampler of :mod:`training.samplers`) to ``(B, ...)``:
``(1/k) sum_i x_ji + Lap(0, b)`` in every coordinate, with fresh noise from its
``torch.Generator``. Labels are either *public* (the soft label is the mean of the k one-hot
labels, no noise; the accountant's diameter covers the features only) or *private* (part of the
record: the mean one-hot label gets Laplace noise too, and the diameter grows by 2). The accountant
covers what is released: with public (``soft``) labels it accounts the class counts the soft label
shows (``dpaccount.Labels.SOFT``). Clipping to
the value range after the noise is post-processing and costs no privacy. Nothing here computes
privacy; :func:`torch_release_fn` exposes the same code to ``dpaccount.audit``.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import canonical_labels
from .samplers import k_subsets, torch_sampler
from dpaccount.errors import InputError

__all__ = ["InstaHideAugment", "laplace_like", "torch_release_fn", "canonical_labels"]


#: the smallest value of 1 - 2|v| kept by the inverse CDF: float64 uniforms come on a 2^-53 grid,
#: so the noise is cut at b * 53 ln 2 = 36.7 b, where the Laplace tail is e^-36.7 = 1.1e-16
_TAIL = 2.0 ** -53


def laplace_like(x: torch.Tensor, b: float, generator: torch.Generator) -> torch.Tensor:
    """i.i.d. Laplace(0, b) noise shaped like ``x``, in float64 whatever ``x`` is.

    Inverse CDF of one uniform: ``v = U - 1/2``, ``z = -b sign(v) log(1 - 2|v|)``. Drawn in
    float64 on purpose: a float32 uniform has a 2^-24 grid, which cuts the noise at 16.6 b. With
    a cut, an output beyond ``mean + 16.6 b`` is possible on one dataset and impossible on its
    neighbour: an infinite privacy loss with probability about e^-16 per coordinate and release,
    which over a training run adds up to a delta near 1e-4 on digits. In float64 the cut is at
    36.7 b (e^-36.7 = 1e-16 per coordinate). Casting the noisy sum to float32 afterwards is
    post-processing."""
    v = torch.rand(x.shape, generator=generator, dtype=torch.float64, device=x.device).sub_(0.5)
    sign = torch.sign(v).mul_(-b)
    return v.abs_().mul_(-2.0).add_(1.0).clamp_min_(_TAIL).log_().mul_(sign)


class InstaHideAugment:
    """Batched k-way mixup with uniform 1/k weights plus per-coordinate Laplace noise.

    ``noise = 0`` gives mixup without noise (not differentially private); ``k = 1`` gives noise
    without mixing. ``clip=(lo, hi)`` clamps the noisy images afterwards. ``labels`` is
    ``"soft"`` or ``"noised"`` (:func:`canonical_labels`; see the module docstring).
    """

    def __init__(self, k: int, noise: float, *, generator: torch.Generator, clip=None,
                 labels: str = "soft", num_classes: int | None = None):
        if int(k) != k or k < 1:
            raise InputError(f"k must be a positive integer; got {k!r}")
        if not (noise >= 0 and np.isfinite(noise)):
            raise InputError(f"noise must be a finite number >= 0; got {noise!r}")
        labels = canonical_labels(labels)
        self.k, self.noise, self.generator = int(k), float(noise), generator
        self.clip, self.labels, self.num_classes = clip, labels, num_classes

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """``x``: (B, k, ...) records, ``y``: (B, k) integer labels or (B, k, C) one-hot/soft.
        Returns the mixed, noised images (B, ...) and soft labels (B, C) (or None)."""
        if x.dim() < 2 or x.shape[1] != self.k:
            raise InputError(f"expected records grouped as (B, k={self.k}, ...); got shape "
                             f"{tuple(x.shape)}")
        z = x.mean(dim=1)
        if self.noise > 0:  # added in float64, then cast back (post-processing)
            z = (z.to(torch.float64) + laplace_like(z, self.noise, self.generator)).to(x.dtype)
        if self.clip is not None:
            z = z.clamp(self.clip[0], self.clip[1])
        if y is None:
            return z, None
        if y.dim() == 2:  # integer labels (one-hot (B, k, C) labels skip this)
            if self.num_classes is None:
                raise InputError("integer labels need num_classes")
            y = torch.nn.functional.one_hot(y.long(), self.num_classes).to(z.dtype)
        soft = y.to(z.dtype).mean(dim=1)
        if self.labels == "noised" and self.noise > 0:
            soft = (soft.to(torch.float64)
                    + laplace_like(soft, self.noise, self.generator)).to(z.dtype)
        return z, soft

    def mix_batch(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """Permutation mixing of a plain batch ``(B, ...)`` from any DataLoader: output j mixes
        record j with the records at position j of k - 1 independent permutations of the batch.
        Over a shuffled epoch without replacement (a standard ``shuffle=True`` loader) every
        record is used in exactly k slots: the ``permutation`` sampler of the accountant."""
        b = x.shape[0]
        dev = x.device
        idx = torch.stack([torch.arange(b, device=dev)]
                          + [torch.randperm(b, generator=self.generator, device=dev)
                             for _ in range(self.k - 1)], dim=1)
        return self(x[idx], None if y is None else y[idx])

    def mix_indices(self, data: torch.Tensor, idx: torch.Tensor, labels=None):
        """Mix ``data[idx]`` for an index batch ``idx`` of shape (B, k) from a sampler."""
        return self(data[idx], None if labels is None else labels[idx])


def torch_release_fn(k: int, noise: float, releases: int, sampler: str = "subsets",
                     device: str = "cpu", dtype=torch.float64):
    """The torch augmentation and sampler as a ``dpaccount.audit`` release function:
    ``fn(dataset (N, d) numpy, trials, rng) -> (trials, releases, d) numpy``.

    Every trial is an independent run: its own generator (seeded from ``rng``), its own draws of
    the sampler for ``releases`` outputs, its own noise. float64 by default, so that the audit
    tests the mechanism rather than float32 rounding (pass ``dtype=torch.float32`` to audit
    what training computes)."""

    sampler_cls = torch_sampler(sampler)

    def release(dataset, trials, rng):
        data = torch.as_tensor(np.asarray(dataset, dtype=float), dtype=dtype, device=device)
        n = data.shape[0]
        g = torch.Generator(device=device)
        g.manual_seed(int(rng.integers(0, 2**63 - 1)))
        aug = InstaHideAugment(k, noise, generator=g)
        if sampler_cls.independent_draws:
            # independent runs are independent draws: all trials' outputs in one batch
            idx = k_subsets(n, k, trials * releases, g, device)
            z, _ = aug.mix_indices(data, idx)
            return z.reshape(trials, releases, -1).cpu().numpy()
        out = torch.empty((trials, releases, data.shape[1]), dtype=dtype, device=device)
        for t in range(trials):
            mixer = sampler_cls(n, k, n, g)  # one batch per epoch
            done = 0
            while done < releases:
                for idx in mixer.epoch():
                    take = min(idx.shape[0], releases - done)
                    z, _ = aug.mix_indices(data, idx[:take])
                    out[t, done:done + take] = z
                    done += take
                    if done >= releases:
                        break
        return out.cpu().numpy()

    release.describe = lambda: (f"torch augmentation (training/), k={k}, b={noise:g}, "
                                f"T={releases}, {sampler}, {str(dtype).replace('torch.', '')}")
    return release

