"""uvicorn in a thread of ``stockbridge run``: the page never stands in the way of an upload.

The socket is bound here, before the thread starts, so a port in use is one clear line at start and
the service goes on without its page. uvicorn installs no signal handlers outside the main thread;
the service's SIGTERM handler stops it through :meth:`WebServer.stop`.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading
from pathlib import Path

import uvicorn
from loguru import logger

from stockbridge.config.web import WebConfig, is_loopback, split_listen
from stockbridge.web.token import TokenKeeper, ensure_token

#: Seconds an open event stream may keep the server from stopping.
GRACEFUL_SECONDS = 1.0


def page_url(web: WebConfig, state_dir: Path, *, with_token: bool = True) -> str:
    """``http://127.0.0.1:8765/?token=…``: what ``stockbridge web url`` prints."""
    host, port = split_listen(web.listen)
    shown = f"[{host}]" if ":" in host else host
    base = f"{'https' if web.tls else 'http'}://{shown}:{port}/"
    return f"{base}?token={ensure_token(state_dir)}" if with_token else base


class WebServer:
    """Serves ``app`` at ``web.listen`` until :meth:`stop`."""

    def __init__(self, app: object, web: WebConfig) -> None:
        self.app = app
        self.web = web
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def start(self) -> bool:
        """Bind and serve in a thread. False (after one ERROR line) when the page cannot be served:
        the service runs on without it."""
        host, port = split_listen(self.web.listen)
        try:
            sock = _bind(host, port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                logger.error(
                    "web page: {} is in use by another program; the service runs without its page"
                    ' (set [web] listen to another port, or "" to turn the page off)',
                    self.web.listen,
                )
            else:
                logger.error(
                    "web page: cannot listen on {} ({}); the service runs without it",
                    self.web.listen,
                    exc.strerror,
                )
            return False
        try:
            tls = self._tls_files()
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            logger.error(
                "web page: [web] tls_cert / tls_key cannot be used ({}); the service runs without it", exc
            )
            return False
        self.port = sock.getsockname()[1]
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
        config = uvicorn.Config(
            self.app,  # type: ignore[arg-type]
            log_config=None,
            access_log=False,  # the first URL carries ?token=
            lifespan="off",
            http="h11",
            loop="asyncio",
            ws="none",
            timeout_graceful_shutdown=int(GRACEFUL_SECONDS),
            server_header=False,
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=self._serve, args=(server, sock), name="web", daemon=True)
        self._thread.start()
        shown = f"{'https' if self.web.tls else 'http'}://{host}:{self.port}/"
        logger.info("web page at {} (`stockbridge web url` prints its address with the token)", shown)
        return True

    def _tls_files(self) -> tuple[str, str] | None:
        if not self.web.tls:
            return None
        assert self.web.tls_cert is not None and self.web.tls_key is not None
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            self.web.tls_cert, self.web.tls_key
        )
        return str(self.web.tls_cert), str(self.web.tls_key)

    @staticmethod
    def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # never takes the service down with it
            logger.opt(exception=exc).error("web page stopped: {}", exc)
        finally:
            sock.close()

    @property
    def started(self) -> bool:
        return self._server is not None and self._server.started

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=GRACEFUL_SECONDS + 5)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if host == "localhost":
        host = "127.0.0.1"
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def keeper_for(state_dir: Path) -> TokenKeeper:
    return TokenKeeper(state_dir)


__all__ = ["WebServer", "is_loopback", "page_url"]
