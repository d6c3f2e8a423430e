"""FTP (plain, opt-in) and FTPS (explicit TLS: ``AUTH TLS``, ``PROT P``) over :mod:`ftplib`.

Why not plain ``ftplib.FTP_TLS``:

- its data connections start a new TLS session; vsftpd (``require_ssl_reuse=YES``, its default),
  ProFTPD and others then refuse every transfer (``522 ... session reuse required``, CPython
  issue 63699). :class:`_SessionReusingFTP_TLS` resumes the control connection's session instead;
- ``storbinary`` treats an error from ``unwrap()`` as a failed upload even when the server then
  confirms it with 226 (CPython issues 103443, 78738); :meth:`FTPTransport._store` reads the 226 and
  lets it decide;
- 8 KiB blocks become 8 KiB TLS records: 1 MiB blocks are 40-50 % faster over TLS (decisions.md M-3).

Reply codes are classified once, in :func:`error_for_reply`.
"""

from __future__ import annotations

import contextlib
import ftplib
import functools
import posixpath
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from loguru import logger

from stockbridge.errors import (
    RemoteSetupError,
    TransportError,
)
from stockbridge.transports.base import (
    TEMP_SUFFIX,
    Progress,
    PutResult,
    Transport,
    TransportSettings,
    register,
)
from stockbridge.transports.ftp_data import open_protected_data
from stockbridge.transports.ftp_replies import (
    HashMethod,
    check_remote_dir,
    check_remote_name,
    choose_hash_method,
    error_for_exception,
    hexdigest,
    new_digest,
    one_line,
    reply_code,
)
from stockbridge.transports.listing import ftp_listed_sizes
from stockbridge.transports.resume import (
    ResumeOffer,
    ResumeRefused,
    Start,
    ftp_hash,
    ftp_size,
    keeps_partial,
    plan_start,
)
from stockbridge.transports.sockets import send_all, wait_until_sent

#: Block size for STOR: ftplib's 8 KiB blocks cost 30-50 % throughput over TLS (decisions.md M-3)
#: and ~20 % against pyftpdlib on plain FTP (measured here, 1 MiB vs 8 KiB).
BLOCKSIZE = 1024 * 1024


@functools.lru_cache(maxsize=8)
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    # One context per CA file per process: create_default_context() costs ~50 ms (it loads the
    # system CA store), which would otherwise be paid on every connection (decisions.md M-3).
    # It verifies the certificate chain and the host name by default.
    context = ssl.create_default_context(cafile=ca_file)
    # Key share on the prime256v1 curve (which every TLS 1.3 server must take, RFC 8446 9.1) rather
    # than OpenSSL's X25519: vsftpd allows only that curve and answered every handshake, one per
    # file, with a HelloRetryRequest, a round trip lost per file (decisions.md M-6).
    context.set_ecdh_curve("prime256v1")
    return context


class _SessionReusingFTP_TLS(ftplib.FTP_TLS):
    """``FTP_TLS`` whose data connections resume the control connection's TLS session.

    Servers that require it (vsftpd ``require_ssl_reuse=YES``) use the shared session to prove
    that the data connection comes from the client that logged in (CPython issue 63699).
    """

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        if self._prot_p and self.passiveserver:  # type: ignore[attr-defined]
            # The TLS handshake goes out with the command, not after its reply (one round trip).
            return open_protected_data(self, cmd, rest), None
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            assert isinstance(self.sock, ssl.SSLSocket)  # AUTH TLS came first
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


