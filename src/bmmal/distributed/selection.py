"""Selection across the shards of a pool, one Ray actor per shard.

The driver runs the same seeding routine as single-process selection (`kmeanspp.kmeanspp_loop`,
`kcenter.kcenter_loop`) over `RayParts`: each actor holds one shard, its factored embedding and its
rows' distances to the nearest chosen row. Per pick, each actor receives the chosen row's factors
(C + D numbers, fetched by Ray straight from the actor that owns the row) and returns one proposal
(a score and a global row index). Strategies that need no model output (`random`) are selected on
the driver from the shards' `labeled` masks. The result equals `strategies.get(name, **params)
.select(concatenated outputs, budget, seed)`: the same random draws (they depend on the global row
index, not on the split) and the same tie rule (lowest global index).

A worker that dies (killed, out of memory, its node lost) ends the selection with a BmmalError that
names its shard; nothing is returned, so a partial or wrong selection never reaches the caller.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import replace

import numpy as np
import torch

from bmmal import strategies
from bmmal.distributed.shards import as_outputs
from bmmal.errors import BmmalError
from bmmal.outputs import PoolOutputs
from bmmal.strategies.base import Strategy, check_needed_outputs, check_selection_inputs
from bmmal.strategies.kcenter import kcenter_loop, min_sq_distances
from bmmal.strategies.kmeanspp import LocalParts, PoolPart, kmeanspp_loop

SUPPORTED = ("badge", "bmmal", "coreset", "random")


def _ray():
    try:
        import ray
    except ImportError:
        raise BmmalError("selection across shards needs Ray: pip install 'bmmal[ray]'") from None
    return ray


class ShardWorker:
    """One shard of the pool and, during a selection, its part of the seeding state."""

    def __init__(self, shard, offset: int):
        self.outputs = as_outputs(shard)
        self.offset = offset
        self.part: PoolPart | None = None

    def labeled(self) -> np.ndarray:
        return self.outputs.labeled.cpu().numpy()

    def start(self, name: str, params: dict) -> None:
        """Build this shard's part for strategy `name` (after the checks single-process selection makes)."""
        strategy = strategies.get(name, **params)
        outputs = strategy.prepare(self.outputs) if hasattr(strategy, "prepare") else self.outputs
        check_needed_outputs(outputs, strategy.needs, name)
        self.part = PoolPart(strategy.embedding(outputs), eligible=~outputs.labeled, offset=self.offset)

    def labeled_blocks(self) -> list[torch.Tensor]:
        from bmmal.strategies.coreset import labeled_blocks
        return labeled_blocks(self.outputs)

    def set_centres(self, centres: list[torch.Tensor]):
        return self.part.set_distances(min_sq_distances(list(self.outputs.embeddings.values()), centres))

    def largest_norm(self):
        return self.part.largest_norm()

    def farthest(self):
        return self.part.farthest()

    def row(self, index: int):
        return self.part.row(index)

    def add_centre(self, row, key):
        return self.part.add_centre(row, key)

    def uniform_draws(self, key: int, count: int):
        return self.part.uniform_draws(key, count)

    def set_offset(self, offset: int) -> None:
        self.offset = offset

    def finish(self) -> None:
        self.part = None


class RayParts:
    """The `Parts` of the seeding loops, one Ray actor each (see kmeanspp.Parts)."""

    def __init__(self, actors: list, offsets: list[int], shards: list[str]):
        self.actors, self.offsets, self.shards = actors, offsets, shards

    def each(self, method: str, *args) -> list:
        return self.get([getattr(a, method).remote(*args) for a in self.actors])

    def row(self, part: int, index: int):
        return self.actors[part].row.remote(index)  # passed on unresolved: actors fetch it from its owner

    def call(self, part: int, method: str, *args):
        return self.get([getattr(self.actors[part], method).remote(*args)])[0]

    def get(self, refs: list) -> list:
        ray = _ray()
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, BmmalError):
                raise BmmalError(str(cause)) from None
            raise
        except ray.exceptions.RayError as e:
            lost = [self.shards[i] for i, ref in enumerate(refs[:len(self.actors)]) if not _alive(ray, ref)]
            which = f"shard {', '.join(lost)}" if lost else "a shard"
            raise BmmalError(f"the Ray worker holding {which} died during selection ({type(e).__name__}); "
                             f"no selection was made") from None


