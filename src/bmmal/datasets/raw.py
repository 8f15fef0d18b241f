"""Helpers shared by the raw-input benchmarks (fashion_speech, emoji9_raw): datasets whose modalities are
images, log-mel spectrograms and character ids, for encoders trained end to end from scratch.

A raw benchmark is built once (rendering, speech synthesis, spectrograms) and cached as one .npz file in
the bmmal cache folder (`cache_dir`, default `$BMMAL_CACHE_DIR` or `~/.cache/bmmal`), named by a
fingerprint of its inputs and construction options; later loads read the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from bmmal.data import ArrayDataset
from bmmal.datasets.encoded import split_standardized
from bmmal.errors import BmmalError

log = logging.getLogger("bmmal")


def cached_arrays(name: str, key: Sequence, build: Callable[[], dict[str, np.ndarray]],
                  cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """The arrays `build()` returns, read from `<cache>/raw/<name>-<fingerprint of key>.npz` when there
    (`key`: the inputs, a Path counting by its file's bytes, and the construction options as strings)."""
    from bmmal.features.cache import default_cache_dir, fingerprint

    folder = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "raw"
    path = folder / f"{name}-{fingerprint([k if isinstance(k, Path) else str(k) for k in key])}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    arrays = build()
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(partial, **arrays)
    partial.replace(path)
    log.info("%s: built and cached %s", name, path)
    return arrays


@lru_cache(maxsize=4)
def mel_bank(sample_rate: int, n_fft: int, n_mels: int):
    """[n_mels, n_fft // 2 + 1] mel filterbank (librosa's, Slaney scale) as a float32 tensor."""
    import torch

    try:
        from librosa.filters import mel
    except ImportError:
        raise BmmalError("log-mel spectrograms need librosa: pip install 'bmmal[media]'") from None
    return torch.as_tensor(mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels), dtype=torch.float32)


def log_mel(wave: np.ndarray, sample_rate: int = 16000, n_fft: int = 512, hop: int = 320,
            n_mels: int = 40) -> np.ndarray:
    """[n_mels, 1 + len // hop] float32: log(mel power + 1e-6) of a mono waveform (Hann window, centred)."""
    import torch

    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft), center=True,
                      pad_mode="constant", return_complex=True).abs() ** 2
    return torch.log(mel_bank(sample_rate, n_fft, n_mels) @ spec + 1e-6).numpy().astype(np.float32)


def split_raw(data: ArrayDataset, seed: int, test_fraction: float | None, float_modalities: Sequence[str],
              test_rows: np.ndarray | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """(train, test): the given `test_rows`, or a stratified split by `test_fraction`; then each modality
    in `float_modalities` standardised with one mean and one standard deviation of the train split (other
    modalities, e.g. character ids, stay as they are)."""
    if test_rows is not None:
        is_test = np.zeros(len(data), dtype=bool)
        is_test[test_rows] = True
        train, test = data.subset(np.flatnonzero(~is_test)), data.subset(np.flatnonzero(is_test))
    else:
        if test_fraction is None or not 0 < test_fraction < 1:
            raise BmmalError(f"dataset {data.name!r}: test_fraction must be between 0 and 1, got {test_fraction}")
        train, test = split_standardized(data, seed, test_fraction, scale=False)
    out = []
    for ds in (train, test):
        feats = dict(ds.features)
        for m in float_modalities:
            x = train.features[m].astype(np.float32)
            feats[m] = ((ds.features[m].astype(np.float32) - x.mean()) / max(float(x.std()), 1e-8)).astype(np.float32)
        out.append(ArrayDataset(feats, ds.labels, ds.classes, ds.ids, ds.name, dict(ds.meta)))
    return out[0], out[1]
