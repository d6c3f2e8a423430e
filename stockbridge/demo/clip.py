"""A sample clip for ``stockbridge demo``: a few seconds of ffmpeg's ``testsrc2`` pattern, small,
with title, description and keywords in its XMP (written by ExifTool, as an editor's export would
carry them). Without ffmpeg there is no clip, and the demo says so in one line and goes on."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from stockbridge.metadata.exiftool import ExifTool


def ffmpeg_missing() -> str | None:
    """Why no clip can be made here (ffmpeg or ffprobe not installed), or None."""
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found" if missing else None


def make_clip(
    path: Path,
    *,
    title: str,
    keywords: Sequence[str],
    exiftool: ExifTool,
    seconds: float = 3.0,
    size: str = "640x360",
    rate: str = "25",
) -> Path:
    """A short H.264 MP4 (~100 KB) at ``path``, tagged in XMP; returns ``path``."""
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    command += ["-t", f"{seconds:g}", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast"]
    command += ["-crf", "35", "-an", str(path)]
    subprocess.run(command, check=True, timeout=60, stdin=subprocess.DEVNULL, capture_output=True)
    tags: dict[str, str | Sequence[str]] = {
        "XMP-dc:Title": title,
        "XMP-dc:Description": f"{title}: a sample clip.",
        "XMP-dc:Subject": list(keywords),
    }
    exiftool.write(path, tags)
    return path
