"""The pitfall generator: each axis of `synthetic` does what it says."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from bmmal import datasets
from bmmal.datasets.synthetic import make_synthetic
from bmmal.errors import BmmalError


def accuracy(train, test, modalities, model) -> float:
    def stack(d):
        return np.hstack([d.features[m] for m in modalities])

    return model.fit(stack(train), train.labels).score(stack(test), test.labels)


def linear():
    return LogisticRegression(max_iter=300)


def test_modality_only_accuracy_moves_with_its_difficulty():
    weak, strong = [], []
    for level in (0.0, 1.0, 2.0, 4.0):
        train, test = datasets.load("synthetic", seed=0, n_samples=800, informativeness=[3.0, level], dims=[8, 8])
        weak.append(accuracy(train, test, ["m1"], linear()))
        strong.append(accuracy(train, test, ["m0"], linear()))
    assert weak[0] < 0.35  # no signal: about chance (1/4)
    assert all(a + 0.05 < b for a, b in pairwise(weak)), weak
    assert weak[-1] > 0.9
    assert max(strong) - min(strong) < 0.08  # the other modality is untouched


def test_unique_each_modality_sees_only_its_own_classes():
    train, test = datasets.load("synthetic", seed=0, n_samples=800, n_classes=4, informativeness=[4.0, 4.0],
                                dims=8, interaction="unique")
    for m, own in (("m0", [0, 2]), ("m1", [1, 3])):
        model = linear().fit(train.features[m], train.labels)
        predicted = model.predict(test.features[m])
        per_class = {c: (predicted[test.labels == c] == c).mean() for c in range(4)}
        assert min(per_class[c] for c in own) > 0.9, per_class
        assert accuracy(train, test, [m], linear()) < 0.82  # two classes it cannot tell apart: at most ~0.75
    assert accuracy(train, test, ["m0", "m1"], linear()) > 0.9


def test_synergistic_neither_modality_alone_beats_chance_but_the_joint_does():
    train, test = datasets.load("synthetic", seed=0, n_samples=1000, n_classes=2, informativeness=[4.0, 4.0],
                                dims=4, interaction="synergistic")
    for m in ("m0", "m1"):
        assert abs(accuracy(train, test, [m], KNeighborsClassifier(15)) - 0.5) < 0.08
        assert abs(accuracy(train, test, [m], linear()) - 0.5) < 0.08
    assert accuracy(train, test, ["m0", "m1"], KNeighborsClassifier(15)) > 0.9


def test_same_seed_same_data_and_another_seed_other_data():
    options = {"n_samples": 200, "informativeness": [2.0, 1.0, 0.5], "dims": [5, 3, 2], "interaction": "synergistic",
               "label_noise": 0.1, "scale": [1.0, 10.0, 0.1]}
    (a, a_test), (b, b_test) = (datasets.load("synthetic", seed=3, **options) for _ in range(2))
    for first, second in ((a, b), (a_test, b_test)):
        np.testing.assert_array_equal(first.labels, second.labels)
        np.testing.assert_array_equal(first.ids, second.ids)
        for m in first.modalities:
            np.testing.assert_array_equal(first.features[m], second.features[m])
    other, _ = datasets.load("synthetic", seed=4, **options)
    assert not np.array_equal(other.features["m0"], a.features["m0"])


def test_label_noise_flips_that_fraction_of_training_labels_only():
    clean_train, clean_test = datasets.load("synthetic", seed=1, n_samples=500)
    noisy_train, noisy_test = datasets.load("synthetic", seed=1, n_samples=500, label_noise=0.2)
    np.testing.assert_array_equal(clean_train.ids, noisy_train.ids)
    np.testing.assert_array_equal(clean_test.labels, noisy_test.labels)
    flipped = clean_train.labels != noisy_train.labels
    assert flipped.sum() == round(0.2 * len(clean_train))
    for m in clean_train.modalities:
        np.testing.assert_array_equal(clean_train.features[m], noisy_train.features[m])


def test_dims_and_scale_per_modality():
    data = make_synthetic(n_samples=400, informativeness=(1.0, 1.0), dims=(32, 3), scale=(1.0, 100.0))
    assert data.features["m0"].shape == (400, 32) and data.features["m1"].shape == (400, 3)
    ratio = data.features["m1"].std() / data.features["m0"].std()
    assert 70 < ratio < 140


def test_redundant_default_is_unchanged_by_the_new_axes():
    plain = make_synthetic(n_samples=100, seed=2)
    explicit = make_synthetic(n_samples=100, seed=2, interaction="redundant", scale=1.0, label_noise=0.0)
    for m in plain.modalities:
        np.testing.assert_array_equal(plain.features[m], explicit.features[m])


@pytest.mark.parametrize("options, message", [
    ({"interaction": "xor"}, "unknown interaction 'xor'"),
    ({"dims": [4, 4, 4]}, "dims must have one entry per modality"),
    ({"scale": [1.0]}, "scale must have one entry per modality"),
    ({"label_noise": 1.0}, "label_noise must be in"),
    ({"interaction": "unique", "n_classes": 1}, "needs at least two modalities and two classes"),
    ({"interaction": "unique", "informativeness": [1, 1, 1], "n_classes": 2}, "one class per modality"),
])
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(BmmalError, match=message):
        datasets.load("synthetic", n_samples=60, **options)
