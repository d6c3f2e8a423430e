"""Is a file whole? Its structure says so, without decoding a pixel (issue 14; decisions.md W-3).

A photo editor's export that was cut off (a full disk, a sync that died, a copy killed half way)
ends early. Each format says where it must end, so a cut is found from the structure alone:

- **JPEG**: the markers from SOI to the first SOS, each segment inside the file (APP segments are
  skipped by their length, so an EXIF thumbnail's own EOI is never mistaken for the image's), a
  frame header before the scan, then the EOI marker at the end of the file. Trailing zero or 0xFF
  padding is allowed. When the file does not end in EOI, the markers of the compressed data are
  walked to the image's own EOI: data after it (the preview JPEG a camera stores with MPF, a
  phone's trailer, zero padding) is allowed, because every decoder, Pillow included, reads the
  image up to that EOI and ignores the rest; refusing it would refuse photos that decode in full.
- **PNG**: the signature, every chunk's length and CRC (zlib.crc32), IHDR first, IEND last (bytes
  after IEND are ignored, as decoders do). The compressed image data must also be at least
  1/1032 of the raw pixel bytes: deflate cannot compress more than that (a 258-byte match costs at
  least 2 bits), so less is data that cannot hold the image.
- **TIFF** (classic and BigTIFF, either byte order): every IFD reachable (the IFD0 chain, SubIFDs,
  the EXIF, GPS and interoperability IFDs) lies inside the file, without loops; every value
  stored outside its entry too; and every strip or tile offset plus its byte count
  (StripOffsets/StripByteCounts, TileOffsets/TileByteCounts as SHORT, LONG or LONG8 arrays).

A header that claims more than :data:`~stockbridge.render.pixels.MAX_PIXELS` pixels is refused here
too, as the decode check refused it: nothing is decoded, so nothing else would.

:class:`StreamCheck` is fed the blocks of the hash pass (``ingest._copy_and_hash``), so the file is
read once: PNG's chunks and CRCs are checked as the blocks go by; JPEG and TIFF are checked at the
end from the first and last block, which it keeps, reading any other structure (a TIFF directory in
the middle, the rare JPEG that does not end in EOI) from the private copy just written.
:func:`check_file` does the same for a file in place (``explain``). The full decode
(``render.pixels.check_decodable``) stays available: ``[watch] verify = "decode"``.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from stockbridge.assets import mediatypes
from stockbridge.assets.filetype import HEAD_BYTES, sniff_bytes
from stockbridge.assets.video import IsoBoxes, RiffChunks
from stockbridge.render.pixels import MAX_PIXELS

#: ``read_at(offset, length)``: up to ``length`` bytes of the file from ``offset`` (fewer at its end).
ReadAt = Callable[[int, int], bytes]

_BLOCK = 1024 * 1024
#: How much of the file's end is kept from the stream: more than any padding after a JPEG's EOI
#: seen in practice (a block of the hash pass is 1 MiB, so the last one is kept whole anyway).
_TAIL = 64 * 1024


def cut_off(where: str) -> str:
    return f"cut off: the file ends {where}; export it again"


def damaged(what: str) -> str:
    return f"damaged: {what}; export it again"


class Checker(Protocol):
    """One format's check. ``feed`` gets every block in order; ``finish`` the size and a reader."""

    def feed(self, block: bytes) -> None: ...

    def finish(self, size: int, read_at: ReadAt) -> str | None: ...


class StreamCheck:
    """The structural check of one file, fed its blocks in order (the hash pass's own).

    The type is sniffed from the first bytes, exactly as :func:`filetype.sniff` does; a type without
    a structural check in the media-type registry (or not an image at all) passes here: ingest
    refuses what it cannot take, with its own reason.
    """

    def __init__(self) -> None:
        self.size = 0
        self.file_type: str | None = None
        self._checker: Checker | None = None
        self._decided = False
        self._head = b""
        self._waiting: list[bytes] = []
        self._last = b""
        self._before_last = b""
        #: What :meth:`finish` found: None when the file is whole.
        self.problem: str | None = None

    def feed(self, block: bytes) -> None:
        if not block:
            return
        self.size += len(block)
        self._before_last, self._last = self._last, block
        if not self._decided:
            self._waiting.append(block)
            if sum(len(part) for part in self._waiting) < HEAD_BYTES:
                return
            self._decide()
            return
        if self._checker is not None:
            self._checker.feed(block)

    def _decide(self) -> None:
        self._decided = True
        waiting, self._waiting = self._waiting, []
        self._head = waiting[0] if len(waiting) == 1 else b"".join(waiting)
        self.file_type = sniff_bytes(self._head[:HEAD_BYTES])
        media = mediatypes.get(self.file_type)
        factory = CHECKS.get(media.structure) if media is not None and media.structure else None
        self._checker = factory() if factory is not None else None
        if self._checker is not None:
            self._checker.feed(self._head)

    def finish(self, read_at: ReadAt) -> str | None:
        """None when the file is whole; else the reason, for a person (also kept as ``problem``).
        ``read_at`` reads the same bytes (the private copy) where the kept first and last blocks
        do not reach."""
        if not self._decided:
            self._decide()
        if self._checker is None:
            return None
        head, size = self._head, self.size
        tail = self._last if len(self._last) >= _TAIL else self._before_last[-_TAIL:] + self._last
        tail_start = size - len(tail)

        def cached(offset: int, length: int) -> bytes:
            if offset < 0 or length <= 0 or offset >= size:
                return b""
            end = min(offset + length, size)
            if end <= len(head):
                return head[offset:end]
            if offset >= tail_start:
                return tail[offset - tail_start : end - tail_start]
            return read_at(offset, end - offset)

        self.problem = self._checker.finish(size, cached)
        return self.problem


