"""The pipeline: ingest → plan → ledger → batch → upload → verify.

``Pipeline.accept_file`` turns one settled source file into jobs (one per enabled platform, each
with its verdict); ``PlatformUploader`` sends one platform's pending jobs in batches over one
connection. ``once`` (in this module) and ``daemon.run`` drive them. Whatever goes wrong with one
file or one platform is recorded in the ledger with its reason and never stops the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from stockbridge import ledger as states
from stockbridge.config import Config, PlatformConfig, transport_settings
from stockbridge.errors import (
    AuthError,
    ConfigError,
    InputError,
    MetadataError,
    QuotaError,
    RemoteRejectedError,
    StockbridgeError,
    TransportError,
    TrustError,
)
from stockbridge.ingest import Ingested, SourceChanged, ingest
from stockbridge.ledger import Job, Ledger
from stockbridge.metadata import ExifTool
from stockbridge.naming import remote_name
from stockbridge.plan import ACCEPT, HOLD, Verdict, evaluate
from stockbridge.transports import Transport, open_transport


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Job-level retries of transient transfer errors: exponential backoff with full jitter."""

    base_seconds: float
    cap_seconds: float
    max_attempts: int

    def delay(self, attempt: int) -> float:
        return random.uniform(0.5, 1.0) * min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1))


#: ``once`` should finish in minutes; the service can wait hours for a server to come back.
ONCE_RETRY = RetryPolicy(base_seconds=1.0, cap_seconds=8.0, max_attempts=4)
SERVICE_RETRY = RetryPolicy(base_seconds=30.0, cap_seconds=3600.0, max_attempts=8)
#: Pause kind of a server that could not be reached: lifted at every start (a new try).
UNREACHABLE = "unreachable"
#: How long a full server / used-up quota pauses a platform before we look again.
QUOTA_PAUSE_SECONDS = 1800.0


class Stopped(Exception):
    """Raised from a progress callback when the service is asked to stop mid-transfer."""


