"""Strategies x seeds on one RunConfig (e.g. configs/emoji9.yaml), through ActiveLearner with a shared round 0.

Every (strategy, seed) run starts from the same round-0 model of its seed (`round0_cache`), so the curves
differ only by what each strategy selects. Writes <out>/results.csv (one row per run and round) and
<out>/summary.md (fused and per-modality test accuracy per round, mean and standard deviation over seeds,
and the paired BMMAL-minus-baseline differences on the weakest modality). Finished runs are read back.

    python benchmarks/realistic_al.py configs/emoji9.yaml --seeds 5 --out benchmarks/runs/emoji9
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from bmmal import strategies
from bmmal.experiment import analysis
from bmmal.loop import ActiveLearner
from bmmal.resolve import load_run_config
from bmmal.rundir import RunDirectory
from bmmal.storage import atomic_write_text

DEFAULT_STRATEGIES = ("random", "entropy", "badge", "bmmal")


def run_grid(config_path: str | Path, out: str | Path, seeds: int = 5,
             strategy_names=DEFAULT_STRATEGIES) -> pd.DataFrame:
    """Run (or read back) every strategy x seed; one row per run and round."""
    base = load_run_config(config_path)
    out = Path(out)
    rows = []
    for seed in range(seeds):
        for name in [s for s in strategy_names if s in strategies.available()]:
            config = base.model_copy(update={"seed": seed, "strategy": name, "strategy_params": {}})
            run_dir = out / name / f"seed{seed}"
            if RunDirectory(run_dir).holds_run():
                learner = ActiveLearner.resume(run_dir, round0_cache=out / "round0")
            else:
                learner = ActiveLearner(config, run_dir, round0_cache=out / "round0")
            for row in learner.run():
                rows.append({"strategy": name, "seed": seed, **row})
            print(f"{name} seed {seed}: fused accuracy {rows[-1]['accuracy_micro']:.3f}", flush=True)
    table = pd.DataFrame(rows)
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    return table


def summary(table: pd.DataFrame) -> str:
    """Markdown: fused accuracy per round, per-modality accuracy at the last round, weakest-modality deltas."""
    modalities = [c.split(":", 1)[1] for c in table.columns if c.startswith("unimodal_accuracy_micro:")]
    round0 = table[table["round"] == 0]
    weakest = min(modalities, key=lambda m: round0[f"unimodal_accuracy_micro:{m}"].mean())
    lines = ["Fused test accuracy (micro, %), mean ± sd over seeds:", ""]
    fused = table.pivot_table(index=["round", "n_labeled"], columns="strategy", values="accuracy_micro",
                              aggfunc=["mean", "std"]) * 100
    strategy_order = list(dict.fromkeys(table["strategy"]))
    lines.append("| round | labels | " + " | ".join(strategy_order) + " |")
    lines.append("|---|---|" + "---|" * len(strategy_order))
    for (r, n), row in fused.iterrows():
        cells = [f"{row[('mean', s)]:.1f} ± {row[('std', s)]:.1f}" for s in strategy_order]
        lines.append(f"| {r} | {n} | " + " | ".join(cells) + " |")

    lines += ["", "Per-modality test accuracy of the unimodal heads (micro, %, mean over seeds), per round:", ""]
    per_modality = table.pivot_table(index=["round", "n_labeled"], columns="strategy",
                                     values=[f"unimodal_accuracy_micro:{m}" for m in modalities]) * 100
    lines.append("| round | labels | " + " | ".join(f"{m} {s}" for m in modalities for s in strategy_order) + " |")
    lines.append("|---|---|" + "---|" * (len(modalities) * len(strategy_order)))
    for (r, n), row in per_modality.iterrows():
        cells = [f"{row[(f'unimodal_accuracy_micro:{m}', s)]:.1f}" for m in modalities for s in strategy_order]
        lines.append(f"| {r} | {n} | " + " | ".join(cells) + " |")

    last = table[table["round"] == table["round"].max()]
    lines += ["", (f"Last round ({int(last['n_labeled'].iloc[0])} labels): fused and per-modality (unimodal head) "
                   "test accuracy (micro, %), mean ± sd over seeds; mean Shapley share of each modality:"), ""]
    columns = ["accuracy_micro", *(f"unimodal_accuracy_micro:{m}" for m in modalities)]
    shares = [f"contribution:{m}" for m in modalities] if f"contribution:{modalities[0]}" in table else []
    lines.append("| strategy | fused | " + " | ".join(modalities) + " | " +
                 " | ".join(f"share {c.split(':', 1)[1]}" for c in shares) + " |")
    lines.append("|---|---|" + "---|" * (len(modalities) + len(shares)))
    for s in strategy_order:
        part = last[last["strategy"] == s]
        cells = [f"{part[c].mean() * 100:.1f} ± {part[c].std() * 100:.1f}" for c in columns]
        cells += [f"{part[c].mean():.2f}" for c in shares]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")

    lines += ["", (f"Weakest modality at round 0: {weakest}. Paired AULC difference bmmal − baseline over seeds "
                   "(AULC as in docs/reports.md, over every round; percentage points; seeds where bmmal is ahead; "
                   "two-sided Wilcoxon signed-rank p over seeds):"), ""]
    lines.append(f"| baseline | fused | {weakest} |")
    lines.append("|---|---|---|")
    aulcs = {column: analysis.aulc_per_seed(table, column).pivot(index="seed", columns="strategy", values="aulc")
             for column in ("accuracy_micro", f"unimodal_accuracy_micro:{weakest}")}
    for s in strategy_order:
        if s == "bmmal" or "bmmal" not in strategy_order:
            continue
        cells = []
        for per_seed in aulcs.values():
            p = analysis.paired(per_seed["bmmal"] * 100, per_seed[s] * 100)
            cells.append(f"{p.mean_diff:+.2f} ({p.wins}/{p.n}, p={p.p_value:.2f})")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    later = table[table["round"] > 0].set_index(["strategy", "seed", "round"])
    if f"selected_contribution:{weakest}" in table:
        lines += ["", (f"What each strategy selected (rounds 1..last, mean over rounds and seeds): the {weakest} "
                       f"modality's Shapley share in the selected samples, and how often {weakest} is the dominant "
                       "modality in the selection vs in the unlabelled pool:"), ""]
        lines.append(f"| strategy | {weakest} share (selected) | {weakest} dominant (selected) | "
                     f"{weakest} dominant (pool) | contribution gap selected / pool |")
        lines.append("|---|---|---|---|---|")
        for s in strategy_order:
            part = later.loc[s]
            lines.append(f"| {s} | {part[f'selected_contribution:{weakest}'].mean():.3f} | "
                         f"{part[f'selected_dominant_share:{weakest}'].mean():.3f} | "
                         f"{part[f'pool_dominant_share:{weakest}'].mean():.3f} | "
                         f"{part['selected_contribution_gap'].mean():.3f} / {part['pool_contribution_gap'].mean():.3f} |")
    return "\n".join(lines) + "\n"


def full_label_reference(config_path: str | Path, seed: int = 0) -> str:
    """Markdown: logistic regression on each modality's frozen features, and on all of them concatenated
    ("early fusion"), trained on every training label of the config's split: the ceiling for the curves."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from bmmal import datasets

    config = load_run_config(config_path)
    train, test = datasets.load(config.dataset.name, config.dataset.modalities, seed=seed, **config.dataset.options)
    views = {m: (train.features[m], test.features[m]) for m in train.modalities}
    views["early fusion"] = tuple(np.hstack([d.features[m] for m in train.modalities]) for d in (train, test))
    cells = []
    for name, (x_train, x_test) in views.items():
        model = LogisticRegression(max_iter=3000).fit(x_train, train.labels)
        cells.append(f"{name} {model.score(x_test, test.labels) * 100:.1f}")
    return f"All {len(train)} training labels, logistic regression, test accuracy (micro, %): " + ", ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--summary-only", action="store_true", help="summarise <out>/results.csv, run nothing")
    parser.add_argument("--reference", action="store_true", help="print the all-labels logistic-regression ceiling")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.reference:
        print(full_label_reference(args.config))
        return
    if not args.out:
        parser.error("--out is required")
    if args.summary_only:
        table = pd.read_csv(Path(args.out) / "results.csv")
    else:
        table = run_grid(args.config, args.out, args.seeds, tuple(args.strategies.split(",")))
    text = summary(table)
    atomic_write_text(Path(args.out) / "summary.md", text)
    print(text)


if __name__ == "__main__":
    main()
