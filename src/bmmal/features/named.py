"""Feature extractors named by library and model, from the user's local files and caches.

    timm:convnext_tiny                              an image model of timm (pooled features)
    st:all-mpnet-base-v2                            a sentence-transformers model (sentence embeddings)
    hf:MIT/ast-finetuned-audioset-10-10-0.4593      a transformers model: audio, image or text, read off
                                                    its preprocessor and tokenizer files; CLIP-like models
                                                    (get_image_features / get_text_features) read both
    open_clip:ViT-B-32[@laion2b_s34b_b79k]          an open_clip model: image and text, same space

The model part may also be a local folder (`st:./models/mine`, `hf:/data/ast`, `timm:local-dir:/m`).
Nothing is downloaded unless downloads are allowed (`bmmal --allow-download ...` sets BMMAL_ALLOW_DOWNLOAD=1)
and HF_HUB_OFFLINE is not set; a model that is not on disk is a one-line error naming it and the command
that fetches it. A model named for an image and a text column (a paired model) is loaded once per process.
The cache identity of the features holds the library, the model, the kind of input and a hash of the
weights files (in the Hugging Face cache, the blob names are the files' SHA-256, so nothing is re-read).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bmmal.errors import BmmalError
from bmmal.features.base import encode_batches, package_version, quiet_loading, require

ALLOW_DOWNLOAD_ENV = "BMMAL_ALLOW_DOWNLOAD"
LIBRARIES = ("timm", "st", "hf", "open_clip")
NAMED_VERSION = 1  # bump when the pooling or preprocessing below changes what a model's features are
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".npz")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
OTHER_FORMATS = ["onnx/*", "openvino/*", "*.onnx", "*.h5", "*.msgpack", "*.ot", "tf_model*", "flax_model*",
                 "rust_model*", "coreml/*"]


def is_named(name: str) -> bool:
    """True for "library:model" names of this module ("st:all-mpnet-base-v2", ...)."""
    library, sep, model = name.partition(":")
    return bool(sep) and library in LIBRARIES and bool(model)


def downloads_allowed() -> bool:
    """Only when asked (`--allow-download`) and never under HF_HUB_OFFLINE."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return os.environ.get(ALLOW_DOWNLOAD_ENV) == "1" and not offline


def missing(spec: str, where: str, fetch: str | None) -> BmmalError:
    how = f"fetch it once with `{fetch}`, or rerun with `bmmal --allow-download ...`" if fetch else \
        "rerun once with `bmmal --allow-download ...` to fetch it"
    offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
    return BmmalError(f"model {spec!r} is not on this machine ({where}){offline}; {how}")


