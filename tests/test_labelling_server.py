"""The labelling server: durability across a killed process, disjoint samples for concurrent labellers,
media served only by (id, modality), JSON-only writes."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from urllib.parse import urlsplit

import pytest

from bmmal.labelling.project import Project
from bmmal.labelling.query import query
from test_labelling_helpers import call, feature_cache, new_project, running_server, true_label  # noqa: F401

pytestmark = pytest.mark.usefixtures("feature_cache")


@pytest.fixture
def served(tmp_path, feature_cache):  # noqa: F811
    """(project with a pending batch of 4, the URL of its server)."""
    project = new_project(tmp_path)
    query(project, 4, "random")
    with running_server(project) as url:
        yield project, url


def start_cli_server(project_dir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "bmmal.cli", "label", str(project_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if match:
            return proc, match.group(0)
    proc.kill()
    raise AssertionError("server did not start: " + "".join(seen))


@pytest.mark.slow  # a server process of its own: a few seconds of start-up
def test_answers_survive_a_killed_server(tmp_path):
    project = new_project(tmp_path)
    batch = query(project, 6, "random")
    proc, url = start_cli_server(project.dir)
    try:
        answered = []
        for _ in range(3):
            _, reply = call(url, "/api/next", {"session": "a"})
            sample = reply["sample"]["id"]
            status, _ = call(url, "/api/answer", {"session": "a", "id": sample, "label": true_label(sample)})
            assert status == 200
            answered.append(sample)
        _, reply = call(url, "/api/next", {"session": "a"})  # a is shown a fourth sample when the server dies
        held = reply["sample"]["id"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    reopened = Project(project.dir)
    with reopened.store.reading() as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert reopened.store.labels() == {**{f"s{i:03d}": true_label(f"s{i:03d}") for i in range(6)},
                                       **{s: true_label(s) for s in answered}}
    assert set(reopened.store.pending()) == set(batch.sample_ids) - set(answered)
    with running_server(reopened) as url:  # a new server: a's lease is still a's, b gets another sample
        _, reply = call(url, "/api/next", {"session": "a"})
        assert reply["sample"]["id"] == held
        _, reply = call(url, "/api/next", {"session": "b"})
        assert reply["sample"]["id"] not in answered + [held]
        assert reply["progress"] == {"done": 3, "total": 6, "pending": 3, "labeled": 9, "set_aside": 0,
                                     "second_wanted": 0}


def test_concurrent_labellers_get_disjoint_samples(tmp_path):
    project = new_project(tmp_path)
    batch = query(project, 12, "random")
    n = 4
    done: dict[str, list[str]] = {}
    barrier = threading.Barrier(n)

    def labeller(name, url):
        barrier.wait()
        mine = []
        _, reply = call(url, "/api/next", {"session": name})
        while reply["sample"] is not None:
            sample = reply["sample"]["id"]
            mine.append(sample)
            status, reply = call(url, "/api/answer", {"session": name, "labeller": name, "id": sample,
                                                      "label": true_label(sample)})
            assert status == 200, reply
        done[name] = mine

    with running_server(project) as url:
        threads = [threading.Thread(target=labeller, args=(f"l{k}", url)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    every = [s for mine in done.values() for s in mine]
    assert len(done) == n and sorted(every) == sorted(batch.sample_ids)  # each sample labelled exactly once
    assert project.store.pending() == []


def test_someone_elses_sample_cannot_be_answered(served):
    _, url = served
    _, reply = call(url, "/api/next", {"session": "a"})
    sample = reply["sample"]["id"]
    status, reply = call(url, "/api/answer", {"session": "b", "id": sample, "label": "red"})
    assert status == 409 and "someone else" in reply["error"]
    status, reply = call(url, "/api/answer", {"session": "a", "id": sample, "label": "purple"})
    assert status == 400 and "unknown class" in reply["error"]
    status, reply = call(url, "/api/undo", {"session": "b"})
    assert status == 200 and reply["message"] == "nothing to undo"


def test_only_known_media_and_json_posts(served, tmp_path):
    _, url = served
    (tmp_path / "secret.txt").write_text("secret")
    for path in ("/media?id=s010&m=caption",  # text is not a file to serve
                 "/media?id=s010&m=../secret.txt", "/media?id=../secret.txt&m=image",
                 "/media?id=nope&m=image", "/static/../project.json", "/../secret.txt",
                 "/static/index.html/../../labels.db"):
        status, _ = call(url, path)
        assert status == 404, path
    status, body = call(url, "/media?id=s010&m=sound")
    assert status == 200 and body[:4] == b"RIFF"
    status, reply = call(url, "/api/next", {"session": "a"}, content_type="text/plain")
    assert status == 400 and "application/json" in reply["error"]
    status, page = call(url, "/")
    assert status == 200 and b"<title>" in page


def test_range_requests_for_audio(served):
    project, url = served
    whole = project.samples.path("s010", "sound").read_bytes()
    request = urllib.request.Request(url + "media?id=s010&m=sound", headers={"Range": "bytes=4-11"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 4-11/{len(whole)}"
        assert response.read() == whole[4:12]


def test_closed_page_releases_its_sample(served):
    _, url = served
    _, reply = call(url, "/api/next", {"session": "a"})
    first = reply["sample"]["id"]
    _, reply = call(url, "/api/next", {"session": "b"})
    assert reply["sample"]["id"] != first
    assert call(url, "/api/release", {"session": "a"})[0] == 200
    _, reply = call(url, "/api/next", {"session": "c"})
    assert reply["sample"]["id"] == first


def test_foreign_host_names_are_refused(served):
    _, url = served
    port = urlsplit(url).port
    for host, status in ((f"evil.example:{port}", 421), (f"localhost:{port}", 200), (f"127.0.0.1:{port}", 200)):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/api/project", headers={"Host": host})
        assert connection.getresponse().status == status, host
        connection.close()
