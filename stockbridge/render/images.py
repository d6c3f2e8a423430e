"""Derived copies: what pixel work a platform's copy needs (``plan_render``), and doing it (``render``).

``plan_render`` is pure: from a file's :class:`~stockbridge.render.pixels.ImageProps` and a platform's
rules it decides whether the source can go as it is (byte-identical, never decoded), needs a
rendered JPEG (a :class:`RenderSpec`), or cannot be made to fit (reasons to reject). Two platforms
whose specs are equal share one copy: :meth:`RenderSpec.key` names it.

``render`` makes that copy with Pillow and carries the source's metadata over with ExifTool:

- only the types in :mod:`stockbridge.assets.mediatypes` are opened, each with its own Pillow plug-in
  and the pixel limit of :mod:`stockbridge.render.pixels` (decisions.md P-1);
- JPEGs are decoded at reduced scale (``draft``) when the copy is at most half as wide: 2.2× faster
  for a large reduction (decisions.md M-1);
- pixels are turned upright from the EXIF orientation and the copy says Orientation 1 (decisions.md P-4);
- colour goes through the embedded ICC profile with LittleCMS, never ``convert()`` (decisions.md P-5); Pillow
  reads Photoshop's inverted Adobe CMYK JPEGs (APP14) the right way round itself;
- 16-bit grey (``I;16``, ``I;16B``, ...) is scaled to 8 bits (value / 257, rounded), never clipped (decisions.md
  P-6); Pillow reads 16-bit RGB as its high byte, which is the same scaling to within one level;
- transparency is flattened on white; greyscale for an sRGB platform becomes three channels; Lab (a TIFF
  Photoshop can write) is converted to sRGB from LittleCMS's D50 Lab when it has no profile of its own;
- JPEG quality and chroma subsampling are explicit (4:4:4 at q ≥ 90, else 4:2:0) (decisions.md P-7), and the
  copy carries an ICC profile: the standard ICC v2 "sRGB IEC61966-2.1" after a conversion (SRGB_PROFILE),
  else the source's own;
- memory stays under 1 GB for a 100 MP source: the source is freed after the first resize pass,
  sRGB conversion is in place, the JPEG goes straight to the file, and Huffman tables are optimised
  only up to ~83 MP at 4:4:4 (see OPTIMIZE_MAX_COEFFICIENT_BYTES; larger copies: same pixels, a
  few per cent more bytes);
- a file-size cap is met by lowering the quality in steps of 5 down to 70, then taking 10 % fewer
  pixels per step (never below the platform's minimum), or fails with a RenderError with numbers.

The copy is written under a temporary name next to the target and renamed at the end, so a crash
never leaves a half copy under the final name; the source is only read.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from PIL import Image, ImageCms, ImageOps

from stockbridge.assets import mediatypes
from stockbridge.config.rules import RulesConfig
from stockbridge.errors import StockbridgeError
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.pixels import MAX_PIXELS, ImageProps, undecodable_reason
from stockbridge.rules.measures import against, limit_text

#: Part of every key: bump it when render's output for an unchanged spec changes, so cached copies
#: made the old way are not reused.
RENDER_VERSION = 2  # 2: the ICC v2 sRGB profile instead of LittleCMS's v4 one; grey → RGB for sRGB
#: The file-size ladder: quality steps down by this much ...
QUALITY_STEP = 5
#: ... to this floor (below it JPEG artefacts show at 100 % view, which agencies' reviewers check) ...
MIN_LADDER_QUALITY = 70
#: ... then each step keeps this share of the pixels, at most this many times (0.9^8 = 43 %).
PIXEL_STEP = 0.9
MAX_PIXEL_STEPS = 8
#: Huffman-table optimisation (``optimize=True``: same pixels, fewer bytes; 12 % fewer on the
#: bench's grainy 100 MP sample at q92) makes libjpeg keep every DCT coefficient of the image until
#: the end: 2 bytes per sample, 6 per pixel at 4:4:4, on top of Pillow's 4 bytes per pixel. A 100 MP
#: copy at 4:4:4 would need 600 MB for it (1 GB peak with the pixels). Above this many coefficient
#: bytes (83 MP at 4:4:4, 166 MP at 4:2:0) the copy is written without it, streaming, in a third of
#: the time.
OPTIMIZE_MAX_COEFFICIENT_BYTES = 500_000_000

#: Free memory glibc keeps at the top of each heap instead of handing it back to the kernel (see
#: keep_image_memory).
MALLOC_TOP_PAD_BYTES = 64 * 1024 * 1024
_M_TOP_PAD = -2  # glibc malloc.h

#: Modes render turns into 8-bit L, RGB, CMYK or LAB (then sRGB). Others ("F", "HSV", ...) are
#: refused, with the reason _unsupported_mode gives.
_SIXTEEN_BIT_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_SUPPORTED_MODES = (
    *("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB"),
    *_SIXTEEN_BIT_GREY,
)
#: One channel of grey: never sRGB, which is an RGB colour space; an sRGB platform gets RGB.
_GREY_MODES = ("1", "L", "LA", "La", *_SIXTEEN_BIT_GREY)
_PREMULTIPLIED = {"RGBa": "RGBA", "La": "LA"}
_ORIENTATION_TAG = 0x0112


class RenderError(StockbridgeError):
    """A derived copy could not be made (undecodable pixels, a colour transform lcms refuses, a
    size cap no quality or pixel count meets). The message gives the numbers."""


class UndecodableError(RenderError):
    """The source's pixels do not decode in full (truncated, damaged, a bomb): a fault of the
    file, not of one platform's copy. ``reason`` is what to tell a person."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """What a derived copy must be. Equal specs (of one source) mean one shared copy."""

    output_format: Literal["jpeg"]
    size: tuple[int, int] | None  # exact pixel size, upright (after orientation); None: keep
    to_srgb: bool  # convert through the embedded ICC profile to sRGB
    jpeg_quality: int
    max_file_bytes: int | None = None  # the copy, metadata included, must not be larger
    min_pixels: int | None = None  # the size ladder never goes below this (the platform's minimum)

    def key(self) -> str:
        """A short stable name for this spec (16 hex digits), e.g. for the copy's file name."""
        text = json.dumps({"render": RENDER_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class RenderPlan:
    spec: RenderSpec | None  # None: send the source as it is, byte-identical
    changes: tuple[str, ...] = ()  # what the copy changes, one line each, for people
    reject: tuple[str, ...] = ()  # why no copy can fit; non-empty means reject


@dataclass(frozen=True, slots=True)
class RenderResult:
    width: int
    height: int
    size_bytes: int
    quality: int
    notes: tuple[str, ...] = ()  # the ladder's steps and ExifTool's warnings


# ---------------------------------------------------------------------- planning


def plan_render(
    platform: str, props: ImageProps, file_type: str, size_bytes: int, rules: RulesConfig
) -> RenderPlan:
    """Which copy ``platform`` needs of a file (pure). ``min_megapixels`` is plan.py's to check.

    Copies are JPEG only. A JPEG source may always be re-encoded; a PNG or TIFF becomes a JPEG only
    when ``convert_to = "jpeg"`` (and the platform takes JPEG). Colour is converted when
    ``color_space = "sRGB"`` and the source is not sRGB (greyscale never is: such a platform gets
    three channels, as iStock's "RGB JPEG only" asks), and CMYK or Lab whenever ``convert_to`` is set.
    EXIF orientation alone never causes a copy (agencies honour it). A mode no copy can be made of
    (32-bit float or integer samples, ...) is refused with what to do, never attempted.
    """
    type_name = mediatypes.label(file_type)
    accepted = rules.formats is None or file_type in rules.formats
    may_convert = rules.convert_to == "jpeg" and (rules.formats is None or "jpeg" in rules.formats)
    deep, cmyk = props.bits > 8, props.mode == "CMYK"
    lab = props.mode == "LAB"  # like CMYK, no RGB at all: a JPEG of it must be converted
    wants_srgb = rules.color_space == "sRGB" and not props.is_srgb
    max_bytes = None if rules.max_file_mb is None else round(rules.max_file_mb * 1_000_000)
    too_big = max_bytes is not None and size_bytes > max_bytes
    max_pixels = None if rules.max_megapixels is None else round(rules.max_megapixels * 1_000_000)
    size = fit_size(props.display_size, max_pixels, rules.max_long_edge)
    convert = not accepted or (may_convert and (deep or cmyk or lab))

    if not (convert or wants_srgb or too_big or size is not None):
        return RenderPlan(None)

    rejects: list[str] = []
    if not accepted and not may_convert:
        accepted_names = mediatypes.labels(rules.formats or ())
        hint = '; set convert_to = "jpeg" to send a JPEG copy' if rules.convert_to is None else ""
        rejects.append(f"{type_name} file, {platform} takes only {accepted_names}{hint}")
    elif file_type != "jpeg" and not may_convert:
        needs = _needs(props, size, rules, wants_srgb, too_big, size_bytes)
        hint = 'set convert_to = "jpeg"' if rules.convert_to is None else f"{platform} does not take JPEG"
        rejects.append(f"{type_name} file {needs}, and stockbridge makes only JPEG copies ({hint})")
    if (unsupported := _unsupported_mode(type_name, props)) is not None:
        rejects.append(unsupported)
    to_srgb = wants_srgb or ((cmyk or lab) and may_convert)
    if to_srgb and props.icc_description is None and cmyk:
        rejects.append(
            "CMYK without an embedded ICC profile: its colours are unknown; export it with a profile, or as RGB"
        )
    if rejects:
        return RenderPlan(None, (), tuple(rejects))

    changes: list[str] = []
    if convert or to_srgb or deep or props.has_alpha or props.mode in ("P", "PA"):
        changes.append(_conversion_text(type_name, props, to_srgb, rules.jpeg_quality))
    if size is not None:
        width, height = props.display_size
        cap = _binding_caps(props.display_size, size, rules)
        changes.append(f"downscale {width}×{height} → {size[0]}×{size[1]} ({cap})")
    if too_big:
        shown, cap = against(size_bytes / 1_000_000, rules.max_file_mb or 0)
        changes.append(f"re-encode to fit {cap} MB (source {shown} MB)")
    if props.orientation != 1:
        changes.append(f"rotate upright (EXIF orientation {props.orientation})")
    if props.frames > 1:
        changes.append(f"first page only (of {props.frames})")
    min_pixels = (
        None
        if max_bytes is None or rules.min_megapixels is None
        else math.ceil(rules.min_megapixels * 1_000_000)
    )
    spec = RenderSpec(
        output_format="jpeg",
        size=size,
        to_srgb=to_srgb,
        jpeg_quality=rules.jpeg_quality,
        max_file_bytes=max_bytes,
        min_pixels=min_pixels,
    )
    return RenderPlan(spec, tuple(changes))


def fit_size(
    size: tuple[int, int], max_pixels: int | None, max_long_edge: int | None
) -> tuple[int, int] | None:
    """The largest size within both caps with ``size``'s aspect ratio; None if it fits already.

    Rounding rule: the long edge is the largest whole number for which the short edge, rounded
    half up from the exact ratio, keeps width × height ≤ max_pixels and the long edge ≤
    max_long_edge. Never larger than ``size`` (no upscaling). 8256×5504 at 45 MP → 8216×5477.
    """
    width, height = size
    long_edge, short_edge = max(width, height), min(width, height)
    limit = long_edge
    if max_long_edge is not None:
        limit = min(limit, max_long_edge)
    if max_pixels is not None and long_edge * short_edge > max_pixels:
        # The exact ratio gives isqrt(...); rounding the short edge down can leave room for up to
        # long/short more pixels on the long edge, so start above it and step down.
        ceiling = math.isqrt(max_pixels * long_edge // short_edge) + -(-long_edge // short_edge) + 1
        limit = min(limit, ceiling, long_edge - 1)
    if limit >= long_edge:
        return None
    while True:
        short = max(1, (2 * limit * short_edge + long_edge) // (2 * long_edge))
        if max_pixels is None or limit * short <= max_pixels or limit == 1:
            break
        limit -= 1
    return (limit, short) if width >= height else (short, limit)


def _unsupported_mode(type_name: str, props: ImageProps) -> str | None:
    """Why no copy can be made of pixels in ``props.mode``, with what to do; None if one can."""
    if props.mode == "F":
        # Floating-point samples (HDR, scientific) have no fixed black and white: any 8-bit
        # rendering of them is a tone-mapping choice, which is the photographer's, not ours.
        return (
            f"{type_name} file with 32-bit floating-point samples (Pillow mode F): they have no fixed "
            "white, so stockbridge cannot make an 8-bit JPEG of them without guessing; export it as "
            "8- or 16-bit from your editor"
        )
    if props.mode == "I" and props.bits > 16:
        return (
            f"{type_name} file with {props.bits}-bit integer grey samples (Pillow mode I): stockbridge "
            "scales 16-bit grey to 8 bits, but a range this wide has no fixed white; export it as 8- or "
            "16-bit greyscale"
        )
    if props.mode not in _SUPPORTED_MODES:
        return (
            f"{type_name} file in Pillow mode {props.mode}, which stockbridge cannot convert; export it "
            "as 8- or 16-bit RGB or greyscale"
        )
    return None


def _binding_caps(display: tuple[int, int], size: tuple[int, int], rules: RulesConfig) -> str:
    caps = []
    if rules.max_megapixels is not None and display[0] * display[1] > rules.max_megapixels * 1_000_000:
        caps.append(f"{limit_text(rules.max_megapixels)} MP cap")
    if rules.max_long_edge is not None and max(display) > rules.max_long_edge:
        caps.append(f"{rules.max_long_edge} px long edge cap")
    return ", ".join(caps)


def _needs(
    props: ImageProps,
    size: tuple[int, int] | None,
    rules: RulesConfig,
    wants_srgb: bool,
    too_big: bool,
    size_bytes: int,
) -> str:
    needs = []
    if size is not None:
        width, height = props.display_size
        needs.append(
            f"must be downscaled ({width}×{height} is over the {_binding_caps((width, height), size, rules)})"
        )
    if wants_srgb:
        needs.append(f"is {props.icc_description or _colour_name(props.mode)}, not sRGB")
    if too_big:
        shown, cap = against(size_bytes / 1_000_000, rules.max_file_mb or 0)
        needs.append(f"is {shown} MB, over {cap} MB")
    return " and ".join(needs)


def _colour_name(mode: str) -> str:
    if mode in _GREY_MODES:
        return "greyscale"
    return {"LAB": "Lab"}.get(mode, mode)


def _conversion_text(type_name: str, props: ImageProps, to_srgb: bool, quality: int) -> str:
    source = [type_name]
    if props.bits > 8:
        source.append(f"{props.bits}-bit")
    if props.mode in _GREY_MODES:
        source.append("greyscale")
    if props.icc_description is not None and not props.is_srgb:
        source.append(props.icc_description)
    elif props.mode in ("CMYK", "LAB"):
        source.append(_colour_name(props.mode))
    if props.mode in ("P", "PA"):
        source.append("palette")
    if props.has_alpha:
        source.append("with transparency (flattened on white)")
    return f"convert {' '.join(source)} → JPEG{' sRGB' if to_srgb else ''} q{quality}"


# ---------------------------------------------------------------------- rendering


def render(source: Path, target: Path, spec: RenderSpec, exiftool: ExifTool) -> RenderResult:
    """Write the copy ``spec`` describes of ``source`` to ``target``, with ``source``'s metadata.

    ``target`` must be in the state directory (it is replaced); ``source`` is only read. Raises
    RenderError when the pixels cannot be read or converted or the size cap cannot be met, and
    MetadataError when ExifTool cannot carry the metadata over.
    """
    if spec.output_format != "jpeg":
        raise RenderError(f"stockbridge makes only JPEG copies, not {spec.output_format}")
    if Path(os.path.abspath(source)) == Path(os.path.abspath(target)):
        raise RenderError(f"refused to render {source.name} onto itself")
    image, icc_profile = _prepare(source, spec)
    notes: list[str] = []
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".render.jpg")
    os.close(handle)
    temp = Path(temp_name)
    try:
        result = _write_within_cap(source, temp, image, icc_profile, spec, exiftool, notes)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return result


def _prepare(source: Path, spec: RenderSpec) -> tuple[Image.Image, bytes | None]:
    """The upright 8-bit L, RGB or CMYK pixels at ``spec.size``, and the ICC profile they are in."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source, formats=list(mediatypes.pillow_formats().values()))
            with image:
                if image.width * image.height > MAX_PIXELS:
                    raise RenderError(
                        f"{image.width * image.height / 1e6:.0f} MP is more than stockbridge opens "
                        f"({MAX_PIXELS / 1e6:.0f} MP)"
                    )
                orientation = image.getexif().get(_ORIENTATION_TAG, 1)
                if spec.size is not None and image.format == "JPEG":
                    stored = spec.size[::-1] if orientation in (5, 6, 7, 8) else spec.size
                    # DCT scaling by 1/2, 1/4 or 1/8, never below the final size (decisions.md M-1).
                    image.draft(image.mode, (stored[0], stored[1]))
                icc_profile = image.info.get("icc_profile") or None
                image.load()
                ImageOps.exif_transpose(image, in_place=True)  # in place: no 135 MB copy at 45 MP
                upright: Image.Image = image
                if image.mode in ("RGBX", "YCbCr"):
                    upright = image.convert("RGB")  # a layout, not a colour space: no profile involved
                elif image.mode == "1":
                    upright = image.convert("L")
    except RenderError:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise UndecodableError(f"cannot decode {source.name}: {exc}", undecodable_reason(exc)) from exc

    del image  # the decoded source lives on only as ``upright``, so the resize below can free it
    pixels = _to_eight_bits(upright, source.name)
    del upright
    if spec.size is not None and pixels.size != spec.size:
        # Pillow's own two passes (horizontal, then vertical), one call each: the same pixels as
        # one resize(), but the full-size source is freed after the first pass instead of living
        # alongside the intermediate and the output (100 MP → 45 MP: 640 MB peak instead of 850).
        if pixels.width != spec.size[0]:
            pixels = pixels.resize((spec.size[0], pixels.height), Image.Resampling.LANCZOS)
        if pixels.height != spec.size[1]:
            pixels = pixels.resize(spec.size, Image.Resampling.LANCZOS)
    if spec.to_srgb or pixels.mode == "LAB":  # a JPEG cannot hold Lab
        return _to_srgb(pixels, icc_profile, source.name), SRGB_PROFILE
    if icc_profile is None and pixels.mode == "RGB":
        icc_profile = SRGB_PROFILE  # untagged RGB is taken as sRGB: say so in the copy
    return pixels, icc_profile


def _to_eight_bits(image: Image.Image, name: str) -> Image.Image:
    """8-bit L, RGB, CMYK or LAB: 16-bit grey scaled, palettes expanded, transparency flattened on white."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_GREY:
        if mode not in ("I;16", "I"):
            # point() takes only I;16 and I ("point operation not supported for this mode" for a
            # big-endian TIFF, issue 13), and convert("I;16") clips like convert("L"): reread the
            # same bytes in their byte order instead, 2 bytes a pixel as the source.
            image = Image.frombytes("I;16", image.size, image.tobytes(), "raw", mode)
        # convert("L") would clip everything above 255 to white (Pillow #1108); scale instead.
        scaled = image.point(lambda value: value / 257 + 0.5)  # rounded; stays 16-bit for I;16
        return scaled if scaled.mode == "L" else scaled.convert("L")  # now all ≤ 255: nothing clips
    if mode in ("P", "PA"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    elif mode in ("RGB", "L") and image.has_transparency_data:
        image = image.convert("RGBA" if mode == "RGB" else "LA")
    if image.mode in ("RGBA", "RGBa", "LA", "La"):
        if image.mode in _PREMULTIPLIED:
            image = image.convert(_PREMULTIPLIED[image.mode])
        base = "RGB" if image.mode == "RGBA" else "L"
        flat = Image.new(base, image.size, (255, 255, 255) if base == "RGB" else 255)
        flat.paste(image.convert(base), mask=image.getchannel("A"))
        return flat
    if image.mode not in ("L", "RGB", "CMYK", "LAB"):
        raise RenderError(
            f"cannot convert {name}: Pillow mode {image.mode} is not supported",
            hint="export it as 8- or 16-bit RGB or greyscale",
        )
    return image


#: The sRGB profile converted copies carry and are converted into: ArgyllCMS's public-domain ICC v2
#: "sRGB IEC61966-2.1" (render/profiles/README: where from, licence, why this one). LittleCMS's own
#: "sRGB built-in" is ICC v4, which older readers and agencies' checkers do not take (issue 13); its
#: colorants and curve are the same, so the pixels are too.
SRGB_PROFILE = (resources.files("stockbridge.render") / "profiles" / "sRGB.icm").read_bytes()
_SRGB = ImageCms.ImageCmsProfile(io.BytesIO(SRGB_PROFILE))


def _to_srgb(image: Image.Image, icc_profile: bytes | None, name: str) -> Image.Image:
    if icc_profile is None and image.mode != "LAB":
        if image.mode == "CMYK":
            raise RenderError(f"cannot convert {name} to sRGB: CMYK without an embedded ICC profile")
        # No profile means sRGB already; grey becomes RGB by copying the channel, which is exact.
        return image.convert("RGB") if image.mode == "L" else image
    # RGB → RGB is converted in place (``image`` is render's own): no second full-size copy.
    in_place = image.mode == "RGB"
    try:
        if icc_profile is not None:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        else:  # Lab without a profile: D50, the ICC's own Lab (what Photoshop writes)
            profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
        converted = ImageCms.profileToProfile(
            image,
            profile,
            _SRGB,
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode="RGB",
            inPlace=in_place,
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        raise RenderError(
            f"cannot convert {name} to sRGB through its ICC profile ({exc})",
            hint="export it as sRGB from your editor",
        ) from exc
    if in_place:
        return image
    assert converted is not None
    return converted


def _optimize(image: Image.Image, subsampling: str) -> bool:
    """Whether to optimise the Huffman tables: only while libjpeg's whole-image coefficient buffer
    stays within OPTIMIZE_MAX_COEFFICIENT_BYTES (see there)."""
    samples = float(len(image.getbands()))  # L 1, RGB 3, CMYK 4
    if image.mode == "RGB" and subsampling == "4:2:0":
        samples = 1.5  # Y in full, Cb and Cr at a quarter each
    return image.width * image.height * samples * 2 <= OPTIMIZE_MAX_COEFFICIENT_BYTES


def _encode(image: Image.Image, quality: int, icc_profile: bytes | None, target: Path) -> int:
    """Encode ``image`` straight into ``target`` (no copy of the JPEG in memory); its size in bytes."""
    subsampling = "4:4:4" if quality >= 90 else "4:2:0"
    image.save(
        target,
        "JPEG",
        quality=quality,
        subsampling=subsampling,
        optimize=_optimize(image, subsampling),
        icc_profile=icc_profile,
    )
    return target.stat().st_size


def _write_within_cap(
    source: Path,
    temp: Path,
    image: Image.Image,
    icc_profile: bytes | None,
    spec: RenderSpec,
    exiftool: ExifTool,
    notes: list[str],
) -> RenderResult:
    """Encode, carry the metadata over, and step down the ladder until the file fits the cap."""
    cap = spec.max_file_bytes
    overhead: int | None = None  # bytes the metadata adds; measured on the first write
    last_size = 0
    last: tuple[int, int, int] = (image.width, image.height, spec.jpeg_quality)
    for candidate, quality in _ladder(image, spec):
        encoded = _encode(candidate, quality, icc_profile, temp)
        last = (candidate.width, candidate.height, quality)
        if cap is not None and overhead is not None and encoded + overhead > cap:
            last_size = encoded + overhead
            continue
        warnings = exiftool.copy_metadata(source, temp)
        size = temp.stat().st_size
        overhead, last_size = size - encoded, size
        if cap is None or size <= cap:
            if cap is not None and (candidate.size != image.size or quality != spec.jpeg_quality):
                fewer = f", {candidate.width}×{candidate.height}" if candidate.size != image.size else ""
                notes.append(
                    f"quality {spec.jpeg_quality} → {quality}{fewer} to fit {limit_text(cap / 1_000_000)} MB"
                )
            notes.extend(warnings)
            return RenderResult(candidate.width, candidate.height, size, quality, tuple(notes))
    assert cap is not None
    width, height, quality = last
    shown, limit = against(last_size / 1_000_000, cap / 1_000_000)
    raise RenderError(
        f"cannot fit {limit} MB: {shown} MB even at quality {quality} and {width}×{height}",
        hint="raise max_file_mb or lower max_megapixels for this platform",
    )


def _ladder(image: Image.Image, spec: RenderSpec) -> Iterator[tuple[Image.Image, int]]:
    """(pixels, quality) to try in order: the spec's, then lower qualities, then fewer pixels."""
    yield image, spec.jpeg_quality
    if spec.max_file_bytes is None:
        return
    floor = min(spec.jpeg_quality, MIN_LADDER_QUALITY)
    quality = spec.jpeg_quality
    while quality > floor:
        quality = max(floor, quality - QUALITY_STEP)
        yield image, quality
    width, height = image.size
    for step in range(1, MAX_PIXEL_STEPS + 1):
        scale = math.sqrt(PIXEL_STEP**step)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if spec.min_pixels is not None and size[0] * size[1] < spec.min_pixels:
            return
        yield image.resize(size, Image.Resampling.LANCZOS), floor


def keep_image_memory(pad: int = MALLOC_TOP_PAD_BYTES) -> bool:
    """Let glibc keep up to ``pad`` bytes of freed memory per heap for the next image.

    Each 24 MP render allocates and frees ~60 MB of pixel buffers. By default glibc returns that
    memory to the kernel at once, and the next image faults it back in page by page, each page
    zeroed by the kernel under the process's memory-map lock that every worker thread shares: 12,000
    page faults per file. Keeping it costs at most ``pad`` of RSS per heap. Measured end to end
    (60 × 24 MP to three platforms, 2 cores): 718,000 → 68,000 page faults, 13.5 → 12.4 s.
    Process-wide; call before the worker threads start. A no-op (False) off glibc, and when the
    user set MALLOC_TOP_PAD_ themselves.
    """
    if not sys.platform.startswith("linux") or "MALLOC_TOP_PAD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_TOP_PAD, pad) == 1)
