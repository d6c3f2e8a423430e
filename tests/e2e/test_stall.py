"""A data channel that stalls mid-transfer is aborted within the timeout and the file is sent again.

SFTP: a TCP proxy on 127.0.0.1 in front of sshd stops forwarding (both ways, sockets left open: a
black hole, not a reset) after the first connection has carried a set number of bytes upstream.
FTP: the server stops reading the data connection after a set number of bytes and never replies.
In both cases `stockbridge once` must give up on the dead transfer within ``timeout_seconds``
(plus a little), send the file again over a new connection, and leave it on the server once.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stockbridge.demo.localserver import FTPServerThread
from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table
from tests.servers import LocalServer

TIMEOUT_SECONDS = 2
#: Bound on the whole `once` run: the stalled attempt, its backoff, and the second attempt.
RUN_BOUND_SECONDS = 30.0


@dataclass
class StallingProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; the first connection goes dead after ``stall_after``
    bytes from the client. Later connections are forwarded normally."""

    upstream: tuple[str, int]
    stall_after: int
    port: int = 0
    connections: int = 0
    stalled: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sockets: list[socket.socket] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._sockets.append(listener)
        self._spawn(self._accept, listener)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        for sock in self._sockets:
            sock.close()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="stalling-proxy")
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(self.upstream, timeout=5.0)
            self._sockets += [client, server]
            self.connections += 1
            self._spawn(self._pump, client, server, self.connections == 1)

    def _pump(self, client: socket.socket, server: socket.socket, stalls: bool) -> None:
        upstream_bytes = 0
        peers = {client: server, server: client}
        while not self._stop.is_set():
            if stalls and upstream_bytes >= self.stall_after:
                self.stalled.set()
                self._stop.wait(0.1)  # a black hole: nothing read, nothing sent, nothing closed
                continue
            readable, _, _ = select.select(list(peers), [], [], 0.1)
            for sock in readable:
                try:
                    data = sock.recv(16384)
                except OSError:
                    data = b""
                if not data:
                    client.close()
                    server.close()
                    return
                if sock is client:
                    upstream_bytes += len(data)
                peers[sock].sendall(data)


@pytest.fixture
def proxy_to_sshd(sshd_server: LocalServer) -> Iterator[StallingProxy]:
    assert sshd_server.port is not None
    proxy = StallingProxy(upstream=("127.0.0.1", sshd_server.port), stall_after=150_000)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def short_timeout(table: str) -> str:
    return table.replace("timeout_seconds = 10", f"timeout_seconds = {TIMEOUT_SECONDS}")


def big_photo(workspace: Workspace, exiftool: Any) -> Path:
    path = make_image(
        workspace.exports / "big.jpg", width=2000, height=1500, title="Big", exiftool=exiftool, seed=77
    )
    assert path.stat().st_size > 400_000
    return path


def test_an_sftp_transfer_that_stalls_is_aborted_within_the_timeout_and_sent_again(
    workspace: Workspace, exiftool: Any, sshd_server: LocalServer, proxy_to_sshd: StallingProxy
) -> None:
    source = big_photo(workspace, exiftool)
    via_proxy = LocalServer(**{**sshd_server.__dict__, "port": proxy_to_sshd.port})
    workspace.write_config(short_timeout(platform_table("agency", via_proxy)))
    started = time.monotonic()
    result = workspace.cli("once", timeout=RUN_BOUND_SECONDS + 30)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert proxy_to_sshd.stalled.is_set(), "the proxy never stalled: the test proved nothing"
    assert proxy_to_sshd.connections == 2, "one stalled connection, one that carried the file"
    assert elapsed < RUN_BOUND_SECONDS
    assert "timed out" in result.stderr
    assert [path.name for path in sshd_server.root.iterdir()] == ["big.jpg"]
    assert (sshd_server.root / "big.jpg").read_bytes() == source.read_bytes()


@dataclass
class StallingFTPServer(FTPServerThread):
    """pyftpdlib whose first STOR stops being read after ``stall_after`` bytes, with no reply."""

    stall_after: int = 150_000
    stalled: threading.Event = field(default_factory=threading.Event)

    def _handler_class(self) -> Any:
        base = super()._handler_class()
        server = self

        class DataHandler(base.dtp_handler):  # type: ignore[name-defined,misc]
            def recv(self, buffer_size: int) -> bytes:
                chunk: bytes = super().recv(buffer_size)
                self.seen = getattr(self, "seen", 0) + len(chunk)
                if self.seen >= server.stall_after and not server.stalled.is_set():
                    server.stalled.set()
                    self.del_channel()  # never read again; the socket stays open
                return chunk

        class Handler(base):  # type: ignore[misc,valid-type]
            dtp_handler = DataHandler

        return Handler


@pytest.fixture
def stalling_ftp(tmp_path: Path) -> Iterator[StallingFTPServer]:
    pytest.importorskip("pyftpdlib")
    root = tmp_path / "stall-root"
    root.mkdir()
    server = StallingFTPServer(root=root, tls=False, username="u", password="stall-pw")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_an_ftp_data_connection_that_stops_being_read_is_aborted_within_the_timeout_and_sent_again(
    workspace: Workspace, exiftool: Any, stalling_ftp: StallingFTPServer
) -> None:
    source = big_photo(workspace, exiftool)
    server = LocalServer(
        name="ftp",
        protocol="ftp",
        root=stalling_ftp.root,
        remote_dir="/",
        host=stalling_ftp.host,
        port=stalling_ftp.port,
        username="u",
        password="stall-pw",
    )
    workspace.write_config(short_timeout(platform_table("agency", server)))
    started = time.monotonic()
    result = workspace.cli("once", timeout=RUN_BOUND_SECONDS + 30)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert stalling_ftp.stalled.is_set(), "the server never stalled: the test proved nothing"
    assert elapsed < RUN_BOUND_SECONDS
    assert stalling_ftp.stored == ["big.jpg", "big.jpg"], "sent again, to the same name"
    assert [path.name for path in stalling_ftp.root.iterdir()] == ["big.jpg"]
    assert (stalling_ftp.root / "big.jpg").read_bytes() == source.read_bytes()
