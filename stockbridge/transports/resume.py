"""Resuming a cut upload from the bytes the server already has (issue 14, item 5).

A photo goes whole in seconds; a video or TIFF master of several GB takes half an hour on a home
uplink, and a line that drops at 60 % should not cost those 18 minutes again. So for files of at
least :data:`RESUME_MIN_BYTES` the uploader offers a transport a :class:`ResumeOffer`:

- on a *cut* (the connection lost, a timeout, a shutdown: :func:`keeps_partial`) the transport
  leaves the partial file on the server instead of deleting it. A *refusal* (quota, disk full,
  permission, a size limit) still removes it, as before;
- on the next attempt, when the ledger says we were writing that very remote name from that very
  file (``continue_partial``), :func:`plan_start` decides where to start: the remote size, when it
  is not larger than ours and, where the server hashes files (FTP ``HASH``/``XSHA256``/``XCRC``...,
  SFTP ``check-file-name``), the server's hash of the partial equals ours of the same prefix;
  anything else starts from zero (the transport overwrites the partial). The partial *is* the
  prefix, so the server's hash of the whole partial is the hash of the prefix: no range command is
  needed (decisions.md F-12).

The final verification does not change: the full size under the final name, and the whole file's
hash where the server computes one (the running digest starts with the prefix, read locally once).
"""

from __future__ import annotations

import contextlib
import ftplib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from stockbridge.errors import TransportError
from stockbridge.transports.ftp_replies import (
    SERVER_HASH_BYTES_PER_SECOND,
    HashMethod,
    hex_token,
    hexdigest,
    new_digest,
)

if TYPE_CHECKING:
    import paramiko

#: Files under this size start from zero after a cut, as before: at 20 Mbit/s 8 MB take 3 s, about
#: what the checks of a resume cost in round trips (SIZE, a hash) on a 200 ms line (decisions.md F-12).
RESUME_MIN_BYTES = 8 * 1024 * 1024

#: Read size for the local prefix digest.
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Resumed:
    """An upload that went on from ``offset`` bytes the server already had."""

    name: str  # the remote name written (temporary or final)
    offset: int
    total: int
    checked_by: str  # how the prefix was checked: a hash name ("sha256", "crc32", ...) or "size"

    def describe(self) -> str:
        return (
            f"resumed {posixpath.basename(self.name)} at {self.offset / 1e6:.1f} MB of {self.total / 1e6:.1f} MB"
            f" (prefix checked by {self.checked_by})"
        )


@dataclass(frozen=True, slots=True)
class ResumeOffer:
    """What the uploader allows a transport for one file. Present: a cut keeps the partial.
    ``continue_partial``: the ledger says the remote partial (if any) is ours; check it and go on.
    ``announce`` is called once the resumed transfer has started (the uploader logs and records it)."""

    continue_partial: bool
    announce: Callable[[Resumed], None] | None = None


@dataclass(slots=True)
class Start:
    """Where one transfer starts: ``offset`` bytes already on the server, the running ``digest``
    of the whole file (the prefix already in it; None when the server hashes nothing)."""

    offset: int
    digest: Any
    resumed: Resumed | None = None

    def announce(self, offer: ResumeOffer | None) -> None:
        if self.resumed is not None and offer is not None and offer.announce is not None:
            offer.announce(self.resumed)


class ResumeRefused(Exception):
    """The server refused to write at an offset (ProFTPD without ``AllowStoreRestart``:
    "451 Append/Restart not permitted"): the transfer starts again from zero."""


def keeps_partial(error: BaseException) -> bool:
    """Is ``error`` a cut, after which the partial stays for a resume? A lost connection, a
    timeout, a shutdown: yes. A refusal (quota, full disk, permission, size limit, a bad hash):
    no, it is removed as before."""
    if isinstance(error, TransportError):
        return type(error) is TransportError and error.retryable
    return True


