"""``[platforms.NAME.rules.video]``: what a platform takes of video clips, and how they travel.

A platform without this table takes no video: a clip is rejected there with that reason. Every
limit names the agency's own numbers; planning (``rules/video.py``) checks a clip's ffprobe facts
against them and never transcodes (decisions.md V-1).
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from stockbridge.assets import mediatypes
from stockbridge.config.base import _check_remote_dir, _Model

_SIZE = re.compile(r"^\s*(\d{2,5})\s*[x×X]\s*(\d{2,5})\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """ "1920x1080" (or "1920×1080") → (1920, 1080); ValueError otherwise."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f'expected a frame size like "1920x1080", got {text!r}')
    return int(match.group(1)), int(match.group(2))


class VideoRules(_Model):
    containers: list[str] = Field(
        default_factory=lambda: list(mediatypes.names("video")),
        description='Container types taken, by content ("mp4", "mov", "avi", "mpeg" for .mpg); a clip in another is rejected'
        " (never re-wrapped).",
    )
    codecs: list[str] | None = Field(
        None,
        description='Video codecs taken, as ffprobe names them ("h264", "hevc", "prores", "mpeg2video",'
        ' "mpeg4", "mjpeg", "png", "dnxhd"); unset: any.',
    )
    min_seconds: float | None = Field(None, gt=0, description="Shorter clips are rejected.")
    max_seconds: float | None = Field(None, gt=0, description="Longer clips are rejected (never cut).")
    resolutions: list[str] | None = Field(
        None,
        description='The exact frame sizes taken, "WIDTHxHEIGHT" ("1920x1080"); another size is'
        " rejected (never scaled: agencies want the camera's native frame). Unset: any size"
        " (see min_resolution).",
    )
    widescreen: bool = Field(
        False,
        description="Also take a clip as wide as one of `resolutions` with fewer lines, a wider aspect"
        " ratio (1920x804 at 2.39:1), as some agencies do.",
    )
    min_resolution: str | None = Field(
        None,
        description='The smallest frame taken, "WIDTHxHEIGHT" ("1280x720"), compared long edge to long'
        " edge and short to short, so an upright phone clip counts too; smaller clips are rejected.",
    )
    frame_rates: list[float] | None = Field(
        None,
        description="Frame rates taken, as people write them (23.976, 24, 25, 29.97, 30, 50, 59.94, 60);"
        " a clip's rate matches within 0.01 fps (29.97 is 30000/1001). Unset: any.",
    )
    max_file_mb: float | None = Field(
        None, gt=0, description="Larger clips are rejected (MB = 10^6 bytes; never re-encoded)."
    )
    audio: bool = Field(True, description="false: a clip with a sound track is rejected.")
    max_clips_per_batch: int | None = Field(
        None,
        ge=1,
        description="At most this many clips in one batch (one connection); the rest go in the next"
        " batch (some agencies ask for 25 or fewer).",
    )
    remote_dir: str | None = Field(
        None, description="Remote folder for clips, when not the platform's remote_dir."
    )
    manual_step: str | None = Field(
        None,
        description="What you do on the agency's website for uploaded clips (metadata in a web editor,"
        " a deadline); `status` lists it while clips wait for it.",
    )

    _remote_dir_safe = field_validator("remote_dir")(_check_remote_dir)

    @field_validator("containers")
    @classmethod
    def _known_containers(cls, value: list[str]) -> list[str]:
        known = mediatypes.names("video")
        names = []
        for item in value:
            media = mediatypes.from_config(item)
            if media is None or media.kind != "video":
                raise ValueError(f"unknown container {item!r}; known: {', '.join(known)}")
            names.append(media.name)
        return names

    @field_validator("codecs")
    @classmethod
    def _codec_names(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [item.strip().lower() for item in value]

    @field_validator("resolutions")
    @classmethod
    def _sizes(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return [f"{w}x{h}" for w, h in map(parse_size, value)]

    @field_validator("min_resolution")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is None:
            return None
        width, height = parse_size(value)
        return f"{width}x{height}"

    @field_validator("frame_rates")
    @classmethod
    def _rates(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(not 0 < rate <= 1000 for rate in value):
            raise ValueError("frame rates are between 0 and 1000 fps")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> VideoRules:
        if self.min_seconds and self.max_seconds and self.min_seconds > self.max_seconds:
            raise ValueError(
                f"min_seconds ({self.min_seconds:g}) is larger than max_seconds ({self.max_seconds:g})"
            )
        return self

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [parse_size(size) for size in self.resolutions or ()]
