"""Evaluation metrics: fused accuracy (micro and macro), per-modality accuracy, F1, ECE, contribution,
and (opt-in) linear-probe accuracy of each modality's embedding.

"micro" accuracy is the fraction of correct predictions; "macro" accuracy is the mean per-class
recall (the reference code's "Top-1" is this macro one).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bmmal.contribution import contribution_shares
from bmmal.inference import pool_outputs


def accuracy_micro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of correct predictions (scikit-learn's accuracy_score); NaN without samples."""
    return float(accuracy_score(y_true, y_pred)) if len(y_true) else float("nan")


def accuracy_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over the classes present in y_true of the per-class recall (scikit-learn's balanced_accuracy_score);
    NaN without samples."""
    if not len(y_true):
        return float("nan")
    with warnings.catch_warnings():  # a predicted class absent from y_true has no recall: it is left out
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(y_true, y_pred))


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true), zero_division=0))


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """L1 ECE over equal-width confidence bins."""
    probs = np.asarray(probs)
    confidence = probs.max(1)
    correct = probs.argmax(1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def completeness_accuracy(y_true: np.ndarray, y_pred: np.ndarray, present: np.ndarray) -> dict[str, float]:
    """Fused accuracy (micro and macro) on the complete samples (every modality present) and on the incomplete
    ones, with their counts: 'accuracy_micro:complete', ..., 'n_incomplete'."""
    complete = np.asarray(present, dtype=bool).all(axis=1)
    out = {}
    for part, rows in (("complete", complete), ("incomplete", ~complete)):
        out[f"accuracy_micro:{part}"] = accuracy_micro(y_true[rows], y_pred[rows])
        out[f"accuracy_macro:{part}"] = accuracy_macro(y_true[rows], y_pred[rows])
        out[f"n_{part}"] = int(rows.sum())
    return out


def probe_accuracy(fit: dict[str, np.ndarray], fit_labels: np.ndarray, fit_present: np.ndarray,
                   test: dict[str, np.ndarray], test_labels: np.ndarray, test_present: np.ndarray) -> dict[str, float]:
    """Per modality m, 'probe_accuracy_micro:m': a linear probe (standardised logistic regression) fitted on
    m's frozen embeddings of the `fit` rows, accuracy on the `test` rows (rows where m is present).

    The per-modality measure of the balanced-learning papers: it says how much each encoder learned even
    when the unimodal heads are not trained (fused loss only). NaN when the fit rows have fewer than two
    classes."""
    out = {}
    for i, m in enumerate(fit):
        rows, test_rows = fit_present[:, i], test_present[:, i]
        if len(np.unique(fit_labels[rows])) < 2 or not test_rows.any():
            out[f"probe_accuracy_micro:{m}"] = float("nan")
            continue
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        probe.fit(fit[m][rows], fit_labels[rows])
        out[f"probe_accuracy_micro:{m}"] = accuracy_micro(test_labels[test_rows], probe.predict(test[m][test_rows]))
    return out


def evaluate(model, dataset, batch_size: int = 1024, probe_on: tuple | None = None) -> dict[str, float]:
    """Test metrics of a trained model. Per-modality names are 'metric:modality'; unimodal accuracy and
    contribution shares are over the samples that have the modality; with missing modalities the fused
    accuracy is also split into complete and incomplete samples (`completeness_accuracy`).

    probe_on: (train dataset, labeled rows) adds `probe_accuracy` (probes fitted on those rows' embeddings)."""
    needs = ("unimodal_probs", "shapley") + (("embeddings",) if probe_on is not None else ())
    out = pool_outputs(model, dataset, np.zeros(len(dataset), dtype=bool), needs, batch_size=batch_size)
    y = np.asarray(dataset.labels)
    pred = out.probs.argmax(1).numpy()
    metrics = {
        "accuracy_micro": accuracy_micro(y, pred),
        "accuracy_macro": accuracy_macro(y, pred),
        "f1_macro": f1_macro(y, pred),
        "ece": expected_calibration_error(out.probs.numpy(), y),
    }
    present = out.presence().numpy()
    for i, (m, probs) in enumerate(out.unimodal_probs.items()):
        rows = present[:, i]
        metrics[f"unimodal_accuracy_micro:{m}"] = accuracy_micro(y[rows], probs.argmax(1).numpy()[rows])
        metrics[f"unimodal_accuracy_macro:{m}"] = accuracy_macro(y[rows], probs.argmax(1).numpy()[rows])
    shares = contribution_shares(out.shapley, torch.as_tensor(y), out.presence()).numpy()
    for i, m in enumerate(out.unimodal_probs):
        metrics[f"contribution:{m}"] = float(shares[present[:, i], i].mean()) if present[:, i].any() \
            else float("nan")
    if not present.all():
        metrics.update(completeness_accuracy(y, pred, present))
    if probe_on is not None:
        train, rows = probe_on
        rows = np.asarray(rows, dtype=np.int64)
        fit = pool_outputs(model, train.subset(rows), np.zeros(len(rows), dtype=bool), ("embeddings",),
                           batch_size=batch_size)
        metrics.update(probe_accuracy({m: z.numpy() for m, z in fit.embeddings.items()},
                                      np.asarray(train.labels)[rows], fit.presence().numpy(),
                                      {m: z.numpy() for m, z in out.embeddings.items()}, y, present))
    return metrics
