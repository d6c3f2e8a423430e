"""The Starlette application: the page's static files and the JSON API of docs/api.md.

Handlers are plain functions (Starlette runs them in its thread pool), each a thin layer over
:mod:`.queries` (reading) and :mod:`stockbridge.service.actions` (acting, the same code as the
command line), so the page and the CLI share every rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stockbridge.config.models import Config
from stockbridge.errors import ConfigError, StockbridgeError
from stockbridge.service import actions
from stockbridge.web import queries
from stockbridge.web.events import Hub
from stockbridge.web.guard import Guard
from stockbridge.web.thumbs import SHA256, Thumbnails
from stockbridge.web.token import TokenKeeper

if TYPE_CHECKING:
    from stockbridge.delivery.prepare import Pipeline

STATIC = Path(__file__).parent / "static"


class ApiError(Exception):
    """A refusal in plain words, answered as ``{"error": ...}`` with ``status``."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class WebContext:
    """What the handlers share. Alone (tests, ``status``-like use) it reads the ledger and acts on
    it; in ``stockbridge run`` it also has the live service (:mod:`.live`): its configuration as
    reloaded, its pipeline, a way to wake its upload threads, and what they are doing now."""

    def __init__(self, config: Config, hub: Hub | None = None) -> None:
        self._config = config
        self.hub = hub or Hub()
        self.reader = queries.Reader(config.ledger_path)
        self.thumbs = Thumbnails(config.state.dir, self.reader)
        #: Set by the live service.
        self.config_source: Callable[[], Config] | None = None
        self.pipeline: Pipeline | None = None
        self.wake: actions.Wake = lambda _platform: None
        self.activity: Callable[[], dict[str, dict[str, Any]]] | None = None

    @property
    def config(self) -> Config:
        return self.config_source() if self.config_source is not None else self._config

    @contextmanager
    def working_pipeline(self) -> Iterator[Pipeline]:
        """The service's pipeline, or (no service) one opened for this action, as the CLI does."""
        if self.pipeline is not None:
            yield self.pipeline
            return
        from stockbridge.delivery.prepare import open_pipeline

        with open_pipeline(self.config) as pipeline:
            yield pipeline


def build_app(context: WebContext, keeper: TokenKeeper, *, listen: str, tls: bool = False) -> Starlette:
    """The application behind its :class:`~stockbridge.web.guard.Guard`."""
    api = _Api(context)
    routes = [
        Route("/", api.index),
        Route("/api/status", api.status),
        Route("/api/files", api.files),
        Route("/api/files/{sha256}", api.file),
        Route("/api/platforms", api.platforms),
        Route("/api/batches", api.batches),
        Route("/api/not-taken", api.not_taken),
        Route("/api/events", api.events),
        Route("/api/thumbs/{sha256}", api.thumb),
        Route("/api/actions/{action}", api.act, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, keeper=keeper, listen=listen, tls=tls)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )


