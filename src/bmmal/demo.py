"""The demo: mfeat with a strong and a weak view, random vs BADGE vs BMMAL over a few seeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from bmmal.experiment import analysis
from bmmal.experiment.executors import LocalExecutor
from bmmal.experiment.grid import BenchmarkConfig
from bmmal.experiment.plots import learning_curves
from bmmal.experiment.runner import run_benchmark
from bmmal.storage import atomic_write_text

DEMO_MODALITIES = ("pix", "mor")  # about 96 % and 74 % alone: a strong and a weak view


def demo_benchmark(strategies: Sequence[str], seeds: int, rounds: int, budget: int) -> BenchmarkConfig:
    return BenchmarkConfig(name="demo", datasets={"mfeat": {"name": "mfeat", "modalities": DEMO_MODALITIES}},
                           strategies=list(strategies), seeds=seeds,
                           base={"initial_budget": budget, "budget": budget, "rounds": rounds})


def run_demo(out_dir: Path, strategies: Sequence[str] = ("random", "badge", "bmmal"), seeds: int = 3,
             rounds: int = 8, budget: int = 20, console: Console | None = None) -> pd.DataFrame:
    """The demo is a one-dataset benchmark run in this process; an earlier demo in `out_dir` is reused."""
    console = console or Console()
    config = demo_benchmark(strategies, seeds, rounds, budget)
    out_dir = Path(out_dir)
    console.print(f"[bold]bmmal demo[/]: mfeat, modalities {' + '.join(DEMO_MODALITIES)}, "
                  f"{budget} initial labels + {budget} per round x {rounds} rounds, "
                  f"strategies {', '.join(strategies)}, {seeds} seeds -> {out_dir}")
    # one torch thread: these small MLPs gain nothing from more, and busy cores make more much slower
    run = run_benchmark(config, out_dir, LocalExecutor(workers=1), 1, console)
    results = run.wide().drop(columns=["dataset", "setting"])
    atomic_write_text(out_dir / "metrics.csv", results.to_csv(index=False))
    png = learning_curves(results, out_dir / "learning_curve.png", "accuracy_micro",
                          title="mfeat pix + mor: fused accuracy (micro)")
    print_tables(results, console)
    console.print(f"metrics: {out_dir / 'metrics.csv'}   learning curve: {png}   report: `bmmal report {out_dir}`")
    return results


def print_tables(results: pd.DataFrame, console: Console) -> None:
    weak = DEMO_MODALITIES[-1]
    means = results.groupby(["strategy", "n_labeled"])["accuracy_micro"].agg(["mean", "std"]).fillna(0.0)
    strategies = sorted(results["strategy"].unique())
    table = Table(title="fused accuracy (micro), mean +- std over seeds")
    table.add_column("labels", justify="right")
    for s in strategies:
        table.add_column(s, justify="right")
    for n in sorted(results["n_labeled"].unique()):
        best = max(strategies, key=lambda s: means.loc[(s, n), "mean"])
        cells = []
        for s in strategies:
            text = f"{means.loc[(s, n), 'mean']:.3f} +- {means.loc[(s, n), 'std']:.3f}"
            cells.append(f"[bold green]{text}[/]" if s == best else text)
        table.add_row(str(n), *cells)
    console.print(table)
    summary = Table(title="summary (mean over seeds)")
    for column in ("strategy", "AULC", "final micro", "final macro", f"{weak} head", f"{weak} share", "query s"):
        summary.add_column(column, justify="right")
    last = results[results["round"] == results["round"].max()].groupby("strategy")
    aulc = analysis.aulc_per_seed(results, "accuracy_micro").groupby("strategy")["aulc"].mean()
    for s in strategies:
        part = results[results["strategy"] == s]
        summary.add_row(s, f"{aulc[s]:.3f}", f"{last['accuracy_micro'].mean()[s]:.3f}",
                        f"{last['accuracy_macro'].mean()[s]:.3f}",
                        f"{last[f'unimodal_accuracy_micro:{weak}'].mean()[s]:.3f}",
                        f"{last[f'contribution:{weak}'].mean()[s]:.3f}",
                        f"{part['query_seconds'].mean():.3f}")
    console.print(summary)
