"""``stockbridge run``: the service.

The watcher calls back with settled paths; one ingest thread turns them into jobs (one
ExifTool process serves it); one uploader thread per platform closes a batch when it holds
``max_files`` or its oldest file has waited ``max_wait_seconds``. SIGTERM/SIGINT set one stop event:
the watcher stops, an upload in flight is abandoned at its next block (it resumes to the same remote
name on the next start), and ``run`` returns 0.
"""

from __future__ import annotations

import functools
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

from stockbridge.assets.ingest import Ingested
from stockbridge.config.loading import insecure_config_problem, load_config, watch_folder_problem
from stockbridge.config.models import Config
from stockbridge.delivery.batch import Batch
from stockbridge.delivery.loop import SERVICE, SERVICE_LOOK_SECONDS, look
from stockbridge.delivery.policy import FIXABLE_BY_USER, SERVICE_RETRY
from stockbridge.delivery.prepare import Pipeline, open_pipeline
from stockbridge.delivery.uploader import PlatformUploader
from stockbridge.errors import ConfigError
from stockbridge.intake.notices import NoticeBoard
from stockbridge.intake.scan import scan
from stockbridge.intake.watcher import Watcher
from stockbridge.ledger import states
from stockbridge.ledger.store import Job
from stockbridge.service.safely import safely
from stockbridge.service.sd_notify import SystemdNotifier

if TYPE_CHECKING:
    from stockbridge.cli.progress import OnceProgress
    from stockbridge.web.live import LivePage

T = TypeVar("T")

#: Watchdog health (``run`` under systemd): the ingest loop wakes every 0.5 s, so not waking for
#: this long means it hangs (one file's hash, copy and ExifTool read are each bounded far below).
INGEST_STALL_SECONDS = 300.0
#: An upload loop ticks every <= 5 s, and after every file of a batch. Transports fail a transfer
#: that makes no progress for ``timeout_seconds``, so only a hang outside them lasts this long;
#: generous, because one big file on a slow uplink legitimately takes many minutes.
UPLOAD_STALL_SECONDS = 3600.0
#: How often ``run`` looks for a watch folder that is missing at start (an unplugged drive).
FOLDER_WAIT_SECONDS = 5.0
#: How often STATUS= is refreshed for ``systemctl status`` (also at each batch event).
STATUS_SECONDS = 5.0


# ---------------------------------------------------------------------- run


