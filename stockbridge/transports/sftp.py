"""SFTP over paramiko, with the host key checked before anything secret is sent.

``paramiko.Transport`` is driven by hand instead of ``SSHClient``: the key exchange runs, the
server's host key is compared with the pinned ``host_key`` fingerprint or the ``known_hosts`` file,
and only then does authentication start. An unknown or changed key raises
:class:`~stockbridge.errors.TrustError` with no password or key signature sent.

Speed (decisions.md M-4): a socket with ``TCP_NODELAY`` (Nagle + delayed ACK stalls ~1 file in 10 for
~45 ms otherwise), AES-GCM first in the cipher list, pipelined writes, and no ``confirm`` stat inside
paramiko (our own stat treats "gone after close" as an ingest robot at work, not as a failure).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import posixpath
import socket
import stat as stat_module
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paramiko
from loguru import logger
from paramiko.sftp import (
    CMD_CLOSE,
)

from stockbridge.errors import (
    AuthError,
    QuotaError,
    RemoteRejectedError,
    RemoteSetupError,
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
from stockbridge.transports.ftp_replies import check_remote_dir, check_remote_name
from stockbridge.transports.listing import sftp_listed_sizes
from stockbridge.transports.resume import ResumeOffer, Start, keeps_partial, plan_start, sftp_hash
from stockbridge.transports.sftp_pipeline import (
    POSIX_RENAME,
    Pipeline,
    confirm_overlapped,
)
from stockbridge.transports.sftp_protocol import (
    DEFAULT_REQUEST_SIZE,
    SFTPClient,
    WriteReplies,
    check_file_name,
    error_for_exception,
    hash_algorithm,
    open_for_write,
    server_write_limit,
    too_large_or_full,
)
from stockbridge.transports.ssh_keys import (
    KEY_ALGORITHMS,
    MAX_HOST_KEY_TRIES,
    fingerprint,
    key_type_of,
    normalise_fingerprint,
    parse_host_key_pins,
)

#: Preferred first when the server offers them: +10-25 % throughput over aes128-ctr (decisions.md M-4).
_GCM_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
#: A dead peer is noticed by the channel timeout; keepalives keep NAT and firewalls from dropping an
#: idle session between two files of a batch (decisions.md S-5).
_KEEPALIVE_SECONDS = 30
_READ_CHUNK = 1024 * 1024


@register("sftp")
class SFTPTransport(Transport):
    checks_in_batches = True

    def __init__(self, settings: TransportSettings) -> None:
        super().__init__(settings)
        check_remote_dir(settings.remote_dir)
        self._transport: paramiko.Transport | None = None
        self._sftp: SFTPClient | None = None
        self._pipe: Pipeline | None = None
        self._dir_ready = False
        self._request_size = settings.sftp_request_size or DEFAULT_REQUEST_SIZE
        #: Does the server answer check-file-name? None: not asked yet in this session.
        self._check_file: bool | None = None

    @property
    def _port(self) -> int:
        return self.settings.port or 22

    @property
    def _where(self) -> str:
        return f"sftp {self.settings.host}:{self._port}"

    # -- session -------------------------------------------------------------------------------

    def connect(self) -> None:
        host = self.settings.host
        if host is None:
            raise TransportError("sftp: no host configured", retryable=False)
        if not self.settings.host_key and not self.settings.known_hosts:
            # Refuse before connecting: trusting whatever key answers first would hand the
            # password to anyone on the path (decisions.md S-3).
            raise TrustError(
                f"{self._where}: no host_key or known_hosts configured, so the server cannot be verified",
                hint=f"get the fingerprint with `ssh-keyscan -p {self._port} {host} | ssh-keygen -lf -`, "
                'check it with the agency, and set host_key = "SHA256:..."',
            )
        if not self.settings.username:
            raise TransportError(f"{self._where}: no username configured", retryable=False)
        if not self.settings.key_file and not self.settings.password:
            raise TransportError(f"{self._where}: neither password nor key_file configured", retryable=False)
        self.close()
        timeout = self.settings.timeout
        transport = self._trusted_transport(host)
        try:
            self._authenticate(transport)
            with self._mapped("opening the SFTP session"):
                sftp = SFTPClient.from_transport(transport)
                if sftp is None:
                    raise TransportError(f"{self._where}: the server refused the SFTP subsystem")
                sftp.get_channel().settimeout(timeout)
                transport.set_keepalive(_KEEPALIVE_SECONDS)
        except BaseException:
            transport.close()
            raise
        self._transport, self._sftp = transport, sftp
        self._pipe = Pipeline(sftp, self._where, self._remove_quietly, self._too_large_or_full)
        self._dir_ready = False
        # OpenSSH has no check-file-name: no probe with the first file (mod_sftp has its own banner).
        self._check_file = False if transport.remote_version.startswith("SSH-2.0-OpenSSH") else None
        self._request_size = self.settings.sftp_request_size or server_write_limit(sftp, self._where)
        logger.debug(
            "{}: connected as {} ({}, writes of {} bytes)",
            self._where,
            self.settings.username,
            transport.remote_cipher,
            self._request_size,
        )

    def _trusted_transport(self, host: str) -> paramiko.Transport:
        """An SSH session whose host key matches a pin or known_hosts; nothing secret sent yet.

        A server has several host keys (ed25519, ECDSA, RSA) and shows one per connection, the
        first type both sides list. The user may have pinned another one (``ssh-keyscan`` prints
        RSA first): then we ask again for each other type the server might hold, until one
        matches or the server has no more.
        """
        tried: set[str] = set()
        first_mismatch: TrustError | None = None
        while True:
            try:
                transport, server_key = self._key_exchange(host, exclude=tried)
            except TransportError:
                if first_mismatch is None:
                    raise
                raise first_mismatch from None  # it has no other key type: the mismatch stands
            try:
                self._check_host_key(server_key)
                return transport
            except TrustError as mismatch:
                transport.close()
                first_mismatch = first_mismatch or mismatch
                tried.add(server_key.get_name())
                if not self._pins or len(tried) >= MAX_HOST_KEY_TRIES:
                    raise first_mismatch from None
            except BaseException:
                transport.close()
                raise
            if not self._remaining_key_types(tried):
                raise first_mismatch

    def _key_exchange(self, host: str, exclude: set[str]) -> tuple[paramiko.Transport, paramiko.PKey]:
        timeout = self.settings.timeout
        transport: paramiko.Transport | None = None
        try:
            with self._mapped("connect"):
                sock = socket.create_connection((host, self._port), timeout=timeout)
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    transport = paramiko.Transport(sock)
                except BaseException:
                    sock.close()
                    raise
                transport.banner_timeout = timeout
                transport.handshake_timeout = timeout
                transport.auth_timeout = timeout
                transport.channel_timeout = timeout
                self._prefer_algorithms(transport, exclude)
                transport.start_client(timeout=timeout)
                return transport, transport.get_remote_server_key()
        except BaseException:
            if transport is not None:
                transport.close()
            raise

    @property
    def _pins(self) -> list[tuple[str, str | None]]:
        return parse_host_key_pins(self.settings.host_key)

    def _remaining_key_types(self, tried: set[str]) -> list[str]:
        return [
            algorithm
            for algorithm in paramiko.Transport._preferred_keys
            if key_type_of(algorithm) not in tried
        ]

    def _prefer_algorithms(
        self, transport: paramiko.Transport, exclude: frozenset[str] | set[str] = frozenset()
    ) -> None:
        options = transport.get_security_options()
        available = tuple(options.ciphers)
        options.ciphers = tuple(c for c in _GCM_CIPHERS if c in available) + tuple(
            c for c in available if c not in _GCM_CIPHERS
        )
        # Ask first for the key type known_hosts holds for this server, as OpenSSH does, or the
        # type a pin names (``ssh-keygen -lf`` lines end in "(ED25519)"); otherwise a server
        # with several host keys could show one we have no entry for.
        wanted: list[str] = []
        known = self._known_entry()
        if known:
            wanted += [alg for name in known for alg in KEY_ALGORITHMS.get(name, (name,))]
        for _fingerprint, key_type in self._pins:
            if key_type:
                wanted += list(KEY_ALGORITHMS.get(key_type, (key_type,)))
        key_types = tuple(k for k in options.key_types if key_type_of(k) not in exclude)
        if not key_types:
            raise TransportError(f"{self._where}: the server offers no other host key type", retryable=False)
        options.key_types = tuple(k for k in wanted if k in key_types) + tuple(
            k for k in key_types if k not in wanted
        )

    def _known_hosts_name(self) -> str:
        host = self.settings.host or ""
        return host if self._port == 22 else f"[{host}]:{self._port}"

    def _known_entry(self) -> Any:
        if not self.settings.known_hosts:
            return None
        try:
            host_keys = paramiko.HostKeys(str(self.settings.known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise TrustError(
                f"{self._where}: cannot read known_hosts {self.settings.known_hosts}: {exc}",
                hint="check the known_hosts path in the config",
            ) from exc
        return host_keys.lookup(self._known_hosts_name())

    def _check_host_key(self, key: paramiko.PKey) -> None:
        offered = fingerprint(key)
        if any(normalise_fingerprint(pin) == normalise_fingerprint(offered) for pin, _type in self._pins):
            return
        known = self._known_entry()
        if known and known.get(key.get_name()) == key:
            return
        if known and key.get_name() in known:
            problem = "differs from the one in known_hosts: the key changed or someone is in between"
        elif self.settings.host_key:
            problem = "does not match the pinned host_key"
        else:
            problem = f"is not in known_hosts {self.settings.known_hosts}"
        raise TrustError(
            f"{self._where}: host key {key.get_name()} {offered} {problem}; nothing was sent",
            hint="confirm the fingerprint with the agency before changing host_key / known_hosts",
        )

    def _authenticate(self, transport: paramiko.Transport) -> None:
        username = self.settings.username or ""
        password = self.settings.password
        try:
            if self.settings.key_file:
                remaining = transport.auth_publickey(username, self._load_key(self.settings.key_file))
                if not transport.is_authenticated() and password and "password" in remaining:
                    transport.auth_password(username, password.reveal())
            elif password:
                transport.auth_password(username, password.reveal())
        except paramiko.BadAuthenticationType as exc:
            raise AuthError(
                f"{self._where}: the server does not accept this login method "
                f"(it allows: {', '.join(exc.allowed_types) or 'nothing'})",
                hint="configure a key_file or a password, whichever the agency uses",
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise AuthError(
                f"{self._where}: login as {username} refused",
                hint="check the username and the password or key; the platform is paused meanwhile",
            ) from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise error_for_exception(exc, "login", self._where) from exc
        if not transport.is_authenticated():
            raise AuthError(f"{self._where}: login as {username} needs another authentication step")

    def _load_key(self, path: Path) -> paramiko.PKey:
        try:
            # from_path recognises ed25519, ECDSA and RSA keys, in OpenSSH or PEM format.
            return paramiko.PKey.from_path(path)
        except paramiko.PasswordRequiredException as exc:
            raise TransportError(
                f"{self._where}: key_file {path} is protected by a passphrase",
                hint="use a key without passphrase, readable only by the user stockbridge runs as",
                retryable=False,
            ) from exc
        except (OSError, ValueError, paramiko.SSHException, paramiko.pkey.UnknownKeyType) as exc:
            raise TransportError(
                f"{self._where}: cannot load key_file {path}: {exc}",
                hint="key_file must be an ed25519, ECDSA or RSA private key",
                retryable=False,
            ) from exc

    def close(self) -> None:
        sftp, self._sftp = self._sftp, None
        self._pipe = None  # what was in flight is answered AnswerLost (transports/sftp_pipeline.py)
        transport, self._transport = self._transport, None
        for closable in (sftp, transport):
            if closable is None:
                continue
            try:
                closable.close()
            except Exception as exc:
                logger.debug("{}: close failed: {}", self._where, exc)

    @property
    def _client(self) -> SFTPClient:
        if self._sftp is None:
            raise TransportError(f"{self._where}: not connected", retryable=True)
        return self._sftp

    @contextmanager
    def _mapped(self, action: str, *, per_file: bool = False) -> Iterator[None]:
        try:
            yield
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise error_for_exception(exc, action, self._where, per_file=per_file) from exc

    # -- paths ---------------------------------------------------------------------------------

    def _remote(self, remote_name: str) -> str:
        check_remote_name(remote_name)
        return posixpath.join(self.settings.remote_dir, remote_name)

    def _stat_size(self, path: str) -> int | None:
        try:
            return self._client.stat(path).st_size
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise error_for_exception(exc, f"stat {path}", self._where) from exc
        except (paramiko.SSHException, EOFError) as exc:
            raise error_for_exception(exc, f"stat {path}", self._where) from exc

    def mkdirs(self) -> None:
        remote_dir = self.settings.remote_dir
        sftp = self._client
        if self._is_dir(remote_dir):
            self._dir_ready = True
            return
        path = "/" if remote_dir.startswith("/") else ""
        for part in [p for p in remote_dir.split("/") if p]:
            path = posixpath.join(path, part)
            if self._is_dir(path):
                continue
            try:
                sftp.mkdir(path)
            except OSError as exc:
                if isinstance(exc, (socket.timeout, ConnectionError)):
                    raise error_for_exception(exc, f"mkdir {path}", self._where) from exc
                if not self._is_dir(path):  # created meanwhile by someone else is fine
                    words = exc.strerror or (str(exc.args[0]) if exc.args else type(exc).__name__)
                    raise RemoteSetupError(
                        f"{self._where}: cannot create the remote folder {path}: {words}",
                        hint="create the folder on the server, or change remote_dir for this platform",
                    ) from exc
            except (paramiko.SSHException, EOFError) as exc:
                raise error_for_exception(exc, f"mkdir {path}", self._where) from exc
        self._dir_ready = True

    def _is_dir(self, path: str) -> bool:
        try:
            attributes = self._client.stat(path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EACCES):
                return False
            raise error_for_exception(exc, f"stat {path}", self._where) from exc
        except (paramiko.SSHException, EOFError) as exc:
            raise error_for_exception(exc, f"stat {path}", self._where) from exc
        return stat_module.S_ISDIR(attributes.st_mode or 0)

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
        final = self._remote(remote_name)
        if not self._dir_ready:
            self.mkdirs()
        local_size = local.stat().st_size
        target = final + TEMP_SUFFIX if self.settings.atomic_rename else final
        pipe = self._pipeline
        overlapped = not verify and self._hash_algorithm() is None and (target == final or self._posix_rename)
        if overlapped and (full := pipe.storage_full()) is not None:
            raise QuotaError(f"{self._where}: {remote_name} not sent: {full.message}", hint=full.hint)
        try:
            with self._mapped(f"uploading {target}", per_file=True):
                if overlapped:  # its last bytes, close and rename go with the next file's
                    start = self._start(local, target, None, resume)
                    ticket = pipe.send(local, target, final, start, resume, progress, self._request_size)
                    return PutResult(remote_name, local_size, verified=False, pending=True, ticket=ticket)
                pipe.flush()
                hashed_by = self._write(local, target, progress, resume)
        except QuotaError as full:
            self._remove_quietly(target)
            raise self._too_large_or_full(full, target, local_size) from full
        except BaseException as exc:
            # Also for an exception from ``progress`` (a shutdown): never leave a short file,
            # unless it was cut and may be resumed (transports/resume.py).
            if resume is None or not keeps_partial(exc):
                self._remove_quietly(target)
            raise
        if target != final:
            self._rename(target, final, local_size)
        if not verify:  # every status came; its size under the final name is confirm()'s to check
            return PutResult(remote_name, local_size, verified=False, verified_by=hashed_by, pending=True)
        remote_size = self._stat_size(final)
        if remote_size is None:
            # Closed without error, then gone: an agency robot took it. Never re-send it.
            logger.info("{}: {} confirmed, then gone from the server (taken by ingest?)", self._where, final)
            return PutResult(remote_name, local_size, verified=False)
        if remote_size != local_size:
            self._remove_quietly(final)
            raise TransportError(
                f"{self._where}: {final} arrived with {remote_size} of {local_size} bytes", retryable=True
            )
        return PutResult(remote_name, local_size, verified=True, verified_by=hashed_by or "size")

    @property
    def _pipeline(self) -> Pipeline:
        if self._pipe is None:
            raise TransportError(f"{self._where}: not connected", retryable=True)
        return self._pipe

    @property
    def _posix_rename(self) -> bool:
        return POSIX_RENAME in getattr(self._client, "server_extensions", {})

    def answered(self, sent: PutResult) -> bool:
        return sent.ticket is None or self._pipeline.answered(sent.ticket)

    def confirm(self, pending: list[PutResult]) -> list[PutResult | TransportError]:
        """The answers still on their way (sftp_pipeline.py), then the look under the final name."""
        return confirm_overlapped(self._pipeline, pending, self.judge_arrived, super().confirm)

    def _too_large_or_full(self, full: QuotaError, target: str, size: int) -> TransportError:
        return too_large_or_full(self._client, full, target, size, self._where)

    # -- hashes the server computes ------------------------------------------------------------

    def _hash_algorithm(self) -> str | None:
        return hash_algorithm(getattr(self._client, "server_extensions", {}), self._check_file)

    def _compare_hash(self, target: str, algorithm: str, ours: str) -> str | None:
        """Ask the server for ``algorithm`` of ``target`` and compare. Returns the algorithm when
        they match, None when the server did not answer usably (size is then the check);
        raises when they differ (the stored file is not what we sent)."""
        try:
            answer = check_file_name(self._client, target, algorithm)
        except Exception as exc:  # a server without it, or that fails it, costs the hash only
            logger.debug(
                "{}: {} of {} unanswered ({}); size is the check", self._where, algorithm, target, exc
            )
            if self._check_file is None:
                self._check_file = False
            return None
        self._check_file = True
        if answer is None or answer[0] != algorithm or not answer[1]:
            return None
        theirs = answer[1]
        if theirs != ours:
            raise TransportError(
                f"{self._where}: {target} arrived with the right size but a different {algorithm} "
                f"(server {theirs[:16]}…, ours {ours[:16]}…)",
                retryable=True,
            )
        return algorithm

    def _start(self, local: Path, target: str, algorithm: str | None, resume: ResumeOffer | None) -> Start:
        """From zero, or from the bytes of ``target`` already on the server (transports/resume.py)."""
        fresh = (lambda: hashlib.new(algorithm)) if algorithm else None
        theirs = (lambda: sftp_hash(self._client, target, algorithm)) if algorithm else (lambda: None)
        return plan_start(resume, target, local, lambda: self._stat_size(target), fresh, theirs, self._where)

    def _write(
        self, local: Path, target: str, progress: Progress | None, resume: ResumeOffer | None = None
    ) -> str | None:
        """Send ``local`` to ``target`` with pipelined writes; every write's status and the
        close's are read before this returns. Returns the server's hash of the stored file when
        it offers one (``check-file-name``) and it matched ours, else None.

        paramiko's own pipelined ``SFTPFile`` reads write replies only once more than 100 are
        outstanding, drops replies that another request reads first, and ignores the status of
        the close: a server's "File too large" or "No space left" was lost, and writes at
        offsets past a failed one left a file of the right size with a hole of zeros.
        """
        sftp = self._client
        algorithm = self._hash_algorithm()
        start = self._start(local, target, algorithm, resume)
        digest = start.digest
        with local.open("rb") as source:
            source.seek(start.offset)
            handle = open_for_write(sftp, target, truncate=not start.offset)
            start.announce(resume)
            writes = WriteReplies(sftp, self._where, target)
            closed = False
            try:
                offset = start.offset
                while block := source.read(_READ_CHUNK):
                    if digest is not None:
                        digest.update(block)
                    view = memoryview(block)
                    while view:
                        chunk = view[: self._request_size]
                        writes.send(handle, offset, chunk)
                        offset += len(chunk)
                        view = view[len(chunk) :]
                    if progress is not None:
                        progress(offset)
                writes.finish_and_close(handle)
                closed = True
            finally:
                if not closed:
                    writes.abandon()
                    with contextlib.suppress(Exception):
                        if not writes.close_sent:
                            sftp._async_request(type(None), CMD_CLOSE, handle)
        if digest is None or algorithm is None:
            return None
        return self._compare_hash(target, algorithm, digest.hexdigest())

    def _rename(self, source: str, target: str, local_size: int) -> None:
        sftp = self._client
        if POSIX_RENAME in getattr(sftp, "server_extensions", {}):
            try:
                with self._mapped(f"renaming {source}", per_file=True):
                    sftp.posix_rename(source, target)  # replaces an existing target atomically
            except TransportError:
                self._remove_quietly(source)
                raise
            return
        try:
            with self._mapped(f"renaming {source}", per_file=True):
                sftp.rename(source, target)  # SFTP v3: fails if the target exists
            return
        except TransportError:
            existing = self._stat_size(target)
            self._remove_quietly(source)
            if existing is None:
                raise
        # Never delete-then-rename (a window with no file, decisions.md S-7). A target of the same
        # size is almost surely this file from an attempt whose outcome was lost; anything else
        # needs a person.
        if existing == local_size:
            logger.info("{}: {} already there with the same size; keeping it", self._where, target)
            return
        raise RemoteRejectedError(
            f"{self._where}: {target} already exists ({existing} bytes) and this server cannot replace it",
            hint="remove it on the server, or set atomic_rename = false for this platform",
        )

    def _remove_quietly(self, path: str) -> None:
        try:
            self._client.remove(path)
        except Exception as exc:
            logger.debug("{}: could not remove {}: {}", self._where, path, exc)

    def listed_sizes(self) -> dict[str, int] | None:
        """One ``readdir`` of ``remote_dir``: name -> size of its regular files."""
        return sftp_listed_sizes(self._client, self.settings.remote_dir, self._where)

    def size(self, remote_name: str) -> int | None:
        return self._stat_size(self._remote(remote_name))

    def delete(self, remote_name: str) -> None:
        self._remove_quietly(self._remote(remote_name))
