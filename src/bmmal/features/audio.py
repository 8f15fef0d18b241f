"""Audio features: MFCC statistics (librosa), 3 * n_mfcc + 1 values per clip.

Per clip (decoded with soundfile, mixed to mono, resampled to `sample_rate`): the mean and standard
deviation over time of each MFCC, the standard deviation of each MFCC's frame-to-frame change, and
the duration in seconds. A weak but dependable baseline; items are audio file paths (wav, flac, ogg).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bmmal.errors import BmmalError
from bmmal.features.base import encode_batches, package_version, require

FEATURES_VERSION = 1  # bump when `mfcc_stats` changes


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 samples at `sample_rate`."""
    soundfile = require("soundfile", "mfcc")
    librosa = require("librosa", "mfcc")
    path = Path(path)
    if not path.is_file():
        raise BmmalError(f"audio file not found: {path.absolute()}")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, TypeError) as e:  # soundfile.LibsndfileError is a RuntimeError
        raise BmmalError(f"cannot read audio {path}: {e}") from None
    if len(samples) == 0:
        raise BmmalError(f"audio file {path} holds no samples")
    if not np.isfinite(samples).all():
        raise BmmalError(f"audio file {path} has NaN or infinite samples")
    mono = samples.mean(axis=1)
    return librosa.resample(mono, orig_sr=rate, target_sr=sample_rate) if rate != sample_rate else mono


def mfcc_stats(samples: np.ndarray, sample_rate: int, n_mfcc: int) -> np.ndarray:
    librosa = require("librosa", "mfcc")
    mfcc = librosa.feature.mfcc(y=samples, sr=sample_rate, n_mfcc=n_mfcc)  # [n_mfcc, frames]
    change = np.diff(mfcc, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)
    duration = len(samples) / sample_rate
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1), change.std(axis=1), [duration]]).astype(np.float32)


class MFCCStats:
    name = "mfcc"
    kind = "audio"

    def __init__(self, n_mfcc: int = 20, sample_rate: int = 22050):
        self.n_mfcc = int(n_mfcc)
        self.sample_rate = int(sample_rate)
        self.dim = 3 * self.n_mfcc + 1

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "version": FEATURES_VERSION, "librosa": package_version("librosa"),
                "n_mfcc": self.n_mfcc, "sample_rate": self.sample_rate}

    def _encode_batch(self, batch: list) -> np.ndarray:
        return np.stack([mfcc_stats(read_audio(path, self.sample_rate), self.sample_rate, self.n_mfcc)
                         for path in batch])

    def encode(self, items: Sequence[Any], description: str | None = None) -> np.ndarray:
        return encode_batches(self._encode_batch, items, 16, self.dim, description or "audio features (mfcc)")
