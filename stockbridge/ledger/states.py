"""Where a job is, and the moves it may make.

**Job states** are :class:`JobState`; :data:`TRANSITIONS` is the one table of the moves a job may
make, each with what makes it. A move the table lacks raises :class:`ForbiddenTransition`: it is a
bug in the caller, never something a user did.
"""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    """Where a job is. The value is what the ledger stores and ``status --json`` shows."""

    PENDING = "pending"  # waits for its turn (a batch, a backoff, a schedule, a paused platform)
    UPLOADING = "uploading"  # the intent: being sent now, or cut off by a crash (checked at start)
    UPLOADED = "uploaded"  # final: on the server (verified, or moved away at once by the agency)
    HELD = "held"  # waits for the user: a release, a title, keywords
    REJECTED = "rejected"  # final: no change fixes it (too few pixels, not routed here, superseded)
    FAILED = "failed"  # the server refused it or it kept failing; `stockbridge retry` sends it again

    def __str__(self) -> str:  # "pending" in messages and tables, not "JobState.PENDING"
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


PENDING = JobState.PENDING
UPLOADING = JobState.UPLOADING
UPLOADED = JobState.UPLOADED
HELD = JobState.HELD
REJECTED = JobState.REJECTED
FAILED = JobState.FAILED

#: Plain strings (``--state`` choices).
STATES = tuple(state.value for state in JobState)
#: States in which a job needs nothing more from stockbridge (``held`` waits for the user).
SETTLED_STATES = (UPLOADED, HELD, REJECTED, FAILED)

#: Every move a job may make: (from, to, what makes it). Anything else raises ForbiddenTransition.
TRANSITIONS: tuple[tuple[JobState, JobState, str], ...] = (
    (PENDING, PENDING, "waits again: backoff, platform paused or unreachable (set_state)"),
    (PENDING, UPLOADING, "the write-ahead intent before the first byte (begin_upload)"),
    (PENDING, UPLOADED, "an earlier attempt is found on the server at full size (mark_uploaded)"),
    (PENDING, FAILED, "its prepared copy is missing (set_state)"),
    (UPLOADING, UPLOADING, "sent again on a new connection after a transient error (begin_upload)"),
    (UPLOADING, UPLOADED, "the transfer is confirmed (mark_uploaded)"),
    (UPLOADING, PENDING, "retry later, platform paused or unreachable, shutdown, or recovery after a crash"),
    (UPLOADING, FAILED, "the server refused the file, or attempts ran out (set_state)"),
    (HELD, PENDING, "what held it went away, e.g. its release arrived, or `stockbridge resend` (activate)"),
    (HELD, HELD, "held now for another reason: its release arrived, but it re-exports an uploaded photo"),
    (PENDING, REJECTED, "a newer export of the same photo supersedes it, found before its upload began"),
    (HELD, REJECTED, "a newer export of the same photo supersedes it (delivery/reexport.py)"),
    (FAILED, REJECTED, "a newer export of the same photo supersedes it (delivery/reexport.py)"),
    (FAILED, PENDING, "`stockbridge retry` (requeue_failed)"),
)
ALLOWED: frozenset[tuple[JobState, JobState]] = frozenset((old, new) for old, new, _why in TRANSITIONS)
#: A job is created in any state but ``uploading``: only begin_upload writes an intent (and counts it).
INITIAL_STATES = tuple(state for state in JobState if state is not UPLOADING)


class ForbiddenTransition(RuntimeError):
    """A job was asked to make a move :data:`TRANSITIONS` does not have: a bug, not a user error."""

    def __init__(self, job_id: int, old: JobState, new: JobState) -> None:
        allowed = sorted(to.value for frm, to in ALLOWED if frm is old)
        super().__init__(
            f"job {job_id}: {old} → {new} is not an allowed transition"
            f" (from {old}: {', '.join(allowed) or 'none, it is final'})"
        )
        self.job_id, self.old, self.new = job_id, old, new
