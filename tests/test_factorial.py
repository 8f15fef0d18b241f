"""The query x trainer factorial: settings labels, the AULC table against hand-computed values, and a
tiny strategies x trainers x seeds grid run through the local and the Ray executors."""

import numpy as np
import pandas as pd
import pytest

from bmmal.experiment import factorial, runner
from bmmal.experiment.executors import LocalExecutor, RayExecutor
from bmmal.experiment.grid import BenchmarkConfig
from bmmal.experiment.report import write_report
from bmmal.experiment.results import read_results, wide
from tests.test_experiment_runner import CONFIG as RUNNER_CONFIG

CONFIG = {**RUNNER_CONFIG, "name": "tiny-factorial", "strategies": ["random", "badge"],
          "base": {**RUNNER_CONFIG["base"], "rounds": 1},
          "settings": {"trainer": {"joint": {"train": {"trainer": "joint"}},
                                   "ogm_ge": {"train": {"trainer": "ogm_ge", "trainer_params": {"alpha": 1.0}}}}}}


def test_split_setting():
    assert factorial.split_setting("trainer=ogm_ge") == ("ogm_ge", "")
    assert factorial.split_setting("fusion=sum,trainer=pmr,lr=hi") == ("pmr", "fusion=sum,lr=hi")
    assert factorial.split_setting("default") == (None, "default")


def _frame():
    """2 strategies x 2 trainers x 3 seeds, two rounds at 10 and 30 labels: AULC = mean of the two."""
    rows = []
    acc = {("badge", "joint"): [(0.5, 0.7), (0.4, 0.8), (0.6, 0.6)],
           ("badge", "ogm_ge"): [(0.6, 0.8), (0.5, 0.7), (0.6, 0.8)],
           ("bmmal", "joint"): [(0.5, 0.7), (0.5, 0.7), (0.6, 0.6)],
           ("bmmal", "ogm_ge"): [(0.7, 0.9), (0.4, 0.6), (0.6, 0.8)]}
    for (s, t), seeds in acc.items():
        for seed, (a0, a1) in enumerate(seeds):
            for r, (n, a) in enumerate([(10, a0), (30, a1)]):
                rows.append({"dataset": "d", "setting": f"trainer={t}", "strategy": s, "seed": seed, "round": r,
                             "n_labeled": n, "accuracy_micro": a})
    return factorial.with_trainer(pd.DataFrame(rows))


def test_factorial_table_against_hand_computed_values():
    table = factorial.factorial_table(_frame()).set_index(["strategy", "trainer"])
    # AULC per seed = (a0 + a1) / 2
    base = np.array([0.6, 0.6, 0.6])
    ogm = np.array([0.7, 0.6, 0.7])
    bmmal_ogm = np.array([0.8, 0.5, 0.7])
    assert table.loc[("badge", "ogm_ge"), "mean"] == pytest.approx(ogm.mean())
    assert table.loc[("badge", "ogm_ge"), "std"] == pytest.approx(ogm.std(ddof=1))
    assert table.loc[("badge", "ogm_ge"), "diff"] == pytest.approx((ogm - base).mean())
    assert table.loc[("badge", "ogm_ge"), ["wins", "ties", "losses"]].tolist() == [2, 1, 0]
    assert table.loc[("bmmal", "ogm_ge"), "diff"] == pytest.approx((bmmal_ogm - base).mean())
    assert table.loc[("bmmal", "ogm_ge"), ["wins", "ties", "losses"]].tolist() == [2, 0, 1]
    assert table.loc[("bmmal", "joint"), ["wins", "ties", "losses"]].tolist() == [0, 3, 0]
    assert np.isnan(table.loc[("badge", "joint"), "diff"])  # the reference itself
    assert table["n"].eq(3).all()


def test_results_without_trainer_axis_have_no_factorial():
    frame = pd.DataFrame({"dataset": ["d"], "setting": ["default"], "strategy": ["badge"], "seed": [0],
                          "round": [0], "n_labeled": [10], "accuracy_micro": [0.5]})
    assert factorial.sections(frame, frame) == []


def _factorial(out):
    long = read_results(out)
    return factorial.factorial_table(factorial.with_trainer(wide(long)))


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("factorial-local")
    runner.run_benchmark(BenchmarkConfig.model_validate(CONFIG), out, LocalExecutor(workers=1), threads=1)
    return out


@pytest.mark.slow
def test_factorial_grid_shares_round0_per_seed_and_trainer(local_run):
    assert len(list((local_run / "round0").glob("*/round0.json"))) == 2 * 2  # seeds x trainers
    frame = factorial.with_trainer(wide(read_results(local_run)))
    first = frame[frame["round"] == 0].groupby(["seed", "trainer"])["accuracy_micro"].nunique()
    assert first.eq(1).all()  # both strategies start from the same round 0 of their (seed, trainer)
    table = _factorial(local_run)
    assert len(table) == 4 and table["n"].eq(2).all()
    report = write_report(local_run).read_text()
    assert "query x trainer factorial" in report and "badge + joint" in report
    assert "Modality balance per round, per trainer" in report
    assert "](figures/syn-factorial-difference.png)" in report
    assert (local_run / "figures" / "syn-factorial-difference.png").stat().st_size > 5000


@pytest.mark.slow
def test_factorial_is_identical_through_ray(local_run, tmp_path):
    pytest.importorskip("ray")
    runner.run_benchmark(BenchmarkConfig.model_validate(CONFIG), tmp_path, RayExecutor(workers=1, threads=1),
                         threads=1)
    pd.testing.assert_frame_equal(_factorial(tmp_path), _factorial(local_run))


def test_difference_figure_marks_the_reference_and_significance(tmp_path, monkeypatch):
    from bmmal.experiment import plots

    drawn = {}
    real = plots.difference_grid

    def spy(diff, p, reference, path, title, alpha=0.05):
        drawn.update(diff=diff, p=p, reference=reference)
        return real(diff, p, reference, path, title, alpha)

    monkeypatch.setattr(plots, "difference_grid", spy)
    png = factorial.difference_figure(_frame(), tmp_path / "f.png", "d")
    assert png.stat().st_size > 5000
    assert drawn["reference"] == ("badge", "joint")
    assert list(drawn["diff"].index) == ["badge", "bmmal"] and list(drawn["diff"].columns) == ["joint", "ogm_ge"]
    assert drawn["diff"].loc["bmmal", "ogm_ge"] == pytest.approx(np.mean([0.8, 0.5, 0.7]) - 0.6)
    assert np.isnan(drawn["diff"].loc["badge", "joint"])
    lines = factorial.sections(_frame().drop(columns=["trainer", "rest"]).assign(
        **{f"unimodal_accuracy_micro:{m}": 0.5 for m in "ab"}, **{f"contribution:{m}": 0.5 for m in "ab"}),
        pd.DataFrame({"dataset": ["d", "d"], "metric": ["unimodal_accuracy_micro:a", "unimodal_accuracy_micro:b"]}),
        run_dir=tmp_path)
    assert "![paired AULC difference against badge + joint](figures/d-factorial-difference.png)" in lines
    assert (tmp_path / "figures" / "d-factorial-difference.png").is_file()
