"""The Starlette application: the page's static files and the JSON API of docs/api.md.

Handlers are plain functions (Starlette runs them in its thread pool), each a thin layer over
:mod:`.queries` (reading) and :mod:`stockbridge.service.actions` (acting), so the command line and
the page share every rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stockbridge.config.models import Config
from stockbridge.web.guard import Guard
from stockbridge.web.token import TokenKeeper

STATIC = Path(__file__).parent / "static"


class ApiError(Exception):
    """A refusal in plain words, answered as ``{"error": ...}`` with ``status``."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class WebContext:
    """What the handlers share: the configuration (the running service's, reloads included)."""

    def __init__(self, config: Config) -> None:
        self._config = config

    @property
    def config(self) -> Config:
        return self._config


def build_app(context: WebContext, keeper: TokenKeeper, *, listen: str, tls: bool = False) -> Starlette:
    """The application behind its :class:`~stockbridge.web.guard.Guard`."""

    def status(_request: Request) -> Response:
        from stockbridge.cli.report import status_payload

        return _json(status_payload(context.config))

    def index(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    routes = [
        Route("/", index),
        Route("/api/status", status),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, keeper=keeper, listen=listen, tls=tls)],
        exception_handlers={ApiError: _api_error, 404: _not_found, 405: _not_allowed},
    )
    return app


def _json(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status)


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _json({"error": exc.error}, exc.status)


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return _json({"error": "no such page or resource"}, 404)


async def _not_allowed(_request: Request, _exc: Exception) -> Response:
    return _json({"error": "this method is not allowed here"}, 405)
