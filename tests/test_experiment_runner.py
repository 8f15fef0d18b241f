"""Benchmark grids end to end on tiny synthetic data: executors agree, interrupted benchmarks resume,
the report has every section and its figures."""

import io
import re

import pandas as pd
import pytest
from rich.console import Console

from bmmal.cli import main
from bmmal.experiment import runner
from bmmal.experiment.executors import LocalExecutor, RayExecutor
from bmmal.experiment.grid import BenchmarkConfig, plan
from bmmal.experiment.results import read_results, without_timings
from bmmal.loop import ActiveLearner
from bmmal.storage import read_json

CONFIG = {
    "name": "tiny",
    "datasets": {"syn": {"name": "synthetic",
                         "options": {"n_samples": 120, "n_classes": 3, "informativeness": [3.0, 0.5], "dims": 4}}},
    "strategies": ["random", "bmmal"],
    "seeds": 2,
    "base": {"initial_budget": 9, "budget": 6, "rounds": 2, "mc_passes": 2,
             "model": {"hidden_dims": [8], "embed_dim": 4}, "train": {"epochs": 3, "batch_size": 16}},
}


def config() -> BenchmarkConfig:
    return BenchmarkConfig.model_validate(CONFIG)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The grid run once by two local worker processes."""
    out = tmp_path_factory.mktemp("local")
    run = runner.run_benchmark(config(), out, LocalExecutor(workers=2), threads=1, console=Console(file=LOG, width=200))
    return out, run


LOG = io.StringIO()  # what the local run printed: not a terminal


@pytest.mark.slow
def test_progress_off_a_terminal_is_one_line_per_cell(local_run):
    lines = LOG.getvalue().splitlines()
    assert "label schedule: 9 initial + 2 rounds of 6 = 21 labels, 3 evaluations" in lines
    round0 = [line for line in lines if re.match(r"^\d\d:\d\d:\d\d  round 0 \d/2  syn seed \d  acc 0\.\d{4}", line)]
    cells = [line for line in lines if re.match(r"^\d\d:\d\d:\d\d  cells \d/4  syn (random|bmmal) seed \d  acc 0\.\d{4}", line)]
    assert len(round0) == 2 and len(cells) == 4
    assert all("ETA" in line for line in cells[:-1]) and "ETA" not in cells[-1]


@pytest.mark.slow
def test_local_grid_results(local_run):
    out, run = local_run
    long = read_results(out)
    assert len(run.cells) == 4 and set(run.status.values()) == {"new"}
    assert set(long["strategy"]) == {"random", "bmmal"} and set(long["seed"]) == {0, 1}
    assert sorted(long["round"].unique()) == [0, 1, 2]
    assert sorted(long.loc[long["metric"] == "accuracy_micro", "n_labeled"].unique()) == [9, 15, 21]
    # round 0 is shared: both strategies of a seed start from the same model, trained once per seed
    acc0 = long[(long["round"] == 0) & (long["metric"] == "accuracy_micro")]
    assert acc0.groupby("seed")["value"].nunique().eq(1).all()
    assert len(list((out / "round0").glob("*/round0.json"))) == 2
    for cell in run.cells:
        assert read_json(out / cell.path / "state.json")["completed_round"] == 2


@pytest.mark.slow
def test_ray_executor_gives_identical_table(local_run, tmp_path):
    pytest.importorskip("ray")
    out, _ = local_run
    runner.run_benchmark(config(), tmp_path, RayExecutor(workers=1, threads=1), threads=1)  # one Ray worker: quick
    pd.testing.assert_frame_equal(without_timings(read_results(tmp_path)), without_timings(read_results(out)))


@pytest.mark.slow
def test_interrupted_benchmark_resumes_without_recomputing(local_run, tmp_path, monkeypatch):
    cfg = config()
    first = plan(cfg)[0]

    class Interrupt(Exception):
        pass

    def stop_after_round_1(row):
        if row["round"] == 1:
            raise Interrupt

    # a benchmark killed in the middle of its first cell: rounds 0 and 1 committed, round 2 missing
    with pytest.raises(Interrupt):
        ActiveLearner(first.config, tmp_path / first.path, round0_cache=tmp_path / "round0",
                      on_round=stop_after_round_1).run()
    before = read_json(tmp_path / first.path / "state.json")["history"]

    calls = []
    real = runner.run_task
    monkeypatch.setattr(runner, "run_task", lambda task: calls.append(task) or real(task))
    run = runner.run_benchmark(cfg, tmp_path, LocalExecutor(workers=1), threads=1)
    assert run.status[first.key] == "resume"
    assert sum(t.round0_only for t in calls) == 1  # seed 0's round 0 was already cached
    assert sum(not t.round0_only for t in calls) == 4
    after = read_json(tmp_path / first.path / "state.json")["history"]
    assert after[:2] == before and len(after) == 3  # rounds 0-1 kept, round 2 added

    # resumed == uninterrupted
    out, _ = local_run
    pd.testing.assert_frame_equal(without_timings(read_results(tmp_path)), without_timings(read_results(out)))

    # a rerun of a finished benchmark computes nothing and touches no run
    states = {c.key: (tmp_path / c.path / "state.json").stat().st_mtime_ns for c in run.cells}
    results = (tmp_path / "results.csv").read_text()
    calls.clear()
    again = runner.run_benchmark(cfg, tmp_path, LocalExecutor(workers=1), threads=1)
    assert calls == [] and set(again.status.values()) == {"done"}
    assert states == {c.key: (tmp_path / c.path / "state.json").stat().st_mtime_ns for c in run.cells}
    assert (tmp_path / "results.csv").read_text() == results


@pytest.mark.slow
def test_report_sections_and_figures(local_run, capsys):
    out, _ = local_run
    assert main(["report", str(out)]) == 0
    text = (out / "report.md").read_text()
    for heading in ("## syn", "### Fused accuracy (micro) per round", "### Fused accuracy (macro) per round",
                    "### Area under the learning curve", "### Paired comparisons over seeds",
                    "Against **random**", "### Modality balance per round", "### Selection balance per round",
                    "### Figures"):
        assert heading in text, heading
    assert "No comparison against badge" in text  # not in this grid
    assert "**" in text.split("### Fused accuracy (micro) per round")[1].split("###")[0]  # best marked
    for name in ("learning-curves", "modality-accuracy", "contribution", "selection", "composition"):
        png = out / "figures" / f"syn-default-{name}.png"
        assert png.stat().st_size > 5000, name
        assert f"figures/{png.name}" in text
    # numbers in the report are the analysis of results.csv: round 0 of both strategies is the same model
    micro = text.split("### Fused accuracy (micro) per round")[1].split("###")[0]
    row0 = next(line for line in micro.splitlines() if line.startswith("| 0 |"))
    assert row0.count("**") == 4  # a tie: both marked best
