"""FTP (plain, opt-in) and FTPS (explicit TLS: ``AUTH TLS``, ``PROT P``) over :mod:`ftplib`.

Why not plain ``ftplib.FTP_TLS``:

- its data connections start a new TLS session; vsftpd (``require_ssl_reuse=YES``, its default),
  ProFTPD and others then refuse every transfer (``522 ... session reuse required``, CPython
  issue 63699). :class:`_SessionReusingFTP_TLS` resumes the control connection's session instead;
- ``storbinary`` treats an error from ``unwrap()`` as a failed upload even when the server then
  confirms it with 226 (CPython issues 103443, 78738); :meth:`FTPTransport._store` reads the 226 and
  lets it decide;
- 8 KiB blocks become 8 KiB TLS records: 1 MiB blocks are 40-50 % faster over TLS (perf.md §3.3).

Reply codes are classified once, in :func:`error_for_reply`.
"""

from __future__ import annotations

import contextlib
import ftplib
import functools
import posixpath
import select
import socket
import ssl
import struct
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from loguru import logger

from stockbridge.errors import (
    AuthError,
    QuotaError,
    RemoteRejectedError,
    TransportError,
    TrustError,
)
from stockbridge.transports.base import (
    TEMP_SUFFIX,
    Progress,
    PutResult,
    Transport,
    TransportSettings,
    register,
)

#: Block size for STOR: ftplib's 8 KiB blocks cost 30-50 % throughput over TLS (perf.md §3.3)
#: and ~20 % against pyftpdlib on plain FTP (measured here, 1 MiB vs 8 KiB).
BLOCKSIZE = 1024 * 1024

#: Replies after which trying again later may work (RFC 959: 4xx are transient by definition).
_TRANSIENT_CODES = frozenset({421, 425, 426, 450, 451})
_AUTH_CODES = frozenset({530, 532})
_QUOTA_CODES = frozenset({452, 552})
#: Commands whose 550 is about this one file, not about the platform.
_FILE_COMMANDS = frozenset({"STOR", "RNFR", "RNTO", "APPE", "STOU"})
#: Some servers answer "too many connections" with a 5xx (ProFTPD: 530 ... maximum number of
#: clients); lftp retries those too (net:persist-retries), and so do we, instead of pausing the
#: platform for an auth problem it does not have.
_BUSY_WORDS = ("too many", "maximum number", "try again later")


_FORBIDDEN_IN_NAMES = {"/": "'/'", "\r": "a carriage return", "\n": "a line feed", "\0": "a NUL"}


def check_remote_name(name: str) -> None:
    """Refuse names that could smuggle a path or a command to the server.

    The pipeline sanitises file names first; this is the second line of defence (a ``\\r\\n`` in
    an FTP command starts a new command, a leading ``-`` is read as an option by some servers).
    """
    if not name or name in (".", ".."):
        raise ValueError(f"remote file name {name!r} is empty or a directory reference")
    for char, label in _FORBIDDEN_IN_NAMES.items():
        if char in name:
            raise ValueError(f"remote file name {name!r} contains {label}")
    if name.startswith("-"):
        raise ValueError(f"remote file name {name!r} starts with '-'")


def check_remote_dir(remote_dir: str) -> None:
    if any(char in remote_dir for char in "\r\n\0"):
        raise ValueError(f"remote_dir {remote_dir!r} contains a control character")


def reply_code(reply: str) -> int | None:
    head = reply[:3]
    return int(head) if head.isdigit() else None


def error_for_reply(reply: str, command: str, where: str = "") -> TransportError:
    """Turn a server reply (``"550 Permission denied."``) to ``command`` into our error.

    ``command`` is the verb (``STOR``, ``RNTO``, ...); ``where`` says what was being done, for
    the message. A pure function: the table lives in the tests.
    """
    code = reply_code(reply)
    words = reply.strip()
    prefix = f"{where}: " if where else ""
    message = f"{prefix}{command} refused: {words}"
    busy = any(word in words.lower() for word in _BUSY_WORDS)
    if code is None:
        return TransportError(f"{prefix}{command}: unexpected reply {words!r}")
    if code in _TRANSIENT_CODES or (busy and code >= 400):
        return TransportError(message, retryable=True)
    if code in _AUTH_CODES:
        return AuthError(message, hint="check username and password; the platform is paused meanwhile")
    if code in _QUOTA_CODES:
        return QuotaError(message, hint="the server is full or the account's quota is used up")
    if code == 553 or (code == 550 and command in _FILE_COMMANDS):
        return RemoteRejectedError(message)
    if 400 <= code < 500:
        return TransportError(message, retryable=True)
    # Any other 5xx (550 on CWD/MKD, 500/502 command not understood, ...) will not get better by
    # itself, and concerns the platform rather than one file.
    return TransportError(message, retryable=False)


