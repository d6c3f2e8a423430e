"""The structural check (issue 14): cut-off and damaged files are refused with a reason a person can
act on, without decoding a pixel; good files of every kind we have pass.

Pillow's own truncated test images (``Tests/images/truncated_jpeg.jpg``, ``truncated_app14.jpg``,
``truncated_image.png``, ``truncated_end_chunk.png``) are not installed with Pillow, so equivalents
are made here: a JPEG cut in its scan, a CMYK JPEG cut inside its Adobe APP14 segment, a PNG cut in
its image data, a PNG cut inside its IEND chunk. Every good file is also checked with the full
decode (``check_decodable``), so a fixture that is not really whole cannot make a test pass.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from stockbridge.assets import mediatypes
from stockbridge.assets.integrity import CHECKS, StreamCheck, check_file
from stockbridge.demo.samples import draw_image, make_image
from stockbridge.render.pixels import check_decodable

SEED = 14  # the random cut points are the same on every run


def check(data: bytes, block: int = 1024 * 1024) -> str | None:
    """The check as ingest runs it: fed the blocks of the hash pass, finished on the copy."""
    stream = StreamCheck()
    for start in range(0, len(data), block):
        stream.feed(data[start : start + block])
    return stream.finish(lambda offset, length: data[offset : offset + length])


# ----------------------------------------------------------------------------------- good files


def pillow(fmt: str, image: Image.Image | None = None, **save: object) -> bytes:
    out = io.BytesIO()
    (image if image is not None else draw_image(400, 300, seed=3)).save(out, fmt, **save)
    return out.getvalue()


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_exif_thumbnail_and_icc() -> bytes:
    """A camera-like JPEG: an APP1 EXIF segment holding a whole JPEG thumbnail (its own SOI..EOI),
    then Pillow's ICC APP2 and the image. The walk must skip the thumbnail by the APP1 length."""
    thumbnail = pillow("JPEG", draw_image(160, 120, seed=4), quality=80)
    ifd0 = struct.pack(">H", 1) + struct.pack(">HHII", 274, 3, 1, 1 << 16) + struct.pack(">I", 26)
    thumb_at = 26 + 2 + 2 * 12 + 4
    ifd1 = (
        struct.pack(">H", 2)
        + struct.pack(">HHII", 513, 4, 1, thumb_at)
        + struct.pack(">HHII", 514, 4, 1, len(thumbnail))
        + struct.pack(">I", 0)
    )
    tiff = b"MM\x00*" + struct.pack(">I", 8) + ifd0 + ifd1 + thumbnail
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    main = pillow("JPEG", quality=90, icc_profile=srgb_icc())
    return main[:2] + app1 + main[2:]


def png_with_xmp() -> bytes:
    info = PngImagePlugin.PngInfo()
    xmp = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    info.add_itxt("XML:com.adobe.xmp", xmp, lang="", tkey="")
    return pillow("PNG", pnginfo=info)


def tiff_by_hand(*, order: str = "<", big: bool = False, tiles: bool = False, kind: int = 4) -> bytes:
    """A 32×32 8-bit grey TIFF in 4 strips or 4 tiles of 16×16, classic or BigTIFF, either byte
    order, its offsets and byte counts as SHORT (3), LONG (4) or LONG8 (16); the directory at the
    end of the file, as libtiff writes it."""
    rows = [bytes((x * 8 + y) % 256 for x in range(32)) for y in range(32)]
    if tiles:
        pieces = [b"".join(rows[ty + y][tx : tx + 16] for y in range(16)) for ty in (0, 16) for tx in (0, 16)]
    else:
        pieces = [b"".join(rows[s : s + 8]) for s in range(0, 32, 8)]
    inline, offset_format = (8, "Q") if big else (4, "I")
    blob = bytearray(16 if big else 8)
    offsets = []
    for piece in pieces:
        offsets.append(len(blob))
        blob += piece
    type_format = {3: "H", 4: "I", 16: "Q"}

    def field(tag: int, type_: int, values: list[int]) -> bytes:
        data = struct.pack(f"{order}{len(values)}{type_format[type_]}", *values)
        if len(data) > inline:
            at = len(blob)
            blob.extend(data)
            data = struct.pack(order + offset_format, at)
        return struct.pack(f"{order}HH{offset_format}", tag, type_, len(values)) + data.ljust(inline, b"\0")

    entries = [
        field(256, 3, [32]),
        field(257, 3, [32]),
        field(258, 3, [8]),
        field(259, 3, [1]),
        field(262, 3, [1]),
    ]
    if tiles:
        entries += [
            field(277, 3, [1]),
            field(322, 3, [16]),
            field(323, 3, [16]),
            field(324, kind, offsets),
            field(325, kind, [256] * 4),
        ]
    else:
        entries += [
            field(273, kind, offsets),
            field(277, 3, [1]),
            field(278, 3, [8]),
            field(279, kind, [256] * 4),
        ]
    if len(blob) % 2:
        blob += b"\0"
    ifd_at = len(blob)
    count_format = "Q" if big else "H"
    blob += (
        struct.pack(order + count_format, len(entries))
        + b"".join(entries)
        + struct.pack(order + offset_format, 0)
    )
    magic = b"II" if order == "<" else b"MM"
    if big:
        blob[:16] = magic + struct.pack(order + "HHHQ", 43, 8, 0, ifd_at)
    else:
        blob[:8] = magic + struct.pack(order + "HI", 42, ifd_at)
    return bytes(blob)


