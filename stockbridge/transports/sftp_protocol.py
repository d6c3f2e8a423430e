"""The SFTP protocol below paramiko's file objects: the server's extension list, pipelined writes
whose every status is read, and paramiko's exceptions mapped to ours."""

from __future__ import annotations

import errno
import posixpath
import socket

import paramiko
from loguru import logger
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_HANDLE,
    CMD_OPEN,
    CMD_STATUS,
    CMD_VERSION,
    CMD_WRITE,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_PERMISSION_DENIED,
    int64,
)
from paramiko.sftp_attr import SFTPAttributes

from stockbridge.errors import (
    QuotaError,
    RemoteRejectedError,
    TransportError,
)
from stockbridge.transports.base import (
    refusal_kind,
)


def parse_extensions(data: bytes) -> dict[str, bytes]:
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


class SFTPClient(paramiko.SFTPClient):
    """Keeps the server's extension list, which paramiko reads and drops during the handshake."""

    server_extensions: dict[str, bytes]

    def _read_packet(self) -> tuple[int, bytes]:
        kind, data = super()._read_packet()
        if kind == CMD_VERSION and not hasattr(self, "server_extensions"):
            self.server_extensions = parse_extensions(data)
        return kind, data


_CHECK_FILE = "check-file"
_CHECK_FILE_NAME = "check-file-name"
#: Strongest first; names as in the extension draft and in hashlib.
_CHECK_FILE_PREFERENCE = ("sha256", "sha512", "sha384", "sha224", "sha1", "md5")


def hash_algorithm(extensions: dict[str, bytes], answers: bool | None) -> str | None:
    """The hash to ask the server for after an upload (``check-file-name``, an SFTP extension
    of draft-ietf-secsh-filexfer-extensions), or None when it offers none we know. ``answers``:
    did the server answer it in this session (None: not asked yet)?"""
    if _CHECK_FILE not in extensions and _CHECK_FILE_NAME not in extensions:
        # ProFTPD's mod_sftp answers check-file-name without listing it to SFTP v3 clients:
        # ask once per session; a server without it says "unsupported" and is not asked again.
        return _CHECK_FILE_PREFERENCE[0] if answers is not False else None
    offered = extensions.get(_CHECK_FILE) or extensions.get(_CHECK_FILE_NAME) or b""
    names = {name.strip() for name in offered.decode("ascii", "replace").split(",") if name.strip()}
    for name in _CHECK_FILE_PREFERENCE:
        if not names or name in names:
            return name
    return None


#: Write requests in flight at once: enough to keep a long, fast link busy (64 x 255 KiB on
#: OpenSSH), few enough that a refusal stops the upload within a few MB.
_WRITE_WINDOW = 64


class WriteReplies:
    """Collects the status of every pipelined write of one file (paramiko hands a reply to the
    object a request was registered with, in whatever order it arrives). The first error the
    server reports stops the upload with the server's own words."""

    def __init__(self, sftp: paramiko.SFTPClient, where: str, target: str) -> None:
        self._sftp = sftp
        self._where = where
        self._target = target
        self._pending: set[int] = set()
        self.error: tuple[int, str] | None = None
        self.close_sent = False
        self._close_number: int | None = None
        self._close_error: tuple[int, str] | None = None

    def send(self, handle: bytes, offset: int, chunk: memoryview) -> None:
        self.raise_if_refused()
        number = self._sftp._async_request(self, CMD_WRITE, handle, int64(offset), bytes(chunk))
        self._pending.add(number)
        # Read the replies that are already here, so a refusal stops us early; wait only when
        # the window is full.
        while self._pending and (len(self._pending) >= _WRITE_WINDOW or self._sftp.sock.recv_ready()):
            self._read_one()
            self.raise_if_refused()

    def finish(self) -> None:
        """Wait for the status of every write still outstanding; raise the first error."""
        while self._pending:
            self._read_one()
        self.raise_if_refused()

    def finish_and_close(self, handle: bytes) -> None:
        """Send the close right behind the last write (the server takes requests in order, so it
        closes after every write), then read every status: the writes' and the close's (some
        servers report a failed flush only there). One round trip less per file than waiting for
        the writes first (decisions.md M-7)."""
        self.send_close(handle)
        self.finish()
        self.raise_if_close_refused()

    def send_close(self, handle: bytes) -> None:
        """Close the file behind its last write, without waiting for any status."""
        self._close_number = self._sftp._async_request(self, CMD_CLOSE, handle)
        self._pending.add(self._close_number)
        self.close_sent = True

    @property
    def answered(self) -> bool:
        """Every status sent for so far has come."""
        return not self._pending

    def raise_if_close_refused(self) -> None:
        if self._close_error is not None:
            code, text = self._close_error
            if code == SFTP_NO_SUCH_FILE:
                raise OSError(errno.ENOENT, text)
            raise write_refusal(code, text, f"{self._where}: closing {self._target} refused")

    def abandon(self) -> None:
        """Forget the replies still to come (the session is closed or the file given up)."""
        for number in self._pending:
            self._sftp._expecting.pop(number, None)
        self._pending.clear()

    def _read_one(self) -> None:
        try:
            self._sftp._read_response()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise error_for_exception(exc, f"uploading {self._target}", self._where) from exc

    def _async_response(self, kind: int, message: paramiko.Message, number: int) -> None:
        self._pending.discard(number)
        if number == self._close_number:
            code = message.get_int() if kind == CMD_STATUS else -1
            if code != SFTP_OK:
                text = message.get_text() if kind == CMD_STATUS and message.get_remainder() else ""
                self._close_error = (code, text or f"status {code}")
            return
        if self.error is not None:
            return
        if kind != CMD_STATUS:
            self.error = (-1, f"unexpected reply type {kind} to a write")
            return
        code = message.get_int()
        if code != SFTP_OK:
            text = message.get_text() if message.get_remainder() else ""
            self.error = (code, text or f"status {code}")

    def raise_if_refused(self) -> None:
        if self.error is not None:
            code, text = self.error
            raise write_refusal(code, text, f"{self._where}: writing {self._target} refused")


