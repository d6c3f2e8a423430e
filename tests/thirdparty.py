"""Fixtures: ProFTPD 1.3.8 and Pure-FTPd 1.0.50, unpacked into ``.servers/`` by ``.ci/system-deps test``.

Their Debian packages conflict with vsftpd (all provide ``ftp-server``), so they are never
installed: ``apt-get download`` + ``dpkg -x`` put them in ``.servers/`` and the tests run them from
there, as daemons on 127.0.0.1 on a free port, with a config file written into the test's tmp dir,
logging to ``log_path``, stopped by PID (``stop_process_group``).

- ``proftpd-ftp`` / ``proftpd-ftps`` / ``proftpd-sftp``: ProFTPD with ``mod_auth_file`` (a virtual
  user with a password, mapped to the current uid: ``RootLogin on`` when that is root),
  ``mod_digest`` (HASH, XSHA256, ...), ``mod_tls`` with session reuse required (its default) and
  ``mod_sftp`` (its own SSH server, not OpenSSH; Ed25519 and RSA host keys).
- ``pureftpd-ftp`` / ``pureftpd-ftps``: Pure-FTPd with a puredb virtual user. Pure-FTPd never lets
  a virtual user be root (``log_puredb.c`` refuses uid 0), so as root the user is ``nobody``,
  chrooted (``/./``) into a root it owns; that also makes plain permissions (a 0555 folder) bite.
  Pure-FTPd logs only to syslog: as root it runs in a mount namespace of its own whose ``/dev/log``
  is a socket this module reads into ``log_path``.

:class:`ThirdPartyServers` (fixture ``thirdparty``) starts one with a fault configured: a per-file
size limit, a quota, a small disk, a read-only folder, a folder that cannot be created, renames
refused; and kills or restarts it. The contract-suite fixtures (``proftpd_ftp_server``, ...) share
one daemon per module and give every test a fresh, empty home: both daemons read their user file at
each login, so a test's root is just a rewrite of that file.
"""

from __future__ import annotations

import contextlib
import getpass
import grp
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stockbridge.demo.localserver import free_port, stop_process_group, wait_for_banner
from tests.servers import LocalServer
from tests.waiting import wait_for

SERVERS_DIR = Path(__file__).resolve().parent.parent / ".servers"
PROFTPD = SERVERS_DIR / "usr" / "sbin" / "proftpd"
PROFTPD_MODULES = SERVERS_DIR / "usr" / "lib" / "proftpd"
PUREFTPD = SERVERS_DIR / "usr" / "sbin" / "pure-ftpd"
PURE_PW = SERVERS_DIR / "usr" / "bin" / "pure-pw"

USERNAME = "photographer"
PASSWORD = "s3cret-pass"
#: Pure-FTPd's virtual user when the tests run as root (it refuses uid 0 for virtual users).
NOBODY = 65534

KINDS = ("proftpd-ftp", "proftpd-ftps", "proftpd-sftp", "pureftpd-ftp", "pureftpd-ftps")
FTP_KINDS = ("proftpd-ftp", "proftpd-ftps", "pureftpd-ftp", "pureftpd-ftps")
SIZE_LIMIT_KINDS = ("proftpd-ftp", "proftpd-ftps", "proftpd-sftp")
STARTUP_BOUND = 10.0


def is_root() -> bool:
    return os.geteuid() == 0


def _require(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.name} is not unpacked in {SERVERS_DIR} (`make test` runs .ci/system-deps test)")


def _crypt(password: str) -> str:
    """A SHA-512 crypt(3) hash (both daemons take it; Pure-FTPd's own argon2 default costs ~1 s a login)."""
    return subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


