"""What is in the watch folder now: junk names, the scan, and the entries never taken.

- :func:`is_ignored`, :data:`DEFAULT_IGNORE`: junk names (temporary, hidden, OS and NAS litter).
- :func:`scan`: every candidate file under the root now, without following symlinks (decisions.md
  X-10); the start-up scan and every rescan.
- :func:`skipped_entry`: why a path is never taken although it looks like a photo (a symlink, a
  pipe, a folder named ``x.jpg``); said the moment an event announces it, not at the next rescan.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from loguru import logger

from stockbridge.assets import mediatypes
from stockbridge.errors import ConfigError

__all__ = [
    "DEFAULT_IGNORE",
    "SKIPPED_FOLDER",
    "SKIPPED_LINK",
    "SKIPPED_SPECIAL",
    "OnSkipped",
    "is_ignored",
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


def _folder_skipped(name: str, recursive: bool) -> str | None:
    if mediatypes.from_filename(name) is None:
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


def _checked_root(root: Path) -> Path:
    resolved = Path(root).expanduser().resolve()
    if not resolved.is_dir():
        raise ConfigError(
            f"the watch folder {resolved} does not exist or is not a folder",
            hint="create it, or point the configuration at your export folder",
        )
    return resolved
