"""The privacy-region plot of a mechanism audit (matplotlib, an optional extra: ``[plot]``).

Every test's (FPR, FNR) pair must lie above the boundary of the accountant's (eps, delta)
region; the audit's empirical curve shows how close the optimal test gets to it.
"""

from __future__ import annotations

import io
from pathlib import Path

from .._files import atomic_write_bytes

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
    from .run import accountant_tradeoff

    fig, ax = plt.subplots(figsize=(5.6, 5.2), dpi=120)
    prof = accountant_tradeoff(audit.mechanism)
    if prof is not None:
        ax.fill_between(prof["fpr"], 0, prof["fnr"], color="tab:red", alpha=0.12,
                        label="forbidden by the accountant's whole profile")
        ax.plot(prof["fpr"], prof["fnr"], color="tab:red", lw=1.5)
    up = accountant_region(audit.epsilon_upper_bound, audit.delta)
    ax.plot(up["fpr"], up["fnr"], color="tab:red", lw=1.0, ls=":",
            label=f"accountant at delta={audit.delta:g}: eps<={audit.epsilon_upper_bound:.3g}")
    lo = accountant_region(audit.epsilon_lower_bound, audit.delta)
    ax.plot(lo["fpr"], lo["fnr"], color="tab:blue", lw=1.2, ls="--",
            label=f"certified by the audit: eps>={audit.epsilon_lower_bound:.3g}")
    r = audit.region
    ax.plot(r["fpr"], r["fnr"], color="k", lw=1.0,
            label=f"empirical test ({audit.statistic}), all thresholds")
    t = audit.test
    ax.plot([t.fpr_upper], [t.fnr_upper], "o", color="tab:blue", ms=5,
            label="chosen threshold (upper confidence rates)")
    ax.set_xscale("symlog", linthresh=1e-6)
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false positive rate (says D on D')")
    ax.set_ylabel("false negative rate (says D' on D)")
    m = audit.mechanism
    ax.set_title(f"privacy region: k={m.k}, b={m.noise:g}, N={m.n}, T={m.releases}\n"
                 f"{m.sampler.value}, {m.relation.value}, delta={audit.delta:g}, "
                 f"{audit.trials} trials/side", fontsize=9)
    ax.legend(fontsize=6.5, loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
