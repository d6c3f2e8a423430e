"""Thumbnails for the page (made at ingest: :mod:`stockbridge.render.thumbnail`).

A file taken before the page existed (or with ``[web] listen = ""``) gets its thumbnail on the
first request, from a copy still in the state folder, by the web thread at a low CPU priority; once
every platform has a file, its copies are gone, and it keeps the icon.

A thumbnail belongs to the file's record in the ledger, not to its private copy: the page shows
uploaded files too, long after the copy is gone. One whose file the ledger no longer knows (a
ledger restored from a backup, or moved aside) is removed when the service starts (:meth:`sweep`).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from stockbridge.render.thumbnail import can_have_thumb, thumb_path, thumbnail, thumbs_dir
from stockbridge.web.queries import Reader

#: Lower than the prepare workers' 5: a thumbnail made on request waits for everything else.
THUMB_NICENESS = 10
SHA256 = re.compile(r"[0-9a-f]{64}")

__all__ = ["SHA256", "Thumbnails", "can_have_thumb"]


class Thumbnails:
    """Finds (and, for older files, makes) thumbnails for one state folder. Thread-safe."""

    def __init__(self, state_dir: Path, reader: Reader) -> None:
        self.state_dir = state_dir
        self.reader = reader
        self._locks = [threading.Lock() for _ in range(16)]

    def path(self, sha256: str) -> Path | None:
        """The thumbnail of ``sha256``, made now if it can be; None if there is none."""
        if not SHA256.fullmatch(sha256):
            return None
        target = thumb_path(self.state_dir, sha256)
        if target.is_file():
            return target
        with self._locks[int(sha256[:2], 16) % len(self._locks)]:
            found = self.reader.copies(sha256)
            if found is None or not can_have_thumb(found[0]):
                return None
            _lower_priority()
            # Copies in the state folder only (the source may have become a link since, and
            # links are never followed: decisions.md X-10).
            for source in found[1]:
                if Path(source).is_file() and (
                    made := thumbnail(self.state_dir, sha256, Path(source), found[0])
                ):
                    return made
        return None

    def sweep(self, known: Iterable[str]) -> int:
        """Remove thumbnails of files the ledger does not know. Returns how many. One made in the
        last minute is left alone: its file may be being taken right now (the thumbnail is made
        just before the ledger records the file)."""
        folder = thumbs_dir(self.state_dir)
        if not folder.is_dir():
            return 0
        young = time.time() - 60
        keep = set(known)
        removed = 0
        for path in folder.glob("*.jpg"):
            with contextlib.suppress(OSError):
                if path.stem in keep or path.stat().st_mtime > young:
                    continue
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):
        if os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < THUMB_NICENESS:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), THUMB_NICENESS)