@register("ftp")
class FTPTransport(Transport):
    """Plain FTP: the password travels in clear, so it is opt-in (``protocol = "ftp"``)."""

    tls = False
    checks_in_batches = True

    def __init__(self, settings: TransportSettings) -> None:
        super().__init__(settings)
        check_remote_dir(settings.remote_dir)
        self._ftp: ftplib.FTP | None = None
        self._in_remote_dir = False
        self._remote_dir = settings.remote_dir  # made absolute at login
        # One read buffer for every file of the session: a fresh 1 MiB bytes per block is a fresh
        # mapping to fault in and zero each time (16 per 8 MB file). Only the uploading thread uses it.
        self._block = bytearray(BLOCKSIZE)
        self._hash: HashMethod | None = None
        self._hash_known = False
        self._features = ""  # the FEAT reply, read with the hash method
        self._resume: ResumeOffer | None = None  # set during a put that may keep its partial

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
                # Commands are single small writes, each waiting for its reply: never hold one back.
                if ftp.sock is not None:
                    with contextlib.suppress(OSError):
                        ftp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
            self._hash, self._hash_known = None, False
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
        if self._in_remote_dir:  # connect() went there already: no second CWD
            return
        remote_dir = self._remote_dir
        if self._try_cwd(remote_dir):
            self._in_remote_dir = True
            return
        ftp = self._client
        if remote_dir.startswith("/"):
            with self._mapped("mkdirs", command="CWD"):
                ftp.cwd("/")
        path = "/" if remote_dir.startswith("/") else ""
        for part in [p for p in remote_dir.split("/") if p]:
            path = posixpath.join(path, part)
            if self._try_cwd(part):
                continue
            refused = ""
            try:
                ftp.mkd(part)
            except ftplib.error_perm as exc:
                # "exists" comes back as 550 too (another client, a race): the CWD decides.
                refused = one_line(str(exc))
                logger.debug("{}: MKD {} said {}", self._where, part, refused)
            except (ftplib.Error, OSError, EOFError) as exc:
                raise error_for_exception(exc, "MKD", self._where) from exc
            if not self._try_cwd(part):
                raise RemoteSetupError(
                    f"{self._where}: cannot create the remote folder {path}"
                    + (f": MKD refused: {refused}" if refused else ": it is not there after MKD"),
                    hint="create the folder on the server, or change remote_dir for this platform",
                )
        self._in_remote_dir = True

    # -- files ---------------------------------------------------------------------------------

    def put(
        self,
        local: Path,
        remote_name: str,
        progress: Progress | None = None,
        resume: ResumeOffer | None = None,
        *,
        verify: bool = True,
    ) -> PutResult:
        check_remote_name(remote_name)
        if not self._in_remote_dir:
            self.mkdirs()
        local_size = local.stat().st_size
        target = remote_name + TEMP_SUFFIX if self.settings.atomic_rename else remote_name
        method = self._hash_method()
        self._resume = resume
        try:
            start = self._start(local, target, method, resume)
            try:
                self._store(local, target, progress, start.digest, start)
            except ResumeRefused as refused:
                logger.info(
                    "{}: {} cannot be resumed here ({}); sending it from zero", self._where, target, refused
                )
                start = Start(0, new_digest(method.algorithm) if method is not None else None)
                self._store(local, target, progress, start.digest)
        finally:
            self._resume = None
        digest = start.digest
        hashed_by = None
        if method is not None and digest is not None:
            hashed_by = self._compare_hash(target, method, hexdigest(digest), local_size)
        if self.settings.atomic_rename:
            self._rename(target, remote_name)
        if not verify:  # the 226 came; its size under the final name is confirm()'s to check
            return PutResult(remote_name, local_size, verified=False, verified_by=hashed_by, pending=True)
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
        return PutResult(remote_name, local_size, verified=True, verified_by=hashed_by or "size")

    def _start(
        self, local: Path, target: str, method: HashMethod | None, resume: ResumeOffer | None
    ) -> Start:
        """From zero, or from the bytes of ``target`` already on the server (transports/resume.py)."""
        ftp, timeout = self._client, self.settings.timeout

        def remote_hash() -> str | None:
            return ftp_hash(ftp, method, target, local.stat().st_size, timeout) if method else None

        fresh = (lambda: new_digest(method.algorithm)) if method is not None else None
        with self._mapped("resume", command="SIZE"):  # a connection lost meanwhile: our error
            return plan_start(
                resume, target, local, lambda: ftp_size(ftp, target), fresh, remote_hash, self._where
            )

    # -- hashes the server computes ------------------------------------------------------------

    def _hash_method(self) -> HashMethod | None:
        """How to ask this server for the hash of a stored file, learnt from FEAT once per
        session: ``HASH`` (draft-bryan-ftpext-hash) or ProFTPD-style ``XSHA256``/``XSHA1``/
        ``XMD5``/``XCRC``. None when it offers none (pyftpdlib, vsftpd, Pure-FTPd)."""
        if self._hash_known:
            return self._hash
        self._hash_known = True
        try:
            features = self._features = self._client.sendcmd("FEAT")
        except (ftplib.Error, OSError, EOFError) as exc:
            logger.debug("{}: FEAT failed ({}); size is the check", self._where, exc)
            return None
        self._hash = choose_hash_method(features)
        if self._hash is not None:
            try:
                if self._hash.command == "HASH":
                    self._client.sendcmd(f"OPTS HASH {self._hash.name}")
            except (ftplib.Error, OSError, EOFError) as exc:
                logger.debug("{}: OPTS HASH {} refused ({})", self._where, self._hash.name, exc)
                self._hash = None
        logger.debug("{}: stored files checked by {}", self._where, self._hash or "size")
        return self._hash

    def _compare_hash(self, target: str, method: HashMethod, ours: str, size: int) -> str | None:
        """Ask the server for ``target``'s hash and compare it with what we sent. Returns the
        algorithm when they match, None when the server gave no usable answer (size is then the
        check); raises when they differ: the stored file is not what we sent."""
        try:
            theirs = ftp_hash(self._client, method, target, size, self.settings.timeout)
        except (OSError, EOFError) as exc:
            raise error_for_exception(exc, method.command, self._where) from exc
        if theirs is None:
            return None  # refused, or no digest in the reply: size is the check
        if theirs.lower() != ours:
            self.delete(target)
            raise TransportError(
                f"{self._where}: {target} arrived with a different {method.algorithm} "
                f"(server {theirs[:16].lower()}…, ours {ours[:16]}…)",
                retryable=True,
            )
        return method.algorithm

    def _store(
        self,
        local: Path,
        target: str,
        progress: Progress | None,
        digest: Any = None,
        start: Start | None = None,
    ) -> None:
        """STOR ``local`` as ``target``; the server's final reply decides success. ``digest``
        (a hashlib object or a CRC-32 accumulator) sees every byte sent. ``start``: resume at its
        offset (``REST`` + ``STOR``, which raises :class:`ResumeRefused` when refused)."""
        ftp = self._client
        offset = start.offset if start is not None else 0
        # Opened first: a missing local file must not cost the remote one anything.
        with local.open("rb", buffering=0) as source:
            source.seek(offset)
            try:
                conn = ftp.transfercmd(f"STOR {target}", rest=offset or None)
                # The last segment of each file (and TLS's close_notify) leaves at once instead of
                # waiting for the receiver's delayed ACK: ~40 ms per file (bench/README.md).
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except ftplib.Error as exc:
                if offset:
                    raise ResumeRefused(one_line(str(exc))) from exc
                # Refused before the data connection opened (553, 452, ...): nothing was written.
                raise error_for_exception(exc, "STOR", self._where) from exc
            except BaseException as exc:
                # The data connection failed after STOR (vsftpd leaves an empty file on 522).
                self._fail_store(exc, target, in_sync=False)
            if start is not None:
                start.announce(self._resume)
            try:
                sent = offset
                try:
                    # (sendfile() was tried for plain FTP: 470 against 660 MB/s for 1 MiB send()s.)
                    block = memoryview(self._block)
                    while count := source.readinto(block):
                        send_all(conn, block[:count])
                        if digest is not None:
                            digest.update(block[:count])
                        sent += count
                        if progress is not None:
                            progress(sent)
                    wait_until_sent(conn, self.settings.timeout, lambda: progress(sent) if progress else None)
                    if isinstance(conn, ssl.SSLSocket):
                        self._unwrap(conn)
                finally:
                    conn.close()
                ftp.voidresp()  # 226 (or 426/451/552 ...)
            except (OSError, EOFError) as exc:
                # The data connection broke (a reset, a broken pipe, a TLS EOF). Servers close it
                # when they refuse the rest of a file ("552 File too large", "552 Quota exceeded",
                # "451 Error during write"), and their reply is waiting on the control connection:
                # it, not the broken pipe, says what happened.
                reply = self._reply_after_abort()
                if reply is None:
                    self._fail_store(exc, target, in_sync=False)
                self._fail_store(reply, target, in_sync=True)
            except BaseException as exc:
                # Also for an exception from ``progress`` (a shutdown): a cut-off STOR leaves a
                # short file, which must not stay under a name an ingest robot takes.
                self._fail_store(exc, target, in_sync=isinstance(exc, ftplib.Error))

    def _reply_after_abort(self) -> ftplib.Error | None:
        """The server's reply to a STOR whose data connection broke, read with a short timeout;
        None when there is none (the server itself is gone, or it still waits for data)."""
        ftp = self._ftp
        if ftp is None or ftp.sock is None:
            return None
        try:
            ftp.sock.settimeout(min(_ABORT_REPLY_SECONDS, self.settings.timeout))
            reply = ftp.getresp()
        except ftplib.Error as refusal:
            return refusal
        except (OSError, EOFError) as exc:
            logger.debug("{}: no reply after the aborted STOR ({})", self._where, exc)
            return None
        finally:
            with contextlib.suppress(OSError, AttributeError):
                if ftp.sock is not None:
                    ftp.sock.settimeout(self.settings.timeout)
        # A 2xx after a broken data connection: the server says it has the file, but we could
        # not send all of it. Treat as lost; the size check of the retry decides.
        logger.debug("{}: the server answered {!r} after the data connection broke", self._where, reply)
        return None

    def _fail_store(self, exc: BaseException, target: str, in_sync: bool) -> NoReturn:
        """Remove what a failed STOR left behind (unless it was cut and may be resumed), then
        raise ``exc`` as our error."""
        error = (
            error_for_exception(exc, "STOR", self._where)
            if isinstance(exc, (ftplib.Error, OSError, EOFError))
            else exc
        )
        if self._resume is not None and keeps_partial(error):
            logger.debug("{}: the upload of {} was cut; its partial stays for a resume", self._where, target)
            if not in_sync and self._ftp is not None:  # a stale reply may be pending: no QUIT
                _quietly_close(self._ftp)
                self._ftp = None
        else:
            self._discard_partial(target, in_sync)
        if error is exc:
            raise exc
        raise error from exc

    def _unwrap(self, conn: ssl.SSLSocket) -> None:
        # The TLS close_notify exchange tells the server the data is complete (without it, curl
        # and lftp lose data under TLS 1.3, decisions.md M-3). Some servers reset instead of
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

    def listed_sizes(self) -> dict[str, int] | None:
        """One ``MLSD`` (or ``LIST`` where FEAT offers no MLST) of ``remote_dir``."""
        if not self._in_remote_dir:
            return None
        self._hash_method()  # reads FEAT, once per session
        return ftp_listed_sizes(self._client, self._features, self._where, self.settings.timeout)

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


#: How long to wait for the server's reply after it broke off an upload: it is sent at once.
_ABORT_REPLY_SECONDS = 5.0
