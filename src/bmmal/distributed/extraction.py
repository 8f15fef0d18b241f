"""A column's frozen features extracted through Ray Data, in shards, resumable per shard.

`FeatureCache(executor="ray")` calls `extract_in_shards` on a miss. The inputs are cut into shards of
`rows_per_shard` consecutive items; a shard is `extractor.encode` of its items, stored atomically as
`shard-NNNNN.npy` in a folder beside the cache entry (`<entry>.shards-<rows_per_shard>/`). The missing
shards go to a bounded pool of Ray actors that each deserialise the extractor once (ray_writer.py), so a
pretrained model is loaded at most once per actor. The shards are then read back in order and
concatenated into the features the cache stores as its entry, after which the folder is deleted.

A killed run leaves complete shards only (and hidden temporaries, deleted by the next run); a rerun
encodes only the missing shards. An extractor encodes its items one batch at a time, so with
`rows_per_shard` a multiple of its batch size (16 for mfcc, 32 for efficientnet-lite0, 64 for
all-minilm-l6-v2; the default 1024 is one for all three) every batch is the one the single-process path
encodes, and the features are the same numbers up to the last float32 bits (each actor runs one thread; the
thread count changes how products are summed).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bmmal.distributed.ray_writer import write_with_ray_data
from bmmal.distributed.writer import remove_temporaries, shard_paths
from bmmal.errors import BmmalError
from bmmal.storage import atomic_write


def encode_shard(extractor, items: Sequence[Any], *, start: int, stop: int, path: str) -> None:
    """`extractor`'s features of items start..stop-1, stored atomically as the .npy file `path`."""
    features = np.asarray(extractor.encode(items[start:stop]), dtype=np.float32)
    if len(features) != stop - start:
        raise RuntimeError(f"extractor {extractor.name!r} returned {len(features)} rows for {stop - start} inputs")
    atomic_write(path, lambda f: np.save(f, features))


def shard_folder(entry: Path, rows_per_shard: int) -> Path:
    return entry.with_name(f"{entry.stem}.shards-{rows_per_shard}")


def extract_in_shards(extractor, items: Sequence[Any], entry: str | Path, rows_per_shard: int, *,
                      actors: int | None = None, address: str | None = None,
                      actor_options: dict | None = None) -> np.ndarray:
    """float32 [len(items), dim]: `extractor`'s features of `items`, the missing shards encoded through Ray Data.

    entry: the cache entry the features are for (its shards go in a folder beside it)."""
    folder = shard_folder(Path(entry), rows_per_shard)
    shards = shard_paths(folder, len(items), rows_per_shard, ".npy")
    missing = [(str(path), start, stop) for path, start, stop in shards if not path.exists()]
    if folder.is_dir():
        remove_temporaries(folder)
    if missing:
        write_with_ray_data(encode_shard, (extractor, list(items)), missing, what="feature extraction",
                            actors=actors, address=address, actor_options=actor_options)
    return np.concatenate([read_shard(path, stop - start) for path, start, stop in shards])


def read_shard(path: Path, rows: int) -> np.ndarray:
    """A stored shard; a damaged one (unreadable, or not `rows` rows) is deleted and reported in one line."""
    try:
        features = np.load(path, allow_pickle=False)
        if features.ndim == 2 and len(features) == rows:
            return features
    except (OSError, ValueError, EOFError):
        pass
    path.unlink(missing_ok=True)
    raise BmmalError(f"feature shard {path} was damaged and is deleted; run again to encode it")


def remove_shards(entry: str | Path) -> None:
    """Delete the shard folders of `entry` (every rows_per_shard), once the entry itself is written."""
    entry = Path(entry)
    for folder in entry.parent.glob(f"{entry.stem}.shards-*"):
        shutil.rmtree(folder, ignore_errors=True)
