"""ExifTool's answers turned into stockbridge's metadata: what an image says about itself.

The tags read and their priority (design.md "Metadata": title ← XMP-dc:Title, IPTC:ObjectName,
IPTC:Headline; description ← XMP-dc:Description, IPTC:Caption-Abstract, EXIF:ImageDescription;
keywords ← XMP-dc:Subject, IPTC:Keywords), the release fields, dimensions, and the parsing of
``exiftool -j -G1 -n`` output into :class:`ImageMetadata`. No process here: :mod:`.exiftool` runs
ExifTool and hands its output to these functions.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from stockbridge.metadata.boilerplate import boilerplate

# Read priority, first non-empty wins (design.md "Metadata"). Tags are requested and matched by
# their family-1 group (-G1), so XMP and IPTC values never shadow each other. EXIF:ImageDescription
# lives in IFD0, which is what -G1 calls it.
# An SVG's XMP (in its <metadata>) comes from ExifTool's SVG table as SvgMetadataTitle etc., in
# the XMP-dc group (Image/ExifTool/XMP.pm, SVG): read last, so they count only for an SVG.
TITLE_TAGS = ("XMP-dc:Title", "IPTC:ObjectName", "IPTC:Headline", "XMP-dc:SvgMetadataTitle")
DESCRIPTION_TAGS = (
    "XMP-dc:Description",
    "IPTC:Caption-Abstract",
    "IFD0:ImageDescription",
    "XMP-dc:SvgMetadataDescription",
)
KEYWORD_TAGS = ("XMP-dc:Subject", "IPTC:Keywords", "XMP-dc:SvgMetadataSubject")
# Releases (design.md "Metadata"). With -n, ExifTool gives the PLUS status as its code ("MR-NON",
# "MR-NAP", "MR-UMR", "MR-LMR"; "PR-..." likewise), the vocabulary URI prefix stripped
# (Image/ExifTool/PLUS.pm, ModelReleaseStatus / PropertyReleaseStatus).
MODEL_RELEASE_STATUS_TAG = "XMP-plus:ModelReleaseStatus"
MODEL_RELEASE_ID_TAG = "XMP-plus:ModelReleaseID"
PROPERTY_RELEASE_STATUS_TAG = "XMP-plus:PropertyReleaseStatus"
PROPERTY_RELEASE_ID_TAG = "XMP-plus:PropertyReleaseID"
PERSON_IN_IMAGE_TAG = "XMP-iptcExt:PersonInImage"
_RELEASE_TAGS = (
    MODEL_RELEASE_STATUS_TAG,
    MODEL_RELEASE_ID_TAG,
    PROPERTY_RELEASE_STATUS_TAG,
    PROPERTY_RELEASE_ID_TAG,
    PERSON_IN_IMAGE_TAG,
)
# Which photo a file is, across exports (design.md invariant 3): Lightroom and Photoshop write an
# XMP Media Management DocumentID, and OriginalDocumentID for the original a file was derived from
# (XMP Specification Part 2, 3.2 "xmpMM namespace"); both stay the same when the photo is exported
# again with new keywords, while the bytes and so the content hash change.
DOCUMENT_ID_TAG = "XMP-xmpMM:DocumentID"
ORIGINAL_DOCUMENT_ID_TAG = "XMP-xmpMM:OriginalDocumentID"
_DOCUMENT_TAGS = (DOCUMENT_ID_TAG, ORIGINAL_DOCUMENT_ID_TAG)
#: Extra tags a caller may read: GROUP:TAG, each part starting with a letter. The letter matters:
#: "-g1:2" or "-G1:3" would be taken by exiftool as its -g/-G option, not as a tag (decisions.md E-2).
_EXTRA_TAG = re.compile(r"[A-Za-z][A-Za-z0-9-]*:[A-Za-z][A-Za-z0-9-]*")
_SIZE_TAGS = ("File:ImageWidth", "File:ImageHeight", "Composite:ImageSize")
_STATUS_TAGS = ("File:FileType", "ExifTool:Error", "ExifTool:Warning")
# -n: machine-readable values (ImageSize as "W H"). Numbers in JSON are parsed as strings below,
# so a keyword "1990" or "1.50" comes back exactly as written.
_READ_OPTIONS = ("-j", "-G1", "-n")
_READ_ARGS = (
    *_READ_OPTIONS,
    *(
        f"-{tag}"
        for tag in (
            *TITLE_TAGS,
            *DESCRIPTION_TAGS,
            *KEYWORD_TAGS,
            *_RELEASE_TAGS,
            *_DOCUMENT_TAGS,
            *_SIZE_TAGS,
            *_STATUS_TAGS,
        )
    ),
)


@dataclass(frozen=True, slots=True)
class ImageMetadata:
    """What an image says about itself, as stockbridge's rules need it."""

    title: str | None
    description: str | None
    keywords: tuple[str, ...]
    width: int | None
    height: int | None
    file_type: str | None  # ExifTool's FileType, lower-cased: "jpeg", "png", "tiff", ...
    warnings: tuple[str, ...] = ()  # ExifTool's warnings for this file, e.g. "JPEG format error"
    # Releases, as written in the file: the PLUS status code ("MR-NON", "MR-UMR", ...) and IDs.
    model_release_status: str | None = None
    model_release_ids: tuple[str, ...] = ()
    property_release_status: str | None = None
    property_release_ids: tuple[str, ...] = ()
    persons_in_image: tuple[str, ...] = ()
    #: Title and description values passed over as camera or software boilerplate
    #: ("OLYMPUS DIGITAL CAMERA"; metadata/boilerplate.py), as written, each once.
    placeholders: tuple[str, ...] = ()
    #: XMP xmpMM:DocumentID / OriginalDocumentID ("xmp.did:...", "uuid:..."), as written.
    document_id: str | None = None
    original_document_id: str | None = None
    #: Values of the extra tags the caller asked ``read`` for, keyed by the tag name as asked
    #: (a tag the file does not have is absent). Left out of the hash so the object stays hashable.
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    @property
    def megapixels(self) -> float | None:
        if not self.width or not self.height:
            return None
        return self.width * self.height / 1_000_000