def error_for_exception(exc: BaseException, command: str, where: str = "") -> TransportError:
    """Map what ftplib / the socket layer raised during ``command`` to our error tree."""
    prefix = f"{where}: " if where else ""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, ftplib.Error) and exc.args:
        return error_for_reply(str(exc.args[0]), command, where)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TrustError(
            f"{prefix}the server's TLS certificate is not trusted: {exc.verify_message}",
            hint="set ca_file to the CA (or self-signed certificate) the server uses; nothing was sent",
        )
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return TransportError(f"{prefix}{command} timed out", retryable=True)
    if isinstance(exc, EOFError):
        return TransportError(f"{prefix}{command}: the server closed the connection", retryable=True)
    if isinstance(exc, ssl.SSLError):
        return TransportError(f"{prefix}{command}: TLS error: {exc}", retryable=True)
    if isinstance(exc, OSError):
        return TransportError(f"{prefix}{command}: {exc.strerror or exc}", retryable=True)
    return TransportError(f"{prefix}{command}: {type(exc).__name__}: {exc}", retryable=True)


@functools.lru_cache(maxsize=8)
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    # One context per CA file per process: create_default_context() costs ~50 ms (it loads the
    # system CA store), which would otherwise be paid on every connection (perf.md §3.3).
    # It verifies the certificate chain and the host name by default.
    return ssl.create_default_context(cafile=ca_file)


class _SessionReusingFTP_TLS(ftplib.FTP_TLS):
    """``FTP_TLS`` whose data connections resume the control connection's TLS session.

    Servers that require it (vsftpd ``require_ssl_reuse=YES``) use the shared session to prove
    that the data connection comes from the client that logged in (CPython issue 63699).
    """

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            assert isinstance(self.sock, ssl.SSLSocket)  # AUTH TLS came first
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


