"""The transport interface: one small class per protocol, registered by name.

A transport serves one platform for one batch: ``connect()`` once, ``put()`` each file, ``close()``.
``put`` uploads to a temporary name and renames when ``atomic_rename`` is on, then checks the remote
size; it returns only when the file is on the server at full size, or when the server confirmed the
transfer and then made the file invisible (agency ingest robots move files away; ``verified`` is
then False). Everything that goes wrong raises a :class:`~stockbridge.errors.TransportError`
subclass, classified once, here in the transports:

- retryable (timeouts, resets, FTP 421/425/426/450/451, size mismatch) -> ``TransportError``
- login refused (FTP 530, SSH auth failure) -> ``AuthError``
- host key / certificate not trusted -> ``TrustError`` (raised before any password is sent)
- full / quota (FTP 452/552, "No space left", "Quota exceeded") -> ``QuotaError``
- this file refused for good (FTP 550/553, "File too large") -> ``RemoteRejectedError``
- the platform's remote folder cannot be made or written to -> ``RemoteSetupError``

Servers word the same refusal with different codes (ProFTPD: "552 File too large" for a size
limit, "451 Input/output error" for a full disk; Pure-FTPd: "552 Quota exceeded"; SFTP v3 has one
code, "Failure", for all of them), so :func:`refusal_kind` reads their words as well.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from loguru import logger

from stockbridge.config.secrets import Secret
from stockbridge.errors import TransportError

if TYPE_CHECKING:
    from stockbridge.transports.resume import ResumeOffer

#: Words with which servers refuse a file for its own size: sending it again cannot help.
_TOO_LARGE_WORDS = ("file too large", "too large", "too big", "file size limit", "exceeds the maximum")
#: Words with which servers say their storage or the account's quota is used up: nothing more can
#: be stored for now, whatever the file. ProFTPD reports a full disk as an "Input/output error"
#: (FTP) or "Out of disk space" (SFTP), Pure-FTPd as "Error during write to file", vsftpd as
#: "Failure writing to local file".
_STORAGE_WORDS = (
    "quota",
    "out of disk space",
    "no space",
    "disk full",
    "not enough space",
    "insufficient storage",
    "input/output error",
    "error during write",
    "failure writing to local file",  # vsftpd
)


def refusal_kind(words: str) -> str | None:
    """What a server's refusal of an upload says, from its words: ``"too-large"`` (this file is
    over a size limit), ``"storage"`` (the server or the quota is full) or None (nothing known)."""
    lowered = words.lower()
    if any(word in lowered for word in _TOO_LARGE_WORDS):
        return "too-large"
    if any(word in lowered for word in _STORAGE_WORDS):
        return "storage"
    return None


#: Suffix of the temporary remote name used before the final rename. It must not end in an
#: extension agencies accept, so an ingest robot never takes a half-sent file.
TEMP_SUFFIX = ".part"


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """Everything a transport needs to reach one platform. Built from the config by the pipeline."""

    platform: str
    protocol: str
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: Secret | None = None
    key_file: Path | None = None  # sftp: private key for public-key login
    remote_dir: str = "/"
    path: Path | None = None  # folder: the target directory
    ca_file: Path | None = None  # ftps: CA bundle to verify the server certificate with
    #: sftp: pinned "SHA256:..." fingerprint(s), of any key type the server holds
    host_key: str | tuple[str, ...] | None = None
    known_hosts: Path | None = None  # sftp: known_hosts file
    atomic_rename: bool = True
    timeout: float = 30.0  # seconds, for connect and every read/write on the sockets
    # sftp: bytes per SFTP write request. 32 KiB is what every server must take (RFC draft);
    # OpenSSH takes up to 255 KiB, which nearly doubles big-file throughput (decisions.md M-4).
    #: None: what the server says it takes (sftp), else 32 KiB.
    sftp_request_size: int | None = None


@dataclass(frozen=True, slots=True)
class PutResult:
    remote_name: str
    size: int  # bytes sent
    verified: bool  # True: the server reported the full size under the final name
    #: How it was verified: "size", "listing" (one listing of the folder showed its full size,
    #: transports/listing.py), or the hash the server computed and we compared ("sha256", "sha1",
    #: "md5", "crc32"); None when the server moved the file away at once.
    verified_by: str | None = None
    #: ``put(..., verify=False)``: the server confirmed the transfer (and the hash, if it offers
    #: one), but nobody has looked for the file under its final name yet: :meth:`Transport.confirm`.
    pending: bool = False
    #: SFTP: the file's last writes, close or rename may still be on their way (transports/
    #: sftp_pipeline.py); ``confirm`` on the same connection has its answer.
    ticket: int | None = field(default=None, compare=False)


class ArrivedShort(TransportError):
    """The server holds the file under its final name with another size than we sent: it is
    removed, and sending it again may work."""


class AnswerLost(TransportError):
    """The server's answer for a file whose transfer was still under way went with its
    connection: the file may or may not be whole on the server, so it is looked for there before
    it is sent again."""


Progress = Callable[[int], None]


class Transport(abc.ABC):
    """Base class. Subclasses implement the five abstract methods."""

    protocol: str = ""
    #: ``put(verify=False)`` + :meth:`confirm` check uploads together (FTP, SFTP); a transport
    #: without it is asked ``put`` alone and checks each file itself.
    checks_in_batches: bool = False

    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the session (and log in). Raise AuthError / TrustError / TransportError."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the session. Never raises; bounded by the timeout."""

    @abc.abstractmethod
    def put(
        self,
        local: Path,
        remote_name: str,
        progress: Progress | None = None,
        resume: ResumeOffer | None = None,
        *,
        verify: bool = True,
    ) -> PutResult:
        """Upload ``local`` as ``remote_name`` inside ``remote_dir`` and verify its size.
        ``resume``: a cut keeps the partial, and a partial of ours is continued (transports/resume.py).
        ``verify=False``: leave the look under the final name to :meth:`confirm` (``pending``)."""

    @abc.abstractmethod
    def size(self, remote_name: str) -> int | None:
        """Size of ``remote_name`` in ``remote_dir``, or None if it is not there."""

    @abc.abstractmethod
    def delete(self, remote_name: str) -> None:
        """Remove ``remote_name`` from ``remote_dir`` if it is there (best effort)."""

    def listed_sizes(self) -> dict[str, int] | None:
        """Name -> size of the files in ``remote_dir`` from one listing, or None when the server
        gives none with exact sizes. Default: none."""
        return None

    def check_arrived(self, sent: PutResult) -> PutResult:
        """The per-file check of an upload whose transfer the server confirmed: its size under
        the final name. Gone: an agency robot took it (not verifiable, never re-sent); another
        size: removed, :class:`ArrivedShort`."""
        return self.judge_arrived(sent, self.size(sent.remote_name))

    def judge_arrived(self, sent: PutResult, size: int | None) -> PutResult:
        """:meth:`check_arrived` for the ``size`` the server reported under the final name."""
        if size is None:
            logger.info(
                "{}: {} confirmed, then gone from the server (taken by ingest?)",
                self.settings.platform,
                sent.remote_name,
            )
            return replace(sent, verified=False, verified_by=None, pending=False)
        if size != sent.size:
            self.delete(sent.remote_name)
            raise ArrivedShort(
                f"{self.settings.platform}: {sent.remote_name} arrived with {size} of {sent.size} bytes",
                retryable=True,
            )
        return replace(sent, verified=True, verified_by=sent.verified_by or "size", pending=False)

    def answered(self, sent: PutResult) -> bool:
        """Has the server answered all of ``sent`` already, so that :meth:`confirm` need not wait
        for it? Only SFTP's overlapped files may not be (transports/sftp_pipeline.py)."""
        return True

    def confirm(self, pending: list[PutResult]) -> list[PutResult | TransportError]:
        """Answers for uploads made with ``verify=False``, in order: one listing of the folder
        for all of them where the server gives one, the per-file check for the rest
        (transports/listing.py). Raises when the connection fails under it."""
        from stockbridge.transports.listing import confirm

        return confirm(pending, self.listed_sizes, self.check_arrived, self.settings.platform)

    def mkdirs(self) -> None:  # noqa: B027  (an optional hook: folder-less transports need nothing)
        """Make sure ``remote_dir`` exists. Default: nothing to do."""

    def check_writable(self) -> None:
        """Prove that ``remote_dir`` is writable: upload a tiny probe file, then delete it."""
        import os
        import secrets
        import tempfile

        name = f"stockbridge-check-{secrets.token_hex(4)}.txt"
        fd, tmp = tempfile.mkstemp(prefix="stockbridge-check-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(b"stockbridge write check\n")
            self.put(Path(tmp), name)
        finally:
            os.unlink(tmp)
            self.delete(name)

    def __enter__(self) -> Transport:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_REGISTRY: dict[str, type[Transport]] = {}


def register(protocol: str) -> Callable[[type[Transport]], type[Transport]]:
    def decorator(cls: type[Transport]) -> type[Transport]:
        cls.protocol = protocol
        _REGISTRY[protocol] = cls
        return cls

    return decorator


#: Modules of the built-in transports; imported on first use so that each registers itself.
_BUILTIN_MODULES = ("folder", "ftp", "sftp")


def _load_builtins() -> None:
    import importlib

    for module in _BUILTIN_MODULES:
        importlib.import_module(f"stockbridge.transports.{module}")


def protocols() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


#: The module of each built-in protocol: opening one transport imports only its own module (the
#: SFTP one loads paramiko, a quarter of a second an FTP-only run need not wait for).
_MODULE_OF = {"ftp": "ftp", "ftps": "ftp", "sftp": "sftp", "folder": "folder"}


def open_transport(settings: TransportSettings) -> Transport:
    """A (not yet connected) transport for ``settings.protocol``."""
    module = _MODULE_OF.get(settings.protocol)
    if module is not None and settings.protocol not in _REGISTRY:
        import importlib

        importlib.import_module(f"stockbridge.transports.{module}")
    elif module is None:
        _load_builtins()
    try:
        cls = _REGISTRY[settings.protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {settings.protocol!r}; known: {', '.join(protocols())}") from None
    return cls(settings)
