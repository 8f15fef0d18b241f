"""BADGE (Ash et al., "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds", ICLR 2020).

k-means++ seeding on the last-layer gradient embedding (p - onehot(argmax p)) (x) [z_1; ...; z_M] of the
fused head. Uses the fused probabilities and the modality embeddings. Exact and global (no chunking):
the embedding is kept in factored form (see kmeanspp.py).
"""

from __future__ import annotations

from bmmal.strategies.base import Strategy
from bmmal.strategies.gradient_embedding import gradient_embedding
from bmmal.strategies.kmeanspp import kmeanspp_seeding
from bmmal.strategies.registry import register


@register
class Badge(Strategy):
    name = "badge"
    needs = frozenset({"probs", "embeddings"})
    summary = "k-means++ on last-layer gradient embeddings (Ash et al., ICLR 2020)"

    def _select(self, outputs, candidates, budget, rng):
        return candidates[kmeanspp_seeding(gradient_embedding(outputs, candidates), budget, rng)]
