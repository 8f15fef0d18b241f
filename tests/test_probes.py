"""Linear-probe accuracy per modality (metrics.probe_accuracy) and its opt-in use in the loop."""

import numpy as np
import pandas as pd

from bmmal.config import RunConfig
from bmmal.loop import ActiveLearner
from bmmal.metrics import probe_accuracy


def embeddings(rng, labels, informative: bool, dim: int = 5):
    z = rng.normal(size=(len(labels), dim))
    if informative:
        z[:, 0] += 4.0 * labels
    return z


def test_probe_scores_the_informative_modality_only():
    rng = np.random.default_rng(0)
    fit_y, test_y = rng.integers(0, 3, 150), rng.integers(0, 3, 300)
    fit = {"good": embeddings(rng, fit_y, True), "noise": embeddings(rng, fit_y, False)}
    test = {"good": embeddings(rng, test_y, True), "noise": embeddings(rng, test_y, False)}
    out = probe_accuracy(fit, fit_y, np.ones((150, 2), bool), test, test_y, np.ones((300, 2), bool))
    assert out["probe_accuracy_micro:good"] > 0.9
    assert out["probe_accuracy_micro:noise"] < 0.5


def test_probe_uses_present_rows_only_and_is_nan_without_two_classes():
    rng = np.random.default_rng(1)
    fit_y, test_y = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    fit = {"a": embeddings(rng, fit_y, True), "b": embeddings(rng, fit_y, True)}
    test = {"a": embeddings(rng, test_y, True), "b": embeddings(rng, test_y, True)}
    fit_present = np.ones((100, 2), bool)
    fit_present[fit_y == 1, 1] = False  # b's labeled rows are all of class 0: no probe can be fitted
    test_present = np.ones((100, 2), bool)
    test["a"][test_y == 1] = -100.0  # garbage where a is absent: must not be scored
    test_present[test_y == 1, 0] = False
    out = probe_accuracy(fit, fit_y, fit_present, test, test_y, test_present)
    assert out["probe_accuracy_micro:a"] > 0.9
    assert np.isnan(out["probe_accuracy_micro:b"])


def run_config(probes: bool) -> RunConfig:
    return RunConfig.model_validate({
        "dataset": {"name": "synthetic", "options": {"n_samples": 240, "n_classes": 3,
                                                     "informativeness": [3.0, 0.3], "dims": [6, 4]}},
        "strategy": "random", "initial_budget": 30, "budget": 30, "rounds": 1, "seed": 2,
        "train": {"epochs": 20}, "mc_passes": 2, "probes": probes})


def test_loop_records_probes_every_round_only_when_asked(tmp_path):
    ActiveLearner(run_config(True), tmp_path / "probed").run()
    metrics = pd.read_csv(tmp_path / "probed" / "metrics.csv")
    assert len(metrics) == 2
    strong, weak = metrics["probe_accuracy_micro:m0"], metrics["probe_accuracy_micro:m1"]
    assert strong.between(0, 1).all() and weak.between(0, 1).all()
    assert (strong > weak).all()  # informativeness 3.0 vs 0.3
    ActiveLearner(run_config(False), tmp_path / "plain").run()
    assert not any(c.startswith("probe_") for c in pd.read_csv(tmp_path / "plain" / "metrics.csv"))
