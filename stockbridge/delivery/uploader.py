"""Sending: one platform's pending jobs go in batches, each over one connection.

``PlatformUploader.run_batch`` sends a :class:`~stockbridge.delivery.batch.Batch` and leaves every
job in a recorded state. What a failure leads to is not decided here but by
:mod:`stockbridge.delivery.policy`; the uploader carries it out (a reconnect, a backoff, a failed
job, a paused platform). When batches are sent is :mod:`stockbridge.delivery.loop`'s business.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import loguru
from loguru import logger

from stockbridge.config.models import PlatformConfig
from stockbridge.delivery import resuming
from stockbridge.delivery.batch import Batch, GroupOutcome, Outcome, capped_top_up, clip_cap, fit_clips
from stockbridge.delivery.confirming import Unconfirmed, confirm_sent, put_file, record_uploaded
from stockbridge.delivery.connection import transport_settings
from stockbridge.delivery.manifests import ManifestRow, write_manifest, write_release_report
from stockbridge.delivery.pace import Clock
from stockbridge.delivery.policy import (
    Action,
    Decision,
    PauseKind,
    RetryPolicy,
    decide_connect,
    decide_upload,
    message_of,
)
from stockbridge.delivery.prepare import Pipeline
from stockbridge.errors import (
    ConfigError,
    RemoteRejectedError,
    TransportError,
)
from stockbridge.ledger import states
from stockbridge.ledger.store import Job
from stockbridge.service.alerts import (
    BATCH,
    FAILED,
    PAUSED,
    batch_message,
    failed_message,
    paused_message,
)
from stockbridge.transports import TEMP_SUFFIX, Transport, TransportSettings, open_transport


class Stopped(Exception):
    """Raised from a progress callback when the service is asked to stop mid-transfer."""


class _Retry(Exception):
    """An upload failed in a way a new connection may fix (the policy said RETRY_NOW)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(message_of(error))
        self.error = error


