"""`bmmal label`: the labelling page and its JSON API, a Starlette app served by uvicorn.

    GET  /                     the labelling page (static/index.html, app.js, app.css)
    GET  /api/project          classes, modalities and their kinds, the labeller the token names
    GET  /api/progress         labelled / total in the open batches
    POST /api/next             {session, labeller?}                 -> {sample, progress, set_aside?}
    POST /api/answer           {session, labeller?, id, label}      -> {sample, progress} (the next sample)
    POST /api/skip             {session, id}                        -> {sample, progress}
    POST /api/undo             {session}                            -> {sample, progress} (the undone sample)
    POST /api/release          {session}                            -> {progress} (the page was closed)
    GET  /media?id=ID&m=NAME   the file of one sample's modality (streamed, with HTTP ranges)

The store's work runs in Starlette's thread pool, one SQLite transaction per store call, committed
before the reply. Every error is a JSON object `{"error": ...}` with a 4xx/5xx status, including the
ones uvicorn answers itself (a malformed request line, a bad Content-Length): `_Protocol` below. POST
bodies must be `application/json` (a cross-site form cannot send it without asking first, and this
server answers no such request), at most 64 KiB, and arrive within `BODY_SECONDS`. A connection must
send its request head within `idle_timeout` seconds of connecting or of its last response, so silent
or slow clients do not pile up. Media are served only by (sample id, modality) lookup in the manifest,
never by a path from the request. Access control and security headers: `access.py`.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import socket
import threading
from importlib import resources

import anyio
import h11
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from bmmal.errors import BmmalError
from bmmal.labelling.access import Access, Guard
from bmmal.labelling.api import BadRequest, LabellingApp, MediaMissing
from bmmal.labelling.store import Conflict, StoreBusy, StoreUnreadable

STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
ACTIONS = ("next", "answer", "skip", "undo", "release")  # POST /api/<action> -> LabellingApp.<action>
MAX_BODY = 64 * 1024
BODY_SECONDS = 10.0  # a request body must arrive within this
BACKLOG = 2048  # connections waiting to be accepted (the kernel caps it at net.core.somaxconn)
RANGE = re.compile(r"bytes=\d*-\d*(\s*,\s*\d*-\d*)*")
log = logging.getLogger("bmmal.labelling")


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def json_body(request: Request) -> dict:
    """The request's JSON object, read in bounded memory and time."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise RequestError(400, "requests must be application/json")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise RequestError(413 if length.isdigit() else 400, f"the request body must be at most {MAX_BODY} bytes")
    chunks, size = [], 0
    try:
        with anyio.fail_after(BODY_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise RequestError(413, f"the request body must be at most {MAX_BODY} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestError(408, "the request body did not arrive in time") from None
    try:
        body = json.loads(b"".join(chunks) or b"{}")
    except (UnicodeDecodeError, ValueError):
        raise RequestError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object")
    return body


def error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status)


def range_error(header: str | None, size: int) -> JSONResponse | None:
    """The JSON 400/416 for a Range header that is malformed or asks only for bytes past the end (Starlette
    would answer those in plain text); None for a good one, which FileResponse serves."""
    if header is None:
        return None
    spans = [span.strip().partition("-") for span in header.partition("=")[2].split(",")]
    if (not RANGE.fullmatch(header.strip()) or any(not a and not b for a, _, b in spans)
            or any(a and b and int(a) > int(b) for a, _, b in spans)):
        return error(400, f"malformed Range header {header[:80]!r}")
    if all(int(a) >= size if a else int(b) == 0 for a, _, b in spans):
        response = error(416, f"the range is past the end of the file ({size} bytes)")
        response.headers["Content-Range"] = f"bytes */{size}"
        return response
    return None


def create_app(labelling: LabellingApp) -> Starlette:
    """The Starlette app (without the access guard) over one project's `LabellingApp`."""
    store = labelling.store

    async def page(request: Request) -> Response:
        body = resources.files("bmmal.labelling").joinpath("static", "index.html").read_bytes()
        return Response(body, media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            raise HTTPException(404, f"no such page: {request.url.path}")
        body = resources.files("bmmal.labelling").joinpath("static", name).read_bytes()
        return Response(body, media_type=f"{STATIC[name]}; charset=utf-8")

    async def project_info(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(labelling.project_info, request.state.labeller))

    async def progress(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(store.progress))

    async def action(request: Request) -> Response:
        name = request.path_params["action"]
        if name not in ACTIONS:
            raise HTTPException(404, "no such endpoint")
        body = await json_body(request)
        return JSONResponse(await run_in_threadpool(getattr(labelling, name), body, request.state.labeller))

    async def media(request: Request) -> Response:
        sample_id, modality = request.query_params.get("id"), request.query_params.get("m")
        try:
            path, kind = await run_in_threadpool(labelling.media, sample_id, modality)
        except (FileNotFoundError, IsADirectoryError):
            return error(404, "no such media")
        except MediaMissing as e:
            return error(404, str(e))
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        bad_range = range_error(request.headers.get("range"), path.stat().st_size)
        return bad_range or FileResponse(path, media_type=kind)  # streamed in 64 KiB chunks, ranges answered

    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else "no such page"
        return error(exc.status_code, message)

    async def request_error(request: Request, exc: RequestError) -> Response:
        return error(exc.status, str(exc))

    async def bad_request(request: Request, exc: BmmalError) -> Response:
        return error(400, str(exc))

    async def conflict(request: Request, exc: Conflict) -> Response:
        return error(409, str(exc), progress=await run_in_threadpool(store.progress))

    async def busy(request: Request, exc: StoreBusy) -> Response:
        return error(503, "the label database is busy (locked by another program); try again")

    async def unreadable(request: Request, exc: StoreUnreadable) -> Response:
        log.error("%s", exc)
        return error(500, "the label database cannot be used; see the server's terminal")

    async def server_error(request: Request, exc: Exception) -> Response:  # a bug: logged, still JSON
        log.error("error while answering %s", request.url.path, exc_info=exc)
        return error(500, "internal error; see the server's terminal")

    routes = [Route("/", page), Route("/static/{name}", static), Route("/api/project", project_info),
              Route("/api/progress", progress), Route("/api/{action}", action, methods=["POST"]),
              Route("/media", media)]
    handlers = {HTTPException: http_error, RequestError: request_error, BadRequest: bad_request, Conflict: conflict,
                StoreBusy: busy, StoreUnreadable: unreadable, Exception: server_error}
    return Starlette(routes=routes, exception_handlers=handlers)


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with two changes: a request it cannot parse (a bad Content-Length, a
    malformed request line, headers too large) gets a JSON 400 like every other error, and a connection
    that does not send a complete request head within `timeout_keep_alive` seconds of connecting or of
    its last response is closed (uvicorn itself only times out idle connections after a response)."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._await_request_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._await_request_head()

    def _await_request_head(self) -> None:
        waiting_for = self.cycle  # a new request head replaces the cycle

        def close_if_silent() -> None:
            if self.cycle is waiting_for and not self.transport.is_closing():
                self.transport.close()

        self.loop.call_later(self.timeout_keep_alive, close_if_silent)

    def send_400_response(self, msg: str) -> None:
        body = b'{"error": "malformed HTTP request (request line, headers or Content-Length)"}'
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), (b"x-content-type-options", b"nosniff")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


class LabelServer:
    """The labelling server of one project, bound at construction (port 0: any free port, see `.port`).

    `labellers` names one access token each; tokens are required beyond loopback and whenever labellers
    are named. `url(labeller)` is the address to hand out (with the token, when there is one).
    """

    def __init__(self, project, host: str = "127.0.0.1", port: int = 0, labellers: tuple[str, ...] = (),
                 allow_hosts: tuple[str, ...] = (), idle_timeout: float = 5.0, busy_timeout: float = 10.0,
                 require_token: bool | None = None):
        self.host = host
        self.labelling = LabellingApp(project)
        self.restored = self.labelling.recheck_set_aside()  # set-aside samples whose files are back
        project.store.busy_timeout = busy_timeout  # a locked database answers 503 after this, not after 30 s
        self.socket = _bind(host, port)
        self.port = self.socket.getsockname()[1]
        self.access = Access.for_bind(host, self.port, labellers, allow_hosts, require_token)
        config = uvicorn.Config(Guard(create_app(self.labelling), self.access), http=_Protocol, lifespan="off",
                                log_config=None, log_level="warning", access_log=False, server_header=False,
                                backlog=BACKLOG, timeout_keep_alive=idle_timeout, timeout_graceful_shutdown=3)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def url(self, labeller: str | None = None) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        base = f"http://{'[' + host + ']' if ':' in host else host}:{self.port}/"
        token = next((t for t, name in self.access.tokens.items() if name == labeller), None)
        return base + (f"?token={token}" if token else "")

    def serve_forever(self) -> None:
        """Serve until Ctrl+C (or `shutdown()` from another thread)."""
        self.server.run(sockets=[self.socket])

    def start(self) -> LabelServer:
        """Serve in a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.serve_forever, name="bmmal-label", daemon=True)
        self._thread.start()
        while not self.server.started and self._thread.is_alive():
            self._thread.join(0.01)
        return self

    def shutdown(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.socket.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)  # at once: connections made before uvicorn starts wait in the backlog
    except OSError as e:
        sock.close()
        raise BmmalError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock

