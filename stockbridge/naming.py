"""Remote file names: safe for every server and agency, stable, never colliding.

A source name can hold anything a file system allows: spaces, accents, CR/LF, a leading ``-``,
``../``. The remote name keeps the readable part (``Zürich Sunset.JPG`` → ``Zurich_Sunset.jpg``) and
nothing an FTP command line, an SFTP path or an agency's name rules could trip over.
"""

from __future__ import annotations

import re
import unicodedata

#: Characters kept as they are; everything else becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
#: Long enough to stay readable, short enough for every server we know of (255-byte limits).
MAX_STEM_CHARS = 100

EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif"}


def safe_stem(source_name: str) -> str:
    """The readable part of a source file name, reduced to ``[A-Za-z0-9_-]``."""
    stem = source_name.rsplit(".", 1)[0] if "." in source_name.lstrip(".") else source_name
    # Accents off ("Zürich" → "Zurich"), then anything else unsafe → "_".
    ascii_only = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE.sub("_", ascii_only).strip("_-")
    return cleaned[:MAX_STEM_CHARS].rstrip("_-")


def remote_name(source_name: str, sha256: str, file_type: str | None, *, with_suffix: bool = False) -> str:
    """``<safe stem>[_<hash8>]<ext>``; the hash suffix tells apart different files of one name."""
    extension = EXTENSIONS.get(file_type or "", "")
    stem = safe_stem(source_name) or f"image_{sha256[:12]}"
    if with_suffix:
        stem = f"{stem}_{sha256[:8]}"
    return f"{stem}{extension}"
