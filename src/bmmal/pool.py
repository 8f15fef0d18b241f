"""Pool: which samples are labelled, with which label, in which round."""

from __future__ import annotations

import numpy as np

from bmmal.errors import BmmalError


class Pool:
    """Bookkeeping over the N samples of a training set, addressed by row and by stable id."""

    def __init__(self, ids: np.ndarray):
        self.ids = np.asarray(ids).astype(str)
        self._row_of = {sample_id: row for row, sample_id in enumerate(self.ids)}
        if len(self._row_of) != len(self.ids):
            raise BmmalError("pool sample ids are not unique")
        self.labels = np.full(len(self.ids), -1, dtype=np.int64)
        self.rounds = np.full(len(self.ids), -1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labeled(self) -> np.ndarray:
        return self.rounds >= 0

    @property
    def labeled_rows(self) -> np.ndarray:
        return np.flatnonzero(self.labeled)

    @property
    def unlabeled_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.labeled)

    @property
    def n_labeled(self) -> int:
        return int(self.labeled.sum())

    def rows(self, ids) -> np.ndarray:
        missing = [i for i in ids if i not in self._row_of]
        if missing:
            raise BmmalError(f"unknown sample id {missing[0]!r} ({len(missing)} unknown)")
        return np.array([self._row_of[i] for i in ids], dtype=np.int64)

    def label(self, rows, labels, round_index: int) -> None:
        """Record labels for unlabelled rows; all-or-nothing."""
        rows = np.asarray(rows, dtype=np.int64)
        labels = np.asarray(labels, dtype=np.int64)
        if len(rows) != len(labels):
            raise BmmalError(f"{len(rows)} rows but {len(labels)} labels")
        if len(np.unique(rows)) != len(rows):
            raise BmmalError("a sample is labelled twice in one batch")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise BmmalError("row index outside the pool")
        if self.labeled[rows].any():
            raise BmmalError(f"sample {self.ids[rows[self.labeled[rows]][0]]!r} is already labelled")
        if (labels < 0).any():
            raise BmmalError("labels must be non-negative class indices")
        self.labels[rows] = labels
        self.rounds[rows] = round_index

    def selected_in(self, round_index: int) -> np.ndarray:
        return np.flatnonzero(self.rounds == round_index)

    def state_dict(self) -> dict:
        rows = self.labeled_rows
        order = np.lexsort((rows, self.rounds[rows]))
        rows = rows[order]
        return {"ids": self.ids[rows].tolist(), "labels": self.labels[rows].tolist(),
                "rounds": self.rounds[rows].tolist()}

    @classmethod
    def from_state_dict(cls, ids: np.ndarray, state: dict) -> Pool:
        pool = cls(ids)
        rows = pool.rows(state["ids"])
        for r in sorted(set(state["rounds"])):
            mask = np.asarray(state["rounds"]) == r
            pool.label(rows[mask], np.asarray(state["labels"])[mask], int(r))
        return pool
