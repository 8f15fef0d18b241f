"""Features the user already has: one `.npz` file with one array per modality (documented in docs/data.md).

Keys: `labels` ([N] integers with -1 for unlabelled, or strings with "" for unlabelled), optional `ids`
([N] strings, unique; default "<file stem>-<row>"), optional `classes` (class names; with integer
labels label i means classes[i]), and every other key is a modality: an [N, ...] numeric array.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from bmmal.data import UNLABELED, ArrayDataset
from bmmal.datasets.encoded import check_modalities, labels_from_names, path_loader, split_standardized
from bmmal.errors import BmmalError, BmmalWarning

RESERVED = ("labels", "ids", "classes")
MASK_PREFIX = "present:"


def _presence(path: Path, arrays: dict[str, np.ndarray], known: list[str], chosen: tuple[str, ...], n: int
              ) -> np.ndarray | None:
    """bool [N, M] for the chosen modalities from the `present:<modality>` arrays (None when there are none)."""
    masks = {k[len(MASK_PREFIX):]: v for k, v in arrays.items() if k.startswith(MASK_PREFIX)}
    for m, mask in masks.items():
        if m not in known:
            raise BmmalError(f"{path}: mask '{MASK_PREFIX}{m}' names no modality; the modalities are {', '.join(known)}")
        if mask.dtype != bool or mask.shape != (n,):
            raise BmmalError(f"{path}: mask '{MASK_PREFIX}{m}' must be a bool array of shape ({n},), got "
                             f"{mask.dtype} {mask.shape}")
    if not masks:
        return None
    return np.stack([masks.get(m, np.ones(n, dtype=bool)) for m in chosen], axis=1)


def _labels(path: Path, raw: np.ndarray, classes) -> tuple[np.ndarray, tuple[str, ...]]:
    if raw.ndim != 1:
        raise BmmalError(f"{path}: 'labels' must be one-dimensional, got shape {raw.shape}")
    if raw.dtype.kind in "iu":
        labels = raw.astype(np.int64)
        if (labels < UNLABELED).any():
            raise BmmalError(f"{path}: labels must be class indices or -1 (unlabelled), found {labels.min()}")
        if classes is None:
            classes = tuple(str(c) for c in range(int(labels.max(initial=-1)) + 1))
        return labels, tuple(str(c) for c in classes)
    if raw.dtype.kind == "U":
        return labels_from_names(str(path), raw.astype(str).tolist(), classes)
    raise BmmalError(f"{path}: 'labels' must hold integers or strings, not {raw.dtype}")


def _warn_about_index_arrays(path: Path, modalities: dict[str, np.ndarray], chosen: bool) -> None:
    """A 1-D integer array (a subject, a group, an index) that became a modality only because it was in
    the file is rarely a feature: say so, and how to leave it out."""
    if chosen:
        return
    for m, x in modalities.items():
        if x.ndim == 1 and x.dtype.kind in "iu":  # not bool: a yes/no flag is often a real feature
            keep = [k for k in modalities if k != m]
            how = (f"list the modalities to use, e.g. dataset.modalities: [{', '.join(keep)}]" if keep
                   else "remove it from the file")
            warnings.warn(f"{path}: the 1-D integer array {m!r} is used as a one-feature modality; if it is an "
                          f"id, a group or a subject rather than a feature, {how}", BmmalWarning, stacklevel=2)


def load_arrays(path: str | Path, modalities=None, *, seed: int = 0, test_fraction: float | None = None,
                classes=None, standardize: bool = True):
    """An ArrayDataset of every row, or with `test_fraction` a (train, test) pair split as `load_manifest` does."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BmmalError(f"arrays file not found: {path.absolute()}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded as z:
                arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise BmmalError(f"{path} is not a readable .npz file without pickled objects ({e})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise BmmalError(f"{path} is not a readable .npz file: it holds one array, not named arrays")
    if "labels" not in arrays:
        raise BmmalError(f"{path} has no 'labels' array")
    if classes is None and "classes" in arrays:
        classes = arrays["classes"].astype(str).tolist()
    labels, classes = _labels(path, arrays["labels"], classes)
    known = [k for k in arrays if k not in RESERVED and not k.startswith(MASK_PREFIX)]
    if not known:
        raise BmmalError(f"{path} has no modality arrays besides {', '.join(RESERVED)}")
    features = {}
    for m in check_modalities(str(path), modalities or known, known):
        x = arrays[m]
        if x.dtype.kind not in "biuf":
            raise BmmalError(f"{path}: modality {m!r} must be numeric, not {x.dtype}")
        features[m] = x.reshape(len(x), 1) if x.ndim == 1 else x
    _warn_about_index_arrays(path, {m: arrays[m] for m in features}, chosen=modalities is not None)
    ids = arrays.get("ids")
    present = _presence(path, arrays, known, tuple(features), len(labels))
    data = ArrayDataset(features, labels, classes, ids.astype(str) if ids is not None else None, name=path.stem,
                        present=present)
    data.check_finite()
    if test_fraction is None:
        return data
    return split_standardized(data, seed, test_fraction, scale=standardize)


load_arrays_split = path_loader("arrays", load_arrays, "the .npz file")
