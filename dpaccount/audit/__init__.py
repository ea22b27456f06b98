"""Empirical privacy audits: measured lower bounds on epsilon, to set beside the accountants'.

- :mod:`.simulate`: neighbouring datasets and the numpy reference mechanism, as a release
  function ``(dataset, trials, rng) -> (trials, T, d)`` that any implementation can replace;
- :mod:`.statistics`: the exact log-likelihood ratio and a black-box projection statistic;
- :mod:`.bounds`: Clopper-Pearson epsilon lower bounds, sound threshold selection, the ceiling;
- :mod:`.run`: :func:`audit_mechanism`, resumable, with the accountant's upper bound beside it;
- :mod:`.plot`: the privacy-region PNG (matplotlib, optional).

numpy and scipy only (tqdm for progress bars); no torch.
"""

from .bounds import ceiling, clopper_pearson_upper, epsilon_from_rates, epsilon_lower_bound, \
    select_and_bound
from .run import MechanismAudit, audit_mechanism
from .simulate import InstaHideReleases, NeighbourPair, worst_case_pair
from .statistics import ExactLLR, Projection

__all__ = [
    "audit_mechanism",
    "MechanismAudit",
    "InstaHideReleases",
    "NeighbourPair",
    "worst_case_pair",
    "ExactLLR",
    "Projection",
    "ceiling",
    "clopper_pearson_upper",
    "epsilon_from_rates",
    "epsilon_lower_bound",
    "select_and_bound",
]
