"""What FTP servers say, read once: reply codes and words to our errors, remote names checked,
and the hash commands a server offers (``HASH``, ``XSHA256``...) with their replies.

:func:`error_for_reply` is the one place a reply becomes an error of ``stockbridge.errors``; what
to do about that error is :mod:`stockbridge.delivery.policy`'s business.
"""

from __future__ import annotations

import ftplib
import hashlib
import socket
import ssl
import zlib
from dataclasses import dataclass
from typing import Any

from stockbridge.errors import (
    AuthError,
    QuotaError,
    RemoteRejectedError,
    TransportError,
    TrustError,
)
from stockbridge.transports.base import (
    refusal_kind,
)

#: Replies after which trying again later may work (RFC 959: 4xx are transient by definition).
_TRANSIENT_CODES = frozenset({421, 425, 426, 450, 451})
_AUTH_CODES = frozenset({530, 532})
_QUOTA_CODES = frozenset({452, 552})
#: Commands whose 550 is about this one file, not about the platform.
_FILE_COMMANDS = frozenset({"STOR", "RNFR", "RNTO", "APPE", "STOU"})
_UPLOAD_COMMANDS = frozenset({"STOR", "APPE", "STOU"})
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


def one_line(reply: str) -> str:
    """A (maybe multi-line) reply as one line: ``"451-Error during write\\n451 Aborted"`` ->
    ``"451 Error during write; Aborted"``."""
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    code = reply_code(lines[0])
    texts = [line[4:].strip() if reply_code(line) == code and len(line) > 3 else line for line in lines]
    head = f"{code} " if code is not None else ""
    return head + "; ".join(text for text in texts if text)


def reply_code(reply: str) -> int | None:
    head = reply[:3]
    return int(head) if head.isdigit() else None


def error_for_reply(reply: str, command: str, where: str = "") -> TransportError:
    """Turn a server reply (``"550 Permission denied."``) to ``command`` into our error.

    ``command`` is the verb (``STOR``, ``RNTO``, ...); ``where`` says what was being done, for
    the message. A pure function: the table lives in the tests.
    """
    code = reply_code(reply)
    words = one_line(reply)
    prefix = f"{where}: " if where else ""
    message = f"{prefix}{command} refused: {words}"
    busy = any(word in words.lower() for word in _BUSY_WORDS)
    if code is None:
        return TransportError(f"{prefix}{command}: unexpected reply {words!r}")
    refusal = refusal_kind(words) if command in _UPLOAD_COMMANDS and code >= 400 else None
    if refusal == "too-large":
        return RemoteRejectedError(message, hint="the server limits the size of a file; this one is over it")
    if code in _QUOTA_CODES or refusal == "storage":
        return QuotaError(message, hint="the server is full or the account's quota is used up")
    if code in _TRANSIENT_CODES or (busy and code >= 400):
        return TransportError(message, retryable=True)
    if code in _AUTH_CODES:
        return AuthError(message, hint="check username and password; the platform is paused meanwhile")
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


@dataclass(frozen=True, slots=True)
class HashMethod:
    command: str  # what to send before the file name: "HASH", "XSHA256", ...
    name: str  # the server's name for it: "SHA-256"
    algorithm: str  # ours, as recorded in the ledger: "sha256", "crc32"

    def __str__(self) -> str:
        return f"{self.command} ({self.algorithm})"


#: HASH algorithms (draft-bryan-ftpext-hash section 3) and X-commands, strongest first.
_HASH_NAMES = (
    ("SHA-512", "sha512"),
    ("SHA-256", "sha256"),
    ("SHA-1", "sha1"),
    ("MD5", "md5"),
    ("CRC32", "crc32"),
)
_X_COMMANDS = (
    ("XSHA512", "sha512"),
    ("XSHA256", "sha256"),
    ("XSHA1", "sha1"),
    ("XMD5", "md5"),
    ("XCRC", "crc32"),
)
#: We prefer SHA-256 over SHA-512: as strong for this purpose, and what we hash with anyway.
_PREFERRED = ("sha256", "sha512", "sha1", "md5", "crc32")
#: For the reply timeout of a hash request: servers hash at least this fast.
SERVER_HASH_BYTES_PER_SECOND = 50_000_000


def choose_hash_method(features: str) -> HashMethod | None:
    """The best way to get a stored file's hash from a ``FEAT`` reply, or None."""
    offered: dict[str, HashMethod] = {}
    for raw in features.splitlines():
        line = raw.strip()
        if line[:4].isdigit() or line[:3].isdigit():
            continue  # "211-Features:" / "211 End"
        verb, _, rest = line.partition(" ")
        verb = verb.upper()
        if verb == "HASH":
            names = {name.strip().rstrip("*").upper() for name in rest.split(";") if name.strip()}
            for name, algorithm in _HASH_NAMES:
                if name in names:
                    offered.setdefault(algorithm, HashMethod("HASH", name, algorithm))
        for command, algorithm in _X_COMMANDS:
            if verb == command:
                offered.setdefault(algorithm, HashMethod(command, command, algorithm))
    for algorithm in _PREFERRED:
        if algorithm in offered:
            return offered[algorithm]
    return None


class _CRC32:
    """zlib's CRC-32 with the hashlib interface the upload loop uses."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = zlib.crc32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def new_digest(algorithm: str) -> Any:
    return _CRC32() if algorithm == "crc32" else hashlib.new(algorithm)


def hexdigest(digest: Any) -> str:
    return str(digest.hexdigest()).lower()


def hex_token(reply: str, length: int) -> str | None:
    """The hex digest of ``length`` digits in a hash reply's last line: ``213 SHA-256 0-49 169c...
    name`` (HASH) or ``250 169C...`` (X-commands); both come after a "Computing ..." line on ProFTPD."""
    lines = [line for line in reply.replace("\r", "").split("\n") if line.strip()]
    if not lines:
        return None
    for token in lines[-1].split()[1:]:
        if len(token) == length and all(char in "0123456789abcdefABCDEF" for char in token):
            return token
    return None
