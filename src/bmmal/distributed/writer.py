"""Pool inference written as shards, one contiguous slice of rows per shard, resumable per shard.

`write_pool_shards` plans the shards (`rows_per_shard` rows each), writes `pool.json` with the plan,
and runs `bmmal.inference.pool_outputs` on each missing shard, storing it atomically (shards.py): a
rerun after an interruption skips the shards already on disk, deletes the temporaries of shards whose
writing was cut short, and refuses a different plan. With
`executor="ray"` the missing shards go through Ray Data, to a bounded pool of actors that each hold the
model (ray_writer.py); with `"local"` one after another in this process. Both write the same arrays.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from bmmal.distributed.shards import save_shard
from bmmal.errors import BmmalError
from bmmal.storage import atomic_write_json

STORABLE = {"probs", "embeddings", "shapley", "unimodal_probs", "fuse"}  # fuse: used for shapley, not stored


def shard_paths(out_dir: Path, n: int, rows_per_shard: int, suffix: str) -> list[tuple[Path, int, int]]:
    return [(out_dir / f"shard-{i:05d}{suffix}", start, min(start + rows_per_shard, n))
            for i, start in enumerate(range(0, n, rows_per_shard))]


def write_shard(model, dataset, labeled, needs, start: int, stop: int, path: str, batch_size: int) -> None:
    """Pool inference over rows start..stop-1, stored atomically as the shard `path`."""
    from bmmal.inference import pool_outputs

    outputs = pool_outputs(model, dataset.subset(np.arange(start, stop)), labeled[start:stop], needs,
                           batch_size=batch_size)
    save_shard(outputs, path)


def check_shard_options(rows_per_shard, executor, actors, actor_options) -> None:
    """One-line errors for the options every shard writer takes, before anything is written."""
    if isinstance(rows_per_shard, bool) or not isinstance(rows_per_shard, int) or rows_per_shard < 1:
        raise BmmalError(f"rows_per_shard must be a positive integer, got {rows_per_shard!r}")
    if executor not in ("local", "ray"):
        raise BmmalError(f"executor must be local or ray, got {executor!r}")
    if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
        raise BmmalError(f"actors must be a positive integer or None, got {actors!r}")
    if actor_options is not None and not isinstance(actor_options, dict):
        raise BmmalError(f"actor_options must be a dict of Ray actor options, got {type(actor_options).__name__}")


def remove_temporaries(out_dir: Path) -> None:
    """Delete the half-written shards (hidden `.shard-*` temporaries) that a killed writer left behind.
    So one folder takes one writer at a time: a second one would delete the first one's temporaries."""
    for temporary in out_dir.glob(".shard-*"):
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)


def write_pool_shards(model, dataset, labeled, needs, out_dir: str | Path, rows_per_shard: int, *,
                      batch_size: int = 1024, executor: str = "local", address: str | None = None,
                      file_format: str = "npy", actors: int | None = None,
                      actor_options: dict | None = None) -> list[Path]:
    """Paths of the shards (in pool order) holding `model`'s pool outputs over `dataset`.

    needs: the PoolOutputs fields to store (a strategy's `needs`; `mc_probs` cannot be stored).
    file_format: "npy" (one folder of memory-mappable .npy files per shard) or "npz".
    executor "ray": on the Ray at `address` (None: the running Ray, or a new local one), in at most
    `actors` actors (None: one per CPU of the cluster), each with the Ray actor options `actor_options`
    (default: one CPU each, e.g. {"num_cpus": 4}); the model runs on the device it was pickled on."""
    needs = set(needs)
    if needs - STORABLE:
        raise BmmalError(f"shards cannot store {', '.join(sorted(needs - STORABLE))}")
    if file_format not in ("npy", "npz"):
        raise BmmalError(f"file_format must be npy or npz, got {file_format!r}")
    check_shard_options(rows_per_shard, executor, actors, actor_options)
    labeled = np.asarray(labeled, dtype=bool)
    if len(labeled) != len(dataset):
        raise BmmalError(f"labeled has {len(labeled)} rows, the dataset {len(dataset)}")
    out_dir = Path(out_dir)
    plan = {"rows": len(dataset), "rows_per_shard": rows_per_shard, "format": file_format,
            "needs": sorted(needs - {"fuse"})}
    manifest = out_dir / "pool.json"
    if manifest.exists() and (held := json.loads(manifest.read_text())) != plan:
        raise BmmalError(f"{out_dir} holds shards of another plan ({json.dumps(held)}, this call's: "
                         f"{json.dumps(plan)}); use another folder or the same rows, rows_per_shard, format and needs")
    atomic_write_json(manifest, plan)
    shards = shard_paths(out_dir, len(dataset), rows_per_shard, ".npz" if file_format == "npz" else "")
    missing = [(str(path), start, stop) for path, start, stop in shards if not path.exists()]
    remove_temporaries(out_dir)
    if executor == "local":
        for path, start, stop in missing:
            write_shard(model, dataset, labeled, needs, start, stop, path, batch_size)
    elif missing:
        from bmmal.distributed.ray_writer import write_with_ray_data

        write_with_ray_data(write_shard, (model, dataset, labeled), missing, what="pool inference",
                            params={"needs": needs, "batch_size": batch_size}, actors=actors, address=address,
                            actor_options=actor_options)
    return [path for path, _, _ in shards]
