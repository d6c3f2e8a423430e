"""A batch: the files one platform sends over one connection, and the answers they got."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

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
