"""What a run or a benchmark shows while it works, and whether library code may draw progress bars at all.

On a terminal a finished step advances a live bar; when the output is not a terminal (a log file, CI,
nohup) each finished step is one plain line instead: time, step, what finished, its accuracy, the ETA.
Library functions draw nothing unless a caller asked with `shown(console)` (the CLI does).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

_CONSOLE: ContextVar[Console | None] = ContextVar("bmmal_progress_console", default=None)


@contextmanager
def shown(console: Console) -> Iterator[Console]:
    """Let library code (feature extraction, ...) draw its progress on `console` inside this block."""
    token = _CONSOLE.set(console)
    try:
        yield console
    finally:
        _CONSOLE.reset(token)


def requested_console() -> Console | None:
    """The console a caller asked progress to be shown on, or None: then draw nothing."""
    return _CONSOLE.get()


def schedule_in_words(initial_budget: int, budget: int, rounds: int) -> str:
    """The label schedule of a run: '20 initial + 7 rounds of 20 = 160 labels, 8 evaluations'."""
    total = initial_budget + rounds * budget
    if rounds == 0:
        return f"{initial_budget} initial labels, 1 evaluation"
    return (f"{initial_budget} initial + {rounds} round{'s' if rounds != 1 else ''} of {budget} = {total} labels, "
            f"{rounds + 1} evaluations")


def duration(seconds: float) -> str:
    """'45s', '4m05s', '2h03m'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Steps:
    """Progress over `total` steps (rounds, cells): a live bar on a terminal, one line per step otherwise.

    `done` steps were finished before (a resumed run); the ETA extrapolates from the steps of this session.
    `workers` steps run at the same time (shown as running / left on the bar)."""

    def __init__(self, console: Console, name: str, total: int, done: int = 0, workers: int = 1):
        self.console, self.name, self.total, self.done, self.workers = console, name, total, done, workers
        self.live = console.is_terminal
        self._start, self._first = time.monotonic(), done
        self._bar: Progress | None = None

    def __enter__(self) -> Self:
        if self.live:
            self._bar = Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=self.console,
                                 transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.name, total=self.total, completed=self.done, status=self._status())
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def eta(self) -> float | None:
        """Seconds left at the mean pace of the steps finished in this session; None before the first."""
        finished = self.done - self._first
        if finished <= 0:
            return None
        return (time.monotonic() - self._start) / finished * (self.total - self.done)

    def _status(self, last: str = "") -> str:
        left = self.total - self.done
        status = f"running {min(self.workers, left)} · left {max(0, left - self.workers)}" if self.workers > 1 else ""
        return " · ".join(part for part in (status, last) if part)

    def step(self, what: str, accuracy: float | None = None) -> None:
        """One step finished: `what` (e.g. 'round 3, 80 labels' or a cell's label) with its test accuracy."""
        self.done += 1
        acc = f"acc {accuracy:.4f}" if accuracy is not None else ""
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, status=self._status(f"{what} {acc}".strip()))
            return
        eta = self.eta()
        parts = [datetime.now().strftime("%H:%M:%S"), f"{self.name} {self.done}/{self.total}", what, acc,
                 f"ETA {duration(eta)}" if eta is not None and self.done < self.total else ""]
        self.console.print("  ".join(p for p in parts if p), highlight=False, soft_wrap=True)


def modalities_in_words(dataset) -> str:
    """'pix (240), mor (6)': every modality of a dataset with the shape of one sample's input."""
    if hasattr(dataset, "input_shapes"):
        shapes = dataset.input_shapes()
    else:
        import numpy as np

        shapes = {m: tuple(x.shape[1:]) for m, x in dataset.batch(np.array([0])).items()}
    return ", ".join(f"{m} ({'x'.join(map(str, shapes[m])) or 1})" for m in dataset.modalities)


def run_header(config, train_set) -> list[str]:
    """What a run is about to do: its data, modalities with dimensions, strategy, trainer and label schedule."""
    return [f"{config.dataset.name}: {len(train_set)} training samples; modalities {modalities_in_words(train_set)}",
            f"strategy {config.strategy}, trainer {config.train.trainer}, seed {config.seed}",
            f"label schedule: {schedule_in_words(config.initial_budget, config.budget, config.rounds)}"]
