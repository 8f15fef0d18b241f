"""Shared pieces of the labelling tests (no tests here): a generated manifest of small PNG images, inline
captions and WAV tones; cheap feature extractors for it (so the tests do not load pretrained encoders);
a project on it; a server in a thread; a JSON client.
"""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
import wave
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from bmmal import features
from bmmal.labelling.project import Project
from bmmal.labelling.server import LabelServer

CLASSES = ("red", "green", "blue")
WORDS = {"red": "cherry tomato brick", "green": "leaf grass lime", "blue": "sky ocean denim"}
NOISE = ["small", "photo", "of", "a", "thing", "near", "the", "window", "today"]
EXTRACTORS = {"image": "test-colour", "caption": "test-words", "sound": "test-spectrum"}


class MeanColour:
    """Image features: the 4x4 thumbnail's RGB values (48 numbers)."""

    name, kind, dim = "test-colour", "image", 48

    def identity(self):
        return {"name": self.name}

    def encode(self, items, description=None):
        from PIL import Image

        return np.stack([np.asarray(Image.open(p).convert("RGB").resize((4, 4)), dtype=np.float32).ravel() / 255
                         for p in items]) if items else np.zeros((0, self.dim), np.float32)


class HashedWords:
    """Text features: hashed bag of words (64 numbers)."""

    name, kind, dim = "test-words", "text", 64

    def identity(self):
        return {"name": self.name}

    def encode(self, items, description=None):
        from sklearn.feature_extraction.text import HashingVectorizer

        vectorizer = HashingVectorizer(n_features=self.dim, alternate_sign=False)
        return vectorizer.transform(list(items)).toarray().astype(np.float32)


class Spectrum:
    """Audio features: energy in 16 frequency bands of the WAV file."""

    name, kind, dim = "test-spectrum", "audio", 16

    def identity(self):
        return {"name": self.name}

    def encode(self, items, description=None):
        out = []
        for p in items:
            with wave.open(str(p)) as w:
                x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)
            spectrum = np.abs(np.fft.rfft(x))
            out.append(np.log1p(np.array([b.sum() for b in np.array_split(spectrum, self.dim)])))
        return np.array(out, dtype=np.float32).reshape(len(items), self.dim)


for _cls in (MeanColour, HashedWords, Spectrum):
    features.register(_cls.name, f"{__name__}:{_cls.__name__}")


def write_wav(path: Path, frequency: float, rng, seconds: float = 0.2, rate: int = 8000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.4 * np.sin(2 * np.pi * frequency * t) + 0.05 * rng.normal(size=t.shape)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype(np.int16).tobytes())


def write_manifest(folder: Path, n: int = 60, seeds_per_class: int = 2, seed: int = 0) -> Path:
    """A CSV manifest of n samples (classes in turn): PNG image, inline caption, WAV tone; a few seed labels."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "media").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        c = i % len(CLASSES)
        name = CLASSES[c]
        colour = np.zeros(3)
        colour[c] = 200
        pixels = np.clip(colour + rng.normal(0, 40, size=(24, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "media" / f"s{i:03d}.png")
        write_wav(folder / "media" / f"s{i:03d}.wav", 300.0 * (c + 1), rng)
        caption = " ".join(rng.choice(NOISE, size=4)) + " " + rng.choice(WORDS[name].split())
        label = name if i < seeds_per_class * len(CLASSES) else ""
        rows.append({"id": f"s{i:03d}", "label": label, "image": f"media/s{i:03d}.png", "caption": caption,
                     "sound": f"media/s{i:03d}.wav"})
    path = folder / "manifest.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def true_label(sample_id: str) -> str:
    return CLASSES[int(sample_id[1:]) % len(CLASSES)]


@pytest.fixture
def feature_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BMMAL_CACHE_DIR", str(tmp_path / "feature-cache"))


def new_project(tmp_path: Path, n: int = 60, seeds_per_class: int = 2, **settings) -> Project:
    manifest = write_manifest(tmp_path / "data", n, seeds_per_class)
    settings = {"train": {"epochs": 20, "batch_size": 16}, "extractors": EXTRACTORS, **settings}
    return Project.create(tmp_path / "project", manifest, ",".join(CLASSES), **settings)


@contextmanager
def running_server(project, host: str = "127.0.0.1", **options):
    """The URL of a labelling server for `project` on a free port, running in a thread (options: LabelServer's)."""
    server = LabelServer(project, host, 0, **options).start()
    try:
        yield server.url()
    finally:
        server.shutdown()


def call(base: str, path: str, body: dict | None = None, content_type: str = "application/json",
         headers: dict | None = None):
    """(status, parsed JSON or raw bytes) of a GET (body None) or a JSON POST."""
    data = None if body is None else json.dumps(body).encode()
    headers = {**({"Content-Type": content_type} if data is not None else {}), **(headers or {})}
    request = urllib.request.Request(base.split("?")[0].rstrip("/") + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, kind = response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as e:
        status, raw, kind = e.code, e.read(), e.headers.get_content_type()
    return status, json.loads(raw) if kind == "application/json" else raw
