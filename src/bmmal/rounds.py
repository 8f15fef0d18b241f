"""One round of active learning, the one engine under the simulated loop, the benchmark, the demo and
the labelling project's `query`: train on the labels so far, infer on the pool, select, and measure the
modality balance of the selection."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bmmal.config import ModelConfig, TrainConfig
from bmmal.contribution import contribution_shares
from bmmal.inference import pool_outputs
from bmmal.models import TrainingLoop, build_model
from bmmal.outputs import PoolOutputs
from bmmal.strategies import Strategy


def round_seed(seed: int, round_index: int) -> int:
    """The seed of one round (model initialisation, training order, selection), shared by all strategies."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, round_index]).generate_state(1)[0])


@dataclass(frozen=True)
class RoundSettings:
    """How a round trains and infers: the model and training configs, MC-dropout passes, inference batch size,
    and whether to measure the balance of each selection (one 2^M-coalition Shapley pass)."""

    model: ModelConfig
    train: TrainConfig
    mc_passes: int = 10
    batch_size: int = 1024
    selection_stats: bool = True


def train_model(settings: RoundSettings, dataset, rows: np.ndarray, labels: np.ndarray, seed: int):
    """(model, seconds): a fresh model trained from scratch on `rows` with `labels`."""
    model = build_model(settings.model, dataset, seed)
    start = time.perf_counter()
    TrainingLoop(settings.train).fit(model, dataset, rows, labels, seed)
    return model, time.perf_counter() - start


def load_model(settings: RoundSettings, dataset, weights: dict):
    """A model with stored weights, on the training device, in eval mode."""
    model = build_model(settings.model, dataset, seed=0)
    model.load_state_dict(weights)
    return model.to(TrainingLoop(settings.train).device).eval()


def selection_balance(outputs: PoolOutputs, selected: np.ndarray, modalities: tuple[str, ...]) -> dict[str, float]:
    """Contribution shares (at the predicted class) of the selected rows and of the candidate pool: the mean
    share per modality, the share of rows each modality dominates, and the mean gap max - min share (shares
    over each row's present modalities); with missing modalities also the fraction of complete rows and of
    rows with each modality, among the selected and in the pool."""
    candidates = outputs.unlabeled_rows
    present = outputs.presence()[candidates]
    shares = contribution_shares(outputs.shapley[candidates], outputs.probs[candidates].argmax(1), present).numpy()
    present = present.numpy()
    is_selected = np.isin(candidates, selected)
    dominant = shares.argmax(1)
    gap = shares.max(1) - shares.min(1)
    stats = {"selected_contribution_gap": float(gap[is_selected].mean()),
             "pool_contribution_gap": float(gap.mean())}
    for i, m in enumerate(modalities):
        stats[f"selected_dominant_share:{m}"] = float((dominant[is_selected] == i).mean())
        stats[f"pool_dominant_share:{m}"] = float((dominant == i).mean())
        stats[f"selected_contribution:{m}"] = float(shares[is_selected, i].mean())
        stats[f"pool_contribution:{m}"] = float(shares[:, i].mean())
    if not present.all():
        complete = present.all(axis=1)
        stats["selected_complete"] = float(complete[is_selected].mean())
        stats["pool_complete"] = float(complete.mean())
        for i, m in enumerate(modalities):
            stats[f"selected_present:{m}"] = float(present[is_selected, i].mean())
            stats[f"pool_present:{m}"] = float(present[:, i].mean())
    return stats


@dataclass
class RoundResult:
    rows: np.ndarray  # the selected pool rows
    outputs: PoolOutputs  # what the strategy selected from
    balance: dict[str, float]  # selection_balance, or {} when not measured
    selection_model: torch.nn.Module  # the model trained on the labels before this round's selection
    next_model: torch.nn.Module | None  # trained on the old and new labels (only with an oracle)
    seconds: dict[str, float]  # train_seconds, infer_seconds, query_seconds


def run_round(settings: RoundSettings, dataset, strategy: Strategy, labeled_rows: np.ndarray, labels: np.ndarray,
              budget: int, seed: int, *, taken: np.ndarray | None = None, model=None,
              oracle: Callable[[np.ndarray], np.ndarray] | None = None) -> RoundResult:
    """One round with `seed`: train on `labeled_rows` (unless `model` is already that model), infer on the pool,
    select `budget` rows that are not `taken` (default: the labeled rows) and measure the balance of the
    selection. With an `oracle` (selected rows -> their labels), train the next model on old and new labels."""
    seconds = {}
    labeled_rows, labels = np.asarray(labeled_rows, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    if model is None:
        model, seconds["train_seconds"] = train_model(settings, dataset, labeled_rows, labels, seed)
    if taken is None:
        taken = np.zeros(len(dataset), dtype=bool)
        taken[labeled_rows] = True
    needs = set(strategy.needs) | ({"shapley"} if settings.selection_stats else set())
    start = time.perf_counter()
    outputs = pool_outputs(model, dataset, np.asarray(taken, dtype=bool), needs, batch_size=settings.batch_size,
                           mc_passes=settings.mc_passes, seed=seed)
    seconds["infer_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    rows = strategy.select(outputs, budget, seed=seed)
    seconds["query_seconds"] = time.perf_counter() - start
    balance = selection_balance(outputs, rows, dataset.modalities) if settings.selection_stats else {}
    next_model = None
    if oracle is not None:
        all_rows = np.concatenate([labeled_rows, rows])
        order = np.argsort(all_rows, kind="stable")
        all_labels = np.concatenate([labels, np.asarray(oracle(rows), dtype=np.int64)])
        next_model, seconds["train_seconds"] = train_model(settings, dataset, all_rows[order], all_labels[order], seed)
    return RoundResult(rows, outputs, balance, model, next_model, seconds)
