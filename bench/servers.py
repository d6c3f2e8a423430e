"""Local servers for the benchmark, on 127.0.0.1 only: pyftpdlib FTP and FTPS, vsftpd FTPS
(``require_ssl_reuse=YES``, its default) and OpenSSH sshd (internal-sftp, throwaway keys).

The same recipes as tests/servers.py (which bench/ must not import: it needs pytest). External
daemons run in their own process group and are stopped by the PID we got; readiness is a bounded
banner probe. Everything is entered through :class:`contextlib.ExitStack` in ``run.py`` so every
server stops in a ``finally``.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import ftpd_child
from stockbridge.config.secrets import Secret
from stockbridge.demo.localserver import READY_TIMEOUT, start_daemon, stop_process_group, vsftpd_config
from stockbridge.transports.base import TransportSettings


@dataclass
class Server:
    """What a client needs to reach one server, and where its files land locally."""

    name: str  # "ftp", "ftps", "ftps-vsftpd", "sftp"
    protocol: str  # "ftp", "ftps", "sftp"
    root: Path  # local directory behind remote_dir: the benchmark verifies uploads here
    remote_dir: str
    host: str
    port: int
    username: str
    password: str | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    host_key: str | None = None
    known_hosts: Path | None = None
    pid: int | None = None  # external daemons only

    def settings(self, **overrides: object) -> TransportSettings:
        values: dict[str, object] = {
            "platform": f"bench-{self.name}",
            "protocol": self.protocol,
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": Secret(self.password) if self.password else None,
            "key_file": self.key_file,
            "remote_dir": self.remote_dir,
            "ca_file": self.ca_file,
            "host_key": self.host_key,
            "timeout": 30.0,
            # The product's defaults (config.PlatformConfig.effective_atomic_rename).
            "atomic_rename": self.protocol == "sftp",
        }
        values.update(overrides)
        return TransportSettings(**values)  # type: ignore[arg-type]


@contextlib.contextmanager
def _daemon(command: Callable[[int], list[str]], banner: bytes, log: Path) -> Iterator[tuple[int, int]]:
    """Start ``command(port)`` on a free port, yield (port, pid), stop it by its PID."""
    process, port = start_daemon(command, banner, log)
    try:
        yield port, process.pid
    finally:
        stop_process_group(process)


def _binary(path: str) -> str:
    if Path(path).exists():
        return path
    found = shutil.which(Path(path).name)
    if found is None:
        raise RuntimeError(f"{Path(path).name} is not installed (make bench installs it as root)")
    return found


@contextlib.contextmanager
def pyftpdlib_server(
    base: Path, *, tls: bool, cert: tuple[Path, Path], upload_limit: int | None = None
) -> Iterator[Server]:
    """pyftpdlib in a child process (``bench.ftpd_child``): in this process it would share a GIL
    with stockbridge's client, which lftp and curl (processes of their own) do not."""
    root = base / ("ftps-root" if tls else "ftp-root")
    root.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = cert if tls else (None, None)
    command = [
        sys.executable,
        "-m",
        "bench.ftpd_child",
        str(root),
        "1" if tls else "0",
        str(certfile) if certfile else "-",
        str(keyfile) if keyfile else "-",
        str(upload_limit) if upload_limit else "-",
    ]
    with (base / f"{root.name}.log").open("ab") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            cwd=Path(__file__).resolve().parent.parent,
            start_new_session=True,
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
        line = process.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"bench.ftpd_child did not start (exit code {process.poll()})")
        port = int(json.loads(line)["port"])
        yield Server(
            name="ftps" if tls else "ftp",
            protocol="ftps" if tls else "ftp",
            root=root,
            remote_dir="/",
            host="127.0.0.1",
            port=port,
            username=ftpd_child.USERNAME,
            password=ftpd_child.PASSWORD,
            ca_file=certfile,
            pid=process.pid,
        )
    finally:
        stop_process_group(process)


