"""The sweep view of a benchmark: each strategy against BADGE over the axes of a grid (the pitfall map).

A benchmark becomes a sweep when its labels carry axes as "axis=value" pairs: settings always do
("trainer=joint"), and dataset labels may ("interaction=unique,lo=0.5", since a settings axis cannot
change dataset options). Every (dataset, setting) is one point of the sweep. Per point and strategy:
the AULC of the fused accuracy and its paired difference against BADGE over seeds (wins/ties/losses,
two-sided Wilcoxon p), and the *weak* modality's head: the modality whose unimodal head (or linear probe,
where the runs measured probes) has the lowest mean test accuracy at that point, with its AULC, its mean Shapley share at the last round and its share
among the dominant modalities of the selected samples. The figure shows, over two chosen axes (the
first two axes with more than one value, by default) and for each value of the remaining axes: the
difference against BADGE, with significance marked, and the weak head's AULC alongside.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bmmal.experiment import analysis

BASELINE = "badge"
MARKS = ((0.01, "**"), (0.05, "*"))  # p below the threshold -> mark, as in the factorial figure


def axes_of(label: str) -> dict[str, str]:
    """"a=x,b=y" -> {"a": "x", "b": "y"}; parts without "=" (a plain name, "default") carry no axis."""
    pairs = (part.partition("=") for part in str(label).split(","))
    return {name.strip(): value.strip() for name, sep, value in pairs if sep and name.strip()}


def with_axes(wide: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The wide table with one column per axis read off the dataset and setting labels, and the axis
    names in first-seen order (dataset axes first). Axis names that clash with a column get a suffix."""
    labels = {(d, s): {**axes_of(d), **axes_of(s)} for d, s in wide[["dataset", "setting"]].drop_duplicates()
              .itertuples(index=False)}
    names = list(dict.fromkeys(a for parsed in labels.values() for a in parsed))
    columns = {a: a if a not in wide.columns else f"{a} (axis)" for a in names}
    out = wide.copy()
    for a in names:
        out[columns[a]] = [labels[(d, s)].get(a, "–") for d, s in zip(wide["dataset"], wide["setting"])]
    return out, [columns[a] for a in names]


def is_sweep(wide: pd.DataFrame) -> bool:
    """At least two points and at least one axis with two values."""
    frame, axes = with_axes(wide)
    return frame[["dataset", "setting"]].drop_duplicates().shape[0] > 1 and any(
        frame[a].nunique() > 1 for a in axes)


def modality_accuracy(point: pd.DataFrame, modality: str) -> str:
    """The column that measures one modality: its linear probe where the runs recorded probes (`probes: true`,
    the measure that stays meaningful when the unimodal heads are not trained), else its unimodal head."""
    probe = f"probe_accuracy_micro:{modality}"
    return probe if probe in point else f"unimodal_accuracy_micro:{modality}"


def weak_modality(point: pd.DataFrame, modalities: list[str]) -> str | None:
    """The modality with the lowest mean test accuracy (`modality_accuracy`) over all rows of a point."""
    columns = {m: modality_accuracy(point, m) for m in modalities}
    means = {m: point[c].mean() for m, c in columns.items() if c in point}
    means = {m: v for m, v in means.items() if np.isfinite(v)}
    return min(means, key=means.get) if len(means) > 1 else None


