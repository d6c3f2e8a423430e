"""The web page's thumbnail of a file: about 256 px, JPEG, made once, in ``<state>/thumbs/<sha256>.jpg``.

Made by the prepare worker that takes the file, from its private copy (the worker runs at a lower
CPU priority than the uploads, and a JPEG is decoded at 1/2 to 1/8 of its size for it: decisions.md
M-1), so it is there for ``once`` and ``run`` alike and long after the copy is gone. Types Pillow
cannot open (vectors, video) get none: the page shows an icon.
"""

from __future__ import annotations

import os
import threading
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
