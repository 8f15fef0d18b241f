"""Greedy k-center (Gonzalez 1985; as active learning: Sener & Savarese, "Active Learning for
Convolutional Neural Networks: A Core-Set Approach", ICLR 2018).

Starting from some centres, repeatedly add the point farthest from its nearest centre. Incremental:
one running vector of squared distances to the nearest centre, updated with one matrix-vector
product per new centre, so each step costs O(N D) time and O(N) extra memory. The distances to the
initial centres are computed in blocks of at most `BLOCK_ELEMENTS` pairwise numbers.
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK_ELEMENTS = 2 ** 23  # 32 MiB of float32 per block of pairwise distances


def _sq_norms(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x, dim=1) ** 2


def _sq_distances(x: torch.Tensor, x_sq: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """[len(x), len(c)] squared distances via |x|^2 + |c|^2 - 2 x.c (one BLAS call), clipped at 0."""
    return (x_sq[:, None] + _sq_norms(c)[None, :] - 2.0 * (x @ c.T)).clamp_min_(0.0)


def _sq_distances_to_row(x: torch.Tensor, x_sq: torch.Tensor, row: int) -> torch.Tensor:
    """[len(x)] squared distances to x[row]: a single matrix-vector product, the cost of one step."""
    return (x_sq + x_sq[row] - 2.0 * torch.mv(x, x[row])).clamp_min_(0.0)


def min_sq_distances(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """[len(x)] squared distance from each row of x to its nearest row of `centres` (inf if none)."""
    x = x.float()
    centres = centres.float()
    x_sq = _sq_norms(x)
    out = torch.full((len(x),), float("inf"))
    if len(centres) == 0:
        return out
    cols = max(1, min(len(centres), BLOCK_ELEMENTS // max(1, len(x))))
    rows = max(1, BLOCK_ELEMENTS // cols)
    for r in range(0, len(x), rows):
        for c in range(0, len(centres), cols):
            block = _sq_distances(x[r:r + rows], x_sq[r:r + rows], centres[c:c + cols]).min(1).values
            out[r:r + rows] = torch.minimum(out[r:r + rows], block)
    return out


def greedy_k_center(x: torch.Tensor, k: int, centres: torch.Tensor | None, rng: np.random.Generator
                    ) -> np.ndarray:
    """Positions of k distinct rows of x chosen by greedy k-center.

    `centres` (e.g. the labelled points) start the cover; when there are none, the first centre is a
    row of x drawn with `rng`. Ties (e.g. duplicate points) go to the lowest position.
    """
    n = len(x)
    if not 0 < k <= n:
        raise ValueError(f"cannot choose {k} rows out of {n}")
    x = x.float().contiguous()
    x_sq = _sq_norms(x)
    chosen: list[int] = []
    if centres is None or len(centres) == 0:
        chosen.append(int(rng.integers(n)))
        min_d2 = _sq_distances_to_row(x, x_sq, chosen[0])
    else:
        min_d2 = min_sq_distances(x, centres)
    is_chosen = torch.zeros(n, dtype=torch.bool)
    is_chosen[chosen] = True
    while len(chosen) < k:
        pick = int(torch.argmax(min_d2.masked_fill(is_chosen, -1.0)))
        chosen.append(pick)
        is_chosen[pick] = True
        torch.minimum(min_d2, _sq_distances_to_row(x, x_sq, pick), out=min_d2)
    return np.asarray(chosen, dtype=np.int64)
