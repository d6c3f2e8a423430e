"""Remote file names: safe for every server and agency, stable, never colliding.

A source name can hold anything a file system allows: spaces, accents, CR/LF, a leading ``-``,
``../``. The remote name keeps the readable part (``Zürich Sunset.JPG`` → ``Zurich_Sunset.jpg``) and
nothing an FTP command line, an SFTP path or an agency's name rules could trip over.
"""

from __future__ import annotations

import re
import unicodedata

from stockbridge.assets import mediatypes

#: Characters kept when a platform does not say otherwise; everything else becomes "_".
DEFAULT_ALLOWED = "A-Za-z0-9_-"
#: Long enough to stay readable, short enough for every server we know of (255-byte limits).
MAX_STEM_CHARS = 100
_SUFFIX_CHARS = 9  # "_" + 8 hex digits


def safe_stem(source_name: str, allowed: str = DEFAULT_ALLOWED) -> str:
    """The readable part of a source file name, reduced to the ``allowed`` characters."""
    stem = source_name.rsplit(".", 1)[0] if "." in source_name.lstrip(".") else source_name
    # Accents off ("Zürich" → "Zurich"), then anything else not allowed → "_".
    ascii_only = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    unsafe = re.compile(f"[^{allowed}]+")
    cleaned = unsafe.sub(_separator(allowed), ascii_only).strip("_-.")
    cleaned = re.sub(r"_{2,}", "_", cleaned)
    return cleaned[:MAX_STEM_CHARS].rstrip("_-.")


def _separator(allowed: str) -> str:
    """The word separator: "_" where the platform allows it, else "-", else nothing (Pond5 allows neither)."""
    return next((char for char in "_-" if re.fullmatch(f"[{allowed}]", char)), "")


def remote_name(
    source_name: str,
    sha256: str,
    file_type: str | None,
    *,
    with_suffix: bool = False,
    allowed: str = DEFAULT_ALLOWED,
    max_chars: int | None = None,
) -> str:
    """``<safe stem>[_<hash8>]<ext>``; the hash suffix tells apart different files of one name.

    ``allowed`` and ``max_chars`` are the platform's file-name rule (Shutterstock: letters, digits
    and "_"; Adobe Stock's CSV: 30 characters); ``max_chars`` counts the extension too.
    """
    extension = mediatypes.extension(file_type)
    stem = safe_stem(source_name, allowed) or f"image_{sha256[:12]}"
    room = (max_chars - len(extension)) if max_chars else MAX_STEM_CHARS
    if with_suffix:
        # The separator must itself be allowed (Pond5 allows no "_"); hex digits always are.
        stem = f"{stem[: max(1, room - _SUFFIX_CHARS)].rstrip('_-.')}{_separator(allowed)}{sha256[:8]}"
    else:
        stem = stem[:room].rstrip("_-.")
    return f"{stem}{extension}"