def check_file(path: Path) -> str | None:
    """The structural check of a file in place (``explain``): one pass over it, nothing written."""
    check = StreamCheck()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            check.feed(block)

        def read_at(offset: int, length: int) -> bytes:
            handle.seek(offset)
            return handle.read(length)

        return check.finish(read_at)


def _too_many_pixels(width: int, height: int) -> str | None:
    pixels = width * height
    if pixels <= MAX_PIXELS:
        return None
    return (
        f"{pixels / 1e6:.0f} MP ({width}×{height}) is more than stockbridge opens ({MAX_PIXELS / 1e6:.0f} MP):"
        " refused as a possible decompression bomb"
    )


# --------------------------------------------------------------------------------------------- JPEG
# ITU-T T.81 §B.1.1.3: markers with no segment after them (TEM, RST0-7); SOF markers (§B.1.1.3 table
# B.1: C0-CF except DHT C4, JPG C8, DAC CC).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
#: A marker inside entropy-coded data: 0xFF followed by anything but a stuffed 0x00, a restart
#: marker or more 0xFF fill (T.81 §B.1.1.5, §F.1.2.3).
_ENTROPY_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _segment_name(marker: int) -> str:
    if 0xE0 <= marker <= 0xEF:
        return f"APP{marker - 0xE0}"
    names = {0xC4: "DHT", 0xDB: "DQT", 0xDD: "DRI", 0xDA: "SOS", 0xFE: "COM", 0xCC: "DAC", 0xDC: "DNL"}
    return names.get(marker, "SOF" if marker in _SOF else f"0xFF{marker:02X}")


class JpegMarkers:
    """JPEG: the header segments to SOS, then EOI at the end (or, failing that, after the scans)."""

    def feed(self, block: bytes) -> None:
        pass  # everything it needs sits in the first and last block, or is read at the end

    def finish(self, size: int, read_at: ReadAt) -> str | None:
        if read_at(0, 2) != b"\xff\xd8":
            return damaged("it does not start with a JPEG start-of-image marker")
        position, frame = 2, False
        while True:
            pair = read_at(position, 2)
            if len(pair) < 2:
                return cut_off("inside its header, before the image data")
            if pair[0] != 0xFF:
                return damaged(f"no JPEG marker at byte {position}, where the header goes on")
            marker = pair[1]
            if marker == 0xFF:  # fill bytes before a marker (T.81 §B.1.1.2): skip the whole run
                run = read_at(position + 1, 4096)
                position += len(run) - len(run.lstrip(b"\xff"))
                continue
            if marker in _STANDALONE:
                position += 2
                continue
            if marker in (_SOI, _EOI):
                return damaged(
                    f"a {'second start' if marker == _SOI else 'end'} marker before the image data"
                )
            raw = read_at(position + 2, 2)
            if len(raw) < 2:
                return cut_off("inside its header, before the image data")
            length = int.from_bytes(raw, "big")
            end = position + 2 + length
            if length < 2:
                return damaged(f"the {_segment_name(marker)} segment at byte {position} has length {length}")
            if end > size:
                return cut_off(
                    f"inside its header (in the {_segment_name(marker)} segment at byte {position})"
                )
            if marker in _SOF:
                frame = True
                dims = read_at(position + 5, 4)
                if len(dims) == 4:
                    height, width = struct.unpack(">HH", dims)
                    if problem := _too_many_pixels(width, height):
                        return problem
            if marker == _SOS:
                if not frame:
                    return damaged("image data before its frame header (SOF)")
                break
            position = end
        tail = read_at(max(end, size - _TAIL), _TAIL)
        if tail.rstrip(b"\x00\xff").endswith(b"\xff\xd9"):
            return None  # the usual case: EOI is the last thing in the file (padding aside)
        return _scan_to_eoi(end, size, read_at)


