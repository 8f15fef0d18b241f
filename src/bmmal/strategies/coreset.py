"""Core-set selection (Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set
Approach", ICLR 2018), the greedy k-center variant.

Greedy k-center on the fused embedding (`embeddings`, concatenated), Euclidean, with the labelled
rows as the initial centres; with nothing labelled, the first centre is drawn with the seed. Unlike
the reference code, labelled and unlabelled rows are indexed consistently (its coreset indexed the
unlabelled features with whole-pool positions). Scores: distance to the nearest labelled row.
"""

from __future__ import annotations

import numpy as np
import torch

from bmmal.strategies.base import Strategy
from bmmal.strategies.fused import fused_rows
from bmmal.strategies.kcenter import greedy_k_center, min_sq_distances
from bmmal.strategies.registry import register


@register
class Coreset(Strategy):
    name = "coreset"
    needs = frozenset({"embeddings"})
    summary = "greedy k-center on the fused embedding (Sener & Savarese, ICLR 2018)"

    def _select(self, outputs, candidates, budget, rng):
        labelled = np.flatnonzero(outputs.labeled.numpy())
        x = fused_rows(outputs, candidates)
        return candidates[greedy_k_center(x, budget, fused_rows(outputs, labelled), rng)]

    def scores(self, outputs):
        """Distance from each unlabelled row to its nearest labelled row (inf when none is labelled)."""
        out = np.full(len(outputs), np.nan)
        rows = outputs.unlabeled_rows
        labelled = np.flatnonzero(outputs.labeled.numpy())
        d2 = min_sq_distances(fused_rows(outputs, rows), fused_rows(outputs, labelled))
        out[rows] = torch.sqrt(d2).numpy()
        return out
