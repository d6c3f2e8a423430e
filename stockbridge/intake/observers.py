"""The watchdog side of watching: which observer a folder needs, and the events it delivers.

- :func:`parse_mount_table`, :func:`filesystem_type`, :func:`choose_observer`: ``observer = "auto"``
  picks polling on network file systems, where native events from other hosts never arrive
  (decisions.md W-12).
- :class:`_TouchHandler`: watchdog events turned into calls the :class:`~stockbridge.intake.watcher.Watcher`
  records; nothing may escape into watchdog (decisions.md W-14).
- :func:`_observer_running`: whether an observer and all its emitters are still alive.

Starting an observer, the fall-back to polling and the restart of a dead one stay on the
:class:`~stockbridge.intake.watcher.Watcher`: they are its state (the lock, the backoff, the rescan
that follows a restart).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from loguru import logger
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver

__all__ = [
    "NETWORK_FILESYSTEMS",
    "NETWORK_FUSE_SUBTYPES",
    "ObserverChoice",
    "ObserverKind",
    "choose_observer",
    "filesystem_type",
    "is_network_filesystem",
    "parse_macos_mount_output",
    "parse_mount_table",
]

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
        # destination is the file to take (decisions.md W-5; decisions.md M-5). The source is touched so it is
        # forgotten.
        self._handle(event, event.src_path, arrived=event.dest_path, gone=event.src_path)


def _observer_running(observer: BaseObserver) -> bool:
    # A polling emitter stops itself on the first OSError while the observer thread lives on.
    return observer.is_alive() and all(emitter.is_alive() for emitter in observer.emitters)