def _entries_by_source(output: str | bytes) -> dict[str, dict[str, object]]:
    """exiftool -j output, keyed by SourceFile. JSON numbers stay text ("1990", "1.50")."""
    text = output.decode("utf-8") if isinstance(output, bytes) else output
    if not text.strip():
        return {}
    entries = json.loads(text, parse_int=str, parse_float=str)
    if not isinstance(entries, list):
        raise ValueError("ExifTool's JSON answer is not a list")
    return {str(entry.get("SourceFile")): entry for entry in entries if isinstance(entry, dict)}


def _extra_args(extra: Sequence[str]) -> list[str]:
    return [f"-{tag}" for tag in extra]


def _metadata_from(entry: Mapping[str, object], extra: Sequence[str] = ()) -> ImageMetadata:
    width, height = _dimensions(entry)
    file_type = _texts(entry.get("File:FileType"))
    warning = _texts(entry.get("ExifTool:Warning"))
    placeholders: list[str] = []
    return ImageMetadata(
        title=_first_text(entry, TITLE_TAGS, placeholders),
        description=_first_text(entry, DESCRIPTION_TAGS, placeholders),
        keywords=_first_keywords(entry, KEYWORD_TAGS),
        width=width,
        height=height,
        file_type=file_type[0].lower() if file_type else None,
        warnings=tuple(warning),
        model_release_status=_first_text(entry, (MODEL_RELEASE_STATUS_TAG,)),
        model_release_ids=_clean_keywords(_texts(entry.get(MODEL_RELEASE_ID_TAG))),
        property_release_status=_first_text(entry, (PROPERTY_RELEASE_STATUS_TAG,)),
        property_release_ids=_clean_keywords(_texts(entry.get(PROPERTY_RELEASE_ID_TAG))),
        persons_in_image=_clean_keywords(_texts(entry.get(PERSON_IN_IMAGE_TAG))),
        placeholders=_clean_keywords(placeholders),
        document_id=_first_text(entry, (DOCUMENT_ID_TAG,)),
        original_document_id=_first_text(entry, (ORIGINAL_DOCUMENT_ID_TAG,)),
        extra=_extra_values(entry, extra),
    )


