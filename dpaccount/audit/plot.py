"""The privacy-region plot of a mechanism audit (matplotlib, an optional extra: ``[plot]``).

Every test's (FPR, FNR) pair must lie above the boundary of the accountant's (eps, delta)
region; the audit's empirical curve shows how close the optimal test gets to it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["plot_privacy_region"]


def plot_privacy_region(audit, path) -> Path:
    """Write a PNG of the audit's empirical (FPR, FNR) curve against the accountant's region
    boundary (at the audit's delta) and the boundary the audit certified. Written atomically."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plotting needs matplotlib: pip install 'dpaccount[plot]'") from None
    from .run import accountant_region

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plot must be a .png file; got {str(path)!r}")
    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=120)
    up = accountant_region(audit.epsilon_upper_bound, audit.delta)
    lo = accountant_region(audit.epsilon_lower_bound, audit.delta)
    ax.fill_between(up["fpr"], 0, up["fnr"], color="tab:red", alpha=0.12,
                    label=f"forbidden by accountant: eps={audit.epsilon_upper_bound:.3g}")
    ax.plot(up["fpr"], up["fnr"], color="tab:red", lw=1.5)
    ax.plot(lo["fpr"], lo["fnr"], color="tab:blue", lw=1.2, ls="--",
            label=f"certified by audit: eps>={audit.epsilon_lower_bound:.3g}")
    r = audit.region
    ax.plot(r["fpr"], r["fnr"], color="k", lw=1.0, label=f"empirical test ({audit.statistic})")
    t = audit.test
    ax.plot([t.fpr_upper], [t.fnr_upper], "o", color="tab:blue", ms=5,
            label="chosen threshold (CP upper rates)")
    ax.set_xscale("symlog", linthresh=1e-4)
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false positive rate (says D on D')")
    ax.set_ylabel("false negative rate (says D' on D)")
    m = audit.mechanism
    ax.set_title(f"privacy region: k={m.k}, b={m.noise:g}, N={m.n}, T={m.releases}\n"
                 f"{m.sampler.value}, {m.relation.value}, delta={audit.delta:g}, "
                 f"{audit.trials} trials/side", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
