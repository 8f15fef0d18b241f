"""Synthetic Gaussian multimodal data whose per-modality informativeness the caller sets.

Each modality m has one random unit-length centre per class; a sample of class y is
`informativeness[m] * centre[m, y] + N(0, I)`. A modality with informativeness 0 carries no signal;
large values make that modality dominant. Used by tests and to show the modality-imbalance effect.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bmmal.data import ArrayDataset, stratified_split
from bmmal.errors import BmmalError


def make_synthetic(
    n_samples: int = 1000,
    n_classes: int = 4,
    informativeness: Sequence[float] = (3.0, 1.0),
    dims: Sequence[int] | int = 16,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> ArrayDataset:
    n_mod = len(informativeness)
    dims = [dims] * n_mod if isinstance(dims, int) else list(dims)
    names = list(names) if names is not None else [f"m{i}" for i in range(n_mod)]
    if len(dims) != n_mod or len(names) != n_mod:
        raise BmmalError("synthetic: informativeness, dims and names must have one entry per modality")
    if n_classes < 1 or n_samples < n_classes:
        raise BmmalError(f"synthetic: need at least one sample per class, got {n_samples} for {n_classes}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    rng.shuffle(labels)
    features = {}
    for name, d, strength in zip(names, dims, informativeness):
        centres = rng.normal(size=(n_classes, d))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        features[name] = (strength * centres[labels] + rng.normal(size=(n_samples, d))).astype(np.float32)
    ids = np.array([f"synthetic-{i:06d}" for i in range(n_samples)])
    return ArrayDataset(features, labels, tuple(str(c) for c in range(n_classes)), ids, name="synthetic")


def load_synthetic(modalities=None, seed: int = 0, test_fraction: float = 0.2, n_samples: int = 1000,
                   n_classes: int = 4, informativeness: Sequence[float] = (3.0, 1.0),
                   dims: Sequence[int] | int = 16, names: Sequence[str] | None = None, data_seed: int | None = None):
    """Train/test split of `make_synthetic(...)`; the data is drawn with `data_seed` (default: `seed`)."""
    data = make_synthetic(n_samples, n_classes, informativeness, dims, seed if data_seed is None else data_seed, names)
    if modalities:
        data = data.select_modalities(modalities)
    train_rows, test_rows = stratified_split(data.labels, test_fraction, seed)
    return data.subset(train_rows), data.subset(test_rows)