class _Api:
    def __init__(self, context: WebContext) -> None:
        self.context = context

    @property
    def ledger(self) -> Any:
        return self.context.reader.ledger

    def index(self, _request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    def status(self, _request: Request) -> Response:
        from stockbridge.cli.report import status_payload

        return JSONResponse(status_payload(self.context.config))

    def files(self, request: Request) -> Response:
        params = request.query_params
        states = params.getlist("state")
        unknown = [state for state in states if state not in queries.STATES]
        if unknown:
            raise ApiError(400, f"state={unknown[0]}: not one of {', '.join(queries.STATES)}")
        kind = params.get("kind", "image")
        if kind not in ("image", "release"):
            raise ApiError(400, "kind: image or release")
        since = None
        if params.get("since"):
            from stockbridge.cli.report import parse_since

            try:
                since = parse_since(params["since"])
            except ConfigError:
                raise ApiError(400, "since: a duration (30m, 2h, 2d, 1w) or a date (2026-11-01)") from None
        payload = queries.list_files(
            self.context.config,
            self.ledger,
            platform=params.get("platform") or None,
            states=states or None,
            since=since,
            q=params.get("q") or None,
            kind=kind,
            offset=_int(params, "offset", 0, 0, 10**9),
            limit=_int(params, "limit", 60, 1, queries.MAX_LIMIT),
        )
        return JSONResponse(payload)

    def file(self, request: Request) -> Response:
        sha256 = request.path_params["sha256"]
        item = (
            queries.one_file(self.context.config, self.ledger, sha256) if SHA256.fullmatch(sha256) else None
        )
        if item is None:
            raise ApiError(404, "no such file")
        return JSONResponse(item)

    def platforms(self, _request: Request) -> Response:
        live = self.context.activity() if self.context.activity is not None else None
        return JSONResponse(queries.platform_cards(self.context.config, self.ledger, live))

    def batches(self, request: Request) -> Response:
        from stockbridge.cli.report import history_payload

        limit = _int(request.query_params, "limit", 20, 1, queries.MAX_LIMIT)
        return JSONResponse(history_payload(self.context.config, limit=limit))

    def not_taken(self, _request: Request) -> Response:
        return JSONResponse(queries.not_taken(self.context.config, self.ledger))

    def events(self, _request: Request) -> Response:
        return StreamingResponse(
            self.context.hub.stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    def thumb(self, request: Request) -> Response:
        path = self.context.thumbs.path(request.path_params["sha256"])
        if path is None:
            raise ApiError(404, "no thumbnail for this file")
        # Its name is the content's hash: it never changes.
        return FileResponse(
            path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
        )

    async def act(self, request: Request) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        action = request.path_params["action"]
        handler = _ACTIONS.get(action)
        if handler is None:
            raise ApiError(404, f"no action {action!r}")
        from starlette.concurrency import run_in_threadpool

        try:
            done = await run_in_threadpool(handler, self.context, body)
        except actions.ActionError as exc:
            raise ApiError(exc.status, exc.message) from None
        except StockbridgeError as exc:
            raise ApiError(409, exc.message) from None
        logger.info("web page: {}: {}", action, done.message)
        for name in done.platforms or tuple(self.context.config.enabled_platforms()):
            self.context.hub.publish("platform", {"name": name, "activity": self._activity(name)})
        return JSONResponse({"ok": True, "message": done.message})

    def _activity(self, name: str) -> str:
        live = self.context.activity() if self.context.activity is not None else {}
        if live.get(name, {}).get("uploading"):
            return "uploading"
        return "paused" if self.ledger.pause_of(name) is not None else "idle"


def _text(body: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{key}: a non-empty string is required")
    return value


def _retry(context: WebContext, body: dict[str, Any]) -> actions.Done:
    config, ledger, wake = context.config, context.reader.ledger, context.wake
    if "job" in body:
        if not isinstance(body["job"], int) or isinstance(body["job"], bool):
            raise ApiError(400, "job: a job number is required")
        return actions.retry(config, ledger, job_id=body["job"], wake=wake)
    if "id" in body:
        sha256 = _text(body, "id")
        assert sha256 is not None
        if not SHA256.fullmatch(sha256):
            raise ApiError(400, "id: a file's sha256")
        return actions.retry(
            config, ledger, sha256s=[sha256], platform=_text(body, "platform", False), wake=wake
        )
    return actions.retry(config, ledger, platform=_text(body, "platform"), wake=wake)


def _platform_action(
    action: Callable[..., actions.Done],
) -> Callable[[WebContext, dict[str, Any]], actions.Done]:
    def run(context: WebContext, body: dict[str, Any]) -> actions.Done:
        return action(context.config, context.reader.ledger, _text(body, "platform"), wake=context.wake)

    return run


def _recheck(context: WebContext, _body: dict[str, Any]) -> actions.Done:
    with context.working_pipeline() as pipeline:
        return actions.recheck(pipeline, wake=context.wake)


def _resend(context: WebContext, body: dict[str, Any]) -> actions.Done:
    sha256 = _text(body, "id")
    assert sha256 is not None
    if not SHA256.fullmatch(sha256):
        raise ApiError(400, "id: a file's sha256")
    platform = _text(body, "platform", False)
    with context.working_pipeline() as pipeline:
        return actions.resend(pipeline, sha256, [platform] if platform else None, wake=context.wake)


_ACTIONS: dict[str, Callable[[WebContext, dict[str, Any]], actions.Done]] = {
    "retry": _retry,
    "resume": _platform_action(actions.resume),
    "pause": _platform_action(actions.pause),
    "recheck": _recheck,
    "resend": _resend,
}


def _int(params: Any, key: str, default: int, low: int, high: int) -> int:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{key}: a whole number is required") from None
    if not low <= value <= high:
        raise ApiError(400, f"{key}: between {low} and {high}")
    return value


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.error}, status_code=exc.status)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    words = {404: "no such page or resource", 405: "this method is not allowed here"}
    return JSONResponse({"error": words.get(exc.status_code, exc.detail)}, status_code=exc.status_code)
