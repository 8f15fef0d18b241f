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

Most rows cannot move closer to a new chosen row c, and a pick skips their feature products: by
Cauchy-Schwarz on each block, |<g_i, g_c>| <= |a_i . a_c| sum_m s_im |z_im| s_cm |z_cm|, and the residual
product a_i . a_c costs O(C) per row, so a lower bound of row i's distance costs O(C + M). Only the open
rows whose bound does not exceed their current nearest distance get the O(D) products (on trained
models, 1-4 % of the rows per pick). The bound allows for the rounding of the products (`dot_error`), so
a skipped row is one whose full-pass distance could not have lowered its nearest distance: the selection
law is unchanged. (A computed row's product, summed over a gathered block of rows, may differ from the
full pass's in the last float32 bits, as the products of a pool split into shards may: BLAS kernels sum
a row differently by its position in a group of rows.)
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
DENSE_SHARE = 0.5  # when more rows than this share need the feature products, one full pass is cheaper than gathers
BOUND_MIN_WIDTH = 512  # feature numbers a row below which the bound's bookkeeping costs more than the products it
# skips (measured, 1 thread: 1.3-2x slower at d = 128, even at d = 512, 2-8x faster at d = 2,816)


@dataclass(frozen=True)
class Row:
    """What moves from the part that owns a chosen row to every part: its factors and squared norm."""

    index: int  # global row index
    residual: FactorRow | None  # [C], or None for plain rows (k-center: residual 1)
    blocks: tuple[FactorRow, ...]  # [d_m] per modality, as stored
    scales: tuple[float, ...] | None  # s_jm per modality, or None (all 1)
    sq_norm: float
    block_norms: tuple[float, ...] | None = None  # s_jm |z_jm| per modality (for the distance bound), if known