def _alive(ray, ref) -> bool:
    try:
        ray.get(ref, timeout=0)
        return True
    except ray.exceptions.GetTimeoutError:
        return True
    except ray.exceptions.RayError:
        return False


class ShardedPool:
    """A pool held in shards, for one or more selections.

    shards: PoolOutputs or paths of stored shards (see shards.py), in pool order. executor "ray": one
    Ray actor per shard, on the cluster at `address` (None: the running Ray, or a new local one), with
    `worker_options` as Ray actor options (default: no CPU reserved, actors spread over the nodes);
    "local": the shards are parts in this process (memory-mapped shards, one at a time in memory)."""

    def __init__(self, shards, address: str | None = None, worker_options: dict | None = None,
                 executor: str = "ray"):
        shards = list(shards)
        if not shards:
            raise BmmalError("no shards given")
        for shard in shards:
            if not isinstance(shard, (PoolOutputs, str, os.PathLike)):
                raise BmmalError(f"a shard is PoolOutputs or the path of a stored shard, got {type(shard).__name__}")
        names = [f"#{i}" if isinstance(shard, PoolOutputs) else str(shard) for i, shard in enumerate(shards)]
        if executor == "local":
            self.actors = [ShardWorker(shard, 0) for shard in shards]
            self.parts = LocalParts(self.actors)
        elif executor == "ray":
            ray = _ray()
            if not ray.is_initialized():
                ray.init(address=address, include_dashboard=False)
            options = {"num_cpus": 0, "scheduling_strategy": "SPREAD", "max_restarts": 0, **(worker_options or {})}
            worker = ray.remote(ShardWorker).options(**options)
            self.actors = [worker.remote(compact(shard) if isinstance(shard, PoolOutputs) else shard, 0)
                           for shard in shards]  # one shard at a time is serialised (and compacted)
            self.parts = RayParts(self.actors, [0] * len(shards), names)
        else:
            raise BmmalError(f"executor must be ray or local, got {executor!r}")
        self.executor = executor
        self.masks = self.parts.each("labeled")
        self.sizes = [len(m) for m in self.masks]
        self.parts.offsets = [int(o) for o in np.cumsum([0] + self.sizes[:-1])]
        for i, offset in enumerate(self.parts.offsets):
            self.parts.call(i, "set_offset", offset)

    @property
    def labeled(self) -> np.ndarray:
        return np.concatenate(self.masks)

    def __len__(self) -> int:
        return sum(self.sizes)

    def select(self, name: str, budget: int, seed: int = 0, **params) -> np.ndarray:
        """What `strategies.get(name, **params).select(concatenated shards, budget, seed)` returns."""
        strategy = strategies.get(name, **params)
        if name not in SUPPORTED:
            raise BmmalError(f"strategy {name!r} cannot be selected across shards; these can: {', '.join(SUPPORTED)}")
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
            raise BmmalError(f"budget must be an integer, got {budget!r}")
        candidates = np.flatnonzero(~self.labeled)
        if budget < 1:
            raise BmmalError(f"budget must be at least 1, got {budget}")
        if budget > len(candidates):
            raise BmmalError(f"budget {budget} is larger than the {len(candidates)} unlabelled samples in the pool")
        rng = np.random.default_rng(seed)
        if not strategy.needs:
            return np.asarray(strategy._select(None, candidates, int(budget), rng), dtype=np.int64)
        self.parts.each("start", name, params)
        if strategy.seeding == "kmeans++":
            rows = kmeanspp_loop(self.parts, int(budget), rng)
        elif len(candidates) == len(self):  # nothing labelled: the first centre is drawn
            rows = kcenter_loop(self.parts, int(budget), first=int(candidates[rng.integers(len(candidates))]))
        else:
            centres = [torch.cat(blocks) for blocks in zip(*self.parts.each("labeled_blocks"))]
            # one object in Ray's store for every worker (the local parts take the tensors as they are)
            self.parts.each("set_centres", _ray().put(centres) if self.executor == "ray" else centres)
            rows = kcenter_loop(self.parts, int(budget))
        self.parts.each("finish")
        return rows

    def close(self) -> None:
        if self.executor == "ray":
            for actor in self.actors:
                _ray().kill(actor)
        self.actors = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ShardedStrategy(Strategy):
    """`strategy` with its selection run across Ray workers: the pool outputs are cut into `shards`
    contiguous shards (views, no copy; default: one per CPU of the Ray cluster), one actor each. Selects
    what `strategy` selects; for `bmmal query --executor ray` and any code that takes a Strategy."""

    def __init__(self, strategy: Strategy, shards: int | None = None, address: str | None = None):
        if strategy.name not in SUPPORTED:
            raise BmmalError(f"strategy {strategy.name!r} cannot be selected across shards; "
                             f"these can: {', '.join(SUPPORTED)}")
        self.strategy, self.shards, self.address = strategy, shards, address
        self.name, self.needs, self.summary = strategy.name, strategy.needs, strategy.summary

    def select(self, outputs: PoolOutputs, budget: int, seed: int = 0) -> np.ndarray:
        outputs = self.strategy.prepare(outputs) if hasattr(self.strategy, "prepare") else outputs
        check_selection_inputs(outputs, budget, self.needs, self.name)
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False)
        count = self.shards or max(1, int(ray.cluster_resources().get("CPU", 1)))
        bounds = np.linspace(0, len(outputs), min(count, len(outputs)) + 1).astype(int)
        with ShardedPool([outputs_rows(outputs, a, b) for a, b in itertools.pairwise(bounds)]) as pool:
            return pool.select(self.name, budget, seed, **vars(self.strategy))

    def _select(self, outputs, candidates, budget, rng):  # select() is overridden: it needs the seed itself
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"ShardedStrategy({self.strategy!r}, shards={self.shards})"


