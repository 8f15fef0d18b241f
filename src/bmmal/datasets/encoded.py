"""Helpers shared by the datasets built from frozen features (emoji9, tuxpaint, manifest, arrays)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np

from bmmal.data import UNLABELED, ArrayDataset, standardize, stratified_split
from bmmal.errors import BmmalError, did_you_mean


def check_modalities(dataset: str, requested: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """`requested` as a tuple, after checking every name is known and listed once."""
    requested = tuple(requested)
    if not requested:
        raise BmmalError(f"dataset {dataset!r}: choose at least one modality")
    for m in requested:
        if m not in known:
            raise BmmalError(f"dataset {dataset!r} has no modality {m!r}; it has {', '.join(known)}")
    if len(set(requested)) != len(requested):
        raise BmmalError(f"dataset {dataset!r}: modality listed twice: {', '.join(requested)}")
    return requested


def split_standardized(data: ArrayDataset, seed: int, test_fraction: float,
                       scale: bool = True) -> tuple[ArrayDataset, ArrayDataset]:
    """Deterministic (train, test): the labelled samples split stratified by class, every unlabelled sample
    in train (the pool); with `scale`, each modality standardised with the train statistics."""
    labeled = np.flatnonzero(data.labels != UNLABELED)
    if len(labeled) == 0:
        raise BmmalError(f"dataset {data.name!r} has no labelled samples to make a test split from")
    train_rows, test_rows = stratified_split(data.labels[labeled], test_fraction, seed)
    train_rows = np.sort(np.concatenate([labeled[train_rows], np.flatnonzero(data.labels == UNLABELED)]))
    train, test = data.subset(train_rows), data.subset(labeled[test_rows])
    return standardize(train, test) if scale else (train, test)


def labels_from_names(source: str, names: Sequence[str], classes: Sequence[str] | None
                      ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices for label names ("" = unlabelled, -1); classes as given, else the names found, sorted."""
    found = set(names) - {""}
    classes = tuple(str(c) for c in classes) if classes is not None else tuple(sorted(found))
    unknown = sorted(found - set(classes))
    if unknown:
        raise BmmalError(f"{source}: label {unknown[0]!r} is not one of the classes {', '.join(classes)}")
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[n] if n else UNLABELED for n in names], dtype=np.int64), classes


def path_loader(name: str, load: Callable, what: str) -> Callable:
    """The registry entry of a dataset read from a user's file: options.path is required, 20 % test by default."""

    known = sorted({"path", "test_fraction", *inspect.signature(load).parameters} - {"modalities", "seed"})

    def loader(modalities=None, seed: int = 0, path=None, test_fraction: float = 0.2, **options):
        unknown = sorted(set(options) - set(known))
        if unknown:  # before the missing path: `file: x.npz` is a misspelled path, not a missing one
            raise BmmalError(f"dataset {name!r}: unknown option {unknown[0]!r}{did_you_mean(unknown[0], known)}; "
                             f"its options: {', '.join(known)}")
        if path is None:
            raise BmmalError(f"dataset {name!r} needs options.path, {what}")
        return load(path, modalities, seed=seed, test_fraction=test_fraction, **options)

    loader.__doc__ = f"Registry entry {name!r}: a (train, test) pair from options.path, {what}."
    return loader
