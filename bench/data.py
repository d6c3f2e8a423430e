"""Benchmark data: photo-like JPEGs with metadata (stockbridge.samples), 16-bit TIFFs, small JPEGs.

Drawing a 24 MP image costs about a second, so each set draws a few distinct bases and makes the
rest as copies whose title differs (written by ExifTool): every file has its own bytes, hence its
own content hash, which is what stockbridge's identity is.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from stockbridge.demo.samples import draw_image, make_image
from stockbridge.demo.workspace import SAMPLE_KEYWORDS
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.images import SRGB_PROFILE

KEYWORDS = tuple(SAMPLE_KEYWORDS[:25])


@dataclass(frozen=True)
class Scale:
    name: str
    big24: int  # 24 MP JPEGs (6000x4000): big-file transfers, metadata, end to end
    big45: int  # 45 MP JPEGs (8256x5504): render
    tiff16: int  # 16-bit RGB TIFFs (6000x4000): render
    small: int  # ~200 KB JPEGs: small-file transfers
    runs: int  # timed repetitions per case (after one warm-up where it is cheap)
    render_images: int  # images per render repetition
    throttled: int  # backlog for the end-to-end run against a 5 MB/s FTP server
    hundred_mp: bool  # render a 100 MP JPEG and a 100 MP 16-bit TIFF in child processes (memory target)
    restart_files: int  # small files uploaded once, then `once` again with nothing to do (restart target)
    passthrough: int = 40  # 24 MP JPEGs (of big24) in the pass-through rows (issue 14: `once` vs lftp/sftp)


SCALES = {
    "quick": Scale(
        "quick",
        big24=8,
        big45=1,
        tiff16=1,
        small=60,
        runs=3,
        render_images=3,
        throttled=6,
        hundred_mp=False,
        restart_files=500,
        passthrough=8,
    ),
    "default": Scale(
        "default",
        big24=60,
        big45=6,
        tiff16=3,
        small=300,
        runs=3,
        render_images=4,
        throttled=20,
        hundred_mp=True,
        restart_files=2_000,
    ),
    "full": Scale(
        "full",
        big24=200,
        big45=20,
        tiff16=10,
        small=500,
        runs=5,
        render_images=6,
        throttled=40,
        hundred_mp=True,
        restart_files=10_000,
    ),
}


def _tagged_copies(
    base: Path, directory: Path, stem: str, start: int, count: int, exiftool: ExifTool
) -> None:
    for index in range(start, start + count):
        target = directory / f"{stem}_{index:04d}{base.suffix}"
        shutil.copyfile(base, target)
        exiftool.write(
            target, {"XMP-dc:Title": f"Harbour at dawn, frame {index}", "IPTC:ObjectName": f"Harbour {index}"}
        )


def make_jpeg_set(
    directory: Path,
    stem: str,
    count: int,
    size: tuple[int, int],
    exiftool: ExifTool,
    bases: int = 4,
    quality: int = 95,
) -> list[Path]:
    """``count`` distinct JPEGs of ``size`` with title, description and 25 keywords."""
    directory.mkdir(parents=True, exist_ok=True)
    bases = max(1, min(bases, count))
    per_base = -(-count // bases)
    made = 0
    for seed in range(bases):
        base = directory / f".base_{stem}_{seed}.jpg"
        make_image(
            base,
            width=size[0],
            height=size[1],
            title="Harbour at dawn",
            description="Fishing boats in a calm harbour at dawn, benchmark sample.",
            keywords=KEYWORDS,
            exiftool=exiftool,
            quality=quality,
            seed=seed + 1,
        )
        this = min(per_base, count - made)
        _tagged_copies(base, directory, stem, made, this, exiftool)
        made += this
        base.unlink()
    return sorted(directory.glob(f"{stem}_*.jpg"))


def write_tiff16(path: Path, width: int, height: int, seed: int, icc: bytes | None = None) -> Path:
    """An uncompressed 16-bit RGB TIFF (each 8-bit level v becomes v*257), written by hand:
    Pillow cannot save 16-bit RGB. ``icc`` is embedded as its ICC profile (tag 34675).

    Written in bands of rows, so a 100 MP file (600 MB) never sits in memory as 16-bit pixels."""
    image = draw_image(width, height, seed=seed)
    entries = [
        (256, 4, 1, width),  # ImageWidth
        (257, 4, 1, height),  # ImageLength
        (258, 3, 3, 0),  # BitsPerSample -> offset filled below
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 2),  # Photometric: RGB
        (273, 4, 1, 0),  # StripOffsets -> filled below
        (277, 3, 1, 3),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, width * height * 6),  # StripByteCounts
        (284, 3, 1, 1),  # PlanarConfiguration: chunky
    ]
    if icc is not None:
        entries.append((34675, 7, len(icc), 0))  # InterColorProfile -> offset filled below
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    bits_offset = ifd_offset + ifd_size
    icc_offset = bits_offset + 6
    data_offset = icc_offset + (len(icc) + len(icc) % 2 if icc is not None else 0)
    header = b"II" + struct.pack("<HI", 42, ifd_offset)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            value = bits_offset
        elif tag == 273:
            value = data_offset
        elif tag == 34675:
            value = icc_offset
        if kind == 3 and count == 1:
            ifd += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            ifd += struct.pack("<HHII", tag, kind, count, value)
    ifd += struct.pack("<I", 0)
    with path.open("wb") as handle:
        handle.write(header + ifd + struct.pack("<HHH", 16, 16, 16))
        if icc is not None:
            handle.write(icc + b"\0" * (len(icc) % 2))
        band = 256
        for top in range(0, height, band):
            rgb = image.crop((0, top, width, min(height, top + band))).tobytes()
            pixels = bytearray(len(rgb) * 2)
            pixels[0::2] = rgb  # little-endian: low byte ...
            pixels[1::2] = rgb  # ... and high byte equal: v * 257
            handle.write(pixels)
    return path


@dataclass(frozen=True)
class DataSet:
    big24: list[Path]
    big45: list[Path]
    tiff16: list[Path]
    small: list[Path]
    hundred_mp: Path | None
    hundred_mp_tiff: Path | None  # 16-bit RGB with an ICC profile, 600 MB


def generate(root: Path, scale: Scale, exiftool: ExifTool) -> DataSet:
    big24 = make_jpeg_set(root / "big24", "photo24", scale.big24, (6000, 4000), exiftool)
    big45 = make_jpeg_set(root / "big45", "photo45", scale.big45, (8256, 5504), exiftool, bases=2)
    small = make_jpeg_set(root / "small", "small", scale.small, (1100, 733), exiftool, bases=4, quality=88)
    tiff_dir = root / "tiff16"
    tiff_dir.mkdir(parents=True, exist_ok=True)
    tiff16 = [
        write_tiff16(tiff_dir / f"scan16_{index:04d}.tif", 6000, 4000, seed=100 + index)
        for index in range(scale.tiff16)
    ]
    hundred = hundred_tiff = None
    if scale.hundred_mp:
        hundred = make_image(
            root / "mp100" / "huge_100mp.jpg", width=12240, height=8160, exiftool=exiftool, quality=90, seed=7
        )
        # Tagged with LittleCMS's sRGB profile so the sRGB conversion really runs through lcms
        # (a matrix/TRC profile like Adobe RGB: the same work and memory).
        hundred_tiff = write_tiff16(
            root / "mp100" / "huge_100mp16.tif", 12240, 8160, seed=8, icc=SRGB_PROFILE
        )
    return DataSet(big24, big45, tiff16, small, hundred, hundred_tiff)


def make_tiny_jpegs(directory: Path, count: int, size: int = 64) -> list[Path]:
    """``count`` distinct small JPEGs (``size``² px, ≈ 2 KB, no metadata) for backlog and restart
    rows, where the number of files matters and their pixels do not. Each file's first pixels encode
    its index, so every file has its own content hash. About 0.5 ms each."""
    directory.mkdir(parents=True, exist_ok=True)
    base = draw_image(size, size, seed=11)
    for index in range(count):
        image = base.copy()
        for bit in range(24):  # 24 pixels, black or white: the index in binary
            image.putpixel((bit, 0), (255, 255, 255) if index >> bit & 1 else (0, 0, 0))
        image.save(directory / f"tiny_{index:05d}.jpg", "JPEG", quality=90)
    return sorted(directory.glob("tiny_*.jpg"))
