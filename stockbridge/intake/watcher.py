"""Watch the export folder and hand over only finished files.

A file is *finished* when its fingerprint ``(st_dev, st_ino, st_size, st_mtime_ns)`` has not changed
for ``settle_seconds`` (design promise 1). There is no portable "file finished writing" event: a
slow writer produces ``modified`` events while the file is incomplete, FSEvents coalesces events,
an atomic save arrives as ``moved`` with no ``created`` for the final name, and the kernel queue can
overflow (decisions.md W-1, W-9; research/perf.md §4). So events here only *wake* the
:class:`SettleTracker`; the decision is always made by re-reading the fingerprint.

Pieces, from pure to threaded:

- :func:`is_ignored`, :data:`DEFAULT_IGNORE`: junk names (temporary, hidden, OS and NAS litter).
- :func:`fingerprint`: one ``lstat``; ``None`` for anything that is not a regular file.
- :func:`scan`: every candidate file under the root now, without following symlinks.
- :func:`skipped_entry`: why a path is never taken although it looks like a photo (a symlink, a
  pipe, a folder named ``x.jpg``); said the moment an event announces it, not at the next rescan.
- :class:`SettleTracker`: the per-path settle state machine, with an injectable clock.
- :class:`Watcher`: a watchdog observer (native or polling) + a startup scan + a settle thread.
- :func:`collect_settled`: the one-shot variant for ``stockbridge once``.
- :func:`parse_mount_table`, :func:`filesystem_type`, :func:`choose_observer`: ``observer = "auto"``
  picks polling on network file systems, where native events from other hosts never arrive.

The watcher never writes inside the watched folder and never follows symlinks (decisions.md X-10).
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from loguru import logger
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from stockbridge.errors import ConfigError

__all__ = [
    "DEFAULT_IGNORE",
    "Fingerprint",
    "SettleTracker",
    "Watcher",
    "choose_observer",
    "collect_settled",
    "filesystem_type",
    "fingerprint",
    "is_ignored",
    "is_network_filesystem",
    "parse_macos_mount_output",
    "parse_mount_table",
    "scan",
    "skipped_entry",
]

# Matched case-insensitively against every path component below the watched root, so a pattern
# also hides everything inside a matching folder. The temp-file names Lightroom and Capture One use
# are not documented (decisions.md W-7), which is why users can add patterns in the config.
DEFAULT_IGNORE: tuple[str, ...] = (
    ".*",  # hidden: .DS_Store, ._* (AppleDouble), .name.tmp of atomic saves, rsync/Syncthing temps
    "~*",  # Office/Photoshop lock and temp files
    "*~",  # editor backups
    "*.tmp",
    "*.temp",
    "*.part",  # Firefox, curl, many FTP clients
    "*.partial",  # Edge/IE
    "*.crdownload",  # Chrome
    "*.download",  # Safari
    "*.filepart",  # WinSCP, common when copying exports to a NAS
    "*.!sync",  # Resilio Sync
    "Thumbs.db",
    "ehthumbs.db",
    "desktop.ini",
    "Icon\r",  # macOS custom folder icon
    "@eaDir",  # Synology thumbnail folders
    "#recycle",  # Synology recycle bin
    "#snapshot",  # Synology snapshots
    "$RECYCLE.BIN",
    "System Volume Information",
)

# A file that keeps changing this long is reported as unstable instead of waiting forever (decisions.md W-2).
DEFAULT_MAX_SETTLE_SECONDS = 600.0

# watchdog 7.1 logs an inotify queue overflow but the lost events stay lost, and the polling
# observer stops for good when the root vanishes; a periodic scan is the safety net (decisions.md W-9).
DEFAULT_RESCAN_SECONDS = 600.0

# A dead observer is rebuilt at once the first time; if it keeps dying, the wait before the next
# rebuild doubles up to the maximum (decisions.md W-13). One that stays up this long resets the backoff.
OBSERVER_RESTART_BACKOFF_SECONDS = 1.0
OBSERVER_RESTART_MAX_BACKOFF_SECONDS = 300.0
OBSERVER_HEALTHY_SECONDS = 60.0


def is_ignored(path: Path, root: Path, extra_patterns: Sequence[str] = ()) -> bool:
    """True if ``path`` is junk: its name, or any folder between ``root`` and it, matches a pattern.

    Patterns are fnmatch patterns on single names (``DEFAULT_IGNORE`` + ``extra_patterns``), matched
    case-insensitively because exports often come from Windows and macOS (``THUMBS.DB``,
    ``X.TMP``). Components of ``root`` itself are not checked (a root under ``~/.local`` is fine). A
    path outside ``root`` is ignored: it is not ours to take.
    """
    try:
        relative = Path(path).relative_to(root)
    except ValueError:
        return True
    matches = _ignore_matcher(tuple(extra_patterns))
    return any(matches(part) for part in relative.parts)


@functools.lru_cache(maxsize=32)
def _ignore_matcher(extra_patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """One compiled regex for all patterns: the scan checks every name in the folder with it."""
    combined = "|".join(
        fnmatch.translate(pattern.casefold()) for pattern in (*DEFAULT_IGNORE, *extra_patterns)
    )
    regex = re.compile(combined, re.DOTALL)
    return lambda name: regex.match(name.casefold()) is not None


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


OnSkipped = Callable[[Path, str], None]


def scan(
    root: Path,
    recursive: bool = True,
    extra_ignore: Sequence[str] = (),
    on_skipped: OnSkipped | None = None,
) -> list[Path]:
    """Every regular, non-ignored file under ``root`` now, sorted.

    Symlinks (to files or folders) are skipped, so a symlink loop cannot hang the scan. Each skipped
    entry a user might expect to be taken (a link, a pipe, a folder named like a photo) gets one
    WARNING per process and, on every scan, a call ``on_skipped(path, what)``. An unreadable
    sub-folder is logged and skipped; an unreadable ``root`` raises ``OSError``, because then nothing
    at all would be seen and the user has to know.
    """
    root = Path(root)
    is_junk = _ignore_matcher(tuple(extra_ignore))
    found: list[Path] = []
    pending_dirs: list[Path] = [root]
    while pending_dirs:
        directory = pending_dirs.pop()
        try:
            with os.scandir(directory) as entries:
                listing = list(entries)
        except OSError as exc:
            if directory == root:
                raise
            logger.warning("Cannot list {} inside the watch folder, skipping it: {}", directory, exc)
            continue
        for entry in listing:
            if is_junk(entry.name):  # its parents were checked on the way down
                continue
            path = Path(entry.path)
            what: str | None = None
            try:
                if entry.is_symlink():
                    what = SKIPPED_LINK
                elif entry.is_dir(follow_symlinks=False):
                    if recursive:
                        pending_dirs.append(path)
                    what = _folder_skipped(entry.name, recursive)
                elif entry.is_file(follow_symlinks=False):
                    found.append(path)
                else:
                    what = SKIPPED_SPECIAL
            except OSError:  # vanished between listing and the type check
                continue
            if what is not None:
                _report_skipped(path, what)
                if on_skipped is not None:
                    on_skipped(path, what)
    return sorted(found)


SKIPPED_LINK = "a symbolic link, never followed; copy the photo in"
SKIPPED_SPECIAL = "not a regular file (a pipe, socket or device); never opened"
SKIPPED_FOLDER = "a folder, not a photo"
_PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})


def _folder_skipped(name: str, recursive: bool) -> str | None:
    if Path(name).suffix.lower() not in _PHOTO_SUFFIXES:
        return None  # an ordinary sub-folder: nobody expects it to be uploaded
    inside = "the files inside it are looked at" if recursive else "skipped"
    return f"{SKIPPED_FOLDER}; {inside}"


def skipped_entry(path: Path, recursive: bool = True) -> str | None:
    """Why ``path`` is not a file stockbridge takes although a user might expect it to be (a
    symlink, a pipe/socket/device, a folder named like a photo), or None (a regular file, an
    ordinary folder, gone). One ``lstat``, never follows links."""
    try:
        mode = os.stat(path, follow_symlinks=False).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISLNK(mode):
        return SKIPPED_LINK
    if stat.S_ISDIR(mode):
        return _folder_skipped(path.name, recursive)
    if stat.S_ISREG(mode):
        return None
    return SKIPPED_SPECIAL


_reported: set[Path] = set()
_reported_lock = threading.Lock()
_MAX_REPORTED = 10_000  # a folder of a million links must not grow memory without bound


def _report_skipped(path: Path, what: str) -> None:
    """One WARNING per path per process for something a user would expect to be uploaded but that
    is skipped (decisions.md X-10: a symlink is skipped *with a log line*), not one per rescan."""
    with _reported_lock:
        if path in _reported or len(_reported) >= _MAX_REPORTED:
            return
        _reported.add(path)
    logger.warning("{}: {}", path, what)


def _forget_reported(path: Path) -> None:
    """``path`` is gone: if something is skipped under that name again, it is reported again."""
    with _reported_lock:
        _reported.discard(path)


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
    is dropped until it changes again.

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
        if now - entry.first_seen >= self.max_settle_seconds:
            del self._pending[path]
            # Remembered as done so a rescan that sees the same bytes does not start the clock again;
            # the next real change does.
            self._done[path] = entry.fingerprint
            if path not in self._reported_unstable:
                self._reported_unstable.add(path)
                self._unstable.append(path)


ObserverKind = Literal["native", "polling"]
ObserverChoice = Literal["auto", "native", "polling"]

# File systems whose changes made by other hosts never reach inotify/FSEvents (decisions.md W-12).
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb2",
        "smb3",
        "smbfs",
        "9p",
        "vboxsf",
        "afs",
        "ncpfs",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "davfs",
        "webdav",
        "afpfs",
        "sshfs",
    }
)
# FUSE subtypes that are remote. Unknown fuse.* types (e.g. a local encrypted overlay) stay native.
NETWORK_FUSE_SUBTYPES = frozenset(
    {
        "sshfs",
        "rclone",
        "s3fs",
        "gcsfuse",
        "glusterfs",
        "ceph",
        "cephfs",
        "smbnetfs",
        "davfs2",
        "curlftpfs",
        "goofys",
        "juicefs",
        "seaweedfs",
        "afpfs",
    }
)


def is_network_filesystem(fstype: str) -> bool:
    """True for file systems that need the polling observer (nfs, cifs/smb, sshfs, 9p, ...)."""
    fstype = fstype.casefold()
    if fstype in NETWORK_FILESYSTEMS:
        return True
    for prefix in ("fuse.", "fuseblk."):
        if fstype.startswith(prefix):
            return fstype.removeprefix(prefix) in NETWORK_FUSE_SUBTYPES
    return False


def _unescape_mount_field(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in mount points as octal escapes (\040).
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def parse_mount_table(text: str) -> list[tuple[str, str]]:
    """``(mount_point, fstype)`` for each line of ``/proc/self/mountinfo`` or ``/proc/mounts`` text.

    mountinfo: ``36 35 98:0 /root /mnt/point rw,noatime master:1 - ext4 /dev/sda1 rw`` (the mount
    point is field 5, the type follows the ``-`` separator after a variable number of optional
    fields). ``/proc/mounts``: ``/dev/sda1 /mnt/point ext4 rw 0 0``. Lines that fit neither are
    skipped.
    """
    entries: list[tuple[str, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if " - " in line and len(fields) >= 7:
            before, _, after = line.partition(" - ")
            head, tail = before.split(), after.split()
            if len(head) >= 5 and tail:
                entries.append((_unescape_mount_field(head[4]), tail[0]))
        elif len(fields) >= 3:
            entries.append((_unescape_mount_field(fields[1]), fields[2]))
    return entries


def parse_macos_mount_output(text: str) -> list[tuple[str, str]]:
    """``(mount_point, fstype)`` from macOS ``mount`` output:
    ``//me@nas/photos on /Volumes/photos (smbfs, nodev, nosuid, mounted by me)``."""
    entries: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = re.match(r"^.+? on (/.*) \(([^,)]+)", line)
        if match:
            entries.append((match.group(1), match.group(2).strip()))
    return entries