def point_summary(point: pd.DataFrame, modalities: list[str], baseline: str = BASELINE) -> pd.DataFrame:
    """One row per strategy of one (dataset, setting): AULC, the paired difference against `baseline`,
    and the weak modality's head AULC, last-round contribution share and selected-dominant share."""
    per_seed = analysis.aulc_per_seed(point, "accuracy_micro")
    against = analysis.paired_against(per_seed, baseline) if baseline in set(per_seed["strategy"]) else {}
    weak = weak_modality(point, modalities)
    weak_head = analysis.aulc_per_seed(point, modality_accuracy(point, weak)) if weak else None
    last = point[point["round"] == point["round"].max()]
    rows = []
    for strategy, part in per_seed.groupby("strategy", sort=False):
        vs = against.get(strategy)
        row = {"strategy": strategy, "seeds": len(part), "aulc": part["aulc"].mean(),
               "delta": vs.mean_diff if vs else np.nan, "wins": vs.wins if vs else np.nan,
               "ties": vs.ties if vs else np.nan, "losses": vs.losses if vs else np.nan,
               "p": vs.p_value if vs else np.nan, "weak": weak or "–"}
        if weak:
            row["weak_head_aulc"] = weak_head.loc[weak_head["strategy"] == strategy, "aulc"].mean()
            row["weak_contribution"] = last.loc[last["strategy"] == strategy, f"contribution:{weak}"].mean() \
                if f"contribution:{weak}" in last else np.nan
            chosen = point[(point["strategy"] == strategy) & (point["round"] >= 1)]
            for key, column in (("weak_selected", "selected_dominant_share"), ("weak_pool", "pool_dominant_share")):
                column = f"{column}:{weak}"
                row[key] = chosen[column].mean() if column in chosen else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def summary(wide: pd.DataFrame, modalities_of, baseline: str = BASELINE) -> tuple[pd.DataFrame, list[str]]:
    """`point_summary` for every (dataset, setting), with its axis values; `modalities_of(dataset, setting)`
    gives the point's modality names. Returns the table and the axis columns."""
    frame, axes = with_axes(wide)
    parts = []
    for (dataset, setting), point in frame.groupby(["dataset", "setting"], sort=False):
        table = point_summary(point, modalities_of(dataset, setting), baseline)
        for a in axes:
            table[a] = point[a].iloc[0]
        parts.append(table.assign(dataset=dataset, setting=setting))
    return pd.concat(parts, ignore_index=True), axes


def mark(p: float) -> str:
    for threshold, text in MARKS:
        if np.isfinite(p) and p < threshold:
            return text
    return ""


def _ordered(values) -> list[str]:
    """Axis values in numeric order where they are all numbers, else in first-seen order."""
    values = list(dict.fromkeys(values))
    try:
        return sorted(values, key=float)
    except ValueError:
        return values


def sweep_figure(table: pd.DataFrame, x: str, y: str, path: str | Path, title: str,
                 baseline: str = BASELINE) -> Path:
    """Two rows of heatmaps, one column per strategy, cells = (x value, y value): top, the mean paired AULC
    difference against `baseline` (diverging colours, * p < 0.05, ** p < 0.01, W/L below); bottom, the weak
    modality's head AULC. `table`: rows of `summary` for one value of every other axis."""
    from bmmal.experiment.plots import _pyplot

    plt = _pyplot()
    strategies = list(dict.fromkeys(table["strategy"]))
    xs, ys = _ordered(table[x]), _ordered(table[y])
    fig, axes = plt.subplots(2, len(strategies), figsize=(1.2 + 0.9 * len(xs) * len(strategies), 1.6 + 1.5 * len(ys)),
                             dpi=110, squeeze=False, layout="constrained")
    limit = np.nanmax(np.abs(table["delta"].to_numpy(dtype=float)), initial=0.0) or 0.01
    weak = table["weak_head_aulc"].to_numpy(dtype=float) if "weak_head_aulc" in table else np.array([np.nan])
    low, high = (np.nanmin(weak), np.nanmax(weak)) if np.isfinite(weak).any() else (0.0, 1.0)
    for k, strategy in enumerate(strategies):
        part = table[table["strategy"] == strategy].set_index([y, x])
        delta, head = np.full((len(ys), len(xs)), np.nan), np.full((len(ys), len(xs)), np.nan)
        notes = [["" for _ in xs] for _ in ys]
        heads = [["" for _ in xs] for _ in ys]
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                if (yv, xv) not in part.index:
                    continue
                r = part.loc[(yv, xv)]
                r = r.iloc[0] if isinstance(r, pd.DataFrame) else r
                delta[i, j] = r["delta"]
                if np.isfinite(r["delta"]):
                    notes[i][j] = f"{100 * r['delta']:+.1f}{mark(r['p'])}\n{int(r['wins'])}/{int(r['losses'])}"
                if "weak_head_aulc" in r and np.isfinite(r["weak_head_aulc"]):
                    head[i, j] = r["weak_head_aulc"]
                    heads[i][j] = f"{r['weak_head_aulc']:.2f}\n{r['weak']}"
        top, bottom = axes[0][k], axes[1][k]
        image = top.imshow(delta, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
        bottom_image = bottom.imshow(head, cmap="viridis", vmin=low, vmax=high, aspect="auto")
        # white text on the dark ends of each colour map
        dark = (np.abs(np.nan_to_num(delta)) > 0.6 * limit, np.nan_to_num(head, nan=high) < low + 0.45 * (high - low))
        for ax, texts, on_dark in ((top, notes, dark[0]), (bottom, heads, dark[1])):
            for i in range(len(ys)):
                for j in range(len(xs)):
                    ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=7,
                            color="white" if on_dark[i, j] else "black")
            ax.set_xticks(range(len(xs)), xs, fontsize=7, rotation=30)
            ax.set_yticks(range(len(ys)), ys if k == 0 else [""] * len(ys), fontsize=7)
            ax.set_xlabel(x, fontsize=8)
        top.set_title(strategy if strategy != baseline else f"{strategy} (reference)", fontsize=9)
        if k == 0:
            top.set_ylabel(y, fontsize=8)
            bottom.set_ylabel(y, fontsize=8)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label=f"Δ AULC vs {baseline}")
    fig.colorbar(bottom_image, ax=axes[1].tolist(), shrink=0.8, label="weak head AULC")
    fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def sweep_table(table: pd.DataFrame, axes: list[str], render) -> str:
    """A markdown table of the summary; `render(headers, rows)` formats it (report.table)."""
    headers = [*axes, "strategy", "AULC", "Δ vs badge", "W/T/L", "p", "weak", "weak head AULC",
               "weak contrib. (last)", "weak-dominant selected (pool)"]

    def num(v, fmt="{:.3f}"):
        return "–" if not np.isfinite(v) else fmt.format(v)

    rows = []
    for _, r in table.iterrows():
        wtl = "–" if not np.isfinite(r["delta"]) else f"{int(r['wins'])}/{int(r['ties'])}/{int(r['losses'])}"
        rows.append([*(str(r[a]) for a in axes), r["strategy"], num(r["aulc"]),
                     num(r["delta"], "{:+.4f}") + mark(r["p"]), wtl, num(r["p"], "{:.3g}"), str(r["weak"]),
                     num(r.get("weak_head_aulc", np.nan)), num(r.get("weak_contribution", np.nan)),
                     f"{num(r.get('weak_selected', np.nan))} ({num(r.get('weak_pool', np.nan))})"])
    return render(headers, rows)


