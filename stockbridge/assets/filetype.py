"""What a file is, from its first bytes: names and extensions lie, content does not.

An export folder holds whatever editors, sync tools and users put there: a text file named
``photo.jpg``, a RAW file, half a PDF. ``sniff`` reads at most :data:`HEAD_BYTES` of a file and
names its type from magic numbers (and, for SVG, from a light look at the XML root). It never
decodes an image: Pillow and ExifTool do that later, on files that passed this gate.

TIFF is also the container of most camera RAW formats. The ones with a cheap signature (Canon
CR2, Adobe DNG, Olympus ORF, Panasonic RW2) get their own names here; others (Nikon NEF, Sony
ARW, ...) look exactly like a TIFF in their first bytes, so ExifTool's ``FileType`` (read during
ingest) stays the authority for what a "tiff" really is.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from stockbridge.errors import InputError

#: How much of a file ``sniff`` reads. Every signature below sits in the first few bytes; the
#: extra room is for SVG files that open with a long XML comment (a licence, an editor banner)
#: and for the DNGVersion tag in a TIFF's first directory.
HEAD_BYTES = 8192
#: How far into a PDF ``sniff`` looks for Illustrator's marks: an .ai file is a PDF whose first
#: objects are the catalog and Illustrator's XMP packet (``xmlns:illustrator``), which can be
#: tens of kilobytes long when it carries a thumbnail.
AI_SNIFF_BYTES = 256 * 1024

#: What marks a PDF as an Illustrator document: the XMP namespace Illustrator writes
#: (http://ns.adobe.com/illustrator/1.0/), its private-data keys (/AIPrivateData1..n, /AIMetaData)
#: and its creator tool. A PDF without any is a document, not an asset stockbridge takes.
_AI_MARKS = (b"xmlns:illustrator=", b"/AIPrivateData", b"/AIMetaData", b"Adobe Illustrator")
#: An Illustrator file from before version 9 is PostScript: "%!PS-Adobe-x.x" (no EPSF level)
#: and Illustrator's DSC creator line.
_AI_POSTSCRIPT_CREATOR = b"%%Creator: Adobe Illustrator"

# Which of the types named here stockbridge takes is :mod:`stockbridge.assets.mediatypes`'s
# table; everything else is recorded as "not a file stockbridge can take", with its type.

# (offset, magic, type): checked in order, first match wins.
# Sources: JPEG ITU-T T.81 (SOI FFD8 + a marker); PNG ISO/IEC 15948 §5.2 signature; GIF89a spec;
# RIFF/WebP container spec (developers.google.com/speed/webp/docs/riff_container);
# DOS EPS binary header (Adobe TN 5002 §"Preview section", C5D0D3C6);
# Fujifilm RAF and Olympus ORF / Panasonic RW2 headers as listed in ExifTool's FileType table.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"\xc5\xd0\xd3\xc6", "eps"),
    (0, b"FUJIFILMCCD-RAW", "raf"),
    (0, b"IIRO\x08\x00\x00\x00", "orf"),
    (0, b"IIRS\x08\x00\x00\x00", "orf"),
    (0, b"IIU\x00", "rw2"),
)

# ISO base media file format (ISO/IEC 14496-12): "ftyp" box at offset 4, then the major brand
# and the compatible brands. HEIF brands from ISO/IEC 23008-12 Annex B, AVIF from the AV1 Image
# File Format spec §9, CR3 from Canon's "crx " brand, QuickTime "qt  " from Apple's QTFF.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash"}
)

# An SVG document: optional BOM and whitespace, then any number of XML declarations,
# processing instructions, comments and a DOCTYPE, then the root element, which must be <svg>
# (possibly namespace-prefixed, as in <svg:svg>). HTML with an inline <svg> is not an SVG file.
_XML_PROLOG_ITEM = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)", re.S | re.I)
_SVG_ROOT = re.compile(rb"\s*<(?:[A-Za-z_][\w.-]*:)?svg[\s/>]")

# An MPEG-1 system stream or MPEG-2 program stream opens with a pack header, whose start code is
# 00 00 01 BA (ISO/IEC 11172-1 §2.4.3.2, ISO/IEC 13818-1 §2.5.3.3).
_MPEG_PACK_START = b"\x00\x00\x01\xba"

# TIFF: "II*\0" (little-endian) or "MM\0*" (big-endian), BigTIFF uses 43 instead of 42
# (TIFF 6.0 §2 "Image File Header"; BigTIFF design note, www.awaresystems.be).
_TIFF_HEADERS = {b"II*\x00": "<", b"MM\x00*": ">", b"II+\x00": "<", b"MM\x00+": ">"}
_CR2_MARK = b"CR\x02\x00"  # at offset 8 of a Canon CR2 (TIFF header + "CR" + version 2.0)
_DNG_VERSION_TAG = 0xC612  # DNG 1.6 spec, "DNGVersion", required in IFD 0


def sniff(path: Path) -> str | None:
    """The type of ``path`` from its content, or None if it is nothing we recognise.

    Raises :class:`InputError` if the file cannot be opened or read (gone, a directory, no
    permission): that is a different answer from "not a type we know".
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
            found = sniff_bytes(head)
            if found == "pdf" and len(head) == HEAD_BYTES:
                # Illustrator's marks may lie past the first 8 KB: look a little further.
                found = sniff_bytes(head + handle.read(AI_SNIFF_BYTES - HEAD_BYTES))
    except OSError as exc:
        raise InputError(
            f"{path.name}: cannot read to check its type ({exc.strerror or exc})",
            hint="check that the file exists and is readable",
        ) from exc
    return found


