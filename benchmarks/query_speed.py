"""Query speed and peak memory of every strategy on random pool outputs of Food-101 size, each against
its bare-pass floor in the same run, and the cost of reduced precision on real embeddings.

Parts (choose with --part; the default runs the first three):
  bmmal       BMMAL selection at N = 60,000, C = 101, d = 768 + 2048, budget 1,000 (--precision: its factors);
  naive       BMMAL's factored k-means++ against a naive run on the materialised gradient embedding
              (N = 2,000, C * d = 284,416 dimensions, float32 like the reference): speed ratio, whether they pick
              the same rows (and for how many picks), and how far their squared distances differ;
  strategies  every registered strategy at N = 20,000 and 60,000 (C = 101, d = 2,816);
  precision   bf16 and fp16 against fp32 on real embeddings: a model trained on mfeat (pix + fou, and all
              six views), on Emoji-9 and on Tux Paint features (--data); the share of picks equal to fp32's
              and the relative squared-distance error;
  bound       badge, bmmal and coreset with and without the distance bound that skips rows (kmeanspp.py), in
              one process at --sizes (--precision may list several): same picks?, seconds of each, rows computed;
  passes      one factor pass per precision at N = 60,000, d = 2,816 (CPU and wall ms; not in "all"), and
              other products bmmal does not use (bf16 output, fp16, int8), for comparison; --threads applies.

Every speed case runs in a fresh subprocess. The data are random (probabilities: softmax of Gaussian logits;
embeddings: |Gaussian|, like ReLU outputs; Shapley values: random [N, 2, C]; MC-dropout passes: 10 random
softmaxes; fuse: a random linear head), so the times are those of the selection algorithms, not of a
trained model's outputs. Time is the wall-clock of `strategy.select` only, with its CPU time (user +
system) and the 1-minute load average before and after: other work on the machine inflates wall time.
The floor is the same number of bare passes in the same process, the mean of a run right before and one right
after the selection (the memory bandwidth of a shared machine drifts by several per cent): for BADGE
and BMMAL `(A @ a_j) * (U @ u_j)` and an elementwise minimum over the fp32 [N, C] and [N, D] factors, for
coreset `U @ u_j` and the minimum; `ratio` = selection time / floor. Memory is the peak resident set
size (VmHWM) of the subprocess, reset just before `select` (Linux /proc/self/clear_refs), so it covers the
inputs held in memory plus everything `select` allocates; the RSS just before `select` is printed too,
and `peak_above_inputs_mb` is their difference.

    python benchmarks/query_speed.py --part strategies --sizes 2000 --strategies entropy,coreset   # quick
    python benchmarks/query_speed.py --part bmmal --precision bf16
    python benchmarks/query_speed.py                                                               # all
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

from bmmal.strategies.kmeanspp import ZERO_DISTANCE_TOLERANCE


def pool_outputs(n: int, n_classes: int, dims: tuple[int, ...], n_labeled: int, seed: int = 0, mc_passes: int = 10):
    from bmmal.outputs import PoolOutputs

    g = torch.Generator().manual_seed(seed)
    names = [f"m{i}" for i in range(len(dims))]
    embeddings = {m: torch.randn(n, d, generator=g).abs_() for m, d in zip(names, dims)}
    head = torch.nn.Linear(sum(dims), n_classes)
    torch.nn.init.normal_(head.weight, std=0.05, generator=g)

    def fuse(e):
        return head(torch.cat([e[m] for m in names], dim=1))

    labeled = torch.zeros(n, dtype=torch.bool)
    labeled[torch.randperm(n, generator=g)[:n_labeled]] = True
    return PoolOutputs(labeled=labeled, probs=torch.softmax(2 * torch.randn(n, n_classes, generator=g), 1),
                       embeddings=embeddings, shapley=torch.rand(n, len(dims), n_classes, generator=g) - 0.5,
                       mc_probs=torch.softmax(2 * torch.randn(mc_passes, n, n_classes, generator=g), 2) if mc_passes else None,
                       fuse=fuse)


def rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


FLOORS = {"badge": True, "bmmal": True, "coreset": False}  # strategy -> whether its pass has the residual factor


def bare_passes(outputs, budget: int, residual: bool) -> tuple[float, float]:
    """(wall, CPU) seconds of `budget` bare fp32 passes: (A @ a_j) * (U @ u_j) (or U @ u_j), then a minimum."""
    features = outputs.fused_embedding().float()
    probs = outputs.probs.float()
    nearest = torch.full((len(features),), float("inf"))
    rows = np.random.default_rng(0).integers(len(features), size=budget)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for j in rows:
        d = torch.mv(features, features[j])
        if residual:
            d.mul_(torch.mv(probs, probs[j]))
        torch.minimum(nearest, d, out=nearest)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return seconds, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime


def count_feature_rows() -> list[float]:
    """Wrap the kernel's nearest-distance update to record, per pick, the share of rows that needed the
    feature products (the rest were skipped by the distance bound)."""
    from bmmal.strategies.kmeanspp import OuterProductEmbedding

    shares: list[float] = []
    update = OuterProductEmbedding.lower_nearest

    def counted(self, *args, **kwargs):
        rows = update(self, *args, **kwargs)
        shares.append(rows / max(len(self), 1))
        return rows

    OuterProductEmbedding.lower_nearest = counted
    return shares


def run_case(args) -> dict:
    """One strategy on one pool, in this process, then its floor."""
    from bmmal import strategies
    from bmmal.strategies.kmeanspp import OuterProductEmbedding

    torch.set_num_threads(args.threads)
    OuterProductEmbedding.skip_by_bound = False if args.full_pass else None  # None: the library's default
    shares = count_feature_rows()
    outputs = pool_outputs(args.n, args.classes, args.dims, args.labeled)
    params = {"precision": args.precision} if args.case in ("badge", "bmmal") else {}
    strategy = strategies.get(args.case, **params)
    has_floor = args.case in FLOORS and not args.no_floor
    floor_before = bare_passes(outputs, args.budget, FLOORS[args.case]) if has_floor else None
    before = rss_mb("VmRSS")
    reset = reset_peak_rss()
    load = os.getloadavg()[0]
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    rows = strategy.select(outputs, args.budget, seed=0)
    seconds = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = cpu_after.ru_utime + cpu_after.ru_stime - cpu.ru_utime - cpu.ru_stime
    peak = rss_mb("VmHWM")
    result = {"strategy": args.case, **params, "n": args.n, "classes": args.classes, "dim": sum(args.dims),
              "budget": args.budget, "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
              "load_average_1min": round(load, 1), "load_average_after": round(os.getloadavg()[0], 1),
              "rss_before_select_mb": round(before), "peak_rss_mb": round(peak),
              "peak_above_inputs_mb": round(peak - before), "peak_reset": reset, "rows": len(rows),
              "threads": torch.get_num_threads(), "full_pass": args.full_pass}
    if shares:
        result["feature_rows_share"] = round(float(np.mean(shares)), 4)
    if has_floor:  # the mean of a floor run just before and one just after: memory bandwidth drifts
        floor_after = bare_passes(outputs, args.budget, FLOORS[args.case])
        floor, floor_cpu = ((b + a) / 2 for b, a in zip(floor_before, floor_after))
        result.update({"floor_seconds": round(floor, 2), "floor_cpu_seconds": round(floor_cpu, 2),
                       "floor_before_seconds": round(floor_before[0], 2), "floor_after_seconds": round(floor_after[0], 2),
                       "ratio": round(seconds / floor, 2), "cpu_ratio": round(cpu_seconds / max(floor_cpu, 1e-9), 2),
                       "load_average_after_floor": round(os.getloadavg()[0], 1)})
    return result


class DenseEmbedding:
    """The naive way: the gradient embedding materialised as an [N, C*D] matrix."""

    def __init__(self, matrix: torch.Tensor):
        self.matrix = matrix

    def __len__(self) -> int:
        return len(self.matrix)

    def sq_norms(self) -> torch.Tensor:
        return torch.cat([(block.double() ** 2).sum(1) for block in self.matrix.split(64)])

    def sq_distances_to(self, row: int, sq_norms: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """|g_i|^2 + |g_r|^2 - 2 g_i.g_r over the full float32 matrix, with the kernel's zero tolerance."""
        bound = sq_norms + sq_norms[row]
        d2 = bound - 2.0 * torch.mv(self.matrix, self.matrix[row]).double()
        d2 = torch.where(d2 <= ZERO_DISTANCE_TOLERANCE * bound, torch.zeros_like(d2), d2)
        return d2 if out is None else out.copy_(d2)


