"""Servers that refuse part of a file, as agency servers do (issue 11), at the transport level.

Each fault runs on every server family here that can produce it (tests/thirdparty.py starts
ProFTPD and Pure-FTPd with the fault configured; OpenSSH and vsftpd get a small disk mounted over
their root): a per-file size limit, a quota, a full disk (and one that frees space again during the
upload), a read-only folder, a folder that cannot be created, renames refused, the server killed in
the middle of a file. Every test asserts what the user sees: the error class, the server's own
words in the message, no partial file left under either name, and that the next file still goes.

Each of these failed before issue 11's fixes (checked with the marks that stood here until then):
B1 (SFTP write statuses ignored), B2 (FTP reply after an aborted upload not read), B3 (a folder that
cannot be created shown as "cannot reach the server").
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockbridge.errors import QuotaError, RemoteRejectedError, TransportError
from stockbridge.transports import TEMP_SUFFIX, open_transport
from tests.servers import LocalServer, settings_for
from tests.thirdparty import Fault, ThirdPartyServers, fill_disk, mount_small_disk, wait_for_text

PROFTPD = ["proftpd-ftp", "proftpd-ftps", "proftpd-sftp"]
PUREFTPD = ["pureftpd-ftp", "pureftpd-ftps"]
FTP_KINDS = ["proftpd-ftp", "proftpd-ftps", "pureftpd-ftp", "pureftpd-ftps"]
ALL_KINDS = [*PROFTPD, *PUREFTPD]

#: FTP faults use a file 8x the limit: the client is still sending when the server gives up, so the
#: data connection breaks under it every time (a file just over the limit fits in socket buffers).
FTP_BIG = 8 * 1024 * 1024
SFTP_BIG = 3 * 1024 * 1024
LIMIT = 1024 * 1024


def make_file(directory: Path, name: str, size: int, seed: int = 0) -> Path:
    path = directory / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def remote_files(root: Path) -> list[str]:
    """Files under ``root``, without Pure-FTPd's own quota bookkeeping file."""
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() and path.name != ".ftpquota"
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def big_size(server: LocalServer) -> int:
    return SFTP_BIG if server.protocol == "sftp" else FTP_BIG


def assert_no_partial_file(folder: Path, name: str) -> None:
    left = [entry for entry in remote_files(folder) if entry in (name, name + TEMP_SUFFIX)]
    assert left == [], f"a partial file stayed on the server: {left}"


