"""FileDataset: a MultimodalDataset whose samples are decoded from files when a batch is asked for.

Each modality has a list of per-sample sources (a path, a clip's frame paths, token ids) and a reader
that turns one source into a tensor. `batch(rows)` gives evaluation inputs (no augmentation);
`train_batch(rows, seed)` gives training inputs, augmented with a generator seeded per sample from
`seed`, so the same seed gives the same batch whichever thread or worker process decodes it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from bmmal.datasets import media
from bmmal.errors import BmmalError

log = logging.getLogger("bmmal")

ON_MISSING = ("error", "skip")


class Reader(Protocol):
    shape: tuple[int, ...]

    def __call__(self, source: Any, rng: np.random.Generator | None) -> torch.Tensor: ...


@dataclass(frozen=True)
class ImageReader:
    """Food-101 images: resize 256, crop 224, augmentation in training."""

    resize: int = 256
    size: int = 224

    @property
    def shape(self):
        return (3, self.size, self.size)

    def __call__(self, source, rng):
        return media.food101_image(source, rng, self.resize, self.size)


@dataclass(frozen=True)
class ClipReader:
    """Video clips stored as extracted frames: `frames` sampled, resized to 128x171, cropped to 112; training
    crops and flips drawn per frame (the reference) or per clip (`augmentation`)."""

    frames: int = 5
    size: int = 112
    augmentation: str = "per_frame"

    @property
    def shape(self):
        return (3, self.frames, self.size, self.size)

    def __call__(self, source, rng):
        return media.video_clip(source, self.frames, rng, size=self.size, augmentation=self.augmentation)


@dataclass(frozen=True)
class SpectrogramReader:
    """Audio files: standardised log spectrogram of a 5 s window at 16 kHz."""

    mean: float
    std: float
    sample_rate: int = 16000

    @property
    def shape(self):
        return (1, 257, 1 + 5 * self.sample_rate // 159)

    def __call__(self, source, rng):
        return media.audio_spectrogram(source, rng, self.mean, self.std, self.sample_rate)


@dataclass(frozen=True)
class TokenReader:
    """Text already tokenised at load time: the source is an int array [2, L] (token ids, attention mask)."""

    max_tokens: int

    @property
    def shape(self):
        return (2, self.max_tokens)

    def __call__(self, source, rng):
        return torch.as_tensor(source, dtype=torch.long)


def _object_array(items: Sequence) -> np.ndarray:
    """A 1-D object array holding `items` as they are (lists and arrays stay single elements)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


