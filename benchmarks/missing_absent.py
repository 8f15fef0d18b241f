"""Missing modalities: the model's `absent` option, "zeros" (an absent modality is the zero embedding) against
"learned" (the zero embedding plus a learned per-modality logit offset), on mfeat pix + mor with a modality
dropped from a fraction of the samples (train and test). Random labelled sets of a few sizes, one model
per (seed, size, option), test accuracy overall and on complete / incomplete samples, paired over seeds.

    nice -n 10 python benchmarks/missing_absent.py --seeds 10 --drop pix=0.6 --sizes 60 180
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import ttest_rel

from bmmal import datasets
from bmmal.config import ModelConfig, TrainConfig
from bmmal.metrics import evaluate
from bmmal.models import TrainingLoop, build_model

OPTIONS = ("zeros", "learned")
COLUMNS = ("accuracy_micro", "accuracy_micro:complete", "accuracy_micro:incomplete")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--drop", default="pix=0.6", help="modality=fraction")
    parser.add_argument("--sizes", type=int, nargs="+", default=[60, 180])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    modality, fraction = args.drop.split("=")
    results = {(size, option): [] for size in args.sizes for option in OPTIONS}
    start = time.perf_counter()
    for seed in range(args.seeds):
        train, test = datasets.load("mfeat", ("pix", "mor"), seed=seed, drop={modality: float(fraction)})
        for size in args.sizes:
            rows = np.sort(np.random.default_rng([seed, size]).choice(len(train), size, replace=False))
            for option in OPTIONS:
                model = build_model(ModelConfig(absent=option), train, seed)
                TrainingLoop(TrainConfig(epochs=args.epochs, device="cpu")).fit(model, train, rows, train.labels[rows],
                                                                                  seed)
                metrics = evaluate(model, test)
                results[size, option].append([metrics[c] for c in COLUMNS])
    print(f"mfeat pix+mor, {modality} dropped from {float(fraction):.0%}, {args.seeds} seeds, {args.epochs} epochs, "
          f"{time.perf_counter() - start:.0f} s")
    print("| labels | accuracy on | zeros | learned | learned - zeros | paired t-test p |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        zeros, learned = (np.array(results[size, o]) for o in OPTIONS)
        for i, column in enumerate(COLUMNS):
            part = column.split(":")[1] if ":" in column else "all"
            diff = learned[:, i] - zeros[:, i]
            p = ttest_rel(learned[:, i], zeros[:, i]).pvalue if diff.any() else 1.0
            print(f"| {size} | {part} | {zeros[:, i].mean():.4f} | {learned[:, i].mean():.4f} | "
                  f"{diff.mean():+.4f} +- {diff.std(ddof=1):.4f} | {p:.3g} |")


if __name__ == "__main__":
    main()
