"""The strategy contract: `select(outputs, budget, seed)` -> distinct unlabelled row indices.

A strategy declares the PoolOutputs fields it needs in `needs`; inference computes only those.
Strategies that rank rows by a score derive from `ScoreStrategy` and implement `scores`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch

from bmmal.errors import BmmalError, check_seed
from bmmal.outputs import FIELDS, PoolOutputs


def check_selection_inputs(outputs: PoolOutputs, budget: int, needs: frozenset[str], name: str) -> np.ndarray:
    """The unlabelled rows, after checking the budget and that the needed outputs are present and finite."""
    if not isinstance(outputs, PoolOutputs):
        raise BmmalError(f"outputs must be a PoolOutputs, got {type(outputs).__name__}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise BmmalError(f"budget must be an integer, got {budget!r}")
    candidates = outputs.unlabeled_rows
    if budget < 1:
        raise BmmalError(f"budget must be at least 1, got {budget}")
    if budget > len(candidates):
        raise BmmalError(f"budget {budget} is larger than the {len(candidates)} unlabelled samples in the pool")
    check_needed_outputs(outputs, needs, name)
    return candidates


def check_needed_outputs(outputs: PoolOutputs, needs: frozenset[str], name: str) -> None:
    """The fields a strategy needs are present and finite (checked in row blocks: no [N, D] temporary), in the
    order of PoolOutputs' fields: an error names the same field in every process, the inputs before the
    Shapley values derived from them."""
    for field in sorted(needs, key=lambda f: (FIELDS.index(f) if f in FIELDS else len(FIELDS), f)):
        value = getattr(outputs, field)
        if value is None or (isinstance(value, dict) and not value):
            raise BmmalError(f"strategy {name!r} needs PoolOutputs.{field}, which is missing")
        tensors = value.values() if isinstance(value, dict) else [value] if torch.is_tensor(value) else []
        for t in tensors:  # NaN and inf make the sum non-finite (so can overflow: then the exact check): one pass
            if t.is_floating_point() and not torch.isfinite(t.sum()):
                rows = t.flatten(0, -2) if t.dim() > 1 else t
                if not all(torch.isfinite(b).all() for b in rows.split(4096)):
                    raise BmmalError(f"strategy {name!r}: PoolOutputs.{field} has NaN or infinite values")


class Strategy(ABC):
    """An active-learning strategy: picks which unlabelled rows of a `PoolOutputs` to label next.

    A subclass sets `name` (its registry name), `needs` (the `PoolOutputs` fields it reads, so that
    inference computes only those) and `summary` (one line for `bmmal strategies`), and implements
    `_select`; `select` checks the inputs and the result around it (docs/strategies.md, "Adding a strategy").
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset({"probs"})
    summary: ClassVar[str] = ""

    def select(self, outputs: PoolOutputs, budget: int, seed: int = 0) -> np.ndarray:
        """`budget` distinct row indices (int64) of unlabelled rows of `outputs`, the same for the same seed.

        Missing or non-finite needed fields and impossible budgets are a one-line `BmmalError`.
        """
        candidates = check_selection_inputs(outputs, budget, self.needs, self.name)
        rows = self._select(outputs, candidates, int(budget), np.random.default_rng(check_seed(seed)))
        rows = np.asarray(rows, dtype=np.int64)
        assert len(rows) == budget and len(np.unique(rows)) == budget, f"{self.name}: invalid selection"
        return rows

    @abstractmethod
    def _select(self, outputs: PoolOutputs, candidates: np.ndarray, budget: int,
                rng: np.random.Generator) -> np.ndarray:
        """Distinct rows from `candidates` (the unlabelled rows), exactly `budget` of them."""

    def scores(self, outputs: PoolOutputs) -> np.ndarray | None:
        """Per-row scores (higher = selected first, NaN for labelled rows), where the strategy has them."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ScoreStrategy(Strategy):
    """Selects the `budget` unlabelled rows of highest score; ties are broken at random by the seed."""

    @abstractmethod
    def row_scores(self, outputs: PoolOutputs, rows: np.ndarray) -> np.ndarray:
        """Scores of `rows` (higher = more useful to label)."""

    def scores(self, outputs: PoolOutputs) -> np.ndarray:
        out = np.full(len(outputs), np.nan)
        rows = outputs.unlabeled_rows
        out[rows] = self.row_scores(outputs, rows)
        return out

    def _select(self, outputs, candidates, budget, rng):
        scores = np.asarray(self.row_scores(outputs, candidates), dtype=np.float64)
        shuffle = rng.permutation(len(candidates))
        order = np.argsort(-scores[shuffle], kind="stable")[:budget]
        return candidates[shuffle[order]]
