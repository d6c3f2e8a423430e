"""The page inside a running service: its actions change what the uploaders do, and its event
stream tells the page what happened. One in-process ``Service`` with the page on a free port, a real
FTP server that refuses the first file, a folder platform; a real HTTP client over the socket."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from stockbridge.config.loading import load_config
from stockbridge.demo.localserver import free_port
from stockbridge.ledger import states
from stockbridge.ledger.store import Ledger
from stockbridge.service.daemon import Service
from stockbridge.web.token import ensure_token
from tests.e2e.conftest import Workspace, platform_table
from tests.e2e.test_faults import FaultyFTPServer, as_platform
from tests.servers import LocalServer
from tests.waiting import GENEROUS, wait_for
from tests.web.conftest import LOGIN, MARKER, PASSWORD, photos


@dataclass
class Events:
    """What one open ``GET /api/events`` received, parsed."""

    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, event_name: str, /, **match: Any) -> dict[str, Any] | None:
        with self.lock:
            for event, data in self.received:
                if event == event_name and all(data.get(key) == value for key, value in match.items()):
                    return data
        return None


@dataclass
class Running:
    base: str
    token: str
    service: Service
    server: FaultyFTPServer
    workspace: Workspace
    events: Events

    def post(self, action: str, body: dict[str, Any]) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {self.token}", "Origin": self.base}
        return httpx2.post(f"{self.base}/api/actions/{action}", json=body, headers=headers, timeout=GENEROUS)

    def get(self, path: str) -> Any:
        response = httpx2.get(
            f"{self.base}{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=GENEROUS
        )
        assert response.status_code == 200, response.text
        return response.json()

    def job(self, name: str, platform: str) -> Any:
        ledger = Ledger(self.workspace.config.parent / "state" / "ledger.sqlite3")
        try:
            return next(job for job in ledger.jobs(platform=platform) if Path(job.path).name == name)
        finally:
            ledger.close()


def _listen(base: str, token: str, events: Events, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx2.stream("GET", f"{base}/api/events", headers=headers, timeout=None) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if stop.is_set():
                return
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: ") and name is not None:
                with events.lock:
                    events.received.append((name, json.loads(line[len("data: ") :])))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    pytest.importorskip("pyftpdlib")
    (tmp_path / "ftp").mkdir()
    (tmp_path / "archive").mkdir()
    server = FaultyFTPServer(root=tmp_path / "ftp", tls=False, username=LOGIN, password=PASSWORD)
    server.replies[("STOR", 1)] = f"550 {MARKER} refused"
    server.start()
    port = free_port()
    for name in ("exports", "state"):
        (tmp_path / name).mkdir()
    workspace = Workspace(tmp_path, tmp_path / "exports", tmp_path / "state", tmp_path / "config.toml")
    fast = {"batch.max_wait_seconds": 0}
    archive = LocalServer(name="folder", protocol="folder", root=tmp_path / "archive", remote_dir="/")
    workspace.write_config(
        platform_table("agency", as_platform(server), **fast),
        platform_table("archive", archive, **fast),
        f'[web]\nlisten = "127.0.0.1:{port}"\n',
    )
    service = Service(load_config(workspace.config))
    thread = threading.Thread(target=service.run, name="service-under-test")
    thread.start()
    base, token = f"http://127.0.0.1:{port}", ensure_token(tmp_path / "state")
    events, stop = Events(), threading.Event()
    wait_for(lambda: _answers(port), what="the page to listen")
    listener = threading.Thread(target=_listen, args=(base, token, events, stop), daemon=True)
    listener.start()
    try:
        yield Running(base, token, service, server, workspace, events)
    finally:
        stop.set()
        service.stop()
        thread.join(timeout=60)
        server.stop()
    assert not thread.is_alive()
    assert not _answers(port), "the page stops with the service"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_pause_resume_and_retry_act_on_the_running_uploaders(running: Running, exiftool: Any) -> None:
    # A file arrives: the stream says so; the agency refuses it (its words never reach the page).
    photos(running.workspace.exports, exiftool, ("A.jpg",))
    asset = wait_for(lambda: running.events.seen("asset", name="A.jpg"), what="an asset event")
    failed = wait_for(lambda: running.events.seen("job", id=asset["id"], platform="agency", state="failed"))
    wait_for(lambda: running.events.seen("job", id=asset["id"], platform="archive", state="uploaded"))
    assert MARKER not in json.dumps(running.get(f"/api/files/{asset['id']}"))

    # A link is never followed: not taken, and the stream says the list changed.
    (running.workspace.exports / "link.jpg").symlink_to(running.workspace.exports / "A.jpg")
    wait_for(lambda: running.events.seen("notice", name="link.jpg"), what="a notice event")
    assert [(entry["path"], entry["kind"]) for entry in running.get("/api/not-taken")] == [
        ("link.jpg", "link")
    ]
    # A hard link is refused when it is taken (another name for a file elsewhere): a notice too.
    os.link(running.workspace.exports / "A.jpg", running.workspace.exports / "hard.jpg")
    wait_for(lambda: running.events.seen("notice", name="hard.jpg"), what="a notice for a refused file")

    # Paused: the next file goes to the archive, not to the agency.
    assert running.post("pause", {"platform": "agency"}).json()["ok"]
    photos(running.workspace.exports, exiftool, ("B.jpg",), seed=900)
    b = wait_for(lambda: running.events.seen("asset", name="B.jpg"), what="B taken")
    wait_for(lambda: running.events.seen("job", id=b["id"], platform="archive", state="uploaded"))
    cards = {card["name"]: card for card in running.get("/api/platforms")}
    assert cards["agency"]["activity"] == "paused" and cards["agency"]["paused"]["kind"] == "manual"
    wait_for(lambda: running.job("B.jpg", "agency").state == states.PENDING, what="B's agency job")
    assert running.server.counts["STOR"] == 1, "nothing more went to the paused platform"

    # Resumed: B goes at once (the page woke the uploader; no 5 s look).
    assert running.post("resume", {"platform": "agency"}).status_code == 200
    wait_for(
        lambda: running.events.seen("job", id=b["id"], platform="agency", state="uploaded"), what="B sent"
    )

    # Retry: the failed file goes once more, and a second retry is refused (never twice).
    answer = running.post("retry", {"job": failed["job"]})
    assert answer.status_code == 200, answer.text
    wait_for(lambda: running.events.seen("job", id=asset["id"], platform="agency", state="uploaded"))
    again = running.post("retry", {"job": failed["job"]})
    assert again.status_code == 409 and "not failed" in again.json()["error"]
    assert running.server.counts["STOR"] == 3 and sorted(p.name for p in running.server.root.iterdir()) == [
        "A.jpg",
        "B.jpg",
    ]
    assert running.events.seen("platform", name="agency", activity="paused") is not None
