"""ActiveLearner: rounds of infer -> select -> label -> retrain -> evaluate, persisted and resumable.

A run directory holds, after every completed round:
- config.yaml   the run's configuration;
- state.json    labelled ids with their labels and rounds, the per-round metrics, seeds, and the
                name of the current model checkpoint (the commit point: written last, atomically);
- model-rNNN.pt the model trained at the last completed round;
- metrics.csv   the per-round metrics (derived from state.json).

Round 0 is a random initial set drawn from the seed alone, so every strategy of the same seed starts
from the same labelled set and the same model; with `round0_cache` that model is trained once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml

from bmmal import datasets, strategies
from bmmal.config import RunConfig, load_run_config
from bmmal.contribution import contribution_shares, shapley
from bmmal.data import UNLABELED, MultimodalDataset
from bmmal.errors import BmmalError
from bmmal.metrics import evaluate
from bmmal.models import Trainer, build_model
from bmmal.outputs import infer
from bmmal.pool import Pool
from bmmal.storage import atomic_write, atomic_write_json, atomic_write_text, read_json

CONFIG_FILE = "config.yaml"
STATE_FILE = "state.json"
METRICS_FILE = "metrics.csv"
STATE_VERSION = 1


def round_seed(seed: int, round_index: int) -> int:
    """The seed of one round (model initialisation, training order, selection), shared by all strategies."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, round_index]).generate_state(1)[0])


def load_checked(config: RunConfig) -> tuple[MultimodalDataset, MultimodalDataset]:
    train, test = datasets.load(config.dataset.name, config.dataset.modalities, seed=config.seed,
                                **config.dataset.options)
    for split in (train, test):
        if hasattr(split, "check_finite"):
            split.check_finite()
    if (np.asarray(train.labels) == UNLABELED).any():
        raise BmmalError(f"dataset {config.dataset.name!r} has unlabelled training samples; the simulated "
                         "oracle needs every label (use a labelling project for real annotation)")
    if config.labels_needed() > len(train):
        raise BmmalError(f"{config.rounds} rounds of {config.budget} after an initial {config.initial_budget} "
                         f"need {config.labels_needed()} labels, but the training pool has {len(train)} samples")
    return train, test


def selection_balance(outputs, selected: np.ndarray, modalities: tuple[str, ...]) -> dict[str, float]:
    """Dominant-modality shares and mean contribution gap of the selected rows and of the unlabelled pool."""
    candidates = outputs.unlabeled_rows
    phi = outputs.shapley if outputs.shapley is not None else shapley(outputs.fuse, outputs.embeddings)
    shares = contribution_shares(phi[candidates], outputs.probs[candidates].argmax(1)).numpy()
    is_selected = np.isin(candidates, selected)
    dominant = shares.argmax(1)
    gap = shares.max(1) - shares.min(1)
    stats = {"selected_contribution_gap": float(gap[is_selected].mean()),
             "pool_contribution_gap": float(gap.mean())}
    for i, m in enumerate(modalities):
        stats[f"selected_dominant_share:{m}"] = float((dominant[is_selected] == i).mean())
        stats[f"pool_dominant_share:{m}"] = float((dominant == i).mean())
        stats[f"selected_contribution:{m}"] = float(shares[is_selected, i].mean())
    return stats


def round0_key(config: RunConfig) -> str:
    """What round 0 depends on: data, seed, initial budget, model and training settings."""
    relevant = {"dataset": config.dataset.model_dump(mode="json"), "seed": config.seed,
                "initial_budget": config.initial_budget, "model": config.model.model_dump(mode="json"),
                "train": config.train.model_dump(mode="json"), "version": STATE_VERSION}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def save_model(path: Path, model) -> None:
    atomic_write(path, lambda f: torch.save(model.state_dict(), f))


