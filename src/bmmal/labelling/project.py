"""A labelling project: a directory over a manifest of unlabelled multimodal samples.

    DIR/project.json   manifest path, classes, modalities, seed, model and training settings (written once)
    DIR/labels.db      the SQLite store: labels, queried batches, leases (see `store.py`)
    DIR/model.pt       the model trained by the last `bmmal query` that had labels
    DIR/model.json     its metrics on the held-out labels, modality balance, what it was trained on

The labels in the store are the truth; the manifest's label column only seeds them at `bmmal init`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from bmmal.config import ModelConfig, TrainConfig, parse_config
from bmmal.errors import BmmalError
from bmmal.labelling.samples import Samples
from bmmal.labelling.store import LabelStore
from bmmal.storage import atomic_write_json, read_json

PROJECT_FILE = "project.json"
DB_FILE = "labels.db"
MODEL_FILE = "model.pt"
MODEL_INFO_FILE = "model.json"
VERSION = 1


@dataclass
class Settings:
    """What a project is: written to project.json at init, read back unchanged."""

    manifest: str
    classes: tuple[str, ...]
    modalities: tuple[str, ...]
    seed: int = 0
    validation_fraction: float = 0.2  # share of the labels held out to measure the model ...
    min_labels_for_validation: int = 30  # ... once the project has at least this many labels
    lease_seconds: float = 600.0  # how long a browser session holds a sample it was shown
    extractors: dict[str, str] = field(default_factory=dict)  # modality -> feature extractor (default: by kind)
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields

    def to_json(self) -> dict:
        return {"version": VERSION, "manifest": self.manifest, "classes": list(self.classes),
                "modalities": list(self.modalities), "seed": self.seed,
                "validation_fraction": self.validation_fraction,
                "min_labels_for_validation": self.min_labels_for_validation, "lease_seconds": self.lease_seconds,
                "extractors": self.extractors, "model": self.model, "train": self.train}

    @classmethod
    def from_json(cls, data: dict, source: str) -> Settings:
        if data.get("version") != VERSION:
            raise BmmalError(f"{source}: project version {data.get('version')} is not {VERSION}")
        fields = {k: v for k, v in data.items() if k != "version"}
        fields["classes"], fields["modalities"] = tuple(fields["classes"]), tuple(fields["modalities"])
        return cls(**fields)

    def model_config(self) -> ModelConfig:
        return parse_config(self.model, ModelConfig, "project.json: model")

    def train_config(self) -> TrainConfig:
        return parse_config(self.train, TrainConfig, "project.json: train")


def parse_classes(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    classes = tuple(c.strip() for c in (text.split(",") if isinstance(text, str) else text))
    if any(not c for c in classes):
        raise BmmalError("class names must not be empty (give them as --classes a,b,c)")
    if len(classes) < 2:
        raise BmmalError(f"a labelling project needs at least 2 classes, got {len(classes)}")
    if len(set(classes)) != len(classes):
        raise BmmalError(f"class listed twice: {', '.join(classes)}")
    return classes


class Project:
    """An opened labelling project."""

    def __init__(self, directory: str | Path, read_only: bool = False):
        """`read_only`: only look (status, export): the label store is opened without any write lock."""
        self.dir = Path(directory)
        if not (self.dir / PROJECT_FILE).is_file():
            raise BmmalError(f"{self.dir} is not a labelling project (no {PROJECT_FILE}); create one with `bmmal init`")
        data = read_json(self.dir / PROJECT_FILE)  # not JSON: a one-line error naming the file
        try:
            if not isinstance(data, dict):
                raise TypeError(f"a {type(data).__name__}, not a mapping of settings")
            self.settings = Settings.from_json(data, str(self.dir / PROJECT_FILE))
        except BmmalError:
            raise
        except (ValueError, KeyError, TypeError) as e:
            raise BmmalError(f"{self.dir / PROJECT_FILE} is not a valid project file ({type(e).__name__}: {e})"
                             ) from None
        if not (self.dir / DB_FILE).is_file():  # opening would create an empty one: 0 labels next to a model
            raise BmmalError(f"{self.dir / DB_FILE} is missing, and with it the project's labels; restore it from "
                             "a backup")
        self.store = LabelStore(self.dir / DB_FILE, read_only=read_only)

    @classmethod
    def create(cls, directory: str | Path, manifest: str | Path, classes, modalities=None, seed: int = 0,
               executor: str = "local", **settings) -> Project:
        """Create the project and import the manifest's seed labels; nothing is left behind on bad input.

        The manifest is loaded in full here (every file checked, features computed and cached), so that
        problems show now and the first query starts from cached features; with executor "ray" the features
        are extracted through Ray Data, in shards (`datasets.load_manifest`).
        """
        from bmmal import datasets

        directory, manifest = Path(directory), Path(manifest).expanduser().resolve()
        if (directory / PROJECT_FILE).exists():
            raise BmmalError(f"{directory} is already a labelling project")
        existing = next(p for p in (directory.absolute(), *directory.absolute().parents) if p.exists())
        if not existing.is_dir():  # checked before the manifest is loaded, which can take minutes
            raise BmmalError(f"{directory} cannot be a project folder: {existing} is a file")
        if directory.exists() and any(directory.iterdir()):
            raise BmmalError(f"{directory} is not empty; choose a new directory for the project")
        classes = parse_classes(classes)
        settings = Settings(str(manifest), classes, (), seed, **settings)
        settings.model_config(), settings.train_config()  # validate now, not at the first query
        data = datasets.load_manifest(manifest, modalities, classes=classes, extractors=settings.extractors,
                                      executor=executor)
        settings.modalities = data.modalities
        seeds = {i: classes[y] for i, y in zip(data.ids, data.labels) if y >= 0}
        directory.mkdir(parents=True, exist_ok=True)
        try:
            store = LabelStore(directory / DB_FILE)
            store.set_labels(sorted(seeds.items()), source="manifest")
            atomic_write_json(directory / PROJECT_FILE, settings.to_json())  # the commit point
        except BaseException:
            for suffix in ("", "-wal", "-shm"):
                (directory / (DB_FILE + suffix)).unlink(missing_ok=True)
            raise
        return cls(directory)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.settings.classes

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.settings.modalities

    @cached_property
    def samples(self) -> Samples:
        """The manifest's samples (ids and modality values); read once per opened project."""
        manifest = Path(self.settings.manifest)
        if not manifest.is_file():
            raise BmmalError(f"the project's manifest {manifest} is missing")
        return Samples(manifest, self.modalities)

    @property
    def ids(self) -> tuple[str, ...]:
        return self.samples.ids

    def model_info(self) -> dict | None:
        path = self.dir / MODEL_INFO_FILE
        if not path.is_file():
            return None
        info = read_json(path)
        if not _is_model_info(info):
            raise BmmalError(f"{path} is damaged (not what `bmmal query` writes); delete it, and the next "
                             "`bmmal query` writes it again")
        return info

    def counts(self) -> dict[str, int]:
        labels = self.store.labels()
        pending = self.store.pending()
        return {"labeled": len(labels), "pending": len(pending),
                "unlabeled": len(self.ids) - len(labels) - len(pending), "total": len(self.ids)}


def _is_model_info(info: object) -> bool:
    """Whether `info` has the fields `bmmal status` shows, with the types `bmmal query` writes."""
    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    if not isinstance(info, dict) or not isinstance(info.get("trained_on"), int):
        return False
    validation, balance = info.get("validation"), info.get("pool_balance") or {}
    if validation is not None and not (isinstance(validation, dict) and number(info.get("validation_size")) and all(
            number(validation.get(k)) for k in ("accuracy_micro", "accuracy_macro", "f1_macro"))):
        return False
    return isinstance(balance, dict) and all(number(v) for v in balance.values())
