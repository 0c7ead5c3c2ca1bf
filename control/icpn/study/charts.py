"""The plots of a study report, the same for every backend: per-path utilisation over the
run, utilisation over time, and busiest/mean over time, one line or bar group per policy.

Inputs are plain arrays (shares of each path's capacity), so the model backend (per
measurement window of simulated time) and the BMv2 backend (per counter sample of wall
time) draw the same figures from what each measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

POLICY_TITLES = {
    "ecmp_5tuple": "5-tuple ECMP",
    "apn_deep_hash": "APN deep hash (APN ID, DestQP)",
    "deep_hash_elephants": "deep hash + elephant splitting",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def per_path(
    path: Path,
    title: str,
    names: Sequence[str],
    utilisation: Mapping[str, npt.ArrayLike],
    offered: Mapping[str, npt.ArrayLike] | None = None,
) -> Path:
    """Bars: each policy's utilisation of each path (share of capacity) over the run;
    ticks: the load offered to it, where known."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(utilisation)
    x = np.arange(len(names))
    for k, (policy, util) in enumerate(utilisation.items()):
        at = x + (k - (len(utilisation) - 1) / 2) * width
        bars = ax.bar(at, np.asarray(util) * 100, width, label=POLICY_TITLES.get(policy, policy))
        if offered is not None:
            colour = bars[0].get_facecolor()
            ax.scatter(at, np.asarray(offered[policy]) * 100, marker="_", s=200, color=colour)
    ax.axhline(100, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, names)
    ylabel = "utilisation, % of capacity"
    ax.set_ylabel(ylabel + (" (bar)\noffered load (tick)" if offered is not None else ""))
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(utilisation))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def over_time(
    path: Path,
    title: str,
    names: Sequence[str],
    times: Mapping[str, npt.ArrayLike],
    utilisation: Mapping[str, npt.ArrayLike],
    xlabel: str,
) -> Path:
    """One panel per policy: each path's utilisation (share of capacity, (samples, paths))
    against time."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(utilisation), 1, figsize=(8, 7), sharex=True, sharey=True)
    for ax, (policy, util) in zip(np.atleast_1d(axes), utilisation.items(), strict=True):
        for i, name in enumerate(names):
            ax.plot(times[policy], np.asarray(util)[:, i] * 100, lw=1, label=name)
        ax.set_title(POLICY_TITLES.get(policy, policy), fontsize=9)
        ax.set_ylabel("% of capacity")
        ax.set_ylim(0, 105)
    first, last = np.atleast_1d(axes)[0], np.atleast_1d(axes)[-1]
    first.legend(fontsize=7, ncol=len(names))
    last.set_xlabel(xlabel)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def busiest_over_time(
    path: Path,
    times: Mapping[str, npt.ArrayLike],
    busiest: Mapping[str, npt.ArrayLike],
    goal: float,
    xlabel: str,
    ylabel: str,
) -> Path:
    """Each policy's busiest/mean per interval, against the whole-run goal."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for policy, values in busiest.items():
        ax.plot(times[policy], values, lw=1, label=POLICY_TITLES.get(policy, policy))
    ax.axhline(goal, color="grey", lw=0.8, ls="--", label=f"goal {goal:g} (whole run)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
