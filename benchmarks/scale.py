"""How BMMAL selection grows with the pool size N and the budget K, and what sharding on Ray costs.

Parts (--part; default all):
  n      BMMAL (fp32) at N = 10,000 .. 1,000,000 synthetic rows, fixed C and d, budget K: time, CPU time,
         load average, peak RSS above the inputs, and the time per row and pick (seconds / (N K));
  k      the same at one N for several budgets;
  ray    the same pool selected in one process and across a local Ray with 2 workers (2 shards), same seed:
         identical rows, both times, and the per-pick overhead of the Ray round trips, measured on a tiny
         pool (where the passes cost nothing) and at the given N.

Every single-process case runs in a fresh subprocess (peak RSS per case). The outputs are random as in
query_speed.py (no MC-dropout passes). One torch thread per process.

    python benchmarks/scale.py --part n --sizes 10000,30000 --budget 50    # quick
    python benchmarks/scale.py                                              # all (about 15 min on 2 quiet cores)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from query_speed import count_feature_rows, pool_outputs, reset_peak_rss, rss_mb


def timed(fn):
    load = os.getloadavg()[0]
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return value, {"seconds": round(seconds, 2), "cpu_seconds": round(after.ru_utime + after.ru_stime
                                                                       - cpu.ru_utime - cpu.ru_stime, 1),
                   "load_average_1min": round(load, 1)}


def run_single(args) -> dict:
    from bmmal import strategies
    from bmmal.strategies.kmeanspp import OuterProductEmbedding

    torch.set_num_threads(1)
    OuterProductEmbedding.skip_by_bound = False if args.full_pass else None
    shares = count_feature_rows()
    outputs = pool_outputs(args.n, args.classes, args.dims, args.n // 100, mc_passes=0)
    before = rss_mb("VmRSS")
    reset = reset_peak_rss()
    rows, t = timed(lambda: strategies.get("bmmal", precision=args.precision).select(outputs, args.budget, seed=0))
    peak = rss_mb("VmHWM")
    return {"n": args.n, "classes": args.classes, "dim": sum(args.dims), "budget": args.budget,
            "precision": args.precision, **t, "ns_per_row_and_pick": round(t["seconds"] / (args.n * args.budget) * 1e9, 2),
            "cpu_ns_per_row_and_pick": round(t["cpu_seconds"] / (args.n * args.budget) * 1e9, 2),
            "rss_before_select_mb": round(before), "peak_above_inputs_mb": round(peak - before),
            "peak_reset": reset, "rows": len(rows), "full_pass": args.full_pass,
            "feature_rows_share": round(float(np.mean(shares)), 4) if shares else None}


def run_ray(args, emit) -> None:
    import ray

    from bmmal import distributed, strategies
    from bmmal.distributed.selection import outputs_rows

    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for n, budget in ((2000, 200), (args.n, args.budget)):
        outputs = pool_outputs(n, args.classes, args.dims, n // 100, mc_passes=0)
        single, t_single = timed(lambda: strategies.get("bmmal").select(outputs, budget, seed=0))
        shards = [outputs_rows(outputs, 0, n // 2), outputs_rows(outputs, n // 2, n)]
        with distributed.ShardedPool(shards) as pooled:
            sharded, t_ray = timed(lambda: pooled.select("bmmal", budget, seed=0))
        emit({"n": n, "budget": budget, "classes": args.classes, "dim": sum(args.dims),
              "single_process": t_single, "ray_2_workers": t_ray, "identical_rows": bool(np.array_equal(single, sharded)),
              "difference_per_pick_ms": round((t_ray["seconds"] - t_single["seconds"]) / budget * 1e3, 2)})
    ray.shutdown()


def subprocess_case(argv: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["n", "k", "ray", "all"], default="all")
    p.add_argument("--sizes", default="10000,30000,100000,300000,1000000")
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--budgets", default="25,50,100,200", help="for --part k")
    p.add_argument("--k-n", type=int, default=100000, help="N for --part k")
    p.add_argument("--ray-n", type=int, default=200000, help="N for --part ray")
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--dims", default="256,256")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--full-pass", action="store_true", help="every pick computes every row (no rows skipped by the "
                   "distance bound): the kernel before the bound, for comparison")
    p.add_argument("--json", help="append one JSON line per case to this file")
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)  # internal: one case in this process
    args = p.parse_args()
    try:
        args.dims = tuple(int(d) for d in args.dims.split(","))
        sizes = [int(s) for s in args.sizes.split(",")] + [int(s) for s in args.budgets.split(",")]
    except ValueError:
        p.error("--dims, --sizes and --budgets must be comma-separated integers")
    if min(args.dims) < 1 or min(sizes) < 1 or args.budget < 1:
        p.error("--dims, --sizes, --budgets and --budget must be positive")
    if args.n is not None:
        print(json.dumps(run_single(args)))
        return
    common = ["--classes", str(args.classes), "--dims", ",".join(map(str, args.dims)), "--precision", args.precision]
    common += ["--full-pass"] if args.full_pass else []

    def emit(result: dict) -> None:
        print(json.dumps(result), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(result) + "\n")

    if args.part in ("n", "all"):
        for size in args.sizes.split(","):
            emit(subprocess_case(["--n", size, "--budget", str(args.budget)] + common))
    if args.part in ("k", "all"):
        for k in args.budgets.split(","):
            emit(subprocess_case(["--n", str(args.k_n), "--budget", k] + common))
    if args.part in ("ray", "all"):
        args.n = args.ray_n
        run_ray(args, emit)

if __name__ == "__main__":
    main()