def _ssh_keygen(path: Path, key_type: str, pem: bool = False) -> str:
    """Write a host key; return its SHA256 fingerprint as ``ssh-keygen -lf`` prints it."""
    args = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", "stockbridge-test", "-f", str(path)]
    if pem:
        args += ["-m", "PEM"]
    subprocess.run(args, check=True, timeout=30)
    listing = subprocess.run(
        ["ssh-keygen", "-lf", f"{path}.pub"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    return listing.split()[1]


@dataclass(frozen=True)
class SFTPHostKeys:
    ed25519: Path
    ed25519_fingerprint: str
    rsa: Path
    rsa_fingerprint: str


@pytest.fixture(scope="session")
def sftp_host_keys(tmp_path_factory: pytest.TempPathFactory) -> SFTPHostKeys:
    """mod_sftp's own host keys: Ed25519 (what paramiko asks for first) and RSA (what
    ``ssh-keyscan | ssh-keygen -lf -`` prints first), as an agency's server offers both."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (CI installs openssh)")
    directory = tmp_path_factory.mktemp("mod-sftp-keys")
    ed25519, rsa = directory / "host_ed25519", directory / "host_rsa"
    return SFTPHostKeys(ed25519, _ssh_keygen(ed25519, "ed25519"), rsa, _ssh_keygen(rsa, "rsa", pem=True))


# -- a daemon we started -------------------------------------------------------------------------


@dataclass
class Daemon:
    """One server process (and its per-connection children, in its process group)."""

    command: Callable[[int], list[str]]
    banner: bytes
    log: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    wrap: Callable[[list[str]], list[str]] = lambda argv: argv

    def start(self) -> None:
        """Start on ``self.port`` (0: a free one; retried on a port race)."""
        fixed = self.port != 0
        error: Exception | None = None
        for _ in range(1 if fixed else 3):
            port = self.port if fixed else free_port()
            process = self._spawn(port)
            try:
                self._wait_ready(port, process)
            except RuntimeError as exc:
                error = exc
                stop_process_group(process)
                continue
            self.port, self.process = port, process
            return
        raise RuntimeError(f"could not start {self.command(0)[0]}: {error}")

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log_file:
            return subprocess.Popen(
                self.wrap(self.command(port)),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stopped as a whole, by our PID
            )

    def _wait_ready(self, port: int, process: subprocess.Popen[bytes]) -> None:
        # A restart on the same port may meet the old listener's socket for a moment: retried
        # within the bound, never a fixed sleep.
        deadline = time.monotonic() + STARTUP_BOUND
        while True:
            try:
                wait_for_banner(port, self.banner, process, self.log)
                return
            except RuntimeError:
                if process.poll() is None or time.monotonic() > deadline:
                    raise
                process = self._spawn(port)

    def kill(self) -> None:
        """SIGKILL the whole process group: the daemon and every session it forked."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> None:
        """Start again on the same port (after :meth:`kill`)."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None


# -- Pure-FTPd's syslog ---------------------------------------------------------------------------


class SyslogSink:
    """A datagram socket standing in for /dev/log; every message is appended to ``log``."""

    def __init__(self, directory: Path, log: Path) -> None:
        self.path = directory / "log"
        self.log = log
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(self.path))
        os.chmod(self.path, 0o666)  # the session runs as nobody
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="syslog-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.log.open("ab", buffering=0) as out:
            while not self._stop.is_set():
                try:
                    data = self._socket.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                out.write(data.rstrip(b"\0\n") + b"\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()


def _with_private_dev_log(dev: Path) -> Callable[[list[str]], list[str]]:
    """Run argv in a mount namespace of its own where /dev is ``dev``: the null/zero/random device
    nodes bound in, and ``log`` our socket. Nothing outside the namespace changes."""
    nodes = ("null", "zero", "random", "urandom", "tty")
    script = (
        f"set -e; for node in {' '.join(nodes)}; do "
        '[ -e "/dev/$node" ] || continue; touch "$1/$node"; mount --bind "/dev/$node" "$1/$node"; done; '
        'mount --rbind "$1" /dev; shift; exec "$@"'
    )

    def wrap(argv: list[str]) -> list[str]:
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(dev), *argv]

    return wrap


# -- a small disk --------------------------------------------------------------------------------


def mount_small_disk(mount: Path, size: int) -> Callable[[], None]:
    """Mount a tmpfs of ``size`` bytes on the (existing, empty) directory ``mount``; return the
    function that unmounts it. Root only (CI is); skips the test otherwise."""
    if not is_root():
        pytest.skip("a small disk is a tmpfs mount: the test needs root (CI is)")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "stockbridge-test", str(mount)],
        check=True,
        timeout=30,
    )

    def unmount() -> None:
        subprocess.run(["umount", str(mount)], check=False, timeout=30)
        if os.path.ismount(mount):  # a session still holds a file open: detach it
            subprocess.run(["umount", "-l", str(mount)], check=False, timeout=30)

    return unmount


def fill_disk(mount: Path, leave: int) -> Path:
    """Fill the small disk at ``mount`` until ``leave`` bytes are free; delete the returned file to
    free the space again."""
    filler = mount / "filler.bin"
    stats = os.statvfs(mount)
    free = stats.f_bavail * stats.f_frsize
    with filler.open("ab") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


# -- the factory ---------------------------------------------------------------------------------


@dataclass
class Fault:
    """What to make a server refuse. Folder names are relative to the server's root."""

    #: ProFTPD ``MaxStoreFileSize`` (e.g. "1 Mb"), on ``size_limit_dir`` (None: the whole root).
    max_store_size: str | None = None
    size_limit_dir: str | None = None
    #: Pure-FTPd virtual user quota in bytes (``pure-pw useradd -N``), daemon quotas on.
    quota_bytes: int | None = None
    #: The root on a tmpfs of this many bytes, mounted by the fixture (root only).
    disk_bytes: int | None = None
    #: A folder inside the root where nothing may be written.
    read_only_dir: str | None = None
    #: A folder inside the root under which no folder may be created.
    no_mkdir_dir: str | None = None
    #: RNFR/RNTO refused (Pure-FTPd -G; ProFTPD <Limit RNFR RNTO>).
    no_rename: bool = False
    #: Folder listings refused, all else allowed: a write-only upload folder (ProFTPD, FTP and SFTP).
    no_listing: bool = False
    #: ProFTPD ``AllowStoreRestart on``: REST + STOR (a resumed upload) allowed; off by default.
    store_restart: bool = False


@dataclass
class Running:
    server: LocalServer
    daemon: Daemon
    passwd_writer: Callable[[Path], None]
    mount: Path | None = None
    sink: SyslogSink | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    commands: CommandLog | None = None


class ThirdPartyServers:
    """Starts ProFTPD / Pure-FTPd daemons for one test (or one module) and stops them all."""

    def __init__(self, base: Path, tls_cert: tuple[Path, Path], host_keys: SFTPHostKeys | None) -> None:
        self.base = base
        self.tls_cert = tls_cert
        self.host_keys = host_keys
        self._running: list[Running] = []
        self._count = 0
        self._password_hash: str | None = None

    # public ---------------------------------------------------------------------------------

    def start(self, kind: str, fault: Fault | None = None) -> LocalServer:
        if kind not in KINDS:
            raise ValueError(f"unknown server {kind!r}; known: {', '.join(KINDS)}")
        fault = fault or Fault()
        self._count += 1
        base = self.base / f"{kind}-{self._count}"
        base.mkdir(parents=True)
        family = kind.split("-", 1)[0]
        if family == "pureftpd" and not is_root():
            pytest.skip(
                "Pure-FTPd never runs a virtual user as the launching user; the test needs root (CI is)"
            )
        if fault.disk_bytes is not None and not is_root():
            pytest.skip("a small disk is a tmpfs mount: the test needs root (CI is)")
        running = (
            self._start_proftpd(kind, base, fault)
            if family == "proftpd"
            else self._start_pureftpd(kind, base, fault)
        )
        self._running.append(running)
        running.server.extra["thirdparty"] = self
        return running.server

    def running(self, server: LocalServer) -> Running:
        for entry in self._running:
            if entry.server is server:
                return entry
        raise KeyError(server.name)

    def kill(self, server: LocalServer) -> None:
        self.running(server).daemon.kill()

    def restart(self, server: LocalServer) -> None:
        self.running(server).daemon.restart()

    def new_root(self, server: LocalServer, root: Path) -> None:
        """Point the login at a fresh, empty ``root`` (read at the next login)."""
        entry = self.running(server)
        root.mkdir(parents=True, exist_ok=True)
        if server.name.startswith("pureftpd") and is_root():
            os.chown(root, NOBODY, NOBODY)
        entry.passwd_writer(root)
        server.root = root
        if entry.commands is not None:
            entry.commands.mark()
        if not server.name.startswith("pureftpd"):
            server.remote_dir = str(root)

    def fill_disk(self, server: LocalServer, leave: int) -> Path:
        """Fill the server's small disk until ``leave`` bytes are free; delete the file returned
        to free the space again. It lies next to the root, not in it."""
        entry = self.running(server)
        if entry.mount is None:
            raise ValueError("the server has no small disk (Fault(disk_bytes=...))")
        return fill_disk(entry.mount, leave)

    def stop_all(self) -> None:
        for entry in reversed(self._running):
            entry.daemon.stop()
            if entry.sink is not None:
                entry.sink.close()
            for cleanup in reversed(entry.cleanups):
                with contextlib.suppress(Exception):
                    cleanup()
        self._running.clear()

    # shared pieces -----------------------------------------------------------------------------

    def _hash(self) -> str:
        if self._password_hash is None:
            self._password_hash = _crypt(PASSWORD)
        return self._password_hash

    def _disk(self, base: Path, fault: Fault, cleanups: list[Callable[[], None]]) -> Path | None:
        if fault.disk_bytes is None:
            return None
        mount = base / "disk"
        mount.mkdir()
        cleanups.append(mount_small_disk(mount, fault.disk_bytes))
        return mount

    def _prepare_root(
        self, base: Path, fault: Fault, cleanups: list[Callable[[], None]], owner: int | None
    ) -> tuple[Path, Path | None]:
        mount = self._disk(base, fault, cleanups)
        root = (mount or base) / "root"
        root.mkdir()
        for folder in (fault.read_only_dir, fault.no_mkdir_dir, fault.size_limit_dir):
            if folder:
                (root / folder).mkdir(parents=True, exist_ok=True)
        if owner is not None:
            for path in [root, *root.rglob("*")]:
                os.chown(path, owner, owner)
        # Pure-FTPd's session is not root: plain permissions do the refusing there.
        for folder in (fault.read_only_dir, fault.no_mkdir_dir):
            if folder:
                (root / folder).chmod(0o555)
        return root, mount

    # ProFTPD ------------------------------------------------------------------------------------

    def _start_proftpd(self, kind: str, base: Path, fault: Fault) -> Running:
        _require(PROFTPD)
        mode = kind.split("-", 1)[1]
        cleanups: list[Callable[[], None]] = []
        root, mount = self._prepare_root(base, fault, cleanups, owner=None)
        uid, gid = os.getuid(), os.getgid()
        passwd, group = base / "ftpd.passwd", base / "ftpd.group"
        group.write_text(f"{grp.getgrgid(gid).gr_name}:x:{gid}:\n")
        password_hash = self._hash()

        def write_passwd(home: Path) -> None:
            # A new file renamed over the old one: a login never reads half of it.
            fresh = passwd.with_suffix(".new")
            fresh.write_text(f"{USERNAME}:{password_hash}:{uid}:{gid}::{home}:/bin/sh\n")
            fresh.chmod(0o600)
            fresh.replace(passwd)

        write_passwd(root)
        log, commands_log = base / "proftpd.log", base / "trace.log"
        config = base / "proftpd.conf"
        digest = (PROFTPD_MODULES / "mod_digest.so").exists()

        def command(port: int) -> list[str]:
            config.write_text(
                self._proftpd_config(mode, port, base, passwd, group, log, commands_log, fault, digest)
            )
            # -n: stay in the foreground (our process group); -q: quiet start-up.
            return [str(PROFTPD), "-n", "-q", "-c", str(config)]

        commands = CommandLog(commands_log, _proftpd_sftp_verb if mode == "sftp" else _proftpd_ftp_verb)
        banner = b"SSH-" if mode == "sftp" else b"220"
        daemon = Daemon(command, banner, log)
        try:
            daemon.start()
        except BaseException:
            for cleanup in reversed(cleanups):
                cleanup()
            raise
        server = LocalServer(
            name=kind,
            protocol="sftp" if mode == "sftp" else mode,
            root=root,
            remote_dir=str(root),
            host="127.0.0.1",
            port=daemon.port,
            username=USERNAME,
            password=PASSWORD,
            ca_file=self.tls_cert[0] if mode == "ftps" else None,
            log_path=log,
            commands=commands,
            extra={"daemon": daemon, "mount": mount, "mod_digest": digest},
        )
        if mode == "sftp":
            assert self.host_keys is not None
            server.host_key_fingerprint = self.host_keys.ed25519_fingerprint
            server.extra["rsa_fingerprint"] = self.host_keys.rsa_fingerprint
            known_hosts = base / "known_hosts"
            lines = [
                f"[127.0.0.1]:{daemon.port} {' '.join(Path(f'{key}.pub').read_text().split()[:2])}"
                for key in (self.host_keys.ed25519, self.host_keys.rsa)
            ]
            known_hosts.write_text("\n".join(lines) + "\n")
            server.known_hosts = known_hosts
        return Running(server, daemon, write_passwd, mount, None, cleanups, commands)

    def _proftpd_config(
        self,
        mode: str,
        port: int,
        base: Path,
        passwd: Path,
        group: Path,
        log: Path,
        commands_log: Path,
        fault: Fault,
        digest: bool,
    ) -> str:
        user = getpass.getuser() if not is_root() else "root"
        group_name = grp.getgrgid(os.getgid()).gr_name
        # SystemLog, TLSLog and SFTPLog all go to ``log``: log_text() has the whole story.
        lines = [
            'ServerName "stockbridge test ProFTPD"',
            "ServerType standalone",
            f"Port {port}",
            "DefaultAddress 127.0.0.1",
            "SocketBindTight on",
            "UseIPv6 off",
            f"ModulePath {PROFTPD_MODULES}",
            f"PidFile {base / 'proftpd.pid'}",
            f"ScoreboardFile {base / 'proftpd.scoreboard'}",
            "DelayTable none",
            "WtmpLog off",
            "UseLastlog off",
            "UseReverseDNS off",
            f"User {user}",
            f"Group {group_name}",
            # The virtual user is the launching user: root in CI.
            "RootLogin on",
            "AuthOrder mod_auth_file.c",
            f"AuthUserFile {passwd}",
            f"AuthGroupFile {group}",
            "RequireValidShell off",
            "MaxLoginAttempts 1",
            f"SystemLog {log}",
            'LogFormat commands "%m %J -> %s"',
            f"ExtendedLog {base / 'extended.log'} ALL commands",
            # Every command as it is dispatched, even one whose session dies in it (an AUTH whose
            # TLS handshake the client abandons never reaches the ExtendedLog).
            f"TraceLog {commands_log}",
            "Trace command:7",
            f"TransferLog {base / 'xferlog'}",
            "MaxInstances 30",
            "TimeoutIdle 120",
            "AllowOverwrite on",
            "Umask 022",
            "PassivePorts 1024 65535",
        ]
        if digest:
            lines += [
                "LoadModule mod_digest.c",
                "<IfModule mod_digest.c>",
                "  DigestEngine on",
                "  DigestAlgorithms all",
                "</IfModule>",
            ]
        if mode == "ftps":
            cert, key = self.tls_cert
            lines += [
                "LoadModule mod_tls.c",
                "<IfModule mod_tls.c>",
                "  TLSEngine on",
                f"  TLSLog {log}",
                "  TLSProtocol TLSv1.2 TLSv1.3",
                f"  TLSRSACertificateFile {cert}",
                f"  TLSRSACertificateKeyFile {key}",
                "  TLSRequired on",
                "  TLSVerifyClient off",
                "  TLSRenegotiate none",
                # No NoSessionReuseRequired: data connections must reuse the control's session.
                "</IfModule>",
            ]
        if mode == "sftp":
            assert self.host_keys is not None
            lines += [
                "LoadModule mod_sftp.c",
                "<IfModule mod_sftp.c>",
                "  SFTPEngine on",
                f"  SFTPLog {log}",
                f"  SFTPHostKey {self.host_keys.ed25519}",
                f"  SFTPHostKey {self.host_keys.rsa}",
                "  SFTPAuthMethods password",
                "  SFTPCompression off",
                "</IfModule>",
            ]
        if fault.max_store_size:
            if fault.size_limit_dir:
                lines += [
                    f"<Directory ~/{fault.size_limit_dir}>",
                    f"  MaxStoreFileSize {fault.max_store_size}",
                    "</Directory>",
                ]
            else:
                lines.append(f"MaxStoreFileSize {fault.max_store_size}")
        # root bypasses permissions: ProFTPD's own access rules do the refusing.
        if fault.read_only_dir:
            lines += [
                f"<Directory ~/{fault.read_only_dir}>",
                "  <Limit WRITE>",
                "    DenyAll",
                "  </Limit>",
                "</Directory>",
            ]
        if fault.no_mkdir_dir:
            lines += [
                f"<Directory ~/{fault.no_mkdir_dir}>",
                "  <Limit MKD XMKD>",
                "    DenyAll",
                "  </Limit>",
                "</Directory>",
            ]
        if fault.no_rename:
            lines += ["<Limit RNFR RNTO>", "  DenyAll", "</Limit>"]
        if fault.no_listing:
            lines += ["<Limit LIST MLSD NLST OPENDIR READDIR>", "  DenyAll", "</Limit>"]
        if fault.store_restart:
            lines.append("AllowStoreRestart on")
        if fault.quota_bytes is not None:
            raise ValueError("quotas are a Pure-FTPd fault here")
        return "\n".join(lines) + "\n"

    # Pure-FTPd ----------------------------------------------------------------------------------

    def _start_pureftpd(self, kind: str, base: Path, fault: Fault) -> Running:
        _require(PUREFTPD)
        _require(PURE_PW)
        if fault.max_store_size or fault.no_listing:
            raise ValueError("per-file size limits and refused listings are ProFTPD faults here")
        tls = kind.endswith("ftps")
        cleanups: list[Callable[[], None]] = []
        root, mount = self._prepare_root(base, fault, cleanups, owner=NOBODY)
        passwd, puredb = base / "pureftpd.passwd", base / "pureftpd.pdb"
        password_hash = self._hash()
        quota = str(fault.quota_bytes) if fault.quota_bytes is not None else ""

        def write_passwd(home: Path) -> None:
            # account:password:uid:gid:gecos:home(/./ = chroot):upload bw:download bw:upload ratio:
            # download ratio:max connections:files quota:size quota:(IP and time restrictions)
            passwd.write_text(f"{USERNAME}:{password_hash}:{NOBODY}:{NOBODY}::{home}/./:::::::{quota}:::::\n")
            passwd.chmod(0o600)
            subprocess.run(
                [str(PURE_PW), "mkdb", str(puredb) + ".new", "-f", str(passwd)], check=True, timeout=30
            )
            os.replace(str(puredb) + ".new", puredb)

        write_passwd(root)
        log = base / "pureftpd.log"
        dev = base / "dev"
        dev.mkdir()
        sink = SyslogSink(dev, log)
        cert, key = self.tls_cert
        options = [
            "-l",
            f"puredb:{puredb}",
            "-E",  # no anonymous logins
            "-H",  # no reverse DNS
            "-4",
            "-d",  # verbose log: every command
            "-1",  # with the session's PID
            "-A",  # chroot everyone
            "-O",
            f"clf:{base / 'transfer.log'}",
        ]
        if tls:
            # 3: TLS required on the control and on the data connections.
            options += ["-Y", "3", "-2", f"{cert},{key}"]
        if fault.quota_bytes is not None:
            options += ["-n", "100000:100000"]  # quotas on; the user's own (-N) is what counts
        if fault.no_rename:
            options.append("-G")

        def command(port: int) -> list[str]:
            return [str(PUREFTPD), "-S", f"127.0.0.1,{port}", *options]

        commands = CommandLog(log, _pureftpd_verb)
        daemon = Daemon(command, b"220", log, wrap=_with_private_dev_log(dev))
        try:
            daemon.start()
        except BaseException:
            sink.close()
            for cleanup in reversed(cleanups):
                cleanup()
            raise
        server = LocalServer(
            name=kind,
            protocol="ftps" if tls else "ftp",
            root=root,
            remote_dir="/",
            host="127.0.0.1",
            port=daemon.port,
            username=USERNAME,
            password=PASSWORD,
            ca_file=cert if tls else None,
            log_path=log,
            commands=commands,
            extra={"daemon": daemon, "mount": mount},
        )
        return Running(server, daemon, write_passwd, mount, sink, cleanups, commands)


class CommandLog:
    """The command verbs a server logged, one per command, in order; since :meth:`mark`, and only
    from sessions that had not logged anything before it (a session of the previous test may
    still be writing when the next test starts)."""

    _PID = re.compile(r"\[(\d+)\]")

    def __init__(self, path: Path, verb: Callable[[str], str | None]) -> None:
        self.path = path
        self.verb = verb
        self.offset = 0
        self.old_sessions: set[str] = set()

    def _lines(self, start: int, end: int | None = None) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(start)
            data = handle.read() if end is None else handle.read(end - start)
        return data.decode(errors="replace").splitlines()

    def _session(self, line: str) -> str | None:
        found = self._PID.search(line)
        return found.group(1) if found else None

    def mark(self) -> None:
        end = self.path.stat().st_size if self.path.exists() else 0
        self.old_sessions |= {self._session(line) or "" for line in self._lines(self.offset, end)}
        self.offset = end

    def __call__(self) -> list[str]:
        verbs = []
        for line in self._lines(self.offset):
            if self._session(line) in self.old_sessions:
                continue
            verb = self.verb(line)
            if verb is not None:
                verbs.append(verb.upper())
        return verbs


def _proftpd_ftp_verb(line: str) -> str | None:
    # "... [pid] <command:7>: dispatching CMD command 'STOR x.jpg.part' to mod_xfer.c" (PASS: "'PASS (hidden)'")
    marker = "dispatching CMD command '"
    return line.split(marker, 1)[1].split(" ", 1)[0].rstrip("'") if marker in line else None


def _proftpd_sftp_verb(line: str) -> str | None:
    # mod_sftp dispatches SSH and SFTP requests for logging only: "... LOG_CMD command 'KEXINIT' to mod_log.c"
    if "_CMD command '" in line and line.endswith("' to mod_log.c"):
        return line.split(" command '", 1)[1].split(" ", 1)[0].rstrip("'")
    return None


def _pureftpd_verb(line: str) -> str | None:
    # -1 -d: "... pure-ftpd[pid]: (?@127.0.0.1) [DEBUG] Command [user] [photographer]" (PASS: "[<*>]")
    marker = "[DEBUG] Command ["
    return line.split(marker, 1)[1].split("]", 1)[0] if marker in line else None


def wait_for_text(path: Path, text: str, timeout: float = 10.0) -> str:
    """The file's text once ``text`` shows up in it (bounded; servers log asynchronously)."""

    def content() -> str:
        return path.read_text(errors="replace") if path.exists() else ""

    return wait_for(lambda: text in content() and content(), timeout, f"{text!r} in {path}")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def thirdparty(
    tmp_path: Path, tls_cert: tuple[Path, Path], sftp_host_keys: SFTPHostKeys
) -> Iterator[ThirdPartyServers]:
    """A factory for ProFTPD / Pure-FTPd servers with faults; all stopped (and unmounted) after the test."""
    servers = ThirdPartyServers(tmp_path / "thirdparty", tls_cert, sftp_host_keys)
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="module")
def _thirdparty_module(
    tmp_path_factory: pytest.TempPathFactory, tls_cert: tuple[Path, Path], sftp_host_keys: SFTPHostKeys
) -> Iterator[dict[str, Any]]:
    servers = ThirdPartyServers(tmp_path_factory.mktemp("thirdparty"), tls_cert, sftp_host_keys)
    started: dict[str, Any] = {"servers": servers}
    try:
        yield started
    finally:
        servers.stop_all()


def _shared(kind: str, module: dict[str, Any], tmp_path: Path) -> LocalServer:
    """The module's daemon of ``kind`` (started on first use), logging in at a fresh root."""
    servers: ThirdPartyServers = module["servers"]
    if kind not in module:
        module[kind] = servers.start(kind)
    server: LocalServer = module[kind]
    entry = servers.running(server)
    if entry.daemon.process is None or entry.daemon.process.poll() is not None:
        entry.daemon.start()  # a test killed it
    servers.new_root(server, tmp_path / f"{kind}-root")
    server.port = entry.daemon.port
    return server


@pytest.fixture
def proftpd_ftp_server(_thirdparty_module: dict[str, Any], tmp_path: Path) -> LocalServer:
    """ProFTPD, plain FTP, with mod_digest."""
    return _shared("proftpd-ftp", _thirdparty_module, tmp_path)


@pytest.fixture
def proftpd_ftps_server(_thirdparty_module: dict[str, Any], tmp_path: Path) -> LocalServer:
    """ProFTPD mod_tls, explicit FTPS required, TLS session reuse required on data connections."""
    return _shared("proftpd-ftps", _thirdparty_module, tmp_path)


@pytest.fixture
def proftpd_sftp_server(_thirdparty_module: dict[str, Any], tmp_path: Path) -> LocalServer:
    """ProFTPD mod_sftp (not OpenSSH), password login, Ed25519 + RSA host keys."""
    return _shared("proftpd-sftp", _thirdparty_module, tmp_path)


@pytest.fixture
def pureftpd_ftp_server(_thirdparty_module: dict[str, Any], tmp_path: Path) -> LocalServer:
    """Pure-FTPd, plain FTP, a puredb virtual user chrooted into its root."""
    return _shared("pureftpd-ftp", _thirdparty_module, tmp_path)


@pytest.fixture
def pureftpd_ftps_server(_thirdparty_module: dict[str, Any], tmp_path: Path) -> LocalServer:
    """Pure-FTPd with TLS required on control and data connections (-Y 3)."""
    return _shared("pureftpd-ftps", _thirdparty_module, tmp_path)
