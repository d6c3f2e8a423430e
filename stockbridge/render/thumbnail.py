"""The web page's thumbnail of a file: about 256 px, JPEG, made once, in ``<state>/thumbs/<sha256>.jpg``.

Made by the prepare worker that takes the file, from its private copy (the worker runs at a lower
CPU priority than the uploads, and a JPEG is decoded at 1/2 to 1/8 of its size for it: decisions.md
M-1), so it is there for ``once`` and ``run`` alike and long after the copy is gone. Types Pillow
cannot open (vectors, video) get none: the page shows an icon.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from loguru import logger
from PIL import Image, ImageOps

from stockbridge.assets import mediatypes

#: The long edge, in pixels (sharp on a 2x screen at 128 CSS px).
SIZE = 256
QUALITY = 80
#: Bigger sources are not opened for a thumbnail (too slow for a picture on a page).
MAX_PIXELS = 200_000_000


def thumbs_dir(state_dir: Path) -> Path:
    return state_dir / "thumbs"


def thumb_path(state_dir: Path, sha256: str) -> Path:
    return thumbs_dir(state_dir) / f"{sha256}.jpg"


def can_have_thumb(file_type: str | None) -> bool:
    media = mediatypes.get(file_type)
    return media is not None and media.renderable


def thumbnail(state_dir: Path, sha256: str, source: Path, file_type: str | None) -> Path | None:
    """The thumbnail of ``sha256``, made from ``source`` unless it exists; None if it cannot be.
    Never raises: a page's picture is never worth a file's upload."""
    target = thumb_path(state_dir, sha256)
    if target.is_file():
        return target
    if not can_have_thumb(file_type):
        return None
    try:
        return target if make_thumb(source, target) else None
    except Exception as exc:  # an unforeseen Pillow error: no thumbnail, the file goes on
        logger.debug("no thumbnail for {}: {}", source.name, exc)
        return None


def make_thumb(source: Path, target: Path) -> bool:
    """Write the thumbnail of ``source`` to ``target`` (atomically). False if it cannot be read."""
    try:
        with Image.open(source) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                return False
            opened.draft("RGB", (SIZE, SIZE))
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((SIZE, SIZE), Image.Resampling.LANCZOS)
            if image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = target.with_name(f".{target.name}.{threading.get_ident()}.tmp")
            try:
                image.save(tmp, "JPEG", quality=QUALITY, optimize=True)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        logger.debug("no thumbnail for {}: {}", source.name, exc)
        return False
    return True


#: Its CPU priority: below the prepare workers (5) and far below the uploads (0).
MAKER_NICENESS = 10
#: At the end of a run, pending thumbnails get this long before they are left for the next start.
DRAIN_SECONDS = 20.0


class ThumbnailMaker:
    """Makes thumbnails in one low-priority background thread, so that a file's job is queued (and
    sent) without waiting for its picture.

    :meth:`later` only hard-links the private copy into ``thumbs/pending/`` (a link keeps the bytes
    even when the copy is released right after a fast upload) and queues it: well under a
    millisecond on the prepare path. Links left by a run that ended first are made at the next
    start. Where no hard link can be made, the file gets its thumbnail on the page's first request
    (:mod:`stockbridge.web.thumbs`), from the copy while it exists.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pending_dir = thumbs_dir(state_dir) / "pending"
        self._queue: queue.Queue[tuple[str, Path, str | None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Called with the file's sha256 when its thumbnail is made (the page's "thumb" event).
        self.on_made: Callable[[str], None] | None = None

    def later(self, sha256: str, source: Path, file_type: str | None) -> None:
        """Make the thumbnail of ``sha256`` from ``source`` soon, in the background. Never raises."""
        if not can_have_thumb(file_type) or thumb_path(self.state_dir, sha256).is_file():
            return
        link = self.pending_dir / f"{sha256}.{file_type}"
        try:
            self.pending_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileExistsError):
                os.link(source, link)
        except OSError as exc:
            logger.debug("no thumbnail queued for {}: {}", source.name, exc)
            return
        self._start()
        self._queue.put((sha256, link, file_type))

    def close(self, timeout: float = DRAIN_SECONDS) -> None:
        """Finish the queue (for at most ``timeout`` seconds) and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            leftovers = sorted(self.pending_dir.glob("*.*"))  # from a run that ended first
            for link in leftovers:
                sha256, _, file_type = link.name.partition(".")
                self._queue.put((sha256, link, file_type))
            self._thread = threading.Thread(target=self._work, name="thumbnails", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MAKER_NICENESS)
        while (task := self._queue.get()) is not None:
            sha256, link, file_type = task
            try:
                made = thumbnail(self.state_dir, sha256, link, file_type)
            finally:
                link.unlink(missing_ok=True)
            if made is not None and (tell := self.on_made) is not None:
                with contextlib.suppress(Exception):  # the page's news is never worth a thumbnail
                    tell(sha256)