@register("ftp")
class FTPTransport(Transport):
    """Plain FTP: the password travels in clear, so it is opt-in (``protocol = "ftp"``)."""

    tls = False

    def __init__(self, settings: TransportSettings) -> None:
        super().__init__(settings)
        check_remote_dir(settings.remote_dir)
        self._ftp: ftplib.FTP | None = None
        self._in_remote_dir = False
        self._remote_dir = settings.remote_dir  # made absolute at login
        # One read buffer for every file of the session: a fresh 1 MiB bytes per block is a fresh
        # mapping to fault in and zero each time (16 per 8 MB file). Only the uploading thread uses it.
        self._block = bytearray(BLOCKSIZE)

    # -- session -------------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.protocol} {self.settings.host}:{self._port}"

    @property
    def _port(self) -> int:
        return self.settings.port or 21

    def _new_client(self) -> ftplib.FTP:
        return ftplib.FTP(timeout=self.settings.timeout, encoding="utf-8")

    def _secure(self, ftp: ftplib.FTP) -> None:
        """Hook for FTPS: protect the control connection before the password goes out."""

    def _after_login(self, ftp: ftplib.FTP) -> None:
        """Hook for FTPS: protect the data connections."""

    def connect(self) -> None:
        if self.settings.host is None:
            raise TransportError(f"{self.protocol}: no host configured", retryable=False)
        self.close()
        ftp = self._new_client()
        try:
            with self._mapped("connect"):
                ftp.connect(self.settings.host, self._port, timeout=self.settings.timeout)
            self._secure(ftp)
            username = self.settings.username or "anonymous"
            password = self.settings.password.reveal() if self.settings.password else ""
            with self._mapped("login", command="login"):
                ftp.login(username, password)
            self._after_login(ftp)
            with self._mapped("login", command="TYPE"):
                # Binary mode once per session: SIZE is refused or wrong in ASCII mode on some
                # servers, and every transfer here is binary.
                ftp.voidcmd("TYPE I")
            self._ftp = ftp
            self._remote_dir = self._absolute(self.settings.remote_dir)
            self._in_remote_dir = self._try_cwd(self._remote_dir)
        except BaseException:
            self._ftp = None
            _quietly_close(ftp)
            raise
        logger.debug("{}: connected as {}", self._where, self.settings.username or "anonymous")

    def close(self) -> None:
        ftp, self._ftp = self._ftp, None
        self._in_remote_dir = False
        if ftp is None:
            return
        try:
            ftp.quit()  # bounded by the socket timeout
        except Exception as exc:
            logger.debug("{}: QUIT failed ({}), closing anyway", self._where, exc)
        _quietly_close(ftp)

    @property
    def _client(self) -> ftplib.FTP:
        if self._ftp is None:
            raise TransportError(f"{self._where}: not connected", retryable=True)
        return self._ftp

    @contextmanager
    def _mapped(self, action: str, command: str | None = None) -> Iterator[None]:
        """Translate ftplib / socket / TLS exceptions into our error tree (``raise ... from``)."""
        try:
            yield
        except (ftplib.Error, OSError, EOFError) as exc:
            error = error_for_exception(exc, command or action.upper(), self._where)
            raise error from exc

    # -- directories ---------------------------------------------------------------------------

    def _absolute(self, remote_dir: str) -> str:
        """``remote_dir`` relative to the login directory, made absolute, so that a CWD never
        depends on where an earlier (maybe failed) CWD left us."""
        if remote_dir.startswith("/"):
            return remote_dir
        try:
            home = self._client.pwd()
        except (ftplib.Error, OSError, EOFError) as exc:
            logger.debug("{}: PWD failed ({}); using remote_dir as given", self._where, exc)
            return remote_dir
        return posixpath.join(home, remote_dir)

    def _try_cwd(self, path: str) -> bool:
        try:
            self._client.cwd(path)
        except ftplib.error_perm:
            return False
        except (ftplib.Error, OSError, EOFError) as exc:
            raise error_for_exception(exc, "CWD", self._where) from exc
        return True

    def mkdirs(self) -> None:
        """Create every missing component of ``remote_dir`` and change into it."""
        remote_dir = self._remote_dir
        if self._try_cwd(remote_dir):
            self._in_remote_dir = True
            return
        ftp = self._client
        if remote_dir.startswith("/"):
            with self._mapped("mkdirs", command="CWD"):
                ftp.cwd("/")
        for part in [p for p in remote_dir.split("/") if p]:
            if self._try_cwd(part):
                continue
            try:
                ftp.mkd(part)
            except ftplib.error_perm as exc:
                # "exists" comes back as 550 too (another client, a race): the CWD decides.
                logger.debug("{}: MKD {} said {}", self._where, part, exc)
            except (ftplib.Error, OSError, EOFError) as exc:
                raise error_for_exception(exc, "MKD", self._where) from exc
            with self._mapped(f"creating {remote_dir}", command="CWD"):
                ftp.cwd(part)
        self._in_remote_dir = True

    # -- files ---------------------------------------------------------------------------------

    def put(self, local: Path, remote_name: str, progress: Progress | None = None) -> PutResult:
        check_remote_name(remote_name)
        if not self._in_remote_dir:
            self.mkdirs()
        local_size = local.stat().st_size
        target = remote_name + TEMP_SUFFIX if self.settings.atomic_rename else remote_name
        self._store(local, target, progress)
        if self.settings.atomic_rename:
            self._rename(target, remote_name)
        remote_size = self._size_after_upload(remote_name)
        if remote_size is None:
            # 226 came, then the file vanished: an agency robot took it. Never re-send it.
            logger.info(
                "{}: {} confirmed, then gone from the server (taken by ingest?)", self._where, remote_name
            )
            return PutResult(remote_name, local_size, verified=False)
        if remote_size != local_size:
            self.delete(remote_name)
            raise TransportError(
                f"{self._where}: {remote_name} arrived with {remote_size} of {local_size} bytes",
                retryable=True,
            )
        return PutResult(remote_name, local_size, verified=True)

    def _store(self, local: Path, target: str, progress: Progress | None) -> None:
        """STOR ``local`` as ``target``; the server's final reply decides success."""
        ftp = self._client
        # Opened first: a missing local file must not cost the remote one anything.
        with local.open("rb", buffering=0) as source:
            try:
                conn = ftp.transfercmd(f"STOR {target}")
                # The last segment of each file (and TLS's close_notify) leaves at once instead of
                # waiting for the receiver's delayed ACK: ~40 ms per file (bench/README.md).
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except ftplib.Error as exc:
                # Refused before the data connection opened (553, 452, ...): nothing was written.
                raise error_for_exception(exc, "STOR", self._where) from exc
            except BaseException as exc:
                # The data connection failed after STOR (vsftpd leaves an empty file on 522).
                self._fail_store(exc, target, in_sync=False)
            try:
                sent = 0
                try:
                    # (sendfile() was tried for plain FTP: 470 against 660 MB/s for 1 MiB send()s.)
                    block = memoryview(self._block)
                    while count := source.readinto(block):
                        _send_all(conn, block[:count])
                        sent += count
                        if progress is not None:
                            progress(sent)
                    _wait_until_sent(
                        conn, self.settings.timeout, lambda: progress(sent) if progress else None
                    )
                    if isinstance(conn, ssl.SSLSocket):
                        self._unwrap(conn)
                finally:
                    conn.close()
                ftp.voidresp()  # 226 (or 426/451/552 ...)
            except BaseException as exc:
                # Also for an exception from ``progress`` (a shutdown): a cut-off STOR leaves a
                # short file, which must not stay under a name an ingest robot takes.
                self._fail_store(exc, target, in_sync=isinstance(exc, ftplib.Error))

    def _fail_store(self, exc: BaseException, target: str, in_sync: bool) -> NoReturn:
        """Remove what a failed STOR left behind, then raise ``exc`` as our error."""
        self._discard_partial(target, in_sync)
        if isinstance(exc, (ftplib.Error, OSError, EOFError)):
            raise error_for_exception(exc, "STOR", self._where) from exc
        raise exc

    def _unwrap(self, conn: ssl.SSLSocket) -> None:
        # The TLS close_notify exchange tells the server the data is complete (without it, curl
        # and lftp lose data under TLS 1.3, perf.md §3.3). Some servers reset instead of
        # answering it; that is not a failure: the 226 that follows is what counts.
        try:
            conn.unwrap()
        except (OSError, ssl.SSLError) as exc:
            logger.debug("{}: TLS unwrap after the data failed ({}); waiting for the reply", self._where, exc)

    def _discard_partial(self, target: str, in_sync: bool) -> None:
        """Best effort: a half-sent file must not stay on the server for a robot to take."""
        try:
            if not in_sync:
                # A reply we did not read may be pending; a fresh session cannot be confused by
                # it. No QUIT on the old one: it would read that stale reply.
                if self._ftp is not None:
                    _quietly_close(self._ftp)
                    self._ftp = None
                self.connect()
                if not self._in_remote_dir:
                    return
            self._client.delete(target)
            logger.debug("{}: removed partial {}", self._where, target)
        except Exception as exc:
            logger.debug("{}: could not remove partial {}: {}", self._where, target, exc)

    def _rename(self, source: str, target: str) -> None:
        # RNTO replaces an existing target on common servers (vsftpd, ProFTPD, pyftpdlib use
        # rename(2)); a server that refuses says so and the job fails with its words.
        try:
            with self._mapped(f"renaming {source}", command="RNTO"):
                self._client.rename(source, target)
        except TransportError:
            self.delete(source)
            raise

    def _size_after_upload(self, remote_name: str) -> int | None:
        try:
            return self._client.size(remote_name)
        except ftplib.error_perm as exc:
            if reply_code(str(exc)) in (500, 501, 502, 504):
                # SIZE not implemented: the 226 is all the confirmation this server gives.
                logger.debug("{}: SIZE unsupported ({}); upload confirmed by 226 only", self._where, exc)
            return None
        except (ftplib.Error, OSError, EOFError) as exc:
            raise error_for_exception(exc, "SIZE", self._where) from exc

    def size(self, remote_name: str) -> int | None:
        check_remote_name(remote_name)
        if not self._in_remote_dir:
            self._in_remote_dir = self._try_cwd(self._remote_dir)
            if not self._in_remote_dir:
                return None
        try:
            return self._client.size(remote_name)
        except ftplib.error_perm:
            return None  # 550: not there
        except (ftplib.Error, OSError, EOFError) as exc:
            raise error_for_exception(exc, "SIZE", self._where) from exc

    def delete(self, remote_name: str) -> None:
        check_remote_name(remote_name)
        try:
            if not self._in_remote_dir:
                self._in_remote_dir = self._try_cwd(self._remote_dir)
                if not self._in_remote_dir:
                    return
            self._client.delete(remote_name)
        except (ftplib.Error, OSError, EOFError, TransportError) as exc:
            logger.debug("{}: DELE {} failed: {}", self._where, remote_name, exc)


