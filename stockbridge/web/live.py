"""The page inside ``stockbridge run``: the running service's news and hooks, wired to the app.

What the service tells (a file taken, a job's answer, bytes sent) goes to the event streams;
actions wake the platform's upload threads at once; the platform cards show what each upload
thread is doing now. Everything here is a few dict updates on the service's threads: an upload
never waits for the page.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from stockbridge.ledger.store import Job
from stockbridge.web.app import WebContext, build_app
from stockbridge.web.events import Hub
from stockbridge.web.server import WebServer
from stockbridge.web.token import TokenKeeper

if TYPE_CHECKING:
    from stockbridge.delivery.prepare import Pipeline
    from stockbridge.delivery.uploader import PlatformUploader
    from stockbridge.service.daemon import Service

#: How often the platform cards' activity is compared for ``platform`` events (seconds).
WATCH_SECONDS = 1.0


class LivePage:
    """The web page of a running service; :meth:`stop` when the service stops."""

    def __init__(self, service: Service, pipeline: Pipeline, uploaders: list[PlatformUploader]) -> None:
        self.service = service
        self.pipeline = pipeline
        self.uploaders = {uploader.name: uploader for uploader in uploaders}
        self.hub = Hub()
        self.context = WebContext(service.config, self.hub)
        self.context.config_source = lambda: self.service.config
        self.context.pipeline = pipeline
        self.context.wake = service.wake
        self.context.activity = self.activity
        self._progress: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.server: WebServer | None = None

    def start(self) -> bool:
        web = self.service.config.web
        keeper = TokenKeeper(self.service.config.state.dir)
        known = (row[0] for row in self.pipeline.ledger.query("SELECT sha256 FROM assets"))
        removed = self.context.thumbs.sweep(known)
        if removed:
            logger.info("removed {} thumbnail(s) of files the ledger no longer has", removed)
        app = build_app(self.context, keeper, listen=web.listen, tls=web.tls)
        self.server = WebServer(app, web)
        if not self.server.start():
            return False
        self.pipeline.thumbnails.on_made = lambda sha256: self.event("thumb", {"id": sha256})
        self.pipeline.thumbnails.start()  # made only while the page is served, off the upload path
        for uploader in self.uploaders.values():
            uploader.on_progress = self.progress
        self.service.on_event = self.event
        self._watcher = threading.Thread(target=self._watch, name="web-activity", daemon=True)
        self._watcher.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        self.service.on_event = None
        self.pipeline.thumbnails.on_made = None
        for uploader in self.uploaders.values():
            uploader.on_progress = None
        self.hub.close()
        if self.server is not None:
            self.server.stop()
        self.context.reader.close()

    # ------------------------------------------------------------------ from the service

    def event(self, name: str, data: dict[str, Any]) -> None:
        """``Service.on_event``: "asset" (a file taken, its thumbnail made) or "job" (an answer)."""
        if name == "job":
            self._progress.pop(str(data["platform"]), None)
        self.hub.publish(name, data)

    def progress(self, job: Job, sent: int) -> None:
        """``PlatformUploader.on_progress``: bytes of ``job`` sent so far."""
        data = {"platform": job.platform, "file": Path(job.path).name, "sent": sent, "total": job.upload_size}
        self._progress[job.platform] = data
        self.hub.publish("progress", data)

    def activity(self) -> dict[str, dict[str, Any]]:
        """Per platform: is a batch open, and the file going now."""
        return {
            name: {
                "uploading": bool(uploader.open_batches),
                "progress": self._progress.get(name) if uploader.open_batches else None,
            }
            for name, uploader in self.uploaders.items()
        }

    def _watch(self) -> None:
        """``platform`` events when a platform starts or ends a batch, is paused or resumed
        (by itself, the page or the command line)."""
        seen: dict[str, str] = {}
        while not self._stop.wait(WATCH_SECONDS):
            try:
                now = {name: self._activity_of(name, uploader) for name, uploader in self.uploaders.items()}
            except Exception as exc:  # the ledger busy or closing: look again next time
                logger.debug("web page: activity not read: {}", exc)
                continue
            for name, activity in now.items():
                if seen.get(name) != activity:
                    if name in seen:
                        self.hub.publish("platform", {"name": name, "activity": activity})
                    seen[name] = activity

    def _activity_of(self, name: str, uploader: PlatformUploader) -> str:
        if uploader.open_batches:
            return "uploading"
        if self.pipeline.ledger.pause_of(name) is not None:
            return "paused"
        return "idle"


def start_page(service: Service, pipeline: Pipeline, uploaders: list[PlatformUploader]) -> LivePage | None:
    """Serve the page for a running service, or None (said in the log) when it cannot be."""
    started = time.monotonic()
    page = LivePage(service, pipeline, uploaders)
    if not page.start():
        return None
    logger.debug("web page started in {:.0f} ms", (time.monotonic() - started) * 1000)
    return page