class OuterProductEmbedding:
    """Rows g_i = residual_i (x) concat_m (scale_im features_im), kept as factors (see the module docstring).

    `features` is one [N, D] tensor or a sequence of per-modality blocks [N, d_m]; `residual` [N, C] may
    be None (plain rows, as for k-center); `scales` [N, M] may be None (all 1). The factors are stored in
    `precision` (see precision.py); squared norms and distances are float64. `skip_by_bound` says whether
    `lower_nearest` skips the rows its bound proves unchanged: None (default) when the rows are at least
    `BOUND_MIN_WIDTH` feature numbers wide, True always, False never (the full pass, to test or measure).
    """

    skip_by_bound: bool | None = None

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
        self._block_norms: torch.Tensor | None = None  # [N, M] float64 s_im |z_im|, with the squared norms
        # (1 + the relative error of a computed feature product): each block's product, the float32 sum of M
        # blocks and the scale products; 1e-12 for the float64 combination
        self._slack = 1.0 + max(block.dot_error for block in self._blocks) + (len(blocks) + 4) * 2.0 ** -24 + 1e-12
        self._width = sum(block.shape[1] for block in self._blocks)  # feature numbers a row (BOUND_MIN_WIDTH)

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
        """|a_i|^2 sum_m s_im^2 |z_im|^2 in float64, a block of rows at a time (no float64 copy of a factor).
        Keeps the scaled block norms s_im |z_im| for the distance bound."""
        out = []
        self._block_norms = torch.empty(len(self), len(self._blocks), dtype=torch.float64, device=self.device)
        widest = max(f.shape[1] for f in [self._residual, *self._blocks] if f is not None)
        work = torch.empty(min(NORM_BLOCK_ROWS, len(self)), widest, dtype=torch.float64, device=self.device)
        for start in range(0, len(self), NORM_BLOCK_ROWS):
            stop = min(start + NORM_BLOCK_ROWS, len(self))
            norms = [block.norms(start, stop, work) for block in self._blocks]
            scales = [1.0 if self.scales is None else self.scales[start:stop, m].double() for m in range(len(norms))]
            for m, (norm, scale) in enumerate(zip(norms, scales)):
                self._block_norms[start:stop, m] = norm * scale
            features = sum(norm ** 2 * (1.0 if self.scales is None else scale ** 2)
                           for norm, scale in zip(norms, scales))
            if self._residual is not None:
                features = features * self._residual.norms(start, stop, work) ** 2
            out.append(features)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64, device=self.device)

    def row(self, i: int, sq_norm: float, index: int | None = None) -> Row:
        """Row i's factors (as stored), tagged with its global index (default: i)."""
        return Row(index=i if index is None else index,
                   residual=None if self._residual is None else self._residual.row(i),
                   blocks=tuple(block.row(i) for block in self._blocks),
                   scales=None if self.scales is None else tuple(float(s) for s in self.scales[i]),
                   sq_norm=float(sq_norm),
                   block_norms=None if self._block_norms is None else tuple(self._block_norms[i].tolist()))

    def _buffer(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        """An [N] scratch tensor kept between picks (see `StoredFactor.dots` on why not a fresh one)."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype:
            buffer = self._buffers[name] = torch.empty(len(self), dtype=dtype, device=self.device)
        return buffer

    def dots(self, row: Row, out: torch.Tensor | None = None, rows: torch.Tensor | None = None,
             residual_dots: torch.Tensor | None = None) -> torch.Tensor:
        """[N] float64 <g_i, g_row>: one product per factor block, float32 accumulation, float64 product.

        out: an [N] float64 buffer for the result (the intermediates use buffers of this embedding).
        rows: positions, to compute only those ([len(rows)], in out[:len(rows)]); residual_dots: the
        residual products a_i . a_row of those rows, when already computed."""
        features = None
        for m, (block, z) in enumerate(zip(self._blocks, row.blocks)):
            product = block.dots(z, out=self._buffer(f"block{m}", block.dot_dtype), rows=rows)
            if self.scales is not None:
                column = self._scale_columns[m]
                product.mul_(column if rows is None else column[rows]).mul_(row.scales[m])
            features = product if features is None else features.add_(product)
        n = len(self) if rows is None else len(rows)
        out = torch.empty(n, dtype=torch.float64, device=self.device) if out is None else out[:n]
        out.copy_(features)
        if self._residual is not None:
            if residual_dots is None:
                residual_dots = self._residual.dots(row.residual, rows=rows,
                                                    out=self._buffer("residual", self._residual.dot_dtype))
            out.mul_(residual_dots)
        return out

    def sq_distances_to(self, row: int | Row, sq_norms: torch.Tensor, out: torch.Tensor | None = None,
                        rows: torch.Tensor | None = None, residual_dots: torch.Tensor | None = None) -> torch.Tensor:
        """[N] float64 squared distances from every row to `row` (a position here, or a Row from anywhere).

        out: an [N] float64 buffer for the result; rows, residual_dots: as for `dots`."""
        if not isinstance(row, Row):
            row = self.row(int(row), sq_norms[int(row)])
        n = len(self) if rows is None else len(rows)
        bound = self._buffer("bound", torch.float64)[:n]
        bound = torch.add(sq_norms if rows is None else torch.index_select(sq_norms, 0, rows, out=bound),
                          row.sq_norm, out=bound)
        d2 = self.dots(row, out=out, rows=rows, residual_dots=residual_dots)
        torch.add(bound, d2, alpha=-2.0, out=d2)
        zero = torch.le(d2, bound.mul_(ZERO_DISTANCE_TOLERANCE), out=self._buffer("zero", torch.bool)[:n])
        return d2.masked_fill_(zero, 0.0)

    def lower_nearest(self, row: Row, sq_norms: torch.Tensor, nearest: torch.Tensor, closed: torch.Tensor) -> int:
        """nearest_i = min(nearest_i, squared distance to `row`) for every open row (closed rows may keep
        stale values), as the full pass gives it; returns how many rows needed the feature products.

        A row skips them when its lower bound (module docstring) exceeds both its nearest distance and the
        zero tolerance: its full-pass distance would then change nothing."""
        residual = None if self._residual is None else self._residual.dots(
            row.residual, out=self._buffer("residual", self._residual.dot_dtype))
        d2 = self._buffer("d2", torch.float64)
        skip = self._width >= BOUND_MIN_WIDTH if self.skip_by_bound is None else self.skip_by_bound
        rows = self._rows_the_bound_keeps(row, sq_norms, nearest, closed, residual) if skip else None
        if rows is None or len(rows) > DENSE_SHARE * len(self):
            torch.minimum(nearest, self.sq_distances_to(row, sq_norms, out=d2, residual_dots=residual), out=nearest)
            return len(self)
        d2 = self.sq_distances_to(row, sq_norms, out=d2, rows=rows,
                                  residual_dots=None if residual is None else residual[rows])
        nearest[rows] = torch.minimum(nearest[rows], d2)
        return len(rows)

    def _rows_the_bound_keeps(self, row: Row, sq_norms: torch.Tensor, nearest: torch.Tensor, closed: torch.Tensor,
                              residual: torch.Tensor | None) -> torch.Tensor | None:
        """Positions of the open rows whose lower bound does not exceed max(nearest, zero tolerance), or None
        when the row's block norms are unknown (a Row from an embedding that has not computed them)."""
        if row.block_norms is None:
            return None
        # lower_i = |g_i|^2 + |g_c|^2 - 2 slack |a_i . a_c| sum_m s_im |z_im| s_cm |z_cm|, rounded down
        lower = torch.mv(self.block_norms(), torch.tensor(row.block_norms, dtype=torch.float64, device=self.device),
                         out=self._buffer("lower", torch.float64))
        if residual is not None:
            lower.mul_(torch.abs(residual, out=self._buffer("residual_abs", residual.dtype)))
        total = torch.add(sq_norms, row.sq_norm, out=self._buffer("total", torch.float64))
        lower.mul_(-2.0 * self._slack).add_(total, alpha=1.0 - 1e-12)
        limit = torch.maximum(nearest, total.mul_(ZERO_DISTANCE_TOLERANCE), out=total)
        need = torch.le(lower, limit, out=self._buffer("need", torch.bool)).masked_fill_(closed, False)
        return need.nonzero().squeeze(1)

    def block_norms(self) -> torch.Tensor:
        """[N, M] float64 s_im |z_im| (computed with the squared norms)."""
        if self._block_norms is None:
            self.sq_norms()
        return self._block_norms

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
        self.rows_computed = 0  # feature-product rows over all picks (the bound of OuterProductEmbedding skips most)
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
        if self.min_d2 is None:
            self.min_d2 = torch.full((len(self),), math.inf, dtype=torch.float64, device=self.closed.device)
        if isinstance(row, Row) and hasattr(self.embedding, "lower_nearest"):
            self.rows_computed += self.embedding.lower_nearest(row, self.sq_norms, self.min_d2, self.closed)
        else:
            d2 = self.embedding.sq_distances_to(row, self.sq_norms, out=self._d2)
            torch.minimum(self.min_d2, d2, out=self.min_d2)
            self.rows_computed += len(self)
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
    _, first = min(parts.each("largest_norm"))
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
