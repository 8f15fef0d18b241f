"""Figures. matplotlib is imported lazily and always with the non-interactive Agg backend."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(frame: pd.DataFrame, path: str | Path, metric: str = "accuracy_micro",
                    group: str = "strategy", title: str | None = None) -> Path:
    """Mean of `metric` over seeds against the number of labels, one line per `group`, +- 1 std band.

    `frame` is wide: one row per (group, seed, round) with columns n_labeled and `metric`.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, part in frame.groupby(group, sort=True):
        stats = part.groupby("n_labeled")[metric].agg(["mean", "std"]).fillna(0.0)
        x = stats.index.to_numpy()
        ax.plot(x, stats["mean"], marker="o", markersize=3, label=str(name))
        ax.fill_between(x, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.2)
    ax.set_xlabel("labelled samples")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or metric.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
