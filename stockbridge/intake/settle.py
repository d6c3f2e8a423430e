"""When a file is finished: its fingerprint has not changed for ``settle_seconds`` (design promise 1).

There is no portable "file finished writing" event: a slow writer produces ``modified`` events while
the file is incomplete, FSEvents coalesces events, an atomic save arrives as ``moved`` with no
``created`` for the final name, and the kernel queue can overflow (decisions.md W-1, W-9;
decisions.md M-5). So events only *wake* the :class:`SettleTracker`; the decision is always made
by re-reading the fingerprint.

- :func:`fingerprint`: one ``lstat``; ``None`` for anything that is not a regular file.
- :class:`SettleTracker`: the per-path settle state machine, with an injectable clock.
- :func:`collect_settled`: the one-shot variant for ``stockbridge once``.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stockbridge.intake.scan import OnSkipped, _checked_root, scan

__all__ = [
    "DEFAULT_MAX_SETTLE_SECONDS",
    "Fingerprint",
    "SettleTracker",
    "collect_settled",
    "fingerprint",
]

# A file that keeps changing this long is reported as unstable instead of waiting forever (decisions.md W-2).
DEFAULT_MAX_SETTLE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What must stay equal for a file to count as unchanged. ``ino``/``dev`` catch a replace by
    rename that keeps the size and mtime (e.g. ``cp -p`` to a temp name, then ``mv``)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int


def fingerprint(path: Path) -> Fingerprint | None:
    """The fingerprint of a regular file, or None for anything else.

    ``lstat`` (no symlink following): a symlink ``photo.jpg -> ~/.ssh/id_ed25519`` must never look
    like a photo (decisions.md X-10). Directories named ``x.jpg``, fifos, sockets, devices and files that
    vanished or cannot be stat'ed all give None.
    """
    try:
        info = os.stat(path, follow_symlinks=False)
    except (OSError, ValueError):  # ValueError: embedded NUL in a hostile name
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return Fingerprint(dev=info.st_dev, ino=info.st_ino, size=info.st_size, mtime_ns=info.st_mtime_ns)


@dataclass(slots=True)
class _Pending:
    fingerprint: Fingerprint
    last_change: float  # last event, or last time the fingerprint was seen to differ
    first_seen: float  # start of this settling episode, for max_settle_seconds


class SettleTracker:
    """Per-path settle timers (decisions.md W-1, W-2, W-16): not one global debouncer, so one busy file cannot
    delay the others.

    ``touch(path)`` says "something may have happened to path" (an event or a scan saw it): the
    fingerprint is recorded and the path's timer restarts (for a scan, only if the fingerprint
    differs). ``due()`` re-stats every path whose timer
    has run for ``settle_seconds``: unchanged ones are returned (once) and forgotten, changed ones
    start over. A path still changing after ``max_settle_seconds`` goes to :meth:`unstable` once and
    stays watched: it is handed out as soon as it stays unchanged for ``settle_seconds``.

    Each settled fingerprint of a path is returned at most once: a later ``touch`` that finds the same
    fingerprint (a rescan, an event caused by someone reading the file) is a no-op, while a real
    change makes the path eligible again. Identity beyond that is the pipeline's content hash.

    Not thread-safe by itself; :class:`Watcher` serialises access with a lock.
    """

    def __init__(
        self,
        settle_seconds: float,
        *,
        max_settle_seconds: float = DEFAULT_MAX_SETTLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settle_seconds < 0:
            raise ValueError(f"settle_seconds must be >= 0, not {settle_seconds}")
        if max_settle_seconds < settle_seconds:
            raise ValueError("max_settle_seconds must be at least settle_seconds")
        self.settle_seconds = settle_seconds
        self.max_settle_seconds = max_settle_seconds
        self._clock = clock
        self._pending: dict[Path, _Pending] = {}
        # Last fingerprint handed out (or given up on) per path, so it is not handed out twice.
        self._done: dict[Path, Fingerprint] = {}
        self._unstable: list[Path] = []
        # Reported as unstable and not handed out or gone since: a file that never stops changing
        # starts a new episode with every change, but is reported only once (decisions.md W-2).
        self._reported_unstable: set[Path] = set()

    def __len__(self) -> int:
        """Number of paths still settling."""
        return len(self._pending)

    def touch(self, path: Path, now: float | None = None, *, event: bool = True) -> None:
        """Record that ``path`` may have changed. Vanished and non-regular paths are forgotten.

        ``event=False`` is for scans: they only add new paths and notice changed fingerprints. They do
        not restart the timer of an unchanged settling file, so rescans, however frequent, can never
        hold a file back.
        """
        now = self._clock() if now is None else now
        current = fingerprint(path)
        if current is None:
            self._pending.pop(path, None)
            self._done.pop(path, None)
            self._reported_unstable.discard(path)
            return
        if self._done.get(path) == current:
            return
        self._done.pop(path, None)
        entry = self._pending.get(path)
        if entry is None:
            self._pending[path] = _Pending(current, last_change=now, first_seen=now)
        elif event or current != entry.fingerprint:
            # An event restarts the timer even when size and mtime look the same: on filesystems
            # with coarse mtimes, a same-size rewrite is only visible through the event.
            entry.fingerprint = current
            entry.last_change = now

    def due(self, now: float | None = None) -> list[Path]:
        """Paths whose fingerprint has been unchanged for ``settle_seconds``, sorted; each is
        forgotten once returned. Paths that hit ``max_settle_seconds`` go to :meth:`unstable`."""
        now = self._clock() if now is None else now
        ready: list[Path] = []
        for path, entry in list(self._pending.items()):
            if now - entry.last_change < self.settle_seconds:
                self._give_up_if_too_long(path, entry, now)
                continue
            current = fingerprint(path)
            if current is None:
                del self._pending[path]  # deleted or replaced by a non-file: nothing to hand over
                self._reported_unstable.discard(path)
            elif current == entry.fingerprint:
                del self._pending[path]
                self._done[path] = current
                self._reported_unstable.discard(path)
                ready.append(path)
            else:
                # Changed without an event reaching us (coalesced, lost, or a network share).
                entry.fingerprint = current
                entry.last_change = now
                self._give_up_if_too_long(path, entry, now)
        return sorted(ready)

    def unstable(self) -> list[Path]:
        """Paths given up on since the last call, because they kept changing for
        ``max_settle_seconds``. A path is reported once until it settles or disappears, however
        many times it is given up on meanwhile; the list is cleared by the call."""
        reported, self._unstable = self._unstable, []
        return reported

    def _give_up_if_too_long(self, path: Path, entry: _Pending, now: float) -> None:
        # Reported once, and still watched: a new episode starts, so a file whose writer finishes
        # now is taken once it stays unchanged for settle_seconds. (Dropping it here, as before,
        # lost a file whose last write fell into an episode already max_settle_seconds old:
        # its final bytes were remembered as given up and never looked at again.)
        if now - entry.first_seen >= self.max_settle_seconds:
            entry.first_seen = now
            if path not in self._reported_unstable:
                self._reported_unstable.add(path)
                self._unstable.append(path)


def collect_settled(
    root: Path,
    *,
    recursive: bool = True,
    settle_seconds: float = 10.0,
    ignore: Sequence[str] = (),
    max_wait: float = 60.0,
    on_skipped: OnSkipped | None = None,
) -> tuple[list[Path], list[Path]]:
    """For ``stockbridge once``: the files in ``root`` now that are finished, and those still changing.

    Every file must be seen unchanged across a full ``settle_seconds`` window, even one whose mtime is
    old: a writer may have paused, and the rule is the same one the service uses. So: stat, wait
    ``settle_seconds``, stat again; changed files go round again until ``max_wait`` has passed, then
    are returned in the second list. Files that vanish are left out; files that appear after the scan
    are left for the next run; ``on_skipped`` is as for :func:`scan`. Returns at once when there is nothing to take; otherwise takes at
    least one ``settle_seconds`` window and at most about ``max(max_wait, settle_seconds)``.
    """
    root = _checked_root(root)
    deadline = time.monotonic() + max_wait
    waiting: dict[Path, Fingerprint] = {}
    for path in scan(root, recursive, ignore, on_skipped=on_skipped):
        current = fingerprint(path)
        if current is not None:
            waiting[path] = current
    stable: list[Path] = []
    while waiting:
        time.sleep(settle_seconds)
        still_changing: dict[Path, Fingerprint] = {}
        for path, before in waiting.items():
            now = fingerprint(path)
            if now is None:
                continue
            if now == before:
                stable.append(path)
            else:
                still_changing[path] = now
        waiting = still_changing
        if time.monotonic() + settle_seconds > deadline:
            break  # another full window would overrun max_wait
    return sorted(stable), sorted(waiting)
