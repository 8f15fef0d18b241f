"""The sweep view of a benchmark: axes read off labels, paired differences against BADGE, the figure."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from bmmal.experiment import sweep
from bmmal.experiment.report import table, write_report
from bmmal.experiment.results import RESULTS_FILE, tidy

MODS = ["hi", "lo"]


def fake_wide(gain: float = 0.05) -> pd.DataFrame:
    """2 x 2 dataset axes x 2 trainers x 3 strategies x 5 seeds x 3 rounds; "better" beats badge by `gain`
    everywhere (by gain plus a seed-dependent wobble), "same" equals badge; lo is the weak modality except
    at lo=3 where it is the strong one."""
    rows = []
    for inter, lo, trainer, strategy, seed, r in itertools.product(
            ["redundant", "unique"], ["0.5", "3"], ["joint", "ogm_ge"], ["badge", "better", "same"], range(5),
            range(3)):
        base = 0.5 + 0.1 * r + 0.01 * seed
        acc = base + (gain * (1 + 0.1 * seed) if strategy == "better" else 0.0)
        weak, strong = (0.4, 0.7) if lo == "0.5" else (0.8, 0.6)
        rows.append({"dataset": f"interaction={inter},lo={lo}", "setting": f"trainer={trainer}",
                     "strategy": strategy, "seed": seed, "round": r, "n_labeled": 10 + 10 * r,
                     "accuracy_micro": acc, "accuracy_macro": acc, "unimodal_accuracy_micro:hi": strong + 0.01 * r,
                     "unimodal_accuracy_micro:lo": weak + 0.02 * r + (0.03 if strategy == "better" else 0.0),
                     "contribution:hi": 0.7, "contribution:lo": 0.3,
                     "selected_dominant_share:hi": 0.6 if r else np.nan,
                     "selected_dominant_share:lo": 0.4 if r else np.nan,
                     "pool_dominant_share:hi": 0.8 if r else np.nan, "pool_dominant_share:lo": 0.2 if r else np.nan})
    return pd.DataFrame(rows)


def test_axes_are_read_off_dataset_and_setting_labels():
    assert sweep.axes_of("interaction=unique,lo=0.5") == {"interaction": "unique", "lo": "0.5"}
    assert sweep.axes_of("default") == {} and sweep.axes_of("mfeat-pix-mor") == {}
    frame, axes = sweep.with_axes(fake_wide())
    assert axes == ["interaction", "lo", "trainer"]
    assert set(frame["lo"]) == {"0.5", "3"} and set(frame["trainer"]) == {"joint", "ogm_ge"}
    assert sweep.is_sweep(fake_wide())
    one_point = fake_wide().query("dataset == 'interaction=unique,lo=3' and setting == 'trainer=joint'")
    assert not sweep.is_sweep(one_point)


def test_summary_pairs_each_strategy_with_badge_and_finds_the_weak_modality():
    table_, _ = sweep.summary(fake_wide(gain=0.05), lambda d, s: MODS)
    assert len(table_) == 8 * 3
    better = table_[table_["strategy"] == "better"]
    # the AULC of a constant offset is that offset: 0.05 * (1 + 0.1 seed), mean over seeds 0..4
    np.testing.assert_allclose(better["delta"], 0.05 * 1.2)
    assert (better["wins"] == 5).all() and (better["losses"] == 0).all()
    np.testing.assert_allclose(better["p"], 0.0625)
    same = table_[table_["strategy"] == "same"]
    assert (same["delta"] == 0).all() and (same["p"] == 1).all()
    assert table_.loc[table_["strategy"] == "badge", "delta"].isna().all()
    assert set(table_.loc[table_["lo"] == "0.5", "weak"]) == {"lo"}
    assert set(table_.loc[table_["lo"] == "3", "weak"]) == {"hi"}
    low = table_[(table_["lo"] == "0.5") & (table_["strategy"] == "better")]
    np.testing.assert_allclose(low["weak_head_aulc"], 0.4 + 0.02 + 0.03)
    np.testing.assert_allclose(low["weak_selected"], 0.4)
    np.testing.assert_allclose(low["weak_pool"], 0.2)
    np.testing.assert_allclose(low["weak_contribution"], 0.3)


def test_marks_follow_the_p_value():
    assert sweep.mark(0.005) == "**" and sweep.mark(0.03) == "*" and sweep.mark(0.0625) == ""
    assert sweep.mark(float("nan")) == ""


def test_sections_draw_one_figure_per_value_of_the_other_axes(tmp_path):
    lines = sweep.sections(fake_wide(), lambda d, s: MODS, tmp_path / "figures", tmp_path, table)
    text = "\n".join(lines)
    for trainer in ("joint", "ogm_ge"):
        png = tmp_path / "figures" / f"sweep-trainer_{trainer}.png"
        assert png.stat().st_size > 10_000
        assert f"(figures/sweep-trainer_{trainer}.png)" in text
    assert "| interaction | lo | trainer | strategy |" in text
    assert "| +0.0600 | 5/0/0 | 0.0625 |" in text  # every one of 5 seeds: p = 0.0625, not below 0.05
    assert "| +0.0000 | 0/5/0 | 1 |" in text
    assert "| 0.300 | 0.400 (0.200) |" in text  # weak contribution, weak-dominant share selected (pool)


def test_not_a_sweep_gives_no_section(tmp_path):
    wide = fake_wide().assign(dataset="mfeat-pix-mor", setting="default")
    assert sweep.sections(wide, lambda d, s: MODS, tmp_path, tmp_path, table) == []


def test_report_of_a_sweep_has_the_section(tmp_path):
    wide = fake_wide().query("setting == 'trainer=joint' and dataset.str.startswith('interaction=unique') "
                             "and strategy != 'same' and seed < 2 and round < 2")
    tidy(wide).to_csv(tmp_path / RESULTS_FILE, index=False)
    report = write_report(tmp_path).read_text()
    assert "## Sweep: every strategy against badge" in report
    assert "Axes: interaction (unique); lo (0.5, 3); trainer (joint)." in report
    assert "![Sweep over lo × interaction](figures/sweep.png)" in report
    assert (tmp_path / "figures" / "sweep.png").is_file()


@pytest.mark.parametrize("values, expected", [(["3", "0.5", "1.5"], ["0.5", "1.5", "3"]),
                                              (["unique", "redundant"], ["unique", "redundant"])])
def test_axis_values_in_numeric_order_where_numbers(values, expected):
    assert sweep._ordered(values) == expected