def filesystem_type(path: Path, mounts: Sequence[tuple[str, str]]) -> str | None:
    """The type of the mount holding ``path``: the longest mount point that is ``path`` or one of
    its parents (later lines win on ties, like stacked mounts). None if nothing matches."""
    best: tuple[int, str] | None = None
    candidates = {str(path), *(str(parent) for parent in Path(path).parents)}
    for mount_point, fstype in mounts:
        if mount_point in candidates and (best is None or len(mount_point) >= best[0]):
            best = (len(mount_point), fstype)
    return None if best is None else best[1]


def _read_mount_table() -> list[tuple[str, str]] | None:
    """This system's mount table, or None when it cannot be read cheaply."""
    if sys.platform.startswith("linux"):
        for source in ("/proc/self/mountinfo", "/proc/mounts"):
            try:
                return parse_mount_table(Path(source).read_text(encoding="utf-8", errors="replace"))
            except OSError:
                continue
        return None
    if sys.platform == "darwin":
        try:
            result = subprocess.run(["/sbin/mount"], capture_output=True, text=True, timeout=5, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return parse_macos_mount_output(result.stdout)
    return None


def choose_observer(
    choice: ObserverChoice, root: Path, mounts: Sequence[tuple[str, str]] | None = None
) -> tuple[ObserverKind, str]:
    """The observer to use for ``root`` and why, in words for the log.

    ``auto`` polls on network file systems (changes made by other hosts never produce native
    events there) and uses native events everywhere else, including when the type is unknown.
    ``mounts`` is for tests; by default the system's mount table is read.
    """
    if choice == "native":
        return "native", "observer = native in the configuration"
    if choice == "polling":
        return "polling", "observer = polling in the configuration"
    if mounts is None:
        mounts = _read_mount_table()
    fstype = None if mounts is None else filesystem_type(root, mounts)
    if fstype is None:
        return "native", "observer = auto and the file system type is unknown"
    if is_network_filesystem(fstype):
        return "polling", f"observer = auto and the folder is on a network file system ({fstype})"
    return "native", f"observer = auto and the folder is on a local file system ({fstype})"


class _TouchHandler(FileSystemEventHandler):
    """Turns watchdog events into ``touch`` calls, plus ``arrived`` for a path that appeared
    (created, or the destination of a move) and ``gone`` for one that went (deleted, or the source
    of a move), and nothing else.

    watchdog calls handlers without a try/except: one exception ends its dispatch thread and every
    later event is lost (decisions.md W-14). So every method here swallows and logs.
    """

    def __init__(
        self, touch: Callable[[Path], None], arrived: Callable[[Path], None], gone: Callable[[Path], None]
    ) -> None:
        super().__init__()
        self._touch = touch
        self._arrived = arrived
        self._gone = gone

    def _handle(
        self, event: FileSystemEvent, touched: bytes | str, arrived: bytes | str = "", gone: bytes | str = ""
    ) -> None:
        try:
            if gone:
                self._gone(Path(os.fsdecode(gone)))
            if arrived:
                # Links, pipes and folders named like photos are reported the moment they appear,
                # not at the next rescan.
                self._arrived(Path(os.fsdecode(arrived)))
            if event.is_directory:
                # Files inside a moved-in or created folder arrive as their own events (watchdog
                # generates them); a deleted folder's files are dropped by due()'s re-stat.
                return
            for raw in (touched, arrived):
                if raw:
                    self._touch(Path(os.fsdecode(raw)))
        except BaseException:  # see the class docstring: nothing may escape into watchdog
            logger.opt(exception=True).error("Watch event {} could not be recorded", event)

    def on_created(self, event: FileSystemEvent) -> None:
        self._handle(event, "", arrived=event.src_path)

    def on_modified(self, event: FileSystemEvent) -> None:
        self._handle(event, event.src_path)

    def on_closed(self, event: FileSystemEvent) -> None:
        self._handle(event, event.src_path)

    def on_deleted(self, event: FileSystemEvent) -> None:
        # The stat in touch() finds nothing and forgets the path.
        self._handle(event, event.src_path, gone=event.src_path)

    def on_moved(self, event: FileSystemEvent) -> None:
        # An atomic save is created(.x.tmp) ... moved(.x.tmp -> x.jpg) with no created(x.jpg): the
        # destination is the file to take (decisions.md W-5; perf.md §4). The source is touched so it is
        # forgotten.
        self._handle(event, event.src_path, arrived=event.dest_path, gone=event.src_path)


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
                "{} is unstable: still changing after {:g} s, so it is not uploaded. If something is"
                " still writing it, let that finish: after its next change it is taken once it stays"
                " unchanged for {:g} s. If it is only slow (a large copy to a share), raise"
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


def _observer_running(observer: BaseObserver) -> bool:
    # A polling emitter stops itself on the first OSError while the observer thread lives on.
    return observer.is_alive() and all(emitter.is_alive() for emitter in observer.emitters)


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


def _checked_root(root: Path) -> Path:
    resolved = Path(root).expanduser().resolve()
    if not resolved.is_dir():
        raise ConfigError(
            f"the watch folder {resolved} does not exist or is not a folder",
            hint="create it, or point the configuration at your export folder",
        )
    return resolved
