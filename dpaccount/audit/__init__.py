"""Empirical privacy audits: measured lower bounds on epsilon, to set beside the accountants'.

- :mod:`.simulate`: neighbouring datasets and the numpy reference mechanism, as a release
  function ``(dataset, trials, rng) -> (trials, T, d)`` that any implementation can replace;
- :mod:`.statistics`: the exact log-likelihood ratio, a black-box projection statistic, and a
  learned one (the implementation's own likelihood ratio, fitted on trials of its own);
- :mod:`.bounds`: Clopper-Pearson epsilon lower bounds, sound threshold selection, the ceiling,
  and the check of certified errors against an accountant's whole privacy profile;
- :mod:`.contract`: loading a user's implementation and checking that it draws its randomness
  from the rng it is given;
- :mod:`.one_run` and :mod:`.fdp_one_run`: one-run audits of trained models from canary guesses
  (Steinke, Nasr, Jagielski 2023; the f-DP audit of Mahloujifar, Melis, Chaudhuri 2024);
- :mod:`.run`: :func:`audit_mechanism`, resumable, with the accountant's upper bound beside it,
  optionally searching over neighbouring pairs;
- :mod:`.plot`: the privacy-region PNG (matplotlib, optional).

numpy and scipy only (tqdm for progress bars); no torch.
"""

from .bounds import ceiling, clopper_pearson_upper, epsilon_from_rates, epsilon_lower_bound, \
    select_and_bound
from .run import MechanismAudit, audit_mechanism
from .simulate import InstaHideReleases, NeighbourPair, candidate_pairs, worst_case_pair
from .statistics import ExactLLR, LearnedLLR, Projection

__all__ = [
    "audit_mechanism",
    "MechanismAudit",
    "InstaHideReleases",
    "NeighbourPair",
    "worst_case_pair",
    "candidate_pairs",
    "ExactLLR",
    "LearnedLLR",
    "Projection",
    "ceiling",
    "clopper_pearson_upper",
    "epsilon_from_rates",
    "epsilon_lower_bound",
    "select_and_bound",
]
