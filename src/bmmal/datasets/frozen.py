"""Frozen-feature mode: encode a file-backed dataset once with pretrained encoders, cache, train heads only.

The loaders' `frozen` option turns their (train, test) FileDatasets into ArrayDatasets of encoder outputs,
for users with less compute: each round then trains only the model's heads (use model encoder `identity`
for the reference's linear heads, or `mlp`). The option is a mapping:

    frozen:
      encoders:                       # one entry per modality: an encoder kind and its options
        text: {kind: bert, path: bert-base-uncased}
        image: {kind: resnet, depth: 101, weights: ~/weights/resnet101.pth}
      cache_dir: ~/.cache/bmmal       # optional (default: $BMMAL_CACHE_DIR or ~/.cache/bmmal)
      batch_size: 64                  # optional
      device: auto                    # optional

Features are computed with evaluation preprocessing (no augmentation) and cached by dataset, modality,
encoder identity (kind, options, weights file size and time) and the samples (ids, file paths,
preprocessing); if you change files in place, delete the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bmmal.data import ArrayDataset
from bmmal.errors import BmmalError, did_you_mean

KEYS = {"encoders", "cache_dir", "batch_size", "device"}


def _source_text(source: Any) -> str | bytes:
    if isinstance(source, np.ndarray):
        return source.tobytes()
    if isinstance(source, (list, tuple)):
        return "\n".join(map(str, source))
    return str(source)


@dataclass
class FrozenEncoder:
    """A pretrained encoder of one modality, as the feature cache's extractor."""

    dataset: Any  # FileDataset
    modality: str
    kind: str
    options: dict
    device: torch.device
    batch_size: int = 64
    module: torch.nn.Module | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.kind

    def identity(self) -> dict:
        weights = self.options.get("weights")
        stat = None
        if weights and Path(weights).expanduser().is_file():
            s = Path(weights).expanduser().stat()
            stat = [s.st_size, s.st_mtime_ns]
        return {"kind": self.kind, "options": self.options, "weights_file": stat, "version": 1}

    def _build(self) -> torch.nn.Module:
        from bmmal.models.encoders import build_encoder
        from bmmal.models.training import ENCODER_MODULES  # noqa: F401  (registers the end-to-end encoders)

        shape = self.dataset.input_shapes()[self.modality]
        torch.manual_seed(0)  # any randomly initialised part (e.g. an unused pooler) is the same every time
        return build_encoder(self.kind, shape, **self.options).to(self.device).eval()

    @torch.no_grad()
    def encode(self, rows, description: str | None = None) -> np.ndarray:
        from bmmal.features.base import encode_batches

        if self.module is None:
            self.module = self._build()

        def encode_batch(batch_rows):
            x = self.dataset.batch(np.asarray(batch_rows))[self.modality].to(self.device)
            return self.module(x).float().cpu().numpy()

        return encode_batches(encode_batch, rows, self.batch_size, int(self.module.out_dim),
                              description or f"{self.dataset.name}: {self.modality}")


def parse_spec(spec: Any, modalities: tuple[str, ...]) -> dict:
    if not isinstance(spec, dict) or not isinstance(spec.get("encoders"), dict):
        raise BmmalError("dataset option frozen must be a mapping with encoders: {modality: {kind: ..., ...}}")
    unknown = set(spec) - KEYS
    if unknown:
        raise BmmalError(f"dataset option frozen: unknown key {min(unknown)!r}{did_you_mean(min(unknown), KEYS)}; "
                         f"known: {', '.join(sorted(KEYS))}")
    for m in modalities:
        entry = spec["encoders"].get(m)
        if not isinstance(entry, dict) or "kind" not in entry:
            raise BmmalError(f"dataset option frozen.encoders.{m}: give the encoder as {{kind: ..., options...}}")
    return spec


def encode_split(dataset, spec: dict, cache) -> ArrayDataset:
    from bmmal.features.cache import fingerprint
    from bmmal.models.training import resolve_device

    device = resolve_device(spec.get("device", "auto"))
    features = {}
    for m in dataset.modalities:
        options = {k: v for k, v in spec["encoders"][m].items() if k != "kind"}
        encoder = FrozenEncoder(dataset, m, spec["encoders"][m]["kind"], options, device,
                                int(spec.get("batch_size", 64)))
        data = fingerprint([repr(dataset.readers[m]), *dataset.ids.tolist(),
                            *(_source_text(s) for s in dataset.sources[m])])
        rows = np.arange(len(dataset))
        features[m] = cache.features(dataset.name, m, encoder, data, lambda rows=rows: rows)
    return ArrayDataset(features, dataset.labels, dataset.classes, dataset.ids, dataset.name,
                        {**dataset.meta, "frozen": True})


def finish(train, test, frozen: Any, seed: int = 0):
    """The loaders' last step: the FileDatasets as they are, or (with `frozen`) their cached features."""
    if frozen is None:
        return train, test
    from bmmal.features.cache import FeatureCache

    spec = parse_spec(frozen, train.modalities)
    cache = FeatureCache(spec.get("cache_dir"))
    return encode_split(train, spec, cache), encode_split(test, spec, cache)
