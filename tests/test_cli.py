import subprocess
import sys

import pytest
import yaml

from bmmal.cli import main

SMALL = {"dataset": {"name": "synthetic", "options": {"n_samples": 200, "n_classes": 3}},
         "strategy": "badge", "initial_budget": 10, "budget": 10, "rounds": 2, "train": {"epochs": 5}}


def write(tmp_path, data, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_lists(capsys):
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    for name in ("random", "badge", "bmmal"):
        assert name in out
    assert main(["datasets"]) == 0
    assert "mfeat" in capsys.readouterr().out


def test_run_and_resume(tmp_path, capsys):
    config = write(tmp_path, SMALL)
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 4
    assert main(["resume", str(tmp_path / "run")]) == 0  # nothing left: prints the table again
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run2"), "--strategy", "bmmal",
                 "--seed", "3"]) == 0
    assert yaml.safe_load((tmp_path / "run2" / "config.yaml").read_text())["strategy"] == "bmmal"


@pytest.mark.parametrize("data, message", [
    ({**SMALL, "strategy": "magic"}, "unknown strategy 'magic'"),
    ({**SMALL, "dataset": {"name": "imagenet"}}, "unknown dataset 'imagenet'"),
    ({**SMALL, "dataset": {"name": "mfeat", "modalities": ["pix", "sound"]}}, "no modality 'sound'"),
    ({**SMALL, "budget": 1000}, "need 2010 labels, but the training pool has 161"),
    ({**SMALL, "budgett": 5}, "budgett: unknown key 'budgett' (did you mean 'budget'?)"),
    ({**SMALL, "train": {"epochz": 5}}, "train.epochz: unknown key 'epochz' (did you mean 'epochs'?)"),
    ({**SMALL, "dataset": {"name": "synthetic", "optins": {}}}, "unknown key 'optins' (did you mean 'options'?)"),
    ({**SMALL, "rounds": "many"}, "rounds: Input should be a valid integer"),
    ("[1, 2", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
])
def test_bad_config_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, data, message):
    config = write(tmp_path, data)
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_nan_features_are_refused(tmp_path, capsys):
    import numpy as np

    from bmmal import datasets

    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    x[4, 1] = np.inf
    np.savez(tmp_path / "arrays.npz", a=x, labels=np.arange(50) % 2)
    datasets.register("nan-test", "tests.test_cli:_load_nan")
    config = write(tmp_path, {**SMALL, "dataset": {"name": "nan-test", "options": {"path": str(tmp_path / "arrays.npz")}}})
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "NaN or infinite" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _load_nan(modalities, seed, path):
    import numpy as np

    from bmmal.data import ArrayDataset

    z = np.load(path)
    data = ArrayDataset({"a": z["a"]}, z["labels"], ("0", "1"))
    return data.subset(np.arange(40)), data.subset(np.arange(40, 50))


def test_missing_files_and_not_a_run(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["demo", "--strategies", "nope"]) == 2
    assert "unknown strategy 'nope'" in capsys.readouterr().err


def test_console_script_exit_code(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bmmal.cli", "run", "--config", str(tmp_path / "x.yaml")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["run", "--no-such-option"], "error: bmmal run: No such option: --no-such-option (see 'bmmal run --help')"),
    (["run", "--confg", "x.yaml"], "No such option: --confg (Possible options: --config)"),
    (["run", "--config"], "error: bmmal run: Option '--config' requires an argument (see 'bmmal run --help')"),
    (["init", "--manifest"], "error: bmmal init: Option '--manifest' requires an argument"),
    (["run", "--bogus"], "error: bmmal run: No such option: --bogus (see 'bmmal run --help')"),  # not '--out'
    (["demo", "--seeds", "zero"], "error: bmmal demo: Invalid value for '--seeds': Input should be a valid integer"),
    (["demo", "--seeds", "0"], "Invalid value for '--seeds': Input should be greater than or equal to 1"),
    (["nosuchcmd"], "error: bmmal: No such command 'nosuchcmd' (see 'bmmal --help')"),
    (["status"], "error: bmmal status: Missing argument"),
])
def test_bad_options_and_values_are_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err, captured


def test_a_missing_value_names_the_command_past_bmmals_own_options():
    from bmmal.cli import _command_path

    assert _command_path(["--allow-download", "init", "--manifest"]) == "bmmal init"
    assert _command_path(["run", "--out", "run", "--config"]) == "bmmal run"  # a value that is a command's name
    assert _command_path(["--bogus"]) == "bmmal"


def test_end_of_input_in_a_command_is_one_line_exit_1(capsys, monkeypatch):
    from bmmal import datasets

    def truncated():
        raise EOFError

    monkeypatch.setattr(datasets, "available", truncated)
    assert main(["datasets"]) == 1
    assert capsys.readouterr().err.strip() == "aborted: unexpected end of input"  # after typer's empty line


def test_bmmal_alone_prints_its_help_and_help_exits_0(capsys):
    assert main([]) == 2  # click's exit code for a group called without a command
    captured = capsys.readouterr()
    assert "Usage: bmmal [OPTIONS] COMMAND" in captured.out and "run" in captured.out and captured.err == ""
    assert main(["run", "--help"]) == 0
    assert "--config" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_small(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--seeds", "2", "--rounds", "2"]) == 0
    text = capsys.readouterr().out
    assert "fused accuracy (micro)" in text and "summary" in text
    assert (out / "learning_curve.png").stat().st_size > 1000
    import pandas as pd

    frame = pd.read_csv(out / "metrics.csv")
    assert sorted(frame["strategy"].unique()) == ["badge", "bmmal", "random"]
    assert len(frame) == 3 * 2 * 3
    # a second demo with other settings in the same place is refused
    assert main(["demo", "--out", str(out), "--seeds", "2", "--rounds", "3"]) == 2


def test_data_dir_sets_the_dataset_root(tmp_path, capsys):
    config = write(tmp_path, {**SMALL, "dataset": {"name": "mfeat"}})
    assert main(["run", "--config", str(config), "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "dataset 'mfeat': unknown option 'root'" in capsys.readouterr().err
    config = write(tmp_path, {**SMALL, "dataset": {"name": "synthetic", "options": {"colour": 1}}})
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "dataset 'synthetic': unknown option 'colour'" in capsys.readouterr().err
