"""Imports of labels (CSV, Label Studio JSON): all answers applied in one go, or none with every reason listed."""

from __future__ import annotations

import json

import pytest

from bmmal.cli import main
from bmmal.errors import BmmalError
from bmmal.labelling.importing import ImportRejected, import_labels
from test_labelling_helpers import feature_cache, new_project  # noqa: F401

pytestmark = pytest.mark.usefixtures("feature_cache")


def ls_task(sample_id, *choices_per_annotation, cancelled=()):
    return {"id": 1, "data": {"id": sample_id},
            "annotations": [{"result": [{"from_name": "label", "to_name": "image", "type": "choices",
                                         "value": {"choices": list(c)}}], "was_cancelled": k in cancelled}
                            for k, c in enumerate(choices_per_annotation)]}


@pytest.fixture
def project(tmp_path):
    return new_project(tmp_path, n=30)  # s000..s005 carry seed labels red, green, blue, red, green, blue


def test_csv_import_applies_all(project, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,label\ns010,blue\ns011,red\ns012,\ns000,red\n")
    report = import_labels(project, path)
    assert (report.applied, report.unchanged, report.unanswered) == (2, 1, 1)
    labels = project.store.labels()
    assert labels["s010"] == "blue" and labels["s011"] == "red" and "s012" not in labels


def test_bad_csv_is_rejected_whole_with_every_reason(project, tmp_path):
    before = project.store.labels()
    path = tmp_path / "labels.csv"
    path.write_text("id,label\n"
                    "s010,blue\n"  # fine on its own
                    "nope,red\n"  # unknown id
                    "s011,purple\n"  # unknown class
                    "s012,red\n"
                    "s012,green\n"  # conflicting labels in the file
                    "s001,red\n"  # s001 is already 'green' in the project
                    ",red\n")  # no id
    with pytest.raises(ImportRejected) as caught:
        import_labels(project, path)
    problems = caught.value.report.problems
    assert len(problems) == 5
    text = "\n".join(problems)
    assert "line 3: unknown sample id 'nope'" in text
    assert "line 4: unknown class 'purple'" in text
    assert "line 6: conflicting labels for 's012': 'red' (line 5) and 'green'" in text
    assert "'s001' is already labelled 'green'" in text and "--overwrite" in text
    assert "line 8: empty id" in text
    assert project.store.labels() == before  # nothing applied, not even s010


def test_overwrite_replaces_existing_labels(project, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,label\ns001,red\n")
    report = import_labels(project, path, overwrite=True)
    assert report.applied == 1 and project.store.labels()["s001"] == "red"


def test_label_studio_export_import(project, tmp_path):
    path = tmp_path / "export.json"
    tasks = [ls_task("s010", ["blue"]), ls_task("s011", ["red"], ["red"]),  # two annotators agree
             ls_task("s012", ["red"], ["green"], cancelled=(1,)),  # the cancelled one does not count
             {"id": 9, "data": {"id": "s013"}, "annotations": []}]  # not annotated
    path.write_text(json.dumps(tasks))
    report = import_labels(project, path)
    assert (report.applied, report.unanswered) == (3, 1)
    assert {k: v for k, v in project.store.labels().items() if k >= "s010"} == {
        "s010": "blue", "s011": "red", "s012": "red"}


def test_bad_label_studio_export_is_rejected(project, tmp_path):
    before = project.store.labels()
    path = tmp_path / "export.json"
    tasks = [ls_task("s010", ["blue"]), ls_task("s011", ["red"], ["green"]),  # annotators disagree
             ls_task("s012", ["red", "blue"]),  # two classes in one single-choice answer
             ls_task("s999", ["red"]), {"data": {"text": "no id"}}]
    path.write_text(json.dumps(tasks))
    with pytest.raises(ImportRejected) as caught:
        import_labels(project, path)
    text = "\n".join(caught.value.report.problems)
    assert "conflicting labels for 's011'" in text and "2 choices, expected exactly one class" in text
    assert "unknown sample id 's999'" in text and "task 5: no data.id" in text
    assert project.store.labels() == before
    path.write_text("{not json")
    with pytest.raises(BmmalError, match="not valid JSON"):
        import_labels(project, path)
    (tmp_path / "labels.txt").write_text("s010 blue")
    with pytest.raises(BmmalError, match="cannot import .txt"):
        import_labels(project, tmp_path / "labels.txt")


def test_cli_import_lists_reasons_and_exits_2(project, tmp_path, capsys):
    path = tmp_path / "labels.csv"
    path.write_text("id,label\ns010,blue\nnope,red\ns011,purple\n")
    assert main(["import", str(project.dir), str(path)]) == 2
    err = capsys.readouterr().err
    assert "2 problems, nothing imported" in err
    assert "unknown sample id 'nope'" in err and "unknown class 'purple'" in err
    assert "s010" not in project.store.labels()
    path.write_text("id,label\ns010,blue\n")
    assert main(["import", str(project.dir), str(path)]) == 0
    assert "labels imported: 1 new or changed" in capsys.readouterr().out


def test_encodings_boms_and_malformed_entries_go_to_the_report(project, tmp_path):
    before = project.store.labels()
    utf16 = tmp_path / "utf16.csv"  # UTF-16 with its BOM (what some spreadsheet programs save): accepted
    utf16.write_text("id,label\ns010,blue\n", encoding="utf-16")
    assert import_labels(project, utf16).applied == 1
    bom_json = tmp_path / "bom.json"  # a BOM before JSON is accepted like one before CSV
    bom_json.write_bytes(b"\xef\xbb\xbf" + json.dumps([ls_task("s011", ["red"])]).encode())
    assert import_labels(project, bom_json).applied == 1
    bom_csv = tmp_path / "bom.csv"
    bom_csv.write_bytes(b"\xef\xbb\xbfid,label\ns012,green\n")
    assert import_labels(project, bom_csv).applied == 1

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("id,label\ns013,red\ns014,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ImportRejected) as caught:
        import_labels(project, latin1)
    assert caught.value.report.problems == ["line 3: the file is not utf-8 text (byte 0xe9); save it as UTF-8"]

    cells = tmp_path / "cells.csv"
    cells.write_text("id,label\ns013,red,extra\ns014\ns015,blue\n")
    with pytest.raises(ImportRejected) as caught:
        import_labels(project, cells)
    assert caught.value.report.problems == ["line 2: 3 cells, the header has 2", "line 3: 1 cells, the header has 2"]

    studio = tmp_path / "studio.json"
    bad = ls_task("s016", ["red"])
    bad["annotations"][0]["result"][0]["value"] = "circle"  # a value that is not an object
    worse = ls_task("s017", ["red"])
    worse["annotations"][0]["result"][0]["value"] = {"choices": "red"}  # choices not a list
    studio.write_text(json.dumps([bad, worse, {"data": {"id": "s018"}, "annotations": "none"}]))
    with pytest.raises(ImportRejected) as caught:
        import_labels(project, studio)
    text = "\n".join(caught.value.report.problems)
    assert 'task 1 (s016), annotation 1: value must be {"choices": [CLASS]}, got "circle"' in text
    assert "task 2 (s017), annotation 1: value must be" in text and "task 3 (s018): annotations is not a list" in text
    assert {k: v for k, v in project.store.labels().items() if k not in before} == {
        "s010": "blue", "s011": "red", "s012": "green"}  # only the three good files were applied
