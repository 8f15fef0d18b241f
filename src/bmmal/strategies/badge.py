"""BADGE (Ash et al., "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds", ICLR 2020).

k-means++ seeding on the last-layer gradient embedding (p - onehot(argmax p)) (x) [z_1; ...; z_M] of the
fused head. Uses the fused probabilities and the modality embeddings. Exact and global (no chunking):
the embedding is kept in factored form on the caller's tensors (see kmeanspp.py). `precision`
(`fp32`, `bf16`, `fp16`) is the storage type of the factors during selection (see docs/strategies.md).
"""

from __future__ import annotations

from bmmal.strategies.base import Strategy
from bmmal.strategies.gradient_embedding import pool_gradient_embedding
from bmmal.strategies.kmeanspp import kmeanspp_seeding
from bmmal.strategies.precision import check_precision
from bmmal.strategies.registry import register


@register
class Badge(Strategy):
    name = "badge"
    needs = frozenset({"probs", "embeddings"})
    summary = "k-means++ on last-layer gradient embeddings (Ash et al., ICLR 2020)"
    seeding = "kmeans++"  # how `bmmal.distributed` runs it across shards

    def __init__(self, precision: str = "fp32"):
        self.precision = check_precision(precision)

    def prepare(self, outputs):
        """`outputs` with whatever selection derives from them first (nothing for BADGE)."""
        return outputs

    def embedding(self, outputs):
        """The factored gradient embedding of every row of `outputs` (labelled rows included)."""
        return pool_gradient_embedding(outputs, precision=self.precision)

    def _select(self, outputs, candidates, budget, rng):
        return kmeanspp_seeding(self.embedding(outputs), budget, rng, eligible=~outputs.labeled)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(precision={self.precision!r})"
