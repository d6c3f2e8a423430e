"""A batch verified with one listing (transports/listing.py), on real servers: the listing proves
the files it shows at full size under their final names, and a file the server holds with fewer
bytes than it confirmed is caught and removed, never counted as uploaded. Where the server refuses
to list the folder (a write-only upload folder), each file's size is asked as before."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from stockbridge.transports import PutResult, open_transport
from stockbridge.transports.base import ArrivedShort
from stockbridge.transports.sftp import SFTPTransport
from tests.servers import LocalServer, settings_for
from tests.thirdparty import Fault, ThirdPartyServers
from tests.waiting import wait_for

_FIXTURE = {
    "ftp": "ftp_server",
    "ftps-vsftpd": "vsftpd_server",
    "sftp": "sshd_server",
    "proftpd-ftps": "proftpd_ftps_server",
    "pureftpd-ftps": "pureftpd_ftps_server",
}
#: How the files the listing shows are recorded: ProFTPD hashes each stored file (mod_digest), and
#: that proof stays; the others have only sizes, which the listing gives.
_PROOF = {"proftpd-ftps": "sha256"}
_LISTINGS = {"MLSD", "LIST"}


@pytest.fixture
def server(request: pytest.FixtureRequest) -> LocalServer:
    return request.getfixturevalue(_FIXTURE[request.param])


def _files(directory: Path, count: int) -> list[Path]:
    paths = []
    for index in range(count):
        path = directory / f"photo {index} ünï.jpg"  # a space and unicode, as users name files
        path.write_bytes(random.Random(index).randbytes(20_000 + index))
        paths.append(path)
    return paths


def _cut_short(root: Path, name: str, size: int) -> None:
    """The server keeps fewer bytes than it confirmed (a disk fault, a robot that truncates)."""
    with (root / name).open("r+b") as handle:
        handle.truncate(size)


@pytest.mark.parametrize("server", sorted(_FIXTURE), indirect=True)
def test_one_listing_verifies_a_batch_and_catches_a_file_the_server_cut_short(
    server: LocalServer, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if server.protocol == "sftp":
        # As a server without posix-rename: files one at a time, checked by the listing. OpenSSH's
        # overlapped files are checked by a STAT after their rename (tests/integration/test_sftp_overlap.py).
        monkeypatch.setattr(SFTPTransport, "_posix_rename", property(lambda self: False))
    files = _files(tmp_path, 7)
    with open_transport(settings_for(server)) as transport:
        sent = [transport.put(path, path.name, verify=False) for path in files]
        assert all(result.pending and not result.verified for result in sent)
        _cut_short(server.root, files[3].name, 1000)
        before = len(server.commands())
        answers = transport.confirm(sent)
    short = answers[3]
    assert isinstance(short, ArrivedShort) and short.retryable
    assert "1000 of 20003 bytes" in str(short)
    proof = _PROOF.get(request.node.callspec.params["server"], "listing")
    kept = [answer for index, answer in enumerate(answers) if index != 3]
    assert kept == [PutResult(path.name, 20_000 + i, True, proof) for i, path in enumerate(files) if i != 3]
    assert sorted(p.name for p in server.root.iterdir()) == sorted(p.name for p in files if p != files[3])
    if server.protocol != "sftp":  # sshd logs no SFTP requests; the FTP servers log every command
        # A server's log can trail its answers (Pure-FTPd's did, once, under load): wait for the SIZE.
        wait_for(lambda: "SIZE" in server.commands()[before:], what=f"{server.name} to log the SIZE")
        commands = server.commands()[before:]
        assert sum(verb in _LISTINGS for verb in commands) == 1
        assert commands.count("SIZE") == 1, "only the file the listing did not prove is asked"


@pytest.mark.parametrize("kind", ["proftpd-ftp", "proftpd-sftp"])
def test_where_the_server_refuses_listings_each_files_size_decides(
    thirdparty: ThirdPartyServers, kind: str, tmp_path: Path
) -> None:
    server = thirdparty.start(kind, Fault(no_listing=True))
    files = _files(tmp_path, 7)
    with open_transport(settings_for(server)) as transport:
        assert transport.listed_sizes() is None
        sent = [transport.put(path, path.name, verify=False) for path in files]
        _cut_short(server.root, files[5].name, 10)
        before = len(server.commands())
        answers = transport.confirm(sent)
    assert isinstance(answers[5], ArrivedShort)
    assert all(isinstance(a, PutResult) and a.verified for i, a in enumerate(answers) if i != 5)
    assert not (server.root / files[5].name).exists()
    if server.protocol == "ftp":
        assert server.commands()[before:].count("SIZE") == 7
