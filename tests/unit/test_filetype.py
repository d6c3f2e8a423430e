"""filetype.sniff: the type comes from the content, never from the name."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from PIL import Image

from stockbridge.assets import mediatypes
from stockbridge.assets.filetype import HEAD_BYTES, sniff, sniff_bytes
from stockbridge.errors import InputError


def _pillow(fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 120, 40)).save(buffer, fmt, **options)
    return buffer.getvalue()


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


def _tiff_with_tags(*tags: int, order: bytes = b"II") -> bytes:
    fmt = "<" if order == b"II" else ">"
    header = order + (b"*\x00" if order == b"II" else b"\x00*") + struct.pack(fmt + "I", 8)
    entries = b"".join(struct.pack(fmt + "HHII", tag, 3, 1, 0) for tag in tags)
    return header + struct.pack(fmt + "H", len(tags)) + entries + b"\x00\x00\x00\x00"


SVG_PLAIN = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
SVG_WITH_PROLOG = (
    b"\xef\xbb\xbf<?xml version='1.0' encoding='UTF-8'?>\n"
    b"<!-- Generator: Adobe Illustrator 27.0, SVG Export Plug-In -->\n"
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
    b'<svg version="1.1" xmlns="http://www.w3.org/2000/svg"><rect/></svg>'
)
SVG_AFTER_LONG_LICENCE = b"<!--" + b" licence text " * 300 + b"-->\n<svg:svg xmlns:svg='x'/>"

CASES = [
    # (what a user drops in the folder, its first bytes, the sniffed type)
    ("a JPEG from Pillow", _pillow("JPEG"), "jpeg"),
    ("a PNG from Pillow", _pillow("PNG"), "png"),
    ("a little-endian TIFF from Pillow", _pillow("TIFF"), "tiff"),
    ("a big-endian TIFF", b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 64, "tiff"),
    ("a BigTIFF", b"II+\x00\x08\x00\x00\x00" + b"\x00" * 64, "tiff"),
    ("a WebP from Pillow", _pillow("WEBP"), "webp"),
    ("a GIF from Pillow", _pillow("GIF"), "gif"),
    ("a HEIC from an iPhone", _ftyp(b"heic", b"mif1", b"heic"), "heic"),
    ("a generic HEIF", _ftyp(b"mif1", b"mif1"), "heic"),
    ("an AVIF", _ftyp(b"avif", b"mif1", b"miaf"), "avif"),
    ("an AVIF with a generic major brand", _ftyp(b"mif1", b"avif", b"mif1"), "avif"),
    ("an MP4 video", _ftyp(b"isom", b"isom", b"iso2", b"mp41"), "mp4"),
    ("a QuickTime movie", _ftyp(b"qt  ", b"qt  "), "mov"),
    ("an AVI", b"RIFF\x00\x10\x00\x00AVI LIST", "avi"),
    ("an MPEG program stream", b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01", "mpeg"),
    ("a WAV is no clip", b"RIFF\x00\x10\x00\x00WAVEfmt ", None),
    ("a Canon CR3 raw", _ftyp(b"crx ", b"crx ", b"isom"), "cr3"),
    ("a Canon CR2 raw", b"II*\x00\x10\x00\x00\x00CR\x02\x00" + b"\x00" * 64, "cr2"),
    ("an Adobe DNG", _tiff_with_tags(0x0100, 0x0101, 0xC612), "dng"),
    ("a big-endian DNG", _tiff_with_tags(0xC612, order=b"MM"), "dng"),
    ("a TIFF whose first directory has no DNG tag", _tiff_with_tags(0x0100, 0x0101), "tiff"),
    ("an Olympus ORF raw", b"IIRO\x08\x00\x00\x00" + b"\x00" * 64, "orf"),
    ("a Panasonic RW2 raw", b"IIU\x00\x18\x00\x00\x00" + b"\x00" * 64, "rw2"),
    ("a Fujifilm RAF raw", b"FUJIFILMCCD-RAW 0201FF383501", "raf"),
    ("a PDF", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "pdf"),
    ("a PDF behind a MacBinary header", b"\x00" * 128 + b"%PDF-1.4\n", "pdf"),
    ("an EPS from Illustrator", b"%!PS-Adobe-3.1 EPSF-3.0\n%%Creator: Adobe Illustrator", "eps"),
    ("an EPS with a DOS preview header", b"\xc5\xd0\xd3\xc6\x1e\x00\x00\x00", "eps"),
    ("an SVG without prolog", SVG_PLAIN, "svg"),
    ("an SVG with BOM, declaration, comment and DOCTYPE", SVG_WITH_PROLOG, "svg"),
    ("an SVG after a long licence comment", SVG_AFTER_LONG_LICENCE, "svg"),
    # Things that must not pass for anything:
    ("plain PostScript, which is a print job, not an EPS", b"%!PS-Adobe-3.0\n%%Pages: 1", None),
    ("an Illustrator 8 file (PostScript)", b"%!PS-Adobe-3.0 \n%%Creator: Adobe Illustrator(R) 8.0\n", "ai"),
    (
        "an Illustrator file (PDF with Illustrator's XMP)",
        b'%PDF-1.6\n1 0 obj<</Type/Metadata>>stream\n<x:xmpmeta xmlns:illustrator="http://ns.adobe.com/illustrator/1.0/">',
        "ai",
    ),
    ("an HTML page with an inline svg", b"<!DOCTYPE html><html><body><svg></svg></body></html>", None),
    ("an XML file that is not SVG", b"<?xml version='1.0'?><svgs><svg/></svgs>", None),
    ("a text file", b"hello, this is not a photo\n", None),
    ("an empty file", b"", None),
    ("random bytes", bytes(range(7, 256)) * 4, None),
    ("a ZIP archive", b"PK\x03\x04\x14\x00\x00\x00", None),
    ("a RIFF that is a WAV, not a WebP", b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
    ("an ftyp box with an unknown brand", _ftyp(b"zzzz", b"zzzz"), None),
    ("a JPEG cut after two bytes", b"\xff\xd8", None),
    ("a PNG signature with a broken line ending", b"\x89PNG\n\x1a\n\x00", None),
]


@pytest.mark.parametrize(
    ("head", "expected"), [(head, type_) for _, head, type_ in CASES], ids=[c[0] for c in CASES]
)
def test_content_decides_the_type(head: bytes, expected: str | None) -> None:
    assert sniff_bytes(head) == expected


def test_rasters_vectors_and_clips_are_taken_as_assets() -> None:
    # RAW and web formats are recognised (for a clear reason) but not taken; EPS, AI and SVG are
    # taken as vectors, MP4, MOV, AVI and MPEG as clips (issue 15).
    assert sorted(mediatypes.names("raster")) == ["jpeg", "png", "tiff"]
    assert sorted(mediatypes.names("vector")) == ["ai", "eps", "svg"]
    assert mediatypes.names("video") == ("mp4", "mov", "avi", "mpeg")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("photo.jpg", b"I am a text file with a photo's name\n", None),
        ("photo.png", _pillow("JPEG"), "jpeg"),
        ("no-extension", _pillow("PNG"), "png"),
        ("scan.JPG", _pillow("TIFF"), "tiff"),
    ],
)
def test_the_file_name_never_decides_the_type(
    tmp_path: Path, name: str, content: bytes, expected: str | None
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert sniff(path) == expected


def test_a_signature_beyond_the_sniffed_head_is_not_seen(tmp_path: Path) -> None:
    # sniff reads a bounded head, so a huge file costs the same as a small one.
    path = tmp_path / "padded.svg"
    path.write_bytes(b"<!--" + b"x" * HEAD_BYTES + b"-->" + SVG_PLAIN)
    assert sniff(path) is None


@pytest.mark.parametrize("name", ["a-folder.jpg", "missing.jpg"])
def test_a_file_that_cannot_be_read_is_an_input_error_naming_it(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    if name == "a-folder.jpg":
        target.mkdir()
    with pytest.raises(InputError) as caught:
        sniff(target)
    assert target.name in caught.value.message
