"""Ctrl-C during a long command says what is saved and the exact command that continues it (exit 130)."""

import pandas as pd
import yaml

from bmmal.cli import main
from bmmal.loop import ActiveLearner

SMALL = {"dataset": {"name": "synthetic", "options": {"n_samples": 200, "n_classes": 3}},
         "strategy": "badge", "initial_budget": 10, "budget": 10, "rounds": 3, "train": {"epochs": 5}}


def ctrl_c_at_round(monkeypatch, stop_at: int):
    original = ActiveLearner._next_round

    def interrupted(self, round_index):
        if round_index == stop_at:
            raise KeyboardInterrupt
        original(self, round_index)

    monkeypatch.setattr(ActiveLearner, "_next_round", interrupted)


def test_ctrl_c_in_run_names_the_resume_command_and_resume_finishes(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "my run"
    ctrl_c_at_round(monkeypatch, 2)
    assert main(["run", "--config", str(config), "--out", str(out)]) == 130
    err = capsys.readouterr().err.replace("\n", "")
    assert "interrupted: rounds 0-1 are saved in" in err and f"continue with `bmmal resume '{out}'`" in err
    monkeypatch.undo()
    assert main(["resume", str(out)]) == 0
    assert list(pd.read_csv(out / "metrics.csv")["round"]) == [0, 1, 2, 3]


def test_ctrl_c_in_benchmark_names_the_command_that_continues(tmp_path, monkeypatch, capsys):
    config = tmp_path / "bench.yaml"
    config.write_text(yaml.safe_dump({"name": "tiny", "datasets": {"d": SMALL["dataset"]}, "strategies": ["random"],
                                      "seeds": 1, "base": {"initial_budget": 10, "budget": 10, "rounds": 2,
                                                           "train": {"epochs": 2}}}))
    ctrl_c_at_round(monkeypatch, 1)
    assert main(["benchmark", "--config", str(config), "--out", str(tmp_path / "b")]) == 130
    err = capsys.readouterr().err.replace("\n", "")
    assert f"continue with `bmmal benchmark --config {config} --out {tmp_path / 'b'}`" in err


def test_resume_of_a_finished_run_shows_its_rounds(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "rounds": 1}))
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "is complete (rounds 0-1); nothing to do" in out.replace("\n", "")
    table = out[out.index("rounds"):]
    assert " 10 " in table and " 20 " in table  # both finished rounds are listed with their label counts
