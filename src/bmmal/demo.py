"""The demo: mfeat with a strong and a weak view, random vs BADGE vs BMMAL over a few seeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bmmal.config import RunConfig, load_run_config
from bmmal.errors import BmmalError
from bmmal.experiment.plots import learning_curves
from bmmal.loop import ActiveLearner
from bmmal.storage import atomic_write_text

DEMO_MODALITIES = ("pix", "mor")  # about 96 % and 74 % alone: a strong and a weak view


def demo_configs(strategies: Sequence[str], seeds: int, rounds: int, budget: int) -> list[RunConfig]:
    return [RunConfig(dataset={"name": "mfeat", "modalities": DEMO_MODALITIES}, strategy=s, seed=seed,
                      initial_budget=budget, budget=budget, rounds=rounds)
            for seed in range(seeds) for s in strategies]


def run_demo(out_dir: Path, strategies: Sequence[str] = ("random", "badge", "bmmal"), seeds: int = 3,
             rounds: int = 8, budget: int = 20, console: Console | None = None) -> pd.DataFrame:
    console = console or Console()
    configs = demo_configs(strategies, seeds, rounds, budget)  # validates before any work
    out_dir = Path(out_dir)
    console.print(f"[bold]bmmal demo[/]: mfeat, modalities {' + '.join(DEMO_MODALITIES)}, "
                  f"{budget} initial labels + {budget} per round x {rounds} rounds, "
                  f"strategies {', '.join(strategies)}, {seeds} seeds -> {out_dir}")
    frames = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        total = progress.add_task("all runs", total=len(configs) * (rounds + 1))
        for config in configs:
            name = f"{config.strategy}-seed{config.seed}"
            task = progress.add_task(name, total=rounds + 1)

            def advance(_row, task=task):
                progress.advance(task)
                progress.advance(total)

            run_dir = out_dir / "runs" / name
            if (run_dir / "config.yaml").is_file():  # finish or reuse an earlier demo with the same settings
                if load_run_config(run_dir / "config.yaml") != config:
                    raise BmmalError(f"{out_dir} holds a demo with other settings; choose another --out")
                learner = ActiveLearner.resume(run_dir, round0_cache=out_dir / "round0", on_round=advance)
            else:
                learner = ActiveLearner(config, run_dir, round0_cache=out_dir / "round0", on_round=advance)
            progress.advance(task, learner.completed_round + 1)
            progress.advance(total, learner.completed_round + 1)
            frame = pd.DataFrame(learner.run())
            frame.insert(0, "seed", config.seed)
            frame.insert(0, "strategy", config.strategy)
            frames.append(frame)
            progress.remove_task(task)
    results = pd.concat(frames, ignore_index=True)
    atomic_write_text(out_dir / "metrics.csv", results.to_csv(index=False))
    png = learning_curves(results, out_dir / "learning_curve.png", "accuracy_micro",
                          title="mfeat pix + mor: fused accuracy (micro)")
    print_tables(results, console)
    console.print(f"metrics: {out_dir / 'metrics.csv'}   learning curve: {png}")
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
    for column in ("strategy", "mean acc", "final micro", "final macro", f"{weak} head", f"{weak} share", "query s"):
        summary.add_column(column, justify="right")
    last = results[results["round"] == results["round"].max()].groupby("strategy")
    for s in strategies:
        part = results[results["strategy"] == s]
        summary.add_row(s, f"{part['accuracy_micro'].mean():.3f}", f"{last['accuracy_micro'].mean()[s]:.3f}",
                        f"{last['accuracy_macro'].mean()[s]:.3f}",
                        f"{last[f'unimodal_accuracy_micro:{weak}'].mean()[s]:.3f}",
                        f"{last[f'contribution:{weak}'].mean()[s]:.3f}",
                        f"{part['query_seconds'].mean():.3f}")
    console.print(summary)
