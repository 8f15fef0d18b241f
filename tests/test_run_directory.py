"""RunDirectory refuses damaged and foreign files with one line naming the file, and changes nothing."""

import json
import shutil

import pytest
import yaml

from bmmal.cli import main

SMALL = {"dataset": {"name": "synthetic", "options": {"n_samples": 120, "n_classes": 3}},
         "strategy": "random", "initial_budget": 9, "budget": 6, "rounds": 2, "train": {"epochs": 2},
         "selection_stats": False}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two finished runs (round 0 and 1) that differ in their seed."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for seed in (0, 1):
        config = root / f"config{seed}.yaml"
        config.write_text(yaml.safe_dump({**SMALL, "seed": seed, "rounds": 1}))
        assert main(["run", "--config", str(config), "--out", str(root / f"run{seed}")]) == 0
        runs[seed] = root / f"run{seed}", config
    return runs


def copy_run(finished, tmp_path, seed=0):
    source, _ = finished[seed]
    target = tmp_path / "run"
    shutil.copytree(source, target)
    return target


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def resume_fails(run, capsys, *fragments):
    before = snapshot(run)
    assert main(["resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err.replace("\n", ""), err
    assert snapshot(run) == before


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_text('{"version": 1, "complet'), "state.json is damaged (not valid JSON"),
    (lambda p: p.write_text(""), "state.json is damaged (not valid JSON"),
    (lambda p: p.write_text("[1, 2]"), "state.json is damaged (no everything)"),
    (lambda p: p.write_bytes(b'{"version": "\xff"}'), "state.json is damaged (not UTF-8 text)"),
    (lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "pool"})),
     "state.json is damaged (no pool)"),
])
def test_damaged_state_is_one_line(finished, tmp_path, capsys, damage, message):
    run = copy_run(finished, tmp_path)
    damage(run / "state.json")
    resume_fails(run, capsys, message, "to start this run again, delete")


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.unlink(), "model-r001.pt is missing"),
    (lambda p: p.write_bytes(b"not a checkpoint"), "model-r001.pt is damaged"),
    (lambda p: p.write_bytes(p.read_bytes()[:200]), "model-r001.pt is damaged"),
])
def test_damaged_checkpoint_is_one_line(finished, tmp_path, capsys, damage, message):
    run = copy_run(finished, tmp_path)
    damage(run / "model-r001.pt")
    resume_fails(run, capsys, message, "names it as the model of round 1")


def test_state_from_another_run_is_refused(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path, seed=0)
    other, _ = finished[1]
    shutil.copy(other / "state.json", run / "state.json")  # config.yaml says seed 0, the state is seed 1's
    resume_fails(run, capsys, "state.json belongs to another run")


def test_checkpoint_from_another_run_is_refused(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path, seed=0)
    other, _ = finished[1]
    shutil.copy(other / "model-r001.pt", run / "model-r001.pt")
    resume_fails(run, capsys, "model-r001.pt belongs to another run or round")


def test_damaged_round0_cache_entry_is_trained_again(tmp_path, capsys):
    from bmmal.loop import ActiveLearner
    from bmmal.resolve import run_config
    from bmmal.rundir import Round0Cache

    config = run_config({**SMALL, "rounds": 0})
    first = ActiveLearner(config, tmp_path / "a", round0_cache=tmp_path / "cache").run()
    folder = tmp_path / "cache" / Round0Cache.key(config)
    (folder / "round0.json").write_text("{")
    with pytest.warns(UserWarning, match="round-0 cache entry .* is damaged"):
        again = ActiveLearner(config, tmp_path / "b", round0_cache=tmp_path / "cache").run()
    assert again[0]["accuracy_micro"] == first[0]["accuracy_micro"]


def test_a_run_with_other_settings_names_what_differs(finished, tmp_path):
    from bmmal.config import RunConfig
    from bmmal.errors import BmmalError
    from bmmal.rundir import RunDirectory

    run = copy_run(finished, tmp_path)
    wanted = RunConfig.model_validate({**SMALL, "seed": 0, "rounds": 1, "probes": True, "train": {"epochs": 3}})
    with pytest.raises(BmmalError) as refused:
        RunDirectory(run).status(wanted)
    message = str(refused.value)
    assert "other settings" in message and "probes: False -> True" in message and "train.epochs: 2 -> 3" in message
    assert "\n" not in message
