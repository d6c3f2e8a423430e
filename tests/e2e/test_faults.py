"""Server faults, each against a real local FTP server made to misbehave, through `stockbridge once`.

``FaultyFTPServer`` is the pyftpdlib server of ``stockbridge.localserver`` with a handler that can be
told to answer the Nth STOR (or PASS) with any reply, or to cut the connection in the middle of a
file. Every test also has a folder platform that must go through whatever the faulty one does.

Covered elsewhere, not repeated here (tests/contract/test_transports.py, at the transport level):
a changed SFTP host key and a wrong pinned fingerprint are refused before any authentication
(``test_a_wrong_pinned_host_key_is_refused_before_any_authentication``,
``test_a_changed_host_key_in_known_hosts_is_refused``); an untrusted FTPS certificate is refused
before USER and PASS (``test_an_untrusted_certificate_is_refused_before_user_and_pass``); the reply
table (``test_ftp_replies_are_classified_once``); a file moved away after the transfer and a short
file on the server. Here: the same situations end to end, with the job states they lead to.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from stockbridge.demo.localserver import FTPServerThread
from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table, service
from tests.servers import LocalServer
from tests.waiting import wait_for

PASSWORD = "fault-test-pw"


@dataclass
class FaultyFTPServer(FTPServerThread):
    """pyftpdlib on 127.0.0.1 that answers chosen commands with chosen replies.

    ``replies[("STOR", 2)] = "451 Local error"``: the 2nd STOR gets that reply and nothing is
    stored. ``cut_stor = (1, 20_000)``: the 1st STOR's connections are closed after 20,000 bytes.
    """

    replies: dict[tuple[str, int], str] = field(default_factory=dict)
    cut_stor: tuple[int, int] | None = None
    counts: Counter[str] = field(default_factory=Counter)

    def _handler_class(self) -> Any:
        base = super()._handler_class()
        server = self

        class DataHandler(base.dtp_handler):  # type: ignore[name-defined,misc]
            cut_after: int | None = None
            received = 0

            def recv(self, buffer_size: int) -> bytes:
                chunk: bytes = super().recv(buffer_size)
                self.received += len(chunk)
                if self.cut_after is not None and self.received >= self.cut_after:
                    # The line goes dead mid-file: data and control connection, no reply.
                    for sock in (self.socket, self.cmd_channel.socket):
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                    self.cmd_channel.close()
                    return b""
                return chunk

        class Handler(base):  # type: ignore[misc,valid-type]
            dtp_handler = DataHandler

            def _fault(self, verb: str) -> bool:
                server.counts[verb] += 1
                reply = server.replies.get((verb, server.counts[verb]))
                if reply is None:
                    return False
                self.respond(reply)
                return True

            def ftp_PASS(self, line: str) -> Any:
                if self._fault("PASS"):
                    return None
                return super().ftp_PASS(line)

            def ftp_MLSD(self, path: str) -> Any:
                if self._fault("MLSD"):
                    return None
                return super().ftp_MLSD(path)

            def ftp_STOR(self, file: str, mode: str = "w") -> Any:
                if self._fault("STOR"):
                    return None
                if server.cut_stor is not None and server.cut_stor[0] == server.counts["STOR"]:
                    DataHandler.cut_after = server.cut_stor[1]
                else:
                    DataHandler.cut_after = None
                return super().ftp_STOR(file, mode)

        return Handler


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[FaultyFTPServer]:
    pytest.importorskip("pyftpdlib")
    root = tmp_path / "faulty-root"
    root.mkdir()
    server = FaultyFTPServer(root=root, tls=False, username="photographer", password=PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def as_platform(server: FaultyFTPServer) -> LocalServer:
    return LocalServer(
        name="faulty",
        protocol="ftp",
        root=server.root,
        remote_dir="/",
        host=server.host,
        port=server.port,
        username=server.username,
        password=server.password,
    )


def photos(workspace: Workspace, exiftool: Any, count: int, width: int = 800) -> list[Path]:
    return [
        make_image(
            workspace.exports / f"IMG_{index}.jpg",
            width=width,
            height=width * 3 // 4,
            title=f"Photo {index}",
            exiftool=exiftool,
            seed=500 + index,
        )
        for index in range(count)
    ]


def configure(
    workspace: Workspace, server: FaultyFTPServer, folder_target: LocalServer, **extra: object
) -> None:
    workspace.write_config(
        platform_table("agency", as_platform(server), **extra), platform_table("archive", folder_target)
    )


def jobs(workspace: Workspace, platform: str) -> dict[str, dict[str, Any]]:
    return {Path(entry["path"]).name: entry["platforms"][platform] for entry in workspace.status()["files"]}


def stored_files(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in root.iterdir() if path.is_file()}


@pytest.mark.parametrize(
    "reply",
    [
        "421 Service not available, closing control connection.",
        "425 Can't open data connection.",
        "426 Connection closed; transfer aborted.",
        "450 Requested file action not taken.",
        "451 Requested action aborted: local error in processing.",
    ],
    ids=["421", "425", "426", "450", "451"],
)
def test_a_transient_reply_to_a_stor_is_retried_and_the_file_arrives_once(
    workspace: Workspace, exiftool: Any, faulty: FaultyFTPServer, folder_target: LocalServer, reply: str
) -> None:
    # decisions.md F-6: a fake server answers the 2nd STOR of a batch of 5 with a transient reply.
    sources = photos(workspace, exiftool, 5)
    faulty.replies[("STOR", 2)] = reply
    configure(workspace, faulty, folder_target)
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert stored_files(faulty.root) == {path.name: path.read_bytes() for path in sources}
    assert sorted(stored_files(folder_target.root)) == sorted(path.name for path in sources)
    assert set(jobs(workspace, "agency")[p.name]["state"] for p in sources) == {"uploaded"}
    stors = Counter(faulty.stored)
    assert sorted(stors.values()) == [1, 1, 1, 1, 2], "only the refused file is sent again, to the same name"
    # The connection is suspect after the refusal: exactly one reconnect, and the same file goes
    # again over it before the rest of the batch (not after a backoff in a later batch).
    assert faulty.commands.count("PASS") == 2
    order = list(faulty.stored)
    assert order[1] == order[2], f"the refused file is sent again at once: {order}"
    assert reply.split(".")[0] in result.stderr, "the log names the server's reply"


@pytest.mark.parametrize(
    "reply", ["452 Insufficient storage space.", "552 Exceeded storage allocation."], ids=["452", "552"]
)
def test_a_full_server_pauses_its_platform_while_the_others_go_through(
    workspace: Workspace, exiftool: Any, faulty: FaultyFTPServer, folder_target: LocalServer, reply: str
) -> None:
    sources = photos(workspace, exiftool, 3)
    faulty.replies[("STOR", 1)] = reply
    configure(workspace, faulty, folder_target)
    result = workspace.cli("once")
    assert result.returncode == 1
    assert sorted(stored_files(folder_target.root)) == sorted(path.name for path in sources)
    assert stored_files(faulty.root) == {}
    assert faulty.stored and len(faulty.stored) == 1, "a full server is not asked again within the run"
    status = workspace.status()
    assert "server full or quota used up" in status["paused"]["agency"]
    assert reply.split(".")[0] in status["paused"]["agency"]
    assert status["paused_until"]["agency"] is not None, "a full server is looked at again by itself"
    assert set(job["state"] for job in jobs(workspace, "agency").values()) == {"pending"}


def test_a_refused_login_is_tried_once_shown_and_goes_through_after_retry(
    workspace: Workspace, exiftool: Any, faulty: FaultyFTPServer, folder_target: LocalServer
) -> None:
    sources = photos(workspace, exiftool, 2)
    faulty.replies[("PASS", 1)] = "530 Login incorrect."
    configure(workspace, faulty, folder_target)
    result = workspace.cli("once")
    assert result.returncode == 1
    assert faulty.commands.count("PASS") == 1, "a refused login is never tried again by itself"
    assert "STOR" not in faulty.commands
    assert sorted(stored_files(folder_target.root)) == sorted(path.name for path in sources)
    status = workspace.status()
    assert "login refused" in status["paused"]["agency"] and "530" in status["paused"]["agency"]
    assert "530 Login incorrect" in result.stderr and "retry --platform agency" in result.stderr
    assert "Login incorrect.." not in result.stderr  # the server's full stop, not ours as well
    assert PASSWORD not in result.stderr + result.stdout + json.dumps(status)

    again = workspace.cli("once")
    assert faulty.commands.count("PASS") == 1, "still paused: no second login until `retry`"
    assert again.returncode == 1

    assert workspace.cli("retry", "--platform", "agency").returncode == 0
    final = workspace.cli("once")
    assert final.returncode == 0, final.stderr
    assert faulty.commands.count("PASS") == 2
    assert stored_files(faulty.root) == {path.name: path.read_bytes() for path in sources}
    assert "paused" not in workspace.status()


@pytest.mark.parametrize(
    "reply",
    ["550 Permission denied: photos of this kind are not accepted.", "553 File name not allowed."],
    ids=["550", "553"],
)
def test_a_refused_file_fails_with_the_servers_words_and_is_not_sent_again(
    workspace: Workspace, exiftool: Any, faulty: FaultyFTPServer, folder_target: LocalServer, reply: str
) -> None:
    sources = photos(workspace, exiftool, 3)
    faulty.replies[("STOR", 1)] = reply
    configure(workspace, faulty, folder_target)
    result = workspace.cli("once")
    assert result.returncode == 1
    states = jobs(workspace, "agency")
    failed = [name for name, job in states.items() if job["state"] == "failed"]
    assert len(failed) == 1
    assert reply.rstrip(".") in states[failed[0]]["reason"], "the reason carries the server's words"
    assert sorted(stored_files(faulty.root)) == sorted(p.name for p in sources if p.name != failed[0])
    assert sorted(stored_files(folder_target.root)) == sorted(path.name for path in sources)
    assert len(faulty.stored) == 3, "the refused file was not tried again"
    workspace.cli("once")
    assert len(faulty.stored) == 3, "nor on the next run"


def test_a_connection_cut_mid_file_is_retried_and_no_short_file_stays(
    workspace: Workspace, exiftool: Any, faulty: FaultyFTPServer, folder_target: LocalServer
) -> None:
    sources = photos(workspace, exiftool, 2, width=1600)
    assert min(path.stat().st_size for path in sources) > 100_000
    faulty.cut_stor = (1, 40_000)
    # A cut line is noticed at once, not after timeout_seconds of waiting for acks: with a timeout
    # of ten minutes, a client that waited for it would never finish within the test's 60 s.
    configure(workspace, faulty, folder_target, timeout_seconds=600)
    try:
        result = workspace.cli("once", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the cut connection was not noticed: once waited for timeout_seconds")
    assert result.returncode == 0, result.stderr
    assert stored_files(faulty.root) == {path.name: path.read_bytes() for path in sources}
    assert any(size < 100_000 for _, size in faulty.arrived), "the cut really left a short file"
    assert sorted(Counter(faulty.stored).values()) == [1, 2]
    assert set(job["state"] for job in jobs(workspace, "agency").values()) == {"uploaded"}


def test_a_file_moved_away_after_a_confirmed_transfer_is_uploaded_unverified_and_never_sent_again(
    workspace: Workspace, exiftool: Any, faulty: FaultyFTPServer, folder_target: LocalServer, tmp_path: Path
) -> None:
    taken = tmp_path / "taken-by-robot"
    taken.mkdir()
    faulty.ingest = lambda path: path.rename(taken / path.name)
    sources = photos(workspace, exiftool, 2)
    configure(workspace, faulty, folder_target)
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert stored_files(faulty.root) == {}
    assert stored_files(taken) == {path.name: path.read_bytes() for path in sources}
    for job in jobs(workspace, "agency").values():
        assert job["state"] == "uploaded"
        assert "not verifiable" in job["reason"]
    assert len(faulty.stored) == 2
    workspace.cli("once")
    assert len(faulty.stored) == 2, "a file the server took is never sent again"


def test_an_untrusted_ftps_certificate_pauses_the_platform_before_any_password_is_sent(
    workspace: Workspace,
    exiftool: Any,
    ftps_server: LocalServer,
    untrusted_ca: Path,
    folder_target: LocalServer,
) -> None:
    photos(workspace, exiftool, 1)
    ftps_server.ca_file = untrusted_ca
    workspace.write_config(platform_table("agency", ftps_server), platform_table("archive", folder_target))
    result = workspace.cli("once")
    assert result.returncode == 1
    assert "USER" not in ftps_server.commands() and "PASS" not in ftps_server.commands()
    assert [path.name for path in folder_target.root.iterdir()] == ["IMG_0.jpg"]
    assert "not trusted" in workspace.status()["paused"]["agency"]


def test_a_changed_sftp_host_key_pauses_the_platform_before_any_authentication(
    workspace: Workspace, exiftool: Any, sshd_server: LocalServer, folder_target: LocalServer
) -> None:
    photos(workspace, exiftool, 1)
    sshd_server.host_key_fingerprint = "SHA256:" + "A" * 43  # what a man in the middle would show
    workspace.write_config(platform_table("agency", sshd_server), platform_table("archive", folder_target))
    result = workspace.cli("once")
    assert result.returncode == 1
    assert "userauth-request" not in sshd_server.log_text()
    assert [path.name for path in folder_target.root.iterdir()] == ["IMG_0.jpg"]
    assert "not trusted" in workspace.status()["paused"]["agency"]


def test_sighup_rereads_a_rotated_password_and_a_paused_platform_tries_once_more(
    workspace: Workspace, exiftool: Any, faulty: FaultyFTPServer, folder_target: LocalServer, tmp_path: Path
) -> None:
    # decisions.md X-3: the agency generated a new password; the contributor updates the secret file
    # and runs `systemctl reload stockbridge` (SIGHUP). No restart, one new login.

    secret = tmp_path / "agency.password"
    secret.write_text("an-old-password\n")
    secret.chmod(0o600)
    sources = photos(workspace, exiftool, 2)
    faulty.replies[("PASS", 1)] = "530 Login incorrect."
    agency = replace(as_platform(faulty), password=None)
    workspace.write_config(
        platform_table("agency", agency, password={"file": str(secret)}, **{"batch.max_wait_seconds": 0}),
        platform_table("archive", folder_target, **{"batch.max_wait_seconds": 0}),
    )
    log = tmp_path / "service.log"
    with service(workspace, log) as process:
        wait_for(lambda: b"login refused" in log.read_bytes(), 30, "the refused login")

        # A broken config on reload changes nothing and stops nothing.
        good = workspace.config.read_text()
        workspace.config.write_text(good + "\n[platforms.agency.rules]\nmax_keywrods = 5\n")
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: b"configuration not reloaded" in log.read_bytes(), 20, "the refused reload")
        assert b"max_keywrods" in log.read_bytes() and process.poll() is None
        assert faulty.commands.count("PASS") == 1, "paused after one refused login, reload or not"

        workspace.config.write_text(good)
        secret.write_text(PASSWORD + "\n")
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: len(stored_files(faulty.root)) == 2, 30, "the files to reach the agency")
        assert faulty.commands.count("PASS") == 2, "exactly one new login after the reload"
        assert process.poll() is None
    text = log.read_text()
    assert "configuration reloaded" in text and "agency will try again" in text
    assert stored_files(faulty.root) == {path.name: path.read_bytes() for path in sources}
    assert PASSWORD not in text and "an-old-password" not in text


def test_a_server_that_is_down_then_back_gets_the_files_within_the_same_run(
    workspace: Workspace, exiftool: Any, tmp_path: Path
) -> None:
    # The agency's server is down when `once` starts and comes back, on the same port, once the
    # client has found it down: the platform waits (files are not charged attempts) and sends
    # everything when it is back.
    root = tmp_path / "back-root"
    root.mkdir()
    sources = photos(workspace, exiftool, 3)
    log = tmp_path / "once.log"
    with socket.socket() as holder:
        # Bound but never listening: connections are refused, and the port stays ours until the
        # server takes it over (both sides set SO_REUSEADDR, which Linux allows while nobody listens).
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        server = FTPServerThread(root=root, tls=False, username="photographer", password=PASSWORD, port=port)
        agency = LocalServer(
            name="back",
            protocol="ftp",
            root=root,
            remote_dir="/",
            host="127.0.0.1",
            port=port,
            username="photographer",
            password=PASSWORD,
        )
        workspace.write_config(platform_table("agency", agency))
        with log.open("wb") as sink:
            process = subprocess.Popen(
                workspace.command("once"),
                stdout=subprocess.DEVNULL,
                stderr=sink,
                env=workspace.env(),
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_for(
                lambda: b"cannot reach the server" in log.read_bytes() or process.poll() is not None,
                60,
                "the client to find the server down",
            )
            assert process.poll() is None, f"once ended while the server was down:\n{log.read_text()}"
            server.start()
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            server.stop()
    err = log.read_text()
    assert process.returncode == 0, err
    assert "cannot reach the server" in err, "it really was down at first"
    assert stored_files(root) == {path.name: path.read_bytes() for path in sources}
    assert sorted(Counter(server.stored).values()) == [1, 1, 1]


def test_a_batch_checked_by_one_listing_catches_a_file_the_server_kept_short_and_sends_it_again(
    workspace: Workspace, exiftool: Any, faulty: FaultyFTPServer, folder_target: LocalServer
) -> None:
    # Seven files: checked together with one MLSD (delivery/confirming.py). The server keeps one of
    # them short after confirming it with 226: that one must not be `uploaded` until it is whole.
    cut: list[str] = []

    def keep_short(path: Path) -> None:
        if path.name == "IMG_3.jpg" and not cut:
            cut.append(path.name)
            with path.open("r+b") as handle:
                handle.truncate(100)

    faulty.ingest = keep_short
    sources = photos(workspace, exiftool, 7, width=320)
    configure(workspace, faulty, folder_target)
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert stored_files(faulty.root) == {path.name: path.read_bytes() for path in sources}
    agency = jobs(workspace, "agency")
    assert {name: job["state"] for name, job in agency.items()} == {p.name: "uploaded" for p in sources}
    proofs = {name: job["verified_by"] for name, job in agency.items()}
    assert proofs.pop("IMG_3.jpg") == "size", "sent again alone, its own SIZE proved it"
    assert set(proofs.values()) == {"listing"}
    assert sorted(faulty.stored).count("IMG_3.jpg") == 2 and len(faulty.stored) == 8
    assert faulty.commands.count("MLSD") == 1


def test_sent_files_whose_check_was_cut_off_are_looked_for_first_and_never_sent_twice(
    workspace: Workspace, exiftool: Any, faulty: FaultyFTPServer, folder_target: LocalServer
) -> None:
    # The listing that would check the batch fails (421): nothing may count as uploaded on the
    # strength of the 226 alone, and nothing may be sent again either: each is looked for first.
    faulty.replies[("MLSD", 1)] = "421 Service not available, closing control connection."
    sources = photos(workspace, exiftool, 7, width=320)
    configure(workspace, faulty, folder_target)
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert stored_files(faulty.root) == {path.name: path.read_bytes() for path in sources}
    assert len(faulty.stored) == 7, "a file on the server at full size is never sent again"
    assert faulty.counts["MLSD"] == 1
    agency = jobs(workspace, "agency")
    assert {(job["state"], job["verified_by"]) for job in agency.values()} == {("uploaded", "size")}
