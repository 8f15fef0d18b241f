"""The labelling commands through `bmmal.cli.main`: a round from init to the second query, and bad input."""

from __future__ import annotations

import json

import pytest

from bmmal.cli import main
from bmmal.labelling.project import Project
from test_labelling_helpers import EXTRACTORS, feature_cache, true_label, write_manifest  # noqa: F401

pytestmark = pytest.mark.usefixtures("feature_cache")


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


def test_cli_round(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "data", n=45, seeds_per_class=0)
    project_dir = tmp_path / "project"
    extractors = [arg for m, name in EXTRACTORS.items() for arg in ("--extractor", f"{m}={name}")]
    assert main(["init", str(project_dir), "--manifest", str(manifest), "--classes", "red,green,blue",
                 *extractors]) == 0
    assert "45 samples, 0 seed labels" in flat(capsys.readouterr().out)

    assert main(["query", str(project_dir), "--budget", "9"]) == 0  # auto: k-means without labels
    out = flat(capsys.readouterr().out)
    assert "batch 1: 9 samples selected by kmeans" in out and "no labels yet" in out

    project = Project(project_dir)
    pending = project.store.pending()
    csv_path = tmp_path / "answers.csv"
    csv_path.write_text("id,label\n" + "".join(f"{s},{true_label(s)}\n" for s in pending))
    assert main(["import", str(project_dir), str(csv_path)]) == 0
    capsys.readouterr()

    assert main(["query", str(project_dir), "--budget", "6"]) == 0  # auto: bmmal with labels
    out = flat(capsys.readouterr().out)
    assert "batch 2: 6 samples selected by bmmal" in out and "model trained on 9 labels" in out

    assert main(["status", str(project_dir)]) == 0
    out = flat(capsys.readouterr().out)
    assert "labeled" in out and "pending" in out and "modality balance" in out
    for key, value in {"labeled": 9, "pending": 6, "unlabeled": 30}.items():
        assert f"{key}" in out and str(value) in out

    assert main(["export", str(project_dir), "--format", "label-studio"]) == 0
    tasks = json.loads((project_dir / "export" / "label-studio-tasks.json").read_text())
    assert len(tasks) == 6 and all(t["predictions"][0]["result"][0]["type"] == "choices" for t in tasks)
    assert (project_dir / "export" / "label-studio-tasks-config.xml").is_file()


def test_cli_bad_input_exits_2(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "data", n=9, seeds_per_class=0)
    assert main(["init", str(tmp_path / "p"), "--manifest", str(manifest), "--classes", "red"]) == 2
    assert "at least 2 classes" in flat(capsys.readouterr().err)
    assert main(["init", str(tmp_path / "p"), "--manifest", str(tmp_path / "none.csv"), "--classes", "a,b"]) == 2
    assert "manifest not found" in flat(capsys.readouterr().err)
    assert main(["status", str(tmp_path / "nothing")]) == 2
    assert "not a labelling project" in flat(capsys.readouterr().err)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    assert main(["init", str(tmp_path / "busy"), "--manifest", str(manifest), "--classes", "a,b"]) == 2
    assert "not empty" in flat(capsys.readouterr().err)
    extractors = [arg for m, name in EXTRACTORS.items() for arg in ("--extractor", f"{m}={name}")]
    assert main(["init", str(tmp_path / "p"), "--manifest", str(manifest), "--classes", "red,green,blue",
                 *extractors]) == 0
    assert main(["label", str(tmp_path / "p")]) == 2
    assert "no pending samples" in flat(capsys.readouterr().err)
    assert main(["export", str(tmp_path / "p"), "--format", "csv"]) == 2
    assert "unknown export format" in flat(capsys.readouterr().err)
    assert main(["query", str(tmp_path / "p"), "--budget", "3", "--strategy", "badge"]) == 2
    assert "needs a model" in flat(capsys.readouterr().err)
