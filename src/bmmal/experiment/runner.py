"""Run a benchmark grid: validate every cell, train each shared round 0 once, then run the strategy cells.

Layout of a benchmark directory:
- benchmark.yaml                         the benchmark config;
- round0/<key>/                          each shared round-0 model and metrics (the loop's round-0 cache);
- runs/<dataset>/<setting>/<strategy>/seed<k>/   one ActiveLearner run directory per cell;
- results.csv                            the tidy table of every cell's metrics (written at the end).

Finished cells are read back, not rerun; interrupted cells resume from their last committed round.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console

from bmmal.config import RunConfig
from bmmal.errors import BmmalError
from bmmal.experiment.grid import DEFAULT_SETTING, BenchmarkConfig, Cell, plan
from bmmal.experiment.results import RESULTS_FILE, tidy
from bmmal.progress import Steps, schedule_in_words
from bmmal.rundir import Round0Cache, RunDirectory
from bmmal.storage import atomic_write_text
from bmmal.tracking import tracked_cells

BENCHMARK_FILE = "benchmark.yaml"
ROUND0_DIR = "round0"


@dataclass(frozen=True)
class Task:
    """What a worker needs for one cell (or, with round0_only, for one shared round 0); picklable."""

    config: dict
    run_dir: str
    round0_cache: str
    threads: int
    round0_only: bool = False


def run_task(task: Task) -> list[dict]:
    """Worker entry point: run (or resume) one cell and return its per-round metrics."""
    import torch

    from bmmal.loop import ActiveLearner

    torch.set_num_threads(task.threads)
    config = RunConfig.model_validate(task.config)
    if task.round0_only:
        cache = Path(task.round0_cache)
        if Round0Cache(cache).holds(config):
            return []
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=".scratch-") as scratch:
            untracked = config.tracking.model_copy(update={"to": ()})  # the cells log round 0, not this scratch run
            round0 = config.model_copy(update={"rounds": 0, "tracking": untracked})
            return ActiveLearner(round0, Path(scratch) / "run", round0_cache=cache).run()
    run_dir = Path(task.run_dir)
    if RunDirectory(run_dir).holds_run():
        return ActiveLearner.resume(run_dir, round0_cache=task.round0_cache).run()
    return ActiveLearner(config, run_dir, round0_cache=task.round0_cache).run()


def cell_status(cell: Cell, run_dir: Path) -> str:
    """'done', 'resume' or 'new'; refuses a run directory that holds a run with other settings."""
    try:
        return RunDirectory(run_dir).status(cell.config)
    except BmmalError as e:
        raise BmmalError(f"{e}; choose another --out or remove it to rerun {cell.label}") from None


@dataclass
class BenchmarkRun:
    """What a benchmark did: the cells in grid order, their status before the run, and the results."""

    out_dir: Path
    cells: list[Cell]
    status: dict[tuple, str]
    histories: dict[tuple, list[dict]] = field(default_factory=dict)

    @property
    def computed(self) -> list[Cell]:
        return [c for c in self.cells if self.status[c.key] != "done"]

    def wide(self) -> pd.DataFrame:
        """One row per (cell, round) with the cell's labels in front."""
        frames = []
        for cell in self.cells:
            frame = pd.DataFrame(self.histories[cell.key])
            for i, (name, value) in enumerate(zip(("dataset", "setting", "strategy", "seed"), cell.key)):
                frame.insert(i, name, value)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def _run_all(executor, tasks: list[Task], console: Console, name: str, on_done) -> None:
    """Run tasks; `on_done(index, result)` returns what finished and its accuracy, shown as progress."""
    with Steps(console, name, len(tasks), workers=executor.workers) as steps:
        for index, result in executor.map_unordered(run_task, tasks):
            steps.step(*on_done(index, result))


def _last_accuracy(history: list[dict]) -> float | None:
    return history[-1]["accuracy_micro"] if history else None


def run_benchmark(config: BenchmarkConfig, out_dir: str | Path, executor, threads: int = 1,
                  console: Console | None = None) -> BenchmarkRun:
    console = console or Console(quiet=True)  # a library call prints nothing unless given a console
    out_dir = Path(out_dir)
    cells = tracked_cells(plan(config), out_dir, config.name)  # every cell validated before any work
    status = {cell.key: cell_status(cell, out_dir / cell.path) for cell in cells}
    run = BenchmarkRun(out_dir, cells, status)
    atomic_write_text(out_dir / BENCHMARK_FILE, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    cache = out_dir / ROUND0_DIR
    todo = run.computed
    n_done = len(cells) - len(todo)
    console.print(f"[bold]{config.name}[/]: {len(cells)} cells ({n_done} already done, "
                  f"{sum(status[c.key] == 'resume' for c in todo)} to resume) -> {out_dir}")
    for schedule in dict.fromkeys(schedule_in_words(c.config.initial_budget, c.config.budget, c.config.rounds)
                                  for c in cells):
        console.print(f"label schedule: {schedule}", highlight=False)

    # Round 0 once per (dataset, settings, seed), before the cells, so no two workers train the same one.
    shared = {}
    for cell in todo:
        if status[cell.key] == "new":
            shared.setdefault(Round0Cache.key(cell.config), cell)
    round0_cells = [c for c in shared.values() if not Round0Cache(cache).holds(c.config)]
    round0_tasks = [Task(c.config.model_dump(mode="json"), "", str(cache), threads, round0_only=True)
                    for c in round0_cells]
    cell_tasks = [Task(c.config.model_dump(mode="json"), str(out_dir / c.path), str(cache), threads) for c in todo]

    def round0_done(index, history):
        cell = round0_cells[index]
        setting = "" if cell.setting == DEFAULT_SETTING else f" [{cell.setting}]"
        return f"{cell.dataset}{setting} seed {cell.seed}", _last_accuracy(history)

    def finished(index, history):
        run.histories[todo[index].key] = history
        return todo[index].label, _last_accuracy(history)

    with executor:
        if round0_tasks:
            _run_all(executor, round0_tasks, console, "round 0", round0_done)
        if cell_tasks:
            _run_all(executor, cell_tasks, console, "cells", finished)
    for cell in cells:
        if cell.key not in run.histories:
            run.histories[cell.key] = RunDirectory(out_dir / cell.path).history()
    atomic_write_text(out_dir / RESULTS_FILE, tidy(run.wide()).to_csv(index=False))
    console.print(f"{len(todo)} cells run, {n_done} reused; results: {out_dir / RESULTS_FILE}")
    return run

