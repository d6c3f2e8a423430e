"""A clip's facts, from one ``ffprobe`` per file, and its container's structure, without decoding.

Video files are large (a 60 s 4K clip is several GB), so nothing here reads a clip into memory:

- :class:`IsoBoxes` walks the top-level boxes of an ISO base media file (MP4, ISO/IEC 14496-12
  §4.2; QuickTime MOV, Apple QTFF "Atoms"), a few seeks per file: the boxes must tile the file
  exactly, and a ``moov`` (the index) must be there. A copy cut off inside its ``mdat`` (the media
  data, usually most of the file) is found by its size, which ffprobe alone does not notice when
  the index comes first. It is the registry's ``structure`` check for these types, fed by the hash
  pass like the others (``integrity.StreamCheck``). :class:`RiffChunks` does the same for an AVI's
  RIFF chunks. An MPEG program stream has no sizes or index to check: only ffprobe reads it.
- :func:`probe` runs ``ffprobe -v error -protocol_whitelist file -f DEMUXER -print_format json
  -show_format -show_streams FILE`` in its own process group with a timeout: container, codec, frame size, frame rate (a rational:
  29.97 is 30000/1001), duration, size and whether there is sound. ffprobe reads the index and
  a few packets, never the whole file. A clip it cannot read, or that claims absurd values, gets
  a reason, never an exception.

Nothing is ever transcoded: agencies want the native file (issue 15; decisions.md V-1).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from stockbridge.assets import mediatypes

#: ``read_at(offset, length)`` (as in ``integrity``).
ReadAt = Callable[[int, int], bytes]

#: How long one ffprobe may take. It reads the index and a few packets: ~20 ms for a clip of any
#: size on a local disk; a minute means it hangs (a damaged file, a stuck network share).
PROBE_TIMEOUT_SECONDS = 30.0
#: Sanity bounds: a clip claiming more is damaged or hostile, not footage (16K is 15360×8640).
MAX_EDGE = 16384
MAX_FPS = 1000
MAX_SECONDS = 24 * 3600
#: Top-level boxes looked at before giving up (a real file has a handful).
_MAX_BOXES = 10_000


def cut_off(where: str) -> str:
    return f"cut off: the clip ends {where}; export it again"


@dataclass(frozen=True, slots=True)
class ClipFacts:
    """What planning needs to know about a clip (all from ffprobe, nothing decoded)."""

    container: str  # the media type's name: "mp4", "mov"
    codec: str  # ffprobe's codec name: "h264", "hevc", "prores", "mpeg2video", ...
    width: int  # as displayed (a phone's rotated clip: its rotated size)
    height: int
    fps: Fraction  # 30000/1001 for 29.97
    seconds: float
    size_bytes: int
    audio: bool

    @property
    def fps_text(self) -> str:
        """ "29.97", "25", "23.976": how people write frame rates."""
        value = float(self.fps)
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != round(value) else str(round(value))

    @property
    def frame_size(self) -> str:
        return f"{self.width}×{self.height}"

    def summary(self) -> str:
        """One line for ``explain`` and ``status``: "1920×1080 at 29.97 fps, 10.0 s, H264, MOV, sound"."""
        sound = "sound" if self.audio else "no sound"
        return (
            f"{self.frame_size} at {self.fps_text} fps, {self.seconds:.1f} s, {self.codec.upper()}, "
            f"{self.container.upper()}, {sound}"
        )

    def as_meta(self) -> dict[str, object]:
        """For the ledger's job meta (status, history): plain JSON values."""
        return {
            "container": self.container,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
            "seconds": round(self.seconds, 3),
            "audio": self.audio,
        }


