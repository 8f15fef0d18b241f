"""Config files as a new user writes them: misspelled keys named with the closest valid one, relative
paths that follow the config file rather than the working directory, absolute paths in errors."""

import pytest
import yaml

from bmmal.cli import main
from bmmal.config import RunConfig, load_yaml, parse_config
from bmmal.errors import BmmalError
from bmmal.experiment.grid import BenchmarkConfig, expand

BENCH = {"datasets": {"syn": {"name": "synthetic"}}, "strategies": ["random"], "seeds": 1}


@pytest.mark.parametrize("model, data, message", [
    (RunConfig, {"rounds": 2, "budgett": 5}, "budgett: unknown key 'budgett' (did you mean 'budget'?)"),
    (RunConfig, {"model": {"embed_dims": 5}}, "model.embed_dims: unknown key 'embed_dims' (did you mean 'embed_dim'?)"),
    (RunConfig, {"dataset": {"name": "mfeat", "modalites": ["pix"]}},
     "dataset.modalites: unknown key 'modalites' (did you mean 'modalities'?)"),
    (RunConfig, {"zzz": 1}, "zzz: unknown key 'zzz'; valid keys: dataset, strategy"),
    (BenchmarkConfig, {**BENCH, "datasets": {"syn": {"name": "synthetic", "optionz": {}}}},
     "datasets.syn.optionz: unknown key 'optionz' (did you mean 'options'?)"),
    (BenchmarkConfig, {**BENCH, "strategy": ["random"]}, "unknown key 'strategy' (did you mean 'strategies'?)"),
])
def test_unknown_keys_name_the_closest_valid_key(model, data, message):
    with pytest.raises(BmmalError) as error:
        parse_config(data, model, "c.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("options, message", [
    ({"seed": 3}, "dataset.options: 'seed' is not a dataset option: the seed is `seed` of a run or `seeds` of a "
                  "benchmark"),
    ({"modalities": ["pix"]}, "dataset.options: 'modalities' is not a dataset option: give them as the dataset's "
                              "`modalities`, beside `options`"),
    ({"name": "synthetic"}, "dataset.options: 'name' is not a dataset option: give it as the dataset's `name`, "
                            "beside `options`"),
])
def test_run_settings_given_as_dataset_options_are_one_line(options, message):
    with pytest.raises(BmmalError) as error:  # the loader would get them twice: a TypeError before
        parse_config({"dataset": {"name": "mfeat", "options": options}}, RunConfig, "c.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_unknown_key_in_a_benchmark_base_is_named_in_its_cell():
    config = parse_config({**BENCH, "base": {"train": {"epochz": 3}}}, BenchmarkConfig)
    with pytest.raises(BmmalError, match=r"train.epochz: unknown key 'epochz' \(did you mean 'epochs'\?\)"):
        expand(config)


def test_relative_dataset_paths_follow_the_config_file(tmp_path, monkeypatch):
    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    (folder / "run.yaml").write_text(yaml.safe_dump({
        "dataset": {"name": "arrays", "options": {"path": "../data/x.npz", "cache_dir": "~/c", "test_fraction": 0.2,
                                                  "frozen": {"cache_dir": "cache"}}},
        "model": {"encoder_options": {"text": {"path": "bert-base-uncased"}}}}))
    (folder / "bench.yaml").write_text(yaml.safe_dump({**BENCH, "datasets": [
        {"name": "arrays", "options": {"path": "x.npz"}}, {"name": "food101", "options": {"root": str(tmp_path)}}]}))
    monkeypatch.chdir(tmp_path)
    run = load_yaml("project/configs/run.yaml")
    assert run["dataset"]["options"]["path"] == str(tmp_path / "project" / "data" / "x.npz")
    assert run["dataset"]["options"]["cache_dir"] == "~/c"  # the home folder is not relative
    assert run["dataset"]["options"]["frozen"] == {"cache_dir": str(folder / "cache")}
    assert run["dataset"]["options"]["test_fraction"] == 0.2
    assert run["model"]["encoder_options"]["text"]["path"] == "bert-base-uncased"  # a model name, not a file
    bench = load_yaml(folder / "bench.yaml")
    assert [d["options"] for d in bench["datasets"]] == [{"path": str(folder / "x.npz")}, {"root": str(tmp_path)}]


def test_missing_files_are_named_by_their_absolute_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--config", "nope.yaml"]) == 2
    assert f"config file not found: {tmp_path / 'nope.yaml'}" in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "run.yaml").write_text(yaml.safe_dump({"dataset": {"name": "arrays",
                                                                          "options": {"path": "mine.npz"}}}))
    assert main(["run", "--config", "c/run.yaml", "--out", "r"]) == 2
    assert f"arrays file not found: {tmp_path / 'c' / 'mine.npz'}" in capsys.readouterr().err


def test_unknown_strategy_or_trainer_parameter_names_the_closest(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"name": "synthetic"},
                                      "train": {"trainer": "ogm_ge", "trainer_params": {"alfa": 0.3}}}))
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "trainer 'ogm_ge': unknown parameter 'alfa' (did you mean 'alpha'?); its parameters: alpha" in err


def test_unknown_frozen_option_names_the_closest():
    from bmmal.datasets.frozen import parse_spec

    with pytest.raises(BmmalError, match=r"frozen: unknown key 'cachedir' \(did you mean 'cache_dir'\?\)"):
        parse_spec({"encoders": {}, "cachedir": "x"}, ())


def test_media_files_not_found_are_named_by_their_absolute_path(tmp_path, monkeypatch):
    from bmmal.features import fingerprint
    from bmmal.features.image import load_image

    monkeypatch.chdir(tmp_path)
    with pytest.raises(BmmalError, match=f"image file not found: {tmp_path / 'a.png'}$"):
        load_image("a.png")
    with pytest.raises(BmmalError, match=f"file not found: {tmp_path / 'b.wav'}$"):
        fingerprint([__import__("pathlib").Path("b.wav")])
