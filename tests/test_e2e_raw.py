"""Raw-input benchmarks (fashion_speech, emoji9_raw) built from generated miniature inputs (no Debian
packages), the small end-to-end encoders, and a two-seed two-round smoke grid of an e2e config."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from bmmal import datasets
from bmmal.config import ModelConfig, TrainConfig, load_yaml
from bmmal.datasets import fashion_speech
from bmmal.errors import BmmalError
from bmmal.models.encoders import build_encoder
from bmmal.models.small import char_ids
from bmmal.models.training import TrainingLoop, build_model, multimodal_loss

soundfile = pytest.importorskip("soundfile")
pytest.importorskip("librosa")

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GROUPS = ("Smileys & Emotion", "Animals & Nature", "Flags")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def fashion_inputs(tmp_path_factory):
    """Fashion-MNIST idx files with 4 images per class and split, class c drawn as a bar at row 2c; the
    spoken names as tones of 3 'speakers' per class (class c at 300 + 150 c Hz)."""
    root = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(0)
    for images, labels in fashion_speech.FILES.values():
        y = np.repeat(np.arange(10), 4)
        x = rng.integers(0, 60, size=(40, 28, 28))
        for i, c in enumerate(y):
            x[i, 2 * c + 4:2 * c + 7, 4:24] = 250
        write_idx(root / images, x)
        write_idx(root / labels, y)
    speech = root / "speech"
    t = np.arange(int(0.5 * 16000)) / 16000
    for c in range(10):
        (speech / str(c)).mkdir(parents=True)
        for s in range(3):
            tone = 0.4 * np.sin(2 * np.pi * (300 + 150 * c) * (1 + 0.02 * s) * t)
            soundfile.write(str(speech / str(c) / f"{s}.wav"), tone.astype(np.float32), 16000)
    return root, speech


def load_fashion(fashion_inputs, cache_dir, **options):
    root, speech = fashion_inputs
    return datasets.load("fashion_speech", root=str(root), speech_dir=str(speech), cache_dir=str(cache_dir),
                         per_class=4, test_per_class=2, speakers=3, test_speakers=1, **options)


@pytest.fixture(scope="module")
def emoji_inputs(tmp_path_factory):
    """A miniature emoji-test.txt: 3 groups of 6 'emoji' (letters and digits, drawn with Pillow's font)."""
    path = tmp_path_factory.mktemp("emoji") / "emoji-test.txt"
    lines, chars = [], iter("ABCDEFGHIJKLMNOPQR")
    for group in GROUPS:
        lines.append(f"# group: {group}")
        for i in range(6):
            ch = next(chars)
            lines.append(f"{ord(ch):04X} ; fully-qualified # {ch} E1.0 {group.split()[0].lower()} sign {i}")
        lines.append(f"{ord('x'):04X} ; fully-qualified # x E1.0 person: medium skin tone")  # left out
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- encoders ----------------------------------------------------------------------------------
def test_small_encoders_shapes_and_padding():
    cnn = build_encoder("cnn", (1, 40, 65), width=4, blocks=3, embed_dim=8)
    assert cnn.out_dim == 8 and cnn(torch.randn(2, 1, 40, 65)).shape == (2, 8)
    ids = char_ids(["Grinning face", "", "é"], 6)
    assert ids.dtype == np.uint8 and ids.shape == (3, 6)
    assert ids[0].tolist() == [ord(c) for c in "grinni"] and ids[1].tolist() == [0] * 6 and ids[2, 0] == 233
    chars = build_encoder("chars", (6,), char_dim=4, width=8, embed_dim=5).eval()
    # the embedding of a text does not depend on how much padding follows it
    short, long = torch.as_tensor(char_ids(["cat"], 4)), torch.as_tensor(char_ids(["cat"], 12))
    assert torch.allclose(chars(short.float()), chars(long.float()), atol=1e-6)
    assert torch.equal(chars(torch.zeros(1, 6)), chars.project(torch.zeros(1, 8)))  # empty text: zero pooled
    with pytest.raises(BmmalError, match="chars expects character ids"):
        build_encoder("chars", (2, 6))
    with pytest.raises(BmmalError, match=r"cnn expects inputs of shape \[channels, height, width\]"):
        build_encoder("cnn", (28, 28))


# ---- fashion_speech ------------------------------------------------------------------------------
def test_fashion_speech_builds_from_miniature_inputs_and_is_cached(fashion_inputs, tmp_path, monkeypatch):
    train, test = load_fashion(fashion_inputs, tmp_path)
    assert (len(train), len(test)) == (40, 20) and train.classes == fashion_speech.CLASSES
    assert train.input_shapes() == {"image": (1, 28, 28), "audio": (1, 40, 65)}
    assert np.bincount(train.labels).tolist() == [4] * 10 and train.ids[0] == "train-00000"
    assert all(i.startswith("test-") for i in test.ids)
    for m in ("image", "audio"):  # one mean and std from the train split
        assert abs(train.features[m].mean()) < 1e-4 and abs(train.features[m].std() - 1) < 1e-3
    assert len(list((tmp_path / "raw").glob("fashion_speech-*.npz"))) == 1
    monkeypatch.setattr("bmmal.datasets.raw.log_mel", lambda *a, **k: pytest.fail("rebuilt instead of cached"))
    again, _ = load_fashion(fashion_inputs, tmp_path)
    assert np.array_equal(again.features["audio"], train.features["audio"])
    image_only, _ = load_fashion(fashion_inputs, tmp_path, modalities=("image",))
    assert image_only.modalities == ("image",)


def test_fashion_speech_audio_is_the_class_tone_at_the_requested_noise(fashion_inputs, tmp_path):
    clean, _ = load_fashion(fashion_inputs, tmp_path, snr_db=[40, 40])
    noisy, _ = load_fashion(fashion_inputs, tmp_path, snr_db=[-10, -10])
    # a higher tone lands in a higher mel band: the loudest band grows with the class
    peak = clean.features["audio"][:, 0].max(axis=2).argmax(axis=1)
    by_class = [np.median(peak[clean.labels == c]) for c in range(10)]
    assert by_class == sorted(by_class) and by_class[-1] > by_class[0]
    spread = [clean.features["audio"][i, 0].max(axis=1).std() for i in range(10)]
    noisy_spread = [noisy.features["audio"][i, 0].max(axis=1).std() for i in range(10)]
    assert np.mean(noisy_spread) < np.mean(spread)  # noise flattens the spectrum


def test_fashion_speech_errors(tmp_path, fashion_inputs):
    with pytest.raises(BmmalError, match="apt-get install -y dataset-fashion-mnist espeak-ng"):
        datasets.load("fashion_speech", root=str(tmp_path))
    with pytest.raises(BmmalError, match="test_speakers must be between 1 and"):
        datasets.load("fashion_speech", root=str(fashion_inputs[0]), speech_dir=str(fashion_inputs[1]),
                      speakers=3, test_speakers=3)
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"\0\0\x09\x01junk"))
    with pytest.raises(BmmalError, match="not an idx file"):
        fashion_speech.read_idx(tmp_path / "x.gz")


