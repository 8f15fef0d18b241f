"""Accuracy metrics are scikit-learn's: micro = accuracy_score, macro = balanced_accuracy_score."""

import numpy as np
import pytest

from bmmal import metrics


def test_accuracies_against_hand_computed_values(recwarn):
    y = np.array([0, 0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 0, 1, 1, 3, 2])  # class 3 is predicted but absent from y
    assert metrics.accuracy_micro(y, pred) == pytest.approx(5 / 7)
    assert metrics.accuracy_macro(y, pred) == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    assert not recwarn.list  # the absent class is left out without a warning
    assert np.isnan(metrics.accuracy_micro(np.array([]), np.array([])))
    assert np.isnan(metrics.accuracy_macro(np.array([]), np.array([])))


def test_macro_accuracy_is_scikit_learns_balanced_accuracy(monkeypatch):
    calls = []
    monkeypatch.setattr(metrics, "balanced_accuracy_score", lambda y, p: calls.append(len(y)) or 0.25)
    assert metrics.accuracy_macro(np.array([0, 1]), np.array([0, 0])) == 0.25 and calls == [2]
