"""SFTP uploads overlapped on one channel (issue 14, item 4): the line stays busy across files.

Still one connection and one SFTP session, and one file opened after the other; what changes is
when we wait (decisions.md M-8). A batch used to leave the link idle for about three round trips
per file: the OPEN's handle, the statuses of the last writes and the close, the RENAME. Now:

- ``put`` of a file returns with its last :data:`HOLD_BACK` bytes not yet sent;
- ``put`` of the next file sends its OPEN first, then the previous file's held bytes and its
  close, so the link carries them while the new handle comes back;
- the previous file's statuses arrive while the next one's data goes out; its RENAME is sent as
  soon as every write and the close said OK (never before: the final name never shows a file the
  server did not take whole), then a STAT of the final name once the rename said OK; their
  replies too come back under the next file's data.

What is known later than before: the status of the held writes, the close and the rename, and the
size under the final name. They are the file's answer at :meth:`Pipeline.answer`, which ``confirm``
asks (delivery/confirming.py), so the look under the final name costs no round trip of its own and
no listing; a refusal is removed from the server as in ``put``. A file whose answer the connection took with it is :class:`AnswerLost`: it is looked
for on the server before it is sent again. All of it runs on the thread that calls the transport:
paramiko hands each reply to the object its request was registered with, in any order.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import paramiko
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_EXTENDED,
    CMD_HANDLE,
    CMD_OPEN,
    CMD_STAT,
    CMD_STATUS,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
    SFTP_NO_SUCH_FILE,
)
from paramiko.sftp_attr import SFTPAttributes

from stockbridge.errors import QuotaError, TransportError
from stockbridge.transports.base import AnswerLost, ArrivedShort, Progress, PutResult
from stockbridge.transports.resume import ResumeOffer, Start, keeps_partial
from stockbridge.transports.sftp_protocol import WriteReplies, error_for_exception

#: Bytes of each file sent only with the next file's OPEN: at least one round trip of link time on
#: the lines issue 14 names (20 Mbit/s x 200 ms = 0.5 MB, 100 Mbit/s x 30 ms = 0.4 MB), under
#: OpenSSH's 2 MB channel window; held in memory for one file at a time (decisions.md M-8).
HOLD_BACK = 2 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
POSIX_RENAME = "posix-rename@openssh.com"
#: A STAT that gave no usable answer.
UNKNOWN = object()
#: One number per file for the whole process: an answer asked of another connection is lost.
_tickets = itertools.count(1)

#: ``failed(error, flight)``: our error for a file refused late, after the transport removed what
#: it must (the temporary name, or the file when its size was over a limit).
Failed = Callable[[BaseException, "InFlight"], TransportError]


class _Opening:
    """The reply to one OPEN sent without waiting for it."""

    def __init__(self) -> None:
        self.reply: tuple[int, paramiko.Message] | None = None

    def _async_response(self, kind: int, message: paramiko.Message, number: int) -> None:
        self.reply = (kind, message)


class InFlight:
    """One file whose held bytes, close or rename may still be on their way."""

    def __init__(
        self,
        sftp: paramiko.SFTPClient,
        target: str,
        final: str,
        size: int,
        handle: bytes,
        writes: WriteReplies,
        held: list[tuple[int, bytes]],
        resume: bool,
    ) -> None:
        self.sftp = sftp
        self.target, self.final, self.size, self.resume = target, final, size, resume
        self._handle, self._writes, self._held = handle, writes, held
        self.flushed = False
        self.rename_sent = False
        self._rename_number: int | None = None
        self._rename_error: BaseException | None = None
        self._stat_number: int | None = None
        self._stat_sent = False
        #: What the STAT after the rename said: the size under the final name, None for "no such
        #: file" (an ingest robot took it), or UNKNOWN (no usable answer: ``confirm`` asks again).
        self.remote_size: int | object | None = UNKNOWN
        self.done = False
        self.error: TransportError | None = None

    def flush(self, failed: Failed) -> None:
        """Send the held bytes and the close (once)."""
        if self.flushed:
            return
        self.flushed = True
        held, self._held = self._held, []
        try:
            for offset, data in held:
                self._writes.send(self._handle, offset, memoryview(data))
        except TransportError as exc:
            if self._writes.error is None:
                raise  # the connection failed, not this file
            self._writes.abandon()
            with contextlib.suppress(Exception):
                self.sftp._async_request(type(None), CMD_CLOSE, self._handle)
            self._fail(exc, failed)
            return
        self._writes.send_close(self._handle)

    def step(self, failed: Failed) -> None:
        """Go on as far as the replies that came allow: rename once every status said OK."""
        if self.done or self._stat_sent or not self.flushed or not self._writes.answered:
            return
        if not self.rename_sent:
            try:
                self._writes.raise_if_refused()
                self._writes.raise_if_close_refused()
            except (TransportError, OSError) as exc:
                self._fail(exc, failed)
                return
            if self.target == self.final:
                self._send_stat()
                return
            self.rename_sent = True
            self._rename_number = self.sftp._async_request(
                self,
                CMD_EXTENDED,
                POSIX_RENAME,
                self.sftp._adjust_cwd(self.target),
                self.sftp._adjust_cwd(self.final),
            )
            return
        if self._rename_error is not None:
            self._fail(self._rename_error, failed)

    def _send_stat(self) -> None:
        """Ask for the size under the final name (the check ``put`` made, without its wait)."""
        self._stat_sent = True
        self._stat_number = self.sftp._async_request(self, CMD_STAT, self.sftp._adjust_cwd(self.final))

    def _async_response(self, kind: int, message: paramiko.Message, number: int) -> None:
        if number == self._stat_number:
            self._stat_number = None
            self.done = True
            if kind == CMD_ATTRS:
                self.remote_size = SFTPAttributes._from_msg(message).st_size
            elif kind == CMD_STATUS and message.get_int() == SFTP_NO_SUCH_FILE:
                self.remote_size = None
            return
        if number != self._rename_number:
            return
        self._rename_number = None
        try:
            if kind != CMD_STATUS:
                raise paramiko.SFTPError(f"unexpected reply type {kind} to a rename")
            self.sftp._convert_status(message)  # raises the server's refusal as paramiko does
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._rename_error = exc
            return
        self._send_stat()

    def _fail(self, exc: BaseException, failed: Failed) -> None:
        self.error = failed(exc, self)
        self.done = True


class Pipeline:
    """The files of one SFTP session whose answers are not all in yet."""

    def __init__(
        self,
        sftp: paramiko.SFTPClient,
        where: str,
        remove: Callable[[str], None],
        too_large_or_full: Callable[[QuotaError, str, int], TransportError],
    ) -> None:
        self.sftp = sftp
        self.where = where
        self._failed: Failed = lambda exc, flight: late_failure(exc, flight, where, remove, too_large_or_full)
        self._flights: dict[int, InFlight] = {}

    def send(
        self,
        local: Path,
        target: str,
        final: str,
        start: Start,
        offer: ResumeOffer | None,
        progress: Progress | None,
        request_size: int,
    ) -> int:
        """Open ``target`` (the previous file's held bytes go out meanwhile), send ``local`` but
        its last :data:`HOLD_BACK` bytes, and return the file's ticket for :meth:`answer`.
        Raises this file's refusal (open, writes so far) or the connection's failure."""
        size = local.stat().st_size
        with local.open("rb") as source:
            source.seek(start.offset)
            opening = _Opening()
            flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | (0 if start.offset else SFTP_FLAG_TRUNC)
            self.sftp._async_request(
                opening, CMD_OPEN, self.sftp._adjust_cwd(target), flags, SFTPAttributes()
            )
            self.flush()
            handle = self._wait_open(opening, target)
            start.announce(offer)
            writes = WriteReplies(self.sftp, self.where, target)
            try:
                held = self._send_body(source, handle, writes, start.offset, size, progress, request_size)
            except BaseException:
                writes.abandon()
                with contextlib.suppress(Exception):
                    self.sftp._async_request(type(None), CMD_CLOSE, handle)
                raise
        ticket = next(_tickets)
        self._flights[ticket] = InFlight(
            self.sftp, target, final, size, handle, writes, held, offer is not None
        )
        return ticket

    def _send_body(
        self,
        source: IO[bytes],
        handle: bytes,
        writes: WriteReplies,
        offset: int,
        size: int,
        progress: Progress | None,
        request_size: int,
    ) -> list[tuple[int, bytes]]:
        """Send all but the last :data:`HOLD_BACK` bytes; return those, request by request."""
        body_end = max(offset, size - HOLD_BACK)
        while offset < body_end and (block := source.read(min(_READ_CHUNK, body_end - offset))):
            view = memoryview(block)
            while view:
                chunk = view[:request_size]
                writes.send(handle, offset, chunk)
                offset += len(chunk)
                view = view[len(chunk) :]
            self.advance()
            if progress is not None:
                progress(offset)
        held = []
        while block := source.read(request_size):
            held.append((offset, block))
            offset += len(block)
        return held

    def _wait_open(self, opening: _Opening, target: str) -> bytes:
        while opening.reply is None:
            self._read_one(f"opening {target}")
        kind, message = opening.reply
        if kind == CMD_STATUS:
            self.sftp._convert_status(message)  # raises the server's refusal as paramiko does
        if kind != CMD_HANDLE:
            raise paramiko.SFTPError("Expected handle")
        handle: bytes = message.get_binary()
        return handle

    def flush(self) -> None:
        """Send every held byte and close; read nothing more than has come."""
        for flight in list(self._flights.values()):
            flight.flush(self._failed)
        self.advance()

    def advance(self) -> None:
        """Rename (or answer) every file whose statuses have all come."""
        for flight in list(self._flights.values()):
            flight.step(self._failed)

    def settle(self, tickets: set[int]) -> None:
        """Wait until the files of ``tickets`` have their answers (the others stay in flight, the
        newest with its held bytes). Raises when the connection fails."""
        asked = [flight for ticket, flight in self._flights.items() if ticket in tickets]
        with self._mapped("sending the last bytes"):
            for flight in asked:
                flight.flush(self._failed)
            self.advance()
        while not all(flight.done for flight in asked):
            self._read_one("waiting for the server's answers")
            with self._mapped("waiting for the server's answers"):
                self.advance()

    def answered(self, ticket: int) -> bool:
        """Has the file of ``ticket`` its answer (from the replies already here; no wait)?"""
        while self.sftp.sock.recv_ready():
            self._read_one("reading the server's answers")
        with self._mapped("reading the server's answers"):
            self.advance()
        flight = self._flights.get(ticket)
        return flight is None or flight.done

    def storage_full(self) -> QuotaError | None:
        """The refusal of an earlier file for a full server or quota, if one came: the next
        file is not sent into it."""
        with self._mapped("reading the server's answers"):
            self.advance()
        for flight in self._flights.values():
            if isinstance(flight.error, QuotaError):
                return flight.error
        return None

    def answer(self, sent: PutResult) -> tuple[PutResult | TransportError, int | object | None]:
        """After :meth:`settle`: ``sent`` and the size the server reported under the final name
        (None: gone; :data:`UNKNOWN`: ask again) once its statuses and rename said OK; else its
        error, :class:`AnswerLost` when this session never had it or is gone."""
        if sent.ticket is None:
            return sent, UNKNOWN
        flight = self._flights.pop(sent.ticket, None)
        if flight is None or not flight.done:
            lost = AnswerLost(
                f"{self.where}: the connection closed before the server answered for "
                f"{sent.remote_name}; it is looked for on the server before it goes again",
                retryable=True,
            )
            return lost, UNKNOWN
        if flight.error is not None:
            return flight.error, UNKNOWN
        return sent, flight.remote_size

    def _read_one(self, action: str) -> None:
        with self._mapped(action):
            self.sftp._read_response()

    @contextlib.contextmanager
    def _mapped(self, action: str) -> Iterator[None]:
        """The connection's failure as our error (a file's own refusal is its answer instead)."""
        try:
            yield
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise error_for_exception(exc, action, self.where) from exc


def late_failure(
    exc: BaseException,
    flight: InFlight,
    where: str,
    remove: Callable[[str], None],
    too_large_or_full: Callable[[QuotaError, str, int], TransportError],
) -> TransportError:
    """Our error for a file the server refused after its ``put`` returned, with the server's
    words; its temporary name (or its partial under the final name) is removed as ``put`` would,
    unless a cut kept it for a resume."""
    action = f"renaming {flight.target}" if flight.rename_sent else f"uploading {flight.target}"
    error = error_for_exception(exc, action, where, per_file=True)
    if isinstance(error, QuotaError):
        remove(flight.target)
        return too_large_or_full(error, flight.target, flight.size)
    if flight.rename_sent or not (flight.resume and keeps_partial(error)):
        remove(flight.target)
    return error


def confirm_overlapped(
    pipe: Pipeline,
    pending: list[PutResult],
    judge: Callable[[PutResult, int | None], PutResult],
    confirm: Callable[[list[PutResult]], list[PutResult | TransportError]],
) -> list[PutResult | TransportError]:
    """``confirm`` of an SFTP session: the answers still on their way, each file judged by the
    STAT after its rename (``judge``: the transport's size check); ``confirm`` (one listing, or a
    look per file) only for files with no such answer (not overlapped, or a STAT unanswered)."""
    pipe.settle({sent.ticket for sent in pending if sent.ticket is not None})
    answers: list[PutResult | TransportError] = []
    for answer, size in map(pipe.answer, pending):
        if isinstance(answer, PutResult) and size is not UNKNOWN:
            try:
                answer = judge(answer, size if isinstance(size, int) else None)
            except ArrivedShort as short:
                answer = short
        answers.append(answer)
    left = [sent for sent in answers if isinstance(sent, PutResult) and sent.pending]
    checked = iter(confirm(left) if left else [])
    return [next(checked) if isinstance(sent, PutResult) and sent.pending else sent for sent in answers]
