"""``stockbridge once``: take what is in the export folder now, send it, exit.

Files are prepared on the prepare workers while each platform's uploader sends what is ready
(:func:`stockbridge.delivery.loop.drain`, the same batch loop as the service): preparing and
sending overlap. What is left (a paused platform, a schedule, a server that stayed down) stays
pending for the next run; the report says what each file came to.
"""

from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from stockbridge.assets.ingest import Ingested
from stockbridge.config.models import Config
from stockbridge.delivery.loop import drain
from stockbridge.delivery.pace import SCHEDULED, Slot, scheduled_jobs, when
from stockbridge.delivery.policy import ONCE_RETRY
from stockbridge.delivery.prepare import Pipeline, open_pipeline
from stockbridge.delivery.uploader import PlatformUploader
from stockbridge.intake.notices import NoticeBoard
from stockbridge.intake.settle import collect_settled
from stockbridge.ledger import states
from stockbridge.service.safely import safely

if TYPE_CHECKING:
    from stockbridge.cli.progress import OnceProgress
    from stockbridge.metadata.exiftool import ExifTool

#: ``once`` gives up on files still being written after this long; the next run takes them.
ONCE_MAX_SETTLE_WAIT = 120.0
#: ``once`` stops retrying after this long; what is left stays pending for the next run.
ONCE_DEADLINE_SECONDS = 3600.0


@dataclass
class OnceReport:
    seen: list[Path] = field(default_factory=list)
    still_changing: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # state → jobs, over the files of this run
    #: Files whose preparing raised past every guard (the error is in the log): no answer is a failure.
    unanswered: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        # "scheduled" (pending, waiting for the platform's window or daily cap) is not a failure:
        # `once` from cron outside a window has done all it may, and exits 0.
        return bool(self.counts.get(states.FAILED) or self.counts.get(states.PENDING) or self.unanswered)


def run_once(
    config: Config,
    stop: threading.Event | None = None,
    progress: OnceProgress | None = None,
    exiftool: ExifTool | None = None,
) -> OnceReport:
    """``progress``: optional hooks for bars on a terminal (``stockbridge once``); None: none.
    ``exiftool``: the run's ExifTool if the caller spawned it ahead (closed here); else one is made."""
    stop = stop or threading.Event()
    report = OnceReport()
    with open_pipeline(config, exiftool) as pipeline:
        # Held files are planned again first: the config may have changed since the last run (a
        # category mapping added), and an unchanged file is not looked at again below.
        safely(pipeline.reconsider_held)
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
        deadline = time.monotonic() + ONCE_DEADLINE_SECONDS
        if progress is not None:
            for name in pipeline.platforms:
                progress.uploading(name, len(pipeline.ledger.jobs(platform=name, states=[states.PENDING])))
            pipeline.on_queued = progress.queued
        on_outcome = progress.outcome if progress is not None else None
        # Uploads start with the first prepared file: preparing (hash, metadata, resize, on every
        # core) and sending overlap, and an open batch takes files as they become ready.
        ingest_done = threading.Event()
        threads = [
            threading.Thread(
                target=safely, args=(drain, uploader, deadline, ingest_done), name=f"upload-{name}"
            )
            for name, platform in pipeline.platforms.items()
            for uploader in [
                PlatformUploader(pipeline, name, platform, ONCE_RETRY, stop, on_outcome=on_outcome)
            ]
            for _connection in range(platform.connections)
        ]
        for thread in threads:
            thread.start()
        try:
            prepared, report.unanswered = _prepare_all(pipeline, stable, stop, progress)
            touched |= prepared
        finally:
            ingest_done.set()
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


def _prepare_all(
    pipeline: Pipeline, paths: list[Path], stop: threading.Event, progress: OnceProgress | None
) -> tuple[set[str], list[Path]]:
    """``accept_file`` for every path on the prepare workers, a bounded number in flight.
    Returns the content hashes of the files seen, and the files whose preparing raised."""
    touched: set[str] = set()
    unanswered: list[Path] = []
    finished = threading.Condition()
    counts = {"submitted": 0, "finished": 0}
    in_flight = threading.BoundedSemaphore(pipeline.worker_count * 2)

    def done(path: Path, future: Future[Ingested | None]) -> None:
        # Runs on the worker once ``accept_file`` returned; ``wait()`` on the future could
        # return before this has run, so completion is counted here.
        try:
            item = None if future.cancelled() else future.result()
        except Exception as exc:
            logger.opt(exception=exc).error("unexpected error preparing {}: {}", path.name, exc)
            item = None
            with finished:
                unanswered.append(path)
        sha = item.sha256 if item is not None else pipeline.known(path)
        if progress is not None and not future.cancelled():
            progress.ingested()
        in_flight.release()
        with finished:
            if sha:
                touched.add(sha)
            counts["finished"] += 1
            finished.notify_all()

    for path in paths:
        if stop.is_set():
            break
        if (sha := pipeline.done_before(path)) is not None:
            # The restart case: thousands of files already sent cost a stat and two lookups each,
            # here, instead of a trip through the workers.
            with finished:
                touched.add(sha)
            if progress is not None:
                progress.ingested()
            continue
        while not in_flight.acquire(timeout=0.5):
            if stop.is_set():
                break
        if stop.is_set():
            break
        counts["submitted"] += 1
        pipeline.submit(path).add_done_callback(functools.partial(done, path))
    with finished:
        finished.wait_for(lambda: counts["finished"] >= counts["submitted"])
    return touched, unanswered
