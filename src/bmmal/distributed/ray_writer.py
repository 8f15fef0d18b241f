"""Shards written through Ray Data: the missing shards as a Ray Dataset of shard specs, one shard per
`map_batches` call, in a bounded pool of actors that each hold what the shards are computed from.

Each actor takes the shared objects (for pool inference the model, the dataset and `labeled`; for feature
extraction the extractor and the inputs) from Ray's object store once, when it starts (so a large encoder
is deserialised once per actor, not once per shard); then, one shard spec at a time, it calls
`write(*shared, start=, stop=, path=, **params)`, which computes rows start..stop-1 and stores them
atomically (a shard on disk is complete), and returns only the shard's path. Ray Data streams the specs
to at most `actors` actors with backpressure, and the driver receives paths, never arrays.

Quiet: a Ray that this module starts logs errors only on the driver (Ray's INFO lines and its token-auth
notice are not shown) and does not forward the actors' output; while a job runs, Ray Data's console shows
warnings and errors only (its own log file in the Ray session folder keeps everything). One error-looking
line stays: Ray's core worker logs "Actor ... has constructor arguments in the object store and
max_restarts > 0" for every Ray Data actor pool whose actors may restart, because Ray Data itself hands its
actors object-store references (ray-project/ray#57733), whatever the caller passes.

Failures: an actor that dies (its process killed, its node lost) is restarted and its shard rerun
(writing a shard is idempotent) up to `RESTARTS` times; after that, or when `write` raises, the job
stops with one line naming the shard or saying how many are missing. Shards already written stay, and a
rerun writes only the others.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bmmal.errors import BmmalError

RESTARTS = 2  # per actor, and retries per shard after an actor death; a model that always crashes its process fails


class ShardFailed(Exception):
    """Raised in an actor: the shard it was writing and what went wrong."""


class ShardWriter:
    """A Ray Data actor: the shared objects, fetched once; `__call__` writes the shards of its specs."""

    def __init__(self, refs, write: Callable, params: dict):
        import ray

        self.shared, self.write, self.params = ray.get(list(refs)), write, params

    def __call__(self, specs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for path, start, stop in zip(specs["path"], specs["start"], specs["stop"]):
            try:
                self.write(*self.shared, start=int(start), stop=int(stop), path=str(path), **self.params)
            except Exception as e:  # noqa: BLE001 - any failure of the model or the write is reported with its shard
                first_line = (str(e).splitlines() or [""])[0]
                raise ShardFailed(f"shard {path}: {type(e).__name__}: {first_line}") from None
        return {"path": specs["path"]}


@contextlib.contextmanager
def ray_data_console_quiet() -> Iterator[None]:
    """Ray Data's console handlers show warnings and errors only, for the duration: no "Starting execution"
    lines, and no progress logged every few seconds when stdout is not a terminal. Its file handler is kept."""
    data_logger = logging.getLogger("ray.data")
    console = [h for h in data_logger.handlers
               if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    levels = [h.level for h in console]
    for handler in console:
        handler.setLevel(max(handler.level, logging.WARNING))
    try:
        yield
    finally:
        for handler, level in zip(console, levels, strict=True):
            handler.setLevel(level)


def write_with_ray_data(write: Callable, shared: tuple, missing: list[tuple[str, int, int]], *, what: str,
                        params: dict | None = None, actors: int | None = None, address: str | None = None,
                        actor_options: dict | None = None) -> None:
    """Write the `missing` shards ((path, start, stop) each) with `write` in at most `actors` Ray actors.

    what: the job, for the error line ("pool inference"). actors None: as many as the cluster's CPUs hold."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise BmmalError("executor ray needs Ray Data: pip install 'bmmal[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    options = {"num_cpus": 1, "max_restarts": RESTARTS, "max_task_retries": RESTARTS, **(actor_options or {})}
    if actors is None:
        actors = max(1, int(ray.cluster_resources().get("CPU", 1) // max(options["num_cpus"], 1e-9)))
    refs = [ray.put(x) for x in shared]
    specs = ray.data.from_items([{"path": p, "start": a, "stop": b} for p, a, b in missing],
                                override_num_blocks=len(missing))  # one block per shard: no shard waits for another
    message = None
    with ray_data_console_quiet():
        with warnings.catch_warnings():  # Ray 2.60 deprecates max_restarts in map_batches but names no replacement
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            written = specs.map_batches(ShardWriter, fn_constructor_args=(refs, write, params or {}), batch_size=1,
                                        compute=ray.data.ActorPoolStrategy(size=min(actors, len(missing))),
                                        **options)
        try:
            for _ in written.iter_batches(batch_size=None):  # streams: the paths of finished shards, as they finish
                pass
        except Exception as e:  # noqa: BLE001 - every Ray Data failure becomes one line
            message = failure(e)
        # Ray Data's executor can keep its actors, and the CPUs they hold, in reference cycles (seen after a
        # failure): collect them now, not at some later full collection, so that the next job's actors do not
        # wait for CPUs; and raise outside the except clause, so that no traceback keeps them alive either
        del written
        gc.collect()
    if message is not None:
        left = sum(not Path(path).exists() for path, _, _ in missing)
        raise BmmalError(f"{what} through Ray Data failed: {message}; {left} of the {len(missing)} shards "
                         f"to write are not written (the others are complete; run again to write the rest)")


def failure(error: BaseException) -> str:
    """What went wrong, in one line: the shard whose model call raised, or an actor that died too often."""
    from ray.exceptions import RayActorError

    chain = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or getattr(error, "cause", None) or error.__context__
    for e in chain:  # Ray passes the actor's exception on as text (its traceback), not as an object
        for line in str(e).splitlines():
            if "ShardFailed: shard " in line:
                return line.split("ShardFailed: ", 1)[1].strip()
    if any(isinstance(e, RayActorError) for e in chain):
        return f"an actor died (its process was killed, or its node was lost) after {RESTARTS} restarts"
    root = chain[-1]
    return f"{type(root).__name__}: {(str(root).splitlines() or [''])[0]}"
