"""Numerics below the accountants: closed-form composition, Renyi DP of one release, the
subsampled Laplace pair's loss and the PLD lattice. No policy and no knowledge of samplers or
events here: the accountants (:mod:`dpaccount.accountants`) decide what to compute."""
