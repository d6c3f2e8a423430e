"""Watch the export folder and hand over only finished files.

A file is *finished* when its fingerprint ``(st_dev, st_ino, st_size, st_mtime_ns)`` has not changed
for ``settle_seconds`` (design promise 1). There is no portable "file finished writing" event: a
slow writer produces ``modified`` events while the file is incomplete, FSEvents coalesces events,
an atomic save arrives as ``moved`` with no ``created`` for the final name, and the kernel queue can
overflow (decisions.md W-1, W-9; decisions.md M-5). So events here only *wake* the
:class:`SettleTracker`; the decision is always made by re-reading the fingerprint.

The pieces, one module each, from pure to threaded:

- :mod:`~stockbridge.intake.scan`: junk names, the start-up scan and rescans, entries never taken.
- :mod:`~stockbridge.intake.settle`: fingerprints, :class:`SettleTracker` (the per-path settle state
  machine) and :func:`collect_settled`, the one-shot variant for ``stockbridge once``.
- :mod:`~stockbridge.intake.observers`: ``observer = "auto"`` (polling on network file systems, where
  native events from other hosts never arrive) and the event handler.
- here, :class:`Watcher`: a watchdog observer (native or polling) + a startup scan + a settle thread,
  which also restarts a dead observer and falls back to polling when native events are unavailable.

The watcher never writes inside the watched folder and never follows symlinks (decisions.md X-10).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from loguru import logger
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from stockbridge.errors import ConfigError
from stockbridge.intake.observers import (
    ObserverChoice,
    ObserverKind,
    _observer_running,
    _TouchHandler,
    choose_observer,
)
from stockbridge.intake.scan import (
    OnSkipped,
    _checked_root,
    _forget_reported,
    _report_skipped,
    is_ignored,
    scan,
    skipped_entry,
)
from stockbridge.intake.settle import DEFAULT_MAX_SETTLE_SECONDS, SettleTracker

__all__ = ["DEFAULT_RESCAN_SECONDS", "Watcher"]

# watchdog 7.1 logs an inotify queue overflow but the lost events stay lost, and the polling
# observer stops for good when the root vanishes; a periodic scan is the safety net (decisions.md W-9).
DEFAULT_RESCAN_SECONDS = 600.0

# A dead observer is rebuilt at once the first time; if it keeps dying, the wait before the next
# rebuild doubles up to the maximum (decisions.md W-13). One that stays up this long resets the backoff.
OBSERVER_RESTART_BACKOFF_SECONDS = 1.0
OBSERVER_RESTART_MAX_BACKOFF_SECONDS = 300.0
OBSERVER_HEALTHY_SECONDS = 60.0


class Watcher:
    """Watch ``root`` and call ``on_ready(path)`` once per finished version of each file.

    Two threads: the watchdog observer, whose handler only records events in a
    :class:`SettleTracker`, and a settle thread that wakes every ``min(1.0, settle_seconds / 4)``
    seconds, asks the tracker what is due and calls ``on_ready`` (and ``on_unstable``). Both
    callbacks run on the settle thread: keep them quick (enqueue work); an exception from them is
    logged and the loop goes on.

    Entries a user may expect to be taken but that never are (a symlink, a pipe or socket, a folder
    named like a photo) are logged (one WARNING each) as soon as an event announces them, and handed
    to ``on_skipped(path, what)`` on the settle thread's next pass, once per appearance: again only
    after the entry was gone (an event or a rescan that no longer sees it).

    ``observer="polling"`` uses watchdog's PollingObserver, needed for network shares where native
    events do not arrive (decisions.md W-12); ``"auto"`` picks it when the folder is on a network file
    system (:func:`choose_observer`). ``poll_interval`` is its seconds between snapshots (None:
    watchdog's default, 1 s). ``rescan_seconds`` runs a full scan that often as a safety net for lost
    events (None disables it).

    The settle thread also supervises the observer: when its thread or one of its emitters has died
    (a polling emitter stops for good on the first ``OSError``), it is stopped, rebuilt and scheduled
    again, followed by a rescan for what was missed meanwhile, with a backoff if it keeps dying.

    ``clock`` is the settle clock (tests drive it to make "still being written" deterministic).
    """

    def __init__(
        self,
        root: Path,
        *,
        on_ready: Callable[[Path], None],
        recursive: bool = True,
        settle_seconds: float = 10.0,
        ignore: Sequence[str] = (),
        poll_interval: float | None = None,
        observer: ObserverChoice = "native",
        max_settle_seconds: float = DEFAULT_MAX_SETTLE_SECONDS,
        on_unstable: Callable[[Path], None] | None = None,
        rescan_seconds: float | None = DEFAULT_RESCAN_SECONDS,
        on_skipped: OnSkipped | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if observer not in ("auto", "native", "polling"):
            raise ConfigError(f"unknown observer {observer!r}", hint="use 'auto', 'native' or 'polling'")
        # Resolved once so event paths and scan paths are spelled the same way (FSEvents reports
        # real paths; /tmp is a symlink on macOS) and a file is never tracked under two names.
        self.root = _checked_root(root)
        self.recursive = recursive
        self.settle_seconds = settle_seconds
        self.ignore = tuple(ignore)
        self.observer_kind, self.observer_reason = choose_observer(observer, self.root)
        self.poll_interval = poll_interval
        self.rescan_seconds = rescan_seconds
        self._on_ready = on_ready
        self._on_unstable = on_unstable
        self._on_skipped = on_skipped
        # Skipped entries handed to on_skipped (path -> what), and those waiting for the next pass.
        self._skipped: dict[Path, str] = {}
        self._skipped_waiting: list[tuple[Path, str]] = []
        self._tracker = SettleTracker(settle_seconds, max_settle_seconds=max_settle_seconds, clock=clock)
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._observer: BaseObserver | None = None
        self._settle_thread: threading.Thread | None = None
        self._tick_seconds = max(0.01, min(1.0, settle_seconds / 4))
        self._last_scan = 0.0
        # Guards self._observer between stop() and a rebuild on the settle thread.
        self._observer_lock = threading.Lock()
        self.observer_restarts = 0
        self._restart_backoff = 0.0
        self._next_restart_at = 0.0
        self._observer_started_at = 0.0

    def start(self) -> None:
        """Start watching, then scan what is already there (files exported while we were down).

        The observer starts first so that nothing written during the scan falls in a gap; a file seen
        by both is simply touched twice.
        """
        if self._observer is not None:
            raise RuntimeError("Watcher.start() called twice")
        self._stop_event.clear()
        self._observer = self._start_observer_or_poll()
        self._observer_started_at = time.monotonic()
        self.rescan()
        self._settle_thread = threading.Thread(
            target=self._settle_loop, name="stockbridge-settle", daemon=True
        )
        self._settle_thread.start()
        logger.info(
            "Watching {} ({} observer: {}; {}, settle {} s)",
            self.root,
            self.observer_kind,
            self.observer_reason,
            "recursive" if self.recursive else "top level only",
            self.settle_seconds,
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads and wait for them, at most ``timeout`` seconds each."""
        self._stop_event.set()
        with self._observer_lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout)
            if observer.is_alive():
                logger.warning("The folder observer did not stop within {} s", timeout)
        if self._settle_thread is not None:
            if self._settle_thread is not threading.current_thread():  # stop() from on_ready
                self._settle_thread.join(timeout)
                if self._settle_thread.is_alive():
                    logger.warning("The settle thread did not stop within {} s (a slow on_ready?)", timeout)
            self._settle_thread = None

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def rescan(self) -> None:
        """Touch every candidate file now. Already handed-out, unchanged files stay quiet."""
        self._last_scan = time.monotonic()
        seen: dict[Path, str] = {}
        try:
            paths = scan(self.root, self.recursive, self.ignore, on_skipped=seen.__setitem__)
        except OSError as exc:
            logger.error("Cannot list the watch folder {}: {}", self.root, exc)
            return
        with self._lock:
            for path in paths:
                self._tracker.touch(path, event=False)
            for path in [path for path in self._skipped if path not in seen]:
                del self._skipped[path]  # gone (or fixed) since: report it again if it comes back
            for path, what in seen.items():
                self._skip_locked(path, what)

    def tick(self) -> list[Path]:
        """One pass of the settle loop: hand over what is due; returns the paths handed over."""
        if self.rescan_seconds is not None and time.monotonic() - self._last_scan >= self.rescan_seconds:
            self.rescan()
        self._check_observer()
        with self._lock:
            ready = self._tracker.due()
            unstable = self._tracker.unstable()
            skipped, self._skipped_waiting = self._skipped_waiting, []
        for path, what in skipped:
            self._call(self._report_to_caller, path, what)
        for path in unstable:
            logger.warning(
                "{} is unstable: still changing after {:g} s, so it is not uploaded yet. If something"
                " is still writing it, let that finish: it is taken once it stays unchanged for"
                " {:g} s. If it is only slow (a large copy to a share), raise"
                " watch.max_settle_seconds",
                path,
                self._tracker.max_settle_seconds,
                self.settle_seconds,
            )
            if self._on_unstable is not None:
                self._call(self._on_unstable, path)
        for path in ready:
            if self._stop_event.is_set():
                # Not handed over; the startup scan of the next run finds it again.
                break
            self._call(self._on_ready, path)
        return ready

    def _settle_loop(self) -> None:
        while not self._stop_event.wait(self._tick_seconds):
            try:
                self.tick()
            except Exception:  # never let the loop die: it is the only thing handing out files
                logger.opt(exception=True).error("Settle pass failed; trying again")

    def _report_to_caller(self, path: Path, what: str) -> None:
        if self._on_skipped is not None:
            self._on_skipped(path, what)

    def _call(self, callback: Callable[..., None], path: Path, *more: object) -> None:
        try:
            callback(path, *more)
        except Exception:
            logger.opt(exception=True).error("Handling {} failed; going on with the next file", path)

    def _touch_event(self, path: Path) -> None:
        # Ignore rules apply to both ends of a move (decisions.md W-5): a move to .x.tmp only forgets x.jpg.
        if is_ignored(path, self.root, self.ignore):
            return
        if not self.recursive and path.parent != self.root:
            return
        with self._lock:
            self._tracker.touch(path)

    def _wanted(self, path: Path) -> bool:
        if is_ignored(path, self.root, self.ignore):
            return False
        return self.recursive or path.parent == self.root

    def _arrived_event(self, path: Path) -> None:
        """Something appeared under ``path`` (created, or moved in): say now if it is never taken."""
        if not self._wanted(path):
            return
        what = skipped_entry(path, self.recursive)
        if what is not None:
            _report_skipped(path, what)
            with self._lock:
                self._skip_locked(path, what)

    def _gone_event(self, path: Path) -> None:
        if os.path.lexists(path):
            return  # replaced at once (an atomic save): the arrival handles the new entry
        _forget_reported(path)
        with self._lock:
            self._skipped.pop(path, None)

    def _skip_locked(self, path: Path, what: str) -> None:
        if self._skipped.get(path) != what:
            self._skipped[path] = what
            self._skipped_waiting.append((path, what))

    def _start_observer_or_poll(self, *, only_on_limits: bool = False) -> BaseObserver:
        """Start the observer of ``observer_kind``; a native one that cannot start is replaced by
        polling for good. ``only_on_limits``: only for the inotify limits (a rebuild while the
        folder is gone must not switch to polling forever)."""
        try:
            return self._start_observer(self.observer_kind)
        except OSError as exc:
            if self.observer_kind != "native":
                raise
            if only_on_limits and exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            # ENOSPC / EMFILE: the inotify watch or instance limit (decisions.md W-11). Polling is
            # slower but sees everything; crash-looping under systemd would see nothing.
            logger.warning(
                "Native folder events are unavailable for {} ({}); polling instead. On Linux, raise"
                " the sysctl fs.inotify.max_user_watches / max_user_instances to get them back",
                self.root,
                exc,
            )
            self.observer_kind = "polling"
            return self._start_observer("polling")

    def _start_observer(self, kind: ObserverKind) -> BaseObserver:
        observer: BaseObserver
        if kind == "native":
            observer = Observer()
        elif self.poll_interval is None:
            observer = PollingObserver()
        else:
            observer = PollingObserver(timeout=self.poll_interval)
        handler = _TouchHandler(self._touch_event, self._arrived_event, self._gone_event)
        observer.schedule(handler, str(self.root), recursive=self.recursive)
        observer.daemon = True  # a stuck observer must not keep the process alive after stop()
        observer.start()
        return observer

    def _check_observer(self) -> None:
        """Rebuild the observer if its thread or one of its emitters died (decisions.md W-13)."""
        observer = self._observer
        if observer is None or self._stop_event.is_set():
            return
        now = time.monotonic()
        if _observer_running(observer):
            if now - self._observer_started_at >= OBSERVER_HEALTHY_SECONDS:
                self._restart_backoff = 0.0
            return
        if now < self._next_restart_at:
            return
        self._restart_backoff = (
            OBSERVER_RESTART_BACKOFF_SECONDS
            if self._restart_backoff == 0
            else min(OBSERVER_RESTART_MAX_BACKOFF_SECONDS, self._restart_backoff * 2)
        )
        self._next_restart_at = now + self._restart_backoff
        self.observer_restarts += 1
        logger.warning(
            "The folder observer for {} stopped (folder gone or unreachable?); restarting it"
            " (restart {}; if it dies again, next try in {:.0f} s at the earliest)",
            self.root,
            self.observer_restarts,
            self._restart_backoff,
        )
        observer.stop()
        observer.join(1.0)
        with self._observer_lock:
            if self._stop_event.is_set() or self._observer is not observer:
                return
            try:
                self._observer = self._start_observer_or_poll(only_on_limits=True)
            except OSError as exc:
                # Keep the dead one: the next pass sees it dead and tries again after the backoff.
                logger.error("Cannot restart the folder observer for {}: {}", self.root, exc)
                return
            self._observer_started_at = time.monotonic()
        self.rescan()  # whatever happened while nobody was watching
