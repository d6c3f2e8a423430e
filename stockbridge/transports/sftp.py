"""SFTP over paramiko, with the host key checked before anything secret is sent.

``paramiko.Transport`` is driven by hand instead of ``SSHClient``: the key exchange runs, the
server's host key is compared with the pinned ``host_key`` fingerprint or the ``known_hosts`` file,
and only then does authentication start. An unknown or changed key raises
:class:`~stockbridge.errors.TrustError` with no password or key signature sent.

Speed (perf.md §3.4): a socket with ``TCP_NODELAY`` (Nagle + delayed ACK stalls ~1 file in 10 for
~45 ms otherwise), AES-GCM first in the cipher list, pipelined writes, and no ``confirm`` stat inside
paramiko (our own stat treats "gone after close" as an ingest robot at work, not as a failure).
"""

from __future__ import annotations

import base64
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
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY, CMD_VERSION

from stockbridge.errors import AuthError, RemoteRejectedError, TransportError, TrustError
from stockbridge.transports.base import (
    TEMP_SUFFIX,
    Progress,
    PutResult,
    Transport,
    TransportSettings,
    register,
)
from stockbridge.transports.ftp import check_remote_dir, check_remote_name

#: Preferred first when the server offers them: +10-25 % throughput over aes128-ctr (perf.md §3.4).
_GCM_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
#: A dead peer is noticed by the channel timeout; keepalives keep NAT and firewalls from dropping an
#: idle session between two files of a batch (decisions.md S-5).
_KEEPALIVE_SECONDS = 30
_READ_CHUNK = 1024 * 1024
_POSIX_RENAME = "posix-rename@openssh.com"
#: known_hosts key type -> host key algorithms that prove it (an RSA key signs with SHA-2 today).
_KEY_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


def fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as ``ssh-keygen -lf`` prints it: ``SHA256:`` + unpadded base64."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _normalise_fingerprint(value: str) -> str:
    value = value.strip()
    if value[:7].upper() == "SHA256:":
        value = value[7:]
    return value.rstrip("=")


def _parse_extensions(data: bytes) -> dict[str, bytes]:
    """Extension pairs from an SSH_FXP_VERSION packet (after the version number)."""
    message = paramiko.Message(data)
    message.get_int()
    extensions: dict[str, bytes] = {}
    try:
        while message.get_remainder():
            name = message.get_text()
            extensions[name] = message.get_binary()
    except Exception as exc:
        logger.debug("unreadable SFTP extension list: {}", exc)
    return extensions


#: Write request sizes: 32 KiB every server takes (the SFTP draft's minimum); OpenSSH takes
#: 261120 (256 KiB less its header allowance), which is 1.1-1.3x faster on big files (bench/README.md).
DEFAULT_REQUEST_SIZE = 32 * 1024
MIN_REQUEST_SIZE = 1024
MAX_REQUEST_SIZE = 261120
_LIMITS = "limits@openssh.com"


class _SFTPClient(paramiko.SFTPClient):
    """Keeps the server's extension list, which paramiko reads and drops during the handshake."""

    server_extensions: dict[str, bytes]

    def _read_packet(self) -> tuple[int, bytes]:
        kind, data = super()._read_packet()
        if kind == CMD_VERSION and not hasattr(self, "server_extensions"):
            self.server_extensions = _parse_extensions(data)
        return kind, data


