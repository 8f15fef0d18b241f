"""BMMAL and BADGE selection on a GPU: the factored k-means++ kernel on CUDA tensors.

PoolOutputs whose tensors live on a CUDA device are selected on that device (only the random draws
come from the host's numpy generator). This script times `select` on random pool outputs (as in
query_speed.py) at Food-101 size (N = 60,000, C = 101, d = 768 + 2048, budget 1,000) and at
VGGSound size with hundreds of classes (N = 180,000, C = 309, d = 512 + 512, budget 2,000), reports peak
GPU memory, and checks on a small pool in float64 that the GPU picks the same rows as the CPU.

    python benchmarks/gpu_selection.py            # needs CUDA
    python benchmarks/gpu_selection.py --quick    # small sizes, also on CPU
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from query_speed import pool_outputs  # noqa: E402

from bmmal import strategies  # noqa: E402


def to_device(outputs, device, dtype=None):
    cast = (lambda t: t.to(device, dtype)) if dtype else (lambda t: t.to(device))
    outputs.probs = cast(outputs.probs)
    outputs.embeddings = {m: cast(z) for m, z in outputs.embeddings.items()}
    outputs.shapley = cast(outputs.shapley)
    outputs.labeled = outputs.labeled.to(device)
    outputs.mc_probs = None
    return outputs


def timed_select(name, outputs, budget, device):
    strategy = strategies.get(name)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    rows = strategy.select(outputs, budget, seed=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else float("nan")
    return rows, seconds, peak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}")

    # 1. the GPU selects what the CPU selects (float64 factors, so rounding cannot split them)
    n = 3000 if args.quick else 20000
    cpu_rows = strategies.get("bmmal").select(to_device(pool_outputs(n, 101, (64, 32), 500), "cpu", torch.float64),
                                              200, seed=0)
    dev_rows, _, _ = timed_select("bmmal", to_device(pool_outputs(n, 101, (64, 32), 500), device, torch.float64),
                                  200, device)
    same = int(np.argmax(cpu_rows != dev_rows)) if (cpu_rows != dev_rows).any() else len(cpu_rows)
    print(f"agreement CPU vs {device.type} (float64, N={n}, budget 200): first {same} of 200 picks identical")

    cases = [(2000, 101, (768, 2048), 100)] if args.quick else [
        (60000, 101, (768, 2048), 1000), (180000, 309, (512, 512), 2000)]
    for n, classes, dims, budget in cases:
        for name in ("badge", "bmmal"):
            outputs = to_device(pool_outputs(n, classes, dims, budget), device)
            timed_select(name, outputs, min(budget, 10), device)  # warm-up (kernels, allocator)
            rows, seconds, peak = timed_select(name, outputs, budget, device)
            assert len(np.unique(rows)) == budget
            print(f"{name:6s} N={n:>7,} C={classes} d={'+'.join(map(str, dims))} budget={budget}: "
                  f"{seconds:7.2f} s, peak GPU memory {peak:.2f} GiB")
            del outputs
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
