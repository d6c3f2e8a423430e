"""Re-exports: the same photo with new bytes is not submitted twice (design.md invariant 3).

Photographers export a photo again after fixing its keywords or title. The new file has a new
content hash, so by content alone it is a new asset; agencies reject duplicate submissions and
penalise the account. So each image also has a **photo id**: its XMP ``xmpMM:OriginalDocumentID``,
else its ``xmpMM:DocumentID`` (Lightroom and Photoshop write them, and keep them when a photo is
exported again), else its path relative to the watch folder. Files taken before photo ids were
recorded (ledger schema 2) count as the photo at their path.

Per platform, when a new version's job is created (:mod:`.prepare`):

- an earlier version **sent** there (uploaded, or its upload begun: it resumes to the same name
  after a crash or a retry): with ``on_reexport = "hold"`` (the default) the new one is ``held``, its reason naming the earlier upload (remote name, date) and the
  command that sends it anyway, ``stockbridge resend FILE --platform NAME``; with ``"send"`` it goes
  as a new file (under a new remote name when the old one is taken);
- earlier versions **not sent** (pending, held, failed): the newest export is the one that counts.
  Held and failed ones are superseded at once (``rejected``, "superseded by a newer export ..."),
  so a release arriving later or ``stockbridge retry`` cannot send an outdated version. A pending one
  may already be in a batch: it is superseded when its turn comes, at :func:`newer_version`, which
  the uploader asks before its first attempt under the same lock that job creation holds, so of
  two versions of a photo at most one begins.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from stockbridge.errors import StockbridgeError
from stockbridge.ledger import states
from stockbridge.ledger.records import Job
from stockbridge.ledger.store import Ledger
from stockbridge.metadata.fields import ImageMetadata

if TYPE_CHECKING:
    from stockbridge.delivery.prepare import Pipeline

#: An earlier version in one of these states is superseded at once by a newer export.
UNSENT_STATES = (states.HELD, states.FAILED)


def photo_id(metadata: ImageMetadata | None, path: Path, root: Path) -> str:
    """Which photo ``path`` is, across exports: ``xmp:<document id>`` or ``path:<relative path>``."""
    if metadata is not None:
        document = metadata.original_document_id or metadata.document_id
        if document:
            return f"xmp:{document}"
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        relative = path.as_posix()
    return f"path:{relative}"


def began(job: Job) -> bool:
    """Has this job's upload begun (it may be on the server, and resumes to the same name)?"""
    return job.state in (states.UPLOADED, states.UPLOADING) or (
        job.state == states.PENDING and job.attempts > 0
    )


def earlier_sent(ledger: Ledger, photo: str, path: Path, sha256: str, platform: str) -> Job | None:
    """The latest earlier version of the photo whose upload to ``platform`` has begun, if any."""
    sent = [
        job for job in ledger.photo_jobs(platform, photo, str(path)) if job.sha256 != sha256 and began(job)
    ]
    return sent[-1] if sent else None


def held_reason(earlier: Job, path: Path, platform: str) -> str:
    """Why a re-export is held: the earlier upload, its date, and the command that sends it anyway."""
    if earlier.state == states.UPLOADED and earlier.uploaded_at is not None:
        when = f"on {time.strftime('%Y-%m-%d %H:%M', time.localtime(earlier.uploaded_at))}"
    else:
        when = "(its upload has begun)"
    same = "" if Path(earlier.path).name == path.name else f" {Path(earlier.path).name}"
    return (
        f"a re-export of a photo already uploaded to {platform}: the earlier version{same} went as"
        f" {earlier.remote_name} {when}; not sent again, agencies penalise duplicate submissions."
        f" To send it anyway: stockbridge resend {shlex.quote(str(path))} --platform {platform}"
    )


def supersede_unsent(ledger: Ledger, photo: str, path: Path, sha256: str, platform: str) -> list[Job]:
    """Held and failed earlier versions of the photo on ``platform`` become ``rejected``: the export
    at ``path`` supersedes them. Returns them as they were."""
    superseded = [
        job
        for job in ledger.photo_jobs(platform, photo, str(path))
        if job.sha256 != sha256 and job.state in UNSENT_STATES
    ]
    for job in superseded:
        supersede(ledger, job, path)
    return superseded


def supersede(ledger: Ledger, job: Job, newer_path: Path | str) -> None:
    """``job`` is not sent: the newer export at ``newer_path`` is (its remote name is freed)."""
    reason = superseded_reason(newer_path)
    ledger.set_state(job.id, states.REJECTED, reason, remote_name=None)
    logger.info("{} for {}: {}", Path(job.path).name, job.platform, reason)


def newer_version(ledger: Ledger, job: Job) -> Job | None:
    """A version of ``job``'s photo exported after it, with a job on the same platform, if ``job``
    has not begun (asked before its first attempt: only the newest export is sent)."""
    if job.kind != "image" or began(job):
        return None
    newer = [
        other
        for other in ledger.photo_jobs(job.platform, job.photo_id, job.path)
        if other.id > job.id and other.sha256 != job.sha256
    ]
    return newer[-1] if newer else None


def superseded_reason(newer_path: Path | str) -> str:
    return (
        f"superseded by a newer export of the same photo ({Path(newer_path).name}), which is the one"
        " sent; not sent itself"
    )


def resend(pipeline: Pipeline, path: Path, platform: str, *, sha256: str | None = None) -> Job:
    """``stockbridge resend``: send the file at ``path`` to ``platform`` although an earlier version
    of the photo went there. Its held job goes pending the normal way (the rules, the copy, a remote
    name of its own when the old one is taken); the service or ``stockbridge once`` sends it,
    verified as any upload. Returns the job (pending); raises when there is nothing to resend.
    ``sha256``: the content already known (the web page), else the file at ``path`` as it is now."""
    ledger = pipeline.ledger
    sha256 = sha256 or pipeline.known(path)
    if sha256 is None:
        raise StockbridgeError(
            f"{path}: not taken in its current form",
            hint="run `stockbridge once` (or let the service take it) first; then resend what is held",
        )
    job = ledger.job_for(sha256, platform)
    if job is None:
        raise StockbridgeError(f"{path.name}: no job for {platform} yet", hint="run `stockbridge once` first")
    if job.state in (states.PENDING, states.UPLOADING):
        return job  # it goes anyway
    if job.state != states.HELD:
        what = f"{job.state} for {platform}" + (f": {job.reason}" if job.reason else "")
        hint = "`stockbridge retry` sends failed files again" if job.state == states.FAILED else None
        raise StockbridgeError(f"{path.name}: {what}; nothing to resend", hint=hint)
    item = pipeline.reingest(sha256)
    if item is None:
        raise StockbridgeError(f"{path.name}: its private copy in the state folder is gone; export it again")
    still = pipeline.activate_held(item, pipeline.facts_for(item), job, resend=True)
    if still is not None:
        raise StockbridgeError(f"{path.name}: still held for {platform}: {still}")
    return ledger.job(job.id)
