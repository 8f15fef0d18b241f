"""Built-in datasets, by name. Each dataset lives in its own module and is imported only when loaded.

`load(name, modalities=..., seed=...)` returns a (train, test) pair of `MultimodalDataset`s with stable
sample ids. Register a new dataset by adding its loader to `_LOADERS` (name -> "module:function");
the function takes `modalities`, `seed` and its own keyword options.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from bmmal.data import MultimodalDataset
from bmmal.errors import BmmalError

_LOADERS: dict[str, str] = {
    "mfeat": "bmmal.datasets.mfeat:load_mfeat",
    "synthetic": "bmmal.datasets.synthetic:load_synthetic",
    "food101": "bmmal.datasets.food101:load_food101",
    "kinetics_sounds": "bmmal.datasets.kinetics_sounds:load_kinetics_sounds",
    "vggsound": "bmmal.datasets.vggsound:load_vggsound",
}


def available() -> list[str]:
    return sorted(_LOADERS)


def register(name: str, target: str) -> None:
    """Make `load(name)` call `target` ("package.module:function")."""
    _LOADERS[name] = target


def load(name: str, modalities: Sequence[str] | None = None, seed: int = 0, **options
         ) -> tuple[MultimodalDataset, MultimodalDataset]:
    if name not in _LOADERS:
        raise BmmalError(f"unknown dataset {name!r}; available: {', '.join(available())}")
    module, function = _LOADERS[name].split(":")
    loader = getattr(importlib.import_module(module), function)
    return loader(modalities=tuple(modalities) if modalities is not None else None, seed=seed, **options)
