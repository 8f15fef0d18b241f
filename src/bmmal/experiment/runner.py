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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bmmal.config import RunConfig, load_run_config
from bmmal.errors import BmmalError
from bmmal.experiment.grid import BenchmarkConfig, Cell, plan
from bmmal.experiment.results import RESULTS_FILE, tidy
from bmmal.loop import CONFIG_FILE, STATE_FILE, round0_key
from bmmal.storage import atomic_write_text, read_json

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
        if (cache / round0_key(config) / "round0.json").is_file():
            return []
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=".scratch-") as scratch:
            return ActiveLearner(config.model_copy(update={"rounds": 0}), Path(scratch) / "run",
                                 round0_cache=cache).run()
    run_dir = Path(task.run_dir)
    if (run_dir / CONFIG_FILE).is_file():
        return ActiveLearner.resume(run_dir, round0_cache=task.round0_cache).run()
    return ActiveLearner(config, run_dir, round0_cache=task.round0_cache).run()


def cell_status(cell: Cell, run_dir: Path) -> str:
    """'done', 'resume' or 'new'; refuses a run directory that holds a run with other settings."""
    if not (run_dir / CONFIG_FILE).is_file():
        if run_dir.exists() and any(run_dir.iterdir()):
            raise BmmalError(f"{run_dir} is not empty and holds no run; remove it to rerun {cell.label}")
        return "new"
    if load_run_config(run_dir / CONFIG_FILE) != cell.config:
        raise BmmalError(f"{run_dir} holds a run with other settings than {cell.label}; choose another --out")
    state = run_dir / STATE_FILE
    if state.is_file() and read_json(state)["completed_round"] >= cell.config.rounds:
        return "done"
    return "resume"


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


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("done {task.completed} · running {task.fields[running]} · left {task.fields[left]}"),
                    TimeElapsedColumn(), console=console, transient=True)


def _run_all(executor, tasks: list[Task], progress: Progress, name: str, on_done) -> None:
    """Run tasks, keeping one progress line of done / running / left up to date."""
    n = len(tasks)
    line = progress.add_task(name, total=n, running=min(executor.workers, n), left=n)
    for done, (index, result) in enumerate(executor.map_unordered(run_task, tasks), start=1):
        on_done(index, result)
        progress.update(line, completed=done, running=min(executor.workers, n - done),
                        left=max(0, n - done - executor.workers))


def run_benchmark(config: BenchmarkConfig, out_dir: str | Path, executor, threads: int = 1,
                  console: Console | None = None) -> BenchmarkRun:
    console = console or Console()
    out_dir = Path(out_dir)
    cells = plan(config)  # every cell validated before any work
    status = {cell.key: cell_status(cell, out_dir / cell.path) for cell in cells}
    run = BenchmarkRun(out_dir, cells, status)
    atomic_write_text(out_dir / BENCHMARK_FILE, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    cache = out_dir / ROUND0_DIR
    todo = run.computed
    n_done = len(cells) - len(todo)
    console.print(f"[bold]{config.name}[/]: {len(cells)} cells ({n_done} already done, "
                  f"{sum(status[c.key] == 'resume' for c in todo)} to resume) -> {out_dir}")

    # Round 0 once per (dataset, settings, seed), before the cells, so no two workers train the same one.
    shared = {}
    for cell in todo:
        if status[cell.key] == "new":
            shared.setdefault(round0_key(cell.config), cell)
    round0_tasks = [Task(c.config.model_dump(mode="json"), "", str(cache), threads, round0_only=True)
                    for key, c in shared.items() if not (cache / key / "round0.json").is_file()]
    cell_tasks = [Task(c.config.model_dump(mode="json"), str(out_dir / c.path), str(cache), threads) for c in todo]

    def finished(index, history):
        run.histories[todo[index].key] = history

    with executor, _progress(console) as progress:
        if round0_tasks:
            _run_all(executor, round0_tasks, progress, "round 0", lambda i, h: None)
        if cell_tasks:
            _run_all(executor, cell_tasks, progress, "cells", finished)
    for cell in cells:
        if cell.key not in run.histories:
            run.histories[cell.key] = read_json(out_dir / cell.path / STATE_FILE)["history"]
    atomic_write_text(out_dir / RESULTS_FILE, tidy(run.wide()).to_csv(index=False))
    console.print(f"{len(todo)} cells run, {n_done} reused; results: {out_dir / RESULTS_FILE}")
    return run