@dataclass(frozen=True)
class Good:
    name: str
    make: Callable[[], bytes]
    file_type: str
    #: Pillow decodes it (checked, so a broken fixture cannot pass). Pillow 13 does not open a
    #: big-endian BigTIFF ("Missing dimensions"), which ExifTool reads whole.
    pillow_reads: bool = True


GOOD: list[Good] = [
    Good("jpeg baseline", lambda: pillow("JPEG", quality=90), "jpeg"),
    Good("jpeg progressive", lambda: pillow("JPEG", quality=90, progressive=True), "jpeg"),
    Good(
        "jpeg cmyk (Adobe APP14)",
        lambda: pillow("JPEG", draw_image(400, 300, seed=5).convert("CMYK")),
        "jpeg",
    ),
    Good(
        "jpeg grey, restart markers",
        lambda: pillow("JPEG", draw_image(400, 300).convert("L"), restart_marker_blocks=4),
        "jpeg",
    ),
    Good("jpeg with exif thumbnail and icc", jpeg_with_exif_thumbnail_and_icc, "jpeg"),
    Good(
        "jpeg with 0xff fill before a marker",
        lambda: pillow("JPEG").replace(b"\xff\xdb", b"\xff" * 5000 + b"\xdb", 1),
        "jpeg",
    ),
    Good("jpeg + zero padding", lambda: pillow("JPEG") + b"\0" * 4096, "jpeg"),
    Good("jpeg + 0xff fill", lambda: pillow("JPEG") + b"\xff" * 100, "jpeg"),
    Good(
        "jpeg + a second jpeg (MPF preview)",
        lambda: pillow("JPEG") + pillow("JPEG", draw_image(200, 150)),
        "jpeg",
    ),
    Good("jpeg + a phone's trailer", lambda: pillow("JPEG") + b"\0trailing junk" * 100, "jpeg"),
    Good("jpeg progressive + trailer", lambda: pillow("JPEG", progressive=True) + b"SEFT" * 50, "jpeg"),
    Good("png rgb", lambda: pillow("PNG"), "png"),
    Good("png 16-bit", lambda: pillow("PNG", Image.new("I;16", (300, 200), 40000)), "png"),
    Good("png rgba", lambda: pillow("PNG", draw_image(300, 200).convert("RGBA")), "png"),
    Good("png palette", lambda: pillow("PNG", draw_image(300, 200).convert("P")), "png"),
    Good("png interlaced", lambda: pillow("PNG", Image.new("RGB", (300, 200), "teal")), "png"),
    Good("png with iTXt xmp", png_with_xmp, "png"),
    Good("png + bytes after IEND", lambda: pillow("PNG") + b"\0" * 10, "png"),
    Good("tiff uncompressed", lambda: pillow("TIFF"), "tiff"),
    Good("tiff lzw", lambda: pillow("TIFF", compression="tiff_lzw"), "tiff"),
    Good("tiff deflate", lambda: pillow("TIFF", compression="tiff_adobe_deflate"), "tiff"),
    Good("tiff 16-bit", lambda: pillow("TIFF", Image.new("I;16", (300, 200), 40000)), "tiff"),
    Good("tiff 16-bit big-endian", lambda: pillow("TIFF", Image.new("I;16B", (300, 200), 40000)), "tiff"),
    Good("tiff cmyk", lambda: pillow("TIFF", draw_image(300, 200).convert("CMYK")), "tiff"),
    Good("tiff icc", lambda: pillow("TIFF", icc_profile=srgb_icc()), "tiff"),
    Good("bigtiff (Pillow)", lambda: pillow("TIFF", big_tiff=True), "tiff"),
    Good("tiff strips SHORT", lambda: tiff_by_hand(kind=3), "tiff"),
    Good("tiff strips big-endian", lambda: tiff_by_hand(order=">"), "tiff"),
    Good("tiff tiles", lambda: tiff_by_hand(tiles=True), "tiff"),
    Good(
        "bigtiff tiles LONG8 big-endian",
        lambda: tiff_by_hand(order=">", big=True, tiles=True, kind=16),
        "tiff",
        pillow_reads=False,
    ),
    Good("bigtiff strips LONG8", lambda: tiff_by_hand(big=True, kind=16), "tiff"),
]


