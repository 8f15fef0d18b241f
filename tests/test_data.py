import numpy as np
import pytest

from bmmal import datasets
from bmmal.data import ArrayDataset, stratified_split
from bmmal.datasets.mfeat import VIEWS, read_mfeat
from bmmal.datasets.synthetic import make_synthetic
from bmmal.errors import BmmalError


def test_mfeat_is_complete():
    data = read_mfeat()
    shapes = {m: x.shape for m, x in data.features.items()}
    assert shapes == {"fou": (2000, 76), "fac": (2000, 216), "kar": (2000, 64), "pix": (2000, 240),
                      "zer": (2000, 47), "mor": (2000, 6)}
    assert np.bincount(data.labels).tolist() == [200] * 10


def test_load_split_is_stratified_stable_and_standardised():
    train, test = datasets.load("mfeat", modalities=("fac", "mor", "zer"), seed=3)
    assert train.modalities == ("fac", "mor", "zer")
    assert len(train) == 1600 and len(test) == 400
    assert np.bincount(test.labels).tolist() == [40] * 10
    assert not set(train.ids) & set(test.ids)
    again, _ = datasets.load("mfeat", modalities=("fac", "mor", "zer"), seed=3)
    assert np.array_equal(train.ids, again.ids)
    np.testing.assert_allclose(train.features["mor"].mean(0), 0, atol=1e-4)
    other, _ = datasets.load("mfeat", modalities=("fac",), seed=4)
    assert not np.array_equal(train.ids, other.ids)
    # ids name the same sample whatever the split
    full = read_mfeat()
    row = int(np.flatnonzero(full.ids == train.ids[0])[0])
    assert full.labels[row] == train.labels[0]


def test_all_views_and_defaults():
    train, _ = datasets.load("mfeat", modalities=VIEWS)
    assert train.modalities == VIEWS
    train, _ = datasets.load("mfeat")
    assert train.modalities == ("pix", "mor")


@pytest.mark.parametrize("call, message", [
    (lambda: datasets.load("nope"), "unknown dataset 'nope'"),
    (lambda: datasets.load("mfeat", modalities=("pix", "colour")), "no modality 'colour'"),
    (lambda: datasets.load("mfeat", modalities=("pix", "pix")), "twice"),
])
def test_bad_names(call, message):
    with pytest.raises(BmmalError, match=message):
        call()


def test_nan_features_are_reported():
    x = np.zeros((4, 2), dtype=np.float32)
    x[1, 0] = np.nan
    data = ArrayDataset({"a": x}, np.array([0, 1, 0, 1]), ("x", "y"))
    with pytest.raises(BmmalError, match="'a' has NaN or infinite values in 1 samples"):
        data.check_finite()


def test_array_dataset_validation():
    with pytest.raises(BmmalError, match="3 rows, labels have 2"):
        ArrayDataset({"a": np.zeros((3, 1))}, np.array([0, 1]), ("x", "y"))
    with pytest.raises(BmmalError, match="label 5 outside"):
        ArrayDataset({"a": np.zeros((2, 1))}, np.array([0, 5]), ("x", "y"))


def test_stratified_split_proportions():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train, test = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[test]).tolist() == [10, 6, 4]
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 100


def test_synthetic_informativeness_controls_modality_strength():
    from sklearn.linear_model import LogisticRegression

    data = make_synthetic(n_samples=600, n_classes=4, informativeness=(4.0, 0.0), dims=8, seed=0)
    train, test = np.arange(400), np.arange(400, 600)
    scores = {}
    for m in data.modalities:
        clf = LogisticRegression(max_iter=500).fit(data.features[m][train], data.labels[train])
        scores[m] = clf.score(data.features[m][test], data.labels[test])
    assert scores["m0"] > 0.9 and scores["m1"] < 0.45
