"""The one batch loop, for ``once`` and ``run`` alike: when a platform's next batch goes.

:func:`look` takes one look at a platform and sends a batch when one is due; it returns how long
to wait before the next look, or None when there is nothing left to do. ``once`` and the service
differ only in their :class:`Cadence`:

- ``once`` sends what is due at once, and an open batch waits a while for files still being
  prepared; it is done when nothing is pending, when only a schedule or a pause holds files back,
  or when an unreachable server has had its tries;
- the service lets a batch fill up to ``max_files`` or ``max_wait_seconds``, and never stops looking.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from stockbridge.delivery.batch import Batch
from stockbridge.delivery.pace import admit
from stockbridge.delivery.uploader import PlatformUploader, TopUp
from stockbridge.ledger.store import Job

#: ``once``: how long an open batch waits for the next file still being prepared before it closes.
ONCE_LINGER_SECONDS = 30.0
#: The service: the longest nap between two looks (a new file or a reload wakes it sooner).
SERVICE_LOOK_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Cadence:
    #: Wait for ``max_files`` or ``max_wait_seconds`` before sending (the service), or send what
    #: is due at once (``once``).
    fill_batches: bool
    #: How long an open batch waits for files still being prepared.
    linger: float
    #: Stop looking when nothing more can go in this run (``once``).
    finish: bool


ONCE = Cadence(fill_batches=False, linger=ONCE_LINGER_SECONDS, finish=True)
SERVICE = Cadence(fill_batches=True, linger=0.0, finish=False)


def look(
    uploader: PlatformUploader,
    cadence: Cadence,
    ingest_done: threading.Event | None = None,
    on_batch: Callable[[Batch | None], None] | None = None,
) -> float | None:
    """One look at ``uploader``'s platform: send a batch if one is due.

    ``ingest_done``: not set while files are still being prepared (``once``): an empty queue then
    means "wait for the next file", not "done". Returns the seconds to wait before looking again, or None
    when ``cadence.finish`` and nothing more can go now. Bounded queries: a backlog of 10,000
    pending jobs is never loaded at once.
    """
    idle = None if cadence.finish else SERVICE_LOOK_SECONDS
    still_preparing = ingest_done is not None and not ingest_done.is_set()
    pause = uploader.ledger.pause_of(uploader.name)
    if pause is not None:
        if pause.until is None:
            return idle  # waits for the user: `retry`, or a reload
        if cadence.finish and (
            uploader.connect_failures == 0 or uploader.connect_failures >= uploader.retry.max_attempts
        ):
            # A full server will not change within this run; an unreachable one had as many
            # tries as a file would get.
            return None
        return max(0.05, min(SERVICE_LOOK_SECONDS, pause.until - time.time()))
    now = time.time()
    max_files = uploader.platform.batch.max_files
    due = uploader.due(max_files, now)
    if not due:
        earliest = uploader.ledger.next_attempt(uploader.name)
        if not cadence.finish:
            return SERVICE_LOOK_SECONDS if earliest is None else max(0.05, min(5.0, earliest - now))
        if (earliest is None or earliest <= now) and not still_preparing:
            return None  # nothing pending, or only files another connection of this platform took
        return 0.1 if earliest is None or still_preparing else max(0.05, earliest - now)
    due, later = admit(uploader.ledger, uploader.name, uploader.platform.schedule, due, uploader.clock())
    if not due:
        return idle  # outside every window or over today's cap: left pending, shown as scheduled
    capped = later is not None  # today's cap closes the batch: nothing more may join it
    fitted = uploader.fit_batch(due)  # clips over rules.video.max_clips_per_batch wait for the next batch
    if cadence.fill_batches:
        oldest = min(job.created_at for job in due)
        retrying = any(job.attempts > 0 for job in due)
        full = (
            len(due) >= max_files
            or len(fitted) < len(due)
            or now - oldest >= uploader.platform.batch.max_wait_seconds
        )
        if not (full or retrying or capped):
            return max(0.05, min(5.0, oldest + uploader.platform.batch.max_wait_seconds - now))
    due = uploader.claim(fitted)
    if not due:
        return 0.05  # another connection of this platform took them
    more = None if capped else top_up(uploader, ingest_done, cadence.linger)
    batch = uploader.run_batch(due, more=more)
    if on_batch is not None:
        on_batch(batch)
    return 0.0


def top_up(uploader: PlatformUploader, ingest_done: threading.Event | None, linger: float) -> TopUp:
    """``more`` for ``run_batch``: due files join the open batch (claimed, and admitted by the
    platform's schedule). While ``ingest_done`` is not set (``once`` still preparing files), wait
    up to ``linger`` seconds for the next one instead of closing the connection."""

    def more(remote_dir: str | None, room: int) -> list[Job]:
        give_up = time.monotonic() + linger
        if uploader.platform.connections > 1:
            room = min(room, 1)  # one at a time: the platform's other connections take theirs
        while True:
            jobs = uploader.joining(remote_dir, room)
            if jobs:
                jobs, _later = admit(
                    uploader.ledger, uploader.name, uploader.platform.schedule, jobs, uploader.clock()
                )
                return uploader.claim(jobs)
            if ingest_done is None or ingest_done.is_set() or time.monotonic() >= give_up:
                return []
            if uploader.stop.wait(0.05):
                return []

    return more


def drain(uploader: PlatformUploader, deadline: float, ingest_done: threading.Event | None = None) -> None:
    """``once``: look at the platform until nothing more can go in this run (or ``deadline``).
    Several threads may drain one platform (``connections``): each takes the jobs no other one has."""
    uploader.recover_once()
    while not uploader.stop.is_set() and time.monotonic() < deadline:
        wait = look(uploader, ONCE, ingest_done)
        if wait is None:
            return
        if wait > 0:
            uploader.stop.wait(max(0.0, min(wait, deadline - time.monotonic())))
