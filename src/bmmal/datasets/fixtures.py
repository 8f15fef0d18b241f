"""Small synthetic datasets written in the paper datasets' on-disk layouts (Food-101, Kinetics-Sounds,
VGGSound): for tests, benchmarks, and for trying the pipeline before pointing it at the real data.

Each class gets its own colour and tone, plus noise, so a model can learn something from either modality.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SPLITS = ("train", "test")


def _image(rng: np.random.Generator, class_index: int, n_classes: int, height: int, width: int):
    from PIL import Image

    base = np.array([255 * (class_index + 1) / (n_classes + 1), 128, 255 * (1 - class_index / max(n_classes, 1))])
    pixels = base + rng.normal(0, 40, size=(height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _tone(rng: np.random.Generator, class_index: int, seconds: float, sample_rate: int) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = 0.3 * np.sin(2 * np.pi * 220.0 * (class_index + 1) * t) + 0.05 * rng.normal(size=t.shape)
    return wave.astype(np.float32)


def write_clip(frames_dir: Path, wav_path: Path, rng: np.random.Generator, class_index: int, n_classes: int,
               frames: int, frame_size: tuple[int, int], seconds: float, sample_rate: int) -> None:
    import soundfile

    frames_dir.mkdir(parents=True, exist_ok=True)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    for f in range(frames):
        _image(rng, class_index, n_classes, *frame_size).save(frames_dir / f"frame_{f:05d}.jpg", quality=85)
    soundfile.write(str(wav_path), _tone(rng, class_index, seconds, sample_rate), sample_rate, subtype="PCM_16")


def write_audiovisual(root: str | Path, layout: str, classes: Sequence[str], per_class: dict[str, int],
                      frames: int = 10, frame_size: tuple[int, int] = (128, 171), seconds: float = 10.0,
                      sample_rate: int = 16000, seed: int = 0) -> Path:
    """Clips in the Kinetics-Sounds (`layout="kinetics_sounds"`) or VGGSound (`"vggsound"`) layout."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split in SPLITS:
        for c, label in enumerate(classes):
            for i in range(per_class[split]):
                clip = f"{split}-{c:03d}-{i:04d}"
                if layout == "kinetics_sounds":
                    frames_dir, wav = root / split / "video" / label / clip, root / split / "audio" / label / f"{clip}.wav"
                elif layout == "vggsound":
                    frames_dir, wav = root / "frames" / split / label / clip, root / "audio" / split / label / f"{clip}.wav"
                else:
                    raise ValueError(f"unknown layout {layout!r}")
                write_clip(frames_dir, wav, rng, c, len(classes), frames, frame_size, seconds, sample_rate)
    return root


def write_food101(root: str | Path, classes: Sequence[str], per_class: dict[str, int],
                  image_size: tuple[int, int] = (240, 300), seed: int = 0) -> Path:
    """Images and recipe texts in the UPMC Food-101 layout (no split files: the loader scans)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split in SPLITS:
        for c, label in enumerate(classes):
            (root / "images" / split / label).mkdir(parents=True, exist_ok=True)
            (root / "texts_txt" / label).mkdir(parents=True, exist_ok=True)
            for i in range(per_class[split]):
                stem = f"{label}_{split}{i}"
                _image(rng, c, len(classes), *image_size).save(root / "images" / split / label / f"{stem}.jpg")
                words = " ".join(rng.choice(["flour", "salt", "butter", "sugar", "egg"], size=8))
                (root / "texts_txt" / label / f"{stem}.txt").write_text(
                    f"<html>How to make {label.replace('_', ' ')}.\nIngredients: {label} {words} {label}.\n</html>")
    return root