def _scan_to_eoi(position: int, size: int, read_at: ReadAt) -> str | None:
    """Walk the markers through the compressed data (progressive scans, tables between them) to
    the image's EOI; whatever follows that EOI is not the image's and is allowed."""
    while position < size:
        block = read_at(position, _BLOCK + 1)  # one byte more: a marker across the boundary is seen
        found = _ENTROPY_MARKER.search(block)
        if found is None:
            if len(block) < 2:
                break
            position += len(block) - 1
            continue
        at, marker = position + found.start(), block[found.start() + 1]
        if marker == _EOI:
            return None
        if marker in _STANDALONE or marker == _SOI or marker in _SOF:
            position = at + 2  # not a segment between scans: keep looking for the EOI
            continue
        raw = read_at(at + 2, 2)
        if len(raw) < 2:
            break
        end = at + 2 + int.from_bytes(raw, "big")
        if end > size:
            return cut_off(f"inside its image data (in the {_segment_name(marker)} segment at byte {at})")
        position = max(end, at + 2)
    return cut_off("inside its image data (no end-of-image marker)")


# ---------------------------------------------------------------------------------------------- PNG
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# ISO/IEC 15948 §11.2.2: samples per pixel of each colour type.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: deflate's largest ratio: a 258-byte match coded in 2 bits (RFC 1951 §3.2.5); zlib adds a header.
_DEFLATE_MAX_RATIO = 1032

_SIGNATURE, _HEADER, _DATA, _SMALL_DATA, _CRC, _AFTER_END = range(6)


class PngChunks:
    """PNG: signature, every chunk's length and CRC, IHDR first, IEND last; fed as the blocks go by."""

    def __init__(self) -> None:
        self.problem: str | None = None
        self._phase, self._want = _SIGNATURE, 8
        self._small = bytearray()
        self._chunk_at = 0
        self._type = b""
        self._remaining = 0
        self._length = 0
        self._crc = 0
        self._chunks = 0
        self._idat_bytes = 0
        self._header: tuple[int, int, int, int] | None = None  # width, height, bit depth, colour type

    def feed(self, block: bytes) -> None:
        view, index, size = memoryview(block), 0, len(block)
        while index < size and self.problem is None:
            if self._phase == _AFTER_END:
                break
            if self._phase == _DATA:
                take = min(self._remaining, size - index)
                self._crc = zlib.crc32(view[index : index + take], self._crc)
                self._remaining -= take
                index += take
                if self._remaining == 0:
                    self._phase, self._want = _CRC, 4
                continue
            take = min(self._want - len(self._small), size - index)
            self._small += view[index : index + take]
            index += take
            if len(self._small) == self._want:
                record = bytes(self._small)
                self._small.clear()
                self._record(record)

    def _record(self, record: bytes) -> None:
        if self._phase == _SIGNATURE:
            if record != _PNG_SIGNATURE:
                self.problem = damaged("it does not start with the PNG signature")
            self._phase, self._want = _HEADER, 8
            self._chunk_at = 8
        elif self._phase == _HEADER:
            length, self._type = struct.unpack(">I", record[:4])[0], record[4:]
            self._length = length
            if length > 0x7FFFFFFF or not self._type.isalpha():
                self.problem = damaged(f"no PNG chunk where one goes, at byte {self._chunk_at}")
                return
            if self._chunks == 0 and self._type != b"IHDR":
                self.problem = damaged("its first PNG chunk is not the header (IHDR)")
                return
            self._chunks += 1
            self._crc = zlib.crc32(self._type)
            self._remaining = length
            if self._type == b"IDAT":
                self._idat_bytes += length
            if self._type == b"IHDR" and length == 13:
                self._phase, self._want = _SMALL_DATA, 13
            elif length:
                self._phase = _DATA
            else:
                self._phase, self._want = _CRC, 4
        elif self._phase == _SMALL_DATA:
            self._crc = zlib.crc32(record, self._crc)
            width, height, bits, colour = struct.unpack(">IIBB", record[:10])
            self._header = (width, height, bits, colour)
            self.problem = _too_many_pixels(width, height)
            self._phase, self._want = _CRC, 4
        elif self._phase == _CRC:
            if int.from_bytes(record, "big") != self._crc & 0xFFFFFFFF:
                name = self._type.decode("ascii")
                self.problem = damaged(
                    f"its PNG chunk {name} at byte {self._chunk_at} fails its checksum (CRC): a byte changed"
                )
                return
            self._chunk_at += 12 + self._length
            if self._type == b"IEND":
                self._phase = _AFTER_END
            else:
                self._phase, self._want = _HEADER, 8

    def finish(self, size: int, read_at: ReadAt) -> str | None:
        if self.problem is not None:
            return self.problem
        if self._phase == _SIGNATURE:
            return cut_off("inside the PNG signature")
        if self._phase != _AFTER_END:
            if not self._idat_bytes:
                return cut_off("before its image data (no PNG image chunk, IDAT)")
            if self._type == b"IDAT" and self._phase in (_DATA, _CRC):
                return cut_off("inside its image data (no PNG end chunk, IEND)")
            return cut_off("before its PNG end chunk (IEND)")
        if self._header is not None:
            width, height, bits, colour = self._header
            raw = width * height * _PNG_CHANNELS.get(colour, 1) * bits // 8
            if self._idat_bytes * _DEFLATE_MAX_RATIO < raw:
                return (
                    f"damaged or incomplete: {self._idat_bytes} bytes of compressed image data cannot"
                    f" hold {width}×{height} pixels; export it again"
                )
        return None


