"""Time of writing a synthetic pool's outputs as shards (`bmmal.distributed.write_pool_shards`) in one process,
as plain Ray tasks (one per shard, the writer's Ray path before Ray Data) and through Ray Data.

    nice -n 10 python benchmarks/pool_inference.py --rows 20000 --rows-per-shard 2500 --executor local
    nice -n 10 python benchmarks/pool_inference.py ... --executor ray-tasks    (each in a fresh process)
    nice -n 10 python benchmarks/pool_inference.py ... --executor ray          (Ray Data)

Prints one JSON line: Ray start-up and writing time (wall), the driver's CPU time, the load average, and
whether the shards hold exactly the arrays of a reference folder (`--compare DIR`, e.g. the local run's).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bmmal import distributed, strategies
from bmmal.data import ArrayDataset
from bmmal.distributed.writer import shard_paths, write_shard
from bmmal.models import MultimodalClassifier
from bmmal.models.encoders import MLPEncoder


def pool(rows: int, hidden: int, seed: int = 0):
    """Two modalities (512 and 256 features), 10 classes, 10 % labelled, and an untrained MLP model with one
    hidden layer of `hidden` units per modality (its width sets the inference cost per row)."""
    g = np.random.default_rng(seed)
    features = {"image": g.normal(size=(rows, 512)).astype(np.float32),
                "text": g.normal(size=(rows, 256)).astype(np.float32)}
    dataset = ArrayDataset(features, g.integers(0, 10, rows), tuple("abcdefghij"))
    torch.manual_seed(seed)
    model = MultimodalClassifier({"image": MLPEncoder((512,), hidden_dims=(hidden,), embed_dim=128, dropout=0.0),
                                  "text": MLPEncoder((256,), hidden_dims=(hidden,), embed_dim=64, dropout=0.0)}, 10).eval()
    return model, dataset, g.random(rows) < 0.1


def plain_ray_tasks(model, dataset, labeled, needs, out: Path, rows_per_shard: int, batch_size: int) -> None:
    """The writer's Ray path before Ray Data: one Ray task per shard, the model and data put in the store once."""
    import ray

    refs = [ray.put(x) for x in (model, dataset, labeled)]
    task = ray.remote(write_shard)
    plan = shard_paths(out, len(dataset), rows_per_shard, "")
    ray.get([task.remote(*refs, needs, start, stop, str(path), batch_size) for path, start, stop in plan])


def same_arrays(folder: Path, reference: Path) -> bool:
    shards = sorted(p for p in folder.iterdir() if p.name.startswith("shard-"))
    if [p.name for p in shards] != sorted(p.name for p in reference.iterdir() if p.name.startswith("shard-")):
        return False
    return all(np.array_equal(np.load(f), np.load(reference / shard.name / f.name))
               for shard in shards for f in shard.glob("*.npy"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rows-per-shard", type=int, default=2_500)
    parser.add_argument("--hidden", type=int, default=256, help="hidden units per encoder (inference cost)")
    parser.add_argument("--batch-size", type=int, default=1_024)
    parser.add_argument("--executor", choices=("local", "ray-tasks", "ray"), default="local")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (and Ray Data actors)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the shards (default: a temporary one)")
    parser.add_argument("--compare", type=Path, default=None, help="a folder of shards to compare with")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in each Ray actor (one CPU each)
    model, dataset, labeled = pool(args.rows, args.hidden)
    needs = strategies.get("bmmal").needs
    out = args.out or Path(tempfile.mkdtemp(prefix="pool-shards-"))
    start_up = 0.0
    if args.executor != "local":
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        start_up = time.perf_counter() - t
    wall, cpu = time.perf_counter(), time.process_time()
    if args.executor == "ray-tasks":
        plain_ray_tasks(model, dataset, labeled, needs, out, args.rows_per_shard, args.batch_size)
    else:
        distributed.write_pool_shards(model, dataset, labeled, needs, out, args.rows_per_shard,
                                      batch_size=args.batch_size, executor=args.executor,
                                      actors=args.cpus if args.executor == "ray" else None)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"executor": args.executor, "rows": args.rows, "hidden": args.hidden, "rows_per_shard": args.rows_per_shard,
                      "ray_start_s": round(start_up, 2), "write_wall_s": round(wall, 2),
                      "driver_cpu_s": round(cpu, 2), "load_1min": round(os.getloadavg()[0], 2),
                      "same_arrays_as_compare": same_arrays(out, args.compare) if args.compare else None,
                      "out": str(out)}), flush=True)


if __name__ == "__main__":
    main()
