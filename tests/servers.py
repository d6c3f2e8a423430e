"""Fixtures: real FTP/FTPS/SFTP servers on 127.0.0.1, started and stopped by the tests.

- ``ftp_server`` / ``ftps_server``: pyftpdlib (``stockbridge.localserver``) in a thread;
- ``vsftpd_server``: the system's vsftpd, FTPS only, with ``require_ssl_reuse=YES`` (its default,
  and what agencies run); anonymous login, because that is what works as root without creating
  system users. A banned anonymous password (``deny_email_enable``) gives us a refused login;
- ``sshd_server``: the system's OpenSSH sshd with throwaway host and user keys; the login user
  is the current user, by key (no system password is touched);
- ``folder_target``: a plain directory for the ``folder`` transport.

Every server object has ``protocol``, ``root`` (the local directory that ``remote_dir`` names on
the server) and what a client needs to reach it; :func:`settings_for` turns it into
``TransportSettings``. External programs run in their own process group, started here and
stopped by the PID we got; readiness is a bounded TCP probe, never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import posixpath
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stockbridge.config.secrets import Secret
from stockbridge.demo.localserver import (
    FTPServerThread,
    local_ftp_server,
    make_self_signed_cert,
    start_daemon,
    stop_process_group,
    vsftpd_config,
)
from stockbridge.transports.base import TransportSettings

#: The anonymous "password" vsftpd is told to refuse (banned_email_file): our wrong password.
VSFTPD_BANNED_PASSWORD = "wrong-password"


@dataclass
class LocalServer:
    """What a test needs to know about one running server (or target folder)."""

    name: str  # "ftp", "ftps", "ftps-vsftpd", "sftp", "folder"
    protocol: str
    root: Path  # the local directory behind remote_dir: tests look here for uploaded files
    remote_dir: str
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    host_key_fingerprint: str | None = None
    known_hosts: Path | None = None
    log_path: Path | None = None
    #: FTP servers: the command verbs received so far, in order.
    commands: Callable[[], list[str]] = field(default=lambda: [])
    extra: dict[str, Any] = field(default_factory=dict)

    def log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def remote_path(self, *parts: str) -> str:
        """``remote_dir`` joined with ``parts``, as a client names it."""
        return posixpath.join(self.remote_dir, *parts)


def settings_for(server: LocalServer, **overrides: Any) -> TransportSettings:
    """TransportSettings that reach ``server``; keyword arguments replace any field."""
    values: dict[str, Any] = {
        "platform": f"test-{server.name}",
        "protocol": server.protocol,
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "password": Secret(server.password) if server.password else None,
        "key_file": server.key_file,
        "remote_dir": server.remote_dir,
        "path": server.root if server.protocol == "folder" else None,
        "ca_file": server.ca_file,
        "host_key": server.host_key_fingerprint,
        # Short, so a hang fails the test quickly instead of at pytest-timeout.
        "timeout": 10.0,
    }
    values.update(overrides)
    return TransportSettings(**values)


# -- helpers -------------------------------------------------------------------------------------


def _require_binary(path: str) -> str:
    if not Path(path).exists():
        found = shutil.which(Path(path).name)
        if found is None:
            pytest.skip(f"{Path(path).name} is not installed (CI installs it)")
        return found
    return path


# -- certificates and keys (shared by the whole session) -----------------------------------------


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(cert, key) of a self-signed certificate for 127.0.0.1; the cert is also the CA file."""
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def untrusted_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA file that does not vouch for the test servers' certificate."""
    cert, _ = make_self_signed_cert(tmp_path_factory.mktemp("tls-other"))
    return cert


@dataclass(frozen=True)
class SSHKeys:
    host_key: Path
    host_key_fingerprint: str
    user_key: Path
    other_user_key: Path  # not authorised anywhere: the "wrong key"


