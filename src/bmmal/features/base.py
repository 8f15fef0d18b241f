"""What every feature extractor provides, batching with a progress bar, and the missing-extra message."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bmmal.errors import BmmalError

INSTALL_HINT = "pip install 'bmmal[encoders]'"


@runtime_checkable
class FeatureExtractor(Protocol):
    name: str
    kind: str  # "image", "text" or "audio": what `encode` accepts
    dim: int

    def identity(self) -> dict[str, Any]:
        """Everything the features depend on besides the inputs (name, version, options): the cache key."""
        ...

    def encode(self, items: Sequence[Any], description: str | None = None) -> np.ndarray:
        """float32 [len(items), dim] features, one row per item, in order."""
        ...


def require(module: str, extractor: str):
    """Import an optional dependency, or fail with one line naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise BmmalError(f"feature extractor {extractor!r} needs the Python package {module!r}; "
                         f"install it with: {INSTALL_HINT}") from None


def package_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def encode_batches(encode_batch: Callable[[list], np.ndarray], items: Sequence[Any], batch_size: int,
                   dim: int, description: str) -> np.ndarray:
    """Apply `encode_batch` to consecutive batches of `items` and stack the rows; with a progress bar only
    where a caller asked for one (`bmmal.progress.shown`, as the CLI does)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bmmal.progress import requested_console

    items = list(items)
    out = []
    console = requested_console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=console is None) as progress:
        task = progress.add_task(description, total=len(items))
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            out.append(np.asarray(encode_batch(batch), dtype=np.float32))
            progress.advance(task, len(batch))
    return np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers draws a bar while it loads weights: allowed only where a caller asked for progress on a
    terminal (in a log file it would be noise)."""
    from bmmal.progress import requested_console

    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        hf_logging = None
    console = requested_console()
    asked = console is not None and console.is_terminal
    if hf_logging is None or asked or not hf_logging.is_progress_bar_enabled():
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()
