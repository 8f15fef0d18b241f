"""Feature extraction through Ray Data (`FeatureCache(executor="ray")`, `load_manifest(executor="ray")`) on one
local Ray with 2 CPUs: the same cache entry as the single-process path, the extractor loaded once per actor,
resumable per shard, one-line errors and no cache entry after a failure. (An actor that keeps dying is the
shared Ray Data writer's case, tested with pool inference in test_distributed_writer.py.)"""

import contextlib
import csv
import io
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bmmal import datasets
from bmmal import features as F
from bmmal.cli import main
from bmmal.errors import BmmalError

soundfile = pytest.importorskip("soundfile")
ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
from bmmal.distributed import extraction
from test_distributed import local_ray  # noqa: F401 (a fixture: one local Ray with 2 CPUs for this module)

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this test module
pytestmark = pytest.mark.usefixtures("local_ray")

CLIPS = 10


class Logged:
    """A cheap audio extractor (log energy in 8 frequency bands; no librosa to import in every actor) that appends
    to `log` its process id whenever it is unpickled (once per actor that loads it) and the clips of every
    `encode` call."""

    name, kind, dim = "test-bands", "audio", 8
    LOG = None  # the log of instances made by name (features.get("test-bands"))

    def __init__(self, log: Path | None = None):
        self.log = str(log or self.LOG) if log or self.LOG else None

    def identity(self):
        return {"name": self.name}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.write(f"load {os.getpid()}")

    def write(self, line: str) -> None:
        if self.log is None:
            return
        with open(self.log, "a") as f:
            f.write(line + "\n")

    def encode(self, items, description=None):
        self.write("encode " + " ".join(Path(p).stem for p in items))
        spectra = [np.abs(np.fft.rfft(soundfile.read(str(p), dtype="float32")[0])) for p in items]
        return np.array([[np.log1p(band.sum()) for band in np.array_split(s, self.dim)] for s in spectra],
                        dtype=np.float32).reshape(len(items), self.dim)


F.register(Logged)


class Poisoned(Logged):
    """The same features (the same identity, so the same cache entry), but `encode` raises on a batch holding the
    clip `poison`."""

    def __init__(self, log, poison: str):
        super().__init__(log)
        self.poison = poison

    def encode(self, items, description=None):
        if any(Path(p).stem == self.poison for p in items):
            raise RuntimeError("the extractor failed on this clip")
        return super().encode(items, description)


def loads(log: Path) -> list[str]:
    return [line.split()[1] for line in log.read_text().splitlines() if line.startswith("load")]


def encoded(log: Path) -> list[str]:
    return [clip for line in log.read_text().splitlines() if line.startswith("encode") for clip in line.split()[1:]]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A manifest of CLIPS short tones (one audio column), and their cheap features encoded in this process."""
    folder = tmp_path_factory.mktemp("clips")
    t = np.arange(1600) / 16000
    rows = []
    for i in range(CLIPS):
        soundfile.write(str(folder / f"clip{i}.wav"), (0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t)).astype(np.float32),
                        16000)
        rows.append({"id": f"c{i}", "label": "low" if i < CLIPS // 2 else "high", "voice": f"clip{i}.wav"})
    with (folder / "clips.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "label", "voice"])
        writer.writeheader()
        writer.writerows(rows)
    items = [folder / f"clip{i}.wav" for i in range(CLIPS)]
    return folder / "clips.csv", items, Logged(folder / "log.txt").encode(items)


def entries(cache: Path) -> dict[str, dict[str, np.ndarray] | None]:
    """Every file in the cache (relative path -> the arrays of an entry; None for any other file)."""
    out = {}
    for path in sorted(p for p in cache.rglob("*") if p.is_file()):
        if path.suffix == ".npz":
            with np.load(path) as z:
                out[str(path.relative_to(cache))] = dict(z)
        else:
            out[str(path.relative_to(cache))] = None
    return out


def ray_log_lines(text: str) -> list[str]:
    """Ray's INFO and WARNING lines in `text` (what was written to stdout and stderr)."""
    return [line for line in text.splitlines() if re.search(r"\s(INFO|WARNING)\s", line)]


