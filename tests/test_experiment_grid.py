"""Benchmark configs: expansion into cells, and one clear line for every bad config before any work."""

import pytest
import yaml

from bmmal.cli import main
from bmmal.errors import BmmalError
from bmmal.experiment.grid import BenchmarkConfig, deep_merge, expand, plan

SYN = {"name": "synthetic", "options": {"n_samples": 100, "n_classes": 2, "dims": 3}}


def test_expand_product_of_axes():
    cfg = BenchmarkConfig.model_validate({
        "datasets": [SYN, {"name": "mfeat", "modalities": ["pix", "mor"]}],
        "strategies": ["random", "bmmal"], "seeds": [3, 7],
        "base": {"budget": 4, "rounds": 2, "model": {"embed_dim": 8, "hidden_dims": [16]}},
        "settings": {"fusion": {"concat": {"model": {"fusion": "concat"}}, "sum": {"model": {"fusion": "sum"}}},
                     "budget": {"small": {"budget": 2}, "large": {}}},
    })
    cells = expand(cfg)
    assert len(cells) == 2 * 4 * 2 * 2
    assert len({c.key for c in cells}) == len(cells) and len({c.path for c in cells}) == len(cells)
    assert {c.dataset for c in cells} == {"synthetic", "mfeat-pix-mor"}
    cell = next(c for c in cells if c.setting == "fusion=sum,budget=small" and c.seed == 7)
    assert cell.config.model.fusion == "sum" and cell.config.budget == 2
    assert cell.config.model.embed_dim == 8 and cell.config.model.hidden_dims == (16,)  # nested base kept
    assert cell.config.seed == 7 and cell.config.strategy == cell.strategy
    assert next(c for c in cells if c.setting == "fusion=concat,budget=large").config.budget == 4


def test_default_setting_and_seed_count():
    cells = expand(BenchmarkConfig.model_validate({"datasets": {"d": SYN}, "strategies": ["random"], "seeds": 3}))
    assert [c.seed for c in cells] == [0, 1, 2] and {c.setting for c in cells} == {"default"}


def test_deep_merge():
    assert deep_merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}, "c": 4}) == {"a": {"x": 1, "y": 3}, "b": 1,
                                                                                      "c": 4}


def test_plan_checks_the_pool():
    cfg = BenchmarkConfig.model_validate({"datasets": {"d": SYN}, "strategies": ["random"], "seeds": 1,
                                          "base": {"initial_budget": 10, "budget": 10, "rounds": 8}})
    with pytest.raises(BmmalError, match="need 90 labels, but the training pool of .d. has 80 samples"):
        plan(cfg)


BASE = {"name": "bad", "datasets": {"d": SYN}, "strategies": ["random"], "seeds": 2,
        "base": {"initial_budget": 4, "budget": 4, "rounds": 1, "train": {"epochs": 1}}}


@pytest.mark.parametrize("change, message", [
    ({"strategies": ["random", "nope"]}, "unknown strategy 'nope'"),
    ({"strategies": []}, "name at least one strategy"),
    ({"datasets": {"d": {"name": "nope"}}}, "unknown dataset 'nope'"),
    ({"seeds": 0}, "seeds: need at least one seed, got 0"),
    ({"seeds": []}, "list at least one seed"),
    ({"base": {"initial_budget": 40, "budget": 40, "rounds": 2}}, "need 120 labels, but the training pool"),
    ({"base": {"seed": 3}}, "seed is set by the grid"),
    ({"base": {"epochs": 3}}, "epochs"),
    ({"strategy": "random"}, "strategy"),
    ({"settings": {"fusion": {"x": {"model": {"fusion": "product"}}}}}, "fusion"),
])
def test_bad_config_is_one_line_before_any_work(tmp_path, capsys, change, message):
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump({**BASE, **change}))
    out = tmp_path / "out"
    assert main(["benchmark", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_bad_executor_and_missing_file(tmp_path, capsys):
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert main(["benchmark", "--config", str(path), "--executor", "dask"]) == 2
    assert "unknown executor 'dask'" in capsys.readouterr().err
    assert main(["benchmark", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert main(["report", str(tmp_path)]) == 2
    assert "no results" in capsys.readouterr().err