@register("ftps")
class FTPSTransport(FTPTransport):
    """Explicit FTPS: TLS on the control connection before login, ``PROT P`` for the data."""

    tls = True

    def _new_client(self) -> ftplib.FTP:
        ca_file = str(self.settings.ca_file) if self.settings.ca_file else None
        return _SessionReusingFTP_TLS(
            context=_tls_context(ca_file), timeout=self.settings.timeout, encoding="utf-8"
        )

    def _secure(self, ftp: ftplib.FTP) -> None:
        assert isinstance(ftp, ftplib.FTP_TLS)
        try:
            ftp.auth()  # AUTH TLS, then the handshake verifies certificate and host name
        except ssl.SSLCertVerificationError as exc:
            raise error_for_exception(exc, "AUTH TLS", self._where) from exc
        except ftplib.error_perm as exc:
            # Never fall back to plain FTP: the password would travel in clear.
            raise TransportError(
                f"{self._where}: the server does not offer TLS ({str(exc).strip()})",
                hint="use protocol 'ftps' only with servers that support AUTH TLS; nothing was sent",
                retryable=False,
            ) from exc
        except (ftplib.Error, OSError, EOFError) as exc:
            raise error_for_exception(exc, "AUTH TLS", self._where) from exc

    def _after_login(self, ftp: ftplib.FTP) -> None:
        assert isinstance(ftp, ftplib.FTP_TLS)
        with self._mapped("login", command="PROT"):
            ftp.prot_p()


