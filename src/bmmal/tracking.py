"""Experiment tracking: every round's metrics to TensorBoard and/or MLflow, beside the run's own files.

`open_trackers(names, run_dir, run_name, params)` opens the chosen backends and gives back one function
that logs one round (the row the active-learning loop passes to its `on_round` callback): every numeric
value becomes a scalar at step `n_labeled` (the x-axis of a learning curve; `round` where a row has no
`n_labeled`). The run's settings are logged once, when the trackers open.

- TensorBoard (`pip install 'bmmal[tensorboard]'`): event files in `<run_dir>/tensorboard`, written with
  `torch.utils.tensorboard`; the settings as a text summary named `config`.
- MLflow (`pip install 'bmmal[mlflow]'`): one MLflow run named `run_name` in the experiment `experiment`,
  the settings as MLflow parameters. The default store is a local SQLite file, `<run_dir>/mlflow.db`
  (MLflow's own file-system store is in maintenance mode); `mlflow ui --backend-store-uri
  sqlite:///<run_dir>/mlflow.db` shows it. A run that is resumed continues the same MLflow run.

The backends are imported only when a run asks for them, so `import bmmal` stays light.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from numbers import Real
from pathlib import Path
from typing import Any

from bmmal.errors import BmmalError, did_you_mean

__all__ = ["TRACKERS", "open_trackers"]

TRACKERS = ("tensorboard", "mlflow")
TENSORBOARD_DIR = "tensorboard"
MLFLOW_DB = "mlflow.db"
DEFAULT_EXPERIMENT = "bmmal"
RUN_KEY_TAG = "bmmal_run_key"  # finds the MLflow run of a resumed bmmal run

LogRound = Callable[[Mapping[str, Any]], None]
Logger = Callable[[dict[str, float], int], None]


def parse_trackers(value: str | Iterable[str]) -> tuple[str, ...]:
    """Tracker names from "tensorboard,mlflow" or a list, each once, in order; an unknown one is an error."""
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n).strip() for n in value]
    names = list(dict.fromkeys(n for n in names if n))
    for name in names:
        if name not in TRACKERS:
            raise BmmalError(f"unknown tracker {name!r}{did_you_mean(name, TRACKERS)}; available: "
                             f"{', '.join(TRACKERS)}")
    return tuple(names)


def default_mlflow_uri(directory: str | Path) -> str:
    """The local SQLite store of a run (or a benchmark) directory."""
    return f"sqlite:///{(Path(directory).resolve() / MLFLOW_DB).as_posix()}"


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The numeric values of a metrics row (bools as 0/1); text and missing values are left out."""
    return {str(k): float(v) for k, v in row.items() if isinstance(v, Real) and not isinstance(v, complex)}


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as dotted names -> text (lists and empty mappings as JSON)."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, f"{name}."))
        elif isinstance(value, str):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def _step(row: Mapping[str, Any]) -> int:
    for key in ("n_labeled", "round"):
        if isinstance(row.get(key), Real):
            return int(row[key])
    raise BmmalError("a tracked metrics row needs n_labeled or round")


@contextmanager
def open_trackers(names: Iterable[str], run_dir: str | Path, run_name: str, params: Mapping[str, Any], *,
                  mlflow_uri: str | None = None, experiment: str | None = None) -> Iterator[LogRound]:
    """Open the named trackers for one run; yields `log_round(row)`; closes (and finishes) them on exit.

    With no names this imports nothing and `log_round` does nothing. `mlflow_uri` defaults to
    `<run_dir>/mlflow.db` (SQLite) and `experiment` to "bmmal".
    """
    names = parse_trackers(names)
    run_dir = Path(run_dir)
    openers = {"tensorboard": lambda: _tensorboard(run_dir / TENSORBOARD_DIR, params),
               "mlflow": lambda: _mlflow(mlflow_uri or default_mlflow_uri(run_dir), experiment or DEFAULT_EXPERIMENT,
                                         run_name, params)}
    with ExitStack() as stack:
        loggers = [stack.enter_context(openers[name]()) for name in names]

        def log_round(row: Mapping[str, Any]) -> None:
            if loggers:
                values, step = scalars(row), _step(row)
                for log in loggers:
                    log(values, step)

        yield log_round


