"""Time of extracting a generated manifest's features (`bmmal.datasets.load_manifest`, a cold feature cache) in
one process and through Ray Data in shards (`executor="ray"`).

    nice -n 10 python benchmarks/feature_extraction.py --clips 3000 --data DIR --executor local --save LOCAL.npy
    nice -n 10 python benchmarks/feature_extraction.py --clips 3000 --data DIR --executor ray --compare LOCAL.npy

The manifest is `--clips` short tones (WAV, 22,050 Hz, `--seconds` long, written once into `--data`), one audio
column, encoded by the built-in `mfcc` extractor (61 MFCC statistics per clip). Each run starts from an empty
cache, so it times the whole cold load: reading the manifest, hashing the files, extracting, writing the entry.
Prints one JSON line: Ray start-up and load time (wall), the driver's CPU time, the load average, and whether
the features equal those of `--compare` (a .npy saved by another run with `--save`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def write_manifest(folder: Path, clips: int, seconds: float, rate: int = 22_050) -> Path:
    """`clips` tones of random pitch and loudness in two classes (low, high), and their manifest; kept if present."""
    import soundfile

    manifest = folder / f"tones-{clips}.csv"
    if manifest.exists():
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    rows = []
    for i in range(clips):
        pitch = g.uniform(150, 3000)
        wave = g.uniform(0.1, 0.5) * np.sin(2 * np.pi * pitch * t) + g.normal(0, 0.01, t.size)
        soundfile.write(str(folder / f"tone{i:06d}.wav"), wave.astype(np.float32), rate)
        rows.append({"id": f"t{i}", "label": "low" if pitch < 1000 else "high", "sound": f"tone{i:06d}.wav"})
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "label", "sound"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=3_000)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of each clip")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bmmal-tones",
                        help="folder of the generated clips and manifest (reused when present)")
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (and Ray Data actors)")
    parser.add_argument("--rows-per-shard", type=int, default=256)
    parser.add_argument("--save", type=Path, default=None, help="save the features as this .npy")
    parser.add_argument("--compare", type=Path, default=None, help="a .npy of features to compare with")
    args = parser.parse_args()

    from bmmal import datasets

    manifest = write_manifest(args.data, args.clips, args.seconds)
    start_up = 0.0
    if args.executor == "ray":
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        start_up = time.perf_counter() - t
    with tempfile.TemporaryDirectory(prefix="feature-cache-") as cache:
        load_before = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        data = datasets.load_manifest(manifest, cache_dir=cache, executor=args.executor, actors=args.cpus,
                                      rows_per_shard=args.rows_per_shard)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    features = data.features["sound"]
    if args.save:
        np.save(args.save, features)
    print(json.dumps({"executor": args.executor, "clips": args.clips, "seconds": args.seconds,
                      "rows_per_shard": args.rows_per_shard if args.executor == "ray" else None,
                      "ray_start_s": round(start_up, 2), "load_wall_s": round(wall, 2), "driver_cpu_s": round(cpu, 2),
                      "load_1min_before": round(load_before, 2), "load_1min_after": round(os.getloadavg()[0], 2),
                      "same_features_as_compare": (bool(np.array_equal(features, np.load(args.compare)))
                                                   if args.compare else None)}), flush=True)


if __name__ == "__main__":
    main()
