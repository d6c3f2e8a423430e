"""Sample images with real metadata, for ``stockbridge demo`` and the tests.

A sample looks enough like a photo to exercise everything a real export does: smooth gradients
and flat shapes (which JPEG compresses well) under per-pixel noise (which it does not), so file
sizes are realistic (~170 KB for 1 MP, ~3 MB for 24 MP at quality 90). The metadata is written by
ExifTool, as an editor's export would carry it, in XMP and IPTC.

Everything derives from ``seed``: the same arguments give the same bytes, another seed gives a
different image (and so a different content hash, which is what stockbridge's identity is).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

from stockbridge.assets import mediatypes
from stockbridge.metadata.exiftool import ExifTool

#: Peak-to-peak noise in 8-bit levels: visible grain, like ISO 800 on a small sensor.
_NOISE_LEVELS = 14


def make_image(
    path: Path,
    *,
    width: int,
    height: int,
    title: str | None = None,
    description: str | None = None,
    keywords: Sequence[str] = (),
    exiftool: ExifTool | None = None,
    fmt: str = "jpeg",
    quality: int = 90,
    seed: int = 0,
) -> Path:
    """Draw a photo-like image into ``path`` and tag it; returns ``path``.

    ``fmt`` decides the format whatever ``path``'s suffix says (tests use that for misnamed
    files). Title, description and keywords go to XMP (dc:Title, dc:Description, dc:Subject) and
    IPTC (ObjectName, Caption-Abstract, Keywords), keywords as given, in order, duplicates
    included. PNG gets XMP only: IPTC in PNG is non-standard and ExifTool warns about it. Without
    an ``exiftool`` a short-lived one is started (~0.2 s); pass one when making many images.
    """
    if fmt not in mediatypes.names(mediatypes.RASTER):
        raise ValueError(f"fmt must be one of {', '.join(mediatypes.names(mediatypes.RASTER))}, not {fmt!r}")
    if width < 1 or height < 1:
        raise ValueError("width and height must be positive")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Drawn and tagged under a hidden temporary name, then renamed: a watcher on the folder (the
    # demo's, an end-to-end test's) sees one finished file appear, never a half-written one.
    partial = path.with_name(f".{path.name}.tmp")
    try:
        image = draw_image(width, height, seed=seed)
        if fmt == "jpeg":
            image.save(partial, "JPEG", quality=quality)
        elif fmt == "png":
            image.save(partial, "PNG", compress_level=1)  # noise does not compress; level 1 is fast
        else:
            image.save(partial, "TIFF")  # uncompressed, as most editors export TIFF by default
        tags = _tags(title, description, keywords, iptc=fmt != "png")
        if tags:
            if exiftool is not None:
                exiftool.write(partial, tags)
            else:
                with ExifTool() as own:  # in its own temporary directory, never the target folder
                    own.write(partial, tags)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def draw_image(width: int, height: int, *, seed: int = 0) -> Image.Image:
    """An RGB image: three channel gradients, a few flat shapes, and grain, all from ``seed``.

    Built per channel (L images) because Pillow's 8-bit channel operations are several times
    faster than the same ones on RGB, which keeps 24 MP at about half a second.
    """
    rng = random.Random(seed)
    linear = Image.linear_gradient("L")
    ramps = [linear, linear.rotate(90), linear.rotate(180), linear.rotate(270), Image.radial_gradient("L")]
    channels = []
    for _ in range(3):
        low = rng.randrange(0, 120)
        high = rng.randrange(low + 60, 256 - _NOISE_LEVELS)
        ramp = rng.choice(ramps).point([low + level * (high - low) // 255 for level in range(256)])
        channels.append(ramp.resize((width, height), Image.Resampling.BILINEAR))
    pens = [ImageDraw.Draw(channel) for channel in channels]
    for _ in range(rng.randint(4, 8)):
        centre_x, centre_y = rng.randrange(width), rng.randrange(height)
        half_w = rng.randint(max(width // 20, 1), max(width // 3, 1))
        half_h = rng.randint(max(height // 20, 1), max(height // 3, 1))
        box = (centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h)
        ellipse = rng.random() < 0.5
        for pen in pens:
            level = rng.randrange(256 - _NOISE_LEVELS)
            (pen.ellipse if ellipse else pen.rectangle)(box, fill=level)
    grain = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    grain = grain.point([level * _NOISE_LEVELS // 255 for level in range(256)])
    return Image.merge("RGB", [ImageChops.add(channel, grain) for channel in channels])


def _tags(
    title: str | None, description: str | None, keywords: Sequence[str], *, iptc: bool
) -> dict[str, str | Sequence[str]]:
    tags: dict[str, str | Sequence[str]] = {}
    if title:
        tags["XMP-dc:Title"] = title
        if iptc:
            tags["IPTC:ObjectName"] = title
    if description:
        tags["XMP-dc:Description"] = description
        if iptc:
            tags["IPTC:Caption-Abstract"] = description
    if keywords:
        tags["XMP-dc:Subject"] = list(keywords)
        if iptc:
            tags["IPTC:Keywords"] = list(keywords)
    return tags
