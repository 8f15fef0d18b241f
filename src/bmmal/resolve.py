"""The one place where names in configs become objects: strategies, trainers, datasets and encoders.

Configs (`bmmal.config`) carry names and check only types and ranges; applications parse a config with
`run_config` / `load_run_config` here, which also checks every name (and the parameters that go with it)
through the registries, before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bmmal import config as cfg
from bmmal.errors import BmmalError, did_you_mean


def resolve_strategy(name: str, params: dict[str, Any] | None = None):
    """The strategy instance called `name` with `params`; a one-line error for an unknown name or bad parameters."""
    from bmmal import strategies

    return strategies.get(name, **(params or {}))


def resolve_trainer(name: str, params: dict[str, Any] | None = None):
    from bmmal import trainers

    return trainers.get(name, **(params or {}))


def check_strategy_names(names: list[str]) -> list[str]:
    """`names` if each is a known strategy, listed once; else a one-line error."""
    from bmmal import strategies

    if not names:
        raise BmmalError("name at least one strategy")
    if len(set(names)) != len(names):
        raise BmmalError("a strategy is listed twice")
    for name in names:
        strategies.strategy_class(name)
    return list(names)


def check_dataset_name(name: str) -> str:
    from bmmal import datasets

    if name not in datasets.available():
        raise BmmalError(f"unknown dataset {name!r}; available: {', '.join(datasets.available())}")
    return name


def check_encoders(model: cfg.ModelConfig) -> None:
    from bmmal.models import encoder_kinds

    kinds = [model.encoder] if isinstance(model.encoder, str) else list(model.encoder.values())
    for kind in kinds:
        if kind not in encoder_kinds():
            raise BmmalError(f"unknown encoder {kind!r}; available: {', '.join(encoder_kinds())}")


def check_device(device: str) -> None:
    """A one-line error for a device this machine does not have ("auto" always works)."""
    import torch

    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise BmmalError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise BmmalError(f"{device!r}, but CUDA is not available here (use auto or cpu)")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise BmmalError(f"{device!r}, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise BmmalError(f"{device!r}, but MPS is not available here (use auto or cpu)")
    if parsed.type not in ("cpu", "cuda", "mps"):
        raise BmmalError(f"unsupported device {device!r}; use auto, cpu, cuda, cuda:N or mps")


def check_modality_keys(config: cfg.RunConfig, modalities: tuple[str, ...]) -> None:
    """Settings keyed by modality (model.encoder, model.encoder_options, train.encoder_lr) name modalities
    the dataset has; a typo would otherwise be silently ignored."""
    keyed = {"model.encoder": config.model.encoder if isinstance(config.model.encoder, dict) else {},
             "model.encoder_options": config.model.encoder_options, "train.encoder_lr": config.train.encoder_lr}
    for where, settings in keyed.items():
        for key in settings:
            if key not in modalities:
                raise BmmalError(f"{where}: dataset {config.dataset.name!r} has no modality {key!r}"
                                 f"{did_you_mean(key, modalities)}; its modalities: {', '.join(modalities)}")


def _at(where: str, check, *args) -> None:
    try:
        check(*args)
    except BmmalError as e:
        raise BmmalError(f"{where}: {e}") from None


def check_run_config(config: cfg.RunConfig, source: str = "config") -> cfg.RunConfig:
    """`config` if every name in it resolves (dataset, strategy and its parameters, trainer and its
    parameters, encoder kinds); else a one-line error naming the setting."""
    try:
        _at("dataset.name", check_dataset_name, config.dataset.name)
        _at("strategy", resolve_strategy, config.strategy, config.strategy_params)
        _at("train.trainer", resolve_trainer, config.train.trainer, config.train.trainer_params)
        _at("model.encoder", check_encoders, config.model)
        _at("train.device", check_device, config.train.device)
    except BmmalError as e:
        raise BmmalError(f"{source}: {e}") from None
    return config


def run_config(data: Any, source: str = "config") -> cfg.RunConfig:
    """A RunConfig from parsed YAML/JSON data: types, ranges and names checked."""
    return check_run_config(cfg.parse_config(data, cfg.RunConfig, source), source)


def load_run_config(path: str | Path) -> cfg.RunConfig:
    return check_run_config(cfg.load_run_config(path), str(path))


def load_run_data(config: cfg.RunConfig):
    """(train, test) of the config's dataset, checked for what a simulated run needs: finite features, every
    training label known, and enough samples for the label schedule."""
    from bmmal import datasets
    from bmmal.data import UNLABELED

    train, test = datasets.load(config.dataset.name, config.dataset.modalities, seed=config.seed,
                                **config.dataset.options)
    for split in (train, test):
        if hasattr(split, "check_finite"):
            split.check_finite()
    check_modality_keys(config, tuple(train.modalities))
    if len(np.unique(np.asarray(train.labels))) < 2:
        raise BmmalError(f"dataset {config.dataset.name!r}: the training split has one class only; a classifier "
                         "needs at least two")
    if (np.asarray(train.labels) == UNLABELED).any():
        raise BmmalError(f"dataset {config.dataset.name!r} has unlabeled training samples; the simulated "
                         "oracle needs every label (use a labelling project for real annotation)")
    if config.labels_needed() > len(train):
        raise BmmalError(f"{config.rounds} rounds of {config.budget} after an initial {config.initial_budget} "
                         f"need {config.labels_needed()} labels, but the training pool has {len(train)} samples")
    return train, test
