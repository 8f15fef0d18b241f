"""RunDirectory: the files of one active-learning run, and the shared round-0 cache. Nothing else reads them by name.

A run directory holds, after every completed round:
- config.yaml   the run's configuration;
- state.json    labeled ids with their labels and rounds, the per-round metrics, seeds, and the name of
                the current model checkpoint (the commit point: written last, atomically);
- model-rNNN.pt the model trained at the last completed round;
- metrics.csv   the per-round metrics (derived from state.json).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
import yaml

from bmmal.config import RunConfig, load_run_config
from bmmal.errors import BmmalError, BmmalWarning
from bmmal.storage import atomic_write, atomic_write_json, atomic_write_text, read_json

STATE_VERSION = 1
STATE_KEYS = ("version", "completed_round", "checkpoint", "pool", "history")


def fingerprint(config: RunConfig) -> str:
    """Identifies a run's settings; stored in its state and checkpoints so that foreign files are refused."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


def save_model(path: Path, model, **tags) -> None:
    """The model's weights, with `tags` (fingerprint, round) stored beside them."""
    atomic_write(path, lambda f: torch.save({**tags, "state_dict": model.state_dict()}, f))


def load_checkpoint(path: Path) -> dict:
    """{"state_dict": weights, and the stored tags}; BmmalError for a missing or unreadable file."""
    if not path.is_file():
        raise BmmalError(f"{path} is missing")
    try:
        data = torch.load(path, weights_only=True, map_location="cpu")
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise BmmalError(f"{path} is damaged ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise BmmalError(f"{path} is damaged (not a checkpoint)")
    return data if "state_dict" in data else {"state_dict": data}  # a checkpoint written before tags



def _differences(held: dict, wanted: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, as 'key: held -> wanted'."""
    out = []
    for key in dict.fromkeys([*held, *wanted]):
        a, b = held.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def metrics_csv(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class RunDirectory:
    CONFIG = "config.yaml"
    STATE = "state.json"
    METRICS = "metrics.csv"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._config: RunConfig | None = None  # config.yaml as read back (written once, by create)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    def holds_run(self) -> bool:
        return (self.path / self.CONFIG).is_file()

    def check_new(self) -> None:
        """Refuse a directory that holds a run or anything else."""
        if self.holds_run():
            raise BmmalError(f"{self.path} already holds a run; continue it with `bmmal resume {self.path}`")
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise BmmalError(f"{self.path} is not empty and holds no run; choose a new directory")

    def create(self, config: RunConfig) -> None:
        self.check_new()
        atomic_write_text(self.path / self.CONFIG, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))

    def config(self) -> RunConfig:
        """config.yaml, read and checked once (state and checkpoints are checked against it every round)."""
        if self._config is None:
            if not self.holds_run():
                raise BmmalError(f"{self.path} is not a run directory (no {self.CONFIG})")
            self._config = load_run_config(self.path / self.CONFIG)
        return self._config

    def _start_over(self) -> str:
        return f"; to start this run again, delete {self.path}"

    def state(self) -> dict | None:
        """The last committed state, or None before round 0 was committed. Refuses a damaged state file and
        one written for other settings than config.yaml's."""
        path = self.path / self.STATE
        if not path.is_file():
            return None
        try:
            state = read_json(path)
        except BmmalError as e:
            raise BmmalError(f"{e}{self._start_over()}") from None
        missing = [k for k in STATE_KEYS if k not in state] if isinstance(state, dict) else ["everything"]
        if missing:
            raise BmmalError(f"{path} is damaged (no {missing[0]}){self._start_over()}")
        if state["version"] != STATE_VERSION:
            raise BmmalError(f"{path}: state version {state['version']} is not {STATE_VERSION}{self._start_over()}")
        if "fingerprint" in state and state["fingerprint"] != fingerprint(self.config()):
            raise BmmalError(f"{path} belongs to another run (written for other settings than {self.CONFIG})"
                             f"{self._start_over()}")
        return state

    def completed_round(self) -> int:
        state = self.state()
        return -1 if state is None else int(state["completed_round"])

    def history(self) -> list[dict]:
        state = self.state()
        return [] if state is None else state["history"]

    def model_weights(self, state: dict) -> dict:
        """The weights of the checkpoint `state` names, checked to belong to this run and round."""
        path = self.path / str(state["checkpoint"])
        try:
            data = load_checkpoint(path)
        except BmmalError as e:
            raise BmmalError(f"{e}; {self.STATE} names it as the model of round {state['completed_round']}"
                             f"{self._start_over()}") from None
        if data.get("fingerprint", state.get("fingerprint")) != state.get("fingerprint") or \
                data.get("round", state["completed_round"]) != state["completed_round"]:
            raise BmmalError(f"{path} belongs to another run or round than {self.STATE}{self._start_over()}")
        return data["state_dict"]

    def status(self, config: RunConfig) -> str:
        """'new', 'resume' or 'done' for a run of `config`; refuses a directory holding another run."""
        if not self.holds_run():
            self.check_new()
            return "new"
        held = self.config().model_copy(update={"tracking": config.tracking})  # tracking is not a setting
        if held != config:
            differ = _differences(held.model_dump(mode="json"), config.model_dump(mode="json"))
            raise BmmalError(f"{self.path} holds a run with other settings ({', '.join(differ[:3])}"
                             f"{', ...' if len(differ) > 3 else ''})")
        return "done" if self.completed_round() >= config.rounds else "resume"

    def commit(self, round_index: int, model, state: dict, history: list[dict]) -> None:
        """Write the checkpoint, then the state (the commit point), then derived files; drop old checkpoints."""
        checkpoint = f"model-r{round_index:03d}.pt"
        tag = fingerprint(self.config())
        save_model(self.path / checkpoint, model, fingerprint=tag, round=round_index)
        atomic_write_json(self.path / self.STATE, {"version": STATE_VERSION, "completed_round": round_index,
                                                    "fingerprint": tag, **state, "checkpoint": checkpoint,
                                                    "history": history})
        atomic_write_text(self.path / self.METRICS, metrics_csv(history))
        for old in self.path.glob("model-r*.pt"):
            if old.name != checkpoint:
                old.unlink()


class Round0Cache:
    """Round-0 models and metrics shared by every strategy of one seed, keyed by what round 0 depends on."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def key(config: RunConfig) -> str:
        """What round 0 depends on: data, seed, initial budget, model and training settings."""
        relevant = {"dataset": config.dataset.model_dump(mode="json"), "seed": config.seed,
                    "initial_budget": config.initial_budget, "model": config.model.model_dump(mode="json"),
                    "train": config.train.model_dump(mode="json"), "version": STATE_VERSION,
                    **({"probes": True} if config.probes else {})}  # the cached metrics then hold the probes
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]

    def holds(self, config: RunConfig) -> bool:
        return (self.root / self.key(config) / "round0.json").is_file()

    def load(self, config: RunConfig) -> tuple[dict, dict] | None:
        """(model weights, round-0 metrics), or None when not cached (a damaged entry is recomputed)."""
        if not self.holds(config):
            return None
        folder = self.root / self.key(config)
        try:
            return load_checkpoint(folder / "model.pt")["state_dict"], read_json(folder / "round0.json")["metrics"]
        except (BmmalError, KeyError, TypeError) as e:
            warnings.warn(f"round-0 cache entry {folder} is damaged ({e}); training round 0 again", BmmalWarning,
                          stacklevel=2)
            return None

    def store(self, config: RunConfig, model, ids: list[str], metrics: dict) -> None:
        folder = self.root / self.key(config)
        save_model(folder / "model.pt", model)
        atomic_write_json(folder / "round0.json", {"ids": ids, "metrics": metrics})
