"""`bmmal query`: train on the labels so far, select the next batch, record it as pending.

With labels, one round of the engine (`bmmal.rounds.run_round`) trains a model from scratch on them, measured on
a held-out part of them once there are enough (a fixed 20% of the labelled ids, chosen by a hash of the
id so that a sample never moves between training and validation), and the strategy selects from its
`PoolOutputs`. Without labels there is no model: `random` draws a batch, and the diversity strategies
(`kmeans`, `coreset`) work on the manifest's features as embeddings, standardised and each modality
divided by the square root of its dimension, so that every modality counts the same in distances
(a 1280-value image vector would otherwise outweigh a 61-value audio one).
Pending samples are never selected again; they count as taken.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
import torch

from bmmal import datasets
from bmmal.data import UNLABELED, ArrayDataset, standardize
from bmmal.errors import BmmalError
from bmmal.metrics import evaluate
from bmmal.outputs import PoolOutputs
from bmmal.resolve import resolve_strategy
from bmmal.rounds import RoundSettings, round_seed, run_round
from bmmal.rundir import save_model
from bmmal.storage import atomic_write_json

MODEL_FREE = ("random", "kmeans", "coreset")  # strategies that can pick a first batch with no labels
AUTO = "auto"  # bmmal once there are labels, kmeans before


@dataclass
class QueryResult:
    batch: int
    strategy: str
    sample_ids: list[str]
    model_info: dict | None  # None when no model was trained (no labels yet)


def pool_dataset(project) -> ArrayDataset:
    """The manifest's features (standardised per modality over the whole pool), in manifest order,
    with the project's classes and the store's labels."""
    dataset = datasets.load_manifest(project.settings.manifest, project.modalities, classes=project.classes,
                                     extractors=project.settings.extractors)
    labels = project.store.labels()
    index = {c: k for k, c in enumerate(project.classes)}
    y = np.array([index[labels[i]] if i in labels else UNLABELED for i in dataset.ids], dtype=np.int64)
    (dataset,) = standardize(ArrayDataset(dataset.features, y, project.classes, dataset.ids, "labelling"))
    return dataset


def is_validation(sample_ids, seed: int, fraction: float) -> np.ndarray:
    """Fixed per id: whether a labelled sample is held out for validation (hash of seed and id < fraction)."""
    def unit(sample_id: str) -> float:
        digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2 ** 64

    return np.array([unit(i) < fraction for i in sample_ids], dtype=bool)


def split_labeled(project, dataset: ArrayDataset) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows) among the labelled rows; no validation while labels are few."""
    labeled = np.flatnonzero(dataset.labels != UNLABELED)
    settings = project.settings
    if len(labeled) < settings.min_labels_for_validation:
        return labeled, labeled[:0]
    held = is_validation(dataset.ids[labeled], settings.seed, settings.validation_fraction)
    train, val = labeled[~held], labeled[held]
    if len(np.unique(dataset.labels[train])) < 2 or len(val) == 0:
        return labeled, labeled[:0]
    return train, val


def train_and_select(project, dataset: ArrayDataset, taken: np.ndarray, strategy, budget: int, seed: int):
    """(model, PoolOutputs, selected rows, info): one engine round on the training part of the labels,
    measured on the held-out part."""
    settings = project.settings
    train_rows, val_rows = split_labeled(project, dataset)
    result = run_round(RoundSettings(settings.model_config(), settings.train_config()), dataset, strategy,
                       train_rows, dataset.labels[train_rows], budget, seed, taken=taken)
    model = result.selection_model
    info: dict = {"trained_on": len(train_rows), "validation_size": len(val_rows),
                  "train_seconds": result.seconds["train_seconds"], "seed": seed, "time": time.time()}
    info["validation"] = evaluate(model, dataset.subset(val_rows)) if len(val_rows) else None
    info["pool_balance"] = {m: result.balance[f"pool_contribution:{m}"] for m in dataset.modalities}
    info["selection_balance"] = {m: result.balance[f"selected_contribution:{m}"] for m in dataset.modalities}
    return model, result.outputs, result.rows, info


def strategy_name(name: str, n_labeled: int) -> str:
    if name == AUTO:
        return "bmmal" if n_labeled else "kmeans"
    if n_labeled == 0 and name not in MODEL_FREE:
        raise BmmalError(f"strategy {name!r} needs a model, and there are no labels yet; pick the first batch "
                         f"with --strategy {' or '.join(MODEL_FREE)}")
    return name


def query(project, budget: int, strategy: str = AUTO, executor: str = "local", **params) -> QueryResult:
    """Select `budget` samples that are neither labelled nor pending and record them as a pending batch.

    executor "ray": the selection runs across Ray workers (bmmal.distributed), with the same result."""
    dataset = pool_dataset(project)
    n_labeled = int((dataset.labels != UNLABELED).sum())
    name = strategy_name(strategy, n_labeled)
    chosen = resolve_strategy(name, params)
    if executor == "ray":
        from bmmal.distributed import ShardedStrategy

        chosen = ShardedStrategy(chosen)
    elif executor != "local":
        raise BmmalError(f"executor must be local or ray, got {executor!r}")
    pending = set(project.store.pending())
    taken = (dataset.labels != UNLABELED) | np.isin(dataset.ids, list(pending))
    n_free = int((~taken).sum())
    if budget > n_free:
        raise BmmalError(f"budget {budget} is larger than the {n_free} samples that are neither labelled nor pending")
    seed = round_seed(project.settings.seed, len(project.store.batches()))
    if n_labeled:
        model, outputs, rows, info = train_and_select(project, dataset, taken, chosen, budget, seed)
    else:
        features = {m: torch.as_tensor(x).reshape(len(x), -1) for m, x in dataset.features.items()}
        features = {m: x / x.shape[1] ** 0.5 for m, x in features.items()}  # every modality weighs the same
        uniform = torch.full((len(dataset), len(dataset.classes)), 1.0 / len(dataset.classes))
        outputs, info = PoolOutputs(labeled=torch.as_tensor(taken), probs=uniform, embeddings=features), None
        rows = chosen.select(outputs, budget, seed=seed)
    ids = dataset.ids[rows].tolist()
    predictions = None
    if info is not None:
        probs = outputs.probs[rows]
        predictions = [{"label": project.classes[int(p.argmax())], "score": float(p.max()),
                        "probs": {c: round(float(v), 6) for c, v in zip(project.classes, p)}} for p in probs]
    batch = project.store.add_batch(name, ids, predictions, {"seed": seed, "params": params,
                                                             "model": info is not None})
    if info is not None:
        info["batch"] = batch
        save_model(project.dir / "model.pt", model)
        atomic_write_json(project.dir / "model.json", info)
    return QueryResult(batch, name, ids, info)
