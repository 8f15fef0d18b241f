"""The labelling server's holes, closed (issue 14's table, one test per row or two): security headers and inert
media, broken samples set aside, media streamed in bounded memory, bad Content-Length, access tokens and
the Host allow-list beyond loopback, IPv6 loopback, JSON errors, backlog and idle timeouts, unusable
databases as one line, shell-quoted CLI hints. All traffic goes to 127.0.0.1 or ::1."""

from __future__ import annotations

import csv
import http.client
import json
import os
import socket
import sqlite3
import threading
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bmmal.cli import main
from bmmal.labelling.project import Project
from bmmal.labelling.query import query
from bmmal.labelling.server import LabelServer
from test_labelling_helpers import call, feature_cache, new_project, running_server, true_label  # noqa: F401

pytestmark = pytest.mark.usefixtures("feature_cache")


@pytest.fixture
def project(tmp_path):
    project = new_project(tmp_path, n=21)
    query(project, 12, "random")
    return project


def raw(port: int, request: bytes, host: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    """(status, headers, body) of one raw HTTP exchange; the server closes the connection after it."""
    with socket.create_connection((host, port), timeout=20) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def post_request(port: int, body: bytes, length: str | None, host: str | None = None) -> bytes:
    head = (f"POST /api/next HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\nContent-Type: application/json\r\n"
            "Connection: close\r\n")
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return head.encode() + b"\r\n" + body


def rewrite_manifest(project: Project, change) -> None:
    manifest = Path(project.settings.manifest)
    rows = list(csv.DictReader(manifest.open()))
    rows = change(rows)
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_security_headers_on_every_response(project):
    with running_server(project) as url:
        port = urlsplit(url).port
        paths = ("/", "/static/app.js", "/api/project", "/nothing", "/api/next",
                 f"/media?id={project.store.pending()[0]}&m=image")
        responses = {path: raw(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                                     .encode()) for path in paths}
        responses["host"] = raw(port, b"GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        media = f"/media?id={project.store.pending()[0]}&m=sound"
        for name, value in (("range-past-end", "bytes=99999999-"), ("range-backwards", "bytes=9-2"),
                            ("range-words", "lines=1-2")):
            responses[name] = raw(port, f"GET {media} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nRange: {value}\r\n"
                                        "Connection: close\r\n\r\n".encode())
        responses["bad"] = raw(port, post_request(port, b"{}", "abc"))
    assert [responses[k][0] for k in responses] == [200, 200, 200, 404, 405, 200, 421, 416, 400, 400, 400]
    assert responses["range-past-end"][1]["content-range"].startswith("bytes */")
    for key, (status, headers, body) in responses.items():
        assert headers["x-content-type-options"] == "nosniff", key
        if status >= 400:
            assert headers["content-type"] == "application/json" and "error" in json.loads(body), key
        if key != "bad":  # uvicorn's own 400 for an unparsable request: JSON and nosniff, no page to protect
            assert "frame-ancestors 'none'" in headers["content-security-policy"], key
            assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store", key
    media_csp = responses[next(k for k in responses if k.startswith("/media"))][1]["content-security-policy"]
    assert media_csp.startswith("sandbox") and "script-src" not in media_csp and "default-src 'none'" in media_csp
    assert "script-src 'self'" in responses["/"][1]["content-security-policy"]


def test_broken_samples_are_set_aside_with_a_reason(project, tmp_path, capsys):
    pending = project.store.pending()
    missing_text, gone, missing_image = pending[0], pending[1], pending[2]

    def break_rows(rows):
        for row in rows:
            if row["id"] == missing_text:
                row["caption"] = "captions/lost.txt"  # a text file that does not exist
        return [r for r in rows if r["id"] != gone]  # an id no longer in the manifest

    rewrite_manifest(project, break_rows)
    image = Path(project.settings.manifest).parent / "media" / f"{missing_image}.png"
    image.rename(image.with_suffix(".bak"))
    project = Project(project.dir)
    with running_server(project) as url:
        status, reply = call(url, "/api/next", {"session": "a"})
        assert status == 200 and reply["sample"]["id"] == pending[3]  # the broken ones are passed over
        assert reply["set_aside"] == [
            {"id": missing_text, "reason": "its caption file captions/lost.txt is missing"},
            {"id": gone, "reason": "it is no longer in the manifest"},
            {"id": missing_image, "reason": f"its image file media/{missing_image}.png is missing"}]
        assert str(tmp_path) not in json.dumps(reply)  # no server path reaches a client
        assert reply["progress"]["set_aside"] == 3
        status, media = call(url, f"/media?id={missing_image}&m=image")
        assert status == 404 and "is missing" in media["error"] and str(tmp_path) not in media["error"]
        seen = set()
        while reply["sample"] is not None:  # every other sample is served and can be labelled
            sample = reply["sample"]["id"]
            seen.add(sample)
            status, reply = call(url, "/api/answer", {"session": "a", "id": sample, "label": true_label(sample)})
            assert status == 200, reply
        assert seen == set(pending[3:])

    assert main(["status", str(project.dir)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "3 pending samples set aside" in out and f"{gone}: it is no longer in the manifest" in out
    image.with_suffix(".bak").rename(image)  # the file is back: the next server serves the sample again
    with running_server(Project(project.dir)) as url:
        _, reply = call(url, "/api/next", {"session": "b"})
        assert reply["sample"]["id"] == missing_image and reply["progress"]["set_aside"] == 2


def test_media_are_streamed_in_bounded_memory(project):
    sample = project.store.pending()[0]
    sound = project.samples.path(sample, "sound")
    head = sound.read_bytes()[:64]
    size = 48 * 2 ** 20
    os.truncate(sound, size)  # a 48 MiB (sparse) audio file
    with running_server(project) as url:
        port = urlsplit(url).port
        tracemalloc.start()
        try:
            for first, last in ((0, 99), (size - 100, size - 1), (size // 2, size // 2 + 4095), (4, 11)):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", f"/media?id={sample}&m=sound", headers={"Range": f"bytes={first}-{last}"})
                response = connection.getresponse()
                body = response.read()
                assert response.status == 206 and len(body) == last - first + 1
                assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
                connection.close()
            assert body == head[4:12]
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("GET", f"/media?id={sample}&m=sound")
            response = connection.getresponse()
            total = 0
            while chunk := response.read(2 ** 20):
                total += len(chunk)
            connection.close()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert total == size
    assert peak < 12 * 2 ** 20, f"peak {peak / 2 ** 20:.1f} MiB while serving a 48 MiB file"


def test_bad_content_length_is_a_4xx_and_claims_nothing(project):
    with running_server(project) as url:
        port = urlsplit(url).port
        body = json.dumps({"session": "cl"}).encode()
        for length in ("-1", "abc", "1e3", "99999999999", ""):
            status, _, reply = raw(port, post_request(port, body, length))
            assert 400 <= status < 500 and "error" in json.loads(reply), length
        status, _, reply = raw(port, post_request(port, b"x" * (70 * 1024), str(70 * 1024)))
        assert status == 413
        chunked = (f"POST /api/next HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
        chunk = b"x" * 32768
        chunked += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
        status, _, reply = raw(port, chunked)  # no length, 96 KiB of chunks: cut off at 64 KiB
        assert status == 413
    with project.store.reading() as db:
        assert db.execute("SELECT count(*) FROM leases").fetchone() == (0,)


def test_beyond_loopback_a_token_is_needed_and_hosts_are_checked(project):
    server = LabelServer(project, "0.0.0.0", 0).start()  # listens on every interface; we talk to 127.0.0.1 only
    try:
        port = server.port
        (token,) = server.access.tokens
        assert server.url().endswith(f":{port}/?token={token}")
        base = f"http://127.0.0.1:{port}"
        status, reply = call(base, "/api/project")
        assert status == 401 and "token" in reply["error"]
        assert call(base, "/api/next", {"session": "x"})[0] == 401
        assert call(base, "/api/project", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(base, "/api/project", headers={"Authorization": f"Bearer {token}"})[0] == 200
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        connection.request("GET", f"/?token={token}")
        response = connection.getresponse()
        response.read()
        assert response.status == 303 and response.headers["Location"] == "/"  # the token leaves the address bar
        cookie = response.headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in response.headers["Set-Cookie"] and "SameSite=strict" in response.headers["Set-Cookie"]
        connection.close()
        sample = project.store.pending()[0]
        status, _ = call(base, f"/media?id={sample}&m=image", headers={"Cookie": cookie})
        assert status == 200  # media requests carry the cookie
        status, _, reply = raw(port, f"GET /api/project HTTP/1.1\r\nHost: rebound.example:{port}\r\nAuthorization: "
                                     f"Bearer {token}\r\nConnection: close\r\n\r\n".encode())
        assert status == 421
    finally:
        server.shutdown()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_loopback_works(project):
    with running_server(project, "::1") as url:
        assert url.startswith("http://[::1]:")
        status, info = call(url, "/api/project")
        assert status == 200 and info["classes"] == ["red", "green", "blue"]
        status, reply = call(url, "/api/next", {"session": "v6"})
        assert status == 200 and reply["sample"] is not None


def test_locked_database_is_a_json_503_in_bounded_time(project):
    with running_server(project, busy_timeout=0.3) as url:
        lock = sqlite3.connect(project.dir / "labels.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            status, reply = call(url, "/api/next", {"session": "a"})
            assert status == 503 and "busy" in reply["error"]
            status, progress = call(url, "/api/progress")  # reading goes on meanwhile (WAL)
            assert status == 200 and progress["total"] == 12
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert call(url, "/api/next", {"session": "a"})[0] == 200


def test_many_simultaneous_posts_and_silent_connections(project):
    with running_server(project, idle_timeout=0.5) as url:
        port = urlsplit(url).port
        threads_before = threading.active_count()
        silent = []
        for _ in range(40):  # connections that never finish their request head
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            s.sendall(f"POST /api/next HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
            silent.append(s)
        time.sleep(0.1)
        assert threading.active_count() == threads_before  # silent clients hold no thread
        n = 24
        barrier = threading.Barrier(n)
        results: list = [None] * n

        def post(k):
            barrier.wait()
            try:
                results[k] = call(url, "/api/next", {"session": f"s{k}"})
            except OSError as e:  # a reset connection
                results[k] = e

        workers = [threading.Thread(target=post, args=(k,)) for k in range(n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert all(isinstance(r, tuple) and r[0] == 200 for r in results), results
        served = [r[1]["sample"]["id"] for r in results if r[1]["sample"]]
        assert len(served) == 12 and len(set(served)) == 12  # 12 pending samples, never one twice
        deadline = time.monotonic() + 10
        for s in silent:  # and they are cut off after the idle timeout
            s.settimeout(max(deadline - time.monotonic(), 0.1))
            try:
                assert s.recv(1) == b""
            except ConnectionResetError:
                pass
            s.close()


def test_unusable_database_is_one_line_and_status_takes_no_lock(project, capsys):
    lock = sqlite3.connect(project.dir / "labels.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        assert main(["status", str(project.dir)]) == 0  # a read: no write lock needed, so no wait
        assert main(["export", str(project.dir)]) == 0
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    capsys.readouterr()
    for suffix in ("-wal", "-shm"):
        Path(f"{project.dir / 'labels.db'}{suffix}").unlink(missing_ok=True)
    (project.dir / "labels.db").write_bytes(b"this is not an SQLite database, it was overwritten " * 200)
    for command in (["status"], ["label"], ["query", "--budget", "3"], ["export"]):
        assert main([command[0], str(project.dir), *command[1:]]) == 2, command
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "not a readable label database" in err, err


def test_cli_hints_are_shell_quoted(tmp_path, capsys):
    from test_labelling_helpers import EXTRACTORS, write_manifest

    manifest = write_manifest(tmp_path / "data", n=9, seeds_per_class=0)
    project_dir = tmp_path / "my project's dir"
    extractors = [a for m, name in EXTRACTORS.items() for a in ("--extractor", f"{m}={name}")]
    assert main(["init", str(project_dir), "--manifest", str(manifest), "--classes", "red,green,blue",
                 *extractors]) == 0
    quoted = "'" + str(project_dir).replace("'", "'\"'\"'") + "'"
    assert f"next: bmmal query {quoted} --budget N" in capsys.readouterr().out
    assert main(["label", str(project_dir)]) == 2
    assert f"run `bmmal query {quoted} --budget N` first" in " ".join(capsys.readouterr().err.split())
