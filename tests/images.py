"""Fixtures: generated images with real metadata, and the ExifTool session that writes them.

- ``exiftool``: one ExifTool process for the whole test session (started in a private temporary
  directory, closed at the end). Tests that need ExifTool are skipped, with the reason, when the
  program is not installed; CI installs it, so CI skips nothing.
- ``make_image``: a factory, ``make_image(name="image.jpg", **overrides) -> Path``, writing into
  the test's ``tmp_path`` with defaults a typical stock photo test needs: 1200×900 JPEG, title
  "Test image", ten keywords. Every call in a test gets the next seed unless ``seed`` is given,
  so two images of one test never share a content hash (stockbridge would take them as one).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stockbridge.demo.samples import make_image as _make_image
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.pixels import ImageProps

DEFAULT_WIDTH = 1200
DEFAULT_HEIGHT = 900
DEFAULT_TITLE = "Test image"
DEFAULT_KEYWORDS = (
    "landscape",
    "sky",
    "sunset",
    "nature",
    "colour",
    "gradient",
    "abstract",
    "background",
    "outdoor",
    "travel",
)

MakeImage = Callable[..., Path]


def require_exiftool() -> str:
    """The exiftool program's path, or skip the calling test with the reason."""
    found = shutil.which("exiftool")
    if found is None:
        pytest.skip("ExifTool is not installed (apt install libimage-exiftool-perl); CI installs it")
    return found


@pytest.fixture(scope="session")
def exiftool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExifTool]:
    require_exiftool()
    session = ExifTool(cwd=tmp_path_factory.mktemp("exiftool-cwd"))
    session.start()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def make_image(tmp_path: Path, exiftool: ExifTool) -> MakeImage:
    seeds = itertools.count()

    def make(name: str = "image.jpg", **overrides: Any) -> Path:
        options: dict[str, Any] = {
            "width": DEFAULT_WIDTH,
            "height": DEFAULT_HEIGHT,
            "title": DEFAULT_TITLE,
            "keywords": DEFAULT_KEYWORDS,
            "exiftool": exiftool,
            "seed": next(seeds),
        }
        options.update(overrides)
        path = Path(name) if Path(name).is_absolute() else tmp_path / name
        return _make_image(path, **options)

    return make


def unreadable_tiff(width: int = 64, height: int = 48) -> bytes:
    """A TIFF that ExifTool reads (size and all) but Pillow cannot open: 7 bits per grey sample,
    a layout Pillow has no mode for ("cannot identify image file '<path>'", issue 13)."""
    import struct

    data = b"\x80" * ((width * height * 7 + 7) // 8)
    entries = [  # (tag, type: 3 SHORT / 4 LONG, value)
        (256, 3, width),  # ImageWidth
        (257, 3, height),  # ImageLength
        (258, 3, 7),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # PhotometricInterpretation: black is zero
        (273, 4, 8 + 2 + 12 * 9 + 4),  # StripOffsets: right after this directory
        (277, 3, 1),  # SamplesPerPixel
        (278, 3, height),  # RowsPerStrip
        (279, 4, len(data)),  # StripByteCounts
    ]
    out = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    for tag, kind, value in entries:
        out += struct.pack(
            "<HHIHH" if kind == 3 else "<HHII", tag, kind, 1, value, *([0] if kind == 3 else [])
        )
    return out + struct.pack("<I", 0) + data


def whole_but_undecodable_tiff(path: Path, *, width: int = 800, height: int = 600, seed: int = 5) -> Path:
    """A deflate-compressed TIFF whose structure is whole (every directory, strip and value inside
    the file) but whose compressed strips are zeroed in the middle: only a full decode (or a render)
    finds it. Pillow's header read (``image_props``) still works, so planning sees its size."""
    import io

    from stockbridge.demo.samples import draw_image

    out = io.BytesIO()
    draw_image(width, height, seed=seed).save(out, "TIFF", compression="tiff_adobe_deflate")
    data = bytearray(out.getvalue())
    size = len(data)  # Pillow (libtiff) writes the directory at the end: the middle is strip data
    data[size * 2 // 5 : size * 3 // 5] = bytes(size * 3 // 5 - size * 2 // 5)
    path.write_bytes(bytes(data))
    return path


def props(width: int = 6000, height: int = 4000, **overrides: Any) -> ImageProps:
    """The pixel facts planning reads, for an 8-bit sRGB image unless ``overrides`` say otherwise."""
    values: dict[str, Any] = {
        "width": width,
        "height": height,
        "mode": "RGB",
        "bits": 8,
        "icc_description": None,
        "is_srgb": True,
        "orientation": 1,
        "has_alpha": False,
        "frames": 1,
    }
    values.update(overrides)
    return ImageProps(**values)
