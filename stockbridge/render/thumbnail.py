"""The web page's thumbnail of a file: about 256 px, JPEG, made once, in ``<state>/thumbs/<sha256>.jpg``.

Made from a hard link to the file's private copy by :class:`ThumbnailMaker`'s child process, at idle
CPU priority and in a lull between files, never on the upload path (a JPEG is decoded at 1/2 to 1/8
of its size for it: decisions.md M-1), while ``run`` serves the page, and kept long after the copy
is gone. ``once`` makes none (it would wait for them at its end): its files show an icon. Types Pillow
cannot open (vectors, video) get none: the page shows an icon.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
import time
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


#: Its CPU priority where SCHED_IDLE is missing: below the prepare workers (5) and the uploads (0).
MAKER_NICENESS = 10
#: When the service stops, the child gets this long to finish; what is left waits for the next start.
DRAIN_SECONDS = 3.0
#: The child makes thumbnails once no new file came for this long...
QUIET_SECONDS = 1.0
#: ...or once the oldest waited this long (a steady stream of exports never pauses).
BUSY_WAIT_SECONDS = 60.0


class ThumbnailMaker:
    """Makes thumbnails in a process of its own that runs only on idle CPU, so that a file's job is
    queued and sent without waiting for its picture, and without sharing a GIL or a cycle with the
    uploads (a thread of ours at any priority still held the GIL: 100 files to a local folder took
    1.6 times as long).

    :meth:`later` only hard-links the private copy into ``thumbs/pending/`` (a link keeps the bytes
    even when the copy is released right after a fast upload) and writes one line to the child:
    well under a millisecond on the prepare path. Links left by a run that ended first are made
    when the next run starts its child. Where no hard link can be made, the file gets its thumbnail
    on the page's first request (:mod:`stockbridge.web.thumbs`), from the copy while it exists.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pending_dir = thumbs_dir(state_dir) / "pending"
        self._child: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Called with the file's sha256 when its thumbnail is made (the page's "thumb" event).
        self.on_made: Callable[[str], None] | None = None
        #: Off until :meth:`start`: only a service that serves the page makes thumbnails (``once``
        #: would wait for them at its end, and its links would wait for a page that never comes).
        self.enabled = False

    def later(self, sha256: str, source: Path, file_type: str | None) -> None:
        """Make the thumbnail of ``sha256`` from ``source`` soon, in the background. Never raises."""
        if not self.enabled or not can_have_thumb(file_type) or thumb_path(self.state_dir, sha256).is_file():
            return
        link = self.pending_dir / f"{sha256}.{file_type}"
        try:
            self.pending_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileExistsError):
                os.link(source, link)
        except OSError as exc:
            logger.debug("no thumbnail queued for {}: {}", source.name, exc)
            return
        with self._lock:
            try:
                child = self._start()
                assert child.stdin is not None
                child.stdin.write(f"{link.name}\n")
                child.stdin.flush()
            except OSError as exc:  # the child is gone: its link waits for the next start
                logger.debug("thumbnail maker unavailable: {}", exc)
                self._child = None

    def start(self) -> None:
        """Make thumbnails from now on; the child starts now, before files arrive (its interpreter
        start then costs no upload), and first makes what a run that ended first left."""
        self.enabled = True
        with self._lock, contextlib.suppress(OSError):
            self._start()

    def close(self, timeout: float = DRAIN_SECONDS) -> None:
        """Let the child finish what it was given (for at most ``timeout`` seconds), then stop it."""
        with self._lock:
            child, self._child = self._child, None
        if child is None:
            return
        with contextlib.suppress(OSError):
            assert child.stdin is not None
            child.stdin.close()
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()  # what it had not made yet is made at the next start
            child.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def _start(self) -> subprocess.Popen[str]:
        if self._child is not None and self._child.poll() is None:
            return self._child
        self._child = subprocess.Popen(
            [sys.executable, "-m", "stockbridge.render.thumbnail", str(self.state_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            close_fds=True,
        )
        self._reader = threading.Thread(
            target=self._read, args=(self._child,), name="thumbnails", daemon=True
        )
        self._reader.start()
        return self._child

    def _read(self, child: subprocess.Popen[str]) -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if (tell := self.on_made) is not None:
                with contextlib.suppress(Exception):  # the page's news is never worth a thumbnail
                    tell(line.strip())


def _make_pending(state_dir: Path, name: str) -> str | None:
    """Make the thumbnail of one pending link (``<sha256>.<type>``), remove the link; its sha256 if made."""
    link = thumbs_dir(state_dir) / "pending" / Path(name).name
    sha256, _, file_type = link.name.partition(".")
    try:
        made = thumbnail(state_dir, sha256, link, file_type)
    finally:
        link.unlink(missing_ok=True)
    return sha256 if made is not None else None


def main(argv: list[str] | None = None) -> int:
    """The maker's child: one name a line on stdin (and links left by an earlier run), each
    sha256 made printed on stdout. It runs with SCHED_IDLE (Linux), and waits for a lull: while
    files keep arriving (a backlog being prepared and sent) it makes nothing, for at most
    ``BUSY_WAIT_SECONDS``; on a 2-core machine even an idle-class process slows its sibling core."""
    state_dir = Path((argv if argv is not None else sys.argv[1:])[0])
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(AttributeError, OSError):
            os.nice(MAKER_NICENESS)
    pending = [path.name for path in sorted((thumbs_dir(state_dir) / "pending").glob("*.*"))]
    waiting_since = time.monotonic()
    buffered = b""
    stdin = sys.stdin.fileno()
    open_ = True
    while open_ or pending:
        if open_:
            ready, _, _ = select.select([stdin], [], [], QUIET_SECONDS if pending else None)
            if ready:
                chunk = os.read(stdin, 65536)
                open_ = bool(chunk)
                *lines, buffered = (buffered + chunk).split(b"\n")
                if lines and not pending:
                    waiting_since = time.monotonic()
                pending += [line.decode(errors="replace").strip() for line in lines if line.strip()]
                if open_ and time.monotonic() - waiting_since < BUSY_WAIT_SECONDS:
                    continue  # still busy: wait for a lull
        for name in pending:
            if (made := _make_pending(state_dir, name)) is not None:
                print(made, flush=True)
        pending = []
    return 0


if __name__ == "__main__":
    sys.exit(main())
