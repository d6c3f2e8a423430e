"""The door of the web page: only its owner gets in (decisions.md X-20, X-21).

One ASGI middleware, before any route, in this order:

1. ``Host`` must name the address the page listens on, else 421 (a DNS-rebinding page in another
   tab resolves its own name to 127.0.0.1; its requests carry its name).
2. The token: the ``sb_token`` cookie or ``Authorization: Bearer``; else 401. ``GET /?token=T`` is
   the one way in by the address bar: it sets the cookie and redirects to ``/``, so the token leaves
   the address bar. A token in any other query string is not looked at.
3. ``POST`` needs ``Origin`` equal to the page's own origin, else 403 (another site's form or fetch).

Every response, refusals included, carries the security headers (a CSP with no inline script).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockbridge.config.web import is_loopback, split_listen
from stockbridge.web.token import TokenKeeper

COOKIE = "sb_token"
CSP = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; connect-src 'self';"
    " frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

LOCKED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>stockbridge: sign-in needed</title></head>
<body><h1>This page needs its access link</h1>
<p>Run <code>stockbridge web url</code> on the computer that runs stockbridge, and open the address it prints.</p>
<p>The link carries a secret token; after the first visit the browser keeps it in a cookie for this page only.</p>
</body></html>
"""


#: What the refused page itself needs (its style and icons): served without the token, no data in them.
PUBLIC = frozenset({"/static/app.css", "/static/401.html"})
PUBLIC_FOLDERS = ("/static/icons/",)
REFUSED_PAGE = Path(__file__).parent / "static" / "401.html"


def locked_page() -> str:
    """The page's own 401 page (static/401.html), else a plain one."""
    try:
        return REFUSED_PAGE.read_text(encoding="utf-8")
    except OSError:
        return LOCKED_PAGE


def allowed_hosts(listen: str) -> frozenset[str]:
    """The ``Host`` values a browser sends for ``listen``: for loopback every spelling of this
    machine (127.0.0.1, localhost, [::1]) at that port; else exactly the configured address."""
    host, port = split_listen(listen)
    if is_loopback(host):
        names: Iterable[str] = (host, "127.0.0.1", "localhost", "[::1]")
    else:
        names = (f"[{host}]" if ":" in host else host,)
    return frozenset(f"{name.lower()}:{port}" for name in names)


class Guard:
    """The middleware. ``tls``: the page is served over https (the cookie is Secure)."""

    def __init__(self, app: ASGIApp, *, keeper: TokenKeeper, listen: str, tls: bool) -> None:
        self.app = app
        self.keeper = keeper
        self.hosts = allowed_hosts(listen)
        self.scheme = "https" if tls else "http"
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["cache-control"] = "no-cache" if path.startswith("/static/") else "no-store"
            await send(message)

        headers = Headers(scope=scope)
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            await _json(with_headers, 421, "this page answers only at the address it listens on")
            return
        method: str = scope["method"]
        if path == "/" and method in ("GET", "HEAD"):
            offered = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
            if offered is not None:
                await self._sign_in(offered[0], with_headers)
                return
        public = path in PUBLIC or (path.startswith(PUBLIC_FOLDERS) and ".." not in path)
        if method in ("GET", "HEAD") and public:
            await self.app(scope, receive, with_headers)  # the refused page's own look: no data
            return
        if not self.keeper.matches(_token_of(headers)):
            if path == "/" or path == "/index.html":
                await _html(with_headers, 401, locked_page())
            else:
                await _json(
                    with_headers, 401, "the access token is missing or wrong: run `stockbridge web url`"
                )
            return
        if method not in ("GET", "HEAD") and headers.get("origin") != f"{self.scheme}://{host}":
            await _json(with_headers, 403, "refused: this request does not come from the page itself")
            return
        await self.app(scope, receive, with_headers)

    async def _sign_in(self, offered: str, send: Send) -> None:
        if not self.keeper.matches(offered):
            await _html(send, 401, locked_page())
            return
        cookie = SimpleCookie()
        cookie[COOKIE] = offered
        morsel = cookie[COOKIE]
        morsel["httponly"] = True
        morsel["samesite"] = "Strict"
        morsel["path"] = "/"
        if self.tls:
            morsel["secure"] = True
        headers = [
            (b"location", b"/"),
            (b"set-cookie", morsel.OutputString().encode("latin-1")),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _token_of(headers: Headers) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    raw = headers.get("cookie")
    if not raw:
        return None
    cookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:  # a malformed cookie header is no token
        return None
    morsel = cookie.get(COOKIE)
    return morsel.value if morsel is not None else None


async def _json(send: Send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode("utf-8")
    await _respond(send, status, body, b"application/json")


async def _html(send: Send, status: int, page: str) -> None:
    await _respond(send, status, page.encode("utf-8"), b"text/html; charset=utf-8")


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
