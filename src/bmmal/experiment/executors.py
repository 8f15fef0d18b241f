"""Executors: run one picklable function over many tasks and yield (index, result) as each finishes.

`local` runs tasks in spawned worker processes (in the calling process when workers == 1);
`ray` runs each task as a Ray task, on a local Ray started here or on the cluster at `address`.
Both give the same results for the same tasks: the work function fixes its own torch thread count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any

from bmmal.errors import BmmalError

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

EXECUTORS = ("local", "ray")


def default_threads(workers: int) -> int:
    """torch threads per worker: the machine's cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // workers)


class LocalExecutor:
    """Use as a context manager: the worker processes start once and serve every `map_unordered` call."""

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise BmmalError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self._pool = None

    def __enter__(self) -> Self:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"))
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if self._pool is None:
            for i, task in enumerate(tasks):
                yield i, fn(task)
            return
        pending = {self._pool.submit(fn, task): i for i, task in enumerate(tasks)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        finally:
            for future in pending:
                future.cancel()


class RayExecutor:
    """Each task a Ray task asking for `threads` CPUs. Without `address`, starts (and stops) a local Ray."""

    def __init__(self, workers: int = 1, threads: int = 1, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise BmmalError("the ray executor needs Ray: pip install 'bmmal[ray]'") from None
        if workers < 1:
            raise BmmalError(f"--workers must be at least 1, got {workers}")
        self.ray, self.workers, self.threads, self.address = ray, workers, threads, address

    def __enter__(self) -> Self:
        ray = self.ray
        self._started = not ray.is_initialized()
        if self._started and self.address:
            ray.init(address=self.address, logging_level="WARNING")
        elif self._started:
            ray.init(num_cpus=self.workers * self.threads, include_dashboard=False, logging_level="WARNING",
                     log_to_driver=False)
        return self

    def __exit__(self, *exc) -> None:
        if self._started:
            self.ray.shutdown()

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        ray = self.ray
        remote = ray.remote(num_cpus=self.threads, max_retries=0)(fn)
        pending = {remote.remote(task): i for i, task in enumerate(tasks)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


def make_executor(kind: str, workers: int, threads: int, address: str | None = None):
    if kind == "local":
        if address:
            raise BmmalError("--address is for the ray executor")
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, threads, address)
    raise BmmalError(f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTORS)}")
