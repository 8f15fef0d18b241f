"""The query x trainer factorial: strategies x trainers x seeds, read off a benchmark with a trainer axis.

A benchmark varies the trainer through a settings axis (default name "trainer", e.g.
`settings: {trainer: {joint: {train: {trainer: joint}}, ogm_ge: {...}}}`), so its cells' setting labels
carry "trainer=<value>". Every (strategy, trainer) cell of a seed starts from the round 0 of its
(dataset, seed, trainer): the round-0 cache key includes the training settings.

The frame functions take the wide table of one dataset (see `results.wide`) with a `trainer` column
added by `with_trainer`; the remaining setting (other axes, if any) is in `rest`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bmmal.experiment import analysis

AXIS = "trainer"
BASELINE = ("badge", "joint")


def split_setting(setting: str, axis: str = AXIS) -> tuple[str | None, str]:
    """("a=x,trainer=y,b=z", "trainer") -> ("y", "a=x,b=z"); (None, setting) without that axis."""
    parts = setting.split(",") if setting else []
    value, rest = None, []
    for part in parts:
        name, _, label = part.partition("=")
        if name == axis and value is None:
            value = label
        else:
            rest.append(part)
    return value, ",".join(rest)


def with_trainer(wide: pd.DataFrame, axis: str = AXIS) -> pd.DataFrame:
    """The wide table with `trainer` and `rest` columns; rows without the trainer axis are dropped."""
    split = wide["setting"].map(lambda s: split_setting(s, axis))
    out = wide.assign(trainer=split.str[0], rest=split.str[1])
    return out[out["trainer"].notna()].reset_index(drop=True)


def has_trainer_axis(wide: pd.DataFrame, axis: str = AXIS) -> bool:
    return bool(wide["setting"].map(lambda s: split_setting(s, axis)[0] is not None).any())


def aulc_per_seed(frame: pd.DataFrame, metric: str = "accuracy_micro") -> pd.DataFrame:
    """AULC of `metric` for every (strategy, trainer, seed): columns strategy, trainer, seed, aulc."""
    return analysis.aulc_per_seed(frame, metric, by=("strategy", "trainer", "seed"))


def factorial_table(frame: pd.DataFrame, metric: str = "accuracy_micro",
                    baseline: tuple[str, str] = BASELINE) -> pd.DataFrame:
    """One row per (strategy, trainer): AULC mean, std (ddof 1, 0 for one seed), n seeds, and the paired
    difference against the `baseline` (strategy, trainer) cell on the seeds both have: mean difference,
    wins/ties/losses and the two-sided Wilcoxon p (NaN where the baseline is absent or for itself)."""
    per_seed = aulc_per_seed(frame, metric)
    base = per_seed[(per_seed["strategy"] == baseline[0]) & (per_seed["trainer"] == baseline[1])]
    base = base.set_index("seed")["aulc"]
    rows = []
    for (s, t), part in per_seed.groupby(["strategy", "trainer"], sort=False):
        values = part.set_index("seed")["aulc"]
        row = {"strategy": s, "trainer": t, "n": len(values), "mean": values.mean(),
               "std": values.std(ddof=1) if len(values) > 1 else 0.0,
               "diff": np.nan, "wins": 0, "ties": 0, "losses": 0, "p": np.nan}
        common = values.index.intersection(base.index)
        if (s, t) != tuple(baseline) and len(common):
            p = analysis.paired(values[common].to_numpy(), base[common].to_numpy())
            row.update(diff=p.mean_diff, wins=p.wins, ties=p.ties, losses=p.losses, p=p.p_value)
        rows.append(row)
    return pd.DataFrame(rows, columns=["strategy", "trainer", "n", "mean", "std", "diff", "wins", "ties",
                                       "losses", "p"])


def balance_by_trainer(frame: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
    """Per trainer and round, the balance metrics of `analysis.balance_per_round` averaged over strategies
    and seeds: each modality's unimodal accuracy and contribution share, their gap and entropy."""
    stats = analysis.balance_per_round(frame.assign(strategy=frame["trainer"]), modalities)
    return stats.rename(columns={"strategy": "trainer"})


def difference_figure(frame: pd.DataFrame, path, title: str, metric: str = "accuracy_micro",
                      baseline: tuple[str, str] = BASELINE):
    """The strategy x trainer figure: each cell's paired AULC difference against the `baseline` cell, with
    its Wilcoxon significance marked (plots.difference_grid)."""
    from bmmal.experiment import plots

    facts = factorial_table(frame, metric, baseline)
    strategies = list(dict.fromkeys(frame["strategy"]))
    trainers = list(dict.fromkeys(frame["trainer"]))
    diff = facts.pivot(index="strategy", columns="trainer", values="diff").reindex(index=strategies, columns=trainers)
    p = facts.pivot(index="strategy", columns="trainer", values="p").reindex(index=strategies, columns=trainers)
    diff.index.name, diff.columns.name = "query strategy", "trainer"
    return plots.difference_grid(diff, p, baseline, path, title)


