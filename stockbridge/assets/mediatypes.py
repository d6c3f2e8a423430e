"""The media types stockbridge takes: one table, read by every stage that needs to know.

Each :class:`MediaType` says what a type is called (in the config, to the user, on the server),
which file names announce it to the watcher, what its content sniffs as
(:func:`stockbridge.assets.filetype.sniff`), whether its pixels can be measured and rendered (and
by which Pillow plug-in), what a derived copy of it may be converted to, and which structural check
(:mod:`stockbridge.assets.integrity`) finds a cut-off file of it without decoding.

Readers: config validation (``formats``), the watcher (which names to look at), ingest (what to
take), naming (the remote file's extension), planning (names in reasons), rendering and pixel
checks (which decoder). Adding a type is one entry here plus its handlers (a sniff rule in
``filetype``, a way to measure it, and a renderer if it can be converted): nothing else lists
types.

This module imports nothing heavy (no Pillow, no pydantic), so the config can read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MediaType:
    #: The name used everywhere: in the config (``formats = ["jpeg"]``), the ledger, ``sniff``.
    name: str
    #: How a person calls it, in reasons: "JPEG".
    label: str
    #: "raster" (Pillow measures and renders it), "vector" (EPS, AI, SVG: measured by
    #: ``assets/vector.py``, sold with a raster preview of the same stem) or "video" (ffprobe
    #: measures it, nothing renders it: a clip is always sent native; ``assets/video.py``,
    #: ``rules/video.py``).
    kind: str
    #: File name endings the watcher looks at, the first one used for remote names and copies.
    extensions: tuple[str, ...]
    #: Other spellings the config accepts for ``name`` ("jpg").
    aliases: tuple[str, ...] = ()
    #: The Pillow plug-in that decodes it: its pixels are measured and checked with it, and it can
    #: be rendered (resized, re-encoded). None: Pillow never opens it.
    pillow_format: str | None = None
    #: Types a derived copy of it may be converted to (``convert_to``).
    converts_to: tuple[str, ...] = ()
    #: How a cut-off or damaged file of this type is found without decoding it: the name of a
    #: check in :data:`stockbridge.assets.integrity.CHECKS`. None: no structural check (the full
    #: decode, ``[watch] verify = "decode"``, or a render still checks it).
    structure: str | None = None
    #: A file of this type with a vector's stem beside it is that vector's preview, never sold as
    #: a photo of its own (the agencies that take a preview take a JPEG, some a PNG too).
    preview: bool = False
    #: The FFmpeg demuxer that reads a clip of this type (``ffprobe -f``): ffprobe is told it
    #: rather than guessing from the content (decisions.md V-2).
    ffprobe_format: str | None = None

    @property
    def extension(self) -> str:
        return self.extensions[0]

    @property
    def renderable(self) -> bool:
        return self.pillow_format is not None


#: Sources: JPEG (ITU-T T.81, JFIF), PNG (ISO/IEC 15948), TIFF 6.0. What agencies take of each is in
#: the presets; ``.jpe``/``.jfif`` are left out on purpose: no photo editor exports them.
MEDIA_TYPES: tuple[MediaType, ...] = (
    MediaType(
        "jpeg",
        "JPEG",
        "raster",
        (".jpg", ".jpeg"),
        aliases=("jpg",),
        pillow_format="JPEG",
        converts_to=("jpeg",),
        structure="jpeg-markers",
        preview=True,
    ),
    MediaType(
        "png",
        "PNG",
        "raster",
        (".png",),
        pillow_format="PNG",
        converts_to=("jpeg",),
        structure="png-chunks",
        preview=True,
    ),
    MediaType(
        "tiff",
        "TIFF",
        "raster",
        (".tif", ".tiff"),
        aliases=("tif",),
        pillow_format="TIFF",
        converts_to=("jpeg",),
        structure="tiff-ifds",
    ),
    # Vectors (issue 15): EPS (Adobe TN 5002, DSC 3.0), Illustrator's own format (a PDF with
    # Illustrator's private data, or PostScript before Illustrator 9), SVG 1.1 (W3C). Never opened
    # by Pillow, never converted: :mod:`stockbridge.assets.vector` measures and checks them.
    MediaType("eps", "EPS", "vector", (".eps",), aliases=("epsf",)),
    MediaType("ai", "AI", "vector", (".ai",)),
    MediaType("svg", "SVG", "vector", (".svg",)),
    # Video: ISO base media files (ISO/IEC 14496-12, 14496-14) and QuickTime (Apple QTFF), told
    # apart by their "ftyp" brand (filetype._sniff_ftyp); agencies take both (media.md "Video").
    MediaType("mp4", "MP4", "video", (".mp4", ".m4v"), structure="isobmff-boxes", ffprobe_format="mov"),
    MediaType(
        "mov",
        "MOV",
        "video",
        (".mov", ".qt"),
        aliases=("quicktime",),
        structure="isobmff-boxes",
        ffprobe_format="mov",
    ),
    # AVI (Microsoft RIFF, "AVI " form; OpenDML adds "AVIX" forms after it) and MPEG program
    # streams (ISO/IEC 11172-1, 13818-1: a pack header first), for the agencies that take them
    # (Adobe Stock, Depositphotos; Shutterstock MPG: media.md "Video"). An MPEG program stream has
    # no index or length to find a cut-off copy by, so it has no structural check.
    MediaType("avi", "AVI", "video", (".avi",), structure="riff-chunks", ffprobe_format="avi"),
    MediaType("mpeg", "MPEG", "video", (".mpg", ".mpeg"), aliases=("mpg",), ffprobe_format="mpeg"),
)

#: Kinds of type.
RASTER = "raster"
VECTOR = "vector"


def names(kind: str | None = None) -> tuple[str, ...]:
    """The names of every type stockbridge takes (of ``kind``, if given), in table order."""
    return tuple(media.name for media in MEDIA_TYPES if kind is None or media.kind == kind)


def is_video(name: str | None) -> bool:
    """True for a clip's type: it is probed by ffprobe and always sent native."""
    media = get(name)
    return media is not None and media.kind == "video"