@contextlib.contextmanager
def vsftpd_server(base: Path, cert: tuple[Path, Path]) -> Iterator[Server]:
    """vsftpd, explicit FTPS, ``require_ssl_reuse=YES``; anonymous uploads into ``base/root``."""
    binary = _binary("/usr/sbin/vsftpd")
    base.mkdir(parents=True, exist_ok=True)
    root, empty = base / "root", base / "empty"
    root.mkdir(exist_ok=True)
    empty.mkdir(exist_ok=True)
    certfile, keyfile = cert

    def command(port: int) -> list[str]:
        config = base / "vsftpd.conf"
        config.write_text(vsftpd_config(port, root, empty, certfile, keyfile, ["xferlog_enable=NO"]))
        return [binary, str(config)]

    with _daemon(command, b"220", base / "vsftpd.out") as (port, pid):
        yield Server(
            name="ftps-vsftpd",
            protocol="ftps",
            root=root,
            remote_dir=str(root),  # no chroot: the client sees real absolute paths
            host="127.0.0.1",
            port=port,
            username="anonymous",
            password="bench@example.com",
            ca_file=certfile,
            pid=pid,
        )


def _ssh_keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stockbridge-bench", "-f", str(path)],
        check=True,
        timeout=30,
    )


@dataclass
class SshdFiles:
    """Throwaway keys and files for one sshd: host key, user key, authorized_keys."""

    base: Path
    host_key: Path
    user_key: Path
    authorized_keys: Path
    fingerprint: str  # SHA256:... of the host key

    def config(self, listen: str, port: int) -> str:
        """sshd_config: internal-sftp, key login as the current user only."""
        lines = [
            f"Port {port}",
            f"ListenAddress {listen}",
            f"HostKey {self.host_key}",
            f"PidFile {self.base / f'sshd-{port}.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"AllowUsers {getpass.getuser()}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "Subsystem sftp internal-sftp",
            "LogLevel ERROR",
            "",
        ]
        return "\n".join(lines)

    def known_hosts(self, host: str, port: int) -> Path:
        """A known_hosts file naming this host key at ``[host]:port``."""
        path = self.base / f"known_hosts-{port}"
        public = Path(f"{self.host_key}.pub").read_text().split()
        path.write_text(f"[{host}]:{port} {public[0]} {public[1]}\n")
        return path


def sshd_files(base: Path) -> SshdFiles:
    base.mkdir(parents=True, exist_ok=True)
    host_key, user_key = base / "host_ed25519", base / "user_ed25519"
    for key in (host_key, user_key):
        if not key.exists():
            _ssh_keygen(key)
    listing = subprocess.run(
        ["ssh-keygen", "-lf", f"{host_key}.pub"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    authorized_keys = base / "authorized_keys"
    authorized_keys.write_text(Path(f"{user_key}.pub").read_text())
    privsep = Path("/run/sshd")  # sshd refuses to start as root without it
    if os.geteuid() == 0 and not privsep.exists():
        privsep.mkdir(mode=0o755, parents=True, exist_ok=True)
    return SshdFiles(base, host_key, user_key, authorized_keys, listing.split()[1])


def sshd_binary() -> str:
    return _binary("/usr/sbin/sshd")


def vsftpd_binary() -> str:
    return _binary("/usr/sbin/vsftpd")


@contextlib.contextmanager
def sshd_server(base: Path) -> Iterator[Server]:
    """OpenSSH sshd (internal-sftp); key login as the current user with throwaway keys."""
    binary = sshd_binary()
    files = sshd_files(base)
    root = base / "root"
    root.mkdir(exist_ok=True)

    def command(port: int) -> list[str]:
        config = base / "sshd_config"
        config.write_text(files.config("127.0.0.1", port))
        return [binary, "-D", "-e", "-f", str(config)]

    with _daemon(command, b"SSH-", base / "sshd.log") as (port, pid):
        yield Server(
            name="sftp",
            protocol="sftp",
            root=root,
            remote_dir=str(root),
            host="127.0.0.1",
            port=port,
            username=getpass.getuser(),
            key_file=files.user_key,
            host_key=files.fingerprint,
            known_hosts=files.known_hosts("127.0.0.1", port),
            pid=pid,
        )
