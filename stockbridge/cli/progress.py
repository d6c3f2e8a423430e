"""Progress bars for ``stockbridge once`` on a terminal: per stage (settling, ingesting) and per
platform (files done of the total, MB/s). ``run_once`` calls these hooks; each is a few dict and
counter updates, so the upload threads never wait on drawing (rich redraws from its own thread).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

from stockbridge.ledger.states import UPLOADED
from stockbridge.ledger.store import Job

if TYPE_CHECKING:  # rich is imported only when there is a terminal to draw on (~20 ms, issue 14)
    from rich.console import Console
    from rich.progress import TaskID


class OnceProgress:
    """Bars on ``console`` (stderr by default). Use :func:`once_progress` to get one only on a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console or Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._lock = threading.Lock()
        self._platforms: dict[str, TaskID] = {}
        self._bytes: dict[str, int] = {}
        self._totals: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._ingest: TaskID | None = None
        self._settle: TaskID | None = None

    def __enter__(self) -> OnceProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._progress.stop()

    # ------------------------------------------------------------------ stages

    def settling(self) -> None:
        self._settle = self._progress.add_task("settling", total=None, detail="waiting for files to be still")

    def settled(self, stable: int, changing: int) -> None:
        if self._settle is not None:
            detail = f"{changing} still being written" if changing else ""
            self._progress.update(self._settle, total=stable, completed=stable, detail=detail)
        self._ingest = self._progress.add_task("ingesting", total=stable, detail="")

    def ingested(self) -> None:
        if self._ingest is not None:
            self._progress.advance(self._ingest)

    # ------------------------------------------------------------------ platforms

    def uploading(self, platform: str, total: int) -> None:
        with self._lock:
            self._platforms[platform] = self._progress.add_task(f"→ {platform}", total=total, detail="")
            self._totals[platform] = total
            self._bytes[platform] = 0
            self._started[platform] = time.monotonic()

    def queued(self, platform: str) -> None:
        """``Pipeline.on_queued``: one more file for ``platform`` (files are prepared while others go)."""
        with self._lock:
            task = self._platforms.get(platform)
            if task is None:
                return
            self._totals[platform] = self._totals.get(platform, 0) + 1
            total = self._totals[platform]
        self._progress.update(task, total=total)

    def outcome(self, job: Job) -> None:
        """``PlatformUploader(on_outcome=...)``: one file of ``job.platform`` reached a final state."""
        with self._lock:
            task = self._platforms.get(job.platform)
            if task is None:
                return
            if job.state == UPLOADED:
                self._bytes[job.platform] += job.upload_size or 0
            seconds = max(time.monotonic() - self._started[job.platform], 1e-6)
            megabytes = self._bytes[job.platform] / 1_000_000
            detail = f"{megabytes:.1f} MB, {megabytes / seconds:.1f} MB/s"
        self._progress.update(task, advance=1, detail=detail)


def once_progress(console: Console | None = None) -> OnceProgress | None:
    """A progress display when stderr is a terminal; None otherwise (logs, pipes, systemd)."""
    if console is None:
        if not _may_be_terminal():
            return None  # what rich would decide, without importing it
        from rich.console import Console

        console = Console(stderr=True)
    return OnceProgress(console) if console.is_terminal else None


def _may_be_terminal() -> bool:
    """False only where rich's ``Console(stderr=True).is_terminal`` is False too: stderr is no
    tty and neither TTY_COMPATIBLE=1 nor FORCE_COLOR says otherwise."""
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR") is not None:
        return True
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (ValueError, AttributeError):
        return False
