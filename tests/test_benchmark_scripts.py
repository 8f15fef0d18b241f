"""Smoke tests of the scripts in benchmarks/: nothing else runs them, so a renamed argument or attribute
(`--labelled` -> `--labeled`, `args.labelled`) would break them silently.

Every script must import and print its `--help`; each script with a cheap smallest case runs it (a few
hundred rows, budget 5, one thread), in this process unless the script itself starts processes. A script
without such a case is skipped with its reason, never silently."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import yaml

from bmmal.experiment.grid import expand

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py"))
# the smallest real case of a script, as arguments
TINY = ["--classes", "5", "--dims", "8,8", "--budget", "5"]


def run_script(name: str, *args, monkeypatch) -> None:
    """Run benchmarks/<name> as `python benchmarks/<name> ARGS` would, in this process."""
    script = BENCHMARKS / name
    monkeypatch.setattr(sys, "argv", [str(script), *map(str, args)])
    monkeypatch.setattr(sys, "path", list(sys.path))  # some scripts put benchmarks/ on it
    monkeypatch.delenv("OUT", raising=False)  # gpu_kinetics_round.py writes there when set
    runpy.run_path(str(script), run_name="__main__")


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_there_are_scripts():
    assert len(SCRIPTS) >= 10 and "query_speed.py" in SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_imports_and_prints_its_help(name, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_script(name, "--help", monkeypatch=monkeypatch)
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage: ")


# ---- the smallest real case of each script ------------------------------------------------------------
def tiny_run_config() -> dict:
    return {"dataset": {"name": "mfeat", "modalities": ["pix", "mor"]}, "initial_budget": 5, "budget": 5,
            "rounds": 1, "model": {"hidden_dims": [8], "embed_dim": 4},
            "train": {"epochs": 1, "batch_size": 16, "device": "cpu"}}


def case_e2e_gpu(tmp_path, monkeypatch, capsys):
    pytest.skip("e2e_gpu.py needs a GPU (even --check trains width-32 CNNs on 400 labels) and the Fashion-Speech "
                "build (dataset-fashion-mnist, espeak-ng); test_e2e_gpu_configs_validate checks its configs")


def case_gpu_kinetics_round(tmp_path, monkeypatch, capsys):
    pytest.skip("gpu_kinetics_round.py is a GPU benchmark: even its CPU smoke run trains R(2+1)D-18 + ResNet-18 "
                "on decoded clips (about 10 s of CPU here), more than this file's budget")


def case_e2e_imbalance(tmp_path, monkeypatch, capsys):
    base = tiny_run_config()
    config = {"name": "tiny", "datasets": {"tiny": base.pop("dataset")}, "strategies": ["random"], "seeds": 1,
              "base": base}
    (tmp_path / "e2e.yaml").write_text(yaml.safe_dump(config))
    run_script("e2e_imbalance.py", "--config", tmp_path / "e2e.yaml", "--seeds", 1, "--labeled", 20, "--epochs", 1,
               "--unimodal-loss-weight", 0, monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    assert "| 20 (1 seeds) |" in out and "pix in joint" in out and "mor alone" in out


def case_gpu_selection(tmp_path, monkeypatch, capsys):
    run_script("gpu_selection.py", "--sizes", "tiny", "--check-rows", 800, monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    assert "first 200 of 200 picks identical" in out
    assert sum(line.startswith(("badge", "bmmal")) for line in out.splitlines()) == 4


def case_label_load(tmp_path, monkeypatch, capsys):
    run_script("label_load.py", "--labellers", 2, "--answers", 3, "--time-limit", 60, monkeypatch=monkeypatch)
    summary = json.loads(capsys.readouterr().out)
    assert summary["answers"] == 6 and (summary["lost"], summary["duplicated"], summary["failures"]) == (0, 0, [])


def case_missing_absent(tmp_path, monkeypatch, capsys):
    run_script("missing_absent.py", "--seeds", 2, "--drop", "mor=0.5", "--sizes", 20, "--epochs", 1,
               monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    assert "mor dropped from 50%" in out
    assert sum(line.startswith("| 20 |") for line in out.splitlines()) == 3


def case_pool_inference(tmp_path, monkeypatch, capsys):
    common = ["--rows", 300, "--rows-per-shard", 100, "--hidden", 8, "--batch-size", 64]
    run_script("pool_inference.py", *common, "--out", tmp_path / "a", monkeypatch=monkeypatch)
    run_script("pool_inference.py", *common, "--out", tmp_path / "b", "--compare", tmp_path / "a",
               monkeypatch=monkeypatch)
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["rows"] == 300 and second["same_arrays_as_compare"] is True
    assert len(list((tmp_path / "b").glob("shard-*"))) == 3


def case_query_speed(tmp_path, monkeypatch, capsys):
    # the driver, which starts one process per case with its own arguments
    run_script("query_speed.py", "--part", "strategies", "--sizes", 300, "--strategies", "bmmal", "--labeled", 10,
               *TINY, "--timeout", 300, "--json", tmp_path / "cases.jsonl", monkeypatch=monkeypatch)
    [case] = json_lines(tmp_path / "cases.jsonl")
    assert "error" not in case, case
    assert (case["strategy"], case["n"], case["rows"]) == ("bmmal", 300, 5)


def case_realistic_al(tmp_path, monkeypatch, capsys):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(tiny_run_config()))
    out = tmp_path / "out"
    run_script("realistic_al.py", tmp_path / "run.yaml", "--out", out, "--seeds", 2, "--strategies", "random,bmmal",
               monkeypatch=monkeypatch)
    written = (out / "summary.md").read_text()
    assert "| random |" in written and "| bmmal |" in written
    (out / "summary.md").unlink()
    run_script("realistic_al.py", tmp_path / "run.yaml", "--out", out, "--summary-only", monkeypatch=monkeypatch)
    assert (out / "summary.md").read_text() == written


def case_scale(tmp_path, monkeypatch, capsys):
    # one case in this process (`--n`, what the driver starts per size: a process costs seconds of imports here)
    run_script("scale.py", "--n", 300, *TINY, monkeypatch=monkeypatch)
    case = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (case["n"], case["rows"], case["dim"]) == (300, 5, 16)


CASES = {name.removeprefix("case_") + ".py": case for name, case in dict(globals()).items()
         if name.startswith("case_")}


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_runs_its_smallest_case(name, tmp_path, monkeypatch, capsys):
    if name not in CASES:
        pytest.skip(f"no smallest case for benchmarks/{name} yet: add a case_ function to this file")
    CASES[name](tmp_path, monkeypatch, capsys)


def test_e2e_gpu_configs_validate():
    """Every cell e2e_gpu.py builds from configs/e2e-fashion-speech.yaml is a valid run (its run needs a GPU)."""
    scaled_config = runpy.run_path(str(BENCHMARKS / "e2e_gpu.py"))["scaled_config"]
    check = expand(scaled_config("cache", 5, True, "cpu"))
    full = expand(scaled_config("cache", 5, False, "cpu"))  # "cuda" is refused without CUDA
    assert {(c.strategy, c.seed, c.config.rounds, c.config.train.epochs) for c in check} >= {("bmmal", 0, 1, 2)}
    assert len(full) == 5 * 5 * 2 and {c.config.train.device for c in full} == {"cpu"}
    assert {c.config.dataset.options["per_class"] for c in full} == {1000}


def test_query_speed_naive_baseline(monkeypatch, capsys):
    run_script("query_speed.py", "--naive", "--n", 300, *TINY, monkeypatch=monkeypatch)
    naive = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert naive["n"] == 300 and naive["budget"] == 5