# -- a per-file size limit (ProFTPD MaxStoreFileSize) ---------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "proftpd-ftp",
        "proftpd-ftps",
        "proftpd-sftp",
    ],
)
@pytest.mark.parametrize("atomic_rename", [True, False], ids=["temp-name", "direct"])
def test_a_file_over_the_servers_size_limit_fails_with_its_words_and_the_next_file_goes(
    thirdparty: ThirdPartyServers, tmp_path: Path, kind: str, atomic_rename: bool
) -> None:
    server = thirdparty.start(kind, Fault(max_store_size="1 Mb", size_limit_dir="small"))
    folder = server.root / "small"
    big = make_file(tmp_path, "big.jpg", big_size(server))
    small = make_file(tmp_path, "small.jpg", LIMIT // 2, seed=1)
    settings = settings_for(server, remote_dir=server.remote_path("small"), atomic_rename=atomic_rename)
    with open_transport(settings) as transport:
        with pytest.raises(RemoteRejectedError) as caught:
            transport.put(big, "big.jpg")
        if server.protocol == "sftp":
            # mod_sftp has one word for a size limit and a full disk; the free space it reports
            # says which (statvfs), and the message says both.
            assert "Out of disk space" in str(caught.value) and "over a size limit" in str(caught.value)
        else:
            assert "File too large" in str(caught.value)
        assert_no_partial_file(folder, "big.jpg")
        # A file refused for its own size: the batch goes on with the next one.
        assert transport.put(small, "small.jpg").verified
    assert (folder / "small.jpg").read_bytes() == small.read_bytes()
    assert "File too large" in server.log_text()  # the server did refuse it


# -- a quota (Pure-FTPd virtual user quota) ------------------------------------------------------


@pytest.mark.parametrize("kind", PUREFTPD)
def test_a_file_over_the_quota_is_a_quota_error_with_the_servers_words(
    thirdparty: ThirdPartyServers, tmp_path: Path, kind: str
) -> None:
    server = thirdparty.start(kind, Fault(quota_bytes=LIMIT))
    big = make_file(tmp_path, "big.jpg", FTP_BIG)
    with (
        open_transport(settings_for(server, atomic_rename=False)) as transport,
        pytest.raises(QuotaError) as caught,
    ):
        transport.put(big, "big.jpg")
    assert "Quota exceeded" in str(caught.value)
    assert_no_partial_file(server.root, "big.jpg")


# -- a full disk ---------------------------------------------------------------------------------


def disk_full_words(server: LocalServer) -> str:
    """What the server told the client about the full disk, from its own log."""
    if server.name.startswith("pureftpd"):
        return "Error during write to file"
    if server.name == "proftpd-sftp":
        return "Out of disk space"  # its log says "No space left on device"; SFTP v3 says this
    # ProFTPD FTP says "451 Transfer aborted. Input/output error" or "452 ... No space left on
    # device", whichever its write hits first; its log says which.
    log = wait_for_text(server.log_path, "aborting transfer: ") if server.log_path else ""
    return re.findall(r"aborting transfer: (.+)", log)[-1].strip()


@pytest.mark.parametrize(
    "kind",
    [
        "proftpd-ftp",
        "proftpd-ftps",
        "proftpd-sftp",
        "pureftpd-ftp",
        "pureftpd-ftps",
    ],
)
def test_a_full_disk_is_a_quota_error_with_the_servers_words_and_no_partial_file(
    thirdparty: ThirdPartyServers, tmp_path: Path, kind: str
) -> None:
    server = thirdparty.start(kind, Fault(disk_bytes=4 * LIMIT))
    thirdparty.fill_disk(server, leave=LIMIT)
    big = make_file(tmp_path, "big.jpg", big_size(server))
    with (
        open_transport(settings_for(server, atomic_rename=False)) as transport,
        pytest.raises(QuotaError) as caught,
    ):
        transport.put(big, "big.jpg")
    assert disk_full_words(server) in str(caught.value)
    assert_no_partial_file(server.root, "big.jpg")


@pytest.fixture
def small_disk_under(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    """OpenSSH or vsftpd (tests/servers.py) with a 4 MiB tmpfs mounted over its root, 1 MiB free;
    uploads go to its folder ``up``."""
    server: LocalServer = request.getfixturevalue(request.param)
    unmount = mount_small_disk(server.root, 4 * LIMIT)
    try:
        (server.root / "up").mkdir()
        fill_disk(server.root, leave=LIMIT)
        yield server
    finally:
        unmount()


@pytest.mark.parametrize("small_disk_under", ["sshd_server"], indirect=True)
def test_a_full_disk_on_openssh_fails_the_upload_and_leaves_no_partial_file(
    small_disk_under: LocalServer, tmp_path: Path
) -> None:
    # OpenSSH's sftp-server answers ENOSPC with the generic SSH2_FX_FAILURE ("Failure"): nothing in
    # its words says "full", so only the failure itself is asserted here.
    server = small_disk_under
    big = make_file(tmp_path, "big.jpg", SFTP_BIG)
    settings = settings_for(server, remote_dir=server.remote_path("up"), atomic_rename=False)
    with open_transport(settings) as transport, pytest.raises(TransportError):
        transport.put(big, "big.jpg")
    assert_no_partial_file(server.root / "up", "big.jpg")


@pytest.mark.parametrize("small_disk_under", ["vsftpd_server"], indirect=True)
def test_a_full_disk_on_vsftpd_is_a_quota_error_with_its_words_and_no_partial_file(
    small_disk_under: LocalServer, tmp_path: Path
) -> None:
    server = small_disk_under
    big = make_file(tmp_path, "big.jpg", FTP_BIG)
    settings = settings_for(server, remote_dir=server.remote_path("up"), atomic_rename=False)
    with open_transport(settings) as transport, pytest.raises(QuotaError) as caught:
        transport.put(big, "big.jpg")
    assert "Failure writing to local file" in str(caught.value)
    assert_no_partial_file(server.root / "up", "big.jpg")


@pytest.mark.parametrize(
    "kind",
    ["proftpd-sftp"],
)
def test_an_sftp_disk_that_fills_and_frees_space_during_the_upload_never_gives_a_different_file(
    thirdparty: ThirdPartyServers, tmp_path: Path, kind: str
) -> None:
    # The second B1 case: writes fail while the disk is full, later ones succeed once space
    # is back, and the file has the right size with zeros in the middle.
    server = thirdparty.start(kind, Fault(disk_bytes=4 * LIMIT))
    filler = thirdparty.fill_disk(server, leave=LIMIT // 2)
    big = make_file(tmp_path, "big.jpg", SFTP_BIG)
    assert server.log_path is not None

    def free_space_once_a_write_failed(sent: int) -> None:
        if sent >= 2 * LIMIT and filler.exists():
            wait_for_text(server.log_path, "No space left on device")  # type: ignore[arg-type]
            filler.unlink()

    with open_transport(settings_for(server, atomic_rename=False)) as transport:
        try:
            result = transport.put(big, "big.jpg", progress=free_space_once_a_write_failed)
        except TransportError:
            return  # refused: the user sees the failure, and the file is sent again later
    assert result.verified
    assert sha256(server.root / "big.jpg") == sha256(big), "put returned success for a file that differs"


# -- a read-only folder ---------------------------------------------------------------------------


def denied_words(server: LocalServer) -> str:
    # ProFTPD's <Limit WRITE> DenyAll over FTP: "550 x.part: Operation not permitted".
    return (
        "Operation not permitted" if server.name in ("proftpd-ftp", "proftpd-ftps") else "Permission denied"
    )


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_read_only_folder_refuses_the_upload_and_the_write_check_with_the_servers_words(
    thirdparty: ThirdPartyServers, tmp_path: Path, kind: str
) -> None:
    server = thirdparty.start(kind, Fault(read_only_dir="ro"))
    small = make_file(tmp_path, "small.jpg", 10_000)
    with open_transport(settings_for(server, remote_dir=server.remote_path("ro"))) as transport:
        with pytest.raises(TransportError) as put_error:
            transport.put(small, "small.jpg")
        with pytest.raises(TransportError) as check_error:
            transport.check_writable()
    for caught in (put_error, check_error):
        assert denied_words(server) in str(caught.value)
        assert not caught.value.retryable
    assert remote_files(server.root) == []


# -- a folder that cannot be created --------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "proftpd-ftp",
        "proftpd-ftps",
        "proftpd-sftp",
        "pureftpd-ftp",
        "pureftpd-ftps",
    ],
)
def test_a_folder_the_server_will_not_create_is_a_setup_error_with_its_words_not_retried(
    thirdparty: ThirdPartyServers, kind: str
) -> None:
    server = thirdparty.start(kind, Fault(no_mkdir_dir="locked"))
    transport = open_transport(settings_for(server, remote_dir=server.remote_path("locked", "sub")))
    try:
        transport.connect()
        with pytest.raises(TransportError) as caught:
            transport.mkdirs()
    finally:
        transport.close()
    message = str(caught.value)
    assert caught.value.retryable is False
    assert "sub" in message
    # ProFTPD refuses an MKD with "Permission denied" where it refuses a STOR with "not permitted".
    words = ("Permission denied", denied_words(server))
    assert any(word in message for word in words), f"not the server's words for the refused folder: {message}"
    assert not (server.root / "locked" / "sub").exists()


# -- renames refused -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_refused_renames_are_caught_by_the_write_check_with_the_servers_words(
    thirdparty: ThirdPartyServers, kind: str
) -> None:
    server = thirdparty.start(kind, Fault(no_rename=True))
    with (
        open_transport(settings_for(server, atomic_rename=True)) as transport,
        pytest.raises(TransportError) as caught,
    ):
        transport.check_writable()
    message = str(caught.value)
    words = {"pureftpd-ftp": "Rename/move failure", "pureftpd-ftps": "Rename/move failure"}.get(
        kind, denied_words(server)
    )
    assert words in message
    assert re.search(r"RNFR|RNTO|renam", message), f"the message does not name the rename: {message}"
    assert not caught.value.retryable
    assert remote_files(server.root) == []  # the probe file is gone again