def is_vector(name: str | None) -> bool:
    """True for a vector type (EPS, AI, SVG)."""
    media = get(name)
    return media is not None and media.kind == VECTOR


def preview_types() -> tuple[MediaType, ...]:
    """The types a vector's preview may be: raster types whose files agencies show (JPEG, PNG)."""
    return tuple(media for media in MEDIA_TYPES if media.preview)


# The table is a handful of entries: looking through it is as fast as a dict, and a test (or a
# later plug-in) that adds an entry is seen everywhere at once.


def get(name: str | None) -> MediaType | None:
    """The type called ``name`` (as sniffed or stored), or None when stockbridge does not take it."""
    return next((media for media in MEDIA_TYPES if media.name == name), None)


def from_config(spelling: str) -> MediaType | None:
    """The type a config spelling names ("JPG", "jpeg", "tif"), or None."""
    spelling = spelling.lower()
    return next((media for media in MEDIA_TYPES if spelling in (media.name, *media.aliases)), None)


def from_filename(name: str) -> MediaType | None:
    """The type a file name announces by its ending (never trusted: content decides at ingest)."""
    dot = name.rfind(".")
    ending = name[dot:].lower() if dot >= 0 else ""
    return next((media for media in MEDIA_TYPES if ending in media.extensions), None)


def label(name: str | None) -> str:
    """How to call a type in a reason: "JPEG"; an unknown one by its name in capitals."""
    media = get(name)
    return media.label if media is not None else (name or "unknown").upper()


def labels(names_: Iterable[str]) -> str:
    return ", ".join(label(name) for name in names_)


def extension(name: str | None, fallback: str = "") -> str:
    """The file name ending for a type's files (".jpg"), or ``fallback``."""
    media = get(name)
    return media.extension if media is not None else fallback


def pillow_formats() -> dict[str, str]:
    """Type name -> the Pillow plug-in that decodes it, for every type Pillow may open."""
    return {media.name: media.pillow_format for media in MEDIA_TYPES if media.pillow_format is not None}
