"""Is one modality under-trained inside the jointly trained model? The measurement of the balanced-learning
papers, on the raw-input benchmarks (encoders trained end to end from scratch).

For each seed and labelled-set size: train each modality's encoder alone (a unimodal model: encoder + its
head) and the joint model (both encoders and the fused head, plus the unimodal heads when
`unimodal_loss_weight` > 0), from the same labelled rows with the same training settings. Each encoder is
then scored by a linear probe: a logistic regression fitted on its (frozen) embeddings of the labelled
rows, accuracy on the test split. A modality whose joint-model probe is clearly below its probe trained
alone is under-trained by joint training.

    nice -n 10 python benchmarks/e2e_imbalance.py --config configs/e2e-fashion-speech.yaml --seeds 3 --labelled 200 500
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bmmal import datasets
from bmmal.config import RunConfig, load_yaml, parse_config
from bmmal.metrics import probe_accuracy
from bmmal.models.training import TrainingLoop, build_model


def embeddings(model, data, rows: np.ndarray, batch_size: int = 512) -> dict[str, np.ndarray]:
    model.eval()
    parts = []
    with torch.no_grad():
        for s in range(0, len(rows), batch_size):
            inputs = data.batch(rows[s:s + batch_size])
            parts.append({m: z.numpy() for m, z in model.embed(inputs).items()})
    return {m: np.concatenate([p[m] for p in parts]) for m in parts[0]}


def probe_accuracies(model, train_set, rows: np.ndarray, test_set) -> dict[str, float]:
    """Per modality: a logistic regression on the frozen embeddings of the labelled rows, test accuracy."""
    fit_z, test_z = embeddings(model, train_set, rows), embeddings(model, test_set, np.arange(len(test_set)))
    def everywhere(n: int) -> np.ndarray:  # every modality present
        return np.ones((n, len(fit_z)), dtype=bool)

    scores = probe_accuracy(fit_z, train_set.labels[rows], everywhere(len(rows)),
                            test_z, test_set.labels, everywhere(len(test_set)))
    return {m: scores[f"probe_accuracy_micro:{m}"] for m in fit_z}


def fused_accuracy(model, data, batch_size: int = 512) -> float:
    model.eval()
    hits = 0
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            rows = np.arange(s, min(s + batch_size, len(data)))
            hits += int((model(data.batch(rows)).fused_logits.argmax(1) == torch.as_tensor(data.labels[rows])).sum())
    return hits / len(data)


def train(config, train_set, rows: np.ndarray, seed: int):
    model = build_model(config.model, train_set, seed)
    return TrainingLoop(config.train).fit(model, train_set, rows, train_set.labels[rows], seed)


def measure(config, seeds: int, sizes: list[int]) -> list[dict]:
    name, options = config.dataset.name, dict(config.dataset.options)
    modalities = tuple(config.dataset.modalities or ())
    results = []
    for seed in range(seeds):
        train_set, test_set = datasets.load(name, modalities=modalities or None, seed=seed, **options)
        modalities = train_set.modalities
        for n in sizes:
            rows = np.sort(np.random.default_rng(seed).choice(len(train_set), size=n, replace=False))
            start = time.perf_counter()
            joint_model = train(config, train_set, rows, seed)
            joint = probe_accuracies(joint_model, train_set, rows, test_set)
            row = {"seed": seed, "labeled": n, "fused": fused_accuracy(joint_model, test_set)}
            for m in modalities:
                alone_train, alone_test = datasets.load(name, modalities=(m,), seed=seed, **options)
                alone = probe_accuracies(train(config, alone_train, rows, seed), alone_train, rows, alone_test)
                row[f"{m} alone"] = alone[m]
                row[f"{m} in joint"] = joint[m]
            row["seconds"] = time.perf_counter() - start
            results.append(row)
            print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    return results


def table(results: list[dict]) -> str:
    """Mean and standard deviation over seeds per labelled-set size, as a markdown table."""
    columns = [k for k in results[0] if k not in ("seed", "labeled", "seconds")]
    lines = ["| labelled | " + " | ".join(columns) + " | gap per modality (alone - in joint) |",
             "|---" * (len(columns) + 2) + "|"]
    for n in sorted({r["labeled"] for r in results}):
        rows = [r for r in results if r["labeled"] == n]
        cells = [f"{100 * np.mean([r[c] for r in rows]):.1f} ± {100 * np.std([r[c] for r in rows]):.1f}"
                 for c in columns]
        mods = [c.removesuffix(" alone") for c in columns if c.endswith(" alone")]
        gaps = []
        for m in mods:
            d = np.array([r[f"{m} alone"] - r[f"{m} in joint"] for r in rows]) * 100
            gaps.append(f"{m} {d.mean():+.1f} (min {d.min():+.1f})")
        lines.append(f"| {n} ({len(rows)} seeds) | " + " | ".join(cells) + " | " + "; ".join(gaps) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="an e2e benchmark config (its first dataset and its base)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labeled", "--labelled", dest="labeled", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    parser.add_argument("--unimodal-loss-weight", type=float, default=None,
                        help="override train.unimodal_loss_weight (0: the fused loss only)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    raw = load_yaml(args.config)
    dataset = next(iter(raw["datasets"].values()))
    config = parse_config({**raw.get("base", {}), "dataset": dataset}, RunConfig, args.config)
    overrides = {"epochs": args.epochs, "unimodal_loss_weight": args.unimodal_loss_weight}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    config = config.model_copy(update={"train": config.train.model_copy(update=overrides)})
    start = time.perf_counter()
    results = measure(config, args.seeds, args.labeled)
    print(f"\n{config.dataset.name}, {args.seeds} seeds, {time.perf_counter() - start:.0f} s\n")
    print(table(results))


if __name__ == "__main__":
    main()