def _ssh_keygen(path: Path, key_type: str = "ed25519") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", "stockbridge-test", "-f", str(path)],
        check=True,
        timeout=30,
    )


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> SSHKeys:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (CI installs openssh)")
    directory = tmp_path_factory.mktemp("ssh-keys")
    host_key, user_key, other = (
        directory / "host_ed25519",
        directory / "user_ed25519",
        directory / "other_rsa",
    )
    _ssh_keygen(host_key)
    _ssh_keygen(user_key)
    _ssh_keygen(other, "rsa")
    # The fingerprint as OpenSSH prints it: an oracle independent of our own code.
    listing = subprocess.run(
        ["ssh-keygen", "-lf", str(host_key) + ".pub"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    return SSHKeys(host_key, listing.split()[1], user_key, other)


# -- pyftpdlib -----------------------------------------------------------------------------------


def pyftpdlib_platform(ftpd: FTPServerThread, root: Path) -> LocalServer:
    """The LocalServer of a pyftpdlib server serving ``root`` (also one a test started itself:
    throttled, two at once, ...)."""
    protocol = "ftps" if ftpd.tls else "ftp"
    return LocalServer(
        name=protocol,
        protocol=protocol,
        root=root,
        remote_dir="/",
        host=ftpd.host,
        port=ftpd.port,
        username=ftpd.username,
        password=ftpd.password,
        ca_file=ftpd.ca_file,
        commands=lambda: list(ftpd.commands),
        extra={"ftpd": ftpd},  # tests set ftpd.ingest to play an agency's ingest robot
    )


def _pyftpdlib_server(tmp_path: Path, tls: bool, tls_cert: tuple[Path, Path]) -> Iterator[LocalServer]:
    pytest.importorskip("pyftpdlib", reason="pip install 'stockbridge[demo]'")
    root = tmp_path / "ftp-root"
    certfile, keyfile = tls_cert if tls else (None, None)
    with local_ftp_server(
        root, tls=tls, username="photographer", password="s3cret-pass", certfile=certfile, keyfile=keyfile
    ) as ftpd:
        yield pyftpdlib_platform(ftpd, root)


@pytest.fixture
def ftp_server(tmp_path: Path, tls_cert: tuple[Path, Path]) -> Iterator[LocalServer]:
    """Plain FTP (pyftpdlib)."""
    yield from _pyftpdlib_server(tmp_path, False, tls_cert)


@pytest.fixture
def ftps_server(tmp_path: Path, tls_cert: tuple[Path, Path]) -> Iterator[LocalServer]:
    """Explicit FTPS (pyftpdlib), TLS required on control and data connections."""
    yield from _pyftpdlib_server(tmp_path, True, tls_cert)


# -- vsftpd --------------------------------------------------------------------------------------


def _vsftpd_commands(log: Path) -> list[str]:
    # log_ftp_protocol lines: ... FTP command: Client "127.0.0.1", "USER anonymous"
    verbs = []
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        if "FTP command:" in line:
            quoted = line.rsplit(', "', 1)[-1].rstrip('"')
            verbs.append(quoted.split(" ", 1)[0].upper())
    return verbs


@pytest.fixture
def vsftpd_server(tmp_path: Path, tls_cert: tuple[Path, Path]) -> Iterator[LocalServer]:
    """vsftpd, explicit FTPS with require_ssl_reuse=YES; anonymous uploads into a tmp root."""
    binary = _require_binary("/usr/sbin/vsftpd")
    base = tmp_path / "vsftpd"
    root, empty = base / "root", base / "empty"
    root.mkdir(parents=True)
    empty.mkdir()
    banned = base / "banned"
    banned.write_text(VSFTPD_BANNED_PASSWORD + "\n")
    log, protocol_log = base / "vsftpd.out", base / "vsftpd.log"
    certfile, keyfile = tls_cert

    def command(port: int) -> list[str]:
        config = base / "vsftpd.conf"
        extra = [
            "deny_email_enable=YES",  # our "wrong password": a banned anonymous password
            f"banned_email_file={banned}",
            "xferlog_enable=YES",
            "xferlog_std_format=NO",
            "log_ftp_protocol=YES",
            f"vsftpd_log_file={protocol_log}",
        ]
        config.write_text(vsftpd_config(port, root, empty, certfile, keyfile, extra))
        return [binary, str(config)]

    process, port = start_daemon(command, b"220", log)
    try:
        yield LocalServer(
            name="ftps-vsftpd",
            protocol="ftps",
            root=root,
            remote_dir=str(root),
            host="127.0.0.1",
            port=port,
            username="anonymous",
            password="uploader@example.com",
            ca_file=certfile,
            log_path=protocol_log,
            commands=lambda: _vsftpd_commands(protocol_log),
        )
    finally:
        stop_process_group(process)


# -- OpenSSH sshd --------------------------------------------------------------------------------


@pytest.fixture
def sshd_server(tmp_path: Path, ssh_keys: SSHKeys) -> Iterator[LocalServer]:
    """OpenSSH sshd (internal-sftp) logging at DEBUG1 to ``log_path``; key login as the current user."""
    with run_sshd(tmp_path, ssh_keys) as server:
        yield server


@contextlib.contextmanager
def run_sshd(
    tmp_path: Path, ssh_keys: SSHKeys, extra_host_keys: Sequence[Path] = (), sftp_log: bool = False
) -> Iterator[LocalServer]:
    """An sshd as ``sshd_server`` describes; ``extra_host_keys``: more host keys it holds (a real
    server has an ed25519, an ECDSA and an RSA key, and shows one per connection). ``sftp_log``:
    OpenSSH's sftp-server program instead of internal-sftp, logging every file it closes with the
    bytes written (``close "…" bytes read 0 written N``) to ``extra["sftp_log"]``."""
    binary = _require_binary("/usr/sbin/sshd")
    user = getpass.getuser()
    base = tmp_path / "sshd"
    root = base / "root"
    root.mkdir(parents=True)
    authorized_keys = base / "authorized_keys"
    authorized_keys.write_text((ssh_keys.user_key.with_suffix(".pub")).read_text())
    log = base / "sshd.log"
    privsep = Path("/run/sshd")  # sshd refuses to start as root without its privsep directory
    if os.geteuid() == 0 and not privsep.exists():
        privsep.mkdir(mode=0o755, parents=True, exist_ok=True)

    def command(port: int) -> list[str]:
        config = base / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {ssh_keys.host_key}",
                    *(f"HostKey {key}" for key in extra_host_keys),
                    f"PidFile {base / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized_keys}",
                    f"AllowUsers {user}",
                    "PubkeyAuthentication yes",
                    # On, so a wrong password is refused by the server (not by our client);
                    # root gets prohibit-password, other users have no password we know.
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",
                    f"Subsystem sftp {_SFTP_SERVER} -e -l INFO 2>>{base / 'sftp.log'}"
                    if sftp_log
                    else "Subsystem sftp internal-sftp",
                    # DEBUG1 logs every "userauth-request": the proof that none was made.
                    "LogLevel DEBUG1",
                    "",
                ]
            )
        )
        # An absolute path: sshd re-executes itself for every connection.
        return [binary, "-D", "-e", "-f", str(config)]

    process, port = start_daemon(command, b"SSH-", log)
    known_hosts = base / "known_hosts"
    public_key = ssh_keys.host_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {public_key[0]} {public_key[1]}\n")
    try:
        yield LocalServer(
            name="sftp",
            protocol="sftp",
            root=root,
            remote_dir=str(root),
            host="127.0.0.1",
            port=port,
            username=user,
            key_file=ssh_keys.user_key,
            host_key_fingerprint=ssh_keys.host_key_fingerprint,
            known_hosts=known_hosts,
            log_path=log,
            extra={"other_user_key": ssh_keys.other_user_key, "sftp_log": base / "sftp.log"},
        )
    finally:
        stop_process_group(process)


#: OpenSSH's sftp-server program (what internal-sftp is built from), for a log of its own.
_SFTP_SERVER = "/usr/lib/openssh/sftp-server"


# -- folder --------------------------------------------------------------------------------------


@pytest.fixture
def folder_target(tmp_path: Path) -> LocalServer:
    root = tmp_path / "folder-target"
    root.mkdir()
    return LocalServer(name="folder", protocol="folder", root=root, remote_dir="/")