def describe(meta: object) -> str | None:
    """``ClipFacts.summary()`` from a job's recorded facts (``as_meta``), for ``status``."""
    if not isinstance(meta, dict):
        return None
    try:
        clip = ClipFacts(
            container=str(meta["container"]),
            codec=str(meta["codec"]),
            width=int(meta["width"]),
            height=int(meta["height"]),
            fps=Fraction(str(meta["fps"])),
            seconds=float(meta["seconds"]),
            size_bytes=0,
            audio=bool(meta["audio"]),
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return clip.summary()


class ProbeUnavailable(Exception):
    """ffprobe is not installed (or cannot run): the clip is not taken yet, and says why."""


def ffprobe_path() -> str | None:
    return shutil.which("ffprobe")


def probe(
    path: Path,
    container: str,
    *,
    ffprobe: str | None = None,
    timeout: float = PROBE_TIMEOUT_SECONDS,
) -> ClipFacts | str:
    """The clip's facts, or the reason it cannot be taken (one line, for a person).

    Raises :class:`ProbeUnavailable` when there is no ffprobe to run: that is the machine's
    trouble, not the file's, and the clip waits for it."""
    program = ffprobe or ffprobe_path()
    if program is None:
        raise ProbeUnavailable("ffprobe is not installed; install ffmpeg (Debian: apt install ffmpeg)")
    # Told its demuxer, and local files only: a hostile clip cannot have itself read as a
    # playlist, or point ffprobe at a URL (decisions.md V-2).
    media = mediatypes.get(container)
    demuxer = ["-f", media.ffprobe_format] if media is not None and media.ffprobe_format else []
    command = [program, "-v", "error", "-protocol_whitelist", "file", *demuxer]
    command += ["-print_format", "json", "-show_format", "-show_streams", "--", str(path)]
    try:
        # A process group of its own: on a timeout the whole group goes, not just a wrapper
        # (decisions.md V-2).
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise ProbeUnavailable(f"cannot run ffprobe ({exc.strerror or exc})") from None
    try:
        output, errors = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return f"ffprobe did not finish reading the clip within {timeout:g} s; the file may be damaged"
    if process.returncode != 0:
        message = _first_line(errors) or f"exit status {process.returncode}"
        return (
            f"ffprobe cannot read the clip ({message}); the file may be cut off or damaged: export it again"
        )
    try:
        answer = json.loads(output or b"{}")
    except ValueError:
        return "ffprobe gave no readable answer for the clip; the file may be damaged"
    return facts_from(answer, container, path.stat().st_size)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.communicate()


def _first_line(errors: bytes) -> str:
    text = errors.decode("utf-8", "replace").strip()
    line = text.splitlines()[-1] if text else ""
    # ffprobe starts its lines with the file name: not needed, the reason is already the file's.
    return line.rsplit(": ", 1)[-1][:200] if ": " in line else line[:200]


def facts_from(answer: object, container: str, size_bytes: int) -> ClipFacts | str:
    """ffprobe's JSON answer as :class:`ClipFacts`, or why it does not describe a usable clip."""
    if not isinstance(answer, dict):
        return "ffprobe gave no readable answer for the clip; the file may be damaged"
    streams = [stream for stream in answer.get("streams") or () if isinstance(stream, dict)]
    video = [
        stream
        for stream in streams
        if stream.get("codec_type") == "video" and not (stream.get("disposition") or {}).get("attached_pic")
    ]
    if not video:
        return "no video stream in the file (sound only, or damaged); export the clip again"
    stream = video[0]
    width, height = _int(stream.get("width")), _int(stream.get("height"))
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    seconds = _float((answer.get("format") or {}).get("duration")) or _float(stream.get("duration"))
    if not width or not height or width > MAX_EDGE or height > MAX_EDGE:
        return f"the clip claims a frame of {width}×{height} pixels; the file is damaged"
    if fps is None or not 0 < fps <= MAX_FPS:
        return f"the clip claims {float(fps or 0):g} frames per second; the file is damaged"
    if seconds is None or not 0 < seconds <= MAX_SECONDS:
        return f"the clip claims to last {seconds or 0:g} s; the file is damaged"
    if _rotation(stream) in (90, 270):
        width, height = height, width
    return ClipFacts(
        container=container,
        codec=str(stream.get("codec_name") or "unknown"),
        width=width,
        height=height,
        fps=fps,
        seconds=seconds,
        size_bytes=size_bytes,
        audio=any(stream.get("codec_type") == "audio" for stream in streams),
    )


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _float(value: object) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if number == number else None  # NaN


def _rate(value: object) -> Fraction | None:
    """ "30000/1001" → Fraction(30000, 1001); "0/0" (unknown) → None."""
    try:
        rate = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return rate.limit_denominator(1001) if rate > 0 else None


def _rotation(stream: dict[str, object]) -> int:
    """The display rotation a phone writes (a side-data display matrix, or an old "rotate" tag)."""
    sides = stream.get("side_data_list")
    for side in sides if isinstance(sides, list) else ():
        if isinstance(side, dict) and "rotation" in side:
            return int(_float(side["rotation"]) or 0) % 360
    tags = stream.get("tags")
    return int(_float(tags.get("rotate")) or 0) % 360 if isinstance(tags, dict) else 0


class IsoBoxes:
    """The top-level boxes of an MP4/MOV tile the file, and one is ``moov`` (ISO/IEC 14496-12
    §4.2: a 32-bit size, or 1 and a 64-bit size after the type, or 0 for "to the end of the
    file"). Only the box headers are read: a handful of 16-byte reads for a file of any size."""

    def feed(self, block: bytes) -> None:  # the walk needs only a few headers, read at the end
        pass

    def finish(self, size: int, read_at: ReadAt) -> str | None:
        offset, seen, names = 0, 0, set()
        while offset < size:
            seen += 1
            if seen > _MAX_BOXES:
                return f"damaged: more than {_MAX_BOXES} top-level boxes; export it again"
            header = read_at(offset, 16)
            if len(header) < 8:
                return cut_off(f"inside a box header at byte {offset}")
            length, kind = struct.unpack(">I4s", header[:8])
            if length == 1:
                if len(header) < 16:
                    return cut_off(f"inside a box header at byte {offset}")
                (length,) = struct.unpack(">Q", header[8:16])
            elif length == 0:
                length = size - offset
            if length < 8:
                return f"damaged: a box at byte {offset} claims {length} bytes; export it again"
            name = kind.decode("latin-1")
            if offset + length > size:
                return cut_off(
                    f"inside its '{name}' box (it needs {offset + length} bytes, the file has {size})"
                )
            names.add(name)
            offset += length
        if "moov" not in names:
            return "damaged: no 'moov' box (the clip's index); the export did not finish: export it again"
        return None


class RiffChunks:
    """An AVI's top-level RIFF chunks tile the file, and the first is the ``AVI `` form (Microsoft
    "AVI RIFF File Reference"; files over 1 GB add ``AVIX`` forms after it, OpenDML 1.02). A chunk
    is a four-letter id, a little-endian 32-bit size and its data, padded to an even length. Only
    the chunk headers are read."""

    def feed(self, block: bytes) -> None:  # the walk needs only a few headers, read at the end
        pass

    def finish(self, size: int, read_at: ReadAt) -> str | None:
        offset, seen = 0, 0
        while offset < size:
            seen += 1
            if seen > _MAX_BOXES:
                return f"damaged: more than {_MAX_BOXES} top-level RIFF chunks; export it again"
            header = read_at(offset, 12)
            if len(header) < 12:
                return cut_off(f"inside a chunk header at byte {offset}")
            kind, length, form = struct.unpack("<4sI4s", header)
            if kind != b"RIFF" or form != (b"AVI " if offset == 0 else b"AVIX"):
                return f"damaged: byte {offset} holds no AVI RIFF chunk; export it again"
            end = offset + 8 + length
            if end > size:
                return cut_off(f"inside its RIFF chunk (it needs {end} bytes, the file has {size})")
            offset = end + (length & 1 if end < size else 0)  # the pad byte, unless it is the last
        return None


#: The header-only structure checks of video types (a few reads, never a pass over the clip), by
#: the ``structure`` name of their media type.
_HEADER_CHECKS: dict[str, Callable[[], IsoBoxes | RiffChunks]] = {
    "isobmff-boxes": IsoBoxes,
    "riff-chunks": RiffChunks,
}


def check_structure(path: Path, file_type: str) -> str | None:
    """The clip type's structure check on a file in place (``explain``): a few header reads, not a
    pass over a clip of several GB. None: whole, or a type with no such check (MPEG)."""
    media = mediatypes.get(file_type)
    factory = _HEADER_CHECKS.get(media.structure or "") if media is not None else None
    if factory is None:
        return None
    with open(path, "rb") as handle:

        def read_at(offset: int, length: int) -> bytes:
            handle.seek(offset)
            return handle.read(length)

        return factory().finish(os.fstat(handle.fileno()).st_size, read_at)
