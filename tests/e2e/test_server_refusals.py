"""A server that refuses the rest of a file, or a folder, through `stockbridge once` (issue 11).

Agency servers stop taking a file half-way when it is over their size limit or the account's quota
is used up: they answer on the control connection ("552 Transfer aborted. File too large",
"552 Quota exceeded", "451-Error during write to file") and close the data connection, so the
client's next send() fails with a broken pipe or a reset. What the user sees must be the server's
reply, and what follows must depend on it: a file too large fails at once and the batch goes on;
a full server pauses the platform. ``RefusingFTPServer`` is pyftpdlib made to do exactly that; the
same faults on ProFTPD and Pure-FTPd are in tests/contract/test_server_faults.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Workspace, platform_table
from tests.e2e.test_faults import FaultyFTPServer, as_platform, configure, jobs, photos, stored_files
from tests.servers import LocalServer


@dataclass
class RefusingFTPServer(FaultyFTPServer):
    """``refuse = {n: (after_bytes, reply)}``: the nth STOR is broken off after that many bytes
    with that reply, as ProFTPD's MaxStoreFileSize or Pure-FTPd's quota do. ``mkd_reply``:
    every MKD gets it."""

    refuse: dict[int, tuple[int, str]] | None = None
    mkd_reply: str | None = None

    def _handler_class(self) -> Any:
        base = super()._handler_class()
        server = self

        class DataHandler(base.dtp_handler):  # type: ignore[name-defined,misc]
            refuse_after: tuple[int, str] | None = None

            def recv(self, buffer_size: int) -> bytes:
                chunk: bytes = super().recv(buffer_size)
                if self.refuse_after is not None and self.received >= self.refuse_after[0]:
                    self._resp = (self.refuse_after[1], lambda *args: None)
                    self.transfer_finished = False
                    self.close()
                    return b""
                return chunk

        class Handler(base):  # type: ignore[misc,valid-type]
            dtp_handler = DataHandler

            def ftp_STOR(self, file: str, mode: str = "w") -> Any:
                result = super().ftp_STOR(file, mode)
                DataHandler.refuse_after = (server.refuse or {}).get(server.counts["STOR"])
                return result

            def ftp_MKD(self, path: str) -> Any:
                if server.mkd_reply is not None:
                    self.respond(server.mkd_reply)
                    return None
                return super().ftp_MKD(path)

        return Handler


@pytest.fixture
def refusing(tmp_path: Path) -> Iterator[RefusingFTPServer]:
    pytest.importorskip("pyftpdlib")
    root = tmp_path / "refusing-root"
    root.mkdir()
    server = RefusingFTPServer(root=root, tls=False, username="photographer", password="refusal-test-pw")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_file_over_the_servers_size_limit_fails_once_with_its_words_and_the_batch_goes_on(
    workspace: Workspace, exiftool: Any, refusing: RefusingFTPServer, folder_target: LocalServer
) -> None:
    sources = photos(workspace, exiftool, 3, width=1600)
    refusing.refuse = {1: (20_000, "552 Transfer aborted. File too large")}
    configure(workspace, refusing, folder_target)
    result = workspace.cli("once")
    assert result.returncode == 1, result.stderr
    states = jobs(workspace, "agency")
    failed = [name for name, job in states.items() if job["state"] == "failed"]
    assert len(failed) == 1, states
    reason = states[failed[0]]["reason"]
    assert "File too large" in reason, reason
    # Before, the client reported its own broken pipe and sent the file 4 times.
    assert "Broken pipe" not in reason and "reset" not in reason.lower()
    assert refusing.counts["STOR"] == 3, "the refused file is not sent again; the others go on"
    assert sorted(stored_files(refusing.root)) == sorted(p.name for p in sources if p.name != failed[0])
    assert "paused" not in workspace.status()


@pytest.mark.parametrize(
    "reply",
    ["552 Quota exceeded", "451-Error during write to file\r\n451 Transfer aborted"],
    ids=["quota", "disk-full"],
)
def test_a_server_that_runs_out_of_space_mid_file_pauses_its_platform_with_its_words(
    workspace: Workspace,
    exiftool: Any,
    refusing: RefusingFTPServer,
    folder_target: LocalServer,
    reply: str,
) -> None:
    sources = photos(workspace, exiftool, 3, width=1600)
    refusing.refuse = {1: (20_000, reply)}
    configure(workspace, refusing, folder_target)
    result = workspace.cli("once")
    assert result.returncode == 1, result.stderr
    assert refusing.counts["STOR"] == 1, "a full server is not asked again within the run"
    assert stored_files(refusing.root) == {}, "the partial file is removed"
    status = workspace.status()
    pause = status["paused"]["agency"]
    assert "server full or quota used up" in pause
    assert reply.splitlines()[0][4:] in pause, pause
    assert set(job["state"] for job in jobs(workspace, "agency").values()) == {"pending"}
    assert sorted(stored_files(folder_target.root)) == sorted(path.name for path in sources)


def test_a_remote_folder_that_cannot_be_created_pauses_the_platform_once_with_the_servers_words(
    workspace: Workspace, exiftool: Any, refusing: RefusingFTPServer, folder_target: LocalServer
) -> None:
    photos(workspace, exiftool, 2)
    refusing.mkd_reply = "550 uploads: Permission denied"
    workspace.write_config(
        platform_table("agency", replace(as_platform(refusing), remote_dir="/uploads")),
        platform_table("archive", folder_target),
    )
    result = workspace.cli("once")
    assert result.returncode == 1
    assert refusing.commands.count("PASS") == 1, "a setup problem is not retried 4 times"
    status = workspace.status()
    pause = status["paused"]["agency"]
    assert "cannot create the remote folder /uploads" in pause and "Permission denied" in pause, pause
    assert "cannot reach the server" not in pause
    assert status["paused_until"]["agency"] is None, "it waits for the user, not for a timer"
    assert "retry --platform agency" in result.stderr
    assert set(job["state"] for job in jobs(workspace, "agency").values()) == {"pending"}


def test_history_counts_a_file_that_failed_after_its_last_retry(
    workspace: Workspace, exiftool: Any, refusing: RefusingFTPServer, folder_target: LocalServer
) -> None:
    # Issue 11 B5: `status` showed the failure, `history` showed 0 failed.
    photos(workspace, exiftool, 1)
    refusing.replies.update({("STOR", n): "451 Local error in processing." for n in range(1, 20)})
    configure(workspace, refusing, folder_target)
    result = workspace.cli("once")  # 4 attempts (ONCE_RETRY), a few seconds of backoff
    assert result.returncode == 1, result.stderr
    states = jobs(workspace, "agency")
    assert [job["state"] for job in states.values()] == ["failed"], states
    history = json.loads(workspace.cli("history", "--json").stdout)
    agency = [batch for batch in history["batches"] if batch["platform"] == "agency"]
    assert sum(batch["failed"] for batch in agency) == 1, agency
