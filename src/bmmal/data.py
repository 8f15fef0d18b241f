"""Multimodal datasets: the protocol every dataset follows, an in-memory implementation, splits.

A dataset holds N samples, each with M modalities, a stable string id and an integer label
(-1 where the label is unknown). Modality order is the order of `modalities` and is the order used
everywhere else (embeddings, Shapley players, scales).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from bmmal.errors import BmmalError

UNLABELED = -1


@runtime_checkable
class MultimodalDataset(Protocol):
    """What the model, the trainer and the loop need from a dataset."""

    name: str
    modalities: tuple[str, ...]
    classes: tuple[str, ...]
    ids: np.ndarray  # [N] str, unique and stable across runs
    labels: np.ndarray  # [N] int64, UNLABELED where unknown

    def __len__(self) -> int: ...

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Model inputs for these rows: modality name -> tensor with rows first."""
        ...

    def subset(self, rows: np.ndarray) -> MultimodalDataset: ...


@dataclass
class ArrayDataset:
    """A dataset whose modalities are arrays already in memory (features, spectrograms, images)."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    classes: tuple[str, ...]
    ids: np.ndarray | None = None
    name: str = "arrays"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.features:
            raise BmmalError(f"dataset {self.name!r} has no modalities")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        n = len(self.labels)
        for m, x in self.features.items():
            if len(x) != n:
                raise BmmalError(f"dataset {self.name!r}: modality {m!r} has {len(x)} rows, labels have {n}")
        if self.ids is None:
            self.ids = np.array([f"{self.name}-{i}" for i in range(n)])
        self.ids = np.asarray(self.ids).astype(str)
        if len(self.ids) != n:
            raise BmmalError(f"dataset {self.name!r}: {len(self.ids)} ids for {n} samples")
        if len(np.unique(self.ids)) != n:
            raise BmmalError(f"dataset {self.name!r}: sample ids are not unique")
        self.classes = tuple(str(c) for c in self.classes)
        bad = (self.labels != UNLABELED) & ((self.labels < 0) | (self.labels >= len(self.classes)))
        if bad.any():
            raise BmmalError(f"dataset {self.name!r}: label {self.labels[bad][0]} outside 0..{len(self.classes) - 1}")

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.features)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {m: torch.as_tensor(x[rows], dtype=torch.float32) for m, x in self.features.items()}

    def subset(self, rows: np.ndarray) -> ArrayDataset:
        rows = np.asarray(rows)
        return ArrayDataset(
            features={m: x[rows] for m, x in self.features.items()},
            labels=self.labels[rows],
            classes=self.classes,
            ids=self.ids[rows],
            name=self.name,
            meta=dict(self.meta),
        )

    def select_modalities(self, modalities: tuple[str, ...] | list[str]) -> ArrayDataset:
        """The same samples with only these modalities, in this order."""
        modalities = tuple(modalities)
        if not modalities:
            raise BmmalError(f"dataset {self.name!r}: choose at least one modality")
        unknown = [m for m in modalities if m not in self.features]
        if unknown:
            raise BmmalError(
                f"dataset {self.name!r} has no modality {unknown[0]!r}; it has {', '.join(self.features)}"
            )
        if len(set(modalities)) != len(modalities):
            raise BmmalError(f"modality listed twice: {', '.join(modalities)}")
        return ArrayDataset({m: self.features[m] for m in modalities}, self.labels, self.classes, self.ids,
                            self.name, dict(self.meta))

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: tuple(x.shape[1:]) for m, x in self.features.items()}

    def check_finite(self) -> None:
        for m, x in self.features.items():
            if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
                bad = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).sum())
                raise BmmalError(f"dataset {self.name!r}: modality {m!r} has NaN or infinite values in {bad} samples")


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test), each class split in the same proportion, sorted."""
    if not 0 < test_fraction < 1:
        raise BmmalError(f"test fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        rng.shuffle(rows)
        n_test = int(round(len(rows) * test_fraction))
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def standardize(train: ArrayDataset, *others: ArrayDataset) -> tuple[ArrayDataset, ...]:
    """Scale every flat modality to zero mean and unit variance, with statistics of `train` only."""
    out = []
    stats = {}
    for m, x in train.features.items():
        x = x.astype(np.float32)
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        stats[m] = (mean, np.where(std > 1e-8, std, 1.0).astype(np.float32))
    for ds in (train, *others):
        feats = {m: ((x.astype(np.float32) - stats[m][0]) / stats[m][1]).astype(np.float32)
                 for m, x in ds.features.items()}
        out.append(ArrayDataset(feats, ds.labels, ds.classes, ds.ids, ds.name, dict(ds.meta)))
    return tuple(out)