def plan_start(
    offer: ResumeOffer | None,
    target: str,
    local: Path,
    remote_size: Callable[[], int | None],
    new_digest: Callable[[], Any] | None,
    remote_hash: Callable[[], str | None],
    where: str,
) -> Start:
    """Where to start sending ``local`` to ``target``. ``new_digest``: a fresh digest of the
    algorithm the server hashes with (None: it hashes nothing); ``remote_hash``: the server's hex
    digest of ``target`` as it is now (None: no usable answer)."""
    fresh = Start(0, new_digest() if new_digest is not None else None)
    if offer is None or not offer.continue_partial:
        return fresh
    total = local.stat().st_size
    have = remote_size()
    if have is None or have <= 0:  # nothing there (or a server that answers nonsense)
        return fresh
    if have >= total:
        logger.info(
            "{}: {} holds {} bytes, not fewer than ours ({}): sending it from zero",
            where,
            target,
            have,
            total,
        )
        return fresh
    digest = new_digest() if new_digest is not None else None
    if digest is not None:
        _read_into(local, have, digest)
        theirs = remote_hash()
        ours = str(_clone(digest).hexdigest()).lower()
        if theirs is not None and theirs.lower() != ours:
            logger.warning(
                "{}: the {} bytes of {} on the server are not ours ({} {}…, ours {}…): sending it from zero",
                where,
                have,
                target,
                getattr(digest, "name", "hash"),
                theirs[:16].lower(),
                ours[:16],
            )
            return fresh
        checked_by = _algorithm(digest) if theirs is not None else "size"
    else:
        checked_by = "size"
    return Start(have, digest, Resumed(target, have, total, checked_by))


def _read_into(local: Path, length: int, digest: Any) -> None:
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    left = length
    with local.open("rb", buffering=0) as source:
        while left > 0:
            count = source.readinto(view[: min(_CHUNK, left)])
            if not count:
                raise TransportError(f"{local} is shorter than {length} bytes", retryable=True)
            digest.update(view[:count])
            left -= count


def _clone(digest: Any) -> Any:
    if hasattr(digest, "copy"):
        return digest.copy()
    clone = type(digest)()
    clone.value = digest.value  # the CRC-32 accumulator of ftp_replies
    return clone


def _algorithm(digest: Any) -> str:
    name = str(getattr(digest, "name", "crc32")).lower()
    return name.replace("-", "")


# -- FTP -------------------------------------------------------------------------------------------


def ftp_size(ftp: ftplib.FTP, target: str) -> int | None:
    """``SIZE`` of ``target``; None when it is not there or the server will not say."""
    try:
        return ftp.size(target)
    except ftplib.Error:
        return None


def ftp_hash(ftp: ftplib.FTP, method: HashMethod, target: str, length: int, timeout: float) -> str | None:
    """The server's hex digest of ``target`` by ``method`` (``HASH``, ``XSHA256``, ``XCRC``...),
    or None when it gives no usable answer."""
    digits = len(hexdigest(new_digest(method.algorithm)))
    try:
        # The server reads the whole file first: allow for that on big files.
        if ftp.sock is not None:
            ftp.sock.settimeout(timeout + length / SERVER_HASH_BYTES_PER_SECOND)
        reply = ftp.sendcmd(f"{method.command} {target}")
    except ftplib.Error as exc:
        logger.debug("{} {} refused ({}); size is the check", method.command, target, exc)
        return None
    finally:
        with contextlib.suppress(OSError, AttributeError):
            if ftp.sock is not None:
                ftp.sock.settimeout(timeout)
    theirs = hex_token(reply, digits)
    if theirs is None:
        logger.debug("no {} in the reply {!r}; size is the check", method.algorithm, reply)
    return theirs


# -- SFTP ------------------------------------------------------------------------------------------


def sftp_hash(sftp: paramiko.SFTPClient, path: str, algorithm: str) -> str | None:
    """The server's hex ``algorithm`` digest of ``path`` (``check-file-name``, offset 0 and length
    0: the whole file), or None when it gives no usable answer."""
    from stockbridge.transports.sftp_protocol import check_file_name  # paramiko: only for SFTP

    try:
        answer = check_file_name(sftp, path, algorithm)
    except Exception as exc:  # a server without it costs the hash check only
        logger.debug(
            "check-file-name {} of {} unanswered ({}); the prefix is checked by size", algorithm, path, exc
        )
        return None
    if answer is None or answer[0] != algorithm or not answer[1]:
        return None
    return answer[1]