# -- the server killed in the middle of a file ----------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("atomic_rename", [True, False], ids=["temp-name", "direct"])
def test_a_server_killed_mid_file_is_a_retryable_error_and_the_file_goes_after_its_restart(
    thirdparty: ThirdPartyServers, tmp_path: Path, kind: str, atomic_rename: bool
) -> None:
    server = thirdparty.start(kind)
    big = make_file(tmp_path, "big.jpg", 4 * LIMIT)
    killed: list[int] = []

    def kill_after_the_first_megabyte(sent: int) -> None:
        if sent >= LIMIT and not killed:
            killed.append(sent)
            thirdparty.kill(server)  # SIGKILL: the daemon and the session serving us

    settings = settings_for(server, atomic_rename=atomic_rename)
    started = time.monotonic()
    with open_transport(settings) as transport, pytest.raises(TransportError) as caught:
        transport.put(big, "big.jpg", progress=kill_after_the_first_megabyte)
    assert killed, "the upload ended before the kill"
    assert caught.value.retryable
    assert time.monotonic() - started < 8, "a dead server is noticed at once, not after the timeout"

    thirdparty.restart(server)
    with open_transport(settings) as transport:
        assert transport.put(big, "big.jpg").verified
    assert sha256(server.root / "big.jpg") == sha256(big)
    assert remote_files(server.root) == ["big.jpg"]
    assert os.path.getsize(server.root / "big.jpg") == 4 * LIMIT
