"""Pools larger than one machine: pool outputs stored as shards, selection across Ray workers.

    from bmmal import distributed
    rows = distributed.select("bmmal", ["pool/shard-00000", "pool/shard-00001"], budget=1000, seed=0)

`select` returns global row indices into the concatenation of the shards, the same rows that
single-process selection returns on the concatenated pool (badge, bmmal, coreset, random).
`ShardedStrategy(strategy)` is a Strategy that does this with one in-memory pool cut into shards.
`write_pool_shards` runs pool inference shard by shard (resumable) and stores each shard; with
executor="ray" through Ray Data, in a bounded pool of actors that each hold the model. A manifest's features
are extracted the same way with `datasets.load_manifest(..., executor="ray")` (extraction.py).
Needs the `ray` extra for selection; storing and loading shards does not.
"""

from bmmal.distributed.selection import SUPPORTED, ShardedPool, ShardedStrategy, select
from bmmal.distributed.shards import load_shard, save_shard
from bmmal.distributed.writer import write_pool_shards

__all__ = ["SUPPORTED", "ShardedPool", "ShardedStrategy", "load_shard", "save_shard", "select", "write_pool_shards"]
