"""One contract, every transport: the same promises hold over FTP, FTPS, SFTP and into a folder.

Each test runs against real servers on 127.0.0.1 (tests/servers.py): pyftpdlib for FTP and FTPS,
vsftpd with ``require_ssl_reuse=YES`` for FTPS as agencies run it, OpenSSH for SFTP; and
(tests/thirdparty.py) ProFTPD for FTP, FTPS with session reuse required and SFTP (its own mod_sftp),
Pure-FTPd for FTP and FTPS. Their faults are in test_server_faults.py.
"""

from __future__ import annotations

import errno
import ftplib
import io
import random
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from stockbridge.config.secrets import Secret
from stockbridge.errors import (
    AuthError,
    QuotaError,
    RemoteRejectedError,
    TransportError,
    TrustError,
)
from stockbridge.transports import TEMP_SUFFIX, PutResult, TransportSettings, open_transport
from stockbridge.transports import folder as folder_transport
from stockbridge.transports.ftp_replies import error_for_reply
from tests.servers import (
    VSFTPD_BANNED_PASSWORD,
    LocalServer,
    SSHKeys,
    pyftpdlib_platform,
    run_sshd,
    settings_for,
)
from tests.thirdparty import ThirdPartyServers
from tests.waiting import wait_for

#: ProFTPD 1.3.8 (FTP, FTPS with session reuse required, mod_sftp) and Pure-FTPd 1.0.50 (FTP, TLS):
#: tests/thirdparty.py, one daemon per module, a fresh root per test.
THIRD_PARTY = ["proftpd-ftp", "proftpd-ftps", "proftpd-sftp", "pureftpd-ftp", "pureftpd-ftps"]
THIRD_PARTY_FTP = ["proftpd-ftp", "proftpd-ftps", "pureftpd-ftp", "pureftpd-ftps"]
ALL_SERVERS = ["ftp", "ftps", "ftps-vsftpd", "sftp", "folder", *THIRD_PARTY]
FTPS_SERVERS = ["ftps", "ftps-vsftpd", "proftpd-ftps", "pureftpd-ftps"]
_FIXTURE = {
    "ftp": "ftp_server",
    "ftps": "ftps_server",
    "ftps-vsftpd": "vsftpd_server",
    "sftp": "sshd_server",
    "folder": "folder_target",
    **{name: name.replace("-", "_") + "_server" for name in THIRD_PARTY},
}


@pytest.fixture
def server(request: pytest.FixtureRequest) -> LocalServer:
    return request.getfixturevalue(_FIXTURE[request.param])


