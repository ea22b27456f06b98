"""training: DP-InstaHide in torch, faithful to the accountant (needs the ``train`` extra).

- :mod:`.augment`: the mechanism as a batched torch transform (k-way mixup with uniform 1/k
  weights, per-coordinate Laplace noise, labels mixed or public, optional clipping after the
  noise), device-agnostic and seeded by a ``torch.Generator``; and the same augmentation as an
  audit release function;
- :mod:`.samplers`: i.i.d. k-subsets of the whole training set for every output (what the
  theorem covers) and shuffled-batch permutation mixing;
- :mod:`.data`: scikit-learn's bundled digits, CIFAR-10 from a local folder (parsed without
  executing pickled code), and a synthetic generator;
- :mod:`.models`: a small MLP and a small CNN;
- :mod:`.train`: the training loop. It describes what it ran to dpaccount (an ``InstaHide``
  with the releases it actually drew) and reports dpaccount's epsilon: no privacy arithmetic
  here.
"""

__all__ = ["augment", "samplers", "data", "models", "train"]
