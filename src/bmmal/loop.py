"""ActiveLearner: the simulated-oracle loop of rounds (select -> label -> retrain -> evaluate), persisted in a
`RunDirectory` after every round and resumable.

Round 0 is a random initial set drawn from the seed alone, so every strategy of the same seed starts
from the same labeled set and the same model; with `round0_cache` that model is trained once.
Each later round is one `bmmal.rounds.run_round` with the test labels as the oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from bmmal.config import RunConfig
from bmmal.metrics import evaluate
from bmmal.pool import Pool
from bmmal.resolve import load_run_data, resolve_strategy
from bmmal.rounds import RoundSettings, load_model, round_seed, run_round, train_model
from bmmal.rundir import Round0Cache, RunDirectory
from bmmal.tracking import tracked


def round_settings(config: RunConfig) -> RoundSettings:
    return RoundSettings(config.model, config.train, config.mc_passes, config.eval_batch_size, config.selection_stats)


class ActiveLearner:
    """Runs (or resumes) one active-learning run: one dataset, one strategy, one seed."""

    def __init__(self, config: RunConfig, run_dir: str | Path, round0_cache: str | Path | None = None,
                 on_round: Callable[[dict], None] | None = None):
        self.config = config
        self.run_dir = RunDirectory(run_dir)
        self.round0_cache = Round0Cache(round0_cache) if round0_cache else None
        self.on_round = on_round or (lambda row: None)
        self.strategy = resolve_strategy(config.strategy, config.strategy_params)
        self.settings = round_settings(config)
        self.train_set, self.test_set = load_run_data(config)
        self.pool = Pool(self.train_set.ids)
        self.history: list[dict] = []
        self.model = None
        self._resumed = False

    @classmethod
    def resume(cls, run_dir: str | Path, **kwargs) -> ActiveLearner:
        directory = RunDirectory(run_dir)
        learner = cls(directory.config(), run_dir, **kwargs)
        state = directory.state()
        if state is not None:  # else interrupted before round 0 was committed: start again
            learner.pool = Pool.from_state_dict(learner.train_set.ids, state["pool"])
            learner.history = state["history"]
            learner.model = load_model(learner.settings, learner.train_set, directory.model_weights(state))
        learner._resumed = True
        return learner

    def _commit(self, round_index: int) -> None:
        self.run_dir.commit(round_index, self.model, {
            "seed": self.config.seed, "round_seeds": [round_seed(self.config.seed, r) for r in range(round_index + 1)],
            "pool": self.pool.state_dict()}, self.history)

    @property
    def completed_round(self) -> int:
        return len(self.history) - 1

    def _record(self, round_index: int, extra: dict) -> dict:
        row = {"round": round_index, "n_labeled": self.pool.n_labeled,
               **evaluate(self.model, self.test_set, self.config.eval_batch_size,
                          probe_on=(self.train_set, self.pool.labeled_rows) if self.config.probes else None), **extra}
        self.history.append(row)
        return row

    def _round0(self) -> None:
        seed = round_seed(self.config.seed, 0)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(self.pool), size=self.config.initial_budget, replace=False))
        self.pool.label(rows, self.train_set.labels[rows], 0)
        cached = self.round0_cache.load(self.config) if self.round0_cache else None
        if cached:
            self.model = load_model(self.settings, self.train_set, cached[0])
            row = cached[1]
            self.history.append(row)
        else:
            self.model, seconds = train_model(self.settings, self.train_set, rows, self.train_set.labels[rows], seed)
            row = self._record(0, {"train_seconds": seconds})
            if self.round0_cache:
                self.round0_cache.store(self.config, self.model, self.pool.ids[rows].tolist(), row)
        self._commit(0)
        self.on_round(row)

    def _next_round(self, round_index: int) -> None:
        seed = round_seed(self.config.seed, round_index)
        rows = self.pool.labeled_rows
        result = run_round(self.settings, self.train_set, self.strategy, rows, self.pool.labels[rows],
                           self.config.budget, seed, model=self.model, oracle=lambda new: self.train_set.labels[new])
        self.pool.label(result.rows, self.train_set.labels[result.rows], round_index)
        self.model = result.next_model
        s = result.seconds
        row = self._record(round_index, {"train_seconds": s["train_seconds"], "infer_seconds": s["infer_seconds"],
                                         "query_seconds": s["query_seconds"], **result.balance})
        self._commit(round_index)
        self.on_round(row)

    def run(self) -> list[dict]:
        """Run the remaining rounds; returns the per-round metrics of the whole run."""
        if not self._resumed:
            self.run_dir.create(self.config)
        callback = self.on_round
        with tracked(self.config, self.run_dir.path, callback) as self.on_round:  # + TensorBoard, MLflow if asked
            if self.completed_round < 0:
                self._round0()
            for round_index in range(self.completed_round + 1, self.config.rounds + 1):
                self._next_round(round_index)
        self.on_round = callback
        return self.history
