"""Core-set selection (Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set
Approach", ICLR 2018), the greedy k-center variant.

Greedy k-center on the fused embedding (`embeddings`, concatenated), Euclidean, with the labelled
rows as the initial centres; with nothing labelled, the first centre is drawn with the seed. Unlike
the reference code, labelled and unlabelled rows are indexed consistently (its coreset indexed the
unlabelled features with whole-pool positions). Scores: distance to the nearest labelled row.
The distances run on the caller's per-modality blocks (no concatenated copy of the pool).
"""

from __future__ import annotations

import numpy as np
import torch

from bmmal.strategies.base import Strategy
from bmmal.strategies.kcenter import kcenter_loop, min_sq_distances
from bmmal.strategies.kmeanspp import LocalParts, OuterProductEmbedding, PoolPart
from bmmal.strategies.registry import register


def labeled_blocks(outputs) -> list[torch.Tensor]:
    """The labelled rows of each embedding block (the initial centres): a copy of L rows."""
    index = torch.as_tensor(np.flatnonzero(outputs.labeled.cpu().numpy()), dtype=torch.long)
    return [z[index.to(z.device)] for z in outputs.embeddings.values()]


@register
class Coreset(Strategy):
    name = "coreset"
    needs = frozenset({"embeddings"})
    summary = "greedy k-center on the fused embedding (Sener & Savarese, ICLR 2018)"
    seeding = "k-center"  # how `bmmal.distributed` runs it across shards

    def embedding(self, outputs) -> OuterProductEmbedding:
        """Plain rows (the fused embedding) of every row of `outputs`, as per-modality blocks."""
        return OuterProductEmbedding(None, list(outputs.embeddings.values()))

    def _select(self, outputs, candidates, budget, rng):
        part = PoolPart(self.embedding(outputs), eligible=~outputs.labeled)
        if not outputs.labeled.any():
            return kcenter_loop(LocalParts([part]), budget, first=int(candidates[rng.integers(len(candidates))]))
        part.set_distances(min_sq_distances(list(outputs.embeddings.values()), labeled_blocks(outputs)))
        return kcenter_loop(LocalParts([part]), budget)

    def scores(self, outputs):
        """Distance from each unlabelled row to its nearest labelled row (inf when none is labelled)."""
        out = np.full(len(outputs), np.nan)
        rows = outputs.unlabeled_rows
        d2 = min_sq_distances(list(outputs.embeddings.values()), labeled_blocks(outputs))
        out[rows] = torch.sqrt(d2).cpu().numpy()[rows]
        return out
