"""The page's server in a service: a port in use costs one log line, never the service; the token
is never logged; thumbnails of files the ledger no longer knows are swept."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from loguru import logger

from stockbridge.config.web import WebConfig
from stockbridge.demo.localserver import free_port
from stockbridge.web.app import WebContext, build_app
from stockbridge.web.server import WebServer
from stockbridge.web.thumbs import Thumbnails
from stockbridge.web.token import TokenKeeper
from tests.waiting import wait_for
from tests.web.conftest import Site


@pytest.fixture
def log() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG")
    try:
        yield lines
    finally:
        logger.remove(sink)


def test_a_port_in_use_is_one_clear_line_and_no_page(site: Site, log: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        app = build_app(WebContext(site.config), TokenKeeper(site.config.state.dir), listen=listen)
        assert WebServer(app, WebConfig(listen=listen)).start() is False
    errors = [line for line in log if "ERROR" in line]
    assert len(errors) == 1 and listen in errors[0] and "in use" in errors[0] and "runs without" in errors[0]


def test_the_server_answers_and_stops_and_never_logs_the_token(site: Site, log: list[str]) -> None:
    keeper = TokenKeeper(site.config.state.dir)
    token = keeper.current()
    listen = f"127.0.0.1:{free_port()}"
    server = WebServer(build_app(WebContext(site.config), keeper, listen=listen), WebConfig(listen=listen))
    assert server.start()
    try:
        wait_for(lambda: server.started, what="uvicorn to start")
        first = httpx2.get(f"http://{listen}/?token={token}", follow_redirects=False)
        assert first.status_code == 303
        assert httpx2.get(f"http://{listen}/api/status", cookies={"sb_token": token or ""}).status_code == 200
    finally:
        server.stop()
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"http://{listen}/api/status")
    assert token and not any(token in line for line in log), "the token never reaches the log"


def test_thumbnails_of_files_the_ledger_does_not_know_are_swept(site: Site, tmp_path: Path) -> None:
    thumbs = site.config.state.dir / "thumbs"
    kept = sorted(thumbs.glob("*.jpg"))
    assert kept, "made at ingest"
    stray = thumbs / ("e" * 64 + ".jpg")
    stray.write_bytes(kept[0].read_bytes())
    import os

    os.utime(stray, (1_000_000_000, 1_000_000_000))  # made long ago, for a file since forgotten
    context = WebContext(site.config)
    assert Thumbnails(site.config.state.dir, context.reader).sweep(path.stem for path in kept) == 1
    assert not stray.exists() and all(path.exists() for path in kept)
    context.reader.close()


def test_stockbridge_run_serves_the_page_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The real command: the page answers while ``run`` runs, SIGTERM ends both (exit 0), and the
    log never holds the token, though the first request carries it in its address."""
    import signal
    import subprocess
    import sys

    from tests.e2e.conftest import Workspace, platform_table
    from tests.servers import LocalServer

    for name in ("exports", "state", "archive"):
        (tmp_path / name).mkdir()
    workspace = Workspace(tmp_path, tmp_path / "exports", tmp_path / "state", tmp_path / "config.toml")
    listen = f"127.0.0.1:{free_port()}"
    archive = LocalServer(name="folder", protocol="folder", root=tmp_path / "archive", remote_dir="/")
    workspace.write_config(platform_table("archive", archive), f'[web]\nlisten = "{listen}"\n')
    log = tmp_path / "run.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            workspace.command("run"), stdout=sink, stderr=subprocess.STDOUT, env=workspace.env()
        )
    try:
        wait_for(lambda: b"web page at" in log.read_bytes() or process.poll() is not None, what="the page")
        command = [sys.executable, "-m", "stockbridge", "web", "url", "--config", str(workspace.config)]
        url = subprocess.run(command, capture_output=True, text=True, env=workspace.env())
        token = url.stdout.strip().rpartition("?token=")[2]
        assert url.stdout.strip() == f"http://{listen}/?token={token}" and len(token) >= 43
        assert httpx2.get(url.stdout.strip(), follow_redirects=False).status_code == 303
        assert httpx2.get(
            f"http://{listen}/api/status", headers={"Authorization": f"Bearer {token}"}
        ).json() == {
            "files": [],
            "not_taken": [],
        }
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"http://{listen}/api/status")
    assert token not in log.read_text() and "stopped" in log.read_text()


def test_over_tls_the_page_is_https_and_its_cookie_secure(site: Site, tls_cert: tuple[Path, Path]) -> None:
    cert, key = tls_cert
    keeper = TokenKeeper(site.config.state.dir)
    listen = f"127.0.0.1:{free_port()}"
    web = WebConfig(listen=listen, tls_cert=cert, tls_key=key)
    server = WebServer(build_app(WebContext(site.config), keeper, listen=listen, tls=True), web)
    assert server.start()
    try:
        wait_for(lambda: server.started, what="uvicorn to start")
        with httpx2.Client(verify=ssl.create_default_context(cafile=str(cert))) as client:
            first = client.get(f"https://{listen}/?token={keeper.current()}", follow_redirects=False)
            assert first.status_code == 303 and "Secure" in first.headers["set-cookie"]
            posted = client.post(
                f"https://{listen}/api/actions/recheck",
                json={},
                headers={"Authorization": f"Bearer {keeper.current()}", "Origin": f"http://{listen}"},
            )
            assert posted.status_code == 403, "the page's own origin is https"
    finally:
        server.stop()
