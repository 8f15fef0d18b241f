"""The benchmark's summary statistics against hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest

from bmmal.experiment import analysis
from bmmal.experiment.results import tidy, wide, without_timings


def test_aulc_is_trapezoid_over_label_range():
    # (0.5 + 0.7) / 2 * 10 + (0.7 + 0.9) / 2 * 20 = 22 over a range of 30
    assert analysis.aulc([10, 20, 40], [0.5, 0.7, 0.9]) == pytest.approx(22 / 30)
    assert analysis.aulc([40, 10, 20], [0.9, 0.5, 0.7]) == pytest.approx(22 / 30)  # order does not matter
    assert analysis.aulc([10, 50], [0.6, 0.6]) == pytest.approx(0.6)  # a flat curve is its value
    assert analysis.aulc([10], [0.42]) == pytest.approx(0.42)


def test_normalised_entropy():
    assert analysis.normalised_entropy([0.5, 0.5]) == pytest.approx(1.0)
    assert analysis.normalised_entropy([1.0, 0.0]) == pytest.approx(0.0)
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / math.log(2)
    assert analysis.normalised_entropy([0.25, 0.75]) == pytest.approx(h)
    assert analysis.normalised_entropy([1, 1, 1, 1, 1, 1]) == pytest.approx(1.0)  # renormalised
    rows = analysis.normalised_entropy(np.array([[0.5, 0.5], [0.25, 0.75]]))
    assert rows == pytest.approx([1.0, h])
    assert math.isnan(analysis.normalised_entropy([1.0]))


def test_wilcoxon_known_cases():
    # all 5 differences positive: the exact two-sided p is 2 / 2^5
    assert analysis.wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
    # one negative, of rank 2: subsets of ranks with sum <= 2 are {}, {1}, {2} -> p = 2 * 3 / 32
    assert analysis.wilcoxon_p([1, -2, 3, 4, 5]) == pytest.approx(6 / 32)
    assert math.isnan(analysis.wilcoxon_p([0.3]))
    assert analysis.wilcoxon_p([0.0, 0.0, 0.0]) == 1.0


def test_paired_wins_ties_losses():
    p = analysis.paired([0.8, 0.7, 0.6, 0.9], [0.7, 0.7, 0.65, 0.5])
    assert (p.n, p.wins, p.ties, p.losses) == (4, 2, 1, 1)
    assert p.mean_diff == pytest.approx((0.1 + 0 - 0.05 + 0.4) / 4)
    assert 0 < p.p_value <= 1
    one = analysis.paired([0.8], [0.7])
    assert (one.wins, one.ties, one.losses) == (1, 0, 0) and math.isnan(one.p_value)


def _frame():
    """Two strategies x two seeds x rounds 0..2 of a two-modality run, with known numbers."""
    rows = []
    for s, bonus in (("random", 0.0), ("bmmal", 0.1)):
        for seed in (0, 1):
            for r in range(3):
                row = {"strategy": s, "seed": seed, "round": r, "n_labeled": 10 + 10 * r,
                       "accuracy_micro": 0.5 + 0.1 * r + bonus * (r > 0) + 0.02 * seed,
                       "unimodal_accuracy_micro:a": 0.9, "unimodal_accuracy_micro:b": 0.5 + 0.1 * seed,
                       "contribution:a": 0.75, "contribution:b": 0.25}
                if r > 0:
                    row |= {"selected_dominant_share:a": 0.4 + 0.2 * seed, "selected_dominant_share:b": 0.6 - 0.2 * seed,
                            "pool_dominant_share:a": 0.9, "pool_dominant_share:b": 0.1,
                            "selected_contribution_gap": 0.2, "pool_contribution_gap": 0.6 + 0.2 * seed}
                rows.append(row)
    return pd.DataFrame(rows)


def test_round_stats_and_paired_against():
    frame = _frame()
    stats = analysis.round_stats(frame, "accuracy_micro")
    r1 = stats[(stats["strategy"] == "bmmal") & (stats["round"] == 1)].iloc[0]
    assert r1["mean"] == pytest.approx(0.71) and r1["std"] == pytest.approx(np.std([0.7, 0.72], ddof=1))
    per_seed = analysis.aulc_per_seed(frame, "accuracy_micro")
    # bmmal is random + 0.1 from round 1 on: AULC difference = (0.05 * 10 + 0.1 * 10) / 20 = 0.075
    against = analysis.paired_against(per_seed, "random")
    assert list(against) == ["bmmal"]
    assert against["bmmal"].mean_diff == pytest.approx(0.075) and against["bmmal"].wins == 2
    final = analysis.final_per_seed(frame, "accuracy_micro")
    assert final.set_index(["strategy", "seed"]).loc[("random", 1), "value"] == pytest.approx(0.72)
    assert analysis.paired_against(per_seed, "badge") == {}


def test_balance_per_round():
    stats = analysis.balance_per_round(_frame(), ["a", "b"])
    row = stats[(stats["strategy"] == "random") & (stats["round"] == 0)].iloc[0]
    assert row["unimodal_accuracy_micro:b"] == pytest.approx(0.55)
    assert row["modality_gap"] == pytest.approx(((0.9 - 0.5) + (0.9 - 0.6)) / 2)  # per seed, then mean
    assert row["contribution:a"] == pytest.approx(0.75)
    assert row["contribution_entropy"] == pytest.approx(analysis.normalised_entropy([0.75, 0.25]))


def test_selection_composition_shares():
    stats = analysis.selection_per_round(_frame(), ["a", "b"])
    assert sorted(stats["round"].unique()) == [1, 2]  # round 0 selects nothing
    row = stats[(stats["strategy"] == "bmmal") & (stats["round"] == 2)].iloc[0]
    assert row["selected_dominant_share:a"] == pytest.approx(0.5)  # (0.4 + 0.6) / 2
    assert row["pool_dominant_share:b"] == pytest.approx(0.1)
    assert row["pool_contribution_gap"] == pytest.approx(0.7)
    selected, pool = analysis.composition(_frame(), ["a", "b"])
    # per strategy, mean over rounds 1-2 and seeds 0-1 of 0.4 + 0.2 * seed
    assert selected.loc["bmmal", "a"] == pytest.approx(0.5) and selected.loc["random", "b"] == pytest.approx(0.5)
    assert pool.loc["random"].tolist() == pytest.approx([0.9, 0.1])
    no_stats = _frame().drop(columns=["selected_contribution_gap"])
    assert analysis.selection_per_round(no_stats, ["a", "b"]).empty


def test_tidy_round_trip():
    frame = _frame()
    frame.insert(0, "setting", "default")
    frame.insert(0, "dataset", "d")
    frame["train_seconds"] = 1.0
    long = tidy(frame)
    assert list(long.columns) == ["dataset", "setting", "strategy", "seed", "round", "n_labeled", "metric", "value"]
    # 12 rows x 6 metrics, plus 8 rows of later rounds x 6 selection metrics; round 0 has no selection metrics
    assert len(long) == 12 * 6 + 8 * 6
    assert "train_seconds" not in set(without_timings(long)["metric"])
    back = wide(long).set_index(["strategy", "seed", "round"]).sort_index()
    orig = frame.set_index(["strategy", "seed", "round"]).sort_index()
    assert np.allclose(back["accuracy_micro"], orig["accuracy_micro"])


def test_every_aulc_in_bmmal_is_analysis_aulc(monkeypatch):
    """One AULC definition: the report, the factorial, the demo summary and the realistic benchmark script all
    call `analysis.aulc` (replaced here by a marker: 1000 + points on the curve + 10 x their mean)."""
    import importlib.util
    from pathlib import Path

    import pandas as pd
    from rich.console import Console

    from bmmal import demo
    from bmmal.experiment import factorial, report

    monkeypatch.setattr(analysis, "aulc", lambda x, y: 1000.0 + len(x) + 10 * float(np.mean(y)))
    rows = [{"dataset": "d", "setting": f"trainer={t}", "strategy": s, "seed": seed, "round": r, "n_labeled": 10 + 10 * r,
             "accuracy_micro": 0.5 if s == "badge" else 0.6, "accuracy_macro": 0.5, "unimodal_accuracy_micro:a": 0.5,
             "unimodal_accuracy_micro:b": 0.4, "contribution:a": 0.6, "contribution:b": 0.4, "query_seconds": 0.0}
            for t in ("joint",) for s in ("badge", "bmmal") for seed in (0, 1) for r in range(3)]
    frame = pd.DataFrame(rows)
    assert sorted(set(analysis.aulc_per_seed(frame, "accuracy_micro")["aulc"])) == [1008.0, 1009.0]
    assert sorted(set(factorial.factorial_table(factorial.with_trainer(frame))["mean"])) == [1008.0, 1009.0]
    assert "1009.000 ± 0.000" in "\n".join(report.aulc_section(frame, ["badge", "bmmal"]))
    out = Console(file=__import__("io").StringIO(), width=200)
    demo.print_tables(frame.assign(**{"unimodal_accuracy_micro:mor": 0.5, "contribution:mor": 0.5}), out)
    assert "1009.000" in out.file.getvalue()
    spec = importlib.util.spec_from_file_location(
        "realistic_al", Path(__file__).parents[1] / "benchmarks" / "realistic_al.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert "| badge | +100.00 (2/2, p=0.50) |" in script.summary(frame.drop(columns=["dataset", "setting"]))
