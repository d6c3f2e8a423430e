"""A clip against a platform's ``[rules.video]`` table: what does not fit, with the numbers.

Pure, like the rest of planning: ffprobe's facts (``assets/video.py``) in, reasons out. Nothing a
person could fix by waiting makes a clip fit (its length, frame size, rate and codec are the
camera's and the editor's), so every reason here rejects; the metadata rules (keywords, title)
still hold a clip as they hold a photo. A clip is never transcoded, cut or scaled (decisions.md
V-1): the reasons say what the agency takes, so the export can be made again to fit.
"""

from __future__ import annotations

from stockbridge.assets import mediatypes
from stockbridge.assets.video import ClipFacts
from stockbridge.config.video import VideoRules, parse_size
from stockbridge.rules.measures import against, limit_text

#: A clip's rate matches a listed one within this (23.98 written for 24000/1001 = 23.976...).
FPS_TOLERANCE = 0.01
#: Sizes listed in a reason before "…".
_SHOWN_SIZES = 6


def clip_rejects(platform: str, clip: ClipFacts, video: VideoRules | None) -> list[str]:
    """Why ``platform`` cannot take ``clip`` as it is; empty when it fits."""
    label = mediatypes.label(clip.container)
    if video is None:
        return [f"{label} clip, {platform} takes no video (no [platforms.{platform}.rules.video] table)"]
    reasons: list[str] = []
    if clip.container not in video.containers:
        reasons.append(f"{label} clip, {platform} takes only {mediatypes.labels(video.containers)}")
    if video.codecs is not None and clip.codec.lower() not in video.codecs:
        reasons.append(
            f"{clip.codec.upper()} video, {platform} takes only {', '.join(c.upper() for c in video.codecs)}"
        )
    reasons.extend(_duration(platform, clip, video))
    reasons.extend(_frame(platform, clip, video))
    if video.max_file_mb is not None and clip.size_bytes > video.max_file_mb * 1_000_000:
        shown, cap = against(clip.size_bytes / 1_000_000, video.max_file_mb)
        reasons.append(f"{shown} MB, {platform} takes clips of at most {cap} MB")
    if clip.audio and not video.audio:
        reasons.append(f"the clip has a sound track, {platform} takes clips without sound; export it muted")
    return reasons


def _duration(platform: str, clip: ClipFacts, video: VideoRules) -> list[str]:
    low, high = video.min_seconds, video.max_seconds
    short = low is not None and clip.seconds < low
    long = high is not None and clip.seconds > high
    if not (short or long):
        return []
    limit = low if short else high
    assert limit is not None
    shown, _ = against(clip.seconds, limit)
    if low is not None and high is not None:
        needs = f"{limit_text(low)}–{limit_text(high)} s"
    elif low is not None:
        needs = f"at least {limit_text(low)} s"
    else:
        needs = f"at most {limit_text(high or 0)} s"
    return [f"{shown} s; {platform} needs {needs}"]


def _frame(platform: str, clip: ClipFacts, video: VideoRules) -> list[str]:
    reasons = []
    at = f"{clip.frame_size} at {clip.fps_text} fps"
    sizes = video.sizes
    if sizes and not _size_listed(clip, sizes, video.widescreen):
        shown = ", ".join(f"{w}×{h}" for w, h in sizes[:_SHOWN_SIZES]) + (
            ", …" if len(sizes) > _SHOWN_SIZES else ""
        )
        wider = " (or as wide with fewer lines)" if video.widescreen else ""
        reasons.append(f"{at}; {platform} takes only {shown}{wider}; stockbridge never scales a clip")
    if video.min_resolution is not None:
        need_w, need_h = parse_size(video.min_resolution)
        long_edge, short_edge = max(clip.width, clip.height), min(clip.width, clip.height)
        if long_edge < max(need_w, need_h) or short_edge < min(need_w, need_h):
            reasons.append(
                f"{clip.frame_size}; {platform} needs at least {need_w}×{need_h}; stockbridge never upscales"
            )
    if video.frame_rates is not None and not any(
        abs(float(clip.fps) - rate) <= FPS_TOLERANCE for rate in video.frame_rates
    ):
        rates = ", ".join(f"{rate:g}" for rate in video.frame_rates)
        reasons.append(f"{clip.fps_text} fps; {platform} takes {rates} fps")
    return reasons


def _size_listed(clip: ClipFacts, sizes: list[tuple[int, int]], widescreen: bool) -> bool:
    if (clip.width, clip.height) in sizes:
        return True
    return widescreen and any(clip.width == w and clip.height < h for w, h in sizes)
