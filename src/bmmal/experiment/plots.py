"""Figures. matplotlib is imported lazily and always with the non-interactive Agg backend.

Every figure is one or more panels of curves against the number of labelled samples: one line per
strategy, the mean over seeds with a +- 1 std band. Input frames are wide: one row per
(strategy, seed, round) with n_labeled and one column per metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curve(ax, part: pd.DataFrame, column: str, colour, label: str | None, dashed: bool = False) -> None:
    stats = part.groupby("n_labeled")[column].agg(["mean", "std"]).fillna(0.0)
    if stats.empty:
        return
    x = stats.index.to_numpy()
    ax.plot(x, stats["mean"], marker="o", markersize=3, color=colour, label=label, linestyle="--" if dashed else "-")
    if not dashed:
        ax.fill_between(x, stats["mean"] - stats["std"], stats["mean"] + stats["std"], color=colour, alpha=0.15)


def panel_curves(frame: pd.DataFrame, path: str | Path, panels: Sequence[tuple[str, str]], ylabel: str,
                 title: str | None = None, group: str = "strategy", dashed: Sequence[str] | None = None,
                 dashed_label: str = "") -> Path:
    """One panel per (panel title, column); in each, one curve per `group` value. With `dashed` (one column
    per panel), each group also gets a dashed curve of that column in the same colour (no band)."""
    plt = _pyplot()
    n = len(panels)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), dpi=110, squeeze=False, sharey=True,
                             layout="constrained")
    groups = list(dict.fromkeys(frame[group]))
    colours = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20").colors  # one distinct colour per group
    for k, (panel_title, column) in enumerate(panels):
        ax = axes[k // cols][k % cols]
        for i, name in enumerate(groups):
            part = frame[frame[group] == name].dropna(subset=[column])
            colour = colours[i % len(colours)]
            _curve(ax, part, column, colour, str(name))
            if dashed:
                _curve(ax, frame[frame[group] == name].dropna(subset=[dashed[k]]), dashed[k], colour,
                       None, dashed=True)
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("labelled samples")
        if k % cols == 0:
            ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if dashed:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="grey", linestyle="--"))
        labels.append(dashed_label)
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def learning_curves(frame: pd.DataFrame, path: str | Path, metric: str = "accuracy_micro",
                    group: str = "strategy", title: str | None = None) -> Path:
    """Mean of `metric` over seeds against the number of labels, one line per `group`, +- 1 std band."""
    label = metric.replace("_", " ")
    return panel_curves(frame, path, [(title or label, metric)], label, group=group)


def modality_curves(frame: pd.DataFrame, path: str | Path, prefix: str, modalities: Sequence[str], ylabel: str,
                    title: str, dashed_prefix: str | None = None, dashed_label: str = "") -> Path:
    """One panel per modality of the columns `prefix + modality` (e.g. 'unimodal_accuracy_micro:')."""
    panels = [(m, f"{prefix}{m}") for m in modalities]
    dashed = [f"{dashed_prefix}{m}" for m in modalities] if dashed_prefix else None
    return panel_curves(frame, path, panels, ylabel, title, dashed=dashed, dashed_label=dashed_label)


def composition_bars(selected: pd.DataFrame, pool: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Per strategy, a stacked bar of the selected batches' dominant-modality shares next to a hatched one
    of the unlabelled pool's. Both frames: index = strategy, columns = modalities, rows summing to 1."""
    plt = _pyplot()
    import numpy as np

    strategies, modalities = list(selected.index), list(selected.columns)
    fig, ax = plt.subplots(figsize=(max(6.4, 0.75 * len(strategies) + 2.5), 4.2), dpi=110, layout="constrained")
    colours = plt.get_cmap("tab10" if len(modalities) <= 10 else "tab20").colors
    x = np.arange(len(strategies))
    for offset, frame, hatch in ((-0.2, selected, None), (0.2, pool, "//")):
        bottom = np.zeros(len(strategies))
        for i, m in enumerate(modalities):
            values = frame.loc[strategies, m].to_numpy()
            ax.bar(x + offset, values, width=0.38, bottom=bottom, color=colours[i % len(colours)], hatch=hatch,
                   edgecolor="white", label=m if hatch is None else None)
            bottom += values
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="white", edgecolor="grey", hatch="//", label="unlabelled pool"))
    ax.set_xticks(x, strategies, rotation=35, ha="right")
    ax.set_ylabel("share of samples whose dominant modality is m")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def difference_grid(diff: pd.DataFrame, p: pd.DataFrame, reference: tuple[str, str], path: str | Path,
                    title: str, alpha: float = 0.05) -> Path:
    """A rows x columns grid (e.g. strategies x trainers) of paired differences against one reference cell:
    colour = mean difference (diverging, centred on 0), text = the difference, '*' where p < alpha (and
    '**' where p < alpha / 5), 'ref.' on the reference cell. `diff` and `p`: same index and columns."""
    plt = _pyplot()
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    values = diff.to_numpy(dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    bound = max(float(finite.max()) if finite.size else 0.0, 1e-6)
    fig, ax = plt.subplots(figsize=(1.4 * len(diff.columns) + 2.6, 0.55 * len(diff.index) + 1.8), dpi=110,
                           layout="constrained")
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", norm=TwoSlopeNorm(0.0, -bound, bound),
                      aspect="auto")
    for i, row in enumerate(diff.index):
        for j, column in enumerate(diff.columns):
            if (row, column) == tuple(reference):
                text = "ref."
            elif not np.isfinite(values[i, j]):
                text = "–"
            else:
                q = p.loc[row, column]
                stars = "**" if q < alpha / 5 else "*" if q < alpha else ""
                text = f"{round(values[i, j], 3) + 0.0:+.3f}{stars}"
            dark = np.isfinite(values[i, j]) and abs(values[i, j]) > 0.6 * bound
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(diff.columns)), list(diff.columns))
    ax.set_yticks(range(len(diff.index)), list(diff.index))
    ax.set_xlabel(diff.columns.name or "")
    ax.set_ylabel(diff.index.name or "")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label=f"difference vs {' + '.join(reference)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