def _quietly_close(ftp: Any) -> None:
    try:
        ftp.close()
    except Exception as exc:
        logger.debug("closing the FTP socket failed: {}", exc)


def _wait_until_sent(conn: socket.socket, stall_timeout: float, tick: Callable[[], object]) -> None:
    """Wait while the kernel still holds bytes of this upload, for as long as they keep leaving.

    ``send()`` returns once the data is in the kernel's buffer, which on a fast machine can hold
    megabytes; on a slow uplink draining it takes longer than the reply timeout, and the 226 would
    be given up on while the file is still arriving. So the timeout here means "no progress",
    measured on the socket's send queue (Linux SIOCOUTQ; elsewhere we do not wait).
    """
    if not sys.platform.startswith("linux"):
        return
    import fcntl

    # Done when at most _IN_FLIGHT_TAIL bytes are left in the kernel, sent or not: that tail leaves
    # well within the reply timeout that follows even on a slow link, and waiting for all of it
    # cost the receiver's delayed-ACK time, ~40 ms per file (bench/README.md). A file smaller than
    # the tail never waits here.
    last, last_change = -1, time.monotonic()
    # With TCP_NOTSENT_LOWAT at the tail, poll() wakes us the moment the unsent part drops below
    # it, instead of a nap that overshoots (naps cost 3-4 ms per 8 MB file on loopback). Bytes sent
    # but not yet acknowledged do not wake poll(): for those, look again soon, then back off.
    with contextlib.suppress(OSError, AttributeError):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, _IN_FLIGHT_TAIL)
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLOUT)
    delay = 0.0001
    while True:
        try:
            queued = struct.unpack("i", fcntl.ioctl(conn.fileno(), _SIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return
        if queued <= _IN_FLIGHT_TAIL:
            return
        if _peer_gone(conn):
            # The server closed (or reset) the data connection with our bytes still unread:
            # they will never be acknowledged, so waiting out the timeout would only delay the retry.
            raise ConnectionResetError("the server closed the data connection before taking all the data")
        now = time.monotonic()
        if queued != last:
            last, last_change = queued, now
        elif now - last_change > stall_timeout:
            raise TimeoutError(f"no data acknowledged for {stall_timeout:.0f} s")
        tick()
        if poller.poll(50):  # the unsent part is below the tail: the rest is in flight
            time.sleep(delay)
            delay = min(0.05, delay * 2)


#: linux/sockios.h: bytes in a socket's send queue (sent or not, not yet acknowledged).
_SIOCOUTQ = 0x5411
#: Unacknowledged bytes left to the reply timeout: 256 KiB take 2.6 s even at 100 KB/s.
_IN_FLIGHT_TAIL = 256 * 1024

#: TCP_CLOSE and TCP_CLOSE_WAIT (linux/tcp_states.h): the peer reset the connection or closed its end.
_TCP_PEER_GONE_STATES = frozenset({7, 8})


def _peer_gone(conn: socket.socket) -> bool:
    """Has the other end closed or reset this connection? (Linux TCP_INFO; elsewhere: don't know.)"""
    try:
        if conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            return True
        info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
    except (OSError, AttributeError):
        return False
    return bool(info) and info[0] in _TCP_PEER_GONE_STATES


def _send_all(conn: socket.socket, block: bytes | memoryview) -> None:
    """``sendall`` with the timeout meaning "no progress for that long".

    A plain socket's ``sendall()`` must finish the whole block within the timeout (Python >= 3.5):
    1 MiB at a 30 s timeout would fail every upload on links slower than ~35 KB/s. ``send()``
    waits at most the timeout for *some* bytes to go out, so only a stalled link times out.
    """
    view = memoryview(block)
    while view:
        sent = conn.send(view)
        view = view[sent:]
