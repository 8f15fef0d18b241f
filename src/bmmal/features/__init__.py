"""Frozen pretrained feature extractors (image, text, audio) and an on-disk cache of their features.

These turn raw files or texts into fixed vectors once, before active learning starts; they are not
trained. (The trainable per-modality networks are `bmmal.models.encoders`; use its `identity` or
`mlp` kind on the features produced here.)

Extractors are found by name (`get("efficientnet-lite0")`), by the kind of input
(`default_for("image")`, `kind_of(value)` for a file path or inline text), or as a model the user has in a
local cache, named by its library (`for_input("timm:convnext_tiny", "image")`, `bmmal.features.named`).
Each lives in its own module, imported only when used, and needs the optional extra:
`pip install 'bmmal[encoders]'`.
"""

from __future__ import annotations

from pathlib import Path

from bmmal.errors import BmmalError
from bmmal.features.base import FeatureExtractor, encode_batches
from bmmal.features.cache import FeatureCache, default_cache_dir, fingerprint
from bmmal.registry import Registry

_EXTRACTORS: dict[str, str] = {
    "efficientnet-lite0": "bmmal.features.image:EfficientNetLite0",
    "all-minilm-l6-v2": "bmmal.features.text:MiniLM",
    "mfcc": "bmmal.features.audio:MFCCStats",
}
DEFAULTS = {"image": "efficientnet-lite0", "text": "all-minilm-l6-v2", "audio": "mfcc"}
SUFFIXES = {
    "image": frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".svg"}),
    "audio": frozenset({".wav", ".flac", ".ogg"}),
    "text": frozenset({".txt"}),
}
KINDS = tuple(DEFAULTS)


# bmmal's own; other packages add theirs through the `bmmal.extractors` entry-point group (docs/extending.md)
EXTRACTORS = Registry("feature extractor", "bmmal.extractors", _EXTRACTORS)
available = EXTRACTORS.available
register = EXTRACTORS.register  # register(name, "package.module:Class"), or @register(name) on the class


def get(name: str, **options) -> FeatureExtractor:
    """The extractor called `name`, with its options (e.g. `image_size` for the image extractor)."""
    return EXTRACTORS.get(name, **options)


def for_input(name: str, kind: str) -> FeatureExtractor:
    """The extractor `name` for inputs of `kind`: a registered name, or a model named by its library
    ("st:all-mpnet-base-v2", "open_clip:ViT-B-32", ...; `bmmal.features.named`), which reads that kind."""
    from bmmal.features.named import NamedExtractor, is_named

    return NamedExtractor(name, kind) if is_named(name) else get(name)


def default_for(kind: str) -> str:
    """Name of the default extractor for a kind of input ("image", "text" or "audio")."""
    if kind not in DEFAULTS:
        raise BmmalError(f"unknown input kind {kind!r}; known: {', '.join(KINDS)}")
    return DEFAULTS[kind]


def kind_of_suffix(suffix: str) -> str | None:
    """"image", "audio" or "text" for a file suffix such as ".png"; None if no extractor reads it."""
    suffix = suffix.lower()
    return next((kind for kind, suffixes in SUFFIXES.items() if suffix in suffixes), None)


def kind_of_path(path: str | Path) -> str | None:
    return kind_of_suffix(Path(path).suffix)


__all__ = ["DEFAULTS", "KINDS", "SUFFIXES", "FeatureCache", "FeatureExtractor", "available", "default_cache_dir",
           "default_for", "encode_batches", "fingerprint", "for_input", "get", "kind_of_path", "kind_of_suffix",
           "register"]