@register("sftp")
class SFTPTransport(Transport):
    def __init__(self, settings: TransportSettings) -> None:
        super().__init__(settings)
        check_remote_dir(settings.remote_dir)
        self._transport: paramiko.Transport | None = None
        self._sftp: _SFTPClient | None = None
        self._dir_ready = False
        self._request_size = settings.sftp_request_size or DEFAULT_REQUEST_SIZE

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
                self._prefer_algorithms(transport)
                transport.start_client(timeout=timeout)
                server_key = transport.get_remote_server_key()
            self._check_host_key(server_key)
            self._authenticate(transport)
            with self._mapped("opening the SFTP session"):
                sftp = _SFTPClient.from_transport(transport)
                if sftp is None:
                    raise TransportError(f"{self._where}: the server refused the SFTP subsystem")
                sftp.get_channel().settimeout(timeout)
                transport.set_keepalive(_KEEPALIVE_SECONDS)
        except BaseException:
            if transport is not None:
                transport.close()
            raise
        self._transport, self._sftp = transport, sftp
        self._dir_ready = False
        self._request_size = self.settings.sftp_request_size or self._server_write_limit(sftp)
        logger.debug(
            "{}: connected as {} ({}, writes of {} bytes)",
            self._where,
            self.settings.username,
            transport.remote_cipher,
            self._request_size,
        )

    def _server_write_limit(self, sftp: _SFTPClient) -> int:
        """The write size the server says it takes (OpenSSH's ``limits@openssh.com``: 261120),
        at most ``MAX_REQUEST_SIZE``; 32 KiB, which every server takes, when it does not say."""
        if _LIMITS not in getattr(sftp, "server_extensions", {}):
            return DEFAULT_REQUEST_SIZE
        try:
            kind, message = sftp._request(CMD_EXTENDED, _LIMITS)
            if kind != CMD_EXTENDED_REPLY or message is None:
                return DEFAULT_REQUEST_SIZE
            message.get_int64()  # max packet length
            message.get_int64()  # max read length
            max_write = message.get_int64()
        except Exception as exc:  # an odd reply costs speed, never the upload
            logger.debug("{}: {} unanswered ({}); writes of 32 KiB", self._where, _LIMITS, exc)
            return DEFAULT_REQUEST_SIZE
        if max_write <= 0:
            return DEFAULT_REQUEST_SIZE
        return max(MIN_REQUEST_SIZE, min(max_write, MAX_REQUEST_SIZE))

    def _prefer_algorithms(self, transport: paramiko.Transport) -> None:
        options = transport.get_security_options()
        available = tuple(options.ciphers)
        options.ciphers = tuple(c for c in _GCM_CIPHERS if c in available) + tuple(
            c for c in available if c not in _GCM_CIPHERS
        )
        # Ask first for the key type known_hosts holds for this server, as OpenSSH does;
        # otherwise a server with several host keys could show one we have no entry for.
        known = self._known_entry()
        if known:
            wanted = [alg for name in known for alg in _KEY_ALGORITHMS.get(name, (name,))]
            key_types = tuple(options.key_types)
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
        if self.settings.host_key and _normalise_fingerprint(
            self.settings.host_key
        ) == _normalise_fingerprint(offered):
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
            raise _error_for_exception(exc, "login", self._where) from exc
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
        transport, self._transport = self._transport, None
        for closable in (sftp, transport):
            if closable is None:
                continue
            try:
                closable.close()
            except Exception as exc:
                logger.debug("{}: close failed: {}", self._where, exc)

    @property
    def _client(self) -> _SFTPClient:
        if self._sftp is None:
            raise TransportError(f"{self._where}: not connected", retryable=True)
        return self._sftp

    @contextmanager
    def _mapped(self, action: str, *, per_file: bool = False) -> Iterator[None]:
        try:
            yield
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise _error_for_exception(exc, action, self._where, per_file=per_file) from exc

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
            raise _error_for_exception(exc, f"stat {path}", self._where) from exc
        except (paramiko.SSHException, EOFError) as exc:
            raise _error_for_exception(exc, f"stat {path}", self._where) from exc

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
                if not self._is_dir(path):  # created meanwhile by someone else is fine
                    raise _error_for_exception(exc, f"mkdir {path}", self._where) from exc
            except (paramiko.SSHException, EOFError) as exc:
                raise _error_for_exception(exc, f"mkdir {path}", self._where) from exc
        self._dir_ready = True

    def _is_dir(self, path: str) -> bool:
        try:
            attributes = self._client.stat(path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EACCES):
                return False
            raise _error_for_exception(exc, f"stat {path}", self._where) from exc
        except (paramiko.SSHException, EOFError) as exc:
            raise _error_for_exception(exc, f"stat {path}", self._where) from exc
        return stat_module.S_ISDIR(attributes.st_mode or 0)

    # -- files ---------------------------------------------------------------------------------

    def put(self, local: Path, remote_name: str, progress: Progress | None = None) -> PutResult:
        final = self._remote(remote_name)
        if not self._dir_ready:
            self.mkdirs()
        local_size = local.stat().st_size
        target = final + TEMP_SUFFIX if self.settings.atomic_rename else final
        try:
            with self._mapped(f"uploading {target}", per_file=True):
                self._write(local, target, progress)
        except BaseException:
            # Also for an exception from ``progress`` (a shutdown): never leave a short file.
            self._remove_quietly(target)
            raise
        if target != final:
            self._rename(target, final, local_size)
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
        return PutResult(remote_name, local_size, verified=True)

    def _write(self, local: Path, target: str, progress: Progress | None) -> None:
        # What SFTPClient.putfo(confirm=False) does, plus a per-file write request size (a class
        # attribute in paramiko; set on the instance so other sessions keep theirs).
        sent = 0
        with local.open("rb") as source, self._client.open(target, "wb") as sink:
            sink.MAX_REQUEST_SIZE = self._request_size
            sink.set_pipelined(True)
            while block := source.read(_READ_CHUNK):
                sink.write(block)
                sent += len(block)
                if progress is not None:
                    progress(sent)
        # Leaving the block closed the handle, which waits for the status of every pipelined
        # write: an error the server reports (disk full, ...) is raised there.

    def _rename(self, source: str, target: str, local_size: int) -> None:
        sftp = self._client
        if _POSIX_RENAME in getattr(sftp, "server_extensions", {}):
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

    def size(self, remote_name: str) -> int | None:
        return self._stat_size(self._remote(remote_name))

    def delete(self, remote_name: str) -> None:
        self._remove_quietly(self._remote(remote_name))


def _error_for_exception(
    exc: BaseException, action: str, where: str, *, per_file: bool = False
) -> TransportError:
    """Map paramiko / socket exceptions to our tree. ``per_file``: the error concerns one file."""
    message = f"{where}: {action} failed"
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return TransportError(f"{message}: timed out", retryable=True)
    if isinstance(exc, paramiko.ssh_exception.IncompatiblePeer):
        return TransportError(
            f"{message}: {exc}", hint="the server's SSH algorithms are too old", retryable=False
        )
    if isinstance(exc, (EOFError, paramiko.SSHException, ConnectionError)):
        return TransportError(f"{message}: connection lost ({exc or type(exc).__name__})", retryable=True)
    if isinstance(exc, OSError):
        text = exc.strerror or (str(exc.args[0]) if exc.args else type(exc).__name__)
        if exc.errno == errno.EACCES:
            if per_file:
                return RemoteRejectedError(f"{message}: permission denied ({text})")
            return TransportError(f"{message}: permission denied ({text})", retryable=False)
        if exc.errno == errno.ENOENT:
            return TransportError(
                f"{message}: no such file or directory ({text})",
                hint="check remote_dir",
                retryable=False,
            )
        # SFTP v3 reports most server-side problems (disk full included) as a bare "Failure".
        return TransportError(f"{message}: {text}", retryable=True)
    return TransportError(f"{message}: {type(exc).__name__}: {exc}", retryable=True)
