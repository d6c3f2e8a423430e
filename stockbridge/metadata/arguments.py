"""What stockbridge sends to ExifTool, made safe: file arguments, refused line breaks, writable tags.

pyexiftool sends arguments joined by newlines, one per line of ExifTool's ``-@`` argfile, so a
keyword ``"sunset\\n-all="`` would become a second argument that wipes the file (decisions.md E-2).
Every value and path containing CR, LF or NUL is refused here, tag names come from an allowlist, and
files are passed as absolute paths, which cannot start with ``-``. IPTC values over their byte limit
are cut at a character boundary (decisions.md E-5), because ExifTool cuts them mid-character and leaves
invalid UTF-8.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from stockbridge.errors import MetadataError

_FORBIDDEN_CHARACTERS = ("\r", "\n", "\0")

#: Tags ``write`` accepts, with whether the tag holds a list. Anything else is refused, so no
#: caller can reach ExifTool's file-moving pseudo-tags (FileName, Directory) or options (decisions.md E-2).
WRITABLE_TAGS: Mapping[str, bool] = {
    "XMP-dc:Title": False,
    "XMP-dc:Description": False,
    "XMP-dc:Subject": True,
    "XMP-dc:Creator": True,
    "XMP-dc:Rights": False,
    "XMP-photoshop:Headline": False,
    "XMP-plus:ModelReleaseStatus": False,
    "XMP-plus:ModelReleaseID": True,
    "XMP-plus:PropertyReleaseStatus": False,
    "XMP-plus:PropertyReleaseID": True,
    "XMP-iptcExt:PersonInImage": True,
    "IPTC:ObjectName": False,
    "IPTC:Headline": False,
    "IPTC:Caption-Abstract": False,
    "IPTC:Keywords": True,
    "IPTC:By-line": True,
    "IPTC:CopyrightNotice": False,
    "EXIF:ImageDescription": False,
    "EXIF:Artist": False,
    "EXIF:Copyright": False,
}
_WRITABLE_BY_LOWER = {name.lower(): name for name in WRITABLE_TAGS}

#: IPTC IIM limits in bytes, from ExifTool's IPTC tag table (html/TagNames/IPTC.html:
#: ObjectName string[0,64], Headline [0,256], Caption-Abstract [0,2000], Keywords [0,64],
#: By-line [0,32], CopyrightNotice [0,128]).
IPTC_MAX_BYTES: Mapping[str, int] = {
    "IPTC:ObjectName": 64,
    "IPTC:Headline": 256,
    "IPTC:Caption-Abstract": 2000,
    "IPTC:Keywords": 64,
    "IPTC:By-line": 32,
    "IPTC:CopyrightNotice": 128,
}


def _file_argument(path: Path) -> bytes:
    """The absolute path as exiftool receives it: bytes, so any file name the OS allows works."""
    text = os.fspath(path)
    _refuse_line_breaks(text, f"the file name {text!r}")
    return os.fsencode(Path(text).absolute())


def _refuse_line_breaks(value: str, what: str) -> None:
    if any(character in value for character in _FORBIDDEN_CHARACTERS):
        raise MetadataError(
            f"refused {what}: it contains a line break or NUL, which ExifTool would take as a new argument",
            hint="remove line breaks from titles, descriptions, keywords and file names",
        )


def _assignments(file_name: str, tags: Mapping[str, str | Sequence[str]]) -> tuple[list[str], list[str]]:
    if not tags:
        raise MetadataError(f"nothing to write into {file_name}")
    assignments: list[str] = []
    warnings: list[str] = []
    for requested, value in tags.items():
        name = _WRITABLE_BY_LOWER.get(str(requested).lower())
        if name is None:
            raise MetadataError(f"refused to write {requested!r}: not a tag stockbridge writes")
        if isinstance(value, str):
            values = [value] if value else []
        elif isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
            values = [item for item in value if item]
        else:
            raise MetadataError(f"refused to write {name}: the value must be text or a list of texts")
        if len(values) > 1 and not WRITABLE_TAGS[name]:
            raise MetadataError(f"refused to write {name}: it holds one value, got {len(values)}")
        for item in values:
            _refuse_line_breaks(item, f"the {name} value {item!r}")
        limit = IPTC_MAX_BYTES.get(name)
        if limit is not None:
            values = [_fit_bytes(item, limit, name, warnings) for item in values]
        if not values:
            assignments.append(f"-{name}=")  # deletes the tag
        assignments.extend(f"-{name}={item}" for item in values)
    return assignments, warnings


def _fit_bytes(value: str, limit: int, name: str, warnings: list[str]) -> str:
    encoded = value.encode("utf-8")
    if len(encoded) <= limit:
        return value
    # "ignore" drops the incomplete character at the cut, so the result is valid UTF-8.
    cut = encoded[:limit].decode("utf-8", "ignore")
    shown = value if len(value) <= 30 else value[:29] + "…"
    warnings.append(
        f"{name} {shown!r} is {len(encoded)} bytes, over IPTC's limit of {limit}: IPTC keeps the "
        f"first {len(cut)} characters (XMP, if written, keeps all {len(value)})"
    )
    return cut
