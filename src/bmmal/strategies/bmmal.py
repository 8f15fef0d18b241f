"""BMMAL (Shen et al., "Towards Balanced Active Learning for Multimodal Classification", ACM MM 2023).

Per unlabelled sample: Shapley value of each modality on the fused probabilities (exact, 2^M
coalitions), contribution shares c_m at the pseudo-label, scales s_m = 1 - (max_k c_k - c_m), and
k-means++ seeding on the gradient embedding whose modality blocks are scaled by s_m. Uses the fused
probabilities, the modality embeddings and the Shapley values (computed through `fuse` if absent).
With all shares equal it selects exactly what BADGE selects for the same seed. The scales enter the
factored distances as an [N, M] matrix (no scaled copy of the embeddings); `precision` as for BADGE.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from bmmal.contribution import contribution_shares, dominance_scales, shapley
from bmmal.errors import BmmalError
from bmmal.outputs import PoolOutputs
from bmmal.strategies.badge import Badge
from bmmal.strategies.gradient_embedding import pool_gradient_embedding
from bmmal.strategies.registry import register


@register
class Bmmal(Badge):
    name = "bmmal"
    needs = frozenset({"probs", "embeddings", "shapley"})
    summary = "BADGE with modality blocks scaled by Shapley dominance (Shen et al., ACM MM 2023)"

    def select(self, outputs, budget, seed=0):
        return super().select(self.prepare(outputs), budget, seed)

    def prepare(self, outputs):
        """`outputs`, or a copy with the Shapley values computed through `fuse` (the caller's stays as is)."""
        if outputs.shapley is None and outputs.fuse is not None and outputs.embeddings:
            return replace(outputs, shapley=shapley(outputs.fuse, outputs.embeddings, present=outputs.present))
        if outputs.shapley is None and isinstance(outputs, PoolOutputs):
            raise BmmalError("strategy 'bmmal' needs PoolOutputs.shapley, which is missing: pass shapley= "
                             "([N, M, C] Shapley values) or fuse= (the fusion head) with the embeddings")
        return outputs

    def modality_scales(self, outputs, rows=None) -> torch.Tensor:
        """[len(rows), M] scales s_m from the contribution shares at the fused pseudo-label (rows: default all)."""
        phi, probs, present = outputs.shapley, outputs.probs, outputs.present
        if rows is not None:
            index = torch.as_tensor(np.asarray(rows), dtype=torch.long, device=phi.device)
            phi, probs = phi[index], probs[index.to(probs.device)]
            present = present[index.to(present.device)] if present is not None else None
        if phi.shape[1] != len(outputs.embeddings):
            raise BmmalError(f"shapley has {phi.shape[1]} modalities, embeddings have {len(outputs.embeddings)}")
        return dominance_scales(contribution_shares(phi, probs.argmax(1).to(phi.device), present))

    def embedding(self, outputs):
        outputs = self.prepare(outputs)
        return pool_gradient_embedding(outputs, self.modality_scales(outputs), self.precision)
