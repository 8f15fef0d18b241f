"""A strategy from another package, registered only by a Python entry point, is listed by `bmmal strategies`
and runs inside a spawned benchmark worker (where a class registered in the user's script would be unknown)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

STRATEGY_MODULE = '''
"""A third-party strategy (test package)."""
import os

from bmmal.strategies import Strategy


class FirstRows(Strategy):
    """The lowest-numbered unlabelled rows; records the id of the process that selected them."""

    name = "acme_first"
    needs = frozenset()
    summary = "the first unlabelled rows (third-party test strategy)"

    def _select(self, outputs, candidates, budget, rng):
        with open(os.environ["ACME_LOG"], "a") as log:
            log.write(f"{os.getpid()}\\n")
        return candidates[:budget]
'''


def make_package(root: Path, module: str, source: str, entry_points: dict[str, dict[str, str]],
                 dist: str = "acme-al") -> Path:
    """An importable module plus the dist-info folder that `importlib.metadata` finds on sys.path."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in names.items()) + "\n"
        for group, names in entry_points.items()))
    return root


@pytest.fixture
def acme(tmp_path):
    (tmp_path / "site").mkdir()
    package = make_package(tmp_path / "site", "acme_al", STRATEGY_MODULE,
                           {"bmmal.strategies": {"acme_first": "acme_al:FirstRows",
                                                 "acme_broken": "acme_not_installed:Strategy"}})
    log = tmp_path / "selections.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package), os.environ.get("PYTHONPATH", "")]),
           "ACME_LOG": str(log), "COLUMNS": "300"}
    return env, log


@pytest.mark.slow
def test_listed_and_run_in_a_spawned_benchmark_worker(acme, tmp_path):
    env, log = acme
    config = {"name": "acme", "datasets": {"mfeat": {"name": "mfeat", "modalities": ["mor", "kar"]}},
              "strategies": ["acme_first"], "seeds": 1,
              "base": {"initial_budget": 10, "budget": 5, "rounds": 1, "selection_stats": False,
                       "model": {"hidden_dims": [8], "embed_dim": 4}, "train": {"epochs": 1, "batch_size": 16}}}
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    # `bmmal strategies` then `bmmal benchmark`, in one interpreter to pay its start-up once
    commands = [["strategies"], ["benchmark", "--config", str(path), "--out", str(out), "--workers", "2",
                                 "--threads", "1"]]
    script = f"import sys; from bmmal.cli import main; sys.exit(max(main(args) for args in {commands!r}))"
    cli = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    stdout, stderr = cli.communicate(timeout=600)
    assert cli.returncode == 0, stderr

    lines = {line.split()[0]: line for line in stdout.splitlines() if line.strip()}
    assert "(third-party test strategy) (package acme-al 0.1, entry point bmmal.strategies)" in lines["acme_first"]
    assert "random" in lines and "bmmal" in lines  # the built-ins are still there
    # a broken package is named in the list, and neither hides the others nor stops the benchmark
    assert "acme-al 0.1" in lines["acme_broken"]
    assert "cannot be loaded: ModuleNotFoundError: No module named 'acme_not_installed'" in lines["acme_broken"]

    pids = {int(line) for line in log.read_text().split()}
    assert pids and cli.pid not in pids  # selected in a spawned worker process, not in the CLI's
    results = pd.read_csv(out / "results.csv")
    assert set(results["strategy"]) == {"acme_first"}
    assert sorted(results["round"].unique()) == [0, 1]
