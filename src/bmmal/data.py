"""Multimodal datasets: the protocol every dataset follows, an in-memory implementation, splits.

A dataset holds N samples, each with M modalities, a stable string id and an integer label
(-1 where the label is unknown). Modality order is the order of `modalities` and is the order used
everywhere else (embeddings, Shapley players, scales).

A sample may lack modalities: `present` is a bool [N, M] array in modality order (all true when nothing
is missing; `dataset_present` gives it for any dataset). In a batch an absent modality of a sample is a
row of NaN, a value a present row never holds (NaN in a present row is bad input), so the marker
travels with the tensor through subsets, data loaders and devices; the model turns it into the zero
embedding, the "absent" of the Shapley values.
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

    def subset(self, rows: np.ndarray) -> MultimodalDataset:
        """A dataset of these rows only, in this order."""
        ...


@dataclass
class ArrayDataset:
    """A dataset whose modalities are arrays already in memory (features, spectrograms, images)."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    classes: tuple[str, ...]
    ids: np.ndarray | None = None
    name: str = "arrays"
    meta: dict[str, Any] = field(default_factory=dict)
    present: np.ndarray | None = None  # bool [N, M] in modality order; None: every modality of every sample

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
        self.present = check_present(self.present, n, len(self.features), self.name, self.ids)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.features)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def complete(self) -> bool:
        """Whether every sample has every modality."""
        return bool(self.present.all())

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Float32 inputs; the rows of an absent modality are NaN (see the module docstring)."""
        out = {}
        for j, (m, x) in enumerate(self.features.items()):
            absent = ~self.present[rows, j]
            if absent.any():  # a copy: never write into the stored features
                t = torch.tensor(x[rows], dtype=torch.float32)
                t[torch.as_tensor(np.atleast_1d(absent))] = float("nan")
            else:
                t = torch.as_tensor(x[rows], dtype=torch.float32)
            out[m] = t
        return out

    def subset(self, rows: np.ndarray) -> ArrayDataset:
        rows = np.asarray(rows)
        return ArrayDataset(
            features={m: x[rows] for m, x in self.features.items()},
            labels=self.labels[rows],
            classes=self.classes,
            ids=self.ids[rows],
            name=self.name,
            meta=dict(self.meta),
            present=self.present[rows],
        )

    def with_present(self, present: np.ndarray) -> ArrayDataset:
        """The same samples with this presence mask (absent entries' feature rows are set to 0)."""
        present = check_present(present, len(self), len(self.features), self.name, self.ids)
        feats = {m: np.where(present[:, j].reshape(-1, *[1] * (x.ndim - 1)), x, 0).astype(x.dtype, copy=False)
                 for j, (m, x) in enumerate(self.features.items())}
        return ArrayDataset(feats, self.labels, self.classes, self.ids, self.name, dict(self.meta), present)

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
        columns = [list(self.features).index(m) for m in modalities]
        return ArrayDataset({m: self.features[m] for m in modalities}, self.labels, self.classes, self.ids,
                            self.name, dict(self.meta), self.present[:, columns])

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: tuple(x.shape[1:]) for m, x in self.features.items()}

    def check_finite(self) -> None:
        """NaN or inf in a present row is an error (absent rows may hold anything)."""
        for j, (m, x) in enumerate(self.features.items()):
            if np.issubdtype(x.dtype, np.floating):
                bad = (~np.isfinite(x)).reshape(len(x), -1).any(axis=1) & self.present[:, j]
                if bad.any():
                    raise BmmalError(f"dataset {self.name!r}: modality {m!r} has NaN or infinite values in "
                                     f"{int(bad.sum())} samples that have it (first: {self.ids[bad][0]!r})")


