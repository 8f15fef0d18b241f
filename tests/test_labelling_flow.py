"""A labelling round end to end: init, query, label through the HTTP API, export, import, query again."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from bmmal.cli import main
from bmmal.errors import BmmalError
from bmmal.labelling.labelstudio import export_tasks
from bmmal.labelling.project import Project
from bmmal.labelling.query import is_validation, query
from test_labelling_helpers import CLASSES, call, feature_cache, new_project, running_server, true_label  # noqa: F401

pytestmark = pytest.mark.usefixtures("feature_cache")


def test_init_imports_seed_labels_and_validates(tmp_path):
    project = new_project(tmp_path)
    assert project.counts() == {"labeled": 6, "pending": 0, "unlabeled": 54, "total": 60}
    assert project.store.labels() == {f"s{i:03d}": CLASSES[i % 3] for i in range(6)}
    assert project.modalities == ("image", "caption", "sound")
    with pytest.raises(BmmalError, match="already a labelling project"):
        Project.create(project.dir, project.settings.manifest, "red,green,blue")
    with pytest.raises(BmmalError, match="not one of the classes"):  # a seed label outside the classes
        Project.create(tmp_path / "other", project.settings.manifest, "red,green")
    assert not (tmp_path / "other" / "project.json").exists()


def test_first_batch_without_labels_needs_a_model_free_strategy(tmp_path):
    project = new_project(tmp_path, seeds_per_class=0)
    with pytest.raises(BmmalError, match="needs a model.*random or kmeans or coreset"):
        query(project, 5, "bmmal")
    result = query(project, 5, "random")
    assert result.model_info is None and len(set(result.sample_ids)) == 5
    assert project.store.pending() == result.sample_ids
    assert [i["prediction"] for i in project.store.pending_items()] == [None] * 5
    with pytest.raises(BmmalError, match="larger than the 55 samples"):
        query(project, 56, "random")


def test_round_through_http_api_export_import_and_second_query(tmp_path):
    project = new_project(tmp_path)
    first = query(project, 9, "bmmal")
    assert first.model_info["trained_on"] == 6 and set(first.model_info["pool_balance"]) == set(project.modalities)
    assert abs(sum(first.model_info["pool_balance"].values()) - 1) < 1e-5
    pending = set(first.sample_ids)
    assert not pending & {f"s{i:03d}" for i in range(6)}  # never a labelled sample

    with running_server(project) as url:
        status, info = call(url, "/api/project")
        assert status == 200 and info["classes"] == list(CLASSES)
        assert [m["kind"] for m in info["modalities"]] == ["image", "text", "audio"]
        status, reply = call(url, "/api/next", {"session": "alice"})
        seen = []
        for _ in range(5):  # alice labels five samples (correctly), one answer per request
            sample = reply["sample"]
            assert sample["id"] in pending and sample["id"] not in seen
            fields = {f["name"]: f for f in sample["fields"]}
            assert fields["caption"]["text"] and fields["sound"]["url"].startswith("/media?")
            status, media = call(url, fields["image"]["url"])
            assert status == 200 and media[:8] == b"\x89PNG\r\n\x1a\n"
            status, reply = call(url, "/api/answer", {"session": "alice", "labeller": "Alice", "id": sample["id"],
                                                      "label": true_label(sample["id"])})
            assert status == 200
            seen.append(sample["id"])
        assert reply["progress"] == {"done": 5, "total": 9, "pending": 4, "labeled": 11, "set_aside": 0,
                                     "second_wanted": 0}

    labels = project.store.labels()
    assert {i: labels[i] for i in seen} == {i: true_label(i) for i in seen}

    tasks_path, config_path, n = export_tasks(project, tmp_path / "ls" / "tasks.json")
    tasks = json.loads(tasks_path.read_text())
    assert n == 4 and {t["data"]["id"] for t in tasks} == pending - set(seen)
    config = ET.fromstring(config_path.read_text())
    assert [c.get("value") for c in config.iter("Choice")] == list(CLASSES)
    assert {e.tag: e.get("name") for e in config if e.tag in ("Image", "Text", "Audio")} == {
        "Image": "image", "Text": "caption", "Audio": "sound"}
    for t in tasks:
        assert t["data"]["image"].startswith("/data/local-files/?d=media/s")
        (prediction,) = t["predictions"]
        (result,) = prediction["result"]
        assert result["from_name"] == "label" and result["to_name"] == "image" and result["type"] == "choices"
        assert result["value"]["choices"][0] in CLASSES and 0 < prediction["score"] <= 1

    # Label Studio's export: annotations on every task, one cancelled annotation that carries no label.
    for t in tasks:
        t["annotations"] = [{"result": [{"from_name": "label", "to_name": "image", "type": "choices",
                                         "value": {"choices": [true_label(t["data"]["id"])]}}],
                             "was_cancelled": False},
                            {"result": [{"from_name": "label", "to_name": "image", "type": "choices",
                                         "value": {"choices": ["red"]}}], "was_cancelled": True}]
    export = tmp_path / "ls" / "export.json"
    export.write_text(json.dumps(tasks))
    from bmmal.labelling.importing import import_labels

    report = import_labels(project, export)
    assert report.applied == 4 and not report.problems
    assert project.counts() == {"labeled": 15, "pending": 0, "unlabeled": 45, "total": 60}

    second = query(project, 6, "bmmal")
    assert second.batch == first.batch + 1 and second.model_info["trained_on"] == 15
    assert not set(second.sample_ids) & set(project.store.labels())
    assert project.store.pending() == second.sample_ids
    assert json.loads((project.dir / "model.json").read_text())["batch"] == second.batch


def test_validation_is_a_fixed_share_of_ids_and_is_measured(tmp_path, capsys):
    ids = np.array([f"x{i}" for i in range(4000)])
    held = is_validation(ids, seed=0, fraction=0.2)
    assert 0.18 < held.mean() < 0.22
    assert np.array_equal(held[:100], is_validation(ids[:100], seed=0, fraction=0.2))  # per id, not per set
    project = new_project(tmp_path, n=60, seeds_per_class=12, min_labels_for_validation=30)
    result = query(project, 5, "bmmal")
    info = result.model_info
    assert info["validation_size"] > 0 and info["trained_on"] + info["validation_size"] == 36
    assert info["validation"]["accuracy_micro"] >= 0.8  # the classes are easy: labels reached the model right
    items = project.store.pending_items()
    assert sum(i["prediction"]["label"] == true_label(i["id"]) for i in items) >= 4  # class names map right
    assert main(["status", str(project.dir)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"held-out labels: {info['validation_size']}, accuracy {info['validation']['accuracy_micro']:.3f}" in out
    assert "modality balance (mean Shapley share on the unlabelled pool): image" in out


def test_pending_samples_are_not_selected_again(tmp_path):
    project = new_project(tmp_path)
    first = query(project, 20, "random")
    second = query(project, 20, "random")
    assert not set(first.sample_ids) & set(second.sample_ids)
    assert project.counts()["pending"] == 40


@pytest.mark.parametrize("strategy", ["kmeans", "coreset"])
def test_diverse_first_batch_covers_every_class(tmp_path, strategy):
    project = new_project(tmp_path, seeds_per_class=0)
    result = query(project, 3, strategy)
    assert result.model_info is None
    assert sorted(true_label(i) for i in result.sample_ids) == sorted(CLASSES)  # one per (well-separated) class
