"""Uploads of one batch checked together: one listing of the remote folder instead of a size
request per file (issue 14: on a 200 ms link that request is a fifth of a second per file).

The transport sends a file and returns once the server confirmed the transfer (FTP: its 226;
SFTP: the status of every write and of the close), with the look under the final name left
``pending``. The job stays ``uploading`` meanwhile. Every few files or seconds, and always before a
connection closes or a manifest is written, :func:`confirm_sent` asks for those files at once
(:meth:`~stockbridge.transports.base.Transport.confirm`); only then is a job ``uploaded``. If the
connection breaks first, the jobs go back to ``pending`` with their attempt counted, and the next
attempt looks on the server before sending anything (the recovery path a crash takes too), so
the promise stays: ``uploaded`` only once the server showed the full size under the final name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockbridge.delivery.batch import Batch
from stockbridge.delivery.policy import LOW_LEVEL_RETRIES, message_of
from stockbridge.errors import TransportError
from stockbridge.ledger import states
from stockbridge.ledger.store import Job
from stockbridge.transports import PutResult, Transport
from stockbridge.transports.base import AnswerLost, Progress
from stockbridge.transports.resume import ResumeOffer

if TYPE_CHECKING:
    from stockbridge.delivery.uploader import PlatformUploader

#: Check the waiting uploads once this many wait, or once the oldest has waited this long: a few
#: files per listing already save round trips, and ``status`` should not lag far behind.
CONFIRM_EVERY_FILES = 20
CONFIRM_EVERY_SECONDS = 20.0


@dataclass
class Sent:
    job: Job
    result: PutResult
    seconds: float  # the transfer's, for the log


@dataclass
class Unconfirmed:
    """The uploads of one connection waiting for their check, oldest first."""

    sent: list[Sent] = field(default_factory=list)
    since: float = 0.0

    def add(
        self, uploader: PlatformUploader, batch: Batch, job: Job, result: PutResult, seconds: float
    ) -> None:
        """Note a file the server confirmed receiving; its check comes with the others'."""
        if not self.sent:
            self.since = time.monotonic()
        self.sent.append(Sent(job, result, seconds))
        uploader._log(job, states.UPLOADING, batch.id).info(
            "sent {} → {} as {} ({:.1f} MB, {:.1f} s); checked on the server with the batch",
            Path(job.path).name,
            uploader.name,
            result.remote_name,
            result.size / 1_000_000,
            seconds,
        )

    def due(self) -> bool:
        return len(self.sent) >= CONFIRM_EVERY_FILES or (
            bool(self.sent) and time.monotonic() - self.since >= CONFIRM_EVERY_SECONDS
        )


def put_file(
    transport: Transport,
    local: Path,
    name: str,
    progress: Progress,
    offer: ResumeOffer | None,
    waiting: Unconfirmed | None,
) -> PutResult:
    """``transport.put`` with only the keywords this upload needs: a resume offer (large files,
    delivery/resuming.py) and ``verify=False`` where the transport checks in batches (FTP, SFTP);
    a transport without those parameters is called as before."""
    extra: dict[str, Any] = {}
    if offer is not None:
        extra["resume"] = offer
    if waiting is not None and transport.checks_in_batches:
        extra["verify"] = False
    return transport.put(local, name, progress=progress, **extra)


def confirm_sent(
    uploader: PlatformUploader,
    batch: Batch,
    transport: Transport | None,
    waiting: Unconfirmed,
    *,
    answered_only: bool = False,
) -> None:
    """Check every upload in ``waiting`` and record each answer; with no connection, or one
    that fails under the check, the jobs wait to be looked for at their next attempt.
    ``answered_only``: a check on the way leaves the uploads the server has not answered in full
    yet (SFTP files still in flight) for a later one, so the line never waits for it."""
    sent, waiting.sent = waiting.sent, []
    if answered_only and transport is not None and sent:
        try:
            later = [item for item in sent if not transport.answered(item.result)]
        except TransportError:
            later = []  # the check below meets the same failure and answers for all of them
        if later:
            sent, waiting.sent = [item for item in sent if item not in later], later
            waiting.since = time.monotonic()
    if not sent:
        return
    try:
        if transport is None:
            raise TransportError("the connection is gone")
        answers = transport.confirm([item.result for item in sent])
    except TransportError as exc:
        _look_again(uploader, sent, exc)
        uploader._log(batch=batch.id).warning(
            "{}: could not check {} sent file(s) ({}); each is looked for on the server first next time",
            uploader.name,
            len(sent),
            message_of(exc),
        )
        return
    arrived = [
        (item, answer) for item, answer in zip(sent, answers, strict=True) if isinstance(answer, PutResult)
    ]
    # One commit for all of them (decisions.md R-4 still holds: each is durable before it is told).
    uploader.ledger.mark_uploaded_many([(item.job.id, *_proof(answer)) for item, answer in arrived])
    for item, answer in arrived:
        record_uploaded(uploader, batch, item.job, answer, item.seconds, marked=True)
    # An SFTP file whose last answers went with an earlier connection (transports/sftp_pipeline.py).
    lost = [item for item, answer in zip(sent, answers, strict=True) if isinstance(answer, AnswerLost)]
    _look_again(uploader, lost)
    for item, outcome in zip(sent, answers, strict=True):
        if isinstance(outcome, TransportError) and not isinstance(outcome, AnswerLost):
            # Removed from the server already; it goes again after its backoff (not at once: the
            # connection that sent it has moved on to other files).
            uploader._failed_upload(batch, item.job, outcome, tries=LOW_LEVEL_RETRIES)


def _look_again(uploader: PlatformUploader, sent: list[Sent], cause: TransportError | None = None) -> None:
    """Back to ``pending`` with the attempt counted: the next attempt looks for the file on the
    server before it sends anything, so it is never sent twice nor counted without its check."""
    why = (
        f"the check on the server was cut off ({message_of(cause)})"
        if cause
        else "its answer went with the connection"
    )
    for item in sent:
        uploader.ledger.set_state(
            item.job.id,
            states.PENDING,
            f"sent, but {why}; the server is asked before it goes again",
            next_attempt_at=0,
        )


def _proof(result: PutResult) -> tuple[bool, str | None]:
    return result.verified, (result.verified_by or "size") if result.verified else None


def record_uploaded(
    uploader: PlatformUploader,
    batch: Batch,
    job: Job,
    result: PutResult,
    seconds: float,
    *,
    marked: bool = False,
) -> None:
    """The job is ``uploaded`` (``marked``: the ledger says so already): log it, report it."""
    if not marked:
        verified, verified_by = _proof(result)
        uploader.ledger.mark_uploaded(job.id, verified=verified, verified_by=verified_by)
    note = "" if result.verified else ", moved away by the server at once (not verifiable)"
    uploader._log(job, states.UPLOADED, batch.id).info(
        "uploaded {} → {} as {} ({:.1f} MB, {:.1f} s{})",
        Path(job.path).name,
        uploader.name,
        result.remote_name,
        result.size / 1_000_000,
        seconds,
        note,
    )
    uploader._report(job.id, batch)