# ---- emoji9_raw ------------------------------------------------------------------------------------
def test_emoji9_raw_builds_from_miniature_inputs(emoji_inputs, tmp_path):
    train, test = datasets.load("emoji9_raw", emoji_test=str(emoji_inputs), font=None, cache_dir=str(tmp_path),
                                test_fraction=1 / 3, seed=1)
    assert train.classes == GROUPS and (len(train), len(test)) == (12, 6)
    assert train.input_shapes() == {"image": (3, 32, 32), "text": (40,)}
    assert np.bincount(test.labels).tolist() == [2, 2, 2]
    text = train.features["text"][0]
    row = int(train.ids[0], 16) - ord("A")
    expected = char_ids([f"{GROUPS[row // 6].split()[0].lower()} sign {row % 6}"], 40)[0]
    assert np.array_equal(text, expected)  # character ids, not standardised
    assert abs(train.features["image"].mean()) < 1e-4  # the image is standardised
    glyphs = train.features["image"]
    assert len({g.tobytes() for g in glyphs}) == len(glyphs)  # every glyph draws differently


# ---- end-to-end training -----------------------------------------------------------------------------
@pytest.mark.parametrize("config_name", ["e2e-fashion-speech", "e2e-emoji9"])
def test_e2e_model_trains_end_to_end(config_name, fashion_inputs, emoji_inputs, tmp_path):
    raw = load_yaml(CONFIGS / f"{config_name}.yaml")
    if config_name == "e2e-emoji9":
        train, _ = datasets.load("emoji9_raw", emoji_test=str(emoji_inputs), font=None, cache_dir=str(tmp_path))
    else:
        train, _ = load_fashion(fashion_inputs, tmp_path)
    for options in raw["base"]["model"]["encoder_options"].values():
        options.update(width=8, embed_dim=16)  # the config's architecture, narrower: seconds on a CPU
    model_config = ModelConfig(**raw["base"]["model"])
    train_config = TrainConfig(**{**raw["base"]["train"], "epochs": 40})
    rows = np.arange(len(train))
    model = build_model(model_config, train, seed=0)
    assert model.encoders["image"].__class__.__name__ == "SmallCNN"

    def loss():
        model.eval()
        with torch.no_grad():
            x = train.batch(rows)
            return float(multimodal_loss(model(x), torch.as_tensor(train.labels), train_config))

    before = loss()
    TrainingLoop(train_config).fit(model, train, rows, train.labels, seed=0)
    assert loss() < 0.7 * before
    first = next(model.encoders["image"].parameters())
    assert first.grad is not None  # the encoder itself was trained, not only the heads


def test_e2e_smoke_grid_two_seeds_two_rounds(emoji_inputs, tmp_path):
    from bmmal.experiment import runner
    from bmmal.experiment.executors import LocalExecutor
    from bmmal.experiment.grid import BenchmarkConfig
    from bmmal.experiment.results import read_results

    raw = load_yaml(CONFIGS / "e2e-emoji9.yaml")
    for dataset in raw["datasets"].values():
        dataset["options"] = {"emoji_test": str(emoji_inputs), "font": None, "cache_dir": str(tmp_path / "cache"),
                              "test_fraction": 1 / 3}
    raw["seeds"] = 2
    raw["base"].update(initial_budget=3, budget=3, rounds=2)
    raw["base"]["train"]["epochs"] = 2
    for options in raw["base"]["model"]["encoder_options"].values():
        options.update(width=4, embed_dim=8)
    run = runner.run_benchmark(BenchmarkConfig.model_validate(raw), tmp_path / "grid", LocalExecutor(workers=1),
                               threads=1)
    assert len(run.cells) == 5 * 2 * 2  # strategies x trainers x seeds
    long = read_results(tmp_path / "grid")
    assert set(long["strategy"]) == {"random", "entropy", "badge", "bmmal", "coreset"}
    assert sorted(long.loc[long["metric"] == "accuracy_micro", "n_labeled"].unique()) == [3, 6, 9]
