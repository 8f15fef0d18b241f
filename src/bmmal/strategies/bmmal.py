"""BMMAL (Shen et al., "Towards Balanced Active Learning for Multimodal Classification", ACM MM 2023).

Per unlabelled sample: Shapley value of each modality on the fused probabilities (exact, 2^M
coalitions), contribution shares c_m at the pseudo-label, scales s_m = 1 - (max_k c_k - c_m), and
k-means++ seeding on the gradient embedding whose modality blocks are scaled by s_m. Uses the fused
probabilities, the modality embeddings and the Shapley values (computed through `fuse` if absent).
With all shares equal it selects exactly what BADGE selects for the same seed.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from bmmal.contribution import contribution_shares, dominance_scales, shapley
from bmmal.errors import BmmalError
from bmmal.strategies.base import Strategy
from bmmal.strategies.gradient_embedding import gradient_embedding
from bmmal.strategies.kmeanspp import kmeanspp_seeding
from bmmal.strategies.registry import register


@register
class Bmmal(Strategy):
    name = "bmmal"
    needs = frozenset({"probs", "embeddings", "shapley"})
    summary = "BADGE with modality blocks scaled by Shapley dominance (Shen et al., ACM MM 2023)"

    def select(self, outputs, budget, seed=0):
        if outputs.shapley is None and outputs.fuse is not None and outputs.embeddings:
            outputs = replace(outputs, shapley=shapley(outputs.fuse, outputs.embeddings))  # the caller's stays as is
        return super().select(outputs, budget, seed)

    def modality_scales(self, outputs, rows) -> torch.Tensor:
        """[len(rows), M] scales s_m from the contribution shares at the fused pseudo-label."""
        index = torch.as_tensor(rows, dtype=torch.long)
        phi = outputs.shapley[index]
        if phi.shape[1] != len(outputs.embeddings):
            raise BmmalError(f"shapley has {phi.shape[1]} modalities, embeddings have {len(outputs.embeddings)}")
        return dominance_scales(contribution_shares(phi, outputs.probs[index].argmax(1)))

    def _select(self, outputs, candidates, budget, rng):
        embedding = gradient_embedding(outputs, candidates, self.modality_scales(outputs, candidates))
        return candidates[kmeanspp_seeding(embedding, budget, rng)]
