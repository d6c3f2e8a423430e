"""Driving the pipeline: ``once`` (take what is there, send it, exit) and ``run`` (the service).

``run``: the watcher calls back with settled paths; one ingest thread turns them into jobs (one
ExifTool process serves it); one uploader thread per platform closes a batch when it holds
``max_files`` or its oldest file has waited ``max_wait_seconds``. SIGTERM/SIGINT set one stop event:
the watcher stops, an upload in flight is abandoned at its next block (it resumes to the same remote
name on the next start), and ``run`` returns 0.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

from stockbridge import ledger as states
from stockbridge.config import Config
from stockbridge.ledger import Job, Ledger
from stockbridge.metadata import ExifTool
from stockbridge.notices import NoticeBoard
from stockbridge.pipeline import ONCE_RETRY, SERVICE_RETRY, Pipeline, PlatformUploader, drain
from stockbridge.schedule import SCHEDULED, Slot, admit, scheduled_jobs, when
from stockbridge.sdnotify import Notifier
from stockbridge.watcher import Watcher, collect_settled, scan

if TYPE_CHECKING:
    from stockbridge.progress import OnceProgress

T = TypeVar("T")

#: ``once`` gives up on files still being written after this long; the next run takes them.
ONCE_MAX_SETTLE_WAIT = 120.0
#: ``once`` stops retrying after this long; what is left stays pending for the next run.
ONCE_DEADLINE_SECONDS = 3600.0
#: Watchdog health (``run`` under systemd): the ingest loop wakes every 0.5 s, so not waking for
#: this long means it hangs (one file's hash, copy and ExifTool read are each bounded far below).
INGEST_STALL_SECONDS = 300.0
#: An upload loop ticks every <= 5 s, and after every file of a batch. Transports fail a transfer
#: that makes no progress for ``timeout_seconds``, so only a hang outside them lasts this long;
#: generous, because one big file on a slow uplink legitimately takes many minutes.
UPLOAD_STALL_SECONDS = 3600.0
#: How often STATUS= is refreshed for ``systemctl status`` (also at each batch event).
STATUS_SECONDS = 5.0


@dataclass
class OnceReport:
    seen: list[Path] = field(default_factory=list)
    still_changing: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # state → jobs, over the files of this run

    @property
    def failed(self) -> bool:
        # "scheduled" (pending, waiting for the platform's window or daily cap) is not a failure:
        # `once` from cron outside a window has done all it may, and exits 0.
        return bool(self.counts.get(states.FAILED) or self.counts.get(states.PENDING))


@contextmanager
def open_pipeline(config: Config) -> Iterator[Pipeline]:
    config.state.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ledger = Ledger(config.ledger_path)
    exiftool = ExifTool(cwd=config.state.dir)
    try:
        exiftool.start()
        pipeline = Pipeline(config, ledger, exiftool)
        try:
            yield pipeline
        finally:
            pipeline.notifier.close()  # queued messages get a bounded time to go
    finally:
        exiftool.close()
        ledger.close()


def run_once(
    config: Config, stop: threading.Event | None = None, progress: OnceProgress | None = None
) -> OnceReport:
    """``progress``: optional hooks for bars on a terminal (``stockbridge once``); None: none."""
    stop = stop or threading.Event()
    report = OnceReport()
    with open_pipeline(config) as pipeline:
        carried = {job.sha256 for job in pipeline.ledger.jobs(states=[states.PENDING, states.UPLOADING])}
        if progress is not None:
            progress.settling()
        stable, changing = collect_settled(
            config.watch.folder,
            recursive=config.watch.recursive,
            settle_seconds=config.watch.settle_seconds,
            ignore=config.watch.ignore,
            on_skipped=NoticeBoard(pipeline.ledger, config.watch).skipped,  # shown by `status`
            # A file still changing after max_settle_seconds is left for the next run, like the service.
            max_wait=min(
                config.watch.max_settle_seconds,
                max(ONCE_MAX_SETTLE_WAIT, config.watch.settle_seconds * 3),
            ),
        )
        report.seen, report.still_changing = stable, changing
        if progress is not None:
            progress.settled(len(stable), len(changing))
        for path in changing:
            logger.warning("{}: still being written, left for the next run", path.name)
            NoticeBoard(pipeline.ledger, config.watch).still_changing(path)
        touched = set(carried)
        for path in stable:
            if stop.is_set():
                break
            item = _safely(pipeline.accept_file, path)
            if progress is not None:
                progress.ingested()
            if item is not None:
                touched.add(item.sha256)
            else:
                sha = _known_sha(pipeline, path)
                if sha:
                    touched.add(sha)
        deadline = time.monotonic() + ONCE_DEADLINE_SECONDS
        if progress is not None:
            for name in pipeline.platforms:
                progress.uploading(name, len(pipeline.ledger.jobs(platform=name, states=[states.PENDING])))
        on_outcome = progress.outcome if progress is not None else None
        threads = [
            threading.Thread(
                target=_safely,
                args=(
                    drain,
                    PlatformUploader(pipeline, name, platform, ONCE_RETRY, stop, on_outcome=on_outcome),
                    deadline,
                ),
                name=f"upload-{name}",
            )
            for name, platform in pipeline.platforms.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name in pipeline.platforms:
            pause = pipeline.ledger.pause_of(name)
            if pause is None:
                continue
            waiting = len(pipeline.ledger.jobs(platform=name, states=[states.PENDING]))
            if pause.until is None:
                logger.error(
                    "{} is paused ({}); run `stockbridge retry --platform {}`", name, pause.reason, name
                )
            else:
                logger.error("{}: {} file(s) left pending for the next run: {}", name, waiting, pause.reason)
        scheduled: dict[int, Slot] = {}
        now = datetime.now()
        for name, platform in pipeline.platforms.items():
            later = scheduled_jobs(pipeline.ledger, name, platform.schedule, now)
            if later:
                first = min(later.values(), key=lambda slot: slot.at)
                logger.info(
                    "{}: {} file(s) scheduled, the first goes {} ({})",
                    name,
                    len(later),
                    when(first.at, now),
                    first.reason,
                )
            scheduled.update(later)
        for job in pipeline.ledger.jobs():
            if job.sha256 in touched and job.platform in pipeline.platforms:
                state = SCHEDULED if job.id in scheduled else job.state
                report.counts[state] = report.counts.get(state, 0) + 1
    return report


def _known_sha(pipeline: Pipeline, path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return pipeline.ledger.known_source(str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _safely(function: Callable[..., T], *args: Any) -> T | None:
    """Run one unit of work; an unexpected error is logged with its traceback, never fatal."""
    try:
        return function(*args)
    except Exception as exc:
        logger.opt(exception=exc).error(
            "unexpected error in {}: {}", getattr(function, "__name__", function), exc
        )
        return None


# ---------------------------------------------------------------------- run


class Service:
    """The long-running service. ``stop()`` (or SIGTERM) ends it cleanly."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self._ready: queue.Queue[Path] = queue.Queue()
        self._wake: dict[str, threading.Event] = {}
        self.notifier = Notifier()
        #: Last time (monotonic) each loop showed life, for the systemd watchdog.
        self._ingest_tick = time.monotonic()
        self._upload_ticks: dict[str, float] = {}
        #: platform → (files finished, files in the batch) while a batch is being sent.
        self._batches: dict[str, tuple[int, int]] = {}
        self._status_due = threading.Event()
        #: Bars for the first scan's backlog, on a terminal only (never under systemd or in a pipe).
        self._progress: OnceProgress | None = None
        self._backlog_left = 0

    def stop(self) -> None:
        self.notifier.stopping()
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            logger.info(
                "received {}, stopping (an upload in flight resumes on the next start)",
                signal.Signals(signum).name,
            )
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> None:
        config = self.config
        with open_pipeline(config) as pipeline:
            uploaders = [
                PlatformUploader(
                    pipeline, name, platform, SERVICE_RETRY, self.stop_event, on_outcome=self._on_outcome
                )
                for name, platform in pipeline.platforms.items()
            ]
            threads = [
                threading.Thread(target=self._upload_loop, args=(u,), name=f"upload-{u.name}")
                for u in uploaders
            ]
            for uploader in uploaders:
                self._wake[uploader.name] = threading.Event()
                self._upload_ticks[uploader.name] = time.monotonic()
            watcher = Watcher(
                config.watch.folder,
                on_ready=self._ready.put,
                recursive=config.watch.recursive,
                settle_seconds=config.watch.settle_seconds,
                ignore=config.watch.ignore,
                observer=config.watch.observer,
                poll_interval=config.watch.poll_interval_seconds,
                rescan_seconds=config.watch.rescan_seconds or None,
                max_settle_seconds=config.watch.max_settle_seconds,
                # Links, pipes, unstable files: one WARNING, and a "Not taken" row in `status`.
                on_unstable=NoticeBoard(pipeline.ledger, config.watch).unstable,
                on_skipped=NoticeBoard(pipeline.ledger, config.watch).skipped,
            )
            self._show_backlog(config)
            for thread in threads:
                thread.start()
            watcher.start()
            logger.info(
                "watching {} for {} platform(s): {}",
                config.watch.folder,
                len(uploaders),
                ", ".join(u.name for u in uploaders) or "none",
            )
            self._start_systemd_reports(pipeline)
            try:
                self._ingest_loop(pipeline)
            finally:
                self.notifier.stopping()
                self.stop_event.set()
                watcher.stop()
                for event in self._wake.values():
                    event.set()
                for thread in threads:
                    thread.join(timeout=90.0)  # an upload in flight notices the stop at its next block
                if self._progress is not None:
                    self._progress.__exit__(None, None, None)
        logger.info("stopped")

    def _show_backlog(self, config: Config) -> None:
        """On a terminal, bars for the files already waiting: ingesting them, then each platform."""
        from stockbridge.progress import once_progress

        progress = once_progress()
        if progress is None:
            return
        backlog = len(scan(config.watch.folder, config.watch.recursive, config.watch.ignore))
        if backlog == 0:
            return
        self._progress, self._backlog_left = progress, backlog
        progress.__enter__()
        progress.settled(backlog, 0)

    def _backlog_ingested(self, pipeline: Pipeline) -> None:
        progress = self._progress
        if progress is None or self._backlog_left <= 0:
            return
        progress.ingested()
        self._backlog_left -= 1
        if self._backlog_left == 0:
            for name in pipeline.platforms:
                pending = len(pipeline.ledger.jobs(platform=name, states=[states.PENDING]))
                progress.uploading(name, pending)

    def _ingest_loop(self, pipeline: Pipeline) -> None:
        while not self.stop_event.is_set():
            self._ingest_tick = time.monotonic()
            try:
                path = self._ready.get(timeout=0.5)
            except queue.Empty:
                continue
            item = _safely(pipeline.accept_file, path)
            self._backlog_ingested(pipeline)
            if item is not None:
                for event in self._wake.values():
                    event.set()

    def _upload_loop(self, uploader: PlatformUploader) -> None:
        _safely(uploader.recover)
        wake = self._wake[uploader.name]
        batch = uploader.platform.batch
        while not self.stop_event.is_set():
            self._upload_ticks[uploader.name] = time.monotonic()
            wait = _safely(self._maybe_send, uploader, batch.max_files, batch.max_wait_seconds)
            wake.wait(timeout=min(5.0, wait if isinstance(wait, float) else 5.0))
            wake.clear()

    def _maybe_send(self, uploader: PlatformUploader, max_files: int, max_wait: float) -> float:
        """Send a batch if one is due; return how long to sleep before looking again."""
        pause = uploader.ledger.pause_of(uploader.name)
        if pause is not None:
            return 5.0 if pause.until is None else max(0.1, min(5.0, pause.until - time.time()))
        now = time.time()
        due = uploader.ledger.due_jobs(uploader.name, now, max_files)
        if not due:
            return 5.0
        due, later = admit(uploader.ledger, uploader.name, uploader.platform.schedule, due, uploader.clock())
        if not due:
            return 5.0  # outside every window or over today's cap: look again (cheap) in a while
        oldest = min(job.created_at for job in due)
        retrying = any(job.attempts > 0 for job in due)
        capped = later is not None  # today's cap closes the batch: nothing more may join it
        if len(due) >= max_files or now - oldest >= max_wait or retrying or capped:
            self._batches[uploader.name] = (0, len(due))
            self._status_due.set()
            try:
                uploader.run_batch(due)
            finally:
                self._batches.pop(uploader.name, None)
                self._status_due.set()
            return 0.05
        return max(0.05, min(5.0, oldest + max_wait - now))

    # ------------------------------------------------------------------ systemd (sd_notify)

    def _start_systemd_reports(self, pipeline: Pipeline) -> None:
        """READY=1, then STATUS= lines and WATCHDOG=1 pings. Nothing at all outside systemd."""
        if not self.notifier.enabled:
            return
        self.notifier.ready(_safely(self._status_line, pipeline))
        self.notifier.start_watchdog(self.stop_event, self._healthy)
        threading.Thread(
            target=self._status_loop, args=(pipeline,), name="stockbridge-status", daemon=True
        ).start()

    def _status_loop(self, pipeline: Pipeline) -> None:
        last: str | None = None
        while not self.stop_event.is_set():
            self._status_due.wait(STATUS_SECONDS)
            self._status_due.clear()
            line = _safely(self._status_line, pipeline)
            if line and line != last:
                self.notifier.status(line)
                last = line
            self.stop_event.wait(0.5)  # a burst of batch events costs one query, not one each

    def _status_line(self, pipeline: Pipeline) -> str:
        """E.g. "12 queued, shutterstock uploading 3/20, adobe paused"."""
        queued = len(pipeline.ledger.jobs(states=[states.PENDING, states.UPLOADING]))
        parts = [f"{queued} queued" if queued else "nothing queued"]
        for name, (done, total) in sorted(self._batches.items()):
            parts.append(f"{name} uploading {min(done + 1, total)}/{total}")
        parts += [f"{name} paused" for name in pipeline.platforms if pipeline.ledger.pause_of(name)]
        return ", ".join(parts)

    def _on_outcome(self, job: Job) -> None:
        self._upload_ticks[job.platform] = time.monotonic()
        if self._progress is not None:
            self._progress.outcome(job)
        batch = self._batches.get(job.platform)
        if batch is not None:
            self._batches[job.platform] = (batch[0] + 1, batch[1])
        self._status_due.set()

    def _healthy(self) -> bool:
        """Have the ingest loop and every upload loop shown life recently? (the watchdog's question)"""
        now = time.monotonic()
        stalled = (
            [("ingest", now - self._ingest_tick)] if now - self._ingest_tick > INGEST_STALL_SECONDS else []
        )
        stalled += [
            (f"upload to {name}", now - tick)
            for name, tick in list(self._upload_ticks.items())
            if now - tick > UPLOAD_STALL_SECONDS
        ]
        for loop, seconds in stalled:
            logger.error("the {} loop has not moved for {:.0f} s", loop, seconds)
        return not stalled