def metrics_csv(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class ActiveLearner:
    """Runs (or resumes) one active-learning run: one dataset, one strategy, one seed."""

    def __init__(self, config: RunConfig, run_dir: str | Path, round0_cache: str | Path | None = None,
                 on_round: Callable[[dict], None] | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.round0_cache = Path(round0_cache) if round0_cache else None
        self.on_round = on_round or (lambda row: None)
        self.strategy = strategies.get(config.strategy, **config.strategy_params)
        self.train_set, self.test_set = load_checked(config)
        self.trainer = Trainer(config.train)
        self.pool = Pool(self.train_set.ids)
        self.history: list[dict] = []
        self.model = None
        self._resumed = False

    # ---- persistence -------------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path, **kwargs) -> ActiveLearner:
        run_dir = Path(run_dir)
        if not (run_dir / CONFIG_FILE).is_file():
            raise BmmalError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
        learner = cls(load_run_config(run_dir / CONFIG_FILE), run_dir, **kwargs)
        learner._restore()
        learner._resumed = True
        return learner

    def _restore(self) -> None:
        state_path = self.run_dir / STATE_FILE
        if not state_path.is_file():
            return  # interrupted before round 0 finished: start again
        state = read_json(state_path)
        if state.get("version") != STATE_VERSION:
            raise BmmalError(f"{state_path}: state version {state.get('version')} is not {STATE_VERSION}")
        self.pool = Pool.from_state_dict(self.train_set.ids, state["pool"])
        self.history = state["history"]
        self.model = build_model(self.config.model, self.train_set, seed=0)
        self.model.load_state_dict(torch.load(self.run_dir / state["checkpoint"], weights_only=True))
        self.model.to(self.trainer.device).eval()

    def _commit(self, round_index: int) -> None:
        """Write the checkpoint, then the state (the commit point), then derived files; drop old checkpoints."""
        checkpoint = f"model-r{round_index:03d}.pt"
        save_model(self.run_dir / checkpoint, self.model)
        atomic_write_json(self.run_dir / STATE_FILE, {
            "version": STATE_VERSION, "completed_round": round_index, "seed": self.config.seed,
            "round_seeds": [round_seed(self.config.seed, r) for r in range(round_index + 1)],
            "checkpoint": checkpoint, "pool": self.pool.state_dict(), "history": self.history,
        })
        atomic_write_text(self.run_dir / METRICS_FILE, metrics_csv(self.history))
        for old in self.run_dir.glob("model-r*.pt"):
            if old.name != checkpoint:
                old.unlink()

    @property
    def completed_round(self) -> int:
        return len(self.history) - 1

    # ---- the rounds --------------------------------------------------------------------------
    def _train(self, seed: int):
        rows = self.pool.labeled_rows
        model = build_model(self.config.model, self.train_set, seed)
        start = time.perf_counter()
        self.trainer.fit(model, self.train_set, rows, self.pool.labels[rows], seed)
        return model, time.perf_counter() - start

    def _record(self, round_index: int, train_seconds: float, extra: dict) -> dict:
        row = {"round": round_index, "n_labeled": self.pool.n_labeled,
               **evaluate(self.model, self.test_set, self.config.eval_batch_size),
               "train_seconds": train_seconds, **extra}
        self.history.append(row)
        return row

    def _round0(self) -> None:
        seed = round_seed(self.config.seed, 0)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(self.pool), size=self.config.initial_budget, replace=False))
        self.pool.label(rows, self.train_set.labels[rows], 0)
        cache = self.round0_cache / round0_key(self.config) if self.round0_cache else None
        if cache and (cache / "round0.json").is_file():
            self.model = build_model(self.config.model, self.train_set, seed)
            self.model.load_state_dict(torch.load(cache / "model.pt", weights_only=True))
            self.model.to(self.trainer.device).eval()
            row = read_json(cache / "round0.json")["metrics"]
            self.history.append(row)
        else:
            self.model, seconds = self._train(seed)
            row = self._record(0, seconds, {})
            if cache:
                save_model(cache / "model.pt", self.model)
                atomic_write_json(cache / "round0.json", {"ids": self.pool.ids[rows].tolist(), "metrics": row})
        self._commit(0)
        self.on_round(row)

    def _next_round(self, round_index: int) -> None:
        seed = round_seed(self.config.seed, round_index)
        needs = set(self.strategy.needs) | ({"embeddings", "fuse"} if self.config.selection_stats else set())
        start = time.perf_counter()
        outputs = infer(self.model, self.train_set, self.pool.labeled, needs, self.config.mc_passes, seed,
                        self.config.eval_batch_size)
        infer_seconds = time.perf_counter() - start
        start = time.perf_counter()
        rows = self.strategy.select(outputs, self.config.budget, seed=seed)
        query_seconds = time.perf_counter() - start
        balance = selection_balance(outputs, rows, self.train_set.modalities) if self.config.selection_stats else {}
        self.pool.label(rows, self.train_set.labels[rows], round_index)
        self.model, train_seconds = self._train(seed)
        row = self._record(round_index, train_seconds,
                           {"infer_seconds": infer_seconds, "query_seconds": query_seconds, **balance})
        self._commit(round_index)
        self.on_round(row)

    def run(self) -> list[dict]:
        """Run the remaining rounds; returns the per-round metrics of the whole run."""
        if not self._resumed:
            if (self.run_dir / CONFIG_FILE).is_file():
                raise BmmalError(f"{self.run_dir} already holds a run; continue it with `bmmal resume {self.run_dir}`")
            if self.run_dir.exists() and any(self.run_dir.iterdir()):
                raise BmmalError(f"{self.run_dir} is not empty and holds no run; choose a new directory")
            atomic_write_text(self.run_dir / CONFIG_FILE,
                              yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False))
        if self.completed_round < 0:
            self._round0()
        for round_index in range(self.completed_round + 1, self.config.rounds + 1):
            self._next_round(round_index)
        return self.history
