"""Resuming a large file's cut upload (issue 14, item 5): what the uploader tells the ledger and
the transport. The transport's side (where to start, what is checked) is transports/resume.py.

Before a large file's first byte leaves, the ledger records the remote name it is written to
(``.part`` with ``atomic_rename``, else the final name) and the size and SHA-256 of what is sent.
The next attempt — a reconnect within the batch, a later batch, or the first batch after a crash
or a restart of stockbridge — may continue the partial on the server only when it writes that same
name from that same file; anything else starts from zero. At start (``recover``), a partial of a
large file that the ledger says we were writing is kept for that resume instead of deleted.

The SHA-256 costs nothing for a file sent unchanged before its first attempt (its private copy is
named by it); a rendered copy is hashed, and so is any file before an attempt that may resume.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import loguru

from stockbridge.ledger.records import Writing
from stockbridge.ledger.store import Job, Ledger
from stockbridge.transports import TEMP_SUFFIX, Transport
from stockbridge.transports.resume import RESUME_MIN_BYTES, Resumed, ResumeOffer

#: Read size for the file's SHA-256.
_CHUNK = 1024 * 1024


def plan(
    ledger: Ledger, job: Job, local: Path, atomic: bool, platform: str, log: loguru.Logger
) -> tuple[Writing | None, ResumeOffer | None]:
    """What to record before sending ``local`` for ``job``, and what to allow the transport.
    (None, None) for a file under :data:`RESUME_MIN_BYTES`: it starts from zero, as always."""
    size = local.stat().st_size
    if size < RESUME_MIN_BYTES or not job.remote_name:
        return None, None
    name = job.remote_name + TEMP_SUFFIX if atomic else job.remote_name
    if (job.writing_name, job.writing_size) == (name, size) and job.writing_sha256:
        # A partial of ours may be there: make sure the file is still the one it was cut from.
        sha256 = _sha256(local)
        ours = sha256 == job.writing_sha256
    else:
        # The private copy of a file sent unchanged is named by its SHA-256 (assets/ingest.py):
        # a first attempt reads nothing more. A rendered copy is hashed.
        sha256 = job.sha256 if local.stem == job.sha256 else _sha256(local)
        ours = False
    writing = Writing(name, size, sha256)

    def announce(resumed: Resumed) -> None:
        ledger.record_resume(job.id, resumed.offset, resumed.checked_by)
        log.info("{} → {}: {}", Path(job.path).name, platform, resumed.describe())

    return writing, ResumeOffer(continue_partial=ours, announce=announce)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def keep_at_start(
    transport: Transport, job: Job, name: str, log: loguru.Logger, size: int | None = None
) -> bool:
    """At start, for a job a crash left ``uploading``: is the partial ``name`` one to resume
    (the ledger says we were writing it, from a large file, and it is not larger than that)?"""
    if job.writing_name != name or (job.writing_size or 0) < RESUME_MIN_BYTES:
        return False
    size = transport.size(name) if size is None else size
    if size is None or size >= (job.writing_size or 0):
        return False
    log.info(
        "{}: kept the partial {} ({:.1f} of {:.1f} MB) an interrupted upload left: it resumes",
        Path(job.path).name,
        name,
        size / 1e6,
        (job.writing_size or 0) / 1e6,
    )
    return True
