"""`bmmal label`: a small local web server for labelling the pending samples in a browser.

Standard library only (`http.server.ThreadingHTTPServer`); every request opens its own SQLite
connection, so answers from several browsers are serialised by the store and saved before the reply.

    GET  /                     the labelling page (static/index.html, app.js, app.css)
    GET  /api/project          classes, modalities and their kinds
    POST /api/next             {session}                        -> {sample, progress}
    POST /api/answer           {session, labeller, id, label}   -> {sample, progress} (the next sample)
    POST /api/skip             {session, id}                    -> {sample, progress}
    POST /api/undo             {session}                        -> {sample, progress} (the undone sample)
    POST /api/release          {session}                        -> {progress} (the page was closed)
    GET  /media?id=ID&m=NAME   the file of one sample's modality

Media are served only by (sample id, modality) lookup in the manifest, never by a path from the request.
POST bodies must be `application/json`, which a cross-site form cannot send without the browser asking
first (and this server answers no such request), so other web pages cannot label through a labeller's
browser; on a loopback address, requests must also name the server by a loopback Host (against DNS
rebinding).
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlencode, urlsplit

from bmmal.errors import BmmalError
from bmmal.labelling.store import Conflict

LOOPBACK = ("127.0.0.1", "localhost", "::1")
STATIC = {"/": "index.html", "/static/app.js": "app.js", "/static/app.css": "app.css"}
POST_ROUTES = {"/api/next": "next", "/api/answer": "answer", "/api/skip": "skip", "/api/undo": "undo",
               "/api/release": "release"}  # path -> LabellingApp method
MAX_BODY = 64 * 1024
MAX_TEXT = 200_000  # characters of a text file shown in the page


class BadRequest(BmmalError):
    pass


def _text(value, name: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequest(f"{name} must be a non-empty string of at most {limit} characters")
    return value.strip()


class LabellingApp:
    """What the HTTP handler calls: JSON in, JSON out, over one project."""

    def __init__(self, project):
        self.project = project
        self.store = project.store
        self.samples = project.samples
        self.ttl = project.settings.lease_seconds

    def project_info(self) -> dict:
        return {"name": self.project.dir.name, "classes": list(self.project.classes),
                "modalities": [{"name": m, "kind": self.samples.kind(m)} for m in self.samples.modalities]}

    def sample(self, sample_id: str | None) -> dict | None:
        if sample_id is None:
            return None
        item = self.store.batch_item(sample_id)
        fields = []
        for m in self.samples.modalities:
            kind = self.samples.kind(m)
            field = {"name": m, "kind": kind}
            if kind == "text":
                field["text"] = self.samples.text(sample_id, m)[:MAX_TEXT]
            else:
                field["url"] = "/media?" + urlencode({"id": sample_id, "m": m})
            fields.append(field)
        prediction = item["prediction"] if item else None
        return {"id": sample_id, "batch": item["batch"] if item else None, "fields": fields,
                "prediction": {"label": prediction["label"], "score": prediction["score"]} if prediction else None}

    def _reply(self, sample_id: str | None, **extra) -> dict:
        return {"sample": self.sample(sample_id), "progress": self.store.progress(), **extra}

    def next(self, body: dict) -> dict:
        return self._reply(self.store.claim(_text(body.get("session"), "session"), self.ttl))

    def answer(self, body: dict) -> dict:
        session = _text(body.get("session"), "session")
        label = body.get("label")
        if label not in self.project.classes:
            raise BadRequest(f"unknown class {label!r}")
        labeller = body.get("labeller")
        labeller = _text(labeller, "labeller") if labeller not in (None, "") else None
        self.store.answer(session, _text(body.get("id"), "id", 1000), label, labeller)
        return self._reply(self.store.claim(session, self.ttl))

    def skip(self, body: dict) -> dict:
        session = _text(body.get("session"), "session")
        self.store.skip(session, _text(body.get("id"), "id", 1000))
        return self._reply(self.store.claim(session, self.ttl))

    def undo(self, body: dict) -> dict:
        session = _text(body.get("session"), "session")
        undone = self.store.undo(session, self.ttl)
        if undone is None:
            return self._reply(self.store.claim(session, self.ttl), message="nothing to undo")
        return self._reply(undone)

    def release(self, body: dict) -> dict:
        self.store.release(_text(body.get("session"), "session"))
        return {"progress": self.store.progress()}

    def media(self, query: dict) -> tuple[bytes, str]:
        sample_id, modality = query.get("id", [None])[0], query.get("m", [None])[0]
        if sample_id not in self.samples.row_of or modality not in self.samples.modalities:
            raise FileNotFoundError
        if self.samples.kind(modality) == "text":
            raise FileNotFoundError
        path = self.samples.path(sample_id, modality)
        return path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class Handler(BaseHTTPRequestHandler):
    app: LabellingApp  # set on the subclass made by `make_server`
    server_version = "bmmal-label"
    allowed_hosts: frozenset[str] | None = None  # Host headers accepted (None: any), see `make_server`

    def _host_ok(self) -> bool:
        if self.allowed_hosts is None or self.headers.get("Host", "").lower() in self.allowed_hosts:
            return True
        self._json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "unexpected Host header"})
        return False

    def log_message(self, format, *args):  # quiet: the terminal shows only the URL and errors
        pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_media(self, body: bytes, content_type: str) -> None:
        """The file, or the one byte range asked for (browsers seek audio with range requests)."""
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if not match or not any(match.groups()) or not body:
            self._send(200, body, content_type, {"Accept-Ranges": "bytes"})
            return
        first, last = match.groups()
        start = int(first) if first else max(len(body) - int(last), 0)
        end = min(int(last), len(body) - 1) if first and last else len(body) - 1
        if start > end or start >= len(body):
            self._send(416, b"", content_type, {"Content-Range": f"bytes */{len(body)}"})
            return
        self._send(206, body[start:end + 1], content_type,
                   {"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{len(body)}"})

    def _json(self, status: int, data: dict) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def do_GET(self):
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        if url.path in STATIC:
            name = STATIC[url.path]
            body = resources.files("bmmal.labelling").joinpath("static", name).read_bytes()
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            self._send(200, body, f"{kind}; charset=utf-8")
        elif url.path == "/api/project":
            self._json(200, self.app.project_info())
        elif url.path == "/api/progress":
            self._json(200, self.app.store.progress())
        elif url.path == "/media":
            try:
                body, kind = self.app.media(parse_qs(url.query))
            except (FileNotFoundError, IsADirectoryError):
                self._json(404, {"error": "no such media"})
                return
            self._send_media(body, kind)
        else:
            self._json(404, {"error": f"no such page: {url.path}"})

    def do_POST(self):
        if not self._host_ok():
            return
        route = POST_ROUTES.get(urlsplit(self.path).path)
        if route is None:
            self._json(404, {"error": "no such endpoint"})
            return
        try:
            if self.headers.get_content_type() != "application/json":
                raise BadRequest("requests must be application/json")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise BadRequest("request too large")
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise BadRequest("request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("request body must be a JSON object")
            self._json(200, getattr(self.app, route)(body))
        except Conflict as e:
            self._json(HTTPStatus.CONFLICT, {"error": str(e), "progress": self.app.store.progress()})
        except BmmalError as e:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})


def make_server(project, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server for `project` (port 0: any free port; the bound one is `server.server_address[1]`)."""
    app = LabellingApp(project)
    handler = type("BoundHandler", (Handler,), {"app": app})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise BmmalError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    server.daemon_threads = True
    if host in LOOPBACK:  # only this computer's own names: a web page whose DNS name was rebound to
        bound = server.server_address[1]  # 127.0.0.1 cannot talk to the server through the browser
        handler.allowed_hosts = frozenset(f"{name}:{bound}" for name in ("127.0.0.1", "localhost", "[::1]"))
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="bmmal-label", daemon=True)
    thread.start()
    return thread


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