class Service:
    """The long-running service. ``stop()`` (or SIGTERM) ends it cleanly."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self._ready: queue.Queue[Path] = queue.Queue()
        self._wake: dict[str, list[threading.Event]] = {}
        #: Paths being prepared now, and those that settled again meanwhile (prepared after).
        self._preparing: set[Path] = set()
        self._again: set[Path] = set()
        self._preparing_lock = threading.Lock()
        #: Files handed to the prepare workers and not finished (set in ``run``: 2 per worker).
        self._in_flight = threading.BoundedSemaphore(2)
        self.systemd = SystemdNotifier()
        #: Last time (monotonic) each loop showed life, for the systemd watchdog.
        self._ingest_tick = time.monotonic()
        self._upload_ticks: dict[str, float] = {}
        self._status_due = threading.Event()
        #: Bars for the first scan's backlog, on a terminal only (never under systemd or in a pipe).
        self._progress: OnceProgress | None = None
        self._backlog_left = 0
        #: Set by SIGHUP: re-read the config (rotated passwords, a fixed host key) without a restart.
        self.reload_requested = threading.Event()
        self._uploaders: list[PlatformUploader] = []
        #: ``on_event(name, data)``: news for the web page ("asset": a file taken; "job": an answer).
        self.on_event: Callable[[str, dict[str, Any]], None] | None = None

    def stop(self) -> None:
        self.systemd.stopping()
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
        if hasattr(signal, "SIGHUP"):
            # `systemctl reload` / `kill -HUP`: the ingest loop re-reads the config at its next tick.
            signal.signal(signal.SIGHUP, lambda _signum, _frame: self.reload_requested.set())

    def run(self) -> None:
        config = self.config
        if not self._wait_for_folder():
            logger.info("stopped")
            return
        with open_pipeline(config) as pipeline:
            uploaders = [
                PlatformUploader(
                    pipeline, name, platform, SERVICE_RETRY, self.stop_event, on_outcome=self._on_outcome
                )
                for name, platform in pipeline.platforms.items()
            ]
            self._uploaders = uploaders
            self._in_flight = threading.BoundedSemaphore(pipeline.worker_count * 2)
            # One loop per connection: a platform with `connections = 3` sends three files at once.
            threads = []
            for uploader in uploaders:
                self._wake[uploader.name] = []
                self._upload_ticks[uploader.name] = time.monotonic()
                for index in range(uploader.platform.connections):
                    wake = threading.Event()
                    self._wake[uploader.name].append(wake)
                    threads.append(
                        threading.Thread(
                            target=self._upload_loop,
                            args=(uploader, wake),
                            name=f"upload-{uploader.name}-{index}",
                        )
                    )
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
                on_unstable=NoticeBoard(pipeline.ledger, config.watch, self._noted).unstable,
                on_skipped=NoticeBoard(pipeline.ledger, config.watch, self._noted).skipped,
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
            page = self._start_page(pipeline, uploaders)
            try:
                self._ingest_loop(pipeline)
            finally:
                self.systemd.stopping()
                self.stop_event.set()
                if page is not None:
                    page.stop()
                watcher.stop()
                self._wake_all()
                for thread in threads:
                    thread.join(timeout=90.0)  # an upload in flight notices the stop at its next block
                if self._progress is not None:
                    self._progress.__exit__(None, None, None)
        logger.info("stopped")

    def _start_page(self, pipeline: Pipeline, uploaders: list[PlatformUploader]) -> LivePage | None:
        """The web page ([web] listen), in threads of its own; the service runs on without it."""
        if not self.config.web.enabled:
            return None
        from stockbridge.web.live import start_page

        return safely(start_page, self, pipeline, uploaders)

    def wake(self, platform: str | None = None) -> None:
        """Wake ``platform``'s upload threads (all with None): an action from the page goes now."""
        for name, events in list(self._wake.items()):
            if platform is None or name == platform:
                for event in events:
                    event.set()

    def _tell(self, name: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            safely(self.on_event, name, data)

    @staticmethod
    def _refused(pipeline: Pipeline, path: Path) -> bool:
        """Did ingest just note ``path`` as not taken (not a release, not unchanged)?"""
        return bool(pipeline.ledger.query("SELECT 1 FROM notices WHERE path=?", (str(path),)))

    def _noted(self, path: Path) -> None:
        """A file was not taken (a NoticeBoard notice): the page's not-taken list changed."""
        self._tell("notice", {"name": path.name})

    def _wait_for_folder(self) -> bool:
        """An export drive not mounted yet (or a NAS share still coming up) is not a reason to die:
        say so once, tell systemd we are up and waiting, and look again every few seconds.
        Returns False when asked to stop first."""
        folder = self.config.watch.folder
        if folder.is_dir():
            return True
        problem = watch_folder_problem(self.config)
        logger.error(
            "{}; waiting for it (checking every {:.0f} s): {}",
            problem.problems[0] if problem else f"watch.folder: {folder} is missing",
            FOLDER_WAIT_SECONDS,
            problem.hint if problem else "create it or mount the drive it is on",
        )
        self.systemd.ready(f"waiting for the watch folder {folder}")
        while not self.stop_event.wait(FOLDER_WAIT_SECONDS):
            if folder.is_dir():
                logger.info("the watch folder {} is there now", folder)
                return True
        return False

    def _show_backlog(self, config: Config) -> None:
        """On a terminal, bars for the files already waiting: ingesting them, then each platform."""
        from stockbridge.cli.progress import once_progress

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
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                safely(self._reload, pipeline)
            # Backpressure: at most two files per prepare worker in flight; the rest of what
            # the watcher found waits as paths (a few bytes each), not as images.
            if not self._in_flight.acquire(timeout=0.5):
                continue
            try:
                path = self._ready.get(timeout=0.5)
            except queue.Empty:
                self._in_flight.release()
                continue
            with self._preparing_lock:
                if path in self._preparing:  # settled again while being prepared: after this one
                    self._again.add(path)
                    self._in_flight.release()
                    continue
                self._preparing.add(path)
            try:
                future = pipeline.submit(path)
            except RuntimeError:  # the workers are shut down: we are stopping
                self._in_flight.release()
                break
            future.add_done_callback(functools.partial(self._prepared, pipeline, path))

    def _prepared(self, pipeline: Pipeline, path: Path, future: Future[Ingested | None]) -> None:
        """On the prepare worker, after ``accept_file(path)``."""
        self._in_flight.release()
        with self._preparing_lock:
            self._preparing.discard(path)
            again = path in self._again
            self._again.discard(path)
        if again:
            self._ready.put(path)
        if future.cancelled():
            return
        if (error := future.exception()) is not None:
            logger.opt(exception=error).error("unexpected error preparing {}: {}", path.name, error)
        with self._preparing_lock:
            self._backlog_ingested(pipeline)
        if future.exception() is None and (item := future.result()) is not None:
            self._tell("asset", {"id": item.sha256, "name": item.path.name})
        elif future.exception() is None and self.on_event is not None and self._refused(pipeline, path):
            self._tell("notice", {"name": path.name})  # refused at ingest: the not-taken list changed
        if future.exception() is None:
            # A file queued, or a release or a vector's preview that freed held jobs (for which
            # accept_file returns None): the uploaders look now, not at their next nap's end.
            self._wake_all()

    def _wake_all(self) -> None:
        for events in self._wake.values():
            for event in events:
                event.set()

    def _reload(self, pipeline: Pipeline) -> None:
        """SIGHUP: re-read the config file. Platform settings and rules apply from the next batch
        and the next file; platforms paused for a refused login, an untrusted server or a config
        problem get one new try (decisions.md X-3). A broken file changes nothing: the service goes on
        with what it had."""
        source = self.config.source
        if source is None:
            logger.warning("reload asked, but this configuration was not read from a file")
            return
        self.systemd.reloading()
        try:
            new = load_config(source)
            if (problem := insecure_config_problem(new)) is not None:
                raise problem
        except ConfigError as exc:
            logger.error("configuration not reloaded, still running with the previous one: {}", exc)
            for line in exc.problems:
                if line != exc.message:
                    logger.error("  {}", line)
            if exc.hint:
                logger.error("hint: {}", exc.hint)
            self.systemd.ready()
            return
        for warning in new.warnings:
            logger.warning("{}", warning)
        old_names, new_names = set(pipeline.platforms), set(new.enabled_platforms())
        needs_restart = []
        if old_names != new_names:
            needs_restart.append("the set of enabled platforms")
        if new.watch != self.config.watch:
            needs_restart.append("[watch]")
        if new.state != self.config.state:
            needs_restart.append("[state]")
        if new.web != self.config.web:
            needs_restart.append("[web]")
        # Everything else takes effect now: the next file is planned with the new rules, the next
        # batch connects with the new settings (a password from a file or the keyring is read
        # again at every connection anyway).
        platforms = dict(self.config.platforms)
        for name in old_names & new_names:
            platforms[name] = new.platforms[name]
        kept = new.model_copy(
            update={
                "watch": self.config.watch,
                "state": self.config.state,
                "web": self.config.web,
                "platforms": platforms,
            }
        )
        self.config = kept
        pipeline.config = kept
        resumed = pipeline.ledger.resume(kinds=[str(kind) for kind in FIXABLE_BY_USER])
        # Held files are planned again with the new rules (a category mapping, an AI policy, a
        # keyword minimum): those that now pass move on by themselves.
        safely(pipeline.reconsider_held)
        for uploader in self._uploaders:
            if uploader.name in kept.platforms:
                uploader.platform = kept.platforms[uploader.name]
            for event in self._wake[uploader.name]:
                event.set()
        logger.info(
            "configuration reloaded from {}{}",
            source,
            f"; {', '.join(sorted(resumed))} will try again" if resumed else "",
        )
        if needs_restart:
            logger.warning("changes to {} take effect at the next restart", " and ".join(needs_restart))
        self.systemd.ready(safely(self._status_line, pipeline))

    def _upload_loop(self, uploader: PlatformUploader, wake: threading.Event) -> None:
        safely(uploader.recover_once)
        while not self.stop_event.is_set():
            self._upload_ticks[uploader.name] = time.monotonic()
            self._status_due.set()
            wait = safely(look, uploader, SERVICE, None, self._batch_sent)
            wake.wait(
                timeout=min(SERVICE_LOOK_SECONDS, wait if isinstance(wait, float) else SERVICE_LOOK_SECONDS)
            )
            wake.clear()

    def _batch_sent(self, _batch: Batch | None) -> None:
        self._status_due.set()

    # ------------------------------------------------------------------ systemd (sd_notify)

    def _start_systemd_reports(self, pipeline: Pipeline) -> None:
        """READY=1, then STATUS= lines and WATCHDOG=1 pings. Nothing at all outside systemd."""
        if not self.systemd.enabled:
            return
        self.systemd.ready(safely(self._status_line, pipeline))
        self.systemd.start_watchdog(self.stop_event, self._healthy)
        threading.Thread(
            target=self._status_loop, args=(pipeline,), name="stockbridge-status", daemon=True
        ).start()

    def _status_loop(self, pipeline: Pipeline) -> None:
        last: str | None = None
        while not self.stop_event.is_set():
            self._status_due.wait(STATUS_SECONDS)
            self._status_due.clear()
            line = safely(self._status_line, pipeline)
            if line and line != last:
                self.systemd.status(line)
                last = line
            self.stop_event.wait(0.5)  # a burst of batch events costs one query, not one each

    def _status_line(self, pipeline: Pipeline) -> str:
        """E.g. "12 queued, shutterstock uploading 3/20, adobe paused"."""
        queued = len(pipeline.ledger.jobs(states=[states.PENDING, states.UPLOADING]))
        parts = [f"{queued} queued" if queued else "nothing queued"]
        for uploader in sorted(self._uploaders, key=lambda uploader: uploader.name):
            batches = [batch.progress for batch in list(uploader.open_batches)]
            if batches:
                done, total = sum(done for done, _ in batches), sum(total for _, total in batches)
                parts.append(f"{uploader.name} uploading {min(done + 1, total)}/{total}")
        parts += [f"{name} paused" for name in pipeline.platforms if pipeline.ledger.pause_of(name)]
        return ", ".join(parts)

    def _on_outcome(self, job: Job) -> None:
        self._upload_ticks[job.platform] = time.monotonic()
        self._tell(
            "job", {"id": job.sha256, "job": job.id, "platform": job.platform, "state": str(job.state)}
        )
        if self._progress is not None:
            self._progress.outcome(job)
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