@contextmanager
def tracked(config, run_dir: str | Path, on_round: LogRound) -> Iterator[LogRound]:
    """`on_round` that also logs every row to the trackers of `config.tracking` (a `RunConfig`), open for
    the duration of the block; the run's settings are its parameters."""
    tracking = config.tracking
    params = config.model_dump(mode="json", exclude={"tracking"})
    with open_trackers(tracking.to, run_dir, tracking.run_name or Path(run_dir).resolve().name, params,
                       mlflow_uri=tracking.mlflow_uri, experiment=tracking.experiment) as log_round:

        def log_and_call(row: Mapping[str, Any]) -> None:
            log_round(row)
            on_round(row)

        yield log_and_call


def tracked_cells(cells: list, benchmark_dir: str | Path, benchmark_name: str) -> list:
    """Benchmark cells whose runs log into one MLflow experiment named after the benchmark, one MLflow run per
    cell (named by its path), in the store `<benchmark_dir>/mlflow.db` unless the config names another;
    TensorBoard files stay in each cell's run directory. The store and experiment are created here, before
    any worker starts, so that workers do not race to create them and a missing package is named at once."""
    updated = []
    for cell in cells:
        tracking = cell.config.tracking
        if "mlflow" in tracking.to:
            tracking = tracking.model_copy(update={
                "mlflow_uri": tracking.mlflow_uri or default_mlflow_uri(benchmark_dir),
                "experiment": tracking.experiment or benchmark_name, "run_name": Path(cell.path).as_posix()})
            cell = dataclasses.replace(cell, config=cell.config.model_copy(update={"tracking": tracking}))
        updated.append(cell)
    for uri, experiment in dict.fromkeys((c.config.tracking.mlflow_uri, c.config.tracking.experiment)
                                         for c in updated if "mlflow" in c.config.tracking.to):
        _mlflow_experiment(uri, experiment)
    if any("tensorboard" in c.config.tracking.to for c in updated):
        _summary_writer()
    return updated


def _missing(backend: str, error: ImportError) -> BmmalError:
    return BmmalError(f"tracking to {backend} needs a package that is not installed ({error.name or error}): "
                      f"pip install 'bmmal[{backend}]'")


def _summary_writer() -> type:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise _missing("tensorboard", e) from None
    return SummaryWriter


@contextmanager
def _tensorboard(log_dir: Path, params: Mapping[str, Any]) -> Iterator[Logger]:
    writer = _summary_writer()(log_dir=str(log_dir))
    try:
        table = "\n".join(f"    {k}: {v}" for k, v in flat_params(params).items())  # indented: shown verbatim
        writer.add_text("config", table)

        def log(values: dict[str, float], step: int) -> None:
            for tag, value in values.items():
                writer.add_scalar(tag, value, global_step=step)
            writer.flush()  # a TensorBoard that is watching sees every round as it ends

        yield log
    finally:
        writer.close()


@contextmanager
def _mlflow(uri: str, experiment: str, run_name: str, params: Mapping[str, Any]) -> Iterator[Logger]:
    client, experiment_id = _mlflow_experiment(uri, experiment)
    from mlflow.entities import Metric, Param, RunStatus

    run_id = _resumable_run(client, experiment_id, run_name)
    client.log_batch(run_id, params=[Param(k, v[:6000]) for k, v in flat_params(params).items()])
    status = "FAILED"
    try:
        def log(values: dict[str, float], step: int) -> None:
            timestamp = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, v, timestamp, step) for k, v in values.items()])

        yield log
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        client.set_terminated(run_id, RunStatus.to_string(getattr(RunStatus, status)))


def _mlflow_experiment(uri: str, name: str):
    """(client, experiment id) of the experiment `name` in the store `uri`; both are created if missing."""
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        with _quiet("mlflow.store.db.utils"):  # "Creating initial MLflow database tables..." on a new store
            client = MlflowClient(tracking_uri=uri)
            found = client.get_experiment_by_name(name)
    except ImportError as e:
        raise _missing("mlflow", e) from None
    if found is not None:
        return client, found.experiment_id
    artifacts = None
    if uri.startswith("sqlite:///"):  # artifacts (none today) beside the database, not in the working directory
        artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    try:
        return client, client.create_experiment(name, artifact_location=artifacts)
    except MlflowException:  # another process created it first
        return client, client.get_experiment_by_name(name).experiment_id


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _resumable_run(client, experiment_id: str, run_name: str) -> str:
    """The MLflow run of this bmmal run: the one started before it was interrupted, or a new one."""
    key = hashlib.sha256(run_name.encode()).hexdigest()[:16]
    found = client.search_runs([experiment_id], filter_string=f"tags.{RUN_KEY_TAG} = '{key}'", max_results=1)
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        return run_id
    return client.create_run(experiment_id, run_name=run_name, tags={RUN_KEY_TAG: key}).info.run_id