def sniff_bytes(head: bytes) -> str | None:
    """The type named by the first bytes of a file (pass at least :data:`HEAD_BYTES` if you have them)."""
    for offset, magic, name in _MAGIC:
        if head.startswith(magic, offset):
            return name
    tiff = _sniff_tiff(head)
    if tiff:
        return tiff
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"  # Microsoft AVI RIFF File Reference: RIFF ('AVI ' ...)
    if head.startswith(_MPEG_PACK_START):
        return "mpeg"
    # PDF 2.0 (ISO 32000-2 §7.5.2) puts "%PDF-" first; readers accept it anywhere in the first
    # 1024 bytes (Adobe's implementation note 13), and so do we, since agencies' tools do.
    if b"%PDF-" in head[:1024]:
        return "ai" if any(mark in head for mark in _AI_MARKS) else "pdf"
    if head.startswith(b"%!PS-Adobe-"):
        first_line = head.split(b"\n", 1)[0].split(b"\r", 1)[0]
        # An EPS names its conformance level on the first line ("%!PS-Adobe-3.0 EPSF-3.0",
        # Adobe TN 5002 §2); plain PostScript is a print job, not an asset, unless Illustrator
        # wrote it (its native format before version 9).
        if b"EPSF-" in first_line:
            return "eps"
        return "ai" if _AI_POSTSCRIPT_CREATOR in head else None
    if _looks_like_svg(head):
        return "svg"
    return None


def _sniff_tiff(head: bytes) -> str | None:
    order = _TIFF_HEADERS.get(head[:4])
    if order is None:
        return None
    if head[8:12] == _CR2_MARK:
        return "cr2"
    if head[2:4] in (b"*\x00", b"\x00*") and _ifd0_has_tag(head, order, _DNG_VERSION_TAG):
        return "dng"
    return "tiff"


def _ifd0_has_tag(head: bytes, order: str, wanted: int) -> bool:
    """True if the first IFD (classic TIFF only) lists ``wanted``, as far as ``head`` reaches."""
    if len(head) < 8:
        return False
    (ifd_offset,) = struct.unpack(order + "I", head[4:8])
    if ifd_offset + 2 > len(head):
        return False
    (count,) = struct.unpack(order + "H", head[ifd_offset : ifd_offset + 2])
    entries = head[ifd_offset + 2 : ifd_offset + 2 + 12 * count]
    # Tags in an IFD are sorted ascending (TIFF 6.0 §2), but we do not rely on it.
    return any(
        struct.unpack(order + "H", entries[start : start + 2])[0] == wanted
        for start in range(0, len(entries) - 11, 12)
    )


def _sniff_ftyp(head: bytes) -> str | None:
    (box_size,) = struct.unpack(">I", head[:4])
    major = head[8:12]
    # Compatible brands follow the minor version, up to the end of the ftyp box.
    end = min(box_size, len(head)) if box_size >= 16 else 16
    brands = {major, *(head[start : start + 4] for start in range(16, end - 3, 4))}
    if brands & _AVIF_BRANDS:
        return "avif"
    if brands & _HEIC_BRANDS or major in (b"mif1", b"msf1"):
        return "heic"
    if major == b"crx ":
        return "cr3"
    if major == b"qt  ":
        return "mov"
    if major in _MP4_BRANDS or brands & _MP4_BRANDS:
        return "mp4"
    return None


def _looks_like_svg(head: bytes) -> bool:
    if b"\x00" in head:
        return False  # binary, or UTF-16 (which no SVG editor we know of writes)
    text = head.removeprefix(b"\xef\xbb\xbf")
    position = 0
    while match := _XML_PROLOG_ITEM.match(text, position):
        position = match.end()
    return _SVG_ROOT.match(text, position) is not None
