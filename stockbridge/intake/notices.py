"""Files seen in the watch folder and not taken: recorded in the ledger, shown by ``status``.

A log line scrolls away; a photo that silently never goes (a symlink, a hard link, a file that never
stopped changing, a file ingest refused before any job existed) must stay visible until it is dealt
with. Each is one row in the ledger's ``notices`` table, keyed by path. It goes away when the file is
taken (``Ledger.record_asset`` clears it), when it is no longer in the folder, or when it was fixed
(the link or pipe became something else): :func:`current` checks that at ``status`` time, so a row is
right even when the service was down while the folder changed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

from stockbridge.config.models import WatchConfig
from stockbridge.intake.scan import SKIPPED_FOLDER, SKIPPED_LINK, SKIPPED_SPECIAL
from stockbridge.ledger.store import Ledger, Notice

LINK = "link"  # a symbolic link
SPECIAL = "special"  # a pipe, socket or device
FOLDER = "folder"  # a folder named like a photo
UNSTABLE = "unstable"  # still changing after max_settle_seconds
REFUSED = "refused"  # ingest refused it before any job existed (hard link, unreadable, ...)


def skipped_kind(what: str) -> str:
    """The notice kind of one of the watcher's skipped-entry reasons."""
    if what == SKIPPED_LINK:
        return LINK
    if what == SKIPPED_SPECIAL:
        return SPECIAL
    if what.startswith(SKIPPED_FOLDER):
        return FOLDER
    return REFUSED


class NoticeBoard:
    """The watcher's callbacks for ``run`` and ``once``: each records one notice in the ledger."""

    def __init__(
        self, ledger: Ledger, watch: WatchConfig, on_note: Callable[[Path], None] | None = None
    ) -> None:
        self.ledger = ledger
        self.watch = watch
        #: Told after each notice is recorded (the web page's "notice" event).
        self.on_note = on_note

    def skipped(self, path: Path, what: str) -> None:
        self.ledger.note(str(path), skipped_kind(what), what)
        if self.on_note is not None:
            self.on_note(path)

    def unstable(self, path: Path) -> None:
        self.ledger.note(
            str(path),
            UNSTABLE,
            f"still changing after {self.watch.max_settle_seconds:g} s; taken once it stays unchanged for"
            f" {self.watch.settle_seconds:g} s (only a slow copy? raise"
            " [watch] max_settle_seconds)",
        )
        if self.on_note is not None:
            self.on_note(path)

    def still_changing(self, path: Path) -> None:
        """``once``: still being written when the run ended its wait; the next run looks again."""
        self.ledger.note(str(path), UNSTABLE, "still being written when `once` ran; left for the next run")


def current(ledger: Ledger) -> list[Notice]:
    """The notices that still apply, sorted by path; the others are deleted from the ledger."""
    keep: list[Notice] = []
    stale: list[str] = []
    for notice in ledger.notices():
        if not _still_applies(notice):
            stale.append(notice.path)
        else:
            keep.append(notice)
    if stale:
        # A read-only ledger (status run by another user): showing the right list is enough.
        with contextlib.suppress(sqlite3.Error):
            ledger.forget_notices(stale)
    return keep


def _still_applies(notice: Notice) -> bool:
    try:
        mode = os.stat(notice.path, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return False  # deleted or moved away
    except (OSError, ValueError):
        return True  # cannot tell (permissions): keep showing it
    if notice.kind == LINK:
        return stat.S_ISLNK(mode)
    if notice.kind == FOLDER:
        return stat.S_ISDIR(mode)
    if notice.kind == SPECIAL:
        return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))
    # unstable, refused: a regular file that is not taken yet; taking it clears the notice.
    return stat.S_ISREG(mode)
