"""Greedy k-center (Gonzalez 1985; as active learning: Sener & Savarese, "Active Learning for
Convolutional Neural Networks: A Core-Set Approach", ICLR 2018).

Starting from some centres, repeatedly add the point farthest from its nearest centre. Incremental:
one running vector of squared distances to the nearest centre per part of the pool (see
kmeanspp.PoolPart), updated with one matrix-vector product per modality block per new centre, so each
step costs O(N D) time and O(N) extra memory, on the caller's blocks (no concatenated copy). The
distances to the initial centres are computed in blocks of at most `BLOCK_ELEMENTS` pairwise numbers.
`kcenter_loop` is the one routine for a pool in one process and for a pool in shards.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bmmal.strategies.kmeanspp import NORM_BLOCK_ROWS, LocalParts, OuterProductEmbedding, Parts, PoolPart, owner
from bmmal.strategies.precision import float64_norms

BLOCK_ELEMENTS = 2 ** 23  # pairwise numbers per block (64 MiB in float64)


def _blocks(x) -> list[torch.Tensor]:
    return [x] if torch.is_tensor(x) else list(x)


def _compute(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _sq_norms(blocks: list[torch.Tensor]) -> torch.Tensor:
    """float64 squared row norms over the blocks, a few rows at a time (no float64 copy of a block)."""
    work = torch.empty(min(NORM_BLOCK_ROWS, len(blocks[0])), max(b.shape[1] for b in blocks), dtype=torch.float64,
                       device=blocks[0].device)
    return sum(torch.cat([float64_norms(c, work) ** 2 for c in b.split(NORM_BLOCK_ROWS)]) for b in blocks)


def min_sq_distances(x, centres) -> torch.Tensor:
    """[N] float64 squared distance from each row of x to its nearest row of `centres` (inf if none).

    x and centres: one tensor or the same list of per-modality blocks (rows = concatenated blocks)."""
    xs, cs = _blocks(x), [_compute(c) for c in _blocks(centres)]
    n, n_centres = len(xs[0]), len(cs[0])
    out = torch.full((n,), math.inf, dtype=torch.float64, device=xs[0].device)
    if n_centres == 0 or n == 0:
        return out
    c_sq = _sq_norms(cs)
    cols = max(1, min(n_centres, BLOCK_ELEMENTS // max(1, n)))
    rows = max(1, BLOCK_ELEMENTS // cols)
    for r in range(0, n, rows):
        xr = [_compute(b[r:r + rows]) for b in xs]
        x_sq = _sq_norms(xr)
        for c in range(0, n_centres, cols):
            dot = sum((xb @ cb[c:c + cols].T.to(xb.dtype)).double() for xb, cb in zip(xr, cs))
            d2 = (x_sq[:, None] + c_sq[None, c:c + cols]).sub_(dot, alpha=2.0).clamp_min_(0.0)
            torch.minimum(out[r:r + rows], d2.min(1).values, out=out[r:r + rows])
    return out


def kcenter_loop(parts: Parts, k: int, first: int | None = None) -> np.ndarray:
    """Global indices of k distinct open rows chosen by greedy k-center over `parts`.

    Either every part's distances were set from initial centres (`first` None), or `first` is the
    first centre. Ties (e.g. duplicate points) go to the lowest global index."""
    chosen: list[int] = []
    proposal = (math.nan, first) if first is not None else min(parts.each("farthest"))
    while len(chosen) < k:
        if proposal[1] < 0:
            raise ValueError(f"k-center: cannot choose {k} rows, only {len(chosen)} may be chosen")
        chosen.append(proposal[1])
        if len(chosen) < k:
            proposal = min(parts.each("add_centre", parts.row(owner(parts, chosen[-1]), chosen[-1]), None))
    return np.asarray(chosen, dtype=np.int64)


def greedy_k_center(x: torch.Tensor, k: int, centres: torch.Tensor | None, rng: np.random.Generator
                    ) -> np.ndarray:
    """Positions of k distinct rows of x chosen by greedy k-center.

    `centres` (e.g. the labelled points) start the cover; when there are none, the first centre is a
    row of x drawn with `rng`. Ties (e.g. duplicate points) go to the lowest position.
    """
    n = len(x)
    if not 0 < k <= n:
        raise ValueError(f"cannot choose {k} rows out of {n}")
    part = PoolPart(OuterProductEmbedding(None, _compute(x)))
    if centres is None or len(centres) == 0:
        return kcenter_loop(LocalParts([part]), k, first=int(rng.integers(n)))
    part.set_distances(min_sq_distances(x, centres))
    return kcenter_loop(LocalParts([part]), k)
