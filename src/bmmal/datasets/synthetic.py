"""Synthetic Gaussian multimodal data with controlled pitfalls: the generator of the pitfall map.

Each modality m shows one random unit-length centre per *latent value* plus unit Gaussian noise:
`x_m = informativeness[m] * centre[m, u_m] + N(0, I_{dims[m]})`, then multiplied by `scale[m]`.
How the latent values u_m relate to the label y is the `interaction`:

- `redundant`: u_m = y for every modality; each modality alone can separate every class.
- `unique`: the classes are dealt out to the modalities in turn (class y belongs to modality y mod M);
  modality m shows a distinct centre for each of its own classes and one shared centre for all the
  others, so alone it separates its own classes and cannot tell the others apart.
- `synergistic`: the u_m are drawn independently and uniformly from 0..C-1 and y = (sum_m u_m) mod C
  (XOR for two modalities and two classes): every modality alone is independent of the label, only
  the combination determines it.

`informativeness` sets each modality's difficulty (0 = no signal, about 3 = clearly separable), `dims`
its dimensionality (a high-dimensional easy view next to a low-dimensional hard one is the case where
joint training over-uses one view), `scale` its feature scale, and `label_noise` the fraction of
*training* labels replaced by a different class chosen at random (the test split keeps the true
labels). To remove a modality from a share of the samples, add the option every in-memory dataset takes,
`drop: {modality: fraction}` (docs/missing-modalities.md). The same seed gives the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from bmmal.data import ArrayDataset, stratified_split
from bmmal.errors import BmmalError

INTERACTIONS = ("redundant", "unique", "synergistic")


def _per_modality(name: str, value, n_mod: int, kind=float) -> list:
    values = [value] * n_mod if isinstance(value, (int, float)) else list(value)
    if len(values) != n_mod:
        raise BmmalError(f"synthetic: {name} must have one entry per modality ({n_mod}), got {len(values)}")
    return [kind(v) for v in values]


def latent_values(labels: np.ndarray, n_mod: int, n_classes: int, interaction: str,
                  rng: np.random.Generator) -> np.ndarray:
    """[n_mod, N] the latent value each modality shows for each sample (see the module docstring)."""
    if interaction == "redundant":
        return np.tile(labels, (n_mod, 1))
    if interaction == "unique":
        # own classes keep their index; every other class shows the shared value n_classes
        owner = np.arange(n_classes) % n_mod
        return np.stack([np.where(owner[labels] == m, labels, n_classes) for m in range(n_mod)])
    if interaction == "synergistic":
        free = rng.integers(0, n_classes, size=(n_mod - 1, len(labels)))
        last = (labels - free.sum(0)) % n_classes
        return np.concatenate([free, last[None]])
    raise BmmalError(f"synthetic: unknown interaction {interaction!r}; choose one of {', '.join(INTERACTIONS)}")


def flip_labels(labels: np.ndarray, fraction: float, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of `labels` with round(fraction * N) of them, chosen at random, moved to another class."""
    if not 0.0 <= fraction < 1.0:
        raise BmmalError(f"synthetic: label_noise must be in [0, 1), got {fraction}")
    noisy = labels.copy()
    if n_classes < 2 or fraction == 0.0:
        return noisy
    rows = rng.choice(len(labels), size=round(fraction * len(labels)), replace=False)
    noisy[rows] = (labels[rows] + rng.integers(1, n_classes, size=len(rows))) % n_classes
    return noisy


def make_synthetic(
    n_samples: int = 1000,
    n_classes: int = 4,
    informativeness: Sequence[float] = (3.0, 1.0),
    dims: Sequence[int] | int = 16,
    seed: int = 0,
    names: Sequence[str] | None = None,
    interaction: str = "redundant",
    scale: Sequence[float] | float = 1.0,
    label_noise: float = 0.0,
) -> ArrayDataset:
    """The whole data set (no split); `label_noise` here flips labels of every row."""
    n_mod = len(informativeness)
    dims = _per_modality("dims", dims, n_mod, int)
    scale = _per_modality("scale", scale, n_mod)
    names = list(names) if names is not None else [f"m{i}" for i in range(n_mod)]
    if len(names) != n_mod:
        raise BmmalError("synthetic: informativeness, dims and names must have one entry per modality")
    if n_mod < 1 or min(dims) < 1:
        raise BmmalError("synthetic: need at least one modality, each with at least one dimension")
    if n_classes < 1 or n_samples < n_classes:
        raise BmmalError(f"synthetic: need at least one sample per class, got {n_samples} for {n_classes}")
    if interaction != "redundant" and (n_mod < 2 or n_classes < 2):
        raise BmmalError(f"synthetic: interaction {interaction!r} needs at least two modalities and two classes")
    if interaction == "unique" and n_classes < n_mod:
        raise BmmalError(f"synthetic: 'unique' needs at least one class per modality, got {n_classes} classes "
                         f"for {n_mod} modalities")
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    rng.shuffle(labels)
    latent = latent_values(labels, n_mod, n_classes, interaction, rng)
    features = {}
    for m, (name, d, strength) in enumerate(zip(names, dims, informativeness)):
        centres = rng.normal(size=(n_classes + (interaction == "unique"), d))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        x = strength * centres[latent[m]] + rng.normal(size=(n_samples, d))
        features[name] = (scale[m] * x).astype(np.float32)
    labels = flip_labels(labels, label_noise, n_classes, rng)
    ids = np.array([f"synthetic-{i:06d}" for i in range(n_samples)])
    return ArrayDataset(features, labels, tuple(str(c) for c in range(n_classes)), ids, name="synthetic")


def load_synthetic(modalities=None, seed: int = 0, test_fraction: float = 0.2, n_samples: int = 1000,
                   n_classes: int = 4, informativeness: Sequence[float] = (3.0, 1.0),
                   dims: Sequence[int] | int = 16, names: Sequence[str] | None = None, data_seed: int | None = None,
                   interaction: str = "redundant", scale: Sequence[float] | float = 1.0, label_noise: float = 0.0):
    """Train/test split of `make_synthetic(...)`, drawn with `data_seed` (default: `seed`); `label_noise`
    flips that fraction of the training labels only, so the test split measures the true classes."""
    data_seed = seed if data_seed is None else data_seed
    data = make_synthetic(n_samples, n_classes, informativeness, dims, data_seed, names, interaction, scale)
    if modalities:
        data = data.select_modalities(modalities)
    train_rows, test_rows = stratified_split(data.labels, test_fraction, seed)
    train, test = data.subset(train_rows), data.subset(test_rows)
    if label_noise:
        noisy = flip_labels(train.labels, label_noise, n_classes, np.random.default_rng([data_seed, 1]))
        train = replace(train, labels=noisy)
    return train, test
