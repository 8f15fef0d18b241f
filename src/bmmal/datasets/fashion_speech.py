"""Fashion-Speech: Fashion-MNIST images paired with their class name spoken by espeak-ng, raw inputs for
encoders trained end to end (an audio-visual benchmark that builds offline).

Built from Debian packages: `dataset-fashion-mnist` (Zalando's Fashion-MNIST, MIT licence; the idx files
under /usr/share/datasets/fashion-mnist) and `espeak-ng` (speech synthesis). Each class name ("t-shirt",
"trousers", ..., "ankle boot") is spoken by `speakers` synthetic speakers: an English accent, a voice
variant (male or female), a speed and a pitch, drawn at random. Every image is paired with one clip of its
class by a speaker of its split (train and test speakers are disjoint), shifted at random inside the
window and mixed with white noise at a random signal-to-noise ratio in `snr_db` (10 to 30 dB by default:
speech is then the easier modality, and joint training under-trains it; see benchmarks/RESULTS.md).

Modalities:
- "image": the 28 x 28 grey image, [1, 28, 28];
- "audio": log-mel spectrogram of the 1.28 s window at 16 kHz (40 mel bands, hop 20 ms), [1, 40, 65].
Both are standardised with one mean and standard deviation of the train split. Splits: the first
`per_class` images of each class of Fashion-MNIST's training file, and the first `test_per_class` of its
test file. Sample ids: "train-<index in the file>" / "test-<index>".

Build and cache it with one command: `python -m bmmal.datasets.fashion_speech` (about two minutes of CPU).
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np

from bmmal.data import ArrayDataset
from bmmal.datasets.encoded import check_modalities
from bmmal.datasets.raw import cached_arrays, log_mel, split_raw
from bmmal.errors import BmmalError

ROOT = Path("/usr/share/datasets/fashion-mnist")
INSTALL = "apt-get install -y dataset-fashion-mnist espeak-ng"
MODALITIES = ("image", "audio")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SPOKEN = ("t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
SAMPLE_RATE = 16000
WINDOW = 20480  # 1.28 s
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip-compressed or not) as a uint8 array: [N, rows, cols] images or [N] labels."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BmmalError(f"cannot read {path}: {e}") from None
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08 or (magic & 0xFF) not in (1, 3):
        raise BmmalError(f"{path} is not an idx file of unsigned bytes")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(magic & 0xFF)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims))
    if body.size != int(np.prod(dims)):
        raise BmmalError(f"{path}: expected {int(np.prod(dims))} values, found {body.size}")
    return body.reshape(dims)


def speaker_settings(n: int, seed: int) -> list[tuple[str, int, int]]:
    """`n` espeak-ng speakers: (voice "accent+variant", words per minute, pitch 0-99), drawn at random."""
    rng = np.random.default_rng(seed)
    return [(f"{rng.choice(ACCENTS)}+{rng.choice(VARIANTS)}", int(rng.integers(120, 211)), int(rng.integers(20, 81)))
            for _ in range(n)]


def synthesize_names(out_dir: Path, speakers: int, seed: int = 0) -> Path:
    """Speak every class name with every speaker: `<out_dir>/<class index>/<speaker index>.wav`."""
    if shutil.which("espeak-ng") is None:
        raise BmmalError(f"Fashion-Speech needs the espeak-ng program; install it with: {INSTALL}")
    for s, (voice, speed, pitch) in enumerate(speaker_settings(speakers, seed)):
        for c, name in enumerate(SPOKEN):
            path = out_dir / str(c) / f"{s}.wav"
            if path.is_file():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), name],
                           check=True, capture_output=True)
    return out_dir


def read_clips(speech_dir: Path, n_classes: int) -> list[list[np.ndarray]]:
    """Per class, its clips (`<class index>/*.wav`, in name order) as mono 16 kHz waveforms."""
    from bmmal.datasets.media import read_audio

    clips = []
    for c in range(n_classes):
        files = sorted((speech_dir / str(c)).glob("*.wav"), key=lambda p: (len(p.stem), p.stem))
        if not files:
            raise BmmalError(f"fashion_speech: no clips of class {c} in {speech_dir / str(c)}")
        clips.append([read_audio(f, SAMPLE_RATE) for f in files])
    return clips


def noisy_window(clip: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """The clip at a random offset in a WINDOW-sample window (cut if longer), plus white noise at `snr_db`."""
    clip = clip[:WINDOW]
    wave = np.zeros(WINDOW, dtype=np.float32)
    start = int(rng.integers(0, WINDOW - len(clip) + 1))
    wave[start:start + len(clip)] = clip
    power = float(np.mean(clip.astype(np.float64) ** 2)) or 1e-8
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), WINDOW)
    return (wave + noise).astype(np.float32)


def build_fashion_speech(per_class: int = 300, test_per_class: int = 100, speakers: int = 24,
                         test_speakers: int = 8, snr_db: tuple[float, float] = (10.0, 30.0), root=ROOT,
                         speech_dir=None, cache_dir=None) -> tuple[ArrayDataset, np.ndarray]:
    """All samples (train then test) and the rows of the test split; raw, unscaled."""
    root = Path(root)
    files = [root / f for pair in FILES.values() for f in pair]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise BmmalError(f"Fashion-Speech needs {missing[0]} from Debian's dataset-fashion-mnist; install it with: "
                         f"{INSTALL}")
    if not 0 < test_speakers < speakers:
        raise BmmalError(f"fashion_speech: test_speakers must be between 1 and speakers - 1 ({speakers - 1})")
    if per_class < 1 or test_per_class < 1:
        raise BmmalError("fashion_speech: per_class and test_per_class must be at least 1")
    low, high = (float(v) for v in snr_db)
    if speech_dir is None:
        from bmmal.features.cache import default_cache_dir

        base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        speech_dir = synthesize_names(base / "raw" / f"fashion_speech-voices-{speakers}", speakers)
    speech_dir = Path(speech_dir)
    wavs = sorted(speech_dir.glob("*/*.wav"))
    key = [*files, *wavs, f"{per_class} {test_per_class} {speakers} {test_speakers} {low} {high} v1"]

    def build() -> dict[str, np.ndarray]:
        clips = read_clips(speech_dir, len(CLASSES))
        rng = np.random.default_rng(0)
        images, audio, labels, ids, is_test = [], [], [], [], []
        for split, count in (("train", per_class), ("test", test_per_class)):
            x, y = (read_idx(root / f) for f in FILES[split])
            for c in range(len(CLASSES)):
                rows = np.flatnonzero(y == c)[:count]
                for row in rows:
                    pool = clips[c][:-test_speakers] if split == "train" else clips[c][-test_speakers:]
                    wave = noisy_window(pool[int(rng.integers(len(pool)))], rng.uniform(low, high), rng)
                    images.append(x[row][None])
                    audio.append(log_mel(wave, SAMPLE_RATE)[None])
                    labels.append(c)
                    ids.append(f"{split}-{row:05d}")
                    is_test.append(split == "test")
        return {"image": np.stack(images), "audio": np.stack(audio), "labels": np.array(labels, np.int64),
                "ids": np.array(ids), "is_test": np.array(is_test)}

    arrays = cached_arrays("fashion_speech", key, build, cache_dir)
    data = ArrayDataset({"image": arrays["image"], "audio": arrays["audio"]}, arrays["labels"], CLASSES,
                        arrays["ids"], name="fashion_speech")
    return data, np.flatnonzero(arrays["is_test"])


def load_fashion_speech(modalities=None, seed: int = 0, per_class: int = 300, test_per_class: int = 100,
                        speakers: int = 24, test_speakers: int = 8, snr_db=(10.0, 30.0), root=ROOT,
                        speech_dir=None, cache_dir=None):
    """(train, test) with the fixed split of the build (`seed` does not change it)."""
    modalities = check_modalities("fashion_speech", modalities or MODALITIES, MODALITIES)
    data, test_rows = build_fashion_speech(per_class, test_per_class, speakers, test_speakers, tuple(snr_db),
                                           root, speech_dir, cache_dir)
    data = ArrayDataset({m: data.features[m] for m in modalities}, data.labels, data.classes, data.ids, data.name)
    return split_raw(data, seed, None, [m for m in modalities], test_rows=test_rows)


def main() -> None:
    train, test = load_fashion_speech()
    shapes = ", ".join(f"{m} {list(s)}" for m, s in train.input_shapes().items())
    print(f"fashion_speech: {len(train)} train and {len(test)} test samples, {len(train.classes)} classes; {shapes}")


if __name__ == "__main__":
    main()
