"""Configuration of a run, validated by pydantic: unknown keys, wrong types and out-of-range values are errors.

Configs carry names (dataset, strategy, trainer, encoders); `bmmal.resolve` checks those against the registries.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bmmal.errors import BmmalError, did_you_mean
from bmmal.storage import read_text


class Strict(BaseModel):
    """A settings model: unknown keys, non-finite floats and true/false where a number belongs are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML's `true`/`false` would pass as 1/0 where a number belongs; only a yes/no setting takes them."""
        if info.field_name is not None and _holds_bool(value) and not _admits_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError("expected a number or text, got true/false")
        return value


def _holds_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_bool(v) for v in value)
    return isinstance(value, dict) and any(_holds_bool(v) for v in value.values())


def _admits_bool(annotation: Any) -> bool:
    """Whether a field of type `annotation` may hold true/false anywhere (bool, Any, or a settings model that
    checks its own fields)."""
    if annotation is bool or annotation is Any or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return True
    return any(_admits_bool(a) for a in get_args(annotation))


class DatasetConfig(Strict):
    name: str = "mfeat"
    modalities: tuple[str, ...] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("modalities")
    @classmethod
    def _some_modalities(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("name at least one modality (or leave modalities out for all of them)")
        if value is not None and len(set(value)) != len(value):
            raise ValueError("a modality is listed twice")
        return value

    @field_validator("options")
    @classmethod
    def _no_run_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        """`name`, `modalities` and `seed` are passed to every loader by the run itself: as options they would clash."""
        where = {"name": "give it as the dataset's `name`, beside `options`",
                 "modalities": "give them as the dataset's `modalities`, beside `options`",
                 "seed": "the seed is `seed` of a run or `seeds` of a benchmark"}
        for key in sorted(where.keys() & value.keys()):
            raise ValueError(f"{key!r} is not a dataset option: {where[key]}")
        return value


class ModelConfig(Strict):
    fusion: Literal["concat", "sum"] = "concat"
    encoder: str | dict[str, str] = "mlp"  # one kind for all modalities, or modality -> kind
    hidden_dims: tuple[PositiveInt, ...] = (128,)
    embed_dim: PositiveInt = 64
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    encoder_options: dict[str, dict[str, Any]] = Field(default_factory=dict)  # modality -> options
    head_init: Literal["torch", "xavier"] = "torch"  # xavier: the reference's heads (Xavier-uniform, bias 0.01)
    absent: Literal["zeros", "learned"] = "learned"  # a missing modality: zero embedding (+ learned logit offset)

    def encoder_kind(self, modality: str) -> str:
        return self.encoder if isinstance(self.encoder, str) else self.encoder.get(modality, "mlp")


class TrainConfig(Strict):
    epochs: PositiveInt = 100
    batch_size: PositiveInt = 32
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    encoder_lr: dict[str, float] = Field(default_factory=dict)  # modality -> learning rate of its encoder
    weight_decay: float = Field(1e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    fused_loss_weight: float = Field(1.0, ge=0)
    unimodal_loss_weight: float = Field(1.0, ge=0)
    device: str = "auto"
    betas: tuple[float, float] = (0.9, 0.999)  # Adam/AdamW
    lr_milestones: tuple[PositiveInt, ...] = ()  # epochs at which the learning rates are multiplied by lr_gamma
    lr_gamma: float = Field(0.1, gt=0)
    warmup_epochs: int = Field(0, ge=0)  # linear warm-up per optimiser step over the first warmup_epochs epochs
    amp: Literal["off", "bf16", "fp16"] = "off"  # mixed precision, on CUDA only
    num_workers: int = Field(0, ge=0)  # worker processes decoding batches of file-backed datasets
    trainer: str = "joint"  # the per-batch step: a name from bmmal.trainers.available()
    trainer_params: dict[str, Any] = Field(default_factory=dict)  # that trainer's hyper-parameters


class TrackingConfig(Strict):
    """Where every round's metrics are logged besides metrics.csv (`bmmal.tracking`)."""

    to: tuple[Literal["tensorboard", "mlflow"], ...] = ()
    mlflow_uri: str | None = None  # default: the SQLite file mlflow.db in the run directory
    experiment: str | None = None  # the MLflow experiment; default "bmmal"
    run_name: str | None = None  # the MLflow run; default the run directory's name

    @model_validator(mode="before")
    @classmethod
    def _names_only(cls, value: Any) -> Any:
        """`tracking: [tensorboard, mlflow]` (or "tensorboard,mlflow") is short for `tracking: {to: [...]}`."""
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",") if name.strip()]
        return {"to": value} if isinstance(value, (list, tuple)) else value