def run_naive(args) -> dict:
    """BMMAL's factored k-means++ vs the same seeding on the materialised embedding, same seed."""
    from bmmal.strategies import get
    from bmmal.strategies.gradient_embedding import gradient_embedding
    from bmmal.strategies.kmeanspp import kmeanspp_seeding

    outputs = pool_outputs(args.n, args.classes, args.dims, n_labeled=0)
    bmmal = get("bmmal")
    rows = outputs.unlabeled_rows
    start = time.perf_counter()
    factored = kmeanspp_seeding(gradient_embedding(outputs, rows, bmmal.modality_scales(outputs, rows)),
                                args.budget, np.random.default_rng(0))
    factored_s = time.perf_counter() - start
    start = time.perf_counter()
    dense = gradient_embedding(outputs, rows, bmmal.modality_scales(outputs, rows)).materialize()
    naive = kmeanspp_seeding(DenseEmbedding(dense), args.budget, np.random.default_rng(0))
    naive_s = time.perf_counter() - start
    # How close the two distance computations are: squared distances to the first pick, both ways.
    embedding = gradient_embedding(outputs, rows, bmmal.modality_scales(outputs, rows))
    sq_norms = embedding.sq_norms()
    fast_d2 = embedding.sq_distances_to(int(factored[0]), sq_norms)
    slow_d2 = DenseEmbedding(dense).sq_distances_to(int(naive[0]), sq_norms)
    rel = float(((fast_d2 - slow_d2).abs() / (sq_norms + sq_norms[int(factored[0])])).max())  # vs |g_i|^2+|g_r|^2
    return {"n": args.n, "classes": args.classes, "dim": sum(args.dims), "embedding_dims": dense.shape[1],
            "embedding_gb": round(dense.numel() * 4 / 2 ** 30, 2), "budget": args.budget,
            "factored_seconds": round(factored_s, 3), "naive_seconds": round(naive_s, 2),
            "speed_ratio": round(naive_s / factored_s, 1), "same_rows": bool(np.array_equal(factored, naive)),
            "same_first_rows": int(np.argmax(np.r_[factored != naive, True])),
            "max_relative_d2_difference": float(f"{rel:.2e}")}