@pytest.mark.parametrize("case", GOOD, ids=lambda case: case.name)
def test_a_whole_file_passes(case: Good, tmp_path: Path) -> None:
    data = case.make()
    path = tmp_path / f"good.{case.file_type}"
    path.write_bytes(data)
    if case.pillow_reads:
        assert check_decodable(path, case.file_type) is None, "the fixture itself must decode in full"
    for block in (1024 * 1024, 4096, 7):  # wherever the blocks of the hash pass happen to end
        assert check(data, block) is None, block
    assert check_file(path) is None


@pytest.mark.parametrize("fmt", ["jpeg", "png", "tiff"])
def test_an_export_with_real_metadata_passes(fmt: str, tmp_path: Path, exiftool: object) -> None:
    path = make_image(
        tmp_path / f"export.{fmt}",
        width=900,
        height=600,
        title="Whole",
        description="A whole export",
        keywords=("one", "two"),
        exiftool=exiftool,  # type: ignore[arg-type]
        fmt=fmt,
        seed=2,
    )
    assert check_file(path) is None
    assert check(path.read_bytes(), 4096) is None


# ------------------------------------------------------------------------------------ bad files


@dataclass(frozen=True)
class Bad:
    name: str
    make: Callable[[], bytes]
    expect: str  # a part of the reason


def cut(data: bytes, at: int) -> bytes:
    return data[:at]


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]


def inside(data: bytes, marker: bytes, extra: int) -> int:
    return data.index(marker) + extra


def tiff_loop() -> bytes:
    data = bytearray(tiff_by_hand())
    ifd_at = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[ifd_at : ifd_at + 2])[0]
    data[ifd_at + 2 + 12 * count : ifd_at + 6 + 12 * count] = struct.pack("<I", ifd_at)  # next IFD: itself
    return bytes(data)


def tiff_overlapping_directories() -> bytes:
    """Hostile: 20,000 SubIFDs two bytes apart, each claiming 65,535 entries over the same bytes
    (1.3 billion entries to read without a cap); each one's next-IFD offset reads 0."""
    subifds, claimed = 20_000, 65_535
    region = 26 + 4 * subifds  # after the header, IFD0 (one entry) and the SubIFDs array
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 330, 4, subifds, 26) + struct.pack("<I", 0)
    offsets = struct.pack(f"<{subifds}I", *(region + 2 * index for index in range(subifds)))
    body = b"\xff" * (2 + claimed * 12) + b"\x00" * (2 * subifds + 4)
    return b"II*\x00" + struct.pack("<I", 8) + ifd0 + offsets + body


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    )


