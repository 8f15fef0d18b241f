"""`bmmal report`: report.md and PNG figures from a benchmark's results.csv.

One section per (dataset, setting): fused accuracy per round (micro and macro; mean +- std over seeds,
best in bold), area under the learning curve, paired comparisons against random and badge, modality
balance per round, selection balance per round, with missing modalities the accuracy on complete and
incomplete samples and how many of each were selected, and the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bmmal.experiment import analysis, plots
from bmmal.experiment.results import modalities, read_results, wide
from bmmal.storage import atomic_write_text

REPORT_FILE = "report.md"
FIGURES_DIR = "figures"
BASELINES = ("random", "badge")
ACCURACIES = (("micro", "accuracy_micro"), ("macro", "accuracy_macro"))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; the first column left-aligned, the rest right-aligned."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _pm(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def _num(value: float, digits: int = 3) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.3g}"


def accuracy_section(frame: pd.DataFrame, strategies: list[str]) -> list[str]:
    n_seeds = frame["seed"].nunique()
    out = []
    for kind, metric in ACCURACIES:
        stats = analysis.round_stats(frame, metric)
        rows = []
        for (r, n), part in stats.groupby(["round", "n_labeled"], sort=True):
            by = part.set_index("strategy")
            best = by["mean"].max()
            cells = []
            for s in strategies:
                if s not in by.index:
                    cells.append("–")
                    continue
                text = _pm(by.at[s, "mean"], by.at[s, "std"])
                cells.append(f"**{text}**" if np.isclose(by.at[s, "mean"], best, rtol=0, atol=1e-12) else text)
            rows.append([str(r), str(n), *cells])
        out += [f"### Fused accuracy ({kind}) per round",
                f"Mean ± std over {n_seeds} seeds; **bold** = best mean in the round. "
                + ("Micro = fraction of test samples correct." if kind == "micro"
                   else "Macro = mean per-class recall."), "",
                table(["round", "labels", *strategies], rows), ""]
    return out


def aulc_section(frame: pd.DataFrame, strategies: list[str]) -> list[str]:
    per_seed = {kind: analysis.aulc_per_seed(frame, metric) for kind, metric in ACCURACIES}
    rows = []
    for s in strategies:
        cells = []
        for kind, _ in ACCURACIES:
            v = per_seed[kind].loc[per_seed[kind]["strategy"] == s, "aulc"]
            cells.append(_pm(v.mean(), v.std(ddof=1) if len(v) > 1 else 0.0))
        rows.append([s, *cells])
    out = ["### Area under the learning curve",
           ("AULC as defined in bmmal's docs/reports.md: the mean accuracy over the label range (trapezoid "
            "rule). Mean ± std over seeds."), "",
           table(["strategy", "AULC (micro)", "AULC (macro)"], rows), ""]
    final = analysis.final_per_seed(frame, "accuracy_micro")
    out += ["### Paired comparisons over seeds",
            ("Per seed, strategy minus baseline (same seeds, same round 0). W/T/L = wins/ties/losses; p = "
             "two-sided Wilcoxon signed-rank test (– below 2 seeds; 1 when every difference is 0)."), ""]
    for baseline in BASELINES:
        if baseline not in strategies:
            out += [f"No comparison against {baseline}: it is not in this benchmark.", ""]
            continue
        against_aulc = analysis.paired_against(per_seed["micro"], baseline)
        against_final = analysis.paired_against(final, baseline, value="value")
        rows = []
        for s in strategies:
            if s == baseline or s not in against_aulc:
                continue
            a, f = against_aulc[s], against_final[s]
            rows.append([s, f"{a.mean_diff:+.4f}", f"{a.wins}/{a.ties}/{a.losses}", _p(a.p_value),
                         f"{f.mean_diff:+.4f}", f"{f.wins}/{f.ties}/{f.losses}", _p(f.p_value)])
        out += [f"Against **{baseline}**:", "",
                table(["strategy", "Δ AULC (micro)", "W/T/L", "p", "Δ final acc. (micro)", "W/T/L", "p"], rows), ""]
    return out


def balance_section(frame: pd.DataFrame, strategies: list[str], mods: list[str]) -> list[str]:
    stats = analysis.balance_per_round(frame, mods)
    probed = [m for m in mods if f"probe_accuracy_micro:{m}" in stats]
    headers = ["strategy", "labels", *(f"acc {m}" for m in mods), "gap", *(f"contrib. {m}" for m in mods),
               "entropy", *(f"probe {m}" for m in probed)]
    rows = []
    for s in strategies:
        for _, r in stats[stats["strategy"] == s].sort_values("round").iterrows():
            rows.append([s, str(int(r["n_labeled"])), *(_num(r[f"unimodal_accuracy_micro:{m}"]) for m in mods),
                         _num(r["modality_gap"]), *(_num(r[f"contribution:{m}"]) for m in mods),
                         _num(r["contribution_entropy"]), *(_num(r[f"probe_accuracy_micro:{m}"]) for m in probed)])
    return ["### Modality balance per round",
            ("Means over seeds. acc m = test accuracy (micro) of modality m's unimodal head; gap = strongest minus "
             "weakest of those; contrib. m = mean Shapley contribution share of m on the test split at the true "
             "label; entropy = H(shares) / log M (1 = every modality contributes equally)"
             + ("; probe m = test accuracy of a linear probe (logistic regression) on m's embeddings of the "
                "labeled rows: how much m's encoder learned, also when its unimodal head is not trained."
                if probed else ".")), "",
            table(headers, rows), ""]


def selection_section(frame: pd.DataFrame, strategies: list[str], mods: list[str]) -> list[str]:
    stats = analysis.selection_per_round(frame, mods)
    out = ["### Selection balance per round",
           ("Means over seeds. For each modality m: the share of the selected batch whose dominant modality "
            "(largest contribution share at the predicted class) is m, and in brackets the same share in the "
            "unlabelled pool it was chosen from; gap = mean (largest minus smallest share) of the selected "
            "samples, and of the pool."), ""]
    if stats.empty:
        return out + ["Not recorded: these runs kept no selection statistics (`selection_stats: false`).", ""]
    headers = ["strategy", "round", *(f"dominant {m} (pool)" for m in mods), "gap selected", "gap pool"]
    rows = []
    for s in strategies:
        for _, r in stats[stats["strategy"] == s].sort_values("round").iterrows():
            rows.append([s, str(int(r["round"])),
                         *(f"{r[f'selected_dominant_share:{m}']:.3f} ({r[f'pool_dominant_share:{m}']:.3f})"
                           for m in mods),
                         _num(r["selected_contribution_gap"]), _num(r["pool_contribution_gap"])])
    return out + [table(headers, rows), ""]


def completeness_section(frame: pd.DataFrame, strategies: list[str]) -> list[str]:
    """Pools with missing modalities: fused accuracy on complete and incomplete test samples, and how many
    complete and incomplete samples each round selected (nothing when every sample is complete)."""
    if "accuracy_micro:incomplete" not in frame:
        return []
    frame = frame.sort_values(["strategy", "seed", "round"]).copy()
    batch = frame.groupby(["strategy", "seed"])["n_labeled"].diff()
    share = frame.get("selected_complete", np.nan)
    frame["complete selected"], frame["incomplete selected"] = share * batch, (1 - share) * batch
    columns = ["accuracy_micro:complete", "accuracy_micro:incomplete", "complete selected", "incomplete selected",
               "pool_complete"]
    means = frame.groupby(["strategy", "round"])[[c for c in columns if c in frame] + ["n_labeled"]].mean()
    rows = []
    for s in strategies:
        for (_, r), row in means.loc[[s]].iterrows():
            rows.append([s, str(int(r)), str(int(row["n_labeled"])), _num(row["accuracy_micro:complete"]),
                         _num(row["accuracy_micro:incomplete"]), _num(row.get("complete selected", np.nan), 1),
                         _num(row.get("incomplete selected", np.nan), 1), _num(row.get("pool_complete", np.nan))])
    n_test = frame[["n_complete", "n_incomplete"]].iloc[0] if "n_complete" in frame else None
    counts = (f" The test split has {int(n_test['n_complete'])} complete and {int(n_test['n_incomplete'])} "
              "incomplete samples (seed of the first row).") if n_test is not None else ""
    return ["### Missing modalities",
            ("Means over seeds. acc complete / incomplete = fused test accuracy (micro) on the samples with every "
             "modality / without some; complete / incomplete selected = samples of each kind chosen in the "
             "round; pool complete = fraction of complete samples in the unlabelled pool it was chosen from."
             + counts), "",
            table(["strategy", "round", "labels", "acc complete", "acc incomplete", "complete selected",
                   "incomplete selected", "pool complete"], rows), ""]


def figures(frame: pd.DataFrame, mods: list[str], stem: str, fig_dir: Path, title: str) -> list[tuple[str, Path]]:
    out = [("Learning curves", plots.panel_curves(
        frame, fig_dir / f"{stem}-learning-curves.png", [(f"fused accuracy ({k})", m) for k, m in ACCURACIES],
        "accuracy", f"{title}: fused accuracy, mean ± std over seeds")),
        ("Per-modality accuracy", plots.modality_curves(
            frame, fig_dir / f"{stem}-modality-accuracy.png", "unimodal_accuracy_micro:", mods,
            "unimodal head accuracy (micro)", f"{title}: accuracy of each modality's unimodal head")),
        ("Contribution shares", plots.modality_curves(
            frame, fig_dir / f"{stem}-contribution.png", "contribution:", mods, "mean Shapley share",
            f"{title}: contribution share of each modality on the test split"))]
    if all(f"probe_accuracy_micro:{m}" in frame for m in mods):
        out.append(("Per-modality linear-probe accuracy", plots.modality_curves(
            frame, fig_dir / f"{stem}-probe-accuracy.png", "probe_accuracy_micro:", mods,
            "linear-probe accuracy (micro)", f"{title}: linear probe on each modality's embeddings")))
    if not analysis.selection_per_round(frame, mods).empty:
        out.append(("Selection composition over rounds", plots.modality_curves(
            frame[frame["round"] >= 1], fig_dir / f"{stem}-selection.png", "selected_dominant_share:", mods,
            "share of batch with dominant modality m", f"{title}: composition of the selected batches",
            dashed_prefix="pool_dominant_share:", dashed_label="unlabelled pool")))
        selected, pool = analysis.composition(frame, mods)
        out.append(("Selection composition, mean over rounds", plots.composition_bars(
            selected, pool, fig_dir / f"{stem}-composition.png",
            f"{title}: dominant modality of the selected samples (solid) and of the pool (hatched)")))
    return out


def _slug(*parts: str) -> str:
    return "-".join("".join(c if c.isalnum() or c in "-_." else "_" for c in p) for p in parts)


def write_report(run_dir: str | Path) -> Path:
    """Write RUN_DIR/report.md and RUN_DIR/figures/*.png; returns the report's path."""
    run_dir = Path(run_dir)
    long = read_results(run_dir)
    table_wide = wide(long)
    lines = [f"# Benchmark report: {run_dir.name}", "",
             (f"{long['dataset'].nunique()} dataset(s), {long['setting'].nunique()} setting(s), "
              f"strategies {', '.join(dict.fromkeys(long['strategy']))}, "
              f"{long['seed'].nunique()} seeds ({', '.join(map(str, sorted(long['seed'].unique())))}), "
              f"rounds 0–{int(long['round'].max())}. Source: `results.csv`."), ""]
    for (dataset, setting), frame in table_wide.groupby(["dataset", "setting"], sort=False):
        strategies = list(dict.fromkeys(frame["strategy"]))
        mods = modalities(long[(long["dataset"] == dataset) & (long["setting"] == setting)])
        title = dataset if setting == "default" else f"{dataset} [{setting}]"
        lines += [f"## {title}", f"Modalities: {', '.join(mods)}.", ""]
        lines += accuracy_section(frame, strategies)
        lines += aulc_section(frame, strategies)
        lines += balance_section(frame, strategies, mods)
        lines += selection_section(frame, strategies, mods)
        lines += completeness_section(frame, strategies)
        lines += ["### Figures", ""]
        for caption, png in figures(frame, mods, _slug(dataset, setting), run_dir / FIGURES_DIR, title):
            lines += [f"**{caption}**", "", f"![{caption}]({png.relative_to(run_dir).as_posix()})", ""]
    from bmmal.experiment import factorial  # imported here: it renders its tables with `table` above

    lines += factorial.sections(table_wide, long, run_dir=run_dir, fig_dir=FIGURES_DIR)  # with a trainer axis
    from bmmal.experiment import sweep

    def modalities_of(dataset, setting):
        return modalities(long[(long["dataset"] == dataset) & (long["setting"] == setting)])

    lines += sweep.sections(table_wide, modalities_of, run_dir / FIGURES_DIR, run_dir, table)  # "axis=value" grids
    path = run_dir / REPORT_FILE
    atomic_write_text(path, "\n".join(lines))
    return path
