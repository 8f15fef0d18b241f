"""The pitfall-map and comparison configs are valid grids whose labels carry the sweep axes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmmal import datasets
from bmmal.experiment import sweep
from bmmal.experiment.grid import load_benchmark_config, plan

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name, data_axes, n_data", [
    ("pitfall-map-coarse", {"interaction", "lo"}, 4),
    ("pitfall-map-fine", {"interaction", "lo", "noise", "missing"}, 60),
])
def test_pitfall_maps_name_their_axes_in_their_labels(name, data_axes, n_data):
    config = load_benchmark_config(CONFIGS / f"{name}.yaml")
    assert len(config.datasets) == n_data
    for label, data in config.datasets.items():
        parsed = sweep.axes_of(label)
        assert set(parsed) == data_axes
        assert data.options["interaction"] == parsed["interaction"]
        assert data.options["informativeness"][1] == float(parsed["lo"])
        assert data.options.get("label_noise", 0.0) == float(parsed.get("noise", 0))
        assert data.options.get("drop", {}).get("lo", 0.0) == float(parsed.get("missing", 0))
        train, _ = datasets.load(data.name, seed=0, **{**data.options, "n_samples": 40})  # the options are valid
        assert train.modalities == ("hi", "lo")
        if float(parsed.get("missing", 0)):
            assert not train.present[:, 1].all() and train.present[:, 0].all()
    for label, overrides in config.setting_overrides().items():
        assert overrides["train"]["trainer"] == sweep.axes_of(label)["trainer"]
    assert {"random", "badge", "bmmal", "multihead_badge"} <= set(config.strategies)


def test_coarse_map_plans():
    cells = plan(load_benchmark_config(CONFIGS / "pitfall-map-coarse.yaml"))  # every cell validated
    assert {c.config.train.trainer for c in cells} == {"joint", "ogm_ge"}


@pytest.mark.parametrize("name", ["pitfall-mfeat", "pitfall-emoji9", "pitfall-tuxpaint"])
def test_comparison_configs_parse(name):
    config = load_benchmark_config(CONFIGS / f"{name}.yaml")
    assert config.strategies == ["badge", "bmmal", "multihead_badge"] and config.seed_list() == list(range(10))
