"""Real clips for the video tests, made once per session by ffmpeg's ``testsrc2`` (tiny, ~0.1 s each).

Import the ``clips`` fixture into a test module; it skips when ffmpeg is missing (``make test``
installs it, .ci/system-deps)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Clips:
    folder: Path

    def make(
        self,
        name: str,
        *,
        size: str = "320x180",
        seconds: float = 2.0,
        rate: str = "25",
        audio: bool = False,
        faststart: bool = False,
    ) -> Path:
        """A clip in ``folder`` (made once; the container follows the name: .mp4, .mov, .avi, or
        .mpg, which gets MPEG-2 video as an MPEG program stream carries)."""
        path = self.folder / name
        if path.exists():
            return path
        command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
        if audio:
            command += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000"]
        if name.endswith(".mpg"):
            command += ["-t", str(seconds), "-pix_fmt", "yuv420p", "-c:v", "mpeg2video", "-q:v", "20"]
        else:
            command += ["-t", str(seconds), "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast"]
            command += ["-crf", "40", "-g", "250"]
        if audio:
            command += ["-c:a", "aac", "-b:a", "16k", "-shortest"]
        if faststart:
            command += ["-movflags", "+faststart"]  # the index (moov) first, then the media data
        subprocess.run([*command, str(path)], check=True, timeout=60, stdin=subprocess.DEVNULL)
        return path

    def copy(self, source: Path, to: Path) -> Path:
        shutil.copyfile(source, to)
        return to


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg/ffprobe not installed (Debian: apt install ffmpeg)")
    return Clips(tmp_path_factory.mktemp("clips"))


def write_xmp(path: Path, title: str, keywords: list[str]) -> None:
    """Title, description and keywords into the clip's XMP with the real ExifTool."""
    args = ["exiftool", "-q", "-overwrite_original", f"-XMP-dc:Title={title}", f"-XMP-dc:Description={title}"]
    args += [f"-XMP-dc:Subject={keyword}" for keyword in keywords]
    subprocess.run([*args, str(path)], check=True, timeout=60, stdin=subprocess.DEVNULL)
