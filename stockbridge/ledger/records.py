"""What the ledger hands out: one frozen record per asset, job, batch, pause and notice."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from stockbridge.ledger.states import JobState


@dataclass(frozen=True, slots=True)
class Asset:
    sha256: str
    path: str
    size: int
    file_type: str | None
    object_path: str | None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    sha256: str
    platform: str
    state: JobState
    reason: str | None
    attempts: int
    remote_name: str | None
    upload_path: str | None
    upload_size: int | None
    verified: bool | None
    next_attempt_at: float
    created_at: float
    updated_at: float
    uploaded_at: float | None
    path: str  # the asset's source path, for messages
    changes: tuple[str, ...] = ()
    kind: str = "image"
    remote_dir: str | None = None
    meta: dict[str, object] | None = None
    verified_by: str | None = None  # "size", "listing", or a hash name ("sha256", ...); None: not known
    photo_id: str | None = None  # the asset's photo across exports (delivery/reexport.py)
    #: A large file's upload (transports/resume.py): the remote name being written and the size
    #: and SHA-256 of what is sent; where its last attempt resumed and how the prefix was checked.
    writing_name: str | None = None
    writing_size: int | None = None
    writing_sha256: str | None = None
    resumed_at: int | None = None
    resumed_by: str | None = None


@dataclass(frozen=True, slots=True)
class Writing:
    """What an upload of a large file is about to write: recorded before its first byte."""

    name: str  # the remote name written: temporary (``.part``) or final
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Pause:
    platform: str
    kind: str
    reason: str
    paused_at: float
    until: float | None


@dataclass(frozen=True, slots=True)
class Notice:
    """A file in the watch folder that was seen and not taken, and why (shown by ``status``)."""

    path: str
    kind: str
    reason: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    platform: str
    opened_at: float
    closed_at: float | None  # None: still open (or cut short by a crash)
    files: int
    uploaded: int
    failed: int


def job_from_row(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        sha256=row["sha256"],
        platform=row["platform"],
        state=JobState(row["state"]),
        reason=row["reason"],
        attempts=row["attempts"],
        remote_name=row["remote_name"],
        upload_path=row["upload_path"],
        upload_size=row["upload_size"],
        verified=None if row["verified"] is None else bool(row["verified"]),
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        uploaded_at=row["uploaded_at"],
        path=row["path"],
        changes=tuple(row["changes"].split("\n")) if row["changes"] else (),
        kind=row["kind"],
        remote_dir=row["remote_dir"],
        meta=json.loads(row["meta"]) if row["meta"] else None,
        verified_by=row["verified_by"],
        photo_id=row["photo_id"],
        writing_name=row["writing_name"],
        writing_size=row["writing_size"],
        writing_sha256=row["writing_sha256"],
        resumed_at=row["resumed_at"],
        resumed_by=row["resumed_by"],
    )
