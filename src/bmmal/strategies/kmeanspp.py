"""k-means++ seeding on gradient embeddings in factored form.

A BADGE or BMMAL gradient embedding of row i is an outer product g_i = a_i (x) u_i (a_i: the
residual p - onehot(y) over C classes; u_i: the concatenated, possibly scaled, modality embeddings).
Then <g_i, g_j> = (a_i . a_j)(u_i . u_j), so squared distances to one chosen row cost one pass of
O(N (C + D)) over the two factors, and the N x C*D matrix is never built.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

ZERO_DISTANCE_TOLERANCE = 1e-6  # relative to |g_i|^2 + |g_c|^2: below this, rounding, not distance


@dataclass
class OuterProductEmbedding:
    """Rows g_i = residual_i (x) features_i, kept as the two factors."""

    residual: torch.Tensor  # [N, C]
    features: torch.Tensor  # [N, D]

    def __len__(self) -> int:
        return len(self.residual)

    def sq_norms(self) -> torch.Tensor:
        """|a_i|^2 |u_i|^2 in float64, a block of rows at a time (no float64 copy of the features)."""
        features = torch.cat([(block.double() ** 2).sum(1) for block in self.features.split(4096)])
        return (self.residual.double() ** 2).sum(1) * features

    def sq_distances_to(self, row: int, sq_norms: torch.Tensor) -> torch.Tensor:
        """[N] float64 squared distances from every row to row `row`."""
        dot = (self.residual @ self.residual[row]).double() * (self.features @ self.features[row]).double()
        bound = sq_norms + sq_norms[row]
        d2 = bound - 2.0 * dot
        return torch.where(d2 <= ZERO_DISTANCE_TOLERANCE * bound, torch.zeros_like(d2), d2)

    def materialize(self) -> torch.Tensor:
        """[N, C*D]; only for tests and for measuring the naive method."""
        return (self.residual[:, :, None] * self.features[:, None, :]).reshape(len(self), -1)


def kmeanspp_seeding(embedding: OuterProductEmbedding, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (into `embedding`) of k distinct rows chosen by k-means++ seeding.

    The first row is the one of largest norm (lowest position on ties); each next row is drawn with
    probability proportional to its squared distance to the nearest chosen row. If every remaining
    row is at distance 0, the rest are drawn uniformly at random, with a warning. Runs on the device
    of the factors (CPU or CUDA); the random draws come from `rng` either way.
    """
    n = len(embedding)
    if not 0 < k <= n:
        raise ValueError(f"cannot choose {k} rows out of {n}")
    sq_norms = embedding.sq_norms()
    first = int(torch.argmax(sq_norms))
    chosen = [first]
    is_chosen = torch.zeros(n, dtype=torch.bool, device=sq_norms.device)
    is_chosen[first] = True
    min_d2 = embedding.sq_distances_to(first, sq_norms)
    min_d2[first] = 0.0
    while len(chosen) < k:
        cumulative = torch.cumsum(min_d2, 0)
        total = float(cumulative[-1])
        if not total > 0:
            rest = torch.nonzero(~is_chosen).flatten().cpu().numpy()
            extra = rng.choice(rest, size=k - len(chosen), replace=False)
            warnings.warn(f"k-means++: all {len(rest)} remaining rows are at distance 0 from the chosen ones; "
                          f"{len(extra)} rows were drawn uniformly at random", RuntimeWarning, stacklevel=3)
            chosen.extend(int(i) for i in extra)
            break
        target = torch.tensor([rng.random() * total], dtype=cumulative.dtype, device=cumulative.device)
        pick = min(int(torch.searchsorted(cumulative, target, right=True)), n - 1)
        if is_chosen[pick] or min_d2[pick] <= 0:  # rounding at the very end of the cumulative sum
            pick = int(torch.nonzero(min_d2 > 0).flatten()[-1])
        chosen.append(pick)
        is_chosen[pick] = True
        torch.minimum(min_d2, embedding.sq_distances_to(pick, sq_norms), out=min_d2)
        min_d2[is_chosen] = 0.0
    return np.asarray(chosen, dtype=np.int64)