class FileDataset:
    def __init__(self, name: str, classes: Sequence[str], ids: Sequence[str], labels: Sequence[int],
                 sources: dict[str, Sequence], readers: dict[str, Reader], threads: int | None = None,
                 meta: dict | None = None):
        self.name = name
        self.classes = tuple(str(c) for c in classes)
        self.ids = np.asarray(ids).astype(str)
        self.labels = np.asarray(labels, dtype=np.int64)
        if not sources:
            raise BmmalError(f"dataset {name!r} has no modalities")
        if len(np.unique(self.ids)) != len(self.ids):
            raise BmmalError(f"dataset {name!r}: sample ids are not unique")
        self.sources = {m: _object_array(s) for m, s in sources.items()}
        for m, s in self.sources.items():
            if len(s) != len(self.ids):
                raise BmmalError(f"dataset {name!r}: modality {m!r} has {len(s)} samples, ids have {len(self.ids)}")
        self.readers = {m: readers[m] for m in self.sources}
        self.threads = threads if threads is not None else min(8, os.cpu_count() or 1)
        self.meta = dict(meta or {})
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0

    # a thread pool survives neither pickling nor fork (DataLoader worker processes): each process makes its own
    def __getstate__(self):
        return {**self.__dict__, "_pool": None, "_pool_pid": 0}

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool, self._pool_pid = ThreadPoolExecutor(self.threads), os.getpid()
        return self._pool

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.sources)

    def __len__(self) -> int:
        return len(self.ids)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: tuple(r.shape) for m, r in self.readers.items()}

    def sample(self, row: int, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        """One sample's inputs; augmented when `rng` is given."""
        return {m: self.readers[m](self.sources[m][row], rng) for m in self.sources}

    def _stack(self, rows: np.ndarray, rngs: list) -> dict[str, torch.Tensor]:
        rows = np.asarray(rows)
        if len(rows) == 0:
            return {m: torch.zeros((0, *self.readers[m].shape)) for m in self.sources}
        if self.threads > 1 and len(rows) > 1:
            samples = list(self._threads().map(self.sample, rows, rngs))
        else:
            samples = [self.sample(r, g) for r, g in zip(rows, rngs)]
        return {m: torch.stack([s[m] for s in samples]) for m in self.sources}

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Evaluation inputs (no augmentation)."""
        return self._stack(rows, [None] * len(rows))

    def train_batch(self, rows: np.ndarray, seed: int) -> dict[str, torch.Tensor]:
        """Training inputs, augmented; sample i of the batch uses a generator seeded with (seed, i)."""
        return self._stack(rows, [np.random.default_rng([int(seed), i]) for i in range(len(rows))])

    def subset(self, rows: np.ndarray) -> FileDataset:
        rows = np.asarray(rows)
        return FileDataset(self.name, self.classes, self.ids[rows], self.labels[rows],
                           {m: s[rows] for m, s in self.sources.items()}, self.readers, self.threads, self.meta)

    def verified(self, on_missing: str = "error") -> FileDataset:
        """Decode every sample once: raise on the first that fails, or leave out those that fail."""
        good = []
        for row in range(len(self)):
            try:
                self.sample(row, None)
                good.append(row)
            except BmmalError as e:
                if on_missing == "error":
                    raise
                log.warning("%s: leaving out sample %s: %s", self.name, self.ids[row], e)
        dropped = len(self) - len(good)
        out = self.subset(np.array(good, dtype=np.int64)) if dropped else self
        out.meta["skipped_corrupt"] = dropped
        return out


class MissingFiles:
    """Applies the user's `on_missing` choice while a loader indexes files: raise, or skip and count."""

    def __init__(self, dataset: str, on_missing: str):
        if on_missing not in ON_MISSING:
            raise BmmalError(f"on_missing must be one of {', '.join(ON_MISSING)}, got {on_missing!r}")
        self.dataset = dataset
        self.on_missing = on_missing
        self.skipped: list[str] = []

    def problem(self, what: str) -> bool:
        """Record a sample that cannot be used; returns False so callers can `continue`."""
        if self.on_missing == "error":
            raise BmmalError(f"{self.dataset}: {what} (set dataset option on_missing: skip to leave such "
                             "samples out)")
        self.skipped.append(what)
        return False

    def file(self, path: Path) -> bool:
        return True if path.is_file() else self.problem(f"missing file {path}")

    def frames(self, clip_dir: Path, needed: int) -> list[str] | None:
        """The clip's frame paths (frame_*.jpg, sorted), or None when there are fewer than `needed`."""
        frames = sorted(str(p) for p in clip_dir.glob("frame_*.jpg")) if clip_dir.is_dir() else []
        if len(frames) < needed:
            self.problem(f"{clip_dir} has {len(frames)} frame_*.jpg files, needs {needed}")
            return None
        return frames

    def report(self, split: str) -> int:
        if self.skipped:
            log.warning("%s %s: skipped %d samples with missing files (first: %s)", self.dataset, split,
                        len(self.skipped), self.skipped[0])
        return len(self.skipped)


def resolve_path(path: str, root: Path, anchors: Sequence[str]) -> Path:
    """A path from a split file: as written if it exists, otherwise re-rooted at `root` from its last
    component in `anchors` (split files written by the reference hold absolute paths of another machine)."""
    p = Path(path)
    if not p.is_absolute():
        p = root / p
    if p.exists():
        return p
    parts = Path(path).parts
    for i in reversed(range(len(parts))):
        if parts[i] in anchors:
            return root.joinpath(*parts[i:])
    return p


def require_root(dataset: str, root) -> Path:
    if not root:
        raise BmmalError(f"dataset {dataset!r} reads files from disk: set dataset option root: <folder> "
                         "(or pass --data-dir)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BmmalError(f"dataset {dataset!r}: data folder not found: {root}")
    return root


def choose_modalities(dataset: str, modalities, known: tuple[str, ...]) -> tuple[str, ...]:
    modalities = tuple(modalities or known)
    unknown = [m for m in modalities if m not in known]
    if unknown or not modalities or len(set(modalities)) != len(modalities):
        raise BmmalError(f"dataset {dataset!r}: modalities must be distinct names from {', '.join(known)}, "
                         f"got {', '.join(modalities) or 'none'}")
    return modalities