def on_servers(names: list[str]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("server", names, indirect=True)


def make_file(directory: Path, name: str, size: int, seed: int = 0) -> Path:
    """Incompressible bytes, like a JPEG; a different seed gives different content."""
    path = directory / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def remote_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


# -- uploads -------------------------------------------------------------------------------------


@on_servers(ALL_SERVERS)
def test_a_put_file_arrives_complete_and_byte_identical_without_a_part_file(
    server: LocalServer, tmp_path: Path
) -> None:
    local = make_file(tmp_path, "photo.jpg", 3 * 1024 * 1024 + 123)
    seen: list[int] = []
    with open_transport(settings_for(server)) as transport:
        result = transport.put(local, "photo.jpg", progress=seen.append)
    assert result.verified
    assert result.size == local.stat().st_size
    assert (server.root / "photo.jpg").read_bytes() == local.read_bytes()
    assert remote_files(server.root) == ["photo.jpg"]
    assert seen and seen[-1] == local.stat().st_size


@on_servers(ALL_SERVERS)
def test_a_put_into_a_nested_remote_dir_creates_it(server: LocalServer, tmp_path: Path) -> None:
    local = make_file(tmp_path, "a.jpg", 10_000)
    settings = settings_for(server, remote_dir=server.remote_path("agency", "2026", "batch 1"))
    with open_transport(settings) as transport:
        transport.mkdirs()
        assert transport.put(local, "a.jpg").verified
    assert (server.root / "agency" / "2026" / "batch 1" / "a.jpg").read_bytes() == local.read_bytes()


@on_servers(ALL_SERVERS)
def test_a_put_creates_a_missing_remote_dir_even_without_mkdirs(server: LocalServer, tmp_path: Path) -> None:
    local = make_file(tmp_path, "a.jpg", 1000)
    settings = settings_for(server, remote_dir=server.remote_path("new"))
    with open_transport(settings) as transport:
        assert transport.put(local, "a.jpg").verified
    assert (server.root / "new" / "a.jpg").exists()


@on_servers(["ftp", "ftps", "ftps-vsftpd", "folder", *THIRD_PARTY])
def test_a_relative_remote_dir_starts_at_the_login_directory(server: LocalServer, tmp_path: Path) -> None:
    # Every server here logs in at its root; a second session finds the same place again.
    local = make_file(tmp_path, "r.jpg", 1000)
    settings = settings_for(server, remote_dir="incoming/today")
    with open_transport(settings) as transport:
        assert transport.put(local, "r.jpg").verified
    with open_transport(settings) as transport:
        assert transport.size("r.jpg") == 1000
    assert (server.root / "incoming" / "today" / "r.jpg").exists()


@on_servers(ALL_SERVERS)
def test_size_of_a_missing_file_is_none(server: LocalServer) -> None:
    with open_transport(settings_for(server)) as transport:
        assert transport.size("not-there.jpg") is None


@on_servers(ALL_SERVERS)
def test_size_reports_an_uploaded_file(server: LocalServer, tmp_path: Path) -> None:
    local = make_file(tmp_path, "s.jpg", 54_321)
    with open_transport(settings_for(server)) as transport:
        transport.put(local, "s.jpg")
        assert transport.size("s.jpg") == 54_321


@on_servers(ALL_SERVERS)
def test_a_second_put_of_the_same_name_overwrites_the_first(server: LocalServer, tmp_path: Path) -> None:
    first = make_file(tmp_path, "first.jpg", 200_000, seed=1)
    second = make_file(tmp_path, "second.jpg", 150_000, seed=2)
    with open_transport(settings_for(server)) as transport:
        transport.put(first, "same.jpg")
        result = transport.put(second, "same.jpg")
    assert result.verified
    assert (server.root / "same.jpg").read_bytes() == second.read_bytes()
    assert remote_files(server.root) == ["same.jpg"]


@on_servers(ALL_SERVERS)
def test_a_direct_put_without_rename_also_arrives_complete(server: LocalServer, tmp_path: Path) -> None:
    local = make_file(tmp_path, "d.jpg", 70_000)
    with open_transport(settings_for(server, atomic_rename=False)) as transport:
        assert transport.put(local, "d.jpg").verified
    assert (server.root / "d.jpg").read_bytes() == local.read_bytes()


@on_servers(ALL_SERVERS)
@pytest.mark.parametrize("atomic_rename", [True, False], ids=["temp-name", "direct"])
def test_a_missing_local_file_leaves_the_remote_file_of_that_name_alone(
    server: LocalServer, tmp_path: Path, atomic_rename: bool
) -> None:
    local = make_file(tmp_path, "keep.jpg", 2000)
    with open_transport(settings_for(server, atomic_rename=atomic_rename)) as transport:
        transport.put(local, "keep.jpg")
        with pytest.raises(FileNotFoundError):
            transport.put(tmp_path / "gone.jpg", "keep.jpg")
        assert transport.size("keep.jpg") == 2000
    assert remote_files(server.root) == ["keep.jpg"]


@on_servers(ALL_SERVERS)
def test_several_files_go_through_one_session(server: LocalServer, tmp_path: Path) -> None:
    files = [make_file(tmp_path, f"{index}.jpg", 20_000 + index, seed=index) for index in range(5)]
    with open_transport(settings_for(server)) as transport:
        for path in files:
            assert transport.put(path, path.name).verified
    assert remote_files(server.root) == sorted(path.name for path in files)


@on_servers(ALL_SERVERS)
def test_names_with_spaces_and_unicode_arrive_under_that_name(server: LocalServer, tmp_path: Path) -> None:
    name = "Sonnenuntergang am Meer – Ærø 日本 ü.jpg"
    local = make_file(tmp_path, "local.jpg", 5000)
    with open_transport(settings_for(server)) as transport:
        assert transport.put(local, name).verified
        assert transport.size(name) == 5000
    assert (server.root / name).read_bytes() == local.read_bytes()


@on_servers(ALL_SERVERS)
@pytest.mark.parametrize(
    "bad_name",
    ["two\nlines.jpg", "cr\r\nDELE x.jpg", "sub/dir.jpg", "-rf.jpg", "nul\0.jpg", "", ".."],
)
def test_dangerous_remote_names_are_refused_before_anything_is_sent(
    server: LocalServer, tmp_path: Path, bad_name: str
) -> None:
    local = make_file(tmp_path, "x.jpg", 100)
    with open_transport(settings_for(server)) as transport:
        with pytest.raises(ValueError):
            transport.put(local, bad_name)
        with pytest.raises(ValueError):
            transport.size(bad_name)
    assert remote_files(server.root) == []


@on_servers(ALL_SERVERS)
def test_check_writable_passes_and_leaves_nothing_behind(server: LocalServer) -> None:
    before = remote_files(server.root)
    with open_transport(settings_for(server)) as transport:
        transport.check_writable()
    assert remote_files(server.root) == before


@on_servers(ALL_SERVERS)
def test_delete_removes_a_file_and_ignores_a_missing_one(server: LocalServer, tmp_path: Path) -> None:
    local = make_file(tmp_path, "del.jpg", 100)
    with open_transport(settings_for(server)) as transport:
        transport.put(local, "del.jpg")
        transport.delete("del.jpg")
        transport.delete("del.jpg")
        assert transport.size("del.jpg") is None
    assert remote_files(server.root) == []


class Interrupt(Exception):
    """What the pipeline raises from ``progress`` when the service is asked to stop."""


@on_servers(ALL_SERVERS)
@pytest.mark.parametrize("atomic_rename", [True, False], ids=["temp-name", "direct"])
def test_an_upload_interrupted_by_the_caller_leaves_no_file_behind(
    server: LocalServer, tmp_path: Path, atomic_rename: bool
) -> None:
    local = make_file(tmp_path, "big.jpg", 8 * 1024 * 1024)
    small = make_file(tmp_path, "small.jpg", 1000)

    def stop_after_first_block(sent: int) -> None:
        raise Interrupt()

    with open_transport(settings_for(server, atomic_rename=atomic_rename)) as transport:
        with pytest.raises(Interrupt):
            transport.put(local, "big.jpg", progress=stop_after_first_block)
        assert remote_files(server.root) == []
        # The session is still good for the next file.
        assert transport.put(small, "small.jpg").verified
    assert remote_files(server.root) == ["small.jpg"]


@on_servers(["ftp", "ftps"])
@pytest.mark.parametrize("atomic_rename", [True, False], ids=["temp-name", "direct"])
def test_a_file_taken_by_the_ingest_robot_after_the_transfer_counts_as_uploaded_unverified(
    server: LocalServer, tmp_path: Path, atomic_rename: bool
) -> None:
    taken: list[str] = []

    def robot(path: Path) -> None:
        if not path.name.endswith(TEMP_SUFFIX):  # robots ignore partial names
            taken.append(path.name)
            path.unlink()

    server.extra["ftpd"].ingest = robot
    local = make_file(tmp_path, "taken.jpg", 30_000)
    with open_transport(settings_for(server, atomic_rename=atomic_rename)) as transport:
        result = transport.put(local, "taken.jpg")
    assert result == PutResult("taken.jpg", 30_000, verified=False)
    assert taken == ["taken.jpg"]
    assert server.commands().count("STOR") == 1


@on_servers(["sftp", "folder"])
@pytest.mark.parametrize("atomic_rename", [True, False], ids=["temp-name", "direct"])
def test_a_file_taken_right_after_the_transfer_is_uploaded_unverified_over_sftp_and_folder(
    server: LocalServer, tmp_path: Path, atomic_rename: bool
) -> None:
    # No hook inside sshd: the robot acts between the transfer and our size check.
    local = make_file(tmp_path, "taken.jpg", 30_000)
    with open_transport(settings_for(server, atomic_rename=atomic_rename)) as transport:
        check = "_stat_size" if server.protocol == "sftp" else "size"
        real_check = getattr(transport, check)

        def robot_then_check(name: str) -> int | None:
            (server.root / "taken.jpg").unlink()
            return real_check(name)

        setattr(transport, check, robot_then_check)
        result = transport.put(local, "taken.jpg")
    assert result == PutResult("taken.jpg", 30_000, verified=False)
    assert remote_files(server.root) == []


@on_servers(["ftp", "ftps"])
def test_a_short_file_on_the_server_is_a_retryable_error_and_is_removed(
    server: LocalServer, tmp_path: Path
) -> None:
    def truncating_robot(path: Path) -> None:
        if not path.name.endswith(TEMP_SUFFIX):
            with path.open("r+b") as handle:
                handle.truncate(1000)

    server.extra["ftpd"].ingest = truncating_robot
    local = make_file(tmp_path, "short.jpg", 30_000)
    with open_transport(settings_for(server)) as transport, pytest.raises(TransportError) as caught:
        transport.put(local, "short.jpg")
    assert caught.value.retryable
    assert "1000 of 30000" in str(caught.value)
    assert remote_files(server.root) == []


def test_sftp_without_posix_rename_keeps_an_existing_file_of_the_same_size(
    sshd_server: LocalServer, tmp_path: Path
) -> None:
    # SFTP v3 RENAME refuses an existing target; only OpenSSH's posix-rename replaces it.
    first = make_file(tmp_path, "first.jpg", 5000, seed=1)
    again = make_file(tmp_path, "again.jpg", 5000, seed=2)
    with open_transport(settings_for(sshd_server)) as transport:
        transport.put(first, "x.jpg")
        transport._sftp.server_extensions = {}  # as a server without the extension
        assert transport.put(again, "x.jpg").verified
    assert (sshd_server.root / "x.jpg").read_bytes() == first.read_bytes()
    assert remote_files(sshd_server.root) == ["x.jpg"]


def test_sftp_without_posix_rename_refuses_to_replace_a_different_file(
    sshd_server: LocalServer, tmp_path: Path
) -> None:
    first = make_file(tmp_path, "first.jpg", 5000, seed=1)
    other = make_file(tmp_path, "other.jpg", 6000, seed=2)
    with open_transport(settings_for(sshd_server)) as transport:
        transport.put(first, "x.jpg")
        transport._sftp.server_extensions = {}
        with pytest.raises(RemoteRejectedError, match="already exists"):
            transport.put(other, "x.jpg")
    assert (sshd_server.root / "x.jpg").read_bytes() == first.read_bytes()
    assert remote_files(sshd_server.root) == ["x.jpg"]


# -- logins --------------------------------------------------------------------------------------


@on_servers(["ftp", "ftps", *THIRD_PARTY_FTP])
def test_a_wrong_ftp_password_is_an_auth_error_without_the_password_in_it(server: LocalServer) -> None:
    wrong = "not-the-password-1234"
    with pytest.raises(AuthError) as caught:
        open_transport(settings_for(server, password=Secret(wrong))).connect()
    assert not caught.value.retryable
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert "530" in str(caught.value)


def test_a_refused_vsftpd_login_is_an_auth_error(vsftpd_server: LocalServer) -> None:
    with pytest.raises(AuthError) as caught:
        open_transport(settings_for(vsftpd_server, password=Secret(VSFTPD_BANNED_PASSWORD))).connect()
    assert VSFTPD_BANNED_PASSWORD not in str(caught.value)


def test_a_wrong_sftp_key_is_an_auth_error(sshd_server: LocalServer) -> None:
    settings = settings_for(sshd_server, key_file=sshd_server.extra["other_user_key"])
    with pytest.raises(AuthError):
        open_transport(settings).connect()


def test_a_wrong_sftp_password_is_an_auth_error_without_the_password_in_it(sshd_server: LocalServer) -> None:
    wrong = "not-the-password-5678"
    settings = settings_for(sshd_server, key_file=None, password=Secret(wrong))
    with pytest.raises(AuthError) as caught:
        open_transport(settings).connect()
    assert wrong not in str(caught.value)


def test_nothing_listening_is_a_retryable_transport_error(ftp_server: LocalServer) -> None:
    # Bound but never listening: connections are refused for as long as the block runs.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        with pytest.raises(TransportError) as caught:
            open_transport(settings_for(ftp_server, port=closed.getsockname()[1])).connect()
    assert caught.value.retryable


# Only our client meets the silent socket here: one server per protocol is enough.
@on_servers(["ftp", "ftps", "ftps-vsftpd", "sftp"])
def test_a_server_that_never_answers_times_out_as_a_retryable_error(server: LocalServer) -> None:
    # A listening socket that accepts and stays silent: no banner, no greeting.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings = settings_for(server, port=silent.getsockname()[1], timeout=1.0)
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            open_transport(settings).connect()
        elapsed = time.monotonic() - started
    assert caught.value.retryable
    # Gave up by itself: without the 1 s timeout it would wait for the silent server for ever.
    assert elapsed < 30, f"waited {elapsed:.0f} s for a server that never answers"


# -- trust: SFTP host keys -----------------------------------------------------------------------


def wait_for_log(server: LocalServer, pattern: str) -> str:
    """The server log once ``pattern`` shows up (bounded): sshd logs the close asynchronously."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = server.log_text()
        if re.search(pattern, text):
            return text
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} never appeared in the server log:\n{server.log_text()[-3000:]}")


def test_a_successful_sftp_login_shows_up_in_the_sshd_log(sshd_server: LocalServer) -> None:
    # Positive control for the next test: the log does record authentication requests.
    with open_transport(settings_for(sshd_server)):
        pass
    assert "userauth-request" in wait_for_log(sshd_server, "userauth-request")


def test_a_wrong_pinned_host_key_is_refused_before_any_authentication(
    sshd_server: LocalServer, tmp_path: Path
) -> None:
    settings = settings_for(
        sshd_server,
        host_key="SHA256:" + "A" * 43,
        password=Secret("would-be-leaked-password"),
    )
    with pytest.raises(TrustError) as caught:
        open_transport(settings).connect()
    assert sshd_server.host_key_fingerprint in str(caught.value)
    log = wait_for_log(sshd_server, r"Connection (closed|reset) by|Disconnected from")
    assert "userauth-request" not in log
    assert "Accepted" not in log and "Failed" not in log


@pytest.fixture
def two_key_sshd(tmp_path: Path, ssh_keys: SSHKeys) -> Iterator[LocalServer]:
    """sshd holding an ed25519 and an RSA host key, like most servers; paramiko asks for ed25519."""
    rsa_host_key = ssh_keys.other_user_key  # any RSA key will do as a second host key
    with run_sshd(tmp_path, ssh_keys, extra_host_keys=[rsa_host_key]) as server:
        yield server


def _keyscan_lines(server: LocalServer) -> list[str]:
    """What the README tells users to run: ``ssh-keyscan -p PORT HOST | ssh-keygen -lf -``."""
    scan = subprocess.run(
        ["ssh-keyscan", "-p", str(server.port), str(server.host)], capture_output=True, text=True, timeout=30
    ).stdout
    listing = subprocess.run(
        ["ssh-keygen", "-lf", "-"], input=scan, capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return [line for line in listing.splitlines() if "SHA256:" in line]


@pytest.mark.parametrize("form", ["bare fingerprint", "whole ssh-keygen line", "in a list"])
def test_a_pinned_host_key_of_any_type_the_server_holds_is_accepted(
    two_key_sshd: LocalServer, tmp_path: Path, form: str
) -> None:
    # Issue 11 B4: pinning the RSA line that ssh-keyscan prints failed with "host key
    # ssh-ed25519 ... does not match", because paramiko asks for ed25519 first.
    lines = _keyscan_lines(two_key_sshd)
    rsa_line = next(line for line in lines if line.endswith("(RSA)"))
    fingerprint = rsa_line.split()[1]
    assert fingerprint != two_key_sshd.host_key_fingerprint  # not the key paramiko sees first
    pin: str | tuple[str, ...] = {
        "bare fingerprint": fingerprint,
        "whole ssh-keygen line": rsa_line,
        "in a list": ("SHA256:" + "B" * 43, fingerprint),
    }[form]
    local = make_file(tmp_path, "r.jpg", 5000)
    with open_transport(settings_for(two_key_sshd, host_key=pin, known_hosts=None)) as transport:
        assert transport.put(local, "r.jpg").verified
    assert (two_key_sshd.root / "r.jpg").read_bytes() == local.read_bytes()


def test_a_pin_matching_none_of_the_servers_keys_is_refused_naming_the_key_it_showed(
    two_key_sshd: LocalServer,
) -> None:
    settings = settings_for(two_key_sshd, host_key=["SHA256:" + "C" * 43], known_hosts=None)
    with pytest.raises(TrustError) as caught:
        open_transport(settings).connect()
    assert two_key_sshd.host_key_fingerprint in str(caught.value)
    assert "userauth-request" not in two_key_sshd.log_text()


def test_the_host_key_in_known_hosts_is_accepted(sshd_server: LocalServer, tmp_path: Path) -> None:
    local = make_file(tmp_path, "k.jpg", 1000)
    settings = settings_for(sshd_server, host_key=None, known_hosts=sshd_server.known_hosts)
    with open_transport(settings) as transport:
        assert transport.put(local, "k.jpg").verified


def test_a_changed_host_key_in_known_hosts_is_refused(sshd_server: LocalServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    other_public = Path(str(sshd_server.extra["other_user_key"]) + ".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{sshd_server.port} {other_public[0]} {other_public[1]}\n")
    # An entry of the same type as the server's key, but another key: "changed".
    ed25519 = Path(str(sshd_server.key_file) + ".pub").read_text().split()
    known_hosts.write_text(
        known_hosts.read_text() + f"[127.0.0.1]:{sshd_server.port} {ed25519[0]} {ed25519[1]}\n"
    )
    settings = settings_for(sshd_server, host_key=None, known_hosts=known_hosts)
    with pytest.raises(TrustError, match="differs"):
        open_transport(settings).connect()
    assert "userauth-request" not in wait_for_log(
        sshd_server, r"Connection (closed|reset) by|Disconnected from"
    )


def test_a_host_missing_from_known_hosts_is_refused(sshd_server: LocalServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    with pytest.raises(TrustError, match="not in known_hosts"):
        open_transport(settings_for(sshd_server, host_key=None, known_hosts=known_hosts)).connect()


def test_sftp_without_host_key_or_known_hosts_is_refused_with_a_hint(sshd_server: LocalServer) -> None:
    with pytest.raises(TrustError) as caught:
        open_transport(settings_for(sshd_server, host_key=None, known_hosts=None)).connect()
    assert f"ssh-keyscan -p {sshd_server.port} 127.0.0.1 | ssh-keygen -lf -" in str(caught.value)
    assert "userauth-request" not in sshd_server.log_text()


# -- ProFTPD mod_sftp: another SSH server than OpenSSH ---------------------------------------------


def test_a_wrong_password_on_mod_sftp_is_an_auth_error_without_the_password_in_it(
    proftpd_sftp_server: LocalServer,
) -> None:
    wrong = "not-the-password-9012"
    with pytest.raises(AuthError) as caught:
        open_transport(settings_for(proftpd_sftp_server, password=Secret(wrong))).connect()
    assert not caught.value.retryable
    assert wrong not in str(caught.value)


def test_a_wrong_pinned_host_key_on_mod_sftp_is_refused_before_any_authentication(
    thirdparty: ThirdPartyServers,
) -> None:
    server = thirdparty.start("proftpd-sftp")  # its own: the log holds this test's session only
    settings = settings_for(
        server, host_key="SHA256:" + "A" * 43, password=Secret("would-be-leaked-password")
    )
    with pytest.raises(TrustError) as caught:
        open_transport(settings).connect()
    assert server.host_key_fingerprint in str(caught.value)
    log = wait_for_log(server, r"mod_sftp.*disconnecting client")
    commands = server.commands()
    assert "KEXINIT" in commands  # the trace does record the session
    assert "USERAUTH_REQUEST" not in commands and "PASS" not in commands
    assert "authenticated" not in log


def test_mod_sftp_host_keys_in_known_hosts_are_accepted(
    proftpd_sftp_server: LocalServer, tmp_path: Path
) -> None:
    local = make_file(tmp_path, "k.jpg", 1000)
    settings = settings_for(proftpd_sftp_server, host_key=None, known_hosts=proftpd_sftp_server.known_hosts)
    with open_transport(settings) as transport:
        assert transport.put(local, "k.jpg").verified
    assert (proftpd_sftp_server.root / "k.jpg").read_bytes() == local.read_bytes()


def test_a_pinned_rsa_host_key_of_a_server_that_also_has_ed25519_is_accepted(
    proftpd_sftp_server: LocalServer, tmp_path: Path
) -> None:
    # The documented `ssh-keyscan ... | ssh-keygen -lf -` lists the RSA key first: a user pins that.
    local = make_file(tmp_path, "rsa.jpg", 1000)
    settings = settings_for(proftpd_sftp_server, host_key=proftpd_sftp_server.extra["rsa_fingerprint"])
    with open_transport(settings) as transport:
        assert transport.put(local, "rsa.jpg").verified
    assert (proftpd_sftp_server.root / "rsa.jpg").read_bytes() == local.read_bytes()


# -- trust: FTPS certificates --------------------------------------------------------------------


@on_servers(FTPS_SERVERS)
def test_an_untrusted_certificate_is_refused_before_user_and_pass(
    server: LocalServer, untrusted_ca: Path
) -> None:
    with pytest.raises(TrustError):
        open_transport(settings_for(server, ca_file=untrusted_ca)).connect()
    # The log can trail the session (Pure-FTPd's goes through the tests' syslog sink thread).
    commands = wait_for(
        lambda: server.commands() if "AUTH" in server.commands() else None, what="AUTH logged"
    )
    assert "AUTH" in commands  # the server log does record commands
    assert "USER" not in commands and "PASS" not in commands


def test_ftps_never_falls_back_to_plain_ftp(ftp_server: LocalServer) -> None:
    settings = settings_for(ftp_server, protocol="ftps")
    with pytest.raises(TransportError) as caught:
        open_transport(settings).connect()
    assert not caught.value.retryable
    assert "PASS" not in ftp_server.commands() and "USER" not in ftp_server.commands()


def test_stock_ftplib_fails_against_vsftpd_session_reuse_while_ours_succeeds(
    vsftpd_server: LocalServer, tmp_path: Path
) -> None:
    # Negative control: shows that vsftpd really requires TLS session reuse on data connections.
    context = ssl.create_default_context(cafile=str(vsftpd_server.ca_file))
    stock = ftplib.FTP_TLS(context=context, timeout=10)
    stock.connect(vsftpd_server.host, vsftpd_server.port)
    stock.auth()
    stock.login(vsftpd_server.username, vsftpd_server.password)
    stock.prot_p()
    stock.cwd(vsftpd_server.remote_dir)
    with pytest.raises((ftplib.error_perm, ftplib.error_temp), match=r"522|425"):
        stock.storbinary("STOR stock.jpg", io.BytesIO(b"x" * 1000))
    stock.close()

    local = make_file(tmp_path, "ours.jpg", 100_000)
    with open_transport(settings_for(vsftpd_server)) as transport:
        assert transport.put(local, "ours.jpg").verified
    assert (vsftpd_server.root / "ours.jpg").read_bytes() == local.read_bytes()


def test_stock_ftplib_fails_against_proftpd_session_reuse_while_ours_succeeds(
    proftpd_ftps_server: LocalServer, tmp_path: Path
) -> None:
    # Negative control: ProFTPD's mod_tls requires TLS session reuse on data connections by default.
    server = proftpd_ftps_server
    context = ssl.create_default_context(cafile=str(server.ca_file))
    stock = ftplib.FTP_TLS(context=context, timeout=10)
    stock.connect(server.host, server.port)
    stock.auth()
    stock.login(server.username, server.password)
    stock.prot_p()
    stock.cwd(server.remote_dir)
    with pytest.raises((ftplib.error_perm, ftplib.error_temp, OSError)) as caught:
        stock.storbinary("STOR stock.jpg", io.BytesIO(b"x" * 1000))
    stock.close()
    assert "did not reuse TLS session" in wait_for_log(server, "did not reuse TLS session"), caught.value

    local = make_file(tmp_path, "ours.jpg", 100_000)
    with open_transport(settings_for(server)) as transport:
        assert transport.put(local, "ours.jpg").verified
    assert (server.root / "ours.jpg").read_bytes() == local.read_bytes()


def test_a_tls_data_close_without_close_notify_after_226_is_not_a_failure(
    ftps_server: LocalServer, tmp_path: Path
) -> None:
    ftps_server.extra["ftpd"].tls_data_close_notify = False
    # Negative control: stock ftplib treats the missing close_notify as a failed upload.
    context = ssl.create_default_context(cafile=str(ftps_server.ca_file))
    stock = ftplib.FTP_TLS(context=context, timeout=10)
    stock.connect(ftps_server.host, ftps_server.port)
    stock.login(ftps_server.username, ftps_server.password)
    stock.prot_p()
    with pytest.raises(OSError):
        stock.storbinary("STOR stock.jpg", io.BytesIO(b"x" * 100_000))
    stock.close()

    local = make_file(tmp_path, "ours.jpg", 100_000)
    messages: list[str] = []
    sink = logger.add(messages.append, level="DEBUG", format="{message}")
    try:
        with open_transport(settings_for(ftps_server)) as transport:
            assert transport.put(local, "ours.jpg").verified
            assert transport.put(local, "again.jpg").verified  # the session is still in step
    finally:
        logger.remove(sink)
    assert (ftps_server.root / "ours.jpg").read_bytes() == local.read_bytes()
    assert any("TLS unwrap after the data failed" in message for message in messages)


def test_two_local_ftp_servers_in_one_process_keep_their_sessions_apart(
    ftp_server: LocalServer, ftps_server: LocalServer, tmp_path: Path
) -> None:
    # The demo runs FTP and FTPS side by side; pyftpdlib's default IOLoop is process-wide.
    local = make_file(tmp_path, "both.jpg", 3 * 1024 * 1024)
    with open_transport(settings_for(ftp_server)) as plain, open_transport(settings_for(ftps_server)) as tls:
        for index in range(3):
            assert plain.put(local, f"{index}.jpg").verified
            assert tls.put(local, f"{index}.jpg").verified
    assert remote_files(ftp_server.root) == remote_files(ftps_server.root) == ["0.jpg", "1.jpg", "2.jpg"]


# -- folder specifics ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected", "retryable"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), TransportError, False),
        (OSError(errno.EROFS, "Read-only file system"), TransportError, False),
        (OSError(errno.ENOSPC, "No space left on device"), QuotaError, False),
        (OSError(errno.EIO, "Input/output error"), TransportError, True),
    ],
    ids=["denied", "read-only", "full", "io-error"],
)
def test_folder_write_errors_are_classified_and_leave_no_part_file(
    folder_target: LocalServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: OSError,
    expected: type[TransportError],
    retryable: bool,
) -> None:
    # Injected after the temp file exists: root (as in CI) cannot be denied by chmod.
    def failing_copy(source: object, target: Path, progress: object) -> int:
        target.write_bytes(b"half")
        raise error

    monkeypatch.setattr(folder_transport, "_copy", failing_copy)
    local = make_file(tmp_path, "w.jpg", 100)
    with open_transport(settings_for(folder_target)) as transport, pytest.raises(TransportError) as caught:
        transport.put(local, "w.jpg")
    assert type(caught.value) is expected
    assert caught.value.retryable is retryable
    if error.errno in (errno.EACCES, errno.EROFS):
        assert str(folder_target.root) in str(caught.value)  # the hint names the directory
    assert remote_files(folder_target.root) == []


def test_a_missing_folder_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    server = LocalServer(name="folder", protocol="folder", root=missing, remote_dir="/")
    with pytest.raises(TransportError):
        open_transport(settings_for(server)).connect()
    assert not missing.exists()


# -- reply codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "command", "error_type", "retryable"),
    [
        ("421 Service not available, closing control connection.", "STOR", TransportError, True),
        ("421 There are too many connected users, please try later.", "login", TransportError, True),
        ("425 Can't open data connection.", "STOR", TransportError, True),
        ("426 Connection closed; transfer aborted.", "STOR", TransportError, True),
        ("450 File unavailable.", "STOR", TransportError, True),
        ("451 Local error in processing.", "STOR", TransportError, True),
        ("452 Insufficient storage space.", "STOR", QuotaError, False),
        ("552 Exceeded storage allocation.", "STOR", QuotaError, False),
        ("530 Login incorrect.", "login", AuthError, False),
        ("532 Need account for storing files.", "STOR", AuthError, False),
        (
            "530 Sorry, the maximum number of clients (5) from your host are already connected.",
            "login",
            TransportError,
            True,
        ),
        ("550 Permission denied.", "STOR", RemoteRejectedError, False),
        ("550 Not a plain file.", "STOR", RemoteRejectedError, False),
        # The server's words decide where codes disagree across servers (issue 11).
        ("552 Transfer aborted. File too large", "STOR", RemoteRejectedError, False),
        ("552 Quota exceeded", "STOR", QuotaError, False),
        ("451 Transfer aborted. Input/output error", "STOR", QuotaError, False),
        ("451-Error during write to file\n451 Transfer aborted", "STOR", QuotaError, False),
        ("452 No space left on device", "STOR", QuotaError, False),
        ("550 Rename failed.", "RNTO", RemoteRejectedError, False),
        ("553 Could not create file.", "STOR", RemoteRejectedError, False),
        ("553 File name not allowed.", "RNTO", RemoteRejectedError, False),
        ("550 Failed to change directory.", "CWD", TransportError, False),
        ("502 Command not implemented.", "SIZE", TransportError, False),
        ("522 SSL connection failed: session reuse required", "STOR", TransportError, False),
        ("455 Some other transient thing.", "STOR", TransportError, True),
    ],
)
def test_ftp_replies_are_classified_once(
    reply: str, command: str, error_type: type[TransportError], retryable: bool
) -> None:
    error = error_for_reply(reply, command)
    assert type(error) is error_type
    assert error.retryable is retryable
    # The server's words reach the user, on one line.
    assert all(line[4:].strip() in str(error) for line in reply.splitlines())
    assert "\n" not in str(error)


def test_sftp_writes_in_the_size_the_server_advertises_unless_told_otherwise(
    sshd_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stockbridge.transports import sftp_protocol

    big = make_file(tmp_path, "big.jpg", 3_000_000, seed=7)
    # OpenSSH says (limits@openssh.com) it takes 261120-byte writes: 8x fewer requests than 32 KiB.
    with open_transport(settings_for(sshd_server)) as transport:
        assert transport._request_size == 261120
        assert transport.put(big, "a.jpg").verified
    # A setting wins over what the server says (for servers that advertise more than they take).
    with open_transport(settings_for(sshd_server, sftp_request_size=16384)) as transport:
        assert transport._request_size == 16384
        assert transport.put(big, "b.jpg").verified
    # A server that says nothing gets the 32 KiB every server takes.
    monkeypatch.setattr(sftp_protocol, "parse_extensions", lambda data: {})
    with open_transport(settings_for(sshd_server)) as transport:
        assert transport._request_size == 32 * 1024
        assert transport.put(big, "c.jpg").verified
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        assert (sshd_server.root / name).read_bytes() == big.read_bytes()


def test_an_ftp_upload_slower_than_the_timeout_arrives_because_the_timeout_means_no_progress(
    tmp_path: Path,
) -> None:
    # A home uplink: 1.2 MB at ~200 KB/s is ~6 s, three times the 2 s timeout. send() hands the
    # whole file to the kernel at once; the transport must then wait while the bytes keep leaving
    # (not time out on the 226), and close only with a tail the link clears within the timeout.
    from stockbridge.demo.localserver import local_ftp_server

    root = tmp_path / "slow"
    big = make_file(tmp_path, "big.jpg", 1_200_000, seed=7)
    with local_ftp_server(root, tls=False, username="u", password="slow-pw", upload_limit=200_000) as ftpd:
        server = pyftpdlib_platform(ftpd, root)
        started = time.monotonic()
        with open_transport(settings_for(server, timeout=2.0, atomic_rename=False)) as transport:
            result = transport.put(big, "big.jpg")
        elapsed = time.monotonic() - started
    assert result.verified
    assert (root / "big.jpg").read_bytes() == big.read_bytes()
    assert elapsed > 3.0, f"the throttle did not slow the upload ({elapsed:.1f} s), so this proves nothing"


# -- how an upload is verified ------------------------------------------------------------------

#: What each server can prove about a stored file (issue 11): ProFTPD hashes it (mod_digest over FTP,
#: check-file-name over SFTP); pyftpdlib, vsftpd, Pure-FTPd and OpenSSH report only its size.
VERIFIED_BY = {
    "ftp": "size",
    "ftps": "size",
    "ftps-vsftpd": "size",
    "sftp": "size",
    "folder": "size",
    "proftpd-ftp": "sha256",
    "proftpd-ftps": "sha256",
    "proftpd-sftp": "sha256",
    "pureftpd-ftp": "size",
    "pureftpd-ftps": "size",
}


@on_servers(ALL_SERVERS)
def test_each_upload_says_how_the_server_proved_it_has_the_file(
    server: LocalServer, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    local = make_file(tmp_path, "proof.jpg", 700_000, seed=3)
    with open_transport(settings_for(server)) as transport:
        first = transport.put(local, "proof.jpg")
        second = transport.put(local, "again.jpg")  # the session remembers what the server offers
    expected = VERIFIED_BY[request.node.callspec.params["server"]]
    assert (first.verified_by, second.verified_by) == (expected, expected)


def test_a_stored_file_whose_hash_differs_from_what_was_sent_is_not_uploaded(tmp_path: Path) -> None:
    # Size alone is no proof (issue 11 B1: holes of zeros of the right size). A server that hashes
    # the stored file and gets another hash than ours has a different file: the upload fails,
    # retryable, and nothing stays under the final name. No real server lies about a hash, so
    # pyftpdlib is made to.
    pytest.importorskip("pyftpdlib")
    from stockbridge.demo.localserver import FTPServerThread

    class LyingServer(FTPServerThread):
        def _handler_class(self) -> Any:
            base = super()._handler_class()

            class Handler(base):  # type: ignore[misc,valid-type]
                proto_cmds = {  # noqa: RUF012  (pyftpdlib reads it as a class attribute)
                    **base.proto_cmds,
                    "XSHA256": {"perm": "r", "auth": True, "arg": True, "help": "XSHA256 <file>"},
                }

                def ftp_FEAT(self, line: str) -> None:
                    self.push("211-Features:\r\n SIZE\r\n XSHA256\r\n211 End\r\n")

                def ftp_XSHA256(self, path: str) -> None:
                    self.respond("250 " + "AB" * 32)

            return Handler

    root = tmp_path / "root"
    root.mkdir()
    ftpd = LyingServer(root=root, tls=False, username="u", password="p")
    ftpd.start()
    try:
        server = pyftpdlib_platform(ftpd, root)
        local = make_file(tmp_path, "holes.jpg", 200_000)
        with (
            open_transport(settings_for(server, atomic_rename=True)) as transport,
            pytest.raises(TransportError) as caught,
        ):
            transport.put(local, "holes.jpg")
    finally:
        ftpd.stop()
    assert caught.value.retryable
    assert "different sha256" in str(caught.value)
    assert remote_files(root) == [], "neither the final nor the temporary name stays"


def test_an_sftp_port_nobody_listens_on_says_connection_refused(tmp_path: Path) -> None:
    # Was: "connection lost ([Errno 111] Connection refused)" (issue 11, cosmetic).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: every connect is refused
        settings = TransportSettings(
            platform="p",
            protocol="sftp",
            host="127.0.0.1",
            port=port,
            username="u",
            password=Secret("never-sent"),
            host_key="SHA256:" + "A" * 43,
            timeout=10.0,
        )
        with pytest.raises(TransportError) as caught:
            open_transport(settings).connect()
    assert "connection refused" in str(caught.value)
    assert "connection lost" not in str(caught.value)
    assert caught.value.retryable
