"""Audio + video clip datasets in the reference's layout (Kinetics-Sounds, VGGSound), read from disk.

A clip is a folder of extracted frames (`frame_*.jpg`, about one per second; the first
`frames_per_clip` in name order are used) and a WAV file, both named by the clip id under a folder named
by the class label. Where each lives depends on the dataset (`AVLayout`). A split file (JSON mapping clip
id -> {"label", "audio_path", "video_path"}, as the reference writes) is used instead of scanning
when present. Video: `frames_sampled` frames, 112x112 crops (training crops and flips drawn per frame as
the reference, or per clip with `video_augmentation: per_clip`); audio: standardised log spectrogram of 5 s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bmmal.datasets import media
from bmmal.datasets.filebacked import (
    ClipReader,
    FileDataset,
    MissingFiles,
    SpectrogramReader,
    choose_modalities,
    require_root,
    resolve_path,
)
from bmmal.datasets.frozen import finish
from bmmal.errors import BmmalError

MODALITIES = ("video", "audio")


@dataclass(frozen=True)
class AVLayout:
    name: str
    audio_dir: Callable[[Path, str], Path]  # (root, split) -> folder holding <label>/<clip id>.wav
    frames_dir: Callable[[Path, str], Path]  # (root, split) -> folder holding <label>/<clip id>/frame_*.jpg
    split_files: Callable[[Path, str], tuple[Path, ...]]  # candidate split files, first found is used
    anchors: tuple[str, ...]  # folder names where paths in split files are re-rooted
    spectrogram_mean: float
    spectrogram_std: float


def _entries_from_split_file(layout: AVLayout, root: Path, path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
        return [{"id": str(vid), "label": str(e["label"]),
                 "audio": resolve_path(e["audio_path"], root, layout.anchors),
                 "video": resolve_path(e["video_path"], root, layout.anchors)} for vid, e in data.items()]
    except (OSError, ValueError) as e:
        raise BmmalError(f"cannot read split file {path}: {e}") from None
    except (KeyError, TypeError, AttributeError):
        raise BmmalError(f"{path}: expected a mapping clip id -> {{label, audio_path, video_path}}") from None


def _scan(layout: AVLayout, root: Path, split: str) -> list[dict]:
    audio_dir, frames_dir = layout.audio_dir(root, split), layout.frames_dir(root, split)
    if not audio_dir.is_dir():
        raise BmmalError(f"{layout.name}: folder not found: {audio_dir} (expected <label>/<clip id>.wav there)")
    return [{"id": wav.stem, "label": label_dir.name, "audio": wav, "video": frames_dir / label_dir.name / wav.stem}
            for label_dir in sorted(p for p in audio_dir.iterdir() if p.is_dir())
            for wav in sorted(label_dir.glob("*.wav"))]


def read_split(layout: AVLayout, root: Path, split: str, frames_per_clip: int, on_missing: str
               ) -> tuple[list[dict], dict]:
    """Usable clips as records {"id", "label", "audio", "frames"}, and counts of what was left out."""
    missing = MissingFiles(layout.name, on_missing)
    split_file = next((p for p in layout.split_files(root, split) if p.is_file()), None)
    entries = _entries_from_split_file(layout, root, split_file) if split_file else _scan(layout, root, split)
    records = []
    for e in sorted(entries, key=lambda e: e["id"]):
        if not missing.file(Path(e["audio"])):
            continue
        frames = missing.frames(Path(e["video"]), frames_per_clip)
        if frames is not None:
            records.append({"id": e["id"], "label": e["label"], "audio": str(e["audio"]),
                            "frames": frames[:frames_per_clip]})
    return records, {"skipped_missing": missing.report(split)}


def load_audiovisual(layout: AVLayout, modalities=None, seed: int = 0, root=None, on_missing: str = "error",
                     verify: bool = False, classes=None, frames_per_clip: int = 10, frames_sampled: int = 5,
                     threads: int | None = None, frozen: dict | None = None,
                     video_augmentation: str = "per_frame"):
    """(train, test) FileDatasets; with `frozen`, ArrayDatasets of pretrained features (see frozen.py)."""
    root = require_root(layout.name, root)
    modalities = choose_modalities(layout.name, modalities, MODALITIES)
    if not 1 <= frames_sampled <= frames_per_clip:
        raise BmmalError(f"{layout.name}: frames_sampled must be between 1 and frames_per_clip ({frames_per_clip})")
    if video_augmentation not in media.VIDEO_AUGMENTATIONS:
        raise BmmalError(f"{layout.name}: video_augmentation must be one of {', '.join(media.VIDEO_AUGMENTATIONS)}, "
                         f"got {video_augmentation!r}")
    splits = {s: read_split(layout, root, s, frames_per_clip, on_missing) for s in ("train", "test")}
    classes = tuple(classes) if classes else tuple(sorted({r["label"] for r in splits["train"][0]}))
    if not classes:
        raise BmmalError(f"{layout.name}: no training clips found under {root}")
    index = {c: i for i, c in enumerate(classes)}
    readers = {"video": ClipReader(frames_sampled, augmentation=video_augmentation),
               "audio": SpectrogramReader(layout.spectrogram_mean, layout.spectrogram_std)}
    out = []
    for split, (records, meta) in splits.items():
        unknown = sorted({r["label"] for r in records} - set(index))
        if unknown:
            raise BmmalError(f"{layout.name} {split}: label {unknown[0]!r} is not one of the classes (the dataset "
                             "option classes lists them)")
        sources = {m: [r["frames"] if m == "video" else r["audio"] for r in records] for m in modalities}
        ds = FileDataset(layout.name, classes, [r["id"] for r in records], [index[r["label"]] for r in records],
                         sources, readers, threads, meta)
        out.append(ds.verified(on_missing) if verify else ds)
    return finish(out[0], out[1], frozen, seed)