def weights_hash(folder: Path) -> str:
    """SHA-256 over the weights files under `folder` (names and contents; a Hugging Face cache blob is named
    by its content's SHA-256, which is used as is)."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not files:
        raise BmmalError(f"no weights files ({', '.join(WEIGHT_SUFFIXES)}) under {folder}")
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        target = path.resolve()
        if path.is_symlink() and _SHA256.match(target.name):
            digest.update(target.name.encode())
        else:
            with target.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def hub_offline(offline: bool) -> Iterator[None]:
    """Keep huggingface_hub (which timm and open_clip download through) off the network inside the block."""
    if not offline:
        yield
        return
    constants = require("huggingface_hub.constants", "hf")
    before_env, before_flag = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"], constants.HF_HUB_OFFLINE = "1", True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before_flag
        if before_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before_env


def hub_folder(spec: str, repo_id: str) -> Path:
    """The local snapshot of a Hugging Face hub repository (downloaded first only if allowed)."""
    hub = require("huggingface_hub", spec)
    try:
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # huggingface_hub < 0.23
        from huggingface_hub.utils import LocalEntryNotFoundError

    try:
        if downloads_allowed():  # the PyTorch weights only, not the ONNX, OpenVINO, TF or Flax copies
            return Path(hub.snapshot_download(repo_id, ignore_patterns=OTHER_FORMATS))
        return Path(hub.snapshot_download(repo_id, local_files_only=True))
    except LocalEntryNotFoundError:
        raise missing(spec, f"not in the Hugging Face cache {hub.constants.HF_HUB_CACHE}",
                      f"hf download {repo_id}") from None
    except Exception as e:  # noqa: BLE001 - a failed download (no network, unknown repo) is bad input
        raise BmmalError(f"model {spec!r}: could not fetch {repo_id} ({type(e).__name__}: {e})") from None


def local_folder(model: str) -> Path | None:
    """`model` as an existing folder (a path, ~ expanded), or None for a hub name."""
    path = Path(model).expanduser()
    return path.absolute() if path.is_dir() else None


@dataclass
class Loaded:
    """A loaded model: what it reads, its weights hash, and per kind the batch encoder and output size."""

    weights: str
    encoders: dict[str, Callable[[list], np.ndarray]]
    dims: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)


# ---- the libraries ------------------------------------------------------------------------------------
def _load_st(spec: str, model: str) -> Loaded:
    require("sentence_transformers", spec)
    from sentence_transformers import SentenceTransformer

    folder = local_folder(model) or hub_folder(spec, model if "/" in model else f"sentence-transformers/{model}")
    net = SentenceTransformer(str(folder), device="cpu", local_files_only=True)

    def encode(batch: list) -> np.ndarray:
        return net.encode([str(t) for t in batch], batch_size=len(batch), convert_to_numpy=True,
                          show_progress_bar=False)

    dimension = getattr(net, "get_embedding_dimension", None) or getattr(net, "get_sentence_embedding_dimension", None)
    dim = (dimension() if dimension else None) or int(encode(["a"]).shape[1])
    return Loaded(weights_hash(folder), {"text": encode}, {"text": int(dim)},
                  {"sentence_transformers": package_version("sentence-transformers")})


def _hf_kinds(folder: Path) -> set[str]:
    """What a transformers model folder reads, from its preprocessing files."""
    kinds = set()
    config = {}
    for name in ("preprocessor_config.json", "processor_config.json"):  # a processor nests its image processor
        path = folder / name
        if path.is_file():
            found = json.loads(path.read_text())
            config.update(found.get("image_processor", {}), **found.get("feature_extractor", {}), **found)
    if "image_processor_type" in config or "image_mean" in config:
        kinds.add("image")
    if "sampling_rate" in config:
        kinds.add("audio")
    if any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")):
        kinds.add("text")
    return kinds


def _pooled(output, mask=None):
    """One vector per input: the model's pooled output, else the (masked) mean of the last hidden states."""
    import torch

    if getattr(output, "pooler_output", None) is not None:
        return output.pooler_output
    hidden = output.last_hidden_state
    if mask is None:
        return hidden.mean(dim=1)
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / torch.clamp(weights.sum(1), min=1.0)


def _load_hf(spec: str, model: str) -> Loaded:
    require("transformers", spec)
    import torch
    import transformers as tf

    from bmmal.features.audio import read_audio
    from bmmal.features.image import load_image

    folder = local_folder(model) or hub_folder(spec, model)
    kinds = _hf_kinds(folder)
    if not kinds:
        raise BmmalError(f"model {spec!r}: {folder} has no preprocessor or tokenizer files; cannot tell what it reads")
    net = tf.AutoModel.from_pretrained(folder, local_files_only=True).eval()
    paired = hasattr(net, "get_image_features") and hasattr(net, "get_text_features")
    encoders: dict[str, Callable[[list], np.ndarray]] = {}

    def run(method, inputs, mask=None):
        with torch.inference_mode():
            if paired:
                out = method(**inputs)
                out = out if isinstance(out, torch.Tensor) else _pooled(out)
            else:
                out = _pooled(net(**inputs), mask)
        return out.float().numpy()

    if "image" in kinds:
        processor = tf.AutoImageProcessor.from_pretrained(folder, local_files_only=True)

        def encode_image(batch: list) -> np.ndarray:
            images = [load_image(x) if isinstance(x, (str, Path)) else x for x in batch]
            return run(net.get_image_features if paired else net, dict(processor(images=images, return_tensors="pt")))

        encoders["image"] = encode_image
    if "text" in kinds:
        tokenizer = tf.AutoTokenizer.from_pretrained(folder, local_files_only=True)

        def encode_text(batch: list) -> np.ndarray:
            tokens = tokenizer([str(t) for t in batch], padding=True, truncation=True, return_tensors="pt")
            return run(net.get_text_features if paired else net, dict(tokens), tokens.get("attention_mask"))

        encoders["text"] = encode_text
    if "audio" in kinds:
        extractor = tf.AutoFeatureExtractor.from_pretrained(folder, local_files_only=True)
        rate = int(extractor.sampling_rate)

        def encode_audio(batch: list) -> np.ndarray:
            waves = [read_audio(x, rate) if isinstance(x, (str, Path)) else np.asarray(x, np.float32) for x in batch]
            inputs = dict(extractor(waves, sampling_rate=rate, return_tensors="pt", padding=True))
            return run(net, inputs, inputs.get("attention_mask"))

        encoders["audio"] = encode_audio
    dims = {kind: int(_probe(kind, encode).shape[1]) for kind, encode in encoders.items()}
    return Loaded(weights_hash(folder), encoders, dims, {"transformers": package_version("transformers")})