#: ``more(remote_dir, room)``: up to ``room`` more jobs for that remote folder, claimed.
TopUp = Callable[[str | None, int], list[Job]]


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
        #: ``on_progress(job, bytes_sent)`` while a file goes (the web page's progress; cheap, no I/O).
        self.on_progress: Callable[[Job, int], None] | None = None
        #: Consecutive failures to connect; reset by a successful login.
        self.connect_failures = 0
        #: Local wall-clock time for the platform's schedule (replaceable in tests).
        self.clock: Clock = datetime.now
        #: The batches being sent now, one per connection (``connections`` > 1 means several).
        self.open_batches: list[Batch] = []
        #: Jobs some connection of this platform has taken: no other one takes them too.
        self._claimed: set[int] = set()
        self._claim_lock = threading.Lock()
        self._recovered = False
        self._recover_lock = threading.Lock()
        #: The kind of pause already notified (once per pause); cleared when a file goes through.
        self._pause_told: PauseKind | None = None

    # ------------------------------------------------------------------ public

    def claim(self, jobs: Iterable[Job], *, share: bool = True) -> list[Job]:
        """Take ``jobs`` for one connection; those another connection has taken are left out.

        ``share``: with ``connections`` > 1, take only this connection's share of them (the
        rest is left for the others), at least one.
        """
        with self._claim_lock:
            free = [job for job in jobs if job.id not in self._claimed]
            if share and self.platform.connections > 1 and free:
                free = free[: max(1, -(-len(free) // self.platform.connections))]
            self._claimed.update(job.id for job in free)
        return free

    def unclaim(self, jobs: Iterable[Job]) -> None:
        with self._claim_lock:
            self._claimed.difference_update(job.id for job in jobs)

    def due(self, limit: int, now: float | None = None) -> list[Job]:
        """Pending jobs whose time has come, not taken by another connection, oldest first."""
        now = time.time() if now is None else now
        with self._claim_lock:
            claimed = set(self._claimed)
        jobs = self.ledger.due_jobs(self.name, now, limit + len(claimed))
        return [job for job in jobs if job.id not in claimed][:limit]

    def fit_batch(self, jobs: list[Job]) -> list[Job]:
        """``jobs`` without the clips over ``rules.video.max_clips_per_batch`` (the next batch's)."""
        return fit_clips(jobs, clip_cap(self.platform))

    def joining(self, remote_dir: str | None, limit: int) -> list[Job]:
        """Due jobs that may join a batch open on ``remote_dir``. A file whose releases go to a
        folder of their own waits for a batch of its own (releases go first)."""
        folder_releases = self.platform.rules.releases.delivery == "folder"
        return [
            job
            for job in self.due(limit * 4 + 8)
            if job.remote_dir == remote_dir and not (folder_releases and (job.meta or {}).get("releases"))
        ][:limit]

    def recover_once(self) -> None:
        """``recover`` for the first of this platform's connections; the others skip it."""
        with self._recover_lock:
            if self._recovered:
                return
            self._recovered = True
            self.recover()

    def recover(self) -> None:
        """At start: give an unreachable server a fresh try; settle uploads a crash cut off.

        A job a crash left ``uploading`` keeps its remote name. Before anything else the server
        is asked about it: a file already there at full size is marked uploaded and never sent
        again; a short file under the final name (direct upload, the default for FTP agencies) or
        a temporary name is deleted at once, so an agency robot cannot take half a photo while the
        job waits for its turn (a schedule window, a paused platform). Then it goes again, to the
        same name.
        """
        self.ledger.resume(self.name, kinds=[PauseKind.UNREACHABLE])
        interrupted = self.ledger.interrupted_uploads(self.name)
        for job in interrupted:
            self._log(job, states.UPLOADING).info(
                "{} → {}: interrupted upload of {}, will check and resume",
                job.path,
                self.name,
                job.remote_name,
            )
        if interrupted and self.ledger.pause_of(self.name) is None:
            self._tidy_interrupted(interrupted)
        for job in self.ledger.interrupted_uploads(self.name):
            self.ledger.set_state(
                job.id, states.PENDING, "interrupted; will check the server first", next_attempt_at=0
            )

    def _tidy_interrupted(self, jobs: list[Job]) -> None:
        groups: dict[str | None, list[Job]] = {}
        for job in jobs:
            groups.setdefault(job.remote_dir, []).append(job)
        for remote_dir, group in groups.items():
            settings = transport_settings(self.name, self.platform)
            if remote_dir is not None:
                settings = replace(settings, remote_dir=remote_dir)
            try:
                transport = self._connect(settings)
            except TransportError as exc:
                decision = decide_connect(exc, failures=self.connect_failures + 1, retry=self.retry)
                if decision.action is Action.PAUSE_PLATFORM:
                    self._pause(decision)
                    return
                self._log().info(
                    "{}: cannot look at interrupted uploads now ({}); the next batch will", self.name, exc
                )
                return
            except ConfigError as exc:
                self._log().info(
                    "{}: cannot look at interrupted uploads now ({}); the next batch will", self.name, exc
                )
                return
            try:
                for job in group:
                    self._tidy_one(transport, job, settings.atomic_rename)
            except TransportError as exc:
                self._log().info(
                    "{}: cannot look at interrupted uploads now ({}); the next batch will", self.name, exc
                )
            finally:
                transport.close()

    def _tidy_one(self, transport: Transport, job: Job, atomic: bool) -> None:
        if job.remote_name is None:
            return
        log, keep = self._log(job, states.PENDING), resuming.keep_at_start  # a partial to resume?
        if atomic and not keep(transport, job, job.remote_name + TEMP_SUFFIX, log):
            transport.delete(job.remote_name + TEMP_SUFFIX)
        size = transport.size(job.remote_name)
        if size is not None and size == job.upload_size:
            self.ledger.mark_uploaded(job.id, verified=True, verified_by="size")
            self._log(job, states.UPLOADED).info(
                "{} → {}: already on the server at full size (finished before a restart)", job.path, self.name
            )
            self._report(job.id, None)
        elif size is not None and not atomic and not keep(transport, job, job.remote_name, log, size):
            transport.delete(job.remote_name)
            log.warning(
                "{} → {}: removed the partial {} ({} of {} bytes) an interrupted upload left; it goes again",
                Path(job.path).name,
                self.name,
                job.remote_name,
                size,
                job.upload_size,
            )

    def run_batch(self, jobs: list[Job], more: TopUp | None = None) -> Batch | None:
        """Send ``jobs``, one connection per remote folder. Every job leaves in a recorded state.

        Releases go before the photos that need them; files for another remote folder than the
        platform's (releases, editorial) go first, so the platform's folder — where a CSV manifest
        is uploaded too — comes last. ``more(remote_dir, room)``: jobs that became due while the
        batch was being sent join it on the open connection, up to ``max_files`` in all (the caller
        claims them, and may wait a little for them). Returns the batch, with its answers.
        """
        if not jobs:
            return None
        batch = Batch(self.ledger.open_batch(self.name, len(jobs)), self.name, list(jobs))
        if more is not None and clip_cap(self.platform) is not None:
            more = capped_top_up(more, batch, clip_cap(self.platform), self.unclaim)
        groups: dict[str | None, list[Job]] = {}
        for job in sorted(jobs, key=lambda job: (job.kind != "release", job.id)):
            groups.setdefault(job.remote_dir, []).append(job)
        if more is not None:
            groups.setdefault(None, [])
        order = sorted(groups, key=lambda remote_dir: remote_dir is None)
        self.open_batches.append(batch)
        try:
            self._log(batch=batch.id).info("{}: batch of {} file(s)", self.name, len(jobs))
            for remote_dir in order:
                outcome = self._send_group(
                    batch,
                    groups[remote_dir],
                    remote_dir,
                    last=remote_dir is None,
                    more=more if remote_dir is None else None,
                    room=self.platform.batch.max_files - len(jobs) + len(groups[remote_dir]),
                )
                if outcome is GroupOutcome.STOPPED or self.stop.is_set():
                    break
            else:
                if self.platform.csv is not None and not batch.manifest_done:
                    # No file of the batch went to the platform's own folder (all editorial, say):
                    # the manifest goes there over a connection of its own. (A batch that stopped
                    # on a refused login or a lost server does not try yet another login for it.)
                    self._write_manifest(None, batch)
        finally:
            self.open_batches.remove(batch)
            self.unclaim(batch.sent)
            # Counted from the answers the batch gave: a file that failed for good after its last
            # retry ends the group early but is still a failure.
            self.ledger.close_batch(batch.id, len(batch.uploaded), batch.failures, files=len(batch.sent))
            self._log(batch=batch.id).info(  # history's numbers: files that joined it included
                "{}: batch {} closed: {} file(s), {} uploaded, {} failed",
                self.name,
                batch.id,
                len(batch.sent),
                len(batch.uploaded),
                batch.failures,
            )
            if self.platform.rules.releases.delivery == "manual":
                path, count = write_release_report(self.ledger, self.pipeline.state_dir, self.name, batch)
                if path is not None:
                    self._log(batch=batch.id).warning(
                        "{}: {} file(s) need a release attached by hand; see {}", self.name, count, path
                    )
            self.pipeline.release_objects(job.sha256 for job in batch.sent)
            self._notify_batch(batch)
        return batch

    def _notify_batch(self, batch: Batch) -> None:
        notifier = self.pipeline.notifier
        failures = [job for job in batch.answers if job.state == states.FAILED]
        if batch.uploaded or failures:
            notifier.send(BATCH, *batch_message(self.name, len(batch.uploaded), len(failures)))
        if failures:
            details = [(Path(job.path).name, job.reason or "failed") for job in failures]
            notifier.send(FAILED, *failed_message(self.name, details))

    def _send_group(
        self,
        batch: Batch,
        jobs: list[Job],
        remote_dir: str | None,
        last: bool,
        more: TopUp | None = None,
        room: int = 0,
    ) -> GroupOutcome:
        """Send one remote folder's jobs over one connection."""
        settings = transport_settings(self.name, self.platform)
        if remote_dir is not None:
            settings = replace(settings, remote_dir=remote_dir)
        transport: Transport | None = None
        waiting = Unconfirmed()
        queue = list(jobs)
        if not queue and more is not None:
            queue = more(remote_dir, room)
            batch.sent.extend(queue)
        if not queue:
            return GroupOutcome.DONE
        try:
            try:
                transport = self._connect(settings)
            except TransportError as exc:
                self._connection_failed(queue, exc)
                return GroupOutcome.STOPPED
            except ConfigError as exc:  # e.g. the password's environment variable went away
                self._pause(
                    Decision(Action.PAUSE_PLATFORM, f"configuration problem: {exc}", pause=PauseKind.CONFIG)
                )
                return GroupOutcome.STOPPED
            taken = 0
            while queue:
                job = queue.pop(0)
                taken += 1
                outcome, transport = self._send_reconnecting(batch, transport, settings, job, waiting)
                if outcome is Outcome.STOP or transport is None:
                    return GroupOutcome.STOPPED
                if waiting.due():  # no wait for SFTP files still in flight (transports/sftp_pipeline.py)
                    confirm_sent(self, batch, transport, waiting, answered_only=True)
                if not queue and more is not None and taken < room and not self.stop.is_set():
                    # Files prepared while this batch was going join it on the open connection.
                    queue = more(remote_dir, room - taken)
                    batch.sent.extend(queue)
            confirm_sent(self, batch, transport, waiting)  # before the manifest lists them
            if last and self.platform.csv is not None:
                self._write_manifest(transport, batch)
                batch.manifest_done = True
            return GroupOutcome.DONE
        finally:
            confirm_sent(self, batch, transport, waiting)
            if transport is not None:
                transport.close()

    def _send_reconnecting(
        self, batch: Batch, transport: Transport, settings: TransportSettings, job: Job, waiting: Unconfirmed
    ) -> tuple[Outcome, Transport | None]:
        """Send one file; when the policy says so, reconnect and send it again at once
        (decisions.md F-6). Returns the outcome and the connection to go on with (None: there is
        none, the batch stops)."""
        tries = 0
        while True:
            if (
                self.stop.is_set() or self.ledger.pause_of(self.name) is not None
            ):  # e.g. `pause`: before the next file
                return Outcome.STOP, transport
            try:
                return self._send(batch, transport, job, tries, waiting), transport
            except _Retry as retry:
                tries += 1
                transport.close()
                wait = self.retry.reconnect_delay(tries)
                self._log(job, batch=batch.id).warning(
                    "{} → {}: {}; reconnecting in {:.1f} s to send it again",
                    Path(job.path).name,
                    self.name,
                    message_of(retry.error),
                    wait,
                )
                if self.stop.wait(wait):
                    self.ledger.set_state(
                        job.id, states.PENDING, "interrupted by shutdown", next_attempt_at=0
                    )
                    return Outcome.STOP, None
                try:
                    transport = self._connect(settings)
                except TransportError as exc:
                    self._connection_failed([job], exc)
                    return Outcome.STOP, None

    def _connect(self, settings: TransportSettings) -> Transport:
        transport = open_transport(settings)
        try:
            transport.connect()
            transport.mkdirs()
        except BaseException:
            transport.close()
            raise
        self.connect_failures = 0
        return transport

    def _write_manifest(self, transport: Transport | None, batch: Batch) -> None:
        """The agency's CSV for this batch (remote names, metadata as sent), uploaded if asked, over
        ``transport`` (open in the platform's folder) or, with None, a connection of its own."""
        csv_config = self.platform.csv
        assert csv_config is not None
        batch_id = batch.id
        rows = []
        for job in batch.uploaded:
            fresh = self.ledger.job(job.id)
            if fresh.kind != "image" or fresh.state != states.UPLOADED or fresh.remote_name is None:
                continue
            rows.append(ManifestRow.from_meta(fresh.remote_name, fresh.meta or {}))
        if not rows:
            return
        name = csv_config.path.format(platform=self.name, batch=batch_id, date=time.strftime("%Y-%m-%d"))
        path = write_manifest(self.pipeline.state_dir / "csv" / Path(name).name, csv_config, rows)
        self._log(batch=batch_id).info("{}: wrote {} ({} rows)", self.name, path, len(rows))
        if csv_config.upload:
            own = transport is None
            try:
                if transport is None:
                    transport = self._connect(transport_settings(self.name, self.platform))
                transport.put(path, path.name)
                self._log(batch=batch_id).info("{}: uploaded the manifest {}", self.name, path.name)
            except (TransportError, ConfigError) as exc:
                self._log(batch=batch_id).error(
                    "{}: could not upload the manifest {}: {}", self.name, path.name, exc
                )
            finally:
                if own and transport is not None:
                    transport.close()

    # ------------------------------------------------------------------ one file

    def _send(
        self, batch: Batch, transport: Transport, job: Job, tries: int, waiting: Unconfirmed | None = None
    ) -> Outcome:
        """Send one file and record its answer (or give its check to ``waiting``); may raise _Retry."""
        if not job.remote_name or not job.upload_path:
            # Nothing was prepared for it (its copy failed): `retry` prepares it again.
            self.ledger.set_state(job.id, states.FAILED, "no prepared copy to send; run `stockbridge retry`")
            self._report(job.id, batch)
            return Outcome.FAILED
        local = Path(job.upload_path)
        job = self.ledger.job(job.id)
        if job.attempts > 0:
            # An earlier attempt (or a crash) may have delivered it in full before we could record
            # it: look before sending again, so it is never sent twice.
            try:
                remote_size = transport.size(job.remote_name or "")
            except TransportError:
                remote_size = None
            if remote_size is not None and remote_size == job.upload_size:
                self.ledger.mark_uploaded(job.id, verified=True, verified_by="size")
                self._log(job, states.UPLOADED, batch.id).info(
                    "{} → {}: already on the server at full size (finished before a restart)",
                    job.path,
                    self.name,
                )
                self._report(job.id, batch)
                return Outcome.UPLOADED
        if not local.is_file():
            self.ledger.set_state(
                job.id, states.FAILED, f"the prepared copy {local} is missing; run `stockbridge retry`"
            )
            self._report(job.id, batch)
            return Outcome.FAILED
        atomic, log = transport.settings.atomic_rename, self._log(job, states.UPLOADING, batch.id)
        writing, offer = resuming.plan(self.ledger, job, local, atomic, self.name, log)
        began = self.pipeline.begin_upload(job.id, batch.id, writing)  # durable before the first byte
        if began is None:  # a newer export of the same photo superseded it (delivery/reexport.py)
            self._report(job.id, batch)
            return Outcome.SUPERSEDED
        job = began
        started = time.monotonic()

        def progress(sent: int) -> None:
            if self.stop.is_set():
                raise Stopped()
            if self.on_progress is not None:
                self.on_progress(job, sent)

        try:  # a resume offer only for large files; FTP/SFTP check later (delivery/confirming.py)
            result = put_file(transport, local, job.remote_name or "", progress, offer, waiting)
        except Stopped:
            return self._abandoned(job)
        except (TransportError, OSError) as exc:
            return self._failed_upload(batch, job, exc, tries)
        if result.pending and waiting is not None:
            waiting.add(self, batch, job, result, time.monotonic() - started)
        else:
            record_uploaded(self, batch, job, result, time.monotonic() - started)
        return Outcome.UPLOADED

    def _abandoned(self, job: Job) -> Outcome:
        self.ledger.set_state(job.id, states.PENDING, "interrupted by shutdown", next_attempt_at=0)
        self._log(job, states.PENDING).info(
            "{} → {}: abandoned by shutdown, will resume", Path(job.path).name, self.name
        )
        return Outcome.STOP

    def _failed_upload(self, batch: Batch, job: Job, error: BaseException, tries: int) -> Outcome:
        """Carry out what the policy says about a failed upload."""
        decision = decide_upload(error, attempts=job.attempts, tries=tries, retry=self.retry)
        name = Path(job.path).name
        stopping = self.stop.is_set() and decision.action is not Action.PAUSE_PLATFORM
        if stopping and not isinstance(error, RemoteRejectedError):
            return self._abandoned(job)  # cut off by the shutdown itself, most likely
        if decision.action is Action.RETRY_NOW:
            raise _Retry(error)
        if decision.action is Action.FAIL_JOB:
            self.ledger.set_state(job.id, states.FAILED, decision.reason)
            self._log(job, states.FAILED, batch.id).error("{} → {}: {}", name, self.name, decision.reason)
            self._report(job.id, batch)
            # A refused file is this file's answer; the batch goes on. A file that kept failing
            # after its last retry leaves a suspect connection: the batch stops.
            return Outcome.FAILED if isinstance(error, RemoteRejectedError) else Outcome.STOP
        if decision.action is Action.PAUSE_PLATFORM:
            reason = self._pause(decision)
            self.ledger.set_state(job.id, states.PENDING, f"waiting: {self.name} is paused ({reason})")
            return Outcome.STOP
        # RETRY_LATER
        self.ledger.set_state(
            job.id, states.PENDING, decision.reason, next_attempt_at=decision.next_attempt_at
        )
        self._log(job, states.PENDING, batch.id).warning("{} → {}: {}", name, self.name, decision.reason)
        return Outcome.STOP

    # ------------------------------------------------------------------ pauses

    def _connection_failed(self, jobs: list[Job], exc: TransportError) -> None:
        """Carry out what the policy says about a failed connect: a pause, or a wait for an
        unreachable server that costs the files nothing (they stay pending, attempts untouched)."""
        decision = decide_connect(exc, failures=self.connect_failures + 1, retry=self.retry)
        if decision.action is Action.WAIT_UNREACHABLE:
            self.connect_failures += 1
            for job in jobs:
                self.ledger.set_state(job.id, states.PENDING, f"waiting: {decision.reason}")
            self._pause(decision)
            return
        reason = self._pause(decision)
        for job in jobs:
            self.ledger.set_state(job.id, states.PENDING, f"waiting: {self.name} is paused ({reason})")

    def _pause(self, decision: Decision) -> str:
        """Pause the platform as ``decision`` says. Returns the reason."""
        kind = decision.pause or PauseKind.SETUP
        reason, until = decision.reason, decision.until
        self.ledger.pause(self.name, reason, until, str(kind))
        if self._pause_told != kind:  # once per pause, not at every retry of an unreachable server
            self._pause_told = kind
            self.pipeline.notifier.send(PAUSED, *paused_message(self.name, str(kind), until))
        log = self._log(state="paused")
        if until is None:
            log.error(
                "{}: paused, {}. Fix it, then run `stockbridge retry --platform {}`",
                self.name,
                reason.rstrip(". "),
                self.name,
            )
        elif kind is PauseKind.UNREACHABLE:
            log.warning("{}: {}; trying again in {:.0f} s", self.name, reason, until - time.time())
        else:
            log.error(
                "{}: paused until {}, {}", self.name, time.strftime("%H:%M", time.localtime(until)), reason
            )
        return reason

    def _log(
        self, job: Job | None = None, state: str | None = None, batch: int | None = None
    ) -> loguru.Logger:
        """The logger with the fields ``--log-json`` carries bound: file, platform, state, batch."""
        return logger.bind(file=job and Path(job.path).name, platform=self.name, state=state, batch=batch)

    def _report(self, job_id: int, batch: Batch | None) -> None:
        job = self.ledger.job(job_id)
        if batch is not None:
            batch.answer(job)
        if job.state == states.UPLOADED:
            self._pause_told = None  # the platform works again: a new pause is news
        if self.on_outcome is not None:
            self.on_outcome(job)