@contextlib.contextmanager
def ray_data_console() -> Iterator[io.StringIO]:
    """What Ray Data's console handlers write, for the duration (they hold the stream that was sys.stderr when
    ray.data was imported, which capsys and capfd do not see)."""
    console = [h for h in logging.getLogger("ray.data").handlers
               if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    assert console, "Ray Data logs to no console: this check would pass on anything"
    shown = io.StringIO()
    streams = [h.setStream(shown) for h in console]
    try:
        yield shown
    finally:
        for handler, stream in zip(console, streams, strict=True):
            handler.setStream(stream)


def test_load_manifest_through_ray_writes_the_same_cache_entry(clips, tmp_path, monkeypatch):
    manifest, _, _ = clips
    monkeypatch.setattr(Logged, "LOG", tmp_path / "log.txt")
    kwargs = {"extractors": {"voice": "test-bands"}}
    local = datasets.load_manifest(manifest, cache_dir=tmp_path / "local", **kwargs)
    with ray_data_console() as shown:
        sharded = datasets.load_manifest(manifest, cache_dir=tmp_path / "ray", executor="ray", actors=2,
                                         rows_per_shard=2, **kwargs)  # five shards, two actors
    np.testing.assert_array_equal(sharded.features["voice"], local.features["voice"])
    assert 1 <= len(loads(tmp_path / "log.txt")) <= 2  # the extractor unpickled once per actor, never per shard
    local_entries, ray_entries = entries(tmp_path / "local"), entries(tmp_path / "ray")
    assert list(ray_entries) == list(local_entries) and len(local_entries) == 1  # one entry, no shard left
    for name, arrays in local_entries.items():
        assert list(ray_entries[name]) == ["features", "meta"] == list(arrays)
        for key, array in arrays.items():
            assert np.array_equal(ray_entries[name][key], array), key
    assert not list((tmp_path / "ray").rglob("*.shards-*"))
    assert ray_log_lines(shown.getvalue()) == []  # no "Starting execution", no progress logged off a terminal


def test_a_failing_extractor_is_one_line_and_no_entry_and_a_rerun_encodes_only_the_missing_shards(clips, tmp_path):
    _, items, local = clips
    cache, log = F.FeatureCache(tmp_path, executor="ray", rows_per_shard=3, actors=1), tmp_path / "log.txt"
    entry = cache.entry("clips", "voice", Logged(log), "fp")  # 4 shards: 3, 3, 3 and 1 clips, in one actor
    with pytest.raises(BmmalError, match=r"^feature extraction through Ray Data failed: shard .*shard-00003\.npy: "
                                         r"RuntimeError: the extractor failed on this clip; [1-4] of the 4 shards "
                                         r"to write are not written") as error:
        cache.features("clips", "voice", Poisoned(log, "clip9"), "fp", lambda: items)
    assert "\n" not in str(error.value) and not entry.exists()  # no cache entry
    folder = extraction.shard_folder(entry, 3)
    kept = sorted(p.name for p in folder.iterdir())
    assert "shard-00003.npy" not in kept and all(p.startswith("shard-") for p in kept)  # complete shards only
    for name in kept:  # each holds its clips' features
        np.testing.assert_array_equal(np.load(folder / name), local[3 * int(name[6:11]):][:3])

    assert kept  # one actor takes the shards in order: the first ones are written before the fourth fails
    (folder / kept[0]).unlink()  # and as if a kill had cut the first one short: only a hidden temporary is left
    (folder / f".{kept[0]}.x1y2.tmp").write_bytes(b"half")
    kept = kept[1:]
    log.unlink()
    features = cache.features("clips", "voice", Logged(log), "fp", lambda: items)
    np.testing.assert_array_equal(features, local)
    assert len(loads(log)) == 1  # the extractor unpickled once, in the one actor
    done = {int(name[6:11]) for name in kept}
    assert sorted(encoded(log)) == sorted(p.stem for i, p in enumerate(items) if i // 3 not in done)
    with np.load(entry) as z:
        np.testing.assert_array_equal(z["features"], local)
    assert not folder.exists() and sorted(p.name for p in entry.parent.iterdir()) == [entry.name]


def test_without_ray_and_with_bad_options_one_line_before_any_work(clips, tmp_path, monkeypatch, capsys):
    manifest, items, _ = clips
    for kwargs, message in [({"executor": "spark"}, "executor must be local or ray, got 'spark'"),
                            ({"executor": "ray", "actors": 0}, "actors must be a positive integer or None, got 0"),
                            ({"executor": "ray", "rows_per_shard": 0}, "rows_per_shard must be a positive integer")]:
        with pytest.raises(BmmalError, match=message):
            datasets.load_manifest(manifest, cache_dir=tmp_path, **kwargs)
    assert main(["init", str(tmp_path / "project"), "--manifest", str(manifest), "--classes", "low,high",
                 "--executor", "spark"]) == 2
    assert "executor must be local or ray, got 'spark'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(BmmalError, match=r"^executor ray needs Ray Data: pip install 'bmmal\[ray\]'$"):
        F.FeatureCache(tmp_path, executor="ray").features("clips", "voice", Logged(), "fp", lambda: items)
    assert not list(tmp_path.rglob("*.npz")) and not (tmp_path / "project").exists()
