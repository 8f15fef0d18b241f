"""The user's own raw data, listed in a manifest (CSV or JSON Lines); the format is documented in docs/data.md.

Columns: `id` (unique), `label` (a class name; empty for an unlabelled sample), then one column per
modality. A modality cell is a file path (relative to the manifest's folder, or absolute) or inline
text. By suffix, image files (.png .jpg .jpeg .bmp .gif .webp .tif .tiff .svg) go to the image
extractor, audio files (.wav .flac .ogg) to the audio extractor, and .txt files (their content) or
inline text to the text extractor. An empty modality cell means the sample lacks that modality (a row
with every modality empty is an error). Every cell of one column must be of one kind. Features are cached
by content (see `bmmal.features.cache`), so a second load reads them from disk.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from bmmal import features as F
from bmmal.data import ArrayDataset
from bmmal.datasets.encoded import check_modalities, labels_from_names, path_loader, split_standardized
from bmmal.errors import BmmalError
from bmmal.storage import not_utf8, read_text

RESERVED = ("id", "label")


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(column names, rows with every value as a string; a missing or null value is "")."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            try:
                columns = list(reader.fieldnames or [])
                rows = []
                for n, row in enumerate(reader, start=2):
                    if None in row or any(v is None for v in row.values()):
                        raise BmmalError(f"{path}, line {n}: expected {len(columns)} cells")
                    rows.append(row)
            except UnicodeDecodeError as e:
                raise not_utf8(path, e) from None
            except csv.Error as e:
                hint = ("; put long text in a .txt file and name the file in the cell"
                        if "field limit" in str(e) else "")
                raise BmmalError(f"{path}, line {reader.line_num}: not valid CSV ({e}){hint}") from None
    elif suffix in (".jsonl", ".ndjson"):
        columns, rows = [], []
        for n, line in enumerate(read_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise BmmalError(f"{path}, line {n}: not valid JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise BmmalError(f"{path}, line {n}: expected a JSON object")
            columns += [k for k in record if k not in columns]
            rows.append(record)
        rows = [{c: "" if r.get(c) is None else str(r[c]) for c in columns} for r in rows]
    else:
        raise BmmalError(f"manifest {path} must be a .csv or .jsonl file")
    return [c.strip() for c in columns], [{k.strip(): v.strip() for k, v in r.items()} for r in rows]


def cell_input(cell: str, folder: Path) -> tuple[str, Path | str]:
    """(kind, extractor input) of one modality cell: an image/audio file path, or text (inline or from .txt)."""
    kind = F.kind_of_suffix(Path(cell).suffix) if "\n" not in cell else None
    if kind is None:
        return "text", cell
    path = Path(cell).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise BmmalError(f"file not found: {path.absolute()}")
    return (kind, read_text(path).strip()) if kind == "text" else (kind, path)


def encode_column(manifest: Path, modality: str, cells: list[str], ids: list[str], extractor: str | None,
                  cache: F.FeatureCache) -> np.ndarray:
    """[N, d] features of one column; the rows of empty cells (absent) are zeros."""
    have = np.array([bool(cell) for cell in cells])
    if not have.any():
        raise BmmalError(f"{manifest}: column {modality!r} is empty in every row")
    inputs, kinds = [], set()
    for sample, cell in zip(ids, cells):
        if not cell:
            continue
        try:
            kind, item = cell_input(cell, manifest.parent)
        except BmmalError as e:
            raise BmmalError(f"{manifest}: sample {sample!r}, column {modality!r}: {e}") from None
        kinds.add(kind)
        inputs.append(item)
    if len(kinds) > 1:
        raise BmmalError(f"{manifest}: column {modality!r} mixes {' and '.join(sorted(kinds))} inputs")
    kind = kinds.pop()
    encoder = F.for_input(extractor or F.default_for(kind), kind)
    if encoder.kind != kind:
        raise BmmalError(f"{manifest}: column {modality!r} holds {kind} inputs, but extractor {encoder.name!r} "
                         f"reads {encoder.kind}")
    encoded = cache.features(f"manifest-{manifest.stem}", modality, encoder, F.fingerprint(inputs), lambda: inputs)
    if have.all():
        return encoded
    out = np.zeros((len(cells), *encoded.shape[1:]), dtype=encoded.dtype)
    out[have] = encoded
    return out


def load_manifest(path: str | Path, modalities=None, *, seed: int = 0, test_fraction: float | None = None,
                  classes=None, extractors: dict[str, str] | None = None, cache_dir: str | Path | None = None,
                  standardize: bool = True, executor: str = "local", actors: int | None = None,
                  rows_per_shard: int = 1024):
    """An ArrayDataset of every row, or with `test_fraction` a (train, test) pair.

    `classes` fixes the class names and their order (default: the labels found, sorted).
    `extractors` maps a modality to a feature-extractor name instead of the default for its input kind.
    `executor` "ray" extracts features that are not cached yet through Ray Data, in shards of `rows_per_shard`
    rows (resumable per shard), by at most `actors` actors (None: one per CPU); the features are the same.
    In a pair, labelled rows are split stratified by class, unlabelled rows (label -1) all go to train,
    and with `standardize` every modality is scaled with the train statistics.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise BmmalError(f"manifest not found: {path.absolute()}")
    columns, rows = read_rows(path)
    for column in RESERVED:
        if column not in columns:
            hint = " (leave a cell empty for an unlabelled sample)" if column == "label" else ""
            raise BmmalError(f"manifest {path} has no {column!r} column{hint}")
    if not rows:
        raise BmmalError(f"manifest {path} has no rows")
    known = [c for c in columns if c not in RESERVED]
    if not known:
        raise BmmalError(f"manifest {path} has no modality columns besides id and label")
    modalities = check_modalities(str(path), modalities or known, known)
    for m in extractors or {}:
        if m not in modalities:
            raise BmmalError(f"extractors names modality {m!r}, which is not loaded from {path}")

    ids = [r["id"] for r in rows]
    if "" in ids:
        raise BmmalError(f"manifest {path}: row {ids.index('') + 1} has an empty id")
    seen = set()
    for sample in ids:
        if sample in seen:
            raise BmmalError(f"manifest {path}: duplicate id {sample!r}")
        seen.add(sample)

    labels, classes = labels_from_names(f"manifest {path}", [r["label"] for r in rows], classes)

    present = np.array([[bool(r[m]) for m in modalities] for r in rows])
    empty = ~present.any(axis=1)
    if empty.any():
        raise BmmalError(f"manifest {path}: sample {ids[int(np.flatnonzero(empty)[0])]!r} has every modality empty")
    cache = F.FeatureCache(cache_dir, executor=executor, rows_per_shard=rows_per_shard, actors=actors)
    feats = {m: encode_column(path, m, [r[m] for r in rows], ids, (extractors or {}).get(m), cache)
             for m in modalities}
    data = ArrayDataset(feats, labels, classes, np.array(ids), name=f"manifest:{path.stem}",
                        present=None if present.all() else present)
    data.check_finite()
    if test_fraction is None:
        return data
    return split_standardized(data, seed, test_fraction, scale=standardize)


load_manifest_split = path_loader("manifest", load_manifest, "the manifest file (.csv or .jsonl)")
