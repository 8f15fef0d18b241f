"""Built-in datasets, by name. Each dataset lives in its own module and is imported only when loaded.

`load(name, modalities=..., seed=...)` returns a (train, test) pair of `MultimodalDataset`s with stable
sample ids. bmmal's own loaders are listed in `_LOADERS` (name -> "module:function"); other packages add
theirs through the `bmmal.datasets` entry-point group, and a script can use `@register("name")` on the
function (docs/extending.md). A loader takes `modalities`, `seed` and its own keyword options.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from bmmal.data import MultimodalDataset, drop_modalities
from bmmal.errors import BmmalError, check_seed, did_you_mean
from bmmal.registry import Registry

_LOADERS: dict[str, str] = {
    "mfeat": "bmmal.datasets.mfeat:load_mfeat",
    "synthetic": "bmmal.datasets.synthetic:load_synthetic",
    "food101": "bmmal.datasets.food101:load_food101",
    "kinetics_sounds": "bmmal.datasets.kinetics_sounds:load_kinetics_sounds",
    "vggsound": "bmmal.datasets.vggsound:load_vggsound",
    "emoji9": "bmmal.datasets.emoji9:load_emoji9",
    "tuxpaint": "bmmal.datasets.tuxpaint:load_tuxpaint",
    "fashion_speech": "bmmal.datasets.fashion_speech:load_fashion_speech",
    "emoji9_raw": "bmmal.datasets.emoji9_raw:load_emoji9_raw",
    "manifest": "bmmal.datasets.manifest:load_manifest_split",
    "arrays": "bmmal.datasets.arrays:load_arrays_split",
}


DATASETS = Registry("dataset", "bmmal.datasets", _LOADERS)
available = DATASETS.available
register = DATASETS.register  # register(name, "package.module:function"), or @register(name) on the function


def check_options(name: str, loader, options: dict) -> None:
    """Unknown or missing loader options are a one-line error, not a TypeError."""
    parameters = inspect.signature(loader).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        takes = sorted(set(parameters) - {"modalities", "seed"})
        raise BmmalError(f"dataset {name!r}: unknown option {unknown[0]!r}{did_you_mean(unknown[0], takes)}; "
                         f"its options: {', '.join(takes) or 'none'}")
    missing = [p for p, spec in parameters.items()
               if spec.default is spec.empty and p not in options and p not in ("modalities", "seed")]
    if missing:
        raise BmmalError(f"dataset {name!r} needs the option {missing[0]!r} (dataset.options.{missing[0]})")


def load(name: str, modalities: Sequence[str] | None = None, seed: int = 0, **options
         ) -> tuple[MultimodalDataset, MultimodalDataset]:
    """The (train, test) pair of the dataset `name` (see `available()`) with these modalities in this order
    (default: all); `seed` fixes any random split or generation; `options` are the loader's own keyword
    options (an unknown one is a one-line error), plus `drop` (see `drop_from_split`)."""
    if modalities is not None and (isinstance(modalities, (str, bytes)) or not isinstance(modalities, Sequence)):
        raise BmmalError(f"modalities must be a list or tuple of modality names, got {modalities!r}"
                         + (f" (did you mean ({modalities!r},)?)" if isinstance(modalities, str) else ""))
    seed = check_seed(seed)
    loader = DATASETS.lookup(name)
    drop = options.pop("drop", None)
    check_options(name, loader, options)
    train, test = loader(modalities=tuple(modalities) if modalities is not None else None, seed=seed, **options)
    return (train, test) if not drop else drop_from_split(name, train, test, drop, seed)


def drop_from_split(name: str, train, test, drop, seed: int) -> tuple[MultimodalDataset, MultimodalDataset]:
    """The option `drop: {modality: fraction}` every dataset accepts: that modality removed from a seeded random
    fraction of the train and of the test samples (for experiments on incomplete pools)."""
    if not all(hasattr(ds, "with_present") for ds in (train, test)):
        raise BmmalError(f"dataset {name!r}: the option drop needs an in-memory (feature) dataset")
    return drop_modalities(train, drop, seed, stream=0), drop_modalities(test, drop, seed, stream=1)


def load_manifest(path, modalities: Sequence[str] | None = None, **options):
    """The user's raw data listed in a CSV/JSONL manifest, encoded by pretrained extractors (docs/data.md)."""
    from bmmal.datasets.manifest import load_manifest as read

    return read(path, modalities, **options)


def load_arrays(path, modalities: Sequence[str] | None = None, **options):
    """The user's own features from an .npz file, one array per modality plus labels (docs/data.md)."""
    from bmmal.datasets.arrays import load_arrays as read

    return read(path, modalities, **options)
