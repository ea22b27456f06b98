"""Which records each mixed sample uses: the two samplers the accountant knows (docs/theory.md Sec. 2).

- :class:`KSubsetSampler` (``subsets``): every output draws an independent uniform k-subset of
  the *whole* training set (without replacement inside the subset). What the paper's theorem
  and the amplified accountant cover.
- :class:`PermutationMixer` (``permutation``): outputs are the records of a shuffled batch, each
  mixed with the records at the same position of k - 1 further independent permutations of the
  batch: every record is used in exactly k output slots per epoch; no amplification by sampling.

Both yield, per training step, an index tensor of shape ``(B, k)``: row j lists the records mixed
into output j. Epochs have N outputs, so ``T = epochs * N``; the number actually drawn is
counted in ``releases``.
"""

from __future__ import annotations

import torch
from dpaccount.errors import InputError

__all__ = ["KSubsetSampler", "PermutationMixer", "GroupBatchSampler", "k_subsets", "TORCH_SAMPLERS",
           "torch_sampler"]


def k_subsets(n: int, k: int, rows: int, generator: torch.Generator,
              device="cpu") -> torch.Tensor:
    """``rows`` independent uniform k-subsets of range(n), shape (rows, k).

    When k^2 <= n, rows are drawn as k independent uniform indices and rows with a repeat are
    drawn again, whole (every repeat-free row is equally likely, so a kept row is a uniformly
    ordered uniform k-subset; at most about k^2/(2n) <= 1/2 of the rows repeat). Otherwise
    Floyd's algorithm (Bentley & Floyd 1987), one column for all rows at a time: for
    j = n-k .. n-1 draw t uniform in [0, j]; if t is already in the row, take j instead (order
    within a row is then not uniform, which a uniform-weight mean does not see)."""
    if not 1 <= k <= n:
        raise InputError(f"k must be between 1 and n; got k={k}, n={n}")
    if k == 1 or k * k <= n:
        out = torch.randint(0, n, (rows, k), generator=generator, device=device)
        if k == 1:
            return out
        while True:
            srt = out.sort(dim=1).values
            bad = (srt[:, 1:] == srt[:, :-1]).any(dim=1).nonzero().flatten()
            if bad.numel() == 0:
                return out
            out[bad] = torch.randint(0, n, (bad.numel(), k), generator=generator,
                                     device=device)
    cols = []
    for j in range(n - k, n):
        t = torch.randint(0, j + 1, (rows,), generator=generator, device=device)
        if cols:
            dup = torch.zeros(rows, dtype=torch.bool, device=device)
            for c in cols:
                dup |= c == t
            t = torch.where(dup, torch.full_like(t, j), t)
        cols.append(t)
    return torch.stack(cols, dim=1)


class _Sampler:
    """Shared state: N records, k per output, B outputs per step, and the releases drawn."""

    def __init__(self, n: int, k: int, batch_size: int, generator: torch.Generator):
        if not 1 <= k <= n:
            raise InputError(f"k must be between 1 and n; got k={k}, n={n}")
        self.n, self.k, self.batch_size, self.generator = n, k, batch_size, generator
        self.releases = 0


class KSubsetSampler(_Sampler):
    """Index batches for ``subsets``: ``ceil(N / B)`` steps per epoch, N outputs per epoch."""

    name = "subsets"
    #: every output is an independent draw (outputs of independent runs can be drawn together)
    independent_draws = True

    def epoch(self):
        done = 0
        while done < self.n:
            b = min(self.batch_size, self.n - done)
            idx = k_subsets(self.n, self.k, b, self.generator, self.generator.device)
            done += b
            self.releases += b
            yield idx


class GroupBatchSampler:
    """A ``batch_sampler`` for ``torch.utils.data.DataLoader``: each batch is the flat list of
    the B*k indices of one batch of ``sampler`` (rows of k consecutive indices), for ``epochs``
    epochs. Reshape what the loader returns to ``(B, k, ...)`` and give it to
    :class:`training.augment.InstaHideAugment`."""

    def __init__(self, sampler, epochs: int = 1):
        self.sampler, self.epochs = sampler, epochs

    def __iter__(self):
        for _ in range(self.epochs):
            for idx in self.sampler.epoch():
                yield idx.flatten().tolist()

    def __len__(self):
        return self.epochs * -(-self.sampler.n // self.sampler.batch_size)


class PermutationMixer(_Sampler):
    """Index batches for ``permutation``: a shuffled epoch cut into batches; inside each batch,
    output j mixes the record at position j of the batch with the records at position j of
    k - 1 further independent permutations of the same batch."""

    name = "permutation"
    independent_draws = False

    def epoch(self):
        dev = self.generator.device
        order = torch.randperm(self.n, generator=self.generator, device=dev)
        for s in range(0, self.n, self.batch_size):
            batch = order[s:s + self.batch_size]
            b = batch.numel()
            cols = [batch] + [batch[torch.randperm(b, generator=self.generator, device=dev)]
                              for _ in range(self.k - 1)]
            self.releases += b
            yield torch.stack(cols, dim=1)


#: the torch samplers, by the name dpaccount's events use for them
TORCH_SAMPLERS = {cls.name: cls for cls in (KSubsetSampler, PermutationMixer)}


def torch_sampler(name: str):
    """The torch sampler class for ``name`` (``subsets`` or ``permutation``)."""
    try:
        return TORCH_SAMPLERS[name]
    except (KeyError, TypeError):
        raise InputError(f"sampler must be one of {', '.join(TORCH_SAMPLERS)}; got "
                         f"{name!r}") from None