class RunConfig(Strict):
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    strategy: str = "bmmal"
    strategy_params: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(0, ge=0)
    initial_budget: PositiveInt = 20
    budget: PositiveInt = 20
    rounds: int = Field(5, ge=0, description="rounds after round 0")
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    mc_passes: PositiveInt = 10
    selection_stats: bool = True  # Shapley balance of each selected batch (costs one 2^M-coalition pass)
    eval_batch_size: PositiveInt = 1024
    probes: bool = Field(False, description="also measure each modality's linear-probe test accuracy (a logistic "
                                            "regression on its embeddings of the labeled rows) every round")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)  # TensorBoard, MLflow

    def labels_needed(self) -> int:
        return self.initial_budget + self.rounds * self.budget


def one_line(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """The first validation problem as one readable line; an unknown key is named with the closest valid key
    of `model` at that place."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden" and model is not None:
        key, keys = first["loc"][-1], _keys_at(model, first["loc"][:-1])
        msg = f"unknown key {key!r}" + (did_you_mean(key, keys) or f"; valid keys: {', '.join(keys)}")
    extra = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {msg}{extra}"


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The settings a config `model` accepts in the mapping at `loc` (e.g. ("datasets", "syn") of a
    benchmark: those of a DatasetConfig); [] where that is not a settings model."""
    annotation: Any = model
    for part in loc:
        annotation = _inner(annotation, part)
    models = [a for a in _alternatives(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return list(models[0].model_fields) if models else []


def _alternatives(annotation: Any) -> tuple:
    return get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)


def _inner(annotation: Any, part: Any) -> Any:
    """The type of `annotation[part]`: a field of a settings model, a value of a dict, an item of a list."""
    for option in _alternatives(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel) and part in option.model_fields:
            return option.model_fields[part].annotation
        if get_origin(option) is dict:
            return get_args(option)[1]
        if get_origin(option) in (list, tuple) and isinstance(part, int):
            return get_args(option)[0]
    return None


def parse_config(data: Any, model: type[BaseModel] = RunConfig, source: str = "config"):
    if not isinstance(data, dict):
        raise BmmalError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BmmalError(f"{source}: {one_line(e, model)}") from None


PATH_OPTIONS = ("path", "root", "cache_dir")  # dataset options (and options.frozen keys) naming files or folders


def load_yaml(path: str | Path) -> Any:
    """A YAML config file; the relative paths among its dataset options are made absolute against the
    file's folder, so a config means the same data wherever it is run from (docs/data.md)."""
    path = Path(path)
    if path.is_dir():
        raise BmmalError(f"{path} is a folder; give the YAML config file in it")
    if not path.is_file():
        raise BmmalError(f"config file not found: {path.absolute()}")
    try:
        data = yaml.load(read_text(path), Loader=UniqueKeyLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}" if mark else ""
        raise BmmalError(f"{path}: not valid YAML ({e.problem or e.context}{where})") from None
    except yaml.YAMLError as e:
        raise BmmalError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    return resolve_dataset_paths(data, path.absolute().parent)


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error instead of the last one
    silently winning (a key that overrides one merged in with `<<:` is fine)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be overridden here
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def resolve_dataset_paths(data: Any, folder: Path) -> Any:
    """`data` (a run or benchmark config) with each dataset's relative `PATH_OPTIONS` joined to `folder`."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    if isinstance(data.get("dataset"), dict):
        out["dataset"] = _dataset_paths(data["dataset"], folder)
    if isinstance(data.get("datasets"), dict):
        out["datasets"] = {k: _dataset_paths(v, folder) for k, v in data["datasets"].items()}
    elif isinstance(data.get("datasets"), list):
        out["datasets"] = [_dataset_paths(v, folder) for v in data["datasets"]]
    return out


def _dataset_paths(dataset: Any, folder: Path) -> Any:
    if not isinstance(dataset, dict) or not isinstance(dataset.get("options"), dict):
        return dataset
    options = _joined(dataset["options"], folder)
    if isinstance(options.get("frozen"), dict):
        options["frozen"] = _joined(options["frozen"], folder)
    return {**dataset, "options": options}


def _joined(options: dict, folder: Path) -> dict:
    def join(value):
        if not isinstance(value, str) or not value:
            return value
        expanded = Path(value).expanduser()
        return value if expanded.is_absolute() else os.path.normpath(folder / expanded)

    return {k: join(v) if k in PATH_OPTIONS else v for k, v in options.items()}


def load_run_config(path: str | Path) -> RunConfig:
    return parse_config(load_yaml(path), RunConfig, str(path))