# --------------------------------------------------------------------------------------------- TIFF
# TIFF 6.0 §2 (field types 1-12), TIFF Technical Note 1 (13 IFD), BigTIFF (16 LONG8, 17 SLONG8,
# 18 IFD8): the size of one value of each type. Values of a type not listed are skipped, as the
# specification tells readers to.
_TIFF_TYPE_SIZES = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 8,
    11: 4,
    12: 8,
    13: 4,
    16: 8,
    17: 8,
    18: 8,
}
_TIFF_UNSIGNED = {1: "B", 3: "H", 4: "I", 13: "I", 16: "Q", 18: "Q"}
_WIDTH, _LENGTH = 256, 257
_STRIP_OFFSETS, _STRIP_BYTE_COUNTS, _TILE_OFFSETS, _TILE_BYTE_COUNTS = 273, 279, 324, 325
#: Tags whose values are offsets of further IFDs: SubIFDs (TIFF TN 1), the EXIF, GPS and
#: interoperability IFDs (EXIF 2.3 §4.6.3).
_IFD_POINTERS = frozenset({330, 34665, 34853, 40965})
#: More directories, entries and strips than any photo has (a few IFDs of a few dozen entries; a
#: gigapixel BigTIFF has ~15,000 tiles of 256×256): a file claiming more is treated as damaged, so
#: a hostile one (directories that overlap, each claiming 65,535 entries) costs no more than this.
_MAX_IFDS = 10_000
_MAX_ENTRIES = 1_000_000
_MAX_ARRAY = 4_000_000


class TiffIfds:
    """TIFF and BigTIFF: every reachable IFD, value, strip and tile inside the file; no loops."""

    def feed(self, block: bytes) -> None:
        pass  # directories sit anywhere: they are read at the end (from the first block if there)

    def finish(self, size: int, read_at: ReadAt) -> str | None:
        header = read_at(0, 16)
        order = {b"II": "<", b"MM": ">"}.get(header[:2])
        if order is None or len(header) < 8:
            return cut_off("inside its TIFF header") if len(header) < 8 else damaged("no TIFF header")
        magic = struct.unpack(order + "H", header[2:4])[0]
        if magic == 42:
            layout = _Layout(order, "H", "I", 12, 4)
            first = struct.unpack(order + "I", header[4:8])[0]
        elif magic == 43 and len(header) >= 16:
            layout = _Layout(order, "Q", "Q", 20, 8)
            first = struct.unpack(order + "Q", header[8:16])[0]
        else:
            return damaged("no TIFF header")
        if first == 0:
            return damaged("the TIFF has no image directory")
        seen: set[int] = set()
        pending = [first]
        entries = [0]  # read so far, over every directory
        while pending:
            offset = pending.pop()
            while offset:
                if offset in seen:
                    return damaged("its TIFF directories point at each other in a loop")
                seen.add(offset)
                if len(seen) > _MAX_IFDS:
                    return damaged(f"more than {_MAX_IFDS} TIFF directories")
                problem, offset = _check_ifd(layout, offset, size, read_at, pending, entries)
                if problem is not None:
                    return problem
        return None