def trained_outputs(dataset: str, views: tuple[str, ...] | None = None, labeled: int = 200, seed: int = 0):
    """Pool outputs of a small model (MLP per view, 64-d embeddings, concat fusion) trained for 200 full-batch
    Adam steps on `labeled` random rows of the dataset's training split: real embeddings, not random ones."""
    from bmmal import datasets
    from bmmal.inference import pool_outputs as infer
    from bmmal.models import MultimodalClassifier
    from bmmal.models.encoders import MLPEncoder

    train, _ = datasets.load(dataset, seed=seed, **({"modalities": views} if views else {}))
    views = train.modalities
    torch.manual_seed(seed)
    shapes = {m: tuple(x.shape[1:]) for m, x in train.batch(np.arange(2)).items()}
    model = MultimodalClassifier({m: MLPEncoder(shapes[m], hidden_dims=(128,), embed_dim=64) for m in views},
                                 len(train.classes))
    rows = np.random.default_rng(seed).choice(len(train), size=labeled, replace=False)
    inputs, labels = train.batch(rows), torch.as_tensor(train.labels[rows])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(200):
        out = model(inputs)
        loss = torch.nn.functional.cross_entropy(out.fused_logits, labels) + sum(
            torch.nn.functional.cross_entropy(logits, labels) for logits in out.unimodal_logits.values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    labeled = np.zeros(len(train), dtype=bool)
    labeled[rows] = True
    return infer(model, train, labeled, ("embeddings", "shapley"))


def kmeanspp_potential(embedding, chosen) -> float:
    """sum over rows of the squared distance to the nearest chosen row (the k-means cost of the seeds)."""
    norms = embedding.sq_norms()
    nearest = torch.full_like(norms, float("inf"))
    for row in chosen:
        torch.minimum(nearest, embedding.sq_distances_to(int(row), norms), out=nearest)
    return float(nearest.sum())


PRECISION_DATA = {  # name -> (dataset, views): a trained model's pool outputs on each
    "mfeat-2": ("mfeat", ("pix", "fou")), "mfeat-6": ("mfeat", ("pix", "fou", "fac", "kar", "zer", "mor")),
    "emoji9": ("emoji9", None), "tuxpaint": ("tuxpaint", None)}


def run_precision(seeds: int, budget: int = 100, data: tuple[str, ...] = tuple(PRECISION_DATA)) -> list[dict]:
    """bf16 and fp16 against fp32 on a trained model's pool outputs (mfeat with two and six views; Emoji-9 and
    Tux Paint on their cached image/text(/audio) features)."""
    from bmmal import strategies

    results = []
    for key in data:
        dataset, views = PRECISION_DATA[key]
        outputs = trained_outputs(dataset, views)
        views = tuple(outputs.embeddings)
        for name in ("badge", "bmmal"):
            exact = strategies.get(name)
            exact_embedding = exact.embedding(outputs)
            exact_norms = exact_embedding.sq_norms()
            probe = np.random.default_rng(0).choice(len(outputs), size=20, replace=False)
            for precision in ("bf16", "fp16"):
                reduced = strategies.get(name, precision=precision)
                embedding = reduced.embedding(outputs)
                norms = embedding.sq_norms()
                errors = torch.cat([(embedding.sq_distances_to(int(r), norms)
                                     - exact_embedding.sq_distances_to(int(r), exact_norms)).abs()
                                    / (exact_norms + exact_norms[int(r)]) for r in probe])
                same, prefix, potential = [], [], []
                for seed in range(seeds):
                    a = exact.select(outputs, budget, seed=seed)
                    b = reduced.select(outputs, budget, seed=seed)
                    same.append(len(set(a.tolist()) & set(b.tolist())) / budget)
                    prefix.append(int(np.argmax(np.r_[a != b, True])))
                    potential.append(kmeanspp_potential(exact_embedding, b) / kmeanspp_potential(exact_embedding, a))
                results.append({
                    "data": f"{dataset} {'+'.join(views)}, trained model (64-d embeddings per view)", "n": len(outputs),
                    "strategy": name, "precision": precision, "budget": budget, "seeds": seeds,
                    "share_of_picks_equal_to_fp32": round(float(np.mean(same)), 3),
                    "identical_first_picks_median": float(np.median(prefix)),
                    "relative_d2_error_median": float(f"{float(errors.median()):.2e}"),
                    "relative_d2_error_max": float(f"{float(errors.max()):.2e}"),
                    "kmeans_cost_ratio_vs_fp32_mean": round(float(np.mean(potential)), 4)})
    return results


def run_bound(args) -> list[dict]:
    """Each of badge, bmmal (per --precision list) and coreset with the distance bound and with the full pass,
    on the same random pool, in this process: whether they pick the same rows, the wall and CPU seconds of
    each, and the share of rows per pick that needed the feature products."""
    from bmmal import strategies
    from bmmal.strategies.kmeanspp import OuterProductEmbedding

    torch.set_num_threads(args.threads)
    shares = count_feature_rows()
    results = []
    for size in args.sizes.split(","):  # a number: a random pool of that size; a --data name: a trained model's pool
        outputs = (pool_outputs(int(size), args.classes, args.dims, args.labeled, mc_passes=0) if size.isdigit()
                   else trained_outputs(*PRECISION_DATA[size]))
        n = size if not size.isdigit() else int(size)
        for name in args.strategies.split(","):
            for precision in (args.precision.split(",") if name in ("badge", "bmmal") else ["fp32"]):
                strategy = strategies.get(name, **({"precision": precision} if name != "coreset" else {}))
                timed = {}
                for skip in (True, False):  # the bound forced on (the default skips it for narrow rows), off
                    OuterProductEmbedding.skip_by_bound = skip
                    shares.clear()
                    cpu = time.process_time()
                    start = time.perf_counter()
                    rows = strategy.select(outputs, args.budget, seed=0)
                    timed[skip] = (rows, time.perf_counter() - start, time.process_time() - cpu,
                                   float(np.mean(shares)) if shares else 1.0)
                (rows, seconds, cpu_seconds, share), (full_rows, full_seconds, full_cpu, _) = timed[True], timed[False]
                results.append({"strategy": name, "precision": precision, "n": n, "budget": args.budget,
                                "same_picks": int((rows == full_rows).sum()), "feature_rows_share": round(share, 4),
                                "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
                                "full_pass_seconds": round(full_seconds, 2), "full_pass_cpu_seconds": round(full_cpu, 2),
                                "speed_up": round(full_seconds / seconds, 1), "threads": torch.get_num_threads(),
                                "load_average_1min": round(os.getloadavg()[0], 1)})
    OuterProductEmbedding.skip_by_bound = None
    return results


def run_passes(n: int, dim: int, repeats: int = 20) -> dict:
    """CPU and wall time of one factor pass (`StoredFactor.dots`) per precision, on an [n, dim] |Gaussian| factor."""
    from bmmal.strategies.precision import StoredFactor

    features = torch.randn(n, dim).abs_()
    result = {"n": n, "dim": dim, "repeats": repeats, "load_average_1min": round(os.getloadavg()[0], 1)}
    for precision in ("fp32", "bf16", "fp16"):
        factor = StoredFactor(features, precision)
        row = factor.row(5)
        factor.dots(row)
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        for _ in range(repeats):
            factor.dots(row)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        result[precision] = {"product": factor.dot_output, "wall_ms_per_pass": round(wall / repeats * 1e3, 1),
                             "cpu_ms_per_pass": round((after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime)
                                                      / repeats * 1e3, 1)}
    v = torch.randn(dim)
    others = {  # products bmmal does not use, for comparison: why bf16 with float32 output, and no fp16 or int8
        "bf16 torch.mv (bf16 output)": (lambda a=features.bfloat16(), x=v.bfloat16(): torch.mv(a, x)),
        "fp16 torch.mv": (lambda a=features.half(), x=v.half(): torch.mv(a, x)),
        "fp16 F.linear": (lambda a=features.half(), x=v.half()[None]: torch.nn.functional.linear(a, x)),
        "int8 torch._int_mm (8 columns)": (lambda a=(features * 20).clamp(max=127).to(torch.int8),
                                           x=(v * 20).clamp(-127, 127).to(torch.int8)[:, None].expand(dim, 8).contiguous():
                                           torch._int_mm(a, x)),
    }
    for name, product in others.items():
        product()
        start = time.perf_counter()
        for _ in range(repeats):
            product()
        result[name] = {"wall_ms_per_pass": round((time.perf_counter() - start) / repeats * 1e3, 1)}
    result["load_average_after"] = round(os.getloadavg()[0], 1)
    return result


def subprocess_case(argv: list[str], timeout: float) -> dict:
    cmd = [sys.executable, __file__, *argv]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_arguments(parser: argparse.ArgumentParser, args) -> tuple[int, ...]:
    """The embedding sizes, after refusing what the cases would fail on (one usage line, exit 2)."""
    from bmmal.strategies.precision import PRECISIONS

    try:
        dims = tuple(int(d) for d in str(args.dims).split(","))
        sizes = [s for s in str(args.sizes).split(",") if s.isdigit() or s in PRECISION_DATA]
    except ValueError:
        parser.error(f"--dims must be comma-separated integers, got {args.dims!r}")
    bad = [p for p in args.precision.split(",") if p not in PRECISIONS]
    if bad:
        parser.error(f"--precision: {bad[0]!r} is not one of {', '.join(PRECISIONS)}")
    if min(dims) < 1 or args.budget < 1 or args.labeled < 0:
        parser.error("--dims and --budget must be positive, --labeled at least 0")
    if len(sizes) != len(str(args.sizes).split(",")):
        parser.error(f"--sizes must be pool sizes or names of {', '.join(PRECISION_DATA)}, got {args.sizes!r}")
    small = [int(s) for s in sizes if s.isdigit() and int(s) - args.labeled < args.budget]
    if small and not (args.case or args.naive):
        parser.error(f"--sizes {small[0]} leaves {max(small[0] - args.labeled, 0)} unlabelled rows (--labeled "
                     f"{args.labeled}) for a budget of {args.budget}")
    return dims


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["bmmal", "naive", "strategies", "precision", "passes", "bound", "all"], default="all")
    p.add_argument("--precision", default="fp32", help="factor storage of badge and bmmal: fp32, bf16, fp16")
    p.add_argument("--no-floor", action="store_true", help="skip the bare-pass floor")
    p.add_argument("--full-pass", action="store_true", help="every pick computes every row's distance (no rows "
                   "skipped by the distance bound): the kernel before the bound, for comparison")
    p.add_argument("--threads", type=int, default=1, help="torch threads per case (one: spin-waiting threads on a "
                                                          "loaded machine inflate both wall and CPU time)")
    p.add_argument("--seeds", type=int, default=10, help="seeds for --part precision")
    p.add_argument("--data", default=",".join(PRECISION_DATA),
                   help=f"pool outputs for --part precision, comma-separated: {', '.join(PRECISION_DATA)}")
    p.add_argument("--sizes", default="20000,60000", help="pool sizes for --part strategies")
    p.add_argument("--strategies", default="all", help="comma-separated names, or all")
    p.add_argument("--classes", type=int, default=101)
    p.add_argument("--dims", default="768,2048", help="embedding size per modality")
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--labeled", "--labelled", dest="labeled", type=int, default=1000, help="labelled rows in the pool")
    p.add_argument("--naive-n", type=int, default=2000)
    p.add_argument("--naive-budget", type=int, default=100)
    p.add_argument("--timeout", type=float, default=1800, help="seconds per case")
    p.add_argument("--json", help="append one JSON line per case to this file")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one strategy here
    p.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)  # internal
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.dims = check_arguments(p, args)
    if args.case or args.naive:
        print(json.dumps(run_naive(args) if args.naive else run_case(args)))
        return

    from bmmal import strategies

    if args.part == "passes":
        torch.set_num_threads(args.threads)
        print(json.dumps(run_passes(60000, sum(args.dims))), flush=True)
        return
    if args.part == "bound":
        args.strategies = "badge,bmmal,coreset" if args.strategies == "all" else args.strategies
        for result in run_bound(args):
            print(json.dumps(result), flush=True)
        return
    if args.part == "precision":
        for result in run_precision(args.seeds, data=tuple(args.data.split(","))):
            print(json.dumps(result), flush=True)
        return
    common = ["--classes", str(args.classes), "--dims", ",".join(map(str, args.dims)),
              "--labelled", str(args.labeled), "--precision", args.precision, "--threads", str(args.threads)] + (["--no-floor"] if args.no_floor else []) + (["--full-pass"] if args.full_pass else [])
    plan = []
    if args.part in ("bmmal", "all"):
        plan.append(["--case", "bmmal", "--n", "60000", "--budget", str(args.budget)])
    if args.part in ("naive", "all"):
        plan.append(["--naive", "--n", str(args.naive_n), "--budget", str(args.naive_budget)])
    if args.part in ("strategies", "all"):
        names = strategies.available() if args.strategies == "all" else args.strategies.split(",")
        for n in (int(s) for s in args.sizes.split(",")):
            plan += [["--case", name, "--n", str(n), "--budget", str(args.budget)] for name in names]
    for case in plan:
        result = subprocess_case(case + common, args.timeout)
        result.setdefault("case", " ".join(case))
        print(json.dumps(result), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
