"""Local FTP/FTPS servers for the demo and the tests. Not for production use.

Everything here listens on 127.0.0.1 only, on ports the OS picks, and stops when its context
manager exits. pyftpdlib is an optional dependency (the ``demo`` extra): it is imported only when a
server is started, so the service itself never needs it.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Permissions of the test user: list, retrieve, append, delete, rename, mkdir, store, chmod, mtime.
_FULL_PERMISSIONS = "elradfmwMT"
#: How long the serving thread may take to stop before we give up on it (it is a daemon thread).
_STOP_TIMEOUT = 5.0


def make_self_signed_cert(directory: Path, hostname: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write a throwaway self-signed certificate and its key into ``directory``.

    The certificate names 127.0.0.1 (IP) and localhost (DNS), so clients can verify the hostname
    as they would for a real server; the certificate file doubles as the ``ca_file`` they trust.
    Returns ``(cert_path, key_path)``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    if hostname not in ("127.0.0.1", "localhost"):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(hostname)))
        except ValueError:
            alt_names.append(x509.DNSName(hostname))
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # A little slack backwards: a client clock slightly behind must not reject a fresh cert.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Key identifiers keep OpenSSL's strict mode (VERIFY_X509_STRICT, default since
        # Python 3.13) happy with a self-signed trust anchor.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


#: What the demo imports from the ``demo`` extra: module → the package that provides it.
DEMO_MODULES = {"pyftpdlib": "pyftpdlib", "OpenSSL": "pyOpenSSL"}  # pyftpdlib's TLS needs pyOpenSSL


def missing_demo_packages() -> list[str]:
    """The packages of the ``demo`` extra that cannot be imported here."""
    import importlib

    missing = []
    for module, package in DEMO_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    return missing


def _import_pyftpdlib() -> Any:
    try:
        import pyftpdlib
    except ImportError as exc:
        raise RuntimeError("the local FTP server needs pyftpdlib: pip install 'stockbridge[demo]'") from exc
    return pyftpdlib


@dataclass
class FTPServerThread:
    """A pyftpdlib server on 127.0.0.1 served by a daemon thread. Use :func:`local_ftp_server`."""

    root: Path
    tls: bool
    username: str
    password: str
    certfile: Path | None = None
    keyfile: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    #: Command verbs the server received, in order (never their arguments: PASS carries a secret).
    commands: list[str] = field(default_factory=list)
    #: The file name (last path component) of every STOR, in order: how often each name was sent.
    stored: list[str] = field(default_factory=list)
    #: ``(file name, bytes)`` of every file that arrived under a name: after each STOR (a cut-off
    #: one too: in FTP's stream mode an early close looks like the end of the file) and each RNTO.
    arrived: list[tuple[str, int]] = field(default_factory=list)
    #: ``(file name, bytes)`` each upload's data connection carried, whole or cut: a resumed
    #: upload carries only the bytes the server did not have.
    received: list[tuple[str, int]] = field(default_factory=list)
    #: Called with the local path of every file that arrives under its final name (after STOR,
    #: and after RNTO): stands in for an agency's ingest robot that moves files away at once.
    ingest: Callable[[Path], None] | None = None
    #: False: close TLS data connections without a close_notify, as some servers (IIS) do;
    #: clients that insist on a clean TLS shutdown then fail although the upload succeeded.
    tls_data_close_notify: bool = True
    #: Plain FTP only: cap uploads at this many bytes per second (a slow home link).
    upload_limit: int | None = None
    _server: Any = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def ca_file(self) -> Path | None:
        return self.certfile if self.tls else None

    def start(self) -> None:
        _import_pyftpdlib()
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

        authorizer = DummyAuthorizer()
        authorizer.add_user(self.username, self.password, str(self.root), perm=_FULL_PERMISSIONS)
        handler = self._handler_class()
        handler.authorizer = authorizer
        handler.passive_ports = None  # the OS picks a free port for every data connection
        handler.banner = "stockbridge local test server ready."
        # An IOLoop of its own: pyftpdlib's default is a process-wide singleton, and two servers
        # (FTP and FTPS in the demo) serving it from two threads would mix up their replies.
        self._server = FTPServer((self.host, self.port), handler, ioloop=IOLoop())
        self.port = self._server.address[1]
        self._thread = threading.Thread(target=self._serve, name=f"ftpd-{self.port}", daemon=True)
        self._thread.start()

    def _handler_class(self) -> Any:
        commands = self.commands
        server = self

        if self.tls:
            if self.certfile is None:
                raise ValueError("a TLS server needs a certfile")
            from pyftpdlib.handlers import TLS_FTPHandler as base
        else:
            from pyftpdlib.handlers import FTPHandler as base

        class Handler(base):
            def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
                commands.append(cmd)
                if cmd == "STOR":
                    server.stored.append(arg.rsplit("/", 1)[-1])
                super().pre_process_command(line, cmd, arg)

            def on_file_received(self, file: str) -> None:
                server._arrived(Path(file))
                if server.ingest is not None:
                    server.ingest(Path(file))

            def on_incomplete_file_received(self, file: str) -> None:
                server._arrived(Path(file))

            def log_transfer(self, cmd: str, filename: str, receive: bool, **details: Any) -> None:
                if receive:
                    server.received.append((Path(filename).name, int(details.get("bytes", 0))))
                super().log_transfer(cmd, filename, receive, **details)

            def ftp_RNTO(self, path: str) -> Any:
                renamed = super().ftp_RNTO(path)
                if renamed:
                    server._arrived(Path(renamed[1]))
                if renamed and server.ingest is not None:
                    server.ingest(Path(renamed[1]))
                return renamed

        if self.upload_limit is not None:
            if self.tls:
                raise ValueError("upload_limit is supported for plain FTP only")
            from pyftpdlib.handlers import ThrottledDTPHandler

            limit = self.upload_limit

            class SlowDataHandler(ThrottledDTPHandler):
                # Paced from the first byte of each transfer: pyftpdlib's own throttle lets the
                # first ``read_limit`` bytes of every second through at once, so a file smaller
                # than the limit was never slowed down at all.
                read_limit = limit
                ac_in_buffer_size = max(4096, limit // 20)
                auto_sized_buffers = False

                def _throttle_bandwidth(self, len_chunk: int, max_speed: int) -> None:
                    now = time.monotonic()
                    if not self._datacount:
                        self._timenext = now  # when this transfer started
                    self._datacount += len_chunk
                    due = self._timenext + self._datacount / max_speed
                    if due <= now:
                        return

                    def resume() -> None:
                        self.add_channel(events=self.ioloop.READ)

                    self.del_channel()
                    self._cancel_throttler()
                    self._throttler = self.ioloop.call_later(due - now, resume, _errback=self.handle_error)

            Handler.dtp_handler = SlowDataHandler

        if self.tls:
            from pyftpdlib.handlers import TLS_DTPHandler

            class DataHandler(TLS_DTPHandler):
                def close(self) -> None:
                    if not server.tls_data_close_notify:
                        # pyftpdlib skips the TLS shutdown after an error: pretend there was one.
                        self._error = True
                    super().close()

            Handler.dtp_handler = DataHandler

        if self.tls:
            # A fresh class per server: pyftpdlib caches the SSL context on the class, so two
            # servers with different certificates must not share one.
            Handler.certfile = str(self.certfile)
            Handler.keyfile = str(self.keyfile or self.certfile)
            Handler.ssl_context = None
            Handler.tls_control_required = True
            Handler.tls_data_required = True
        return Handler

    def _arrived(self, path: Path) -> None:
        try:
            size = path.stat().st_size
        except OSError:
            size = -1  # already gone (an ingest robot, a DELE)
        self.arrived.append((path.name, size))

    def _serve(self) -> None:
        # Non-blocking single iterations let the thread notice the stop flag within ~50 ms;
        # the ioloop is not thread-safe, so it is closed from this same thread.
        # (serve_forever would log "starting server" on every single iteration.)
        try:
            while not self._stop.is_set():
                self._server.ioloop.loop(timeout=0.05, blocking=False)
        finally:
            self._server.close_all()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)


@contextmanager
def local_ftp_server(
    root: Path,
    *,
    tls: bool,
    username: str = "stockbridge",
    password: str = "stockbridge",
    certfile: Path | None = None,
    keyfile: Path | None = None,
    upload_limit: int | None = None,
) -> Iterator[FTPServerThread]:
    """Run an FTP (or explicit FTPS) server for ``root`` on 127.0.0.1 until the block ends.

    With ``tls=True`` and no ``certfile``, a self-signed certificate is made for the lifetime of the
    server; clients trust it through ``server.ca_file``. TLS is then required on the control and the
    data connections, as agencies do.
    """
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stockbridge-ftpd-") as scratch:
        if tls and certfile is None:
            certfile, keyfile = make_self_signed_cert(Path(scratch))
        server = FTPServerThread(
            root=root,
            tls=tls,
            username=username,
            password=password,
            certfile=certfile,
            keyfile=keyfile,
            upload_limit=upload_limit,
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


# -- external daemons (vsftpd, sshd) for the tests and the benchmarks ------------------------------

#: Seconds an external server may take to accept connections, and to stop.
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def free_port() -> int:
    """A port on 127.0.0.1 the OS says is free now (the race until a server binds it is retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_banner(port: int, prefix: bytes, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll until the server on ``port`` greets with ``prefix``; fail early if it died."""
    deadline = time.monotonic() + READY_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
                if conn.recv(64).startswith(prefix):
                    return
        except OSError as exc:
            last_error = exc
        time.sleep(0.02)
    raise RuntimeError(f"server on port {port} not ready after {READY_TIMEOUT} s ({last_error})")


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the process group we started (the daemon and its per-connection children), by its PID."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)
    # Per-connection children may outlive the parent by a moment; they are in our group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def start_daemon(
    command: Callable[[int], list[str]], banner: bytes, log: Path, attempts: int = 3
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``command(port)`` on a free port and wait for its banner; retry on a port race."""
    error: Exception | None = None
    for _ in range(attempts):
        port = free_port()
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                command(port),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stopped as a whole, by our PID
            )
        try:
            wait_for_banner(port, banner, process, log)
        except RuntimeError as exc:
            error = exc
            stop_process_group(process)
            continue
        return process, port
    raise RuntimeError(f"could not start {command(0)[0]}: {error}")


def vsftpd_config(
    port: int, root: Path, empty: Path, certfile: Path, keyfile: Path, extra: Sequence[str] = ()
) -> str:
    """A vsftpd.conf for explicit FTPS on 127.0.0.1 with ``require_ssl_reuse=YES`` (its default,
    and what agencies run), anonymous uploads into ``root``.

    run_as_launching_user: no privilege switch and no chroot, so no system user is needed and it
    works as root (CI) and as anyone else; clients therefore see real absolute paths.
    """
    lines = [
        "listen=YES",
        "listen_ipv6=NO",
        "listen_address=127.0.0.1",
        f"listen_port={port}",
        "background=NO",
        "run_as_launching_user=YES",
        "seccomp_sandbox=NO",
        "isolate=NO",
        "isolate_network=NO",
        f"secure_chroot_dir={empty}",
        "connect_from_port_20=NO",
        "local_enable=NO",
        "anonymous_enable=YES",
        f"anon_root={root}",
        "write_enable=YES",
        "anon_upload_enable=YES",
        "anon_mkdir_write_enable=YES",
        "anon_other_write_enable=YES",
        "anon_umask=022",
        "ssl_enable=YES",
        "allow_anon_ssl=YES",
        "force_anon_logins_ssl=YES",
        "force_anon_data_ssl=YES",
        "require_ssl_reuse=YES",
        "ssl_ciphers=HIGH",
        f"rsa_cert_file={certfile}",
        f"rsa_private_key_file={keyfile}",
        *extra,
        "",
    ]
    return "\n".join(lines)
