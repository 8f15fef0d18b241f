"""BMMAL and BADGE selection on a GPU: the factored k-means++ kernel on CUDA tensors, fp32 and bf16.

PoolOutputs whose tensors live on a CUDA device are selected on that device (the per-row random draws
are counter-based integer hashes computed on the device, so the same seed picks the same rows as on
the CPU). This script times `select` on random pool outputs (as in query_speed.py, without MC-dropout
passes) at Food-101 size (N = 60,000, C = 101, d = 768 + 2048, budget 1,000), at VGGSound size
(N = 180,000, C = 309, d = 512 + 512, budget 2,000) and at N = 1,000,000, C = 309, d = 512 + 512,
budget 10,000, with the fp32 and the bf16 kernel (`precision`); it reports the time, the peak GPU
memory and the share of bf16 picks equal to fp32's, and checks on a small float64 pool that the GPU
picks the same rows as the CPU.

    python benchmarks/gpu_selection.py                # needs CUDA
    python benchmarks/gpu_selection.py --sizes large  # only N = 1,000,000
    python benchmarks/gpu_selection.py --quick        # small sizes, also on CPU
    python benchmarks/gpu_selection.py --sizes tiny --check-rows 800   # a smoke run (tests)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from query_speed import pool_outputs

from bmmal import strategies

SIZES = {"food101": (60_000, 101, (768, 2048), 1_000), "vggsound": (180_000, 309, (512, 512), 2_000),
         "large": (1_000_000, 309, (512, 512), 10_000), "tiny": (600, 10, (16, 8), 20)}


def to_device(outputs, device, dtype=None):
    cast = (lambda t: t.to(device, dtype)) if dtype else (lambda t: t.to(device))
    outputs.probs = cast(outputs.probs)
    outputs.embeddings = {m: cast(z) for m, z in outputs.embeddings.items()}
    outputs.shapley = cast(outputs.shapley)
    outputs.labeled = outputs.labeled.to(device)
    outputs.mc_probs = None
    return outputs


def timed_select(name, outputs, budget, device, precision="fp32"):
    strategy = strategies.get(name, precision=precision)
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
    p.add_argument("--sizes", default="food101,vggsound,large", help=f"comma-separated, of {', '.join(SIZES)}")
    p.add_argument("--check-rows", type=int, default=None,
                   help="pool rows of the CPU-vs-device check (default 20,000; 3,000 with --quick)")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}")

    # 1. the GPU selects what the CPU selects (float64 factors, so rounding cannot split them)
    n = args.check_rows or (3000 if args.quick else 20000)
    cpu_rows = strategies.get("bmmal").select(
        to_device(pool_outputs(n, 101, (64, 32), 500, mc_passes=0), "cpu", torch.float64), 200, seed=0)
    dev_rows, _, _ = timed_select("bmmal", to_device(pool_outputs(n, 101, (64, 32), 500, mc_passes=0), device,
                                                     torch.float64), 200, device)
    same = int(np.argmax(cpu_rows != dev_rows)) if (cpu_rows != dev_rows).any() else len(cpu_rows)
    print(f"agreement CPU vs {device.type} (float64, N={n}, budget 200): first {same} of 200 picks identical")

    cases = [(2000, 101, (768, 2048), 100)] if args.quick else [SIZES[s] for s in args.sizes.split(",")]
    for n, classes, dims, budget in cases:
        outputs = to_device(pool_outputs(n, classes, dims, budget, mc_passes=0), device)
        for name in ("badge", "bmmal"):
            picks = {}
            for precision in ("fp32", "bf16"):
                timed_select(name, outputs, min(budget, 10), device, precision)  # warm-up (kernels, allocator)
                rows, seconds, peak = timed_select(name, outputs, budget, device, precision)
                assert len(np.unique(rows)) == budget
                picks[precision] = rows
                equal = "" if precision == "fp32" else \
                    f", {len(set(rows.tolist()) & set(picks['fp32'].tolist())) / budget:.1%} of picks as fp32"
                print(f"{name:6s} {precision} N={n:>9,} C={classes} d={'+'.join(map(str, dims))} budget={budget:,}: "
                      f"{seconds:8.2f} s, peak GPU memory {peak:.2f} GiB{equal}", flush=True)
        del outputs
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
