"""On-disk cache of frozen features: computed once per (dataset, extractor identity, data content), reused after.

An entry's file name holds a hash of the extractor's identity (name, version, options) and of a
fingerprint of the inputs (the bytes of every input file, the characters of every inline text), so a
changed encoder or changed data selects a new entry and an unchanged one finds the old entry. Entries
are written atomically; a damaged entry is computed again. A miss is computed in this process, or with
`executor="ray"` through Ray Data in shards, resumable per shard (bmmal.distributed.extraction).

Location: the `root` argument, else the environment variable BMMAL_CACHE_DIR, else
$XDG_CACHE_HOME/bmmal (~/.cache/bmmal).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bmmal.errors import BmmalError
from bmmal.storage import atomic_write

CACHE_ENV = "BMMAL_CACHE_DIR"
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bmmal"


def fingerprint(items: Iterable[Any]) -> str:
    """Content hash of an ordered list of inputs: a `Path` counts by its file's bytes, a `str` by its
    text, `bytes` as they are, a tuple by its parts (e.g. (render settings, text))."""
    digest = hashlib.sha256()

    def add(item: Any) -> None:
        if isinstance(item, Path):
            if not item.is_file():
                raise BmmalError(f"file not found: {item.absolute()}")
            digest.update(b"F")
            with item.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
            digest.update(b"\0")
        elif isinstance(item, str):
            data = item.encode()
            digest.update(b"T%d:" % len(data) + data)
        elif isinstance(item, bytes):
            digest.update(b"B%d:" % len(item) + item)
        elif isinstance(item, tuple):
            digest.update(b"(%d" % len(item))
            for part in item:
                add(part)
        else:
            raise TypeError(f"cannot fingerprint {type(item).__name__}")

    for item in items:
        add(item)
    return digest.hexdigest()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "_"


class FeatureCache:
    """Features by (dataset, modality, extractor, data fingerprint); a miss is computed in this process, or with
    `executor="ray"` through Ray Data in shards of `rows_per_shard` rows (resumable per shard) by at most
    `actors` actors (None: one per CPU) on the Ray at `address` (bmmal.distributed.extraction): the same
    entry either way."""

    def __init__(self, root: str | Path | None = None, *, executor: str = "local", rows_per_shard: int = 1024,
                 actors: int | None = None, address: str | None = None):
        from bmmal.distributed.writer import check_shard_options

        check_shard_options(rows_per_shard, executor, actors, None)
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.executor, self.rows_per_shard, self.actors, self.address = executor, rows_per_shard, actors, address

    def entry(self, dataset: str, modality: str, extractor, data_fingerprint: str) -> Path:
        key = json.dumps({"dataset": dataset, "modality": modality, "extractor": extractor.identity(),
                          "data": data_fingerprint}, sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        return self.root / _safe(dataset) / f"{_safe(modality)}-{_safe(extractor.name)}-{digest}.npz"

    def features(self, dataset: str, modality: str, extractor, data_fingerprint: str,
                 inputs: Callable[[], Sequence[Any]]) -> np.ndarray:
        """The cached features, or `extractor.encode(inputs())` stored for next time.

        `inputs` is called only on a miss, so expensive preparation (rendering, decoding) is skipped on a hit.
        """
        path = self.entry(dataset, modality, extractor, data_fingerprint)
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    return z["features"]
            except (OSError, ValueError, KeyError, EOFError):
                pass  # damaged entry: compute it again
        items = list(inputs())
        if self.executor == "ray" and items:
            from bmmal.distributed.extraction import extract_in_shards

            features = extract_in_shards(extractor, items, path, self.rows_per_shard, actors=self.actors,
                                         address=self.address)
        else:
            features = np.asarray(extractor.encode(items, description=f"{dataset}: {modality} ({extractor.name})"),
                                  dtype=np.float32)
        if len(features) != len(items):
            raise RuntimeError(f"extractor {extractor.name!r} returned {len(features)} rows for {len(items)} inputs")
        meta = json.dumps({"dataset": dataset, "modality": modality, "extractor": extractor.identity(),
                           "data": data_fingerprint}, default=str)
        atomic_write(path, lambda f: np.savez(f, features=features, meta=np.array(meta)))
        from bmmal.distributed.extraction import remove_shards  # imports no Ray

        remove_shards(path)  # also those an interrupted Ray extraction left before a local run wrote the entry
        return features
