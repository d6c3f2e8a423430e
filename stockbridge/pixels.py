"""Pixel-level checks with Pillow, on files in the private state directory only.

Pillow opens only the formats stockbridge takes (``formats=`` on every open), with an explicit pixel
limit: a decompression bomb is refused instead of eating the machine's memory (research/reliability.md
§5.1).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

#: Larger than any agency accepts (Adobe Stock's cap is 100 MP, agencies.md), far below what would
#: exhaust memory. Pillow's own default warns at 89 MP and refuses at 179 MP.
MAX_PIXELS = 300_000_000
_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "tiff": "TIFF"}

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def check_decodable(path: Path, file_type: str) -> str | None:
    """None when the image decodes in full; else a reason a person can act on.

    JPEGs are decoded at 1/8 scale (``draft``): every byte of the compressed data is still read, so
    a truncated file is caught, at about a quarter of the cost of a full decode (60 ms for 24 MP).
    """
    pillow_format = _PILLOW_FORMATS.get(file_type)
    if pillow_format is None:
        return f"{file_type} images are not supported"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=[pillow_format]) as image:
                pixels = image.width * image.height
                if pixels > MAX_PIXELS:
                    return f"{pixels / 1e6:.0f} MP is more than stockbridge opens ({MAX_PIXELS / 1e6:.0f} MP)"
                if pillow_format == "JPEG":
                    image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return f"refused as a possible decompression bomb ({exc})"
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow says "image file is truncated (12 bytes not processed)" and the like.
        return f"the image data is damaged or incomplete ({exc}); export it again"
    return None