def check_present(present, n: int, n_modalities: int, name: str, ids: np.ndarray) -> np.ndarray:
    """`present` as a bool [n, M] array (all true for None), after checking shape, dtype and that no sample
    lacks every modality."""
    if present is None:
        return np.ones((n, n_modalities), dtype=bool)
    present = np.asarray(present)
    if present.dtype != bool:
        raise BmmalError(f"dataset {name!r}: the presence mask must be bool, not {present.dtype}")
    if present.shape != (n, n_modalities):
        raise BmmalError(f"dataset {name!r}: the presence mask has shape {present.shape}, expected "
                         f"{(n, n_modalities)} (samples, modalities)")
    empty = ~present.any(axis=1)
    if empty.any():
        raise BmmalError(f"dataset {name!r}: {int(empty.sum())} samples have no modality at all "
                         f"(first: {ids[empty][0]!r})")
    return present


def dataset_present(dataset) -> np.ndarray:
    """bool [N, M]: which modality of which sample is there (all true for a dataset without `present`)."""
    present = getattr(dataset, "present", None)
    if present is None:
        return np.ones((len(dataset), len(dataset.modalities)), dtype=bool)
    return np.asarray(present, dtype=bool)


def batch_present(x: torch.Tensor) -> torch.Tensor:
    """bool [B]: the rows of a modality's batch tensor that are present (an absent row is all NaN)."""
    if not x.is_floating_point() or x.dim() == 0:
        return torch.ones(len(x), dtype=torch.bool, device=x.device)
    return ~torch.isnan(x.reshape(len(x), -1)).all(dim=1)


def drop_modalities(dataset: ArrayDataset, fractions: dict[str, float], seed: int, stream: int = 0) -> ArrayDataset:
    """`dataset` with modality m removed from a seeded random fraction `fractions[m]` of its samples.

    Only samples that keep another modality can lose one (a sample never ends up empty), so the fraction is
    of all samples, capped by how many can lose it. The same seed and `stream` (e.g. 0 for train, 1 for
    test) draw the same samples.
    """
    if not isinstance(fractions, dict):
        raise BmmalError(f"drop must map modality -> fraction, got {fractions!r}")
    present = dataset.present.copy()
    names = list(dataset.modalities)
    for m, fraction in fractions.items():
        if m not in names:
            raise BmmalError(f"drop names modality {m!r}, which dataset {dataset.name!r} does not have "
                             f"(it has {', '.join(names)})")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise BmmalError(f"drop.{m} must be a fraction between 0 and 1, got {fraction!r}")
        j = names.index(m)
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(stream), j])
        can_lose = np.flatnonzero(present[:, j] & (present.sum(axis=1) > 1))
        n_drop = min(round(fraction * len(dataset)), len(can_lose))
        present[rng.choice(can_lose, n_drop, replace=False), j] = False
    return dataset.with_present(present)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test), each class split in the same proportion, sorted."""
    if not 0 < test_fraction < 1:
        raise BmmalError(f"test fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        rng.shuffle(rows)
        n_test = round(len(rows) * test_fraction)
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def standardize(train: ArrayDataset, *others: ArrayDataset) -> tuple[ArrayDataset, ...]:
    """Scale every flat modality to zero mean and unit variance, with statistics of the rows of `train` that
    have the modality (absent rows are set to 0)."""
    out = []
    stats = {}
    for j, (m, x) in enumerate(train.features.items()):
        x = x[train.present[:, j]].astype(np.float32)
        mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1:], np.float32)
        std = x.std(axis=0) if len(x) else np.ones(x.shape[1:], np.float32)
        stats[m] = (mean, np.where(std > 1e-8, std, 1.0).astype(np.float32))
    for ds in (train, *others):
        feats = {}
        for j, (m, x) in enumerate(ds.features.items()):
            scaled = ((x.astype(np.float32) - stats[m][0]) / stats[m][1]).astype(np.float32)
            feats[m] = np.where(ds.present[:, j].reshape(-1, *[1] * (x.ndim - 1)), scaled, np.float32(0))
        out.append(ArrayDataset(feats, ds.labels, ds.classes, ds.ids, ds.name, dict(ds.meta), ds.present))
    return tuple(out)