def write_refusal(code: int, text: str, message: str) -> TransportError:
    """Our error for a write or close the server refused, from its status code and words."""
    full = f"{message}: {text}"
    kind = refusal_kind(text)
    if kind == "too-large":
        return RemoteRejectedError(full, hint="the server limits the size of a file; this one is over it")
    if kind == "storage":
        return QuotaError(full, hint="the server is full or the account's quota is used up")
    if code == SFTP_PERMISSION_DENIED:
        return RemoteRejectedError(full)
    return TransportError(full, retryable=True)


def open_for_write(sftp: paramiko.SFTPClient, path: str, *, truncate: bool = True) -> bytes:
    """A write handle for ``path`` (created or truncated), as ``SFTPClient.open(path, "wb")``;
    ``truncate=False`` keeps what is there, for a resumed upload that writes past it."""
    kind, message = sftp._request(
        CMD_OPEN,
        sftp._adjust_cwd(path),
        SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | (SFTP_FLAG_TRUNC if truncate else 0),
        SFTPAttributes(),
    )
    if kind != CMD_HANDLE or message is None:
        raise paramiko.SFTPError("Expected handle")
    handle: bytes = message.get_binary()
    return handle


def error_for_exception(
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
    if isinstance(exc, ConnectionRefusedError):
        return TransportError(
            f"{message}: connection refused (no SSH server listening there?)", retryable=True
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


#: Write request sizes: 32 KiB every server takes (the SFTP draft's minimum); OpenSSH takes
#: 261120 (256 KiB less its header allowance), which is 1.1-1.3x faster on big files (bench/README.md).
DEFAULT_REQUEST_SIZE = 32 * 1024
MIN_REQUEST_SIZE = 1024
MAX_REQUEST_SIZE = 261120
_LIMITS = "limits@openssh.com"
_STATVFS = "statvfs@openssh.com"


def server_write_limit(sftp: SFTPClient, where: str) -> int:
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
        logger.debug("{}: {} unanswered ({}); writes of 32 KiB", where, _LIMITS, exc)
        return DEFAULT_REQUEST_SIZE
    if max_write <= 0:
        return DEFAULT_REQUEST_SIZE
    return max(MIN_REQUEST_SIZE, min(max_write, MAX_REQUEST_SIZE))


def free_bytes(sftp: SFTPClient, path: str, where: str) -> int | None:
    """Space the server says is left under ``path`` (``statvfs@openssh.com``), or None."""
    if _STATVFS not in getattr(sftp, "server_extensions", {}):
        return None
    try:
        kind, message = sftp._request(CMD_EXTENDED, _STATVFS, sftp._adjust_cwd(path))
        if kind != CMD_EXTENDED_REPLY or message is None:
            return None
        message.get_int64()  # f_bsize
        fragment = message.get_int64()  # f_frsize
        message.get_int64()  # f_blocks
        message.get_int64()  # f_bfree
        available = message.get_int64()  # f_bavail
    except Exception as exc:  # no answer costs the distinction, never the upload's error
        logger.debug("{}: statvfs of {} unanswered ({})", where, path, exc)
        return None
    return int(fragment * available)


def check_file_name(sftp: paramiko.SFTPClient, path: str, algorithm: str) -> tuple[str, str] | None:
    """The server's ``algorithm`` digest of the whole of ``path`` (``check-file-name`` of
    draft-ietf-secsh-filexfer-extensions, offset 0 and length 0) as (algorithm it used, hex);
    None for an unusable reply. Raises what paramiko raises when the server fails it."""
    kind, message = sftp._request(
        CMD_EXTENDED, "check-file-name", sftp._adjust_cwd(path), algorithm, int64(0), int64(0), 0
    )
    if kind != CMD_EXTENDED_REPLY or message is None:
        return None
    # The draft puts "check-file" before the algorithm; mod_sftp sends the algorithm alone.
    used = message.get_text()
    if used == "check-file":
        used = message.get_text()
    return used, message.get_remainder().hex()


def too_large_or_full(
    sftp: SFTPClient, full: QuotaError, target: str, size: int, where: str
) -> TransportError:
    """SFTP has one status for a full disk and a per-file size limit (ProFTPD's mod_sftp says
    "Out of disk space" for both): the free space the server reports tells them apart. Plenty
    free means this file is over a limit, and only this file fails; otherwise the server is full."""
    free = free_bytes(sftp, posixpath.dirname(target) or ".", where)
    if free is None or free < size * 2:
        return full
    return RemoteRejectedError(
        f"{full.message}, while the server reports {free / 1e9:.1f} GB free: this file "
        f"({size / 1e6:.1f} MB) is over a size limit",
        hint="the agency limits the size of one file; make the file smaller or send it another way",
    )
