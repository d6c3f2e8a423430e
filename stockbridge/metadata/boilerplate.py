"""Text that cameras and software write when nobody wrote anything: not a title, not a description.

An Olympus writes "OLYMPUS DIGITAL CAMERA" into EXIF ImageDescription of every picture; Photoshop 4
wrote "File written by Adobe Photoshop® 4.0" into TIFFs. Read as a description, such text became the
title through ``title.from_description`` and went to agencies (issue 13, item 2). A title or
description field holding only one of these counts as empty (see ``fields.py``).

Matching is on the whole value, case-insensitive, after trimming and collapsing white space (NULs
included): ``exact`` entries equal the value, ``prefix`` entries start it (where a version or
symbol follows), ``pattern`` entries match all of it as a regular expression. A caption that merely
mentions a camera ("Sunset, shot on a SONY DSC-RX100") is never matched.

Each entry says who writes it and where that is known from. "seen in the wild" means exactly that:
found in files, with no document of the maker's to cite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_PHOTOPRISM = "PhotoPrism, internal/meta/sanitize.go (UnwantedDescriptions)"
_INATURALIST = "iNaturalist, app/models/local_photo.rb (BRANDED_DESCRIPTIONS)"
_PILLOW = "Pillow's test images (Tests/images/hopper.*, whose comment it is)"
_WILD = "seen in the wild"


@dataclass(frozen=True, slots=True)
class Boilerplate:
    """One placeholder text: what it is, who writes it, and where that is known from."""

    text: str
    origin: str  # who writes it, for reasons: '"SONY DSC" is a placeholder written by <origin>'
    source: str
    match: Literal["exact", "prefix", "pattern"] = "exact"


#: The list. Add to it with the origin and a source (or "seen in the wild").
BOILERPLATE: tuple[Boilerplate, ...] = (
    # Cameras: the firmware's default ImageDescription.
    Boilerplate("OLYMPUS DIGITAL CAMERA", "Olympus cameras", f"{_PHOTOPRISM}; {_INATURALIST}"),
    Boilerplate("SONY DSC", "Sony cameras", _INATURALIST),
    Boilerplate("KODAK Digital Still Camera", "Kodak cameras", _INATURALIST),
    Boilerplate("DIGITAL CAMERA", "many compact cameras", _INATURALIST),
    Boilerplate("MINOLTA DIGITAL CAMERA", "Minolta cameras", _INATURALIST),
    Boilerplate("KONICA MINOLTA DIGITAL CAMERA", "Konica Minolta cameras", _WILD),
    Boilerplate("SAMSUNG", "Samsung phones and cameras", _PHOTOPRISM),
    Boilerplate("SAMSUNG CAMERA PICTURES", "Samsung cameras", _INATURALIST),
    Boilerplate("SAMSUNG DIGITAL CAMERA", "Samsung cameras", _WILD),
    Boilerplate("<KENOX S1050 / Samsung S1050>", "the Samsung Kenox S1050", _INATURALIST),
    Boilerplate("MOULTRIE DIGITAL GAME CAMERA", "Moultrie trail cameras", _INATURALIST),
    Boilerplate("EXIF_JPEG_PICTURE", "some phones and compact cameras", _WILD),
    # The file's path on the memory card, e.g. "DCIM\100MEDIA\DJI_0001.JPG" (DJI drones): one
    # word, no spaces (PhotoPrism's rule).
    Boilerplate(r"DCIM\S*", "cameras and drones (the file's path on the card)", _PHOTOPRISM, "pattern"),
    # Huawei phones write their capture mode's code.
    *(
        Boilerplate(code, "Huawei phones (the capture mode's code)", _PHOTOPRISM)
        for code in (
            "rhdr",
            "hdrpl",
            "oznorWO",
            "frontbhdp",
            "fbt",
            "mon",
            "nor",
            "dav",
            "mde",
            "mde_soft",
            "edf",
            "btfmdn",
            "btf",
            "btfhdr",
            "frem",
            "oznor",
            "rpt",
            "burst",
            "sdr_HDRB",
            "cof",
            "qrf",
        )
    ),
    # Software.
    Boilerplate(
        "File written by Adobe Photoshop",
        "Adobe Photoshop 4 and 5",
        f'{_PILLOW}: "File written by Adobe Photoshop® 4.0", the ® in Mac Roman',
        "prefix",
    ),
    Boilerplate(
        "Created with GIMP",
        "GIMP (its default image comment)",
        f"GIMP's Preferences, Default Image, Comment; in EXIF ImageDescription: {_WILD}",
    ),
    Boilerplate("Default", "some cameras and phones", _WILD),
    Boilerplate("<Untitled>", "some software", _WILD),
    Boilerplate("Untitled", "some software", _WILD),
)


def _normal(text: str) -> str:
    return " ".join(text.replace("\0", " ").split()).casefold()


_EXACT = {_normal(entry.text): entry for entry in BOILERPLATE if entry.match == "exact"}
_PREFIXES = [(_normal(entry.text), entry) for entry in BOILERPLATE if entry.match == "prefix"]
_PATTERNS = [
    (re.compile(entry.text, re.IGNORECASE), entry) for entry in BOILERPLATE if entry.match == "pattern"
]


def boilerplate(text: str) -> Boilerplate | None:
    """The entry ``text`` is, or None when it is real text (or empty: empty is not boilerplate)."""
    normal = _normal(text)
    if not normal:
        return None
    found = _EXACT.get(normal)
    if found is not None:
        return found
    for prefix, entry in _PREFIXES:
        if normal.startswith(prefix):
            return entry
    for pattern, entry in _PATTERNS:
        if pattern.fullmatch(normal):
            return entry
    return None
