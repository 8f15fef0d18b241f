"""Multi-head BADGE: this project's own strategy, designed from the pitfall map (issue 18).

BADGE and BMMAL look only at the gradient of the *fused* head. The model is trained on the fused
cross-entropy plus one cross-entropy per unimodal head (joint training), and where the fused head is
confident because the strong modality carries the prediction, its gradient is small however badly
the weak modality's head does: the rows that would teach the weak modality look uninformative.

This strategy runs BADGE's k-means++ seeding on the last-layer gradient of that whole training loss,
at the fused pseudo-label y = argmax p:

    g = [ (p - e_y) (x) [z_1; ...; z_M],  sqrt(w) (p_1 - e_y) (x) z_1, ...,  sqrt(w) (p_M - e_y) (x) z_M ]

(p_m: modality m's unimodal head, z_m its embedding, w = `unimodal_weight`, the trainer's weight of the
unimodal losses). A row where the fused head is confident but the weak modality's head is unsure or
disagrees keeps a large gradient in that modality's block, so k-means++ draws it; a row that every
head already gets right has a small gradient everywhere. With w = 0 it selects exactly what BADGE
selects for the same seed. Uses the fused and unimodal probabilities and the modality embeddings; the
embedding is kept as a sum of factored blocks (never built), one O(N (C + D)) pass per chosen row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bmmal.errors import BmmalError
from bmmal.strategies.base import Strategy
from bmmal.strategies.gradient_embedding import gradient_embedding
from bmmal.strategies.kmeanspp import ZERO_DISTANCE_TOLERANCE, OuterProductEmbedding, kmeanspp_seeding
from bmmal.strategies.registry import register


@dataclass
class StackedOuterProducts:
    """Rows g_i = [a_i^1 (x) u_i^1, ..., a_i^B (x) u_i^B]: blocks of outer products, each kept factored.

    Has the interface `kmeanspp_seeding` uses (`len`, `sq_norms`, `sq_distances_to`)."""

    blocks: list[OuterProductEmbedding]

    def __len__(self) -> int:
        return len(self.blocks[0])

    def sq_norms(self) -> torch.Tensor:
        return torch.stack([block.sq_norms() for block in self.blocks]).sum(0)

    def sq_distances_to(self, row: int, sq_norms: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        dot = None
        for block in self.blocks:
            product = block.dots(block.row(row, sq_norm=0.0))  # dots reads only the row's factors
            dot = product if dot is None else dot.add_(product)
        bound = sq_norms + sq_norms[row]
        d2 = torch.add(bound, dot, alpha=-2.0, out=out)
        return d2.masked_fill_(d2 <= ZERO_DISTANCE_TOLERANCE * bound, 0.0)

    def materialize(self) -> torch.Tensor:
        """[N, sum of block sizes]; only for tests."""
        return torch.cat([block.materialize() for block in self.blocks], dim=1)


def multihead_gradient_embedding(outputs, rows, unimodal_weight: float = 1.0) -> StackedOuterProducts:
    """The fused head's gradient embedding followed by each unimodal head's, all at the fused pseudo-label."""
    fused = gradient_embedding(outputs, rows)
    index = torch.as_tensor(rows, dtype=torch.long, device=fused.features.device)
    label = outputs.probs.to(fused.features.device)[index].argmax(1)
    blocks = [fused]
    for m, z in outputs.embeddings.items():
        probs = outputs.unimodal_probs[m].to(fused.features)[index]
        residual = probs.clone()
        residual[torch.arange(len(index), device=residual.device), label] -= 1.0
        blocks.append(OuterProductEmbedding(math.sqrt(unimodal_weight) * residual, z.to(fused.features)[index]))
    return StackedOuterProducts(blocks)


@register
class MultiheadBadge(Strategy):
    name = "multihead_badge"
    needs = frozenset({"probs", "embeddings", "unimodal_probs"})
    summary = "k-means++ on the gradients of the fused and every unimodal head at the fused label (this project's)"

    def __init__(self, unimodal_weight: float = 1.0):
        if isinstance(unimodal_weight, bool) or not isinstance(unimodal_weight, (int, float)) \
                or not unimodal_weight >= 0 or math.isinf(unimodal_weight):
            raise BmmalError(f"multihead_badge: unimodal_weight must be a finite number >= 0, got {unimodal_weight!r}")
        self.unimodal_weight = float(unimodal_weight)

    def _select(self, outputs, candidates, budget, rng):
        missing = set(outputs.embeddings) - set(outputs.unimodal_probs)
        if missing:
            raise BmmalError(f"strategy 'multihead_badge' needs unimodal_probs for modality {min(missing)!r}")
        embedding = multihead_gradient_embedding(outputs, candidates, self.unimodal_weight)
        return candidates[kmeanspp_seeding(embedding, budget, rng, row_ids=candidates)]

    def __repr__(self) -> str:
        return f"MultiheadBadge(unimodal_weight={self.unimodal_weight})"