def _extra_values(entry: Mapping[str, object], extra: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The values of each requested tag, keyed as requested.

    -G1 names the family-1 group, so "XMP:Instructions" comes back as
    "XMP-photoshop:Instructions" and "EXIF:Artist" as "IFD0:Artist": the exact name is taken
    first, else the tag in a group of that family.
    """
    by_lower = {key.lower(): key for key in entry}
    values: dict[str, tuple[str, ...]] = {}
    for tag in extra:
        group, name = tag.lower().split(":", 1)
        key = by_lower.get(tag.lower())
        if key is None:
            key = next(
                (
                    candidate
                    for lower, candidate in by_lower.items()
                    if ":" in lower
                    and lower.split(":", 1)[1] == name
                    and _in_family(lower.split(":", 1)[0], group)
                ),
                None,
            )
        texts = tuple(text.strip() for text in _texts(entry.get(key)) if text.strip()) if key else ()
        if texts:
            values[tag] = texts
    return values


#: Family-1 groups of the EXIF family-0 group, as -G1 names them.
_EXIF_GROUPS = frozenset({"ifd0", "ifd1", "exififd", "gps", "interopifd", "subifd"})


def _in_family(group1: str, group0: str) -> bool:
    if group0 == "exif":
        return group1 in _EXIF_GROUPS
    return group1.startswith(f"{group0}-")  # XMP-dc, XMP-photoshop, ...


def _first_text(
    entry: Mapping[str, object], tags: Sequence[str], placeholders: list[str] | None = None
) -> str | None:
    """The first non-empty value of ``tags``. With ``placeholders``, camera and software boilerplate
    counts as empty: it is passed over (a later tag may hold real text) and noted there."""
    for tag in tags:
        for text in _texts(entry.get(tag)):
            text = text.strip()
            if not text:
                continue
            if placeholders is not None and boilerplate(text) is not None:
                placeholders.append(text)
                continue
            return text
    return None


def _first_keywords(entry: Mapping[str, object], tags: Sequence[str]) -> tuple[str, ...]:
    for tag in tags:
        keywords = _clean_keywords(_texts(entry.get(tag)))
        if keywords:
            return keywords
    return ()


def _clean_keywords(raw: Sequence[str]) -> tuple[str, ...]:
    """Stripped, empties dropped, duplicates (ignoring case) dropped, first spelling and order kept."""
    seen: set[str] = set()
    kept: list[str] = []
    for keyword in raw:
        keyword = keyword.strip()
        folded = keyword.casefold()
        if keyword and folded not in seen:
            seen.add(folded)
            kept.append(keyword)
    return tuple(kept)


def _texts(value: object) -> list[str]:
    """A tag value as a list of strings: ExifTool gives a single list item as a plain value."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [_decode_text(item) for item in items if item is not None]


def _decode_text(item: object) -> str:
    text = str(item)
    # ExifTool's JSON carries bytes that are not valid UTF-8 as "base64:..." (exiftool -j docs).
    if text.startswith("base64:"):
        try:
            return base64.b64decode(text[7:], validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return text
    return text


def _dimensions(entry: Mapping[str, object]) -> tuple[int | None, int | None]:
    width, height = _positive_int(entry.get("File:ImageWidth")), _positive_int(entry.get("File:ImageHeight"))
    if width and height:
        return width, height
    # PNG and TIFF keep their size in their own groups; Composite:ImageSize is "W H" under -n.
    size = str(entry.get("Composite:ImageSize") or "").replace("x", " ").split()
    if len(size) == 2:
        return _positive_int(size[0]), _positive_int(size[1])
    return None, None


def _positive_int(value: object) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None


def _first_error_line(stderr: str | bytes | None) -> str | None:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else (stderr or "")
    for line in text.splitlines():
        if line.startswith("Error:"):
            return line.removeprefix("Error:").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else None


def _warning_lines(stderr: str) -> Iterator[str]:
    for line in stderr.splitlines():
        if line.startswith("Warning:"):
            yield line.removeprefix("Warning:").strip()


#: Where each metadata field is written, so no agency reads a stale value from another group.
_FIELD_TAGS = {
    "title": ("XMP-dc:Title", "IPTC:ObjectName", "IPTC:Headline", "XMP-photoshop:Headline"),
    "description": ("XMP-dc:Description", "IPTC:Caption-Abstract", "EXIF:ImageDescription"),
    "keywords": ("XMP-dc:Subject", "IPTC:Keywords"),
}


def metadata_tags(changes: dict[str, str | tuple[str, ...]], file_type: str) -> dict[str, str | list[str]]:
    """ExifTool assignments for changed fields, every tag of the field's group (PNG: XMP only)."""
    tags: dict[str, str | list[str]] = {}
    for field_name, value in changes.items():
        for tag in _FIELD_TAGS[field_name]:
            if file_type == "png" and not tag.startswith("XMP"):
                continue  # IPTC/EXIF in PNG are non-standard; agencies read XMP there
            tags[tag] = list(value) if isinstance(value, tuple) else value
    return tags
