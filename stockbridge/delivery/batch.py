"""A batch: the files one platform sends over one connection, and the answers they got."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from stockbridge.config.models import PlatformConfig
from stockbridge.ledger import states
from stockbridge.ledger.store import Job


class Outcome(enum.Enum):
    """What sending one file of a batch came to."""

    UPLOADED = "uploaded"
    FAILED = "failed"  # this file's answer; the batch goes on
    SUPERSEDED = "superseded"  # not sent: a newer export of the same photo is (delivery/reexport.py)
    STOP = "stop"  # the batch stops: the platform paused, the server is gone, a shutdown, a retry later


class GroupOutcome(enum.Enum):
    """What one remote folder's part of a batch came to."""

    DONE = "done"
    STOPPED = "stopped"


@dataclass
class Batch:
    id: int
    platform: str
    #: Every job taken into the batch, those that joined it while it was open included.
    sent: list[Job]
    uploaded: list[Job] = field(default_factory=list)
    #: Final answers given during the batch (uploaded or failed), in order.
    answers: list[Job] = field(default_factory=list)
    #: The CSV manifest went with the platform's own folder.
    manifest_done: bool = False

    def answer(self, job: Job) -> None:
        self.answers.append(job)
        if job.state == states.UPLOADED:
            self.uploaded.append(job)

    @property
    def failures(self) -> int:
        return sum(1 for job in self.answers if job.state == states.FAILED)

    @property
    def progress(self) -> tuple[int, int]:
        """(files answered, files in the batch), for a status line."""
        return len(self.answers), len(self.sent)


# ------------------------------------------------------------------ clips per batch


def is_clip(job: Job) -> bool:
    """A video clip's job (prepare records its ffprobe facts in the job's meta)."""
    return bool((job.meta or {}).get("clip"))


def clip_cap(platform: PlatformConfig) -> int | None:
    """How many clips one batch may hold on ``platform`` (``rules.video.max_clips_per_batch``), or None: no cap."""
    video = platform.rules.video
    return video.max_clips_per_batch if video is not None else None


def fit_clips(jobs: list[Job], cap: int | None, in_batch: int = 0) -> list[Job]:
    """``jobs`` in order, without the clips past ``cap`` (``in_batch`` clips already sent in this
    batch): those stay pending for the next batch."""
    if cap is None:
        return jobs
    kept, clips = [], in_batch
    for job in jobs:
        if is_clip(job):
            if clips >= cap:
                continue
            clips += 1
        kept.append(job)
    return kept


def capped_top_up(
    more: Callable[[str | None, int], list[Job]],
    batch: Batch,
    cap: int | None,
    unclaim: Callable[[Iterable[Job]], None],
) -> Callable[[str | None, int], list[Job]]:
    """``more`` (files joining an open batch) that lets no more than ``cap`` clips into ``batch``;
    the clips it leaves out are given back (unclaimed) for the next batch."""

    def capped(remote_dir: str | None, room: int) -> list[Job]:
        jobs = more(remote_dir, room)
        kept = fit_clips(jobs, cap, sum(1 for job in batch.sent if is_clip(job)))
        unclaim(job for job in jobs if job not in kept)
        return kept

    return capped