def compact(outputs: PoolOutputs) -> PoolOutputs:
    """`outputs` with every tensor that views a larger storage (a slice of a pool) copied to its own:
    pickling a view sends its whole storage, which would ship the entire pool to every worker."""
    def own(t):
        if t is None or not torch.is_tensor(t):
            return t
        return t.clone() if t.untyped_storage().nbytes() > t.numel() * t.element_size() else t

    return replace(outputs, labeled=own(outputs.labeled), probs=own(outputs.probs),
                   embeddings={m: own(z) for m, z in outputs.embeddings.items()}, shapley=own(outputs.shapley),
                   mc_probs=own(outputs.mc_probs), unimodal_probs=None if outputs.unimodal_probs is None else
                   {m: own(p) for m, p in outputs.unimodal_probs.items()})


def outputs_rows(outputs: PoolOutputs, start: int, stop: int) -> PoolOutputs:
    """Rows [start, stop) of `outputs` as views (no copy); fuse and mc_probs are left out."""
    return PoolOutputs(labeled=outputs.labeled[start:stop], probs=outputs.probs[start:stop],
                       embeddings={m: z[start:stop] for m, z in outputs.embeddings.items()},
                       shapley=None if outputs.shapley is None else outputs.shapley[start:stop],
                       unimodal_probs=None if outputs.unimodal_probs is None else
                       {m: p[start:stop] for m, p in outputs.unimodal_probs.items()})


def select(name: str, shards, budget: int, seed: int = 0, address: str | None = None, *, executor: str = "ray",
           worker_options: dict | None = None, **params) -> np.ndarray:
    """Global row indices (into the concatenation of `shards`) chosen by strategy `name` across Ray
    workers, one per shard; identical to single-process selection on the concatenated pool.

    shards: PoolOutputs or paths of stored shards (`.npz` or folders of `.npy`), in pool order.
    address: a Ray cluster address (None: the running Ray, or a new local one). executor "local":
    the shards one after another in this process, no Ray (see ShardedPool). worker_options: Ray actor
    options, e.g. {"num_cpus": 8} for 8 torch threads per worker (default: none reserved, one thread)."""
    with ShardedPool(shards, address, worker_options, executor=executor) as pool:
        return pool.select(name, budget, seed, **params)