def sections(wide: pd.DataFrame, modalities_of, fig_dir: Path, run_dir: Path, render,
             plot_axes: tuple[str, str] | None = None) -> list[str]:
    """The report's "Sweep" section (nothing for a benchmark that is not a sweep)."""
    if not is_sweep(wide) or BASELINE not in set(wide["strategy"]):
        return []
    table, axes = summary(wide, modalities_of)
    varying = [a for a in axes if table[a].nunique() > 1]
    if len(axes) < 2:
        table, axes = table.assign(**{"(none)": "–"}), [*axes, "(none)"]
    x, y = plot_axes or (varying + [a for a in axes if a not in varying])[:2]
    rest = [a for a in varying if a not in (x, y)]
    lines = ["## Sweep: every strategy against badge over the grid's axes", "",
             (f"Axes: {'; '.join(a + ' (' + ', '.join(_ordered(table[a])) + ')' for a in axes)}. Per point: AULC "
              "of the fused accuracy (micro), its paired difference against badge over seeds (* p < 0.05, ** p < "
              "0.01, two-sided Wilcoxon signed-rank; the smallest p is 2 / 2^seeds: 0.0625 with 5 seeds, so "
              "nothing can be marked below 6 seeds; W/T/L says more). "
              "weak = the modality whose unimodal head (its linear probe, where the runs measured probes) has the "
              "lowest mean test accuracy at that point; its head's (probe's) AULC, its mean Shapley contribution share on the test split at the last round, and the share of "
              "selected samples (rounds ≥ 1) whose dominant modality it is, with the same share in the unlabelled "
              "pool in brackets."), ""]
    groups = table.groupby(rest, sort=False) if rest else [((), table)]
    for values, part in groups:
        values = values if isinstance(values, tuple) else (values,)
        fixed = ", ".join(f"{a}={v}" for a, v in zip(rest, values))
        stem = "sweep" + ("-" + "-".join("".join(c if c.isalnum() or c in "-_." else "_" for c in f"{a}={v}")
                                         for a, v in zip(rest, values)) if rest else "")
        png = sweep_figure(part, x, y, fig_dir / f"{stem}.png",
                           f"Δ AULC vs {BASELINE} (top, points ×100, wins/losses) and weak head AULC (bottom)"
                           + (f"; {fixed}" if fixed else ""))
        caption = f"Sweep over {x} × {y}" + (f" ({fixed})" if fixed else "")
        lines += [f"**{caption}**", "", f"![{caption}]({png.relative_to(run_dir).as_posix()})", ""]
    lines += ["### Sweep table", "", sweep_table(table, axes, render), ""]
    return lines