class Pipeline:
    """Shared state of one run: config, ledger, ExifTool, state directories."""

    def __init__(self, config: Config, ledger: Ledger, exiftool: ExifTool) -> None:
        self.config = config
        self.ledger = ledger
        self.exiftool = exiftool
        self.state_dir = config.state.dir
        self._copy_lock = threading.Lock()

    @property
    def platforms(self) -> dict[str, PlatformConfig]:
        return self.config.enabled_platforms()

    # ------------------------------------------------------------------ ingest + plan

    def accept_file(self, path: Path) -> Ingested | None:
        """Ingest ``path`` and create its jobs. Returns None when the file must settle again."""
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return None
        known = self.ledger.known_source(str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if known is not None and all(self.ledger.has_job(known, name) for name in self.platforms):
            logger.debug("{}: unchanged since last seen, nothing to do", path.name)
            return None
        try:
            item = ingest(path, self.state_dir, self.exiftool)
        except SourceChanged as exc:
            logger.info("{}", exc.message)
            return None
        except (InputError, MetadataError) as exc:
            logger.warning("{}: {}", path.name, exc)
            return None
        self.ledger.record_asset(
            sha256=item.sha256,
            path=str(path),
            size=item.size,
            file_type=item.file_type,
            object_path=str(item.object_path) if item.object_path else None,
            fingerprint=item.fingerprint,
        )
        created = 0
        for name, platform in self.platforms.items():
            if self.ledger.has_job(item.sha256, name):
                continue  # same content seen before (re-export, restart): never twice
            created += self._create_job(item, name, platform)
        if created == 0 and known is None:
            logger.info("{}: same content as an earlier file, nothing new to send", path.name)
        return item

    def _create_job(self, item: Ingested, name: str, platform: PlatformConfig) -> int:
        if item.problem is not None:
            self.ledger.create_job(
                sha256=item.sha256, platform=name, state=states.REJECTED, reason=item.problem
            )
            logger.warning("rejected {} for {}: {}", item.path.name, name, item.problem)
            return 1
        verdict = evaluate(name, item.facts(), platform.rules)
        if verdict.verdict != ACCEPT:
            state = states.HELD if verdict.verdict == HOLD else states.REJECTED
            reason = "; ".join(verdict.reasons)
            self.ledger.create_job(sha256=item.sha256, platform=name, state=state, reason=reason)
            logger.warning("{} {} for {}: {}", state, item.path.name, name, reason)
            return 1
        try:
            upload_path = self._prepare(item, verdict)
        except (MetadataError, OSError) as exc:
            reason = f"could not prepare this platform's copy: {exc}"
            self.ledger.create_job(sha256=item.sha256, platform=name, state=states.FAILED, reason=reason)
            logger.error("{} for {}: {}", item.path.name, name, reason)
            return 1
        remote = self._free_remote_name(name, item)
        created = self.ledger.create_job(
            sha256=item.sha256,
            platform=name,
            state=states.PENDING,
            remote_name=remote,
            upload_path=str(upload_path),
            upload_size=upload_path.stat().st_size,
            changes=verdict.changes,
        )
        if created:
            changes = f" ({'; '.join(verdict.changes)})" if verdict.changes else ""
            logger.info("queued {} for {} as {}{}", item.path.name, name, remote, changes)
        return int(created)

    def _free_remote_name(self, platform: str, item: Ingested) -> str:
        name = remote_name(item.path.name, item.sha256, item.file_type)
        if self.ledger.remote_name_taken(platform, name, item.sha256):
            # A different file with the same name went (or goes) there already: keep both.
            name = remote_name(item.path.name, item.sha256, item.file_type, with_suffix=True)
        return name

    def _prepare(self, item: Ingested, verdict: Verdict) -> Path:
        """The exact file to send: the private copy, or a derived copy when the platform needs one."""
        assert item.object_path is not None
        if not verdict.needs_copy:
            return item.object_path
        spec = {"keywords": list(verdict.keywords or ())}
        spec_id = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        target = (
            self.state_dir / "derived" / item.sha256[:2] / f"{item.sha256}-{spec_id}{item.object_path.suffix}"
        )
        with self._copy_lock:
            if target.exists():
                return target  # two platforms with the same needs share one copy
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp{item.object_path.suffix}")
            shutil.copyfile(item.object_path, tmp)
            try:
                keywords = list(verdict.keywords or ())
                self.exiftool.write(tmp, {"XMP-dc:Subject": keywords, "IPTC:Keywords": keywords})
                os.replace(tmp, target)
            finally:
                if tmp.exists():
                    tmp.unlink()
        return target

    def release_objects(self, sha256s: Iterable[str]) -> None:
        """Delete private copies no job needs any more (all uploaded or rejected)."""
        for sha256 in set(sha256s):
            jobs = self.ledger.jobs(sha256=sha256)
            if not jobs or any(job.state not in (states.UPLOADED, states.REJECTED) for job in jobs):
                continue
            for job in jobs:
                if job.upload_path and Path(job.upload_path).name.startswith(sha256 + "-"):
                    Path(job.upload_path).unlink(missing_ok=True)
            asset = self.ledger.asset(sha256)
            if asset and asset.object_path:
                Path(asset.object_path).unlink(missing_ok=True)


class PlatformUploader:
    """Sends one platform's pending jobs in batches, one connection per batch."""

    def __init__(
        self,
        pipeline: Pipeline,
        name: str,
        platform: PlatformConfig,
        retry: RetryPolicy,
        stop: threading.Event | None = None,
        on_outcome: Callable[[Job], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.ledger = pipeline.ledger
        self.name = name
        self.platform = platform
        self.retry = retry
        self.stop = stop or threading.Event()
        self.on_outcome = on_outcome
        #: Consecutive failures to connect; reset by a successful login.
        self.connect_failures = 0

    # ------------------------------------------------------------------ public

    def recover(self) -> None:
        """At start: give an unreachable server a fresh try; requeue jobs a crash left ``uploading``.

        Their remote name is kept. The next batch checks the server first: a file already there at full size is marked
        uploaded without sending it again; otherwise it is re-sent to the same name.
        """
        self.ledger.resume(self.name, kinds=[UNREACHABLE])
        for job in self.ledger.interrupted_uploads(self.name):
            logger.info(
                "{} → {}: interrupted upload of {}, will check and resume",
                job.path,
                self.name,
                job.remote_name,
            )
            self.ledger.set_state(
                job.id, states.PENDING, "interrupted; will check the server first", next_attempt_at=0
            )

    def run_batch(self, jobs: list[Job]) -> None:
        """Send ``jobs`` over one connection. Every job leaves in a recorded state."""
        if not jobs:
            return
        batch_id = self.ledger.open_batch(self.name, len(jobs))
        uploaded = failed = 0
        transport: Transport | None = None
        try:
            try:
                transport = open_transport(transport_settings(self.name, self.platform))
                transport.connect()
                transport.mkdirs()
                self.connect_failures = 0
            except TransportError as exc:
                self._connection_failed(jobs, exc)
                return
            except ConfigError as exc:  # e.g. the password's environment variable went away
                self._pause(f"configuration problem: {exc}", until=None, kind="config")
                return
            logger.info("{}: batch of {} file(s)", self.name, len(jobs))
            for job in jobs:
                if self.stop.is_set():
                    break
                outcome = self._send(transport, job, batch_id)
                if outcome == "uploaded":
                    uploaded += 1
                elif outcome == "failed":
                    failed += 1
                elif outcome == "stop-batch":
                    break
        finally:
            if transport is not None:
                transport.close()
            self.ledger.close_batch(batch_id, uploaded, failed)
            self.pipeline.release_objects(job.sha256 for job in jobs)

    # ------------------------------------------------------------------ one file

    def _send(self, transport: Transport, job: Job, batch_id: int) -> str:
        assert job.remote_name and job.upload_path
        local = Path(job.upload_path)
        if job.attempts > 0:
            # An earlier attempt (or a crash) may have delivered it in full before we could record
            # it: look before sending again, so it is never sent twice.
            try:
                remote_size = transport.size(job.remote_name)
            except TransportError:
                remote_size = None
            if remote_size is not None and remote_size == job.upload_size:
                self.ledger.mark_uploaded(job.id, verified=True)
                logger.info(
                    "{} → {}: already on the server at full size (finished before a restart)",
                    job.path,
                    self.name,
                )
                self._report(job.id)
                return "uploaded"
        if not local.is_file():
            self.ledger.set_state(
                job.id, states.FAILED, f"the prepared copy {local} is missing; run `stockbridge retry`"
            )
            self._report(job.id)
            return "failed"
        job = self.ledger.begin_upload(job.id, batch_id)  # intent is durable before the first byte
        started = time.monotonic()

        def progress(_sent: int) -> None:
            if self.stop.is_set():
                raise Stopped()

        try:
            result = transport.put(local, job.remote_name or "", progress=progress)
        except RemoteRejectedError as exc:
            self.ledger.set_state(job.id, states.FAILED, f"the server refused this file: {exc.message}")
            logger.error("{} → {}: refused by the server: {}", Path(job.path).name, self.name, exc.message)
            self._report(job.id)
            return "failed"
        except (AuthError, TrustError, QuotaError) as exc:
            reason = self._pause_for(exc)
            self.ledger.set_state(job.id, states.PENDING, f"waiting: {self.name} is paused ({reason})")
            return "stop-batch"
        except (TransportError, OSError) as exc:
            if self.stop.is_set():
                self.ledger.set_state(job.id, states.PENDING, "interrupted by shutdown", next_attempt_at=0)
                logger.info("{} → {}: abandoned by shutdown, will resume", Path(job.path).name, self.name)
                return "stop-batch"
            self._retry_later(job, exc)
            return "stop-batch"  # the connection is suspect: reconnect for the next file
        except Stopped:
            self.ledger.set_state(job.id, states.PENDING, "interrupted by shutdown", next_attempt_at=0)
            logger.info("{} → {}: abandoned by shutdown, will resume", Path(job.path).name, self.name)
            return "stop-batch"
        self.ledger.mark_uploaded(job.id, verified=result.verified)
        seconds = time.monotonic() - started
        note = "" if result.verified else ", moved away by the server at once (not verifiable)"
        logger.info(
            "uploaded {} → {} as {} ({:.1f} MB, {:.1f} s{})",
            Path(job.path).name,
            self.name,
            result.remote_name,
            result.size / 1_000_000,
            seconds,
            note,
        )
        self._report(job.id)
        return "uploaded"

    # ------------------------------------------------------------------ failures

    def _retry_later(self, job: Job, exc: Exception) -> None:
        message = exc.message if isinstance(exc, StockbridgeError) else str(exc)
        if job.attempts >= self.retry.max_attempts:
            reason = f"gave up after {job.attempts} attempts: {message}"
            self.ledger.set_state(job.id, states.FAILED, reason)
            logger.error("{} → {}: {}", Path(job.path).name, self.name, reason)
            self._report(job.id)
            return
        delay = self.retry.delay(job.attempts)
        reason = f"attempt {job.attempts} failed ({message}); retrying in {delay:.0f} s"
        self.ledger.set_state(job.id, states.PENDING, reason, next_attempt_at=time.time() + delay)
        logger.warning("{} → {}: {}", Path(job.path).name, self.name, reason)

    def _pause_for(self, exc: AuthError | TrustError | QuotaError) -> str:
        """Pause the platform for a problem no retry of a single file can solve. Returns the reason."""
        if isinstance(exc, AuthError):
            # One attempt only: agencies lock accounts after repeated failed logins.
            reason, until, kind = f"login refused: {exc.message}", None, "auth"
        elif isinstance(exc, TrustError):
            reason, until, kind = f"server identity not trusted: {exc}", None, "trust"
        else:
            reason, until, kind = (
                f"server full or quota used up: {exc.message}",
                time.time() + QUOTA_PAUSE_SECONDS,
                "quota",
            )
        self._pause(reason, until, kind)
        return reason

    def _connection_failed(self, jobs: list[Job], exc: TransportError) -> None:
        if isinstance(exc, (AuthError, TrustError, QuotaError)):
            self._pause_for(exc)
            return
        # Could not reach the server. That says nothing about the files, so it costs them no
        # attempt: the platform waits (with growing, jittered delays) and the jobs stay pending.
        self.connect_failures += 1
        delay = self.retry.delay(self.connect_failures)
        reason = f"cannot reach the server ({exc.message})"
        for job in jobs:
            self.ledger.set_state(job.id, states.PENDING, f"waiting: {reason}")
        self._pause(reason, until=time.time() + delay, kind=UNREACHABLE)

    def _pause(self, reason: str, until: float | None, kind: str) -> None:
        self.ledger.pause(self.name, reason, until, kind)
        if until is None:
            logger.error(
                "{}: paused, {}. Fix it, then run `stockbridge retry --platform {}`",
                self.name,
                reason,
                self.name,
            )
        elif kind == UNREACHABLE:
            logger.warning("{}: {}; trying again in {:.0f} s", self.name, reason, until - time.time())
        else:
            logger.error(
                "{}: paused until {}, {}", self.name, time.strftime("%H:%M", time.localtime(until)), reason
            )

    def _report(self, job_id: int) -> None:
        if self.on_outcome is not None:
            self.on_outcome(self.ledger.job(job_id))


# ---------------------------------------------------------------------- once


def drain(uploader: PlatformUploader, deadline: float) -> None:
    """Send everything pending for one platform, retrying transient errors, until done or paused."""
    uploader.recover()
    max_files = uploader.platform.batch.max_files
    while not uploader.stop.is_set() and time.monotonic() < deadline:
        pause = uploader.ledger.pause_of(uploader.name)
        if pause is not None:
            # A refused login or a full server is not going to change within this run; a server
            # that could not be reached gets the same number of tries as a file would.
            if pause.until is None or uploader.connect_failures == 0:
                return
            if uploader.connect_failures >= uploader.retry.max_attempts:
                return
            uploader.stop.wait(max(0.05, min(pause.until - time.time(), deadline - time.monotonic())))
            continue
        pending = uploader.ledger.jobs(platform=uploader.name, states=[states.PENDING])
        if not pending:
            return
        now = time.time()
        due = [job for job in pending if job.next_attempt_at <= now][:max_files]
        if not due:
            wait = min(job.next_attempt_at for job in pending) - now
            uploader.stop.wait(max(0.05, min(wait, deadline - time.monotonic())))
            continue
        uploader.run_batch(due)
