"""Experiment tracking: TensorBoard event files and MLflow runs are written, and read back with each
backend's own reader; a resumed run continues its MLflow run; a benchmark is one MLflow experiment with one
run per cell; a missing backend is a one-line error naming the extra to install. (Creating an MLflow
database takes seconds, so only two tests create one.)"""

import sys

import pytest
import yaml

from bmmal.cli import main
from bmmal.errors import BmmalError
from bmmal.loop import ActiveLearner
from bmmal.resolve import run_config
from bmmal.storage import read_json
from bmmal.tracking import flat_params, open_trackers, parse_trackers

PARAMS = {"strategy": "bmmal", "seed": 3, "train": {"lr": 0.001, "epochs": 5}, "model": {"hidden_dims": [8]}}
ROWS = [{"round": 0, "n_labeled": 10, "accuracy_micro": 0.5, "contribution:pix": 0.7, "note": "text"},
        {"round": 1, "n_labeled": 20, "accuracy_micro": 0.75, "contribution:pix": 0.6, "query_seconds": 0.01}]


def test_tracker_names_and_params():
    assert parse_trackers("tensorboard, mlflow,tensorboard") == ("tensorboard", "mlflow")
    assert parse_trackers([]) == ()
    with pytest.raises(BmmalError, match="unknown tracker 'tensorbord' \\(did you mean 'tensorboard'\\?\\)"):
        parse_trackers("tensorbord")
    assert flat_params(PARAMS) == {"strategy": "bmmal", "seed": "3", "train.lr": "0.001", "train.epochs": "5",
                                   "model.hidden_dims": "[8]"}


def test_tensorboard_event_files_read_back(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    with open_trackers(["tensorboard"], tmp_path, "run", PARAMS) as log_round:
        for row in ROWS:
            log_round(row)
    events = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"round", "n_labeled", "accuracy_micro", "contribution:pix", "query_seconds"} <= set(scalars)
    assert "note" not in scalars
    acc = events.Scalars("accuracy_micro")
    assert [(e.step, e.value) for e in acc] == [(10, 0.5), (20, 0.75)]
    assert [e.step for e in events.Scalars("query_seconds")] == [20]
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "train.lr: 0.001" in text


BACKEND_MODULES = {"tensorboard": ["torch.utils.tensorboard"],
                   "mlflow": ["mlflow", "mlflow.entities", "mlflow.exceptions", "mlflow.tracking"]}


def _uninstalled(monkeypatch, modules):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if the package were not installed


@pytest.mark.parametrize("tracker", sorted(BACKEND_MODULES))
def test_a_missing_backend_names_the_extra(tmp_path, monkeypatch, tracker):
    _uninstalled(monkeypatch, BACKEND_MODULES[tracker])
    hint = f"pip install 'bmmal\\[{tracker}\\]'"
    with pytest.raises(BmmalError, match=hint), open_trackers([tracker], tmp_path, "r", {}):
        pass


def test_no_trackers_imports_no_backend(tmp_path, monkeypatch):
    _uninstalled(monkeypatch, [m for modules in BACKEND_MODULES.values() for m in modules])
    with open_trackers([], tmp_path, "r", {}) as log:
        log({"round": 0})
    assert list(tmp_path.iterdir()) == []


SMALL_RUN = {"dataset": {"name": "synthetic", "options": {"n_samples": 120, "n_classes": 3, "dims": 4}},
             "strategy": "badge", "initial_budget": 9, "budget": 6, "rounds": 2,
             "model": {"hidden_dims": [8], "embed_dim": 4}, "train": {"epochs": 3, "batch_size": 16}}


def test_run_tracks_every_round_and_resume_continues(tmp_path, capsys):
    mlflow = pytest.importorskip("mlflow")
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    config, run_dir = tmp_path / "config.yaml", tmp_path / "run"
    config.write_text(yaml.safe_dump(SMALL_RUN))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after round 1 is committed
        ActiveLearner(run_config({**SMALL_RUN, "tracking": "tensorboard,mlflow"}), run_dir,
                      on_round=lambda row: _raise(KeyboardInterrupt()) if row["round"] == 1 else None).run()
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")  # the default store
    (run,) = client.search_runs([client.get_experiment_by_name("bmmal").experiment_id])
    assert run.info.status == "KILLED" and run.data.metrics["n_labeled"] == 15
    assert main(["resume", str(run_dir)]) == 0

    events = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("round")] == [(9, 0), (15, 1), (21, 2)]
    (run,) = client.search_runs([client.get_experiment_by_name("bmmal").experiment_id])  # the same MLflow run
    assert run.info.run_name == "run" and run.info.status == "FINISHED" and run.data.params["strategy"] == "badge"
    history = read_json(run_dir / "state.json")["history"]
    logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "accuracy_micro")}
    assert logged == {row["n_labeled"]: pytest.approx(row["accuracy_micro"]) for row in history}
    numeric = {k for row in history for k, v in row.items() if isinstance(v, (int, float))}
    assert set(run.data.metrics) == numeric and set(events.Tags()["scalars"]) == numeric


def _raise(error):
    raise error


def test_cli_track_option(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**SMALL_RUN, "rounds": 1}))
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run"), "--track", "tensorbord"]) == 2
    assert "unknown tracker 'tensorbord' (did you mean 'tensorboard'?)" in capsys.readouterr().err
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run"), "--track", "tensorboard"]) == 0
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["tracking"]["to"] == ["tensorboard"]
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_benchmark_logs_one_mlflow_run_per_cell(tmp_path, capsys):
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    bench = {"name": "tiny", "datasets": {"syn": SMALL_RUN["dataset"]}, "strategies": ["random", "bmmal"],
             "seeds": 1, "base": {k: v for k, v in SMALL_RUN.items() if k not in ("dataset", "strategy")}}
    config, out = tmp_path / "bench.yaml", tmp_path / "bench"
    config.write_text(yaml.safe_dump(bench))
    assert main(["benchmark", "--config", str(config), "--out", str(out), "--track", "mlflow,tensorboard"]) == 0
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    # one run per cell; the shared round 0 is logged by each cell, not by the worker that trained it
    assert sorted(r.info.run_name for r in runs) == ["runs/syn/default/bmmal/seed0", "runs/syn/default/random/seed0"]
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "accuracy_micro")]
        assert sorted(steps) == [9, 15, 21]
        assert run.data.params["strategy"] == run.info.run_name.split("/")[-2]
        assert list((out / run.info.run_name / "tensorboard").glob("events.out.tfevents.*"))
    # tracking is not a setting of the experiment: without --track the finished cells are reused
    assert main(["benchmark", "--config", str(config), "--out", str(out)]) == 0
    assert "0 cells run, 2 reused" in capsys.readouterr().out


def test_a_benchmark_names_a_missing_backend_before_any_work(tmp_path, monkeypatch, capsys):
    _uninstalled(monkeypatch, BACKEND_MODULES["tensorboard"])
    bench = {"name": "tiny", "datasets": {"syn": SMALL_RUN["dataset"]}, "strategies": ["random"], "seeds": 1,
             "base": {"rounds": 1, "tracking": ["tensorboard"]}}
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(bench))
    assert main(["benchmark", "--config", str(tmp_path / "bench.yaml"), "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'bmmal[tensorboard]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