# ---- markdown ------------------------------------------------------------------------------------
def _cell(row: pd.Series, baseline: tuple[str, str]) -> str:
    text = f"{row['mean']:.3f} ± {row['std']:.3f}"
    if (row["strategy"], row["trainer"]) == tuple(baseline):
        return f"{text} (ref.)"
    if not np.isfinite(row["diff"]):
        return text
    p = "–" if not np.isfinite(row["p"]) else f"{row['p']:.2g}"
    return f"{text}<br>{round(row['diff'], 4) + 0.0:+.4f} ({row['wins']}/{row['ties']}/{row['losses']}, p {p})"


def markdown(frame: pd.DataFrame, modalities: list[str], title: str, metric: str = "accuracy_micro",
             baseline: tuple[str, str] = BASELINE, figure: str | None = None) -> list[str]:
    """The factorial section of a report: the AULC table, the figure of paired differences (`figure`: its
    path relative to the report, if drawn) and the per-round balance per trainer."""
    from bmmal.experiment.report import table

    facts = factorial_table(frame, metric, baseline)
    strategies = list(dict.fromkeys(frame["strategy"]))
    trainers = list(dict.fromkeys(frame["trainer"]))
    cells = {(r["strategy"], r["trainer"]): _cell(r, baseline) for _, r in facts.iterrows()}
    rows = [[s, *(cells.get((s, t), "–") for t in trainers)] for s in strategies]
    n_seeds = frame["seed"].nunique()
    out = [f"## {title}: query x trainer factorial", "",
           (f"AULC of fused accuracy ({metric.removeprefix('accuracy_')}), mean ± std over {n_seeds} seeds; rows "
            f"are query strategies, columns trainers. Second line: paired difference against "
            f"**{baseline[0]} + {baseline[1]}** over the same seeds (mean; wins/ties/losses; two-sided Wilcoxon p)."),
           "", table(["strategy \\ trainer", *trainers], rows), ""]
    if figure:
        out += [f"![paired AULC difference against {' + '.join(baseline)}]({figure})",
                ("Colour and number: paired AULC difference against the reference cell; * p < 0.05, ** p < 0.01 "
                 "(two-sided Wilcoxon over seeds, not corrected for the number of cells)."), ""]
    stats = balance_by_trainer(frame, modalities)
    probed = [m for m in modalities if f"probe_accuracy_micro:{m}" in stats]
    headers = ["trainer", "labels", *(f"acc {m}" for m in modalities), "gap",
               *(f"contrib. {m}" for m in modalities), "entropy", *(f"probe {m}" for m in probed)]
    rows = []
    for t in trainers:
        for _, r in stats[stats["trainer"] == t].sort_values("round").iterrows():
            rows.append([t, str(int(r["n_labeled"])), *(f"{r[f'unimodal_accuracy_micro:{m}']:.3f}" for m in modalities),
                         f"{r['modality_gap']:.3f}", *(f"{r[f'contribution:{m}']:.3f}" for m in modalities),
                         f"{r['contribution_entropy']:.3f}", *(f"{r[f'probe_accuracy_micro:{m}']:.3f}" for m in probed)])
    out += ["### Modality balance per round, per trainer",
            "Means over strategies and seeds. acc m = test accuracy of modality m's unimodal head; gap = strongest "
            "minus weakest; contrib. m = mean Shapley contribution share on the test split; entropy = "
            "H(shares) / log M (1 = equal contributions)"
            + ("; probe m = linear-probe accuracy of m's embeddings (docs/reports.md)." if probed else "."),
            "", table(headers, rows), ""]
    return out


def sections(wide: pd.DataFrame, long: pd.DataFrame, axis: str = AXIS, run_dir=None,
             fig_dir: str = "figures") -> list[str]:
    """Factorial sections for every (dataset, other settings) of a results table with a trainer axis; with a
    `run_dir`, each with its difference figure written to run_dir/fig_dir."""
    from pathlib import Path

    from bmmal.experiment.report import _slug
    from bmmal.experiment.results import modalities

    if not has_trainer_axis(wide, axis):
        return []
    out = []
    frame = with_trainer(wide, axis)
    for (dataset, rest), part in frame.groupby(["dataset", "rest"], sort=False):
        mods = modalities(long[long["dataset"] == dataset])
        title = dataset if not rest else f"{dataset} [{rest}]"
        figure = None
        if run_dir is not None:
            figure = f"{fig_dir}/{_slug(*(p for p in (dataset, rest) if p))}-factorial-difference.png"
            difference_figure(part, Path(run_dir) / figure, f"{title}: paired AULC difference, strategy x trainer")
        out += markdown(part, mods, title, figure=figure)
    return out
