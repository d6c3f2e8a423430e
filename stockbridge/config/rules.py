"""The rule tables, ``[platforms.NAME.rules]``: what a platform accepts, and the copy it gets.

Each is data for planning (``stockbridge/rules/``) and rendering (``stockbridge/render/``); see
``models.py`` for the other tables.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from stockbridge.assets import mediatypes
from stockbridge.config.base import _check_remote_dir, _Model
from stockbridge.config.categories import AiRule, CategoryRule
from stockbridge.config.vector import VectorRules
from stockbridge.config.video import VideoRules


class KeywordRule(_Model):
    min: int = Field(0, ge=0, description="Fewer keywords than this: the file is held.")
    max: int | None = Field(None, ge=1, description="More than this: see over_max.")
    over_max: Literal["truncate", "hold"] = Field(
        "truncate",
        description='"truncate": this platform\'s copy keeps the first `max`, in order; "hold": wait for you.',
    )

    @model_validator(mode="after")
    def _ordered(self) -> KeywordRule:
        if self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class TextRule(_Model):
    required: bool = Field(False, description="Missing: the file is held.")
    max_chars: int | None = Field(None, ge=1, description="Longer: see over_max.")
    over_max: Literal["shorten", "hold"] = Field(
        "hold", description='"shorten": cut at a word boundary for this platform; "hold": wait for you.'
    )
    forbidden: str = Field(
        "",
        description='Characters the text may not contain, each one, e.g. "," (Adobe Stock\'s CSV takes no '
        "commas in a title). Containing one: see on_forbidden.",
    )
    on_forbidden: Literal["replace", "hold"] = Field(
        "hold",
        description='"replace": each forbidden character becomes replace_with in this platform\'s copy, '
        'spaces then collapsed ("Sunset, beach, and palms" → "Sunset beach and palms"); "hold": wait '
        "for you, with a reason naming the characters.",
    )
    replace_with: str = Field(
        " ", description='on_forbidden = "replace": what each forbidden character becomes ("" drops it).'
    )

    @model_validator(mode="after")
    def _replacement_allowed(self) -> TextRule:
        if any(char in self.forbidden for char in self.replace_with):
            raise ValueError(f"replace_with ({self.replace_with!r}) contains a forbidden character")
        if any(char in self.replace_with for char in "\r\n\0"):
            raise ValueError("replace_with must not contain line breaks or NUL")
        return self


class TitleRule(TextRule):
    from_description: bool = Field(
        False,
        description="An empty title is filled from the description (shortened to max_chars). Camera "
        'and software text such as "OLYMPUS DIGITAL CAMERA" counts as empty, never as a description.',
    )


class FilenameRule(_Model):
    allowed: str = Field(
        "A-Za-z0-9_-",
        description='Characters allowed in the remote name, as a regex class body ("A-Za-z0-9_"); others become "_".',
    )
    max_chars: int | None = Field(None, ge=8, description="Longest remote name, extension included.")

    @field_validator("allowed")
    @classmethod
    def _valid_class(cls, value: str) -> str:
        import re

        try:
            re.compile(f"[{value}]")
        except re.error as exc:
            raise ValueError(f"not a valid character class: {exc}") from None
        if any(char in value for char in "/\\\r\n\0") or value.startswith("^"):
            raise ValueError("must not allow path separators or line breaks, nor start with ^")
        return value


class ReleaseRule(_Model):
    required_for: list[Literal["people", "property"]] = Field(
        default_factory=list, description="Which releases this platform needs: people (model), property."
    )
    delivery: Literal["folder", "suffix", "manual"] = Field(
        "manual",
        description='"folder": upload into remote_dir; "suffix": name it after the image + suffix; "manual": list it in the batch report.',
    )
    remote_dir: str | None = Field(
        None, description='delivery = "folder": the remote folder, e.g. "modelrelease".'
    )
    suffix: str = Field("_MR", description='delivery = "suffix": e.g. IMG_1.jpg → IMG_1_MR.pdf.')

    _remote_dir_safe = field_validator("remote_dir")(_check_remote_dir)


class EditorialRoute(_Model):
    remote_dir: str = Field(description="Editorial files go into this remote folder.")

    _remote_dir_safe = field_validator("remote_dir")(_check_remote_dir)


class RulesConfig(_Model):
    formats: list[str] | None = Field(
        None,
        description='File types the platform accepts ("jpeg", "png", "tiff"); others are converted or rejected.',
    )
    convert_to: Literal["jpeg"] | None = Field(
        None,
        description="Convert files in other formats (or 16-bit, CMYK) to this format; unset: reject them.",
    )
    jpeg_quality: int = Field(92, ge=50, le=100, description="JPEG quality of converted or resized copies.")
    color_space: Literal["sRGB"] | None = Field(
        None, description="Convert other colour spaces to this one through the embedded ICC profile."
    )
    min_megapixels: float | None = Field(
        None, gt=0, description="Smaller images are rejected (never upscaled)."
    )
    max_megapixels: float | None = Field(None, gt=0, description="Larger images are downscaled to fit.")
    max_long_edge: int | None = Field(
        None, ge=100, description="Longer edges are downscaled to fit (pixels)."
    )
    max_file_mb: float | None = Field(
        None, gt=0, description="Larger files are re-encoded to fit, else rejected (MB = 10^6 bytes)."
    )
    keywords: KeywordRule = Field(
        default_factory=KeywordRule, description="How many keywords, and what to do with too many."
    )
    title: TitleRule = Field(
        default_factory=TitleRule,
        description="Whether a title is required, its length, and characters it may not contain.",
    )
    description: TextRule = Field(
        default_factory=TextRule,
        description="Whether a description is required, its length, and characters it may not contain.",
    )
    filename: FilenameRule = Field(
        default_factory=FilenameRule, description="Characters and length of the remote file name."
    )
    releases: ReleaseRule = Field(
        default_factory=ReleaseRule, description="Which releases the platform needs and how they travel."
    )
    editorial: Literal["accept", "reject"] | EditorialRoute = Field(
        "accept", description='Editorial files: "accept", "reject", or { remote_dir = "..." }.'
    )
    ai: AiRule = Field(
        default_factory=AiRule,
        description="AI-generated files: accept or reject, and what an accepted one needs (manual steps, CSV cells).",
    )
    categories: CategoryRule = Field(
        default_factory=CategoryRule,
        description="The agency's categories, how yours map onto them, and whether a file needs one.",
    )
    vector: VectorRules = Field(
        default_factory=VectorRules,
        description="Vectors (EPS, AI, SVG) and their previews: formats, version, size, how they travel.",
    )
    video: VideoRules | None = Field(
        None, description="What the platform takes of video clips (MP4, MOV, AVI, MPEG); unset: no video."
    )

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for item in value:
            media = mediatypes.from_config(item)
            if media is not None and media.kind == mediatypes.VECTOR:
                raise ValueError(
                    f"{item!r} is a vector format: list it in the vector table's formats"
                    f' ([platforms.NAME.rules.vector] formats = ["{media.name}"])'
                )
        unknown = [item for item in value if mediatypes.from_config(item) is None]
        if unknown:
            known = ", ".join(mediatypes.names(mediatypes.RASTER))
            raise ValueError(f"unknown format {unknown[0]!r}; known: {known}")
        return [media.name for item in value if (media := mediatypes.from_config(item)) is not None]
