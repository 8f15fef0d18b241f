"""A benchmark grid: datasets x settings x strategies x seeds, expanded into validated cells.

A benchmark config names its datasets (label -> dataset config), its strategies, its seeds, the run
settings shared by every cell (`base`: budgets, rounds, model, training) and optional settings axes
(axis -> value label -> overrides of `base`); the cells are the product of datasets, the product of
the axes' values, strategies and seeds. Every cell is a full `RunConfig`, validated before any work.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from bmmal.config import DatasetConfig, RunConfig, Strict, load_yaml, parse_config
from bmmal.errors import BmmalError
from bmmal.resolve import check_run_config, check_strategy_names, load_run_data

DEFAULT_SETTING = "default"
_RESERVED = {"dataset", "strategy", "seed"}  # set by the grid's own axes


class BenchmarkConfig(Strict):
    name: str = "benchmark"
    datasets: dict[str, DatasetConfig]
    strategies: list[str]
    seeds: int | list[int] = Field(description="a number of seeds (0..n-1) or the list of seeds")
    base: dict[str, Any] = Field(default_factory=dict, description="RunConfig settings shared by all cells")
    settings: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description="axis -> value label -> RunConfig overrides of base")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        """The name becomes a folder under benchmarks/runs: one plain path component."""
        if not value or value in (".", "..") or any(c in value for c in "/\\\0") or value != value.strip():
            raise ValueError(f"{value!r} is not a plain folder name (no '/', '\\', '..' or surrounding spaces)")
        return value

    @field_validator("datasets", mode="before")
    @classmethod
    def _label_datasets(cls, value):
        """A list of dataset configs (or names) is labelled by name and modalities."""
        if not isinstance(value, list):
            return value
        labeled = {}
        for entry in value:
            entry = {"name": entry} if isinstance(entry, str) else entry
            if not isinstance(entry, dict):
                raise ValueError("each dataset must be a name or a mapping")  # noqa: TRY004 (pydantic: ValueError)
            label = "-".join([str(entry.get("name", "mfeat")), *map(str, entry.get("modalities") or ())])
            if label in labeled:
                raise ValueError(f"dataset {label!r} is listed twice")
            labeled[label] = entry
        return labeled

    @field_validator("datasets")
    @classmethod
    def _some_datasets(cls, value):
        if not value:
            raise ValueError("name at least one dataset")
        return value

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, value):
        return check_strategy_names(value)

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, value):
        if isinstance(value, int) and value < 1:
            raise ValueError(f"need at least one seed, got {value}")
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("list at least one seed, each once")
        if isinstance(value, list) and min(value) < 0:
            raise ValueError(f"a seed is a non-negative integer, got {min(value)}")
        return value

    @field_validator("base")
    @classmethod
    def _no_grid_keys(cls, value):
        clash = _RESERVED & set(value)
        if clash:
            raise ValueError(f"{', '.join(sorted(clash))} is set by the grid, not by base")
        return value

    @field_validator("settings")
    @classmethod
    def _axes(cls, value):
        for axis, values in value.items():
            if not values:
                raise ValueError(f"settings axis {axis!r} has no values")
            for label, overrides in values.items():
                clash = _RESERVED & set(overrides)
                if clash:
                    raise ValueError(f"settings {axis}={label}: {', '.join(sorted(clash))} is set by the grid")
        return value

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def setting_overrides(self) -> dict[str, dict[str, Any]]:
        """Setting label ("axis=value,axis=value", or "default" without axes) -> merged overrides."""
        if not self.settings:
            return {DEFAULT_SETTING: {}}
        axes = list(self.settings.items())
        combos = {}
        for choice in itertools.product(*(list(values.items()) for _, values in axes)):
            label = ",".join(f"{axis}={value}" for (axis, _), (value, _) in zip(axes, choice))
            merged: dict[str, Any] = {}
            for _, overrides in choice:
                merged = deep_merge(merged, overrides)
            combos[label] = merged
        return combos


def deep_merge(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied; nested mappings are merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class Cell:
    """One run of the grid; `path` is its run directory relative to the benchmark directory."""

    dataset: str
    setting: str
    strategy: str
    seed: int
    config: RunConfig

    @property
    def key(self) -> tuple[str, str, str, int]:
        return self.dataset, self.setting, self.strategy, self.seed

    @property
    def path(self) -> Path:
        return Path("runs") / _safe(self.dataset) / _safe(self.setting) / self.strategy / f"seed{self.seed}"

    @property
    def label(self) -> str:
        setting = "" if self.setting == DEFAULT_SETTING else f" [{self.setting}]"
        return f"{self.dataset}{setting} {self.strategy} seed {self.seed}"


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=+," else "_" for c in label)


def expand(config: BenchmarkConfig) -> list[Cell]:
    """All cells, validated as RunConfigs (unknown names, wrong types and strategy parameters fail here)."""
    cells = []
    for (dataset, data), (setting, overrides) in itertools.product(config.datasets.items(),
                                                                    config.setting_overrides().items()):
        fields = deep_merge(config.base, overrides)
        for strategy in config.strategies:
            for seed in config.seed_list():
                source = f"{config.name}: cell {dataset}/{setting}/{strategy}/seed{seed}"
                run = parse_config({**fields, "dataset": data.model_dump(), "strategy": strategy, "seed": seed},
                                   RunConfig, source)
                check_run_config(run, source)
                cells.append(Cell(dataset, setting, strategy, seed, run))
    return cells


def check_cells(cells: list[Cell]) -> None:
    """What the names alone do not tell: that every dataset has the labels the rounds need (each distinct
    dataset is loaded once)."""
    sizes = {}
    for cell in cells:
        data_key = cell.config.dataset.model_dump_json()
        if data_key not in sizes:
            train, _ = load_run_data(cell.config.model_copy(update={"rounds": 0, "initial_budget": 1}))
            sizes[data_key] = len(train)
        if cell.config.labels_needed() > sizes[data_key]:
            c = cell.config
            raise BmmalError(f"{cell.label}: {c.rounds} rounds of {c.budget} after an initial {c.initial_budget} "
                             f"need {c.labels_needed()} labels, but the training pool of {cell.dataset!r} has "
                             f"{sizes[data_key]} samples")


def load_benchmark_config(path: str | Path) -> BenchmarkConfig:
    return parse_config(load_yaml(path), BenchmarkConfig, str(path))


def plan(config: BenchmarkConfig) -> list[Cell]:
    """Expand and check the whole grid: the one place a bad benchmark config is refused."""
    cells = expand(config)
    check_cells(cells)
    return cells
