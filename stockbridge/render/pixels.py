"""Pixel-level checks with Pillow, on files in the private state directory only.

Pillow opens only the formats stockbridge takes (``formats=`` on every open), with an explicit pixel
limit: a decompression bomb is refused instead of eating the machine's memory (decisions.md
P-1).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, ImageFile

from stockbridge.assets import mediatypes
from stockbridge.errors import InputError
from stockbridge.rules.measures import against

#: Larger than any agency accepts (Adobe Stock's cap is 100 MP: presets/adobe_stock.toml), far below what would
#: exhaust memory. Pillow's own default warns at 89 MP and refuses at 179 MP.
MAX_PIXELS = 300_000_000
_ORIENTATION_TAG = 0x0112  # EXIF Orientation

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def check_decodable(path: Path, file_type: str, *, name: str | None = None) -> str | None:
    """None when the image decodes in full; else a reason a person can act on. ``name``: the
    user's file, named in the reason instead of ``path`` (a private copy in the state folder).

    JPEGs are decoded at 1/8 scale (``draft``): every byte of the compressed data is still read, so
    a truncated file is caught, at about a quarter of the cost of a full decode (60 ms for 24 MP).
    """
    pillow_format = _pillow_format(file_type)
    if pillow_format is None:
        return f"{file_type} images are not supported"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=[pillow_format]) as image:
                pixels = image.width * image.height
                if pixels > MAX_PIXELS:
                    return _too_many(pixels)
                if pillow_format == "JPEG":
                    image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except (
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        return undecodable_reason(exc, name)
    return None


def undecodable_reason(exc: BaseException, name: str | None = None) -> str:
    """What to tell a person about an image Pillow could not decode (also when a render found it)."""
    words = pillow_words(exc, name)
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"refused as a possible decompression bomb ({words})"
    # Pillow says "image file is truncated (12 bytes not processed)" and the like.
    return f"the image data is damaged or incomplete ({words}); export it again"


#: A path Pillow or the OS quotes in a message ("cannot identify image file '/…/state/objects/79/
#: 798b….tif'", "[Errno 2] No such file or directory: '…'"): always one of our private copies here.
_QUOTED_PATH = re.compile(r"""(['"])/[^'"\n]*\1""")


def pillow_words(exc: BaseException, name: str | None = None) -> str:
    """``exc``'s message with any quoted path replaced by the user's file ``name`` (or left out):
    Pillow only ever opens the private copy, whose path means nothing to the user (issue 13)."""
    text = _QUOTED_PATH.sub(repr(name) if name else "", str(exc))
    return re.sub(r"\s+([:)]|$)", r"\1", text).strip(" :")


@dataclass(frozen=True, slots=True)
class ImageProps:
    """What the pixels of a file are, read from its header only (nothing is decoded)."""

    width: int  # as stored, before EXIF orientation
    height: int
    mode: str  # Pillow's mode: "RGB", "L", "CMYK", "I;16", "RGBA", "P", ...
    bits: int  # bits per sample: 8 or 16 (Pillow reads 16-bit RGB as 8-bit "RGB"; this says 16)
    icc_description: str | None  # the embedded ICC profile's description, None without a profile
    is_srgb: bool  # RGB without a profile counts as sRGB (what agencies assume); CMYK, Lab, grey never
    orientation: int  # EXIF orientation 1..8; 1 when absent or invalid
    has_alpha: bool
    frames: int

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as a viewer shows them: orientations 5..8 turn the image a quarter."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


def image_props(
    path: Path, file_type: str, *, name: str | None = None
) -> ImageProps:  # name: as check_decodable
    """Read ``path``'s :class:`ImageProps` from its header. Raises InputError with a one-line reason."""
    pillow_format = _pillow_format(file_type)
    if pillow_format is None:
        raise InputError(f"{file_type} images are not supported")
    try:
        with Image.open(path, formats=[pillow_format]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InputError(_too_many(width * height))
            description = _icc_description(image.info.get("icc_profile"))
            orientation = _orientation(image)
            return ImageProps(
                width=width,
                height=height,
                mode=image.mode,
                bits=_bits(image),
                icc_description=description,
                # RGB without a profile is taken as sRGB, as agencies do. CMYK, Lab and grey never
                # are: sRGB has three channels, and iStock's "RGB JPEG only" means it (issue 13).
                is_srgb=image.mode in _RGB_MODES and (description is None or "srgb" in description.lower()),
                orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
                has_alpha=image.has_transparency_data,
                frames=getattr(image, "n_frames", 1),
            )
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(
            f"cannot read the image header ({pillow_words(exc, name)}); export it again"
        ) from exc


def _orientation(image: Image.Image) -> object:
    """The EXIF orientation from the header alone. A PNG's eXIf chunk may follow the pixels, and
    Pillow's ``getexif()`` then decodes the whole image to reach it: a damaged PNG failed there
    and lost its size, so no render was planned for it. Such a late chunk is taken as upright."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    return image.getexif().get(_ORIENTATION_TAG, 1)


def _too_many(pixels: int) -> str:
    shown, limit = against(pixels / 1e6, MAX_PIXELS / 1e6, decimals=0)
    return f"{shown} MP is more than stockbridge opens ({limit} MP)"


#: Modes whose pixels are RGB (a palette holds RGB; YCbCr is a layout of RGB).
_RGB_MODES = ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "YCbCr")


def _bits(image: ImageFile.ImageFile) -> int:
    if image.mode.startswith("I;16"):
        return 16
    if image.mode == "I":
        # 32-bit integer samples in a TIFF, or signed 16-bit ones ("I;16S"); a 16-bit PNG is I;16.
        stored = getattr(image, "tag_v2", {}).get(258)  # TIFF BitsPerSample
        return int(stored[0] if isinstance(stored, tuple) else stored) if stored else 16
    if image.mode == "F":
        return 32
    bits_per_sample = getattr(image, "tag_v2", {}).get(258)  # TIFF BitsPerSample
    if bits_per_sample:
        samples = bits_per_sample if isinstance(bits_per_sample, tuple) else (bits_per_sample,)
        return max(8, *(int(value) for value in samples))
    for tile in image.tile:  # PNG: Pillow decodes "RGB;16B" into 8-bit RGB; the raw mode tells
        rawmode = tile.args[0] if isinstance(tile.args, tuple) and tile.args else tile.args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return 16
    return 8


def _icc_description(icc: object) -> str | None:
    if not isinstance(icc, bytes) or not icc:
        return None
    try:
        description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    except (ImageCms.PyCMSError, OSError, ValueError):
        # A profile lcms cannot parse: say so rather than treat the file as sRGB.
        return "unreadable ICC profile"
    return description.strip() or "unnamed ICC profile"


def _pillow_format(file_type: str) -> str | None:
    """The one Pillow plug-in a file of ``file_type`` may be opened with (never a guess)."""
    media = mediatypes.get(file_type)
    return media.pillow_format if media is not None else None
