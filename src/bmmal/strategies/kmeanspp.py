"""k-means++ seeding on gradient embeddings in factored form, on one pool or across the parts of one.

A BADGE or BMMAL gradient embedding of row i is g_i = concat_m (a_i (x) s_im z_im) (a_i: the residual
p - onehot(y) over C classes; z_im: modality m's embedding; s_im: BMMAL's modality scale, 1 for BADGE).
Then <g_i, g_j> = (a_i . a_j) sum_m s_im s_jm (z_im . z_jm), so the squared distances to one chosen row
cost one pass over the original embedding blocks and the residual, O(N (C + D)), with the [N, M] scales
applied to the M per-modality products: neither the N x C*D matrix nor a scaled [N, D] copy is built.

The pool may be split into parts (contiguous row ranges: the whole pool in one process, or one shard
per Ray worker in `bmmal.distributed`). `kmeanspp_loop` is the one sampling routine for both: each
part keeps its rows' squared distance to the nearest chosen row and proposes one row per pick; the
driver keeps the best proposal and sends that row's factors to every part. The D^2 draw is an
exponential race: row i gets E_i = -log U_i, with U_i a counter-based uniform of (pick key, global row
index), and the row with the smallest E_i / D^2_i wins, which is a draw with probability proportional
to D^2_i. Because U_i depends only on the pick and the row's global index, not on how the pool is
split, every split selects the same rows for the same seed.
"""

from __future__ import annotations

import bisect
import math
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from bmmal.strategies.precision import FactorRow, StoredFactor

ZERO_DISTANCE_TOLERANCE = 1e-6  # relative to |g_i|^2 + |g_c|^2: below this, rounding, not distance
NORM_BLOCK_ROWS = 512  # rows per block of the float64 squared norms (a block of 4096 rows was 5x slower: cache)


@dataclass(frozen=True)
class Row:
    """What moves from the part that owns a chosen row to every part: its factors and squared norm."""

    index: int  # global row index
    residual: FactorRow | None  # [C], or None for plain rows (k-center: residual 1)
    blocks: tuple[FactorRow, ...]  # [d_m] per modality, as stored
    scales: tuple[float, ...] | None  # s_jm per modality, or None (all 1)
    sq_norm: float


