"""Pool outputs stored as shards: one `.npz` file, or one folder of `.npy` files read memory-mapped.

A shard holds the rows of one contiguous slice of the pool: `labeled` [n], `probs` [n, C], one
embedding per modality [n, d_m] (in modality order), and, when computed, `shapley` [n, M, C] and
`unimodal_probs`. A folder shard (`shard.json` + `<field>.npy`) is opened with `np.load(mmap_mode="c")`,
so a worker pages in only what it reads and never writes back; an `.npz` shard is read into memory.
Writing is atomic (a temporary file or folder, then a rename), so a shard that exists is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from bmmal.errors import BmmalError
from bmmal.outputs import PoolOutputs
from bmmal.storage import atomic_write

FORMAT = "bmmal-pool-shard-1"


def _arrays(outputs: PoolOutputs) -> dict[str, np.ndarray]:
    arrays = {"labeled": outputs.labeled.cpu().numpy(), "probs": outputs.probs.cpu().numpy()}
    for m, z in outputs.embeddings.items():
        arrays[f"embedding.{m}"] = z.cpu().numpy()
    if outputs.shapley is not None:
        arrays["shapley"] = outputs.shapley.cpu().numpy()
    for m, p in (outputs.unimodal_probs or {}).items():
        arrays[f"unimodal_probs.{m}"] = p.cpu().numpy()
    return arrays


def save_shard(outputs: PoolOutputs, path: str | Path) -> Path:
    """Write `outputs` (fuse and mc_probs are not stored) as `path`: a `.npz` file, or else a folder."""
    path = Path(path)
    arrays = _arrays(outputs)
    meta = {"format": FORMAT, "rows": len(outputs), "modalities": list(outputs.embeddings)}
    if path.suffix == ".npz":
        arrays["meta"] = np.array(json.dumps(meta))
        atomic_write(path, lambda f: np.savez(f, **arrays))
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        (tmp / "shard.json").write_text(json.dumps(meta, indent=1) + "\n")
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_shard(path: str | Path) -> PoolOutputs:
    """The PoolOutputs of a stored shard (a folder shard's arrays stay memory-mapped)."""
    path = Path(path)
    if not path.exists():
        raise BmmalError(f"shard {path} does not exist")
    if path.is_dir():
        try:
            meta = json.loads((path / "shard.json").read_text())
        except (OSError, ValueError) as e:
            raise BmmalError(f"shard {path}: no readable shard.json ({e})") from None

        def read(name):
            file = path / f"{name}.npy"
            return np.load(file, mmap_mode="c") if file.exists() else None
    else:
        try:
            stored = np.load(path, allow_pickle=False)
            meta = json.loads(str(stored["meta"]))
        except (OSError, ValueError, KeyError) as e:
            raise BmmalError(f"shard {path} is not a bmmal pool shard ({e})") from None

        def read(name):
            return stored[name] if name in stored.files else None
    if meta.get("format") != FORMAT:
        raise BmmalError(f"shard {path} has format {meta.get('format')!r}, expected {FORMAT!r}")

    def tensor(array):
        return None if array is None else torch.from_numpy(array)

    modalities = meta["modalities"]
    unimodal = {m: tensor(read(f"unimodal_probs.{m}")) for m in modalities}
    outputs = PoolOutputs(labeled=tensor(read("labeled")), probs=tensor(read("probs")),
                          embeddings={m: tensor(read(f"embedding.{m}")) for m in modalities},
                          shapley=tensor(read("shapley")),
                          unimodal_probs=unimodal if all(v is not None for v in unimodal.values()) else None)
    if len(outputs) != meta["rows"] or any(len(z) != meta["rows"] for z in outputs.embeddings.values()):
        raise BmmalError(f"shard {path}: arrays do not all have the {meta['rows']} rows of shard.json")
    return outputs


def as_outputs(shard) -> PoolOutputs:
    """A shard given as PoolOutputs or as the path of a stored shard."""
    if isinstance(shard, PoolOutputs):
        return shard
    if isinstance(shard, (str, os.PathLike)):
        return load_shard(shard)
    raise BmmalError(f"a shard is PoolOutputs or the path of a stored shard, got {type(shard).__name__}")