def _probe(kind: str, encode: Callable[[list], np.ndarray]) -> np.ndarray:
    """The output of one dummy input: the feature size, whatever the architecture."""
    from PIL import Image

    dummy = {"image": Image.new("RGB", (64, 64), (255, 255, 255)), "text": "a",
             "audio": np.zeros(16000, dtype=np.float32)}[kind]
    return encode([dummy])


def _hub_or_url(spec: str, cfg: dict, url_cache: Path) -> tuple[str | None, str | None]:
    """(hub repo id, None) for weights on the hub; (None, local file) for weights at a URL, if present."""
    hub = (cfg.get("hf_hub_id") or cfg.get("hf_hub") or "").strip("/")
    if hub:
        return "/".join(hub.split("/")[:2]), None
    url = cfg.get("url") or ""
    if not url:
        raise BmmalError(f"model {spec!r} has no pretrained weights to load")
    return None, str(url_cache / Path(url).name)


def _load_timm(spec: str, model: str) -> Loaded:
    timm = require("timm", spec)
    import torch

    from bmmal.features.image import load_image

    offline = not downloads_allowed()
    if model.startswith(("local-dir:", "hf-hub:")):
        name, fetch = model, None
    else:
        try:
            cfg = timm.models.get_pretrained_cfg(model)
        except RuntimeError as e:  # an unknown pretrained tag
            raise BmmalError(f"model {spec!r}: {e}") from None
        if cfg is None:
            raise BmmalError(f"timm has no pretrained model {model!r} (spec {spec!r})")
        cfg = cfg.to_dict()
        repo, file = _hub_or_url(spec, cfg, Path(torch.hub.get_dir()) / "checkpoints")
        if repo and offline:
            hub_folder(spec, repo)  # on disk, or a one-line error naming `hf download <repo>`
        elif offline and not Path(file).is_file():
            raise missing(spec, f"no {file}", None)
        name, fetch = model, repo
    try:
        with hub_offline(offline):
            net = timm.create_model(name, pretrained=True, num_classes=0).eval()
    except (OSError, RuntimeError, ValueError) as e:
        raise missing(spec, f"timm could not load it: {type(e).__name__}", f"hf download {fetch}" if fetch else None) \
            from None
    data = timm.data.resolve_data_config({}, model=net)
    transform = timm.data.create_transform(**data)

    def encode(batch: list) -> np.ndarray:
        images = [load_image(x) if isinstance(x, (str, Path)) else x for x in batch]
        with torch.inference_mode():
            return net(torch.stack([transform(image) for image in images])).float().numpy()

    weights = _state_hash(net)
    return Loaded(weights, {"image": encode}, {"image": int(net.num_features)}, {"timm": package_version("timm")})