class _Layout:
    """Classic TIFF or BigTIFF: how an IFD is laid out."""

    def __init__(self, order: str, count: str, offset: str, entry: int, inline: int) -> None:
        self.order, self.count, self.offset, self.entry, self.inline = order, count, offset, entry, inline
        self.count_size = struct.calcsize(count)
        self.offset_size = struct.calcsize(offset)
        # tag, type, count, value-or-offset field (kept raw: it is a value when the data fits)
        self.entry_format = f"{order}HH{offset}{inline}s"


def _check_ifd(
    layout: _Layout, offset: int, size: int, read_at: ReadAt, pending: list[int], entries: list[int]
) -> tuple[str | None, int]:
    """Check the IFD at ``offset``; returns (a problem or None, the next IFD's offset or 0)."""
    raw_count = read_at(offset, layout.count_size)
    if len(raw_count) < layout.count_size:
        return cut_off(f"before its TIFF directory at byte {offset}"), 0
    (count,) = struct.unpack(layout.order + layout.count, raw_count)
    entries[0] += count
    if entries[0] > _MAX_ENTRIES:
        return damaged(f"its TIFF directories hold more than {_MAX_ENTRIES} entries"), 0
    end = offset + layout.count_size + count * layout.entry + layout.offset_size
    if end > size:
        return cut_off(f"inside a TIFF directory (at byte {offset})"), 0
    body = read_at(offset + layout.count_size, count * layout.entry + layout.offset_size)
    arrays: dict[int, tuple[int, ...]] = {}
    for tag, kind, number, field in struct.iter_unpack(layout.entry_format, body[: count * layout.entry]):
        unit = _TIFF_TYPE_SIZES.get(kind)
        if unit is None or number == 0:
            continue
        length = unit * number
        if length <= layout.inline:
            data = field[:length]
        else:
            at = struct.unpack(layout.order + layout.offset, field[: layout.offset_size])[0]
            if at + length > size:
                return cut_off(
                    f"inside the data of TIFF tag {tag} (bytes {at}–{at + length}, the file has {size})"
                ), 0
            if tag not in _ARRAY_TAGS and tag not in _IFD_POINTERS:
                continue
            if number > _MAX_ARRAY:
                return damaged(f"its TIFF tag {tag} lists {number} values"), 0
            data = read_at(at, length)
        if (tag in _ARRAY_TAGS or tag in _IFD_POINTERS) and kind in _TIFF_UNSIGNED:
            arrays[tag] = struct.unpack(f"{layout.order}{number}{_TIFF_UNSIGNED[kind]}", data)
    (next_offset,) = struct.unpack(layout.order + layout.offset, body[count * layout.entry :])
    for tag in _IFD_POINTERS:
        pending.extend(value for value in arrays.get(tag, ()) if value)
    width, height = arrays.get(_WIDTH, (0,))[0], arrays.get(_LENGTH, (0,))[0]
    if problem := _too_many_pixels(width, height):
        return problem, 0
    for offsets_tag, counts_tag, what in (
        (_STRIP_OFFSETS, _STRIP_BYTE_COUNTS, "strip"),
        (_TILE_OFFSETS, _TILE_BYTE_COUNTS, "tile"),
    ):
        offsets, counts = arrays.get(offsets_tag, ()), arrays.get(counts_tag, ())
        if counts and len(offsets) != len(counts):
            return damaged(f"its TIFF lists {len(offsets)} {what} offsets but {len(counts)} byte counts"), 0
        if not counts:
            counts = (0,) * len(offsets)  # no byte counts (before TIFF 6.0): the offsets at least
        if offsets and max(map(int.__add__, offsets, counts)) > size:
            index = next(i for i, (o, c) in enumerate(zip(offsets, counts, strict=True)) if o + c > size)
            return cut_off(
                f"inside its image data ({what} {index + 1} of {len(offsets)} ends at byte"
                f" {offsets[index] + counts[index]}, the file has {size})"
            ), 0
    return None, next_offset


_ARRAY_TAGS = frozenset(
    {_WIDTH, _LENGTH, _STRIP_OFFSETS, _STRIP_BYTE_COUNTS, _TILE_OFFSETS, _TILE_BYTE_COUNTS}
)

#: The structural checks, by the name a :class:`~stockbridge.assets.mediatypes.MediaType` gives
#: in its ``structure`` field.
CHECKS: dict[str, Callable[[], Checker]] = {
    "jpeg-markers": JpegMarkers,
    "png-chunks": PngChunks,
    "tiff-ifds": TiffIfds,
    "isobmff-boxes": IsoBoxes,  # MP4, MOV: in assets/video.py with the rest of video
    "riff-chunks": RiffChunks,  # AVI: in assets/video.py too
}
