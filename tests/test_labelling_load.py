"""A small run of the labelling load test (benchmarks/label_load.py): 8 labellers at once against a server
in a thread; no answer lost or given twice, no failed request or reset connection."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bmmal.labelling.project import Project
from test_labelling_helpers import running_server

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "label_load.py"
spec = importlib.util.spec_from_file_location("label_load", SCRIPT)
label_load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(label_load)


def test_concurrent_labellers_lose_and_duplicate_nothing(tmp_path):
    labellers, answers = 8, 15
    project_dir = label_load.make_project(tmp_path, labellers * (answers + 1))
    with running_server(Project(project_dir)) as url:
        result = label_load.run_load(int(url.rsplit(":", 1)[1].strip("/")), labellers, answers, time_limit=120)
    summary = label_load.check(project_dir, result)
    assert result["finished"] and summary["answers"] == labellers * answers, summary
    problems = (summary["lost"], summary["duplicated"], summary["unexpected"], summary["failures"])
    assert problems == (0, 0, 0, []), summary