def _state_hash(net) -> str:
    """SHA-256 of a loaded model's parameters and buffers (for libraries that hide their weights files)."""
    digest = hashlib.sha256()
    for key, value in sorted(net.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _load_open_clip(spec: str, model: str) -> Loaded:
    open_clip = require("open_clip", spec)
    import torch

    from bmmal.features.image import load_image

    name, _, tag = model.partition("@")
    offline = not downloads_allowed()
    if not name.startswith(("hf-hub:", "local-dir:")):
        tags = open_clip.list_pretrained_tags_by_model(name)
        if not tags:
            raise BmmalError(f"open_clip has no pretrained model {name!r} (spec {spec!r})")
        tag = tag or tags[0]
        if tag not in tags:
            raise BmmalError(f"open_clip model {name!r} has no weights {tag!r}; it has {', '.join(tags)}")
        repo, file = _hub_or_url(spec, open_clip.get_pretrained_cfg(name, tag), Path.home() / ".cache" / "clip")
        if repo and offline:
            hub_folder(spec, repo)  # allowed downloads are left to open_clip, which fetches only the weights
        elif offline and not Path(file).is_file():
            raise missing(spec, f"no {file}", None)
    try:
        with hub_offline(offline):
            net, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=tag or None)
            tokenizer = open_clip.get_tokenizer(name)
    except (OSError, RuntimeError, ValueError) as e:
        raise missing(spec, f"open_clip could not load it: {type(e).__name__}", None) from None
    net.eval()

    def encode_image(batch: list) -> np.ndarray:
        images = [load_image(x) if isinstance(x, (str, Path)) else x for x in batch]
        with torch.inference_mode():
            return net.encode_image(torch.stack([preprocess(image) for image in images])).float().numpy()

    def encode_text(batch: list) -> np.ndarray:
        with torch.inference_mode():
            return net.encode_text(tokenizer([str(t) for t in batch])).float().numpy()

    encoders = {"image": encode_image, "text": encode_text}
    dims = {kind: int(_probe(kind, encode).shape[1]) for kind, encode in encoders.items()}
    return Loaded(_state_hash(net), encoders, dims, {"open_clip": package_version("open_clip_torch")})


_LOADERS: dict[str, Callable[[str, str], Loaded]] = {"st": _load_st, "hf": _load_hf, "timm": _load_timm,
                                                      "open_clip": _load_open_clip}
_LOADED: dict[str, Loaded] = {}  # spec -> model: a paired model named for two columns is loaded once


def load(spec: str) -> Loaded:
    """The model named `spec`, loaded once per process."""
    if spec not in _LOADED:
        library, _, model = spec.partition(":")
        with quiet_loading():
            _LOADED[spec] = _LOADERS[library](spec, model)
    return _LOADED[spec]


class NamedExtractor:
    """The `kind` ("image", "text" or "audio") side of the model named `spec` (e.g. "open_clip:ViT-B-32")."""

    def __init__(self, spec: str, kind: str, batch_size: int = 32):
        if not is_named(spec):
            raise BmmalError(f"{spec!r} is not a named model; write library:model with library one of "
                             f"{', '.join(LIBRARIES)}")
        self.name, self.kind, self.batch_size = spec, kind, int(batch_size)
        self.library, _, self.model = spec.partition(":")

    def _loaded(self) -> Loaded:
        loaded = load(self.name)
        if self.kind not in loaded.encoders:
            raise BmmalError(f"model {self.name!r} reads {' and '.join(sorted(loaded.encoders))}, not {self.kind}")
        return loaded

    @property
    def dim(self) -> int:
        return self._loaded().dims[self.kind]

    def identity(self) -> dict[str, Any]:
        loaded = self._loaded()
        return {"name": self.name, "library": self.library, "model": self.model, "kind": self.kind,
                "weights": loaded.weights, "version": NAMED_VERSION, **loaded.extra}

    def encode(self, items: Sequence[Any], description: str | None = None) -> np.ndarray:
        loaded = self._loaded()
        return encode_batches(loaded.encoders[self.kind], items, self.batch_size, loaded.dims[self.kind],
                              description or f"{self.kind} features ({self.name})")