class OuterProductEmbedding:
    """Rows g_i = residual_i (x) concat_m (scale_im features_im), kept as factors (see the module docstring).

    `features` is one [N, D] tensor or a sequence of per-modality blocks [N, d_m]; `residual` [N, C] may
    be None (plain rows, as for k-center); `scales` [N, M] may be None (all 1). The factors are stored in
    `precision` (see precision.py); squared norms and distances are float64.
    """

    def __init__(self, residual: torch.Tensor | None, features, scales: torch.Tensor | None = None,
                 precision: str = "fp32"):
        blocks = [features] if torch.is_tensor(features) else list(features)
        self._residual = None if residual is None else StoredFactor(residual, precision)
        self._blocks = [StoredFactor(z, precision) for z in blocks]
        self.scales = None if scales is None else scales.to(device=blocks[0].device, dtype=torch.float32)
        if self.scales is not None and self.scales.shape != (len(blocks[0]), len(blocks)):
            raise ValueError(f"scales must be [{len(blocks[0])}, {len(blocks)}], got {tuple(self.scales.shape)}")
        self._scale_columns = None if self.scales is None else [s.contiguous() for s in self.scales.T]
        self.precision = precision
        self._buffers: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._blocks[0])

    @property
    def device(self) -> torch.device:
        return self._blocks[0].device

    @property
    def residual(self) -> torch.Tensor:
        return self._residual.values

    @property
    def features(self) -> torch.Tensor:
        """The feature factor as one [N, D] tensor, scaled (a copy unless there is one unscaled block)."""
        if len(self._blocks) == 1 and self.scales is None and self._blocks[0].scale is None:
            return self._blocks[0].values
        return torch.cat([block.rows(0, len(self)) * (1.0 if self.scales is None else self.scales[:, m:m + 1])
                          for m, block in enumerate(self._blocks)], dim=1)

    def sq_norms(self) -> torch.Tensor:
        """|a_i|^2 sum_m s_im^2 |z_im|^2 in float64, a block of rows at a time (no float64 copy of a factor)."""
        out = []
        for start in range(0, len(self), NORM_BLOCK_ROWS):
            stop = min(start + NORM_BLOCK_ROWS, len(self))
            features = sum(torch.linalg.vector_norm(block.rows(start, stop), dim=1) ** 2 * (
                1.0 if self.scales is None else self.scales[start:stop, m].double() ** 2)
                for m, block in enumerate(self._blocks))
            if self._residual is not None:
                features = features * torch.linalg.vector_norm(self._residual.rows(start, stop), dim=1) ** 2
            out.append(features)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64, device=self.device)

    def row(self, i: int, sq_norm: float, index: int | None = None) -> Row:
        """Row i's factors (as stored), tagged with its global index (default: i)."""
        return Row(index=i if index is None else index,
                   residual=None if self._residual is None else self._residual.row(i),
                   blocks=tuple(block.row(i) for block in self._blocks),
                   scales=None if self.scales is None else tuple(float(s) for s in self.scales[i]),
                   sq_norm=float(sq_norm))

    def _buffer(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        """An [N] scratch tensor kept between picks (see `StoredFactor.dots` on why not a fresh one)."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype:
            buffer = self._buffers[name] = torch.empty(len(self), dtype=dtype, device=self.device)
        return buffer

    def dots(self, row: Row, out: torch.Tensor | None = None) -> torch.Tensor:
        """[N] float64 <g_i, g_row>: one product per factor block, float32 accumulation, float64 product.

        out: an [N] float64 buffer for the result (the intermediates use buffers of this embedding)."""
        features = None
        for m, (block, z) in enumerate(zip(self._blocks, row.blocks)):
            product = block.dots(z, out=self._buffer(f"block{m}", block.dot_dtype))
            if self.scales is not None:
                product.mul_(self._scale_columns[m]).mul_(row.scales[m])
            features = product if features is None else features.add_(product)
        out = torch.empty(len(self), dtype=torch.float64, device=self.device) if out is None else out
        out.copy_(features)
        if self._residual is not None:
            out.mul_(self._residual.dots(row.residual, out=self._buffer("residual", self._residual.dot_dtype)))
        return out

    def sq_distances_to(self, row: int | Row, sq_norms: torch.Tensor, out: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """[N] float64 squared distances from every row to `row` (a position here, or a Row from anywhere).

        out: an [N] float64 buffer for the result."""
        if not isinstance(row, Row):
            row = self.row(int(row), sq_norms[int(row)])
        bound = torch.add(sq_norms, row.sq_norm, out=self._buffer("bound", torch.float64))
        d2 = self.dots(row, out=out)
        torch.add(bound, d2, alpha=-2.0, out=d2)
        zero = torch.le(d2, bound.mul_(ZERO_DISTANCE_TOLERANCE), out=self._buffer("zero", torch.bool))
        return d2.masked_fill_(zero, 0.0)

    def materialize(self) -> torch.Tensor:
        """[N, C*D]; only for tests and for measuring the naive method."""
        features = self.features.double()
        residual = torch.ones(len(self), 1, dtype=torch.float64) if self._residual is None else self.residual.double()
        return (residual[:, :, None] * features[:, None, :]).reshape(len(self), -1)

    def nbytes(self) -> int:
        """Bytes the stored factors allocated beyond the tensors they were given."""
        return sum(f.nbytes() for f in [self._residual, *self._blocks] if f is not None)


class Embedding(Protocol):
    """What `kmeanspp_seeding` needs; `row` is optional (without it, a part cannot send rows elsewhere)."""

    def __len__(self) -> int: ...
    def sq_norms(self) -> torch.Tensor: ...
    def sq_distances_to(self, row, sq_norms: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor: ...


# --- counter-based uniforms (SplitMix64, Steele, Lea & Flood, OOPSLA 2014), in int64 tensor arithmetic ---

_GAMMA = 0x9E3779B97F4A7C15
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= 1 << 63 else c


def _shift_right(z: torch.Tensor, s: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Logical right shift of int64 bit patterns."""
    return torch.bitwise_right_shift(z, s, out=out).bitwise_and_((1 << (64 - s)) - 1)


def row_uniforms(key: int, counters: torch.Tensor, out: torch.Tensor | None = None,
                 work: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """float64 uniforms in (0, 1], one per entry of `counters` (int64 (global_index + 1) * gamma, wrapping):
    SplitMix64's output for the stream seeded with `key`, at those positions. Bitwise identical on every device.

    out: a float64 buffer for the result; work: two int64 buffers shaped like `counters` (reused per pick)."""
    z, t = work if work is not None else (torch.empty_like(counters), torch.empty_like(counters))
    torch.add(counters, _signed(key % (1 << 64)), out=z)
    for shift, mix in ((30, _MIX1), (27, _MIX2), (31, None)):
        z.bitwise_xor_(_shift_right(z, shift, out=t))
        if mix is not None:
            z.mul_(_signed(mix))
    if out is None:
        out = torch.empty(counters.shape, dtype=torch.float64, device=counters.device)
    return out.copy_(_shift_right(z, 11, out=t).add_(1)).mul_(2.0 ** -53)


def row_counters(index: torch.Tensor) -> torch.Tensor:
    """The SplitMix64 counters of global row indices: (index + 1) * gamma, wrapping in int64."""
    return (index + 1) * _signed(_GAMMA)


NO_PROPOSAL = (math.inf, -1)


class PoolPart:
    """One contiguous part of a pool (all of it, or one shard) during greedy seeding.

    Holds the part's embedding, which rows may no longer be chosen (`closed`: not eligible, or chosen) and
    each row's squared distance to the nearest chosen row (`min_d2`). Proposals are (score, global
    index) pairs, lower is better, so the driver's choice is `min` over parts: ties go to the lowest
    global index, whatever the split. The [N] work vectors of a pick live in buffers kept between picks.
    """

    def __init__(self, embedding: Embedding, eligible: torch.Tensor | np.ndarray | None = None, offset: int = 0,
                 row_ids: torch.Tensor | np.ndarray | None = None):
        self.embedding = embedding
        self.offset = int(offset)
        self.sq_norms = embedding.sq_norms()
        device = self.sq_norms.device
        n = len(embedding)
        if eligible is None:
            self.closed = torch.zeros(n, dtype=torch.bool, device=device)
        else:
            self.closed = ~torch.as_tensor(eligible).to(device=device, dtype=torch.bool)
        if len(self.closed) != n:
            raise ValueError(f"eligible has {len(self.closed)} rows, the embedding {n}")
        ids = (torch.arange(self.offset, self.offset + n, device=device) if row_ids is None
               else torch.as_tensor(np.asarray(row_ids), dtype=torch.long).to(device))
        self.counters = row_counters(ids)  # the draws of a row depend on its pool row id only
        self.min_d2: torch.Tensor | None = None
        self._d2 = torch.empty(n, dtype=torch.float64, device=device)
        self._scores = torch.empty(n, dtype=torch.float64, device=device)
        self._draw_work = (torch.empty_like(self.counters), torch.empty_like(self.counters))

    def __len__(self) -> int:
        return len(self.closed)

    def open_count(self) -> int:
        return len(self) - int(self.closed.sum())

    def _best(self, scores: torch.Tensor) -> tuple[float, int]:
        """The lowest finite score among open rows (first position on ties), or NO_PROPOSAL. Overwrites `scores`."""
        if len(scores) == 0:
            return NO_PROPOSAL
        i = int(torch.argmin(scores.masked_fill_(self.closed, math.inf)))
        value = float(scores[i])
        return (value, self.offset + i) if math.isfinite(value) else NO_PROPOSAL

    def largest_norm(self) -> tuple[float, int]:
        """Proposal for the first k-means++ pick: the open row of largest norm."""
        return self._best(torch.neg(self.sq_norms, out=self._scores))

    def farthest(self) -> tuple[float, int]:
        """Proposal for a greedy k-center pick: the open row farthest from every chosen row."""
        return NO_PROPOSAL if self.min_d2 is None else self._best(torch.neg(self.min_d2, out=self._scores))

    def _exponentials(self, key: int) -> torch.Tensor:
        """E_i = -log U_i for every row, in the scores buffer."""
        return row_uniforms(key, self.counters, out=self._scores, work=self._draw_work).log_().neg_()

    def race(self, key: int) -> tuple[float, int]:
        """Proposal for a k-means++ D^2 draw: the open row of least E_i / D^2_i (rows at distance 0 never win)."""
        if self.min_d2 is None:
            return NO_PROPOSAL
        return self._best(self._exponentials(key).div_(self.min_d2))  # x / 0 = inf: never chosen

    def uniform_draws(self, key: int, count: int) -> list[tuple[float, int]]:
        """The `count` open rows of smallest E_i (a uniform draw without replacement), as proposals."""
        exponential = self._exponentials(key).masked_fill_(self.closed, math.inf)
        count = min(count, self.open_count())
        values, positions = torch.topk(exponential, count, largest=False, sorted=True)
        return [(float(v), self.offset + int(i)) for v, i in zip(values, positions)]

    def row(self, index: int) -> Row | int:
        """The factors of global row `index` (or the position itself, for embeddings without `row`)."""
        local = index - self.offset
        if not hasattr(self.embedding, "row"):
            return local
        return self.embedding.row(local, self.sq_norms[local], index=index)

    def add_centre(self, row: Row | int, key: int | None = None) -> tuple[float, int]:
        """Take `row` as chosen: update the nearest distances, close the row if it is here, and return the
        proposal for the next pick: the k-means++ race with `key`, or (key None) the farthest row."""
        d2 = self.embedding.sq_distances_to(row, self.sq_norms, out=self._d2)
        self.min_d2 = d2.clone() if self.min_d2 is None else torch.minimum(self.min_d2, d2, out=self.min_d2)
        index = row.index if isinstance(row, Row) else row + self.offset
        if 0 <= index - self.offset < len(self):
            self.closed[index - self.offset] = True
            self.min_d2[index - self.offset] = 0.0
        return self.farthest() if key is None else self.race(key)

    def set_distances(self, min_d2: torch.Tensor) -> tuple[float, int]:
        """Start from given nearest distances (k-center's initial centres); returns the farthest proposal."""
        self.min_d2 = min_d2.to(device=self.closed.device, dtype=torch.float64)
        return self.farthest()


class Parts(Protocol):
    """The parts of a pool, wherever they live: `each` calls a method on every part and returns the
    results in part order; `row` returns a handle on a row's factors that `each` can pass on."""

    offsets: list[int]

    def each(self, method: str, *args) -> list: ...
    def row(self, part: int, index: int): ...


class LocalParts:
    """Parts held in this process."""

    def __init__(self, parts: list[PoolPart]):
        self.parts = parts
        self.offsets = [p.offset for p in parts]

    def each(self, method: str, *args) -> list:
        return [getattr(p, method)(*args) for p in self.parts]

    def row(self, part: int, index: int):
        return self.parts[part].row(index)

    def call(self, part: int, method: str, *args):
        return getattr(self.parts[part], method)(*args)


def owner(parts: Parts, index: int) -> int:
    """The part that holds global row `index`."""
    return bisect.bisect_right(parts.offsets, index) - 1


def kmeanspp_loop(parts: Parts, k: int, rng: np.random.Generator, stacklevel: int = 2) -> np.ndarray:
    """Global indices of k distinct open rows chosen by k-means++ seeding over `parts`.

    The first row is the open row of largest norm (lowest index on ties); each next one is drawn with
    probability proportional to its squared distance to the nearest chosen row (exponential race, one
    64-bit key from `rng` per draw). If every open row is at distance 0, the rest are drawn uniformly
    at random, with a warning.
    """
    value, first = min(parts.each("largest_norm"))
    if first < 0:
        raise ValueError("k-means++: no row may be chosen")
    chosen = [first]
    while len(chosen) < k:
        key = int(rng.integers(1 << 63))
        proposal = min(parts.each("add_centre", parts.row(owner(parts, chosen[-1]), chosen[-1]), key))
        if proposal[1] < 0:
            need = k - len(chosen)
            draws = sorted(d for part in parts.each("uniform_draws", key, need) for d in part)[:need]
            if len(draws) < need:
                raise ValueError(f"k-means++: cannot choose {k} rows, only {len(chosen) + len(draws)} may be chosen")
            warnings.warn(f"k-means++: all remaining rows are at distance 0 from the chosen ones; "
                          f"{need} rows were drawn uniformly at random", RuntimeWarning, stacklevel=stacklevel + 1)
            chosen.extend(i for _, i in draws)
            break
        chosen.append(proposal[1])
    return np.asarray(chosen, dtype=np.int64)


def kmeanspp_seeding(embedding: Embedding, k: int, rng: np.random.Generator,
                     eligible: torch.Tensor | np.ndarray | None = None,
                     row_ids: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
    """Positions (into `embedding`) of k distinct rows chosen by k-means++ seeding (see `kmeanspp_loop`),
    among the `eligible` rows (default: all). Runs on the device of the factors; the keys come from `rng`.

    row_ids: the pool row of each position (increasing), when the embedding holds some rows of a pool:
    the draws then equal those of the whole pool's embedding for the same seed (default: positions)."""
    n = len(embedding) if eligible is None else int(torch.as_tensor(eligible).sum())
    if not 0 < k <= n:
        raise ValueError(f"cannot choose {k} rows out of {n}")
    return kmeanspp_loop(LocalParts([PoolPart(embedding, eligible, row_ids=row_ids)]), k, rng, stacklevel=3)
