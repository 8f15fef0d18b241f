"""Helpers shared by the datasets whose modalities are frozen pretrained features (emoji9, tuxpaint, manifest)."""

from __future__ import annotations

from collections.abc import Sequence

from bmmal.data import ArrayDataset, standardize, stratified_split
from bmmal.errors import BmmalError


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


def split_standardized(data: ArrayDataset, seed: int, test_fraction: float) -> tuple[ArrayDataset, ArrayDataset]:
    """Deterministic stratified (train, test), each modality standardised with the train statistics."""
    train_rows, test_rows = stratified_split(data.labels, test_fraction, seed)
    return standardize(data.subset(train_rows), data.subset(test_rows))
