"""The larger version of the end-to-end factorial (configs/e2e-fashion-speech.yaml) for one GPU.

Scaled up from the CPU run: more data (1,000 Fashion-Speech images per class instead of 300, 300 test
images per class), wider encoders (CNNs of width 32 with 4 blocks, 128-d embeddings), budgets 200 + 5 x 200
(the paper's shape: an initial random set, then equal rounds; 1,200 labels at the end), 30 epochs per
round, strategies random, entropy, badge, bmmal and coreset, trainers joint and OGM-GE, `--seeds` seeds
(round 0 shared per seed and trainer). Several cells share the GPU (`--workers`).

The data must already be built and cached, because a GPU machine usually has neither espeak-ng nor the
Debian Fashion-MNIST package: on a machine with them, run

    python benchmarks/e2e_gpu.py --build-only --cache-dir /path/to/cache

and copy the cache folder along (or install `dataset-fashion-mnist espeak-ng` on the GPU machine). Then

    python benchmarks/e2e_gpu.py --cache-dir /path/to/cache --seeds 5 --workers 6
    bmmal report benchmarks/runs/e2e-fashion-speech-gpu

`--check` runs a two-round, one-seed version to see that everything works (a minute).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from rich.console import Console

from bmmal import datasets
from bmmal.config import load_yaml
from bmmal.experiment import runner
from bmmal.experiment.executors import LocalExecutor
from bmmal.experiment.grid import BenchmarkConfig

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "e2e-fashion-speech.yaml"


def scaled_config(cache_dir: str, seeds: int, check: bool, device: str) -> BenchmarkConfig:
    raw = load_yaml(CONFIG)
    raw["name"] = "e2e-fashion-speech-gpu"
    for dataset in raw["datasets"].values():
        dataset.setdefault("options", {}).update(per_class=1000, test_per_class=300, cache_dir=cache_dir)
    raw["seeds"] = 1 if check else seeds
    base = raw["base"]
    base.update(initial_budget=200, budget=200, rounds=1 if check else 5, eval_batch_size=2048)
    for options in base["model"]["encoder_options"].values():
        options.update(width=32, blocks=4, embed_dim=128)
    base["train"].update(device=device, batch_size=64)
    if check:
        base["train"]["epochs"] = 2
        raw["strategies"] = ["random", "bmmal"]
    return BenchmarkConfig.model_validate(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None, help="where the built Fashion-Speech arrays are cached")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=6, help="cells trained at the same time on the GPU")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/runs/e2e-fashion-speech-gpu"))
    parser.add_argument("--build-only", action="store_true", help="build and cache the data, then stop")
    parser.add_argument("--check", action="store_true", help="one seed, two rounds, two strategies")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = scaled_config(args.cache_dir, args.seeds, args.check, device)
    dataset = next(iter(config.datasets.values()))
    start = time.perf_counter()
    train, test = datasets.load(dataset.name, modalities=dataset.modalities, **dataset.options)
    print(f"data: {len(train)} train, {len(test)} test ({time.perf_counter() - start:.0f} s)", flush=True)
    if args.build_only:
        return
    if device != "cuda":
        print("no GPU found: running on the CPU (slow)", flush=True)
    out = args.out.with_name(args.out.name + "-check") if args.check else args.out
    runner.run_benchmark(config, out, LocalExecutor(workers=args.workers), threads=2, console=Console())
    print(f"done in {time.perf_counter() - start:.0f} s; report: bmmal report {out}")


if __name__ == "__main__":
    main()
