"""A cut upload resumes from what the server already has (issue 14, item 5), on real servers.

The cut is real: the data connection's socket (FTP) or the SSH session's socket (SFTP) is shut
down under the upload once about half of it has gone. Each server then says, in its own log or
counter, how many bytes the resumed upload carried: only the missing ones. A partial that is not
ours (a tampered byte where the server hashes files, a remote file larger than ours) or a server
that refuses to write at an offset means a start from zero, and the file still ends whole.
"""

from __future__ import annotations

import hashlib
import random
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import stockbridge.transports.ftp as ftp_module
from stockbridge.errors import QuotaError, RemoteRejectedError, TransportError
from stockbridge.transports import TEMP_SUFFIX, Transport, open_transport
from stockbridge.transports.resume import Resumed, ResumeOffer, keeps_partial
from tests.servers import LocalServer, run_sshd, settings_for
from tests.thirdparty import Fault, ThirdPartyServers
from tests.waiting import wait_for

SIZE = 3_000_000
CUT_AT = SIZE // 2


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "master.bin"
    path.write_bytes(random.Random(14).randbytes(SIZE))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cut_upload(server: LocalServer, source: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Upload ``source`` with a resume offer and cut its connection about half way; return the
    size of the partial the server kept."""
    with open_transport(settings_for(server)) as transport:
        cut = _cutter(transport, monkeypatch, server.root / ("master.bin" + TEMP_SUFFIX))
        with pytest.raises(TransportError) as caught:
            transport.put(source, "master.bin", progress=cut, resume=ResumeOffer(continue_partial=False))
    monkeypatch.undo()
    assert caught.value.retryable, caught.value
    # 30 s: the server writes what it got before it logs, and a disk busy with other writers'
    # writeback can hold that write for seconds (seen once, while a benchmark wrote 1.5 GB).
    wait_for(lambda: _uploads_logged(server), 30, f"{server.name} to log the cut upload")
    partial = server.root / ("master.bin" + TEMP_SUFFIX)
    assert partial.exists(), "the cut upload's partial was removed: nothing to resume"
    assert 0 < partial.stat().st_size < SIZE
    return partial.stat().st_size


def _cutter(transport: Transport, monkeypatch: pytest.MonkeyPatch, partial: Path) -> Callable[[int], None]:
    """FTP: the data socket shut down once ``CUT_AT`` bytes went into it. SFTP: the SSH session's
    socket, once the upload passed ``CUT_AT``. Either only once the server has written some of it
    (on a busy machine the bytes sent may all still be in buffers)."""
    done: list[int] = []

    def server_has_some() -> None:
        wait_for(lambda: partial.exists() and partial.stat().st_size > 0, 10, f"{partial.name} to grow")

    if transport.protocol == "sftp":

        def cut(sent: int) -> None:
            if sent >= CUT_AT and not done:
                done.append(sent)
                server_has_some()
                transport._transport.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]

        return cut
    send_all = ftp_module.send_all
    total = [0]

    def send_then_cut(conn: socket.socket, block: Any) -> None:
        total[0] += len(block)
        if total[0] > CUT_AT and not done:
            done.append(total[0])
            server_has_some()
            conn.shutdown(socket.SHUT_RDWR)
        send_all(conn, block)

    monkeypatch.setattr(ftp_module, "send_all", send_then_cut)
    return lambda sent: None


def _uploads_logged(server: LocalServer) -> list[int]:
    """The bytes each upload of master.bin(.part) carried, as the server logs or counts them, once
    it is done with it (the server may still write what it received after a cut)."""
    if server.name in ("ftp", "ftps"):
        return [count for _name, count in server.extra["ftpd"].received]
    if server.name == "ftps-vsftpd":  # OK UPLOAD: Client "127.0.0.1", "/…/master.bin.part", 1951424 bytes, …
        pattern, text = r' UPLOAD: .*?master\.bin\.part", (\d+) bytes', server.log_text()
    elif server.name == "sftp":  # sftp-server -l INFO: close "/…/master.bin.part" bytes read 0 written N
        log = server.extra["sftp_log"]
        pattern, text = (
            r'close ".*?master\.bin\.part" bytes read \d+ written (\d+)',
            log.read_text() if log.exists() else "",
        )
    else:  # ProFTPD's TransferLog (xferlog): date, seconds, host, bytes, path, ... completion c/i
        xferlog = server.log_path.parent / "xferlog"  # type: ignore[union-attr]
        pattern, text = (
            r"^(?:\S+ ){7}(\d+) \S*master\.bin\.part ",
            xferlog.read_text() if xferlog.exists() else "",
        )
    return [int(count) for count in re.findall(pattern, text, re.MULTILINE)]


def bytes_received_last(server: LocalServer) -> int:
    """How many bytes the server says its last upload carried."""
    return _uploads_logged(server)[-1]


KINDS = ["ftp", "ftps-vsftpd", "proftpd-ftp", "sftp", "proftpd-sftp"]
CHECKED_BY = {"proftpd-ftp": "sha256", "proftpd-sftp": "sha256"}  # the others hash nothing: size


@pytest.fixture
def server(
    request: pytest.FixtureRequest, thirdparty: ThirdPartyServers, tmp_path: Path
) -> Iterator[LocalServer]:
    kind = request.param
    if kind.startswith("proftpd"):
        yield thirdparty.start(kind, Fault(store_restart=True))
    elif kind == "sftp":
        if not Path("/usr/lib/openssh/sftp-server").exists():
            pytest.skip("OpenSSH's sftp-server program is not installed (CI installs openssh-server)")
        with run_sshd(tmp_path, request.getfixturevalue("ssh_keys"), sftp_log=True) as sshd:
            yield sshd
    else:
        yield request.getfixturevalue({"ftp": "ftp_server", "ftps-vsftpd": "vsftpd_server"}[kind])


@pytest.mark.parametrize("server", KINDS, indirect=True)
def test_a_cut_upload_resumes_from_the_servers_bytes_and_sends_only_the_rest(
    server: LocalServer, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    have = cut_upload(server, source, monkeypatch)
    resumed: list[Resumed] = []
    with open_transport(settings_for(server)) as transport:
        result = transport.put(source, "master.bin", resume=ResumeOffer(True, resumed.append))
    assert result.verified
    assert result.verified_by == CHECKED_BY.get(server.name, "size"), "the final check is unchanged"
    assert [(r.offset, r.total, r.checked_by) for r in resumed] == [
        (have, SIZE, CHECKED_BY.get(server.name, "size"))
    ]
    assert resumed[0].describe().startswith(f"resumed master.bin.part at {have / 1e6:.1f} MB of 3.0 MB")
    assert bytes_received_last(server) == SIZE - have, "the server got more than the missing bytes"
    assert digest(server.root / "master.bin") == digest(source)
    assert not (server.root / ("master.bin" + TEMP_SUFFIX)).exists()


@pytest.mark.parametrize("kind", ["proftpd-ftp", "proftpd-sftp"])
def test_a_tampered_prefix_restarts_from_zero_and_the_file_ends_whole(
    thirdparty: ThirdPartyServers, source: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    server = thirdparty.start(kind, Fault(store_restart=True))
    cut_upload(server, source, monkeypatch)
    partial = server.root / ("master.bin" + TEMP_SUFFIX)
    tampered = bytearray(partial.read_bytes())
    tampered[1000] ^= 0xFF  # same size, one byte different: only the server's hash can tell
    partial.write_bytes(tampered)
    resumed: list[Resumed] = []
    with open_transport(settings_for(server)) as transport:
        assert transport.put(source, "master.bin", resume=ResumeOffer(True, resumed.append)).verified
    assert resumed == [], "a prefix that is not ours was continued"
    assert bytes_received_last(server) == SIZE
    assert digest(server.root / "master.bin") == digest(source)


@pytest.mark.parametrize("case", ["larger", "no-restart"])
def test_a_larger_remote_file_or_a_server_that_cannot_resume_means_a_start_from_zero(
    thirdparty: ThirdPartyServers, source: Path, tmp_path: Path, case: str
) -> None:
    # ProFTPD without AllowStoreRestart (its default) answers "451 Append/Restart not permitted".
    server = thirdparty.start("proftpd-ftp", Fault(store_restart=case == "larger"))
    partial = server.root / ("master.bin" + TEMP_SUFFIX)
    size = SIZE + 10 if case == "larger" else CUT_AT
    partial.write_bytes(source.read_bytes()[:size] + b"x" * max(0, size - SIZE))
    resumed: list[Resumed] = []
    with open_transport(settings_for(server)) as transport:
        assert transport.put(source, "master.bin", resume=ResumeOffer(True, resumed.append)).verified
    assert resumed == []
    assert bytes_received_last(server) == SIZE
    assert digest(server.root / "master.bin") == digest(source)


def test_only_a_cut_keeps_the_partial_a_refusal_removes_it() -> None:
    assert keeps_partial(TransportError("STOR: Broken pipe", retryable=True))
    assert keeps_partial(TimeoutError())  # and a shutdown's Stopped, mid-transfer
    assert not keeps_partial(QuotaError("552 Quota exceeded"))
    assert not keeps_partial(RemoteRejectedError("553 Permission denied"))
    assert not keeps_partial(TransportError("no TLS", retryable=False))