BAD: list[Bad] = [
    # Pillow's truncated test images, made here
    Bad(
        "truncated_jpeg (cut in its scan)",
        lambda: cut(j := pillow("JPEG"), len(j) * 2 // 3),
        "inside its image data",
    ),
    Bad(
        "truncated_app14 (cmyk cut in Adobe APP14)",
        lambda: cut(c := pillow("JPEG", draw_image(400, 300).convert("CMYK")), inside(c, b"\xff\xee", 6)),
        "inside its header (in the APP14 segment",
    ),
    Bad(
        "truncated_image.png (cut in IDAT)",
        lambda: cut(p := pillow("PNG"), len(p) // 2),
        "inside its image data",
    ),
    Bad("truncated_end_chunk.png (cut in IEND)", lambda: pillow("PNG")[:-6], "before its PNG end chunk"),
    Bad("tiff cut in its strips", lambda: cut(t := pillow("TIFF"), len(t) - 1000), "inside its image data"),
    # the issue's own cases
    Bad("jpeg without its EOI", lambda: pillow("JPEG")[:-2], "no end-of-image marker"),
    Bad("jpeg progressive without its EOI", lambda: pillow("JPEG", progressive=True)[:-2], "no end-of-image"),
    Bad(
        "png with one flipped byte", lambda: flip(p := pillow("PNG"), len(p) // 2), "fails its checksum (CRC)"
    ),
    Bad(
        "png with a flipped byte in IHDR",
        lambda: flip(pillow("PNG"), 18),
        "IHDR at byte 8 fails its checksum",
    ),
    # more structure
    Bad(
        "jpeg cut in its EXIF thumbnail",
        lambda: cut(jpeg_with_exif_thumbnail_and_icc(), 300),
        "APP1 segment",
    ),
    Bad("jpeg of its first bytes only", lambda: pillow("JPEG")[:300], "inside its header"),
    Bad(
        "jpeg scan before a frame",
        lambda: b"\xff\xd8\xff\xda\x00\x02" + b"\0" * 50 + b"\xff\xd9",
        "before its frame",
    ),
    Bad("png signature only", lambda: pillow("PNG")[:8], "before its image data"),
    Bad(
        "png not starting with IHDR",
        lambda: pillow("PNG")[:8] + png_chunk(b"tEXt", b"a\0b"),
        "first PNG chunk",
    ),
    Bad("png too short for its size", lambda: png_claiming(20000, 10000), "cannot hold 20000×10000 pixels"),
    Bad("png bomb", lambda: png_claiming(30000, 30000), "decompression bomb"),
    Bad("tiff directory loop", tiff_loop, "in a loop"),
    Bad("tiff directories that overlap, hostile", tiff_overlapping_directories, "more than 1000000 entries"),
    Bad("tiff directory cut (at the end)", lambda: tiff_by_hand()[:-3], "inside a TIFF directory"),
    Bad("tiff tiles cut", lambda: cut(tiff_by_hand(tiles=True), 500), "TIFF directory at byte"),
    Bad(
        "bigtiff LONG8 tiles cut",
        lambda: cut(tiff_by_hand(big=True, tiles=True, kind=16), 700),
        "TIFF directory",
    ),
    Bad(
        "tiff big-endian 16-bit cut",
        lambda: cut(pillow("TIFF", Image.new("I;16B", (300, 200), 9)), 5000),
        "image data",
    ),
    Bad("bigtiff (Pillow) cut", lambda: cut(t := pillow("TIFF", big_tiff=True), len(t) // 2), "inside"),
]


@pytest.mark.parametrize("case", BAD, ids=lambda case: case.name)
def test_a_broken_file_is_refused_with_a_reason(case: Bad, tmp_path: Path) -> None:
    data = case.make()
    for block in (1024 * 1024, 4096, 7):
        reason = check(data, block)
        assert reason is not None, block
        assert case.expect in reason, reason
        if "decompression bomb" not in reason:  # the others say what happened and what to do
            assert reason.split(":")[0] in ("cut off", "damaged", "damaged or incomplete"), reason
            assert reason.endswith("; export it again"), reason
    path = tmp_path / "bad"
    path.write_bytes(data)
    assert check_file(path) == check(data)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory, exiftool: object) -> dict[str, bytes]:
    """Real exports (drawn by the demo's sampler, tagged by ExifTool) of each format."""
    folder = tmp_path_factory.mktemp("exports")
    return {
        fmt: make_image(
            folder / f"export.{fmt}",
            width=800,
            height=600,
            title="Harbour",
            keywords=("harbour", "boats"),
            exiftool=exiftool,  # type: ignore[arg-type]
            fmt=fmt,
            seed=7,
        ).read_bytes()
        for fmt in ("jpeg", "png", "tiff")
    }


@pytest.mark.parametrize("fmt", ["jpeg", "png", "tiff"])
def test_an_export_cut_at_ten_random_points_is_refused_every_time(
    fmt: str, exports: dict[str, bytes]
) -> None:
    data = exports[fmt]
    assert check(data) is None
    points = sorted(random.Random(f"{SEED}-{fmt}").sample(range(1, len(data)), 10))
    for point in points:
        reason = check(data[:point])
        assert reason is not None and reason.startswith("cut off: the file ends"), (point, reason)
        assert reason.endswith("; export it again")


def test_every_type_pillow_opens_has_a_structural_check_that_exists() -> None:
    for media in mediatypes.MEDIA_TYPES:
        if media.pillow_format is not None:
            assert media.structure in CHECKS, media.name


def test_a_type_without_a_structural_check_passes_here() -> None:
    # Not an image we take (ingest refuses it with its own reason), or a type with no check.
    assert check(b"%PDF-1.7\n" + b"x" * 10000) is None
    assert check(b"") is None
