import json

import numpy as np
import pandas as pd
import pytest

from bmmal.config import RunConfig
from bmmal.errors import BmmalError
from bmmal.loop import ActiveLearner


def config(strategy="bmmal", **overrides):
    base = {"dataset": {"name": "synthetic", "options": {"n_samples": 300, "n_classes": 3,
                                                         "informativeness": [3.0, 0.8], "dims": [6, 4]}},
            "strategy": strategy, "initial_budget": 12, "budget": 10, "rounds": 3, "seed": 5,
            "train": {"epochs": 15}, "mc_passes": 3}
    return RunConfig.model_validate({**base, **overrides})


class Interrupt(Exception):
    pass


def test_run_writes_state_and_metrics(tmp_path):
    history = ActiveLearner(config(), tmp_path / "run").run()
    assert [row["n_labeled"] for row in history] == [12, 22, 32, 42]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["completed_round"] == 3 and len(state["pool"]["ids"]) == 42
    assert sorted(set(state["pool"]["rounds"])) == [0, 1, 2, 3]
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(metrics["round"]) == [0, 1, 2, 3]
    for column in ("accuracy_micro", "accuracy_macro", "unimodal_accuracy_micro:m0", "contribution:m1",
                   "query_seconds", "train_seconds", "selected_dominant_share:m0"):
        assert column in metrics
    np.testing.assert_allclose(metrics["contribution:m0"] + metrics["contribution:m1"], 1.0, rtol=1e-5)
    assert [p.name for p in (tmp_path / "run").glob("model-r*.pt")] == ["model-r003.pt"]


@pytest.mark.parametrize("strategy", ["badge", "bmmal"])
def test_resume_gives_the_same_result(tmp_path, strategy):
    full = ActiveLearner(config(strategy), tmp_path / "full").run()

    def crash_after_round_1(row):
        if row["round"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        ActiveLearner(config(strategy), tmp_path / "cut", on_round=crash_after_round_1).run()
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["completed_round"] == 1
    resumed = ActiveLearner.resume(tmp_path / "cut").run()
    drop = ("train_seconds", "query_seconds", "infer_seconds")
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed] == \
           [{k: v for k, v in r.items() if k not in drop} for r in full]
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["pool"] == \
           json.loads((tmp_path / "full" / "state.json").read_text())["pool"]


def test_strategies_share_round_zero(tmp_path):
    runs = {s: ActiveLearner(config(s, rounds=1), tmp_path / s, round0_cache=tmp_path / "r0").run()
            for s in ("random", "badge", "bmmal")}
    first = {s: {k: v for k, v in h[0].items() if k != "train_seconds"} for s, h in runs.items()}
    assert first["random"] == first["badge"] == first["bmmal"]
    states = {s: json.loads((tmp_path / s / "state.json").read_text())["pool"] for s in runs}
    round0 = {s: [i for i, r in zip(st["ids"], st["rounds"]) if r == 0] for s, st in states.items()}
    assert round0["random"] == round0["badge"] == round0["bmmal"]
    assert len(list((tmp_path / "r0").iterdir())) == 1  # trained once
    # the cache gives the same model as training round 0 again
    alone = ActiveLearner(config("badge", rounds=1), tmp_path / "alone").run()
    assert {k: v for k, v in alone[1].items() if not k.endswith("seconds")} == \
           {k: v for k, v in runs["badge"][1].items() if not k.endswith("seconds")}


def test_budget_beyond_pool_fails_before_writing(tmp_path):
    with pytest.raises(BmmalError, match="need 1012 labels, but the training pool has 240"):
        ActiveLearner(config(budget=500, rounds=2), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_existing_run_is_not_overwritten(tmp_path):
    ActiveLearner(config(rounds=0), tmp_path / "run").run()
    with pytest.raises(BmmalError, match="already holds a run"):
        ActiveLearner(config(rounds=0), tmp_path / "run").run()
