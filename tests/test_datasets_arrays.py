"""The user's own features in an .npz file: reading, labels and classes, splits, and bad files."""

import numpy as np
import pytest

from bmmal import datasets
from bmmal.data import UNLABELED
from bmmal.errors import BmmalError


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def arrays(rng):
    labels = np.repeat(np.arange(3), 10)
    return {"image": rng.normal(size=(30, 5)).astype(np.float32), "text": rng.normal(size=(30, 2, 3)),
            "labels": labels}


def test_reads_modalities_labels_default_ids_and_classes(tmp_path, arrays):
    data = datasets.load_arrays(write_npz(tmp_path / "mine.npz", **arrays))
    assert data.modalities == ("image", "text")
    np.testing.assert_array_equal(data.features["image"], arrays["image"])
    np.testing.assert_array_equal(data.features["text"], arrays["text"])
    np.testing.assert_array_equal(data.labels, arrays["labels"])
    assert data.classes == ("0", "1", "2")
    assert data.ids[0] == "mine-0" and len(set(data.ids)) == 30


def test_string_labels_ids_classes_and_one_dimensional_features(tmp_path, arrays):
    names = np.array(["cat", "dog", ""] * 10)
    ids = np.array([f"s{i:02d}" for i in range(30)])
    path = write_npz(tmp_path / "s.npz", score=np.arange(30.0), image=arrays["image"], labels=names, ids=ids,
                     classes=np.array(["dog", "cat"]))
    data = datasets.load_arrays(path, modalities=["score"])
    assert data.modalities == ("score",) and data.input_shapes() == {"score": (1,)}
    assert data.classes == ("dog", "cat")
    np.testing.assert_array_equal(data.labels[:3], [1, 0, UNLABELED])
    assert data.ids.tolist() == ids.tolist()
    # without stored classes: the label names sorted
    path = write_npz(tmp_path / "t.npz", image=arrays["image"], labels=names)
    assert datasets.load_arrays(path).classes == ("cat", "dog")


def test_split_and_registry(tmp_path, arrays):
    labels = arrays["labels"].copy()
    labels[:4] = UNLABELED
    path = write_npz(tmp_path / "mine.npz", **{**arrays, "labels": labels})
    train, test = datasets.load("arrays", modalities=["image"], seed=1, path=str(path), test_fraction=0.2)
    assert (test.labels != UNLABELED).all() and (train.labels == UNLABELED).sum() == 4
    assert len(train) + len(test) == 30 and not set(train.ids) & set(test.ids)
    assert np.bincount(test.labels).tolist() == [1, 2, 2]  # round(6 * 0.2), round(10 * 0.2), round(10 * 0.2)
    np.testing.assert_allclose(train.features["image"].mean(0), 0, atol=1e-5)
    again = datasets.load("arrays", modalities=["image"], seed=1, path=str(path), test_fraction=0.2)
    assert again[1].ids.tolist() == test.ids.tolist()
    raw_train, _ = datasets.load("arrays", seed=1, path=str(path), standardize=False)
    rows = [int(i.split("-")[1]) for i in raw_train.ids]
    np.testing.assert_array_equal(raw_train.features["image"], arrays["image"][rows])


@pytest.mark.parametrize("change, message", [
    ({"labels": None}, "has no 'labels' array"),
    ({"image": "nan"}, "modality 'image' has NaN or infinite values in 1 samples"),
    ({"labels": "float"}, "'labels' must hold integers or strings"),
    ({"labels": "negative"}, "labels must be class indices or -1"),
    ({"ids": "duplicate"}, "sample ids are not unique"),
    ({"text": "short"}, "modality 'text' has 29 rows, labels have 30"),
    ({"image": "strings"}, "modality 'image' must be numeric"),
])
def test_bad_arrays(tmp_path, arrays, change, message):
    (key, how), = change.items()
    arrays = dict(arrays)
    if how is None:
        del arrays[key]
    elif how == "nan":
        arrays[key] = arrays[key].copy()
        arrays[key][3, 1] = np.nan
    elif how == "float":
        arrays[key] = arrays[key] + 0.5
    elif how == "negative":
        arrays[key] = arrays[key] - 2
    elif how == "duplicate":
        arrays[key] = np.array(["x"] * 30)
    elif how == "short":
        arrays[key] = arrays[key][:29]
    elif how == "strings":
        arrays[key] = np.array(["a"] * 30)
    with pytest.raises(BmmalError, match=message) as error:
        datasets.load_arrays(write_npz(tmp_path / "bad.npz", **arrays))
    assert "\n" not in str(error.value)


def test_missing_unreadable_and_unknown(tmp_path, arrays):
    with pytest.raises(BmmalError, match="arrays file not found"):
        datasets.load_arrays(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(BmmalError, match="is not a readable .npz file"):
        datasets.load_arrays(tmp_path / "junk.npz")
    path = write_npz(tmp_path / "ok.npz", **arrays)
    with pytest.raises(BmmalError, match="has no modality 'audio'; it has image, text"):
        datasets.load_arrays(path, modalities=["audio"])
    with pytest.raises(BmmalError, match="needs options.path"):
        datasets.load("arrays")
    with pytest.raises(BmmalError, match=r"dataset 'arrays': unknown option 'test_fracton' \(did you mean "
                                         r"'test_fraction'\?\); its options: classes, path, standardize, test_fraction"):
        datasets.load("arrays", path=str(path), test_fracton=0.3)
    # a misspelled path is named as such, not reported as a missing path
    with pytest.raises(BmmalError, match=r"unknown option 'file' \(did you mean 'path'\?\)"):
        datasets.load("arrays", file=str(path))
    np.save(tmp_path / "one.npy", arrays["image"])
    with pytest.raises(BmmalError, match="is not a readable .npz file"):
        datasets.load_arrays(tmp_path / "one.npy")
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, image=arrays["image"], labels=np.array([{"a": 1}] * 30, dtype=object))
    with pytest.raises(BmmalError, match="is not a readable .npz file"):
        datasets.load_arrays(pickled)


def test_run_header_lists_modalities_and_warns_about_an_integer_index_array(tmp_path, arrays, recwarn):
    from bmmal.errors import BmmalWarning
    from bmmal.progress import modalities_in_words

    path = write_npz(tmp_path / "mine.npz", **arrays, subject=np.arange(30) % 4)
    with pytest.warns(BmmalWarning, match=r"mine.npz: the 1-D integer array 'subject' is used as a one-feature "
                                          r"modality; .* dataset.modalities: \[image, text\]"):
        data = datasets.load_arrays(path)
    assert modalities_in_words(data) == "image (5), text (2x3), subject (1)"
    recwarn.clear()
    datasets.load_arrays(path, modalities=["image", "subject"])  # chosen on purpose: no warning
    datasets.load_arrays(write_npz(tmp_path / "f.npz", **arrays, score=np.arange(30.0)))  # float: a feature
    datasets.load_arrays(write_npz(tmp_path / "b.npz", **arrays, flag=np.arange(30) % 2 == 0))  # a yes/no feature
    assert not [w for w in recwarn if issubclass(w.category, BmmalWarning)]


def test_missing_file_error_shows_the_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BmmalError, match=f"arrays file not found: {tmp_path / 'nope.npz'}"):
        datasets.load_arrays("nope.npz")
