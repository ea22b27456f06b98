"""The privacy-region plot of a mechanism audit (matplotlib, an optional extra: ``[plot]``).

Every test's (FPR, FNR) pair must lie above the boundary of the accountant's (eps, delta)
region; the audit's empirical curve shows how close the optimal test gets to it.
"""

from __future__ import annotations

import io
from pathlib import Path

from ..files import atomic_write_bytes, check_output_file
from ..errors import InputError

__all__ = ["plot_privacy_region", "plot_region", "plot_roc"]


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'dpaccount[plot]'") from None
    return plt


def save_figure(fig, plt, path) -> Path:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def png_path(path) -> Path:
    """``path`` as a .png file that can be written (:func:`~dpaccount.files.check_output_file`)."""
    return check_output_file("plot", path, ".png")


def plot_region(path, *, region: dict, eps_lower: float, eps_upper, delta: float, test,
                statistic: str, title: str, profile: dict | None = None) -> Path:
    """The privacy-region plot: an empirical (FPR, FNR) curve, the chosen threshold, the region
    the audit certified and the accountant's (its whole profile when given; ``eps_upper=None``
    for a run with no guarantee)."""
    from .run import accountant_region

    path = png_path(path)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 5.2), dpi=120)
    if profile is not None:
        ax.fill_between(profile["fpr"], 0, profile["fnr"], color="tab:red", alpha=0.12,
                        label="forbidden by the accountant's whole profile")
        ax.plot(profile["fpr"], profile["fnr"], color="tab:red", lw=1.5)
    if eps_upper is not None:
        up = accountant_region(eps_upper, delta)
        ax.plot(up["fpr"], up["fnr"], color="tab:red", lw=1.0, ls=":",
                label=f"accountant at delta={delta:g}: eps<={eps_upper:.3g}")
    lo = accountant_region(eps_lower, delta)
    ax.plot(lo["fpr"], lo["fnr"], color="tab:blue", lw=1.2, ls="--",
            label=f"certified by the audit: eps>={eps_lower:.3g}")
    ax.plot(region["fpr"], region["fnr"], color="k", lw=1.0,
            label=f"empirical test ({statistic}), all thresholds")
    ax.plot([test.fpr_upper], [test.fnr_upper], "o", color="tab:blue", ms=5,
            label="chosen threshold (upper confidence rates)")
    ax.set_xscale("symlog", linthresh=1e-6)
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false positive rate (says D on D')")
    ax.set_ylabel("false negative rate (says D' on D)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6.5, loc="lower left")
    fig.tight_layout()
    return save_figure(fig, plt, path)


def plot_roc(path, pos, neg, *, title: str) -> Path:
    """ROC curve on log-log axes (the low-FPR regime that membership inference is about), with
    the diagonal of a guess."""
    import numpy as np

    path = png_path(path)
    plt = pyplot()
    from .bounds import error_counts

    ps, ns = np.asarray(pos, float).ravel(), np.asarray(neg, float).ravel()
    t = np.unique(np.concatenate([ps, ns]))[::-1]
    fp, fn = error_counts(ps, ns, t)  # "score >= t says in"
    tpr, fpr = 1.0 - fn / ps.size, fp / ns.size
    fig, ax = plt.subplots(figsize=(5.0, 4.6), dpi=120)
    floor = 0.5 / max(ps.size, ns.size)
    ax.plot(np.maximum(fpr, floor), np.maximum(tpr, floor), color="k", lw=1.2,
            drawstyle="steps-post", label="score threshold")
    grid = np.geomspace(floor, 1, 50)
    ax.plot(grid, grid, color="0.6", ls="--", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1.05)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, plt, path)


def plot_privacy_region(audit, path) -> Path:
    """Write a PNG of a mechanism audit's empirical (FPR, FNR) curve against the accountant's
    whole privacy profile and its (eps, delta) region at the audit's delta. Written atomically."""
    from .run import accountant_tradeoff

    m = audit.mechanism
    return plot_region(
        path, region=audit.region, eps_lower=audit.epsilon_lower_bound,
        eps_upper=audit.epsilon_upper_bound, delta=audit.delta, test=audit.test,
        statistic=audit.statistic, profile=accountant_tradeoff(m),
        title=(f"privacy region: k={m.k}, b={m.noise:g}, N={m.n}, T={m.releases}\n"
               f"{m.sampler.value}, {m.relation.value}, delta={audit.delta:g}, "
               f"{audit.trials} trials/side"))
