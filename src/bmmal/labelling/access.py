"""Who may talk to the labelling server, and the security headers on everything it answers.

`Guard` is an ASGI middleware around the whole app (outside Starlette's error handling, so even a 500
carries the headers):

- Host allow-list: a request must name the server by one of its own names (against DNS rebinding: a
  web page whose name was rebound to this address cannot reach the server through a browser);
  anything else gets 421.
- Access tokens: when the server listens beyond loopback, or names labellers, every request needs a
  token (each labeller has their own, which also fixes the name their answers are saved under). The
  URL printed at start carries it once (`/?token=...`); the server trades it for an HttpOnly,
  SameSite=Strict cookie and redirects to `/`, so the token leaves the address bar and media requests
  carry it too. Scripts may send `Authorization: Bearer TOKEN` instead. Without a valid token: 401.
- Headers: `X-Content-Type-Options: nosniff`, no referrer, no framing, same-origin resources, no
  caching, and a Content-Security-Policy: the page may run only its own script; media are
  `sandbox`ed with no script at all, so an SVG (or anything else) opened from `/media` cannot run code
  on the server's origin.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from starlette.responses import JSONResponse, RedirectResponse

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
MEDIA_CSP = ("sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; "
             "frame-ancestors 'none'")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"x-frame-options", b"DENY"), (b"cross-origin-resource-policy", b"same-origin"),
           (b"cross-origin-opener-policy", b"same-origin"),
           (b"permissions-policy", b"camera=(), microphone=(), geolocation=()")]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_names(host: str, port: int, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The Host header values that name this server: its loopback names, the bound address, and for a
    wildcard bind (0.0.0.0, ::) the machine's name and addresses; `extra` are more names (--allow-host)."""
    names = set(LOOPBACK_NAMES) | {h.strip().lower() for h in extra if h.strip()}
    wildcard = host in ("0.0.0.0", "::", "")
    if not wildcard:
        names.add(f"[{host}]" if ":" in host else host.lower())
    else:
        hostname = socket.gethostname()
        names |= {hostname.lower(), socket.getfqdn().lower()}
        try:
            for info in socket.getaddrinfo(hostname, None):
                address = info[4][0]
                names.add(f"[{address}]" if ":" in address else address)
        except OSError:
            pass
    return frozenset(f"{name}:{port}" for name in names)


@dataclass
class Access:
    """The allowed Host headers and the tokens (token -> labeller name, None for an unnamed token)."""

    hosts: frozenset[str]
    tokens: dict[str, str | None] = field(default_factory=dict)
    cookie: str = "bmmal_token"

    @classmethod
    def for_bind(cls, host: str, port: int, labellers: tuple[str, ...] = (), extra_hosts: tuple[str, ...] = (),
                 require_token: bool | None = None) -> Access:
        """Tokens are required beyond loopback and whenever labellers are named (one token each)."""
        need = require_token if require_token is not None else (not is_loopback(host) or bool(labellers))
        names = labellers if labellers else ((None,) if need else ())
        tokens = {secrets.token_urlsafe(24): name for name in names}
        return cls(host_names(host, port, extra_hosts), tokens, f"bmmal_token_{port}")

    def labeller_of(self, token: str | None) -> tuple[bool, str | None]:
        """(token valid, the labeller it names)."""
        if not self.tokens:
            return True, None
        for known, name in self.tokens.items():
            if token is not None and secrets.compare_digest(token.encode(), known.encode()):
                return True, name
        return False, None


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class Guard:
    """ASGI middleware: Host allow-list, access tokens, security headers (see the module docstring)."""

    def __init__(self, app, access: Access):
        self.app = app
        self.access = access

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (MEDIA_CSP if scope["path"] == "/media" else PAGE_CSP).encode()

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                message["headers"] = headers + HEADERS + [(b"content-security-policy", csp),
                                                          (b"cache-control", b"no-store")]
            await send(message)

        host = (_header(scope, b"host") or "").lower()
        if host not in self.access.hosts:
            response = JSONResponse({"error": f"unexpected Host header {host!r}; this server answers to "
                                              "its own names only (bmmal label --allow-host NAME adds one)"}, 421)
            await response(scope, receive, send_with_headers)
            return
        token = self._token(scope)
        query_token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        if query_token is not None and scope["path"] == "/" and scope["method"] == "GET":
            valid, _ = self.access.labeller_of(query_token)
            if valid and self.access.tokens:  # trade the token in the URL for a cookie, and drop it from the URL
                response = RedirectResponse("/", 303)
                response.set_cookie(self.access.cookie, query_token, httponly=True, samesite="strict")
                await response(scope, receive, send_with_headers)
                return
            token = token if not valid else query_token
        valid, labeller = self.access.labeller_of(token)
        if not valid:
            response = JSONResponse({"error": "this server needs an access token: open the URL with ?token=... "
                                              "that `bmmal label` printed"}, 401)
            await response(scope, receive, send_with_headers)
            return
        scope.setdefault("state", {})["labeller"] = labeller
        await self.app(scope, receive, send_with_headers)

    def _token(self, scope) -> str | None:
        authorization = _header(scope, b"authorization") or ""
        if authorization.lower().startswith("bearer "):
            return authorization[7:].strip()
        cookies = SimpleCookie()
        try:
            cookies.load(_header(scope, b"cookie") or "")
        except CookieError:  # a malformed Cookie header is no token
            return None
        morsel = cookies.get(self.access.cookie)
        return morsel.value if morsel else None
