"""Clips (issue 15, item 2): facts from one real ffprobe per clip, each agency preset's verdict with
the numbers, and the hostile clips: each one line, nothing raised, nothing transcoded."""

from __future__ import annotations

import os
import stat
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from stockbridge.assets import video
from stockbridge.assets.filetype import sniff
from stockbridge.assets.ingest import ingest, inspect
from stockbridge.assets.video import IsoBoxes, facts_from, probe
from stockbridge.config.models import PlatformConfig
from stockbridge.config.presets import load_preset
from stockbridge.errors import InputError
from stockbridge.rules.plan import evaluate
from tests.clips import Clips, clips, write_xmp

__all__ = ["clips"]  # the fixture, imported for pytest


def preset_platform(name: str) -> PlatformConfig:
    table = load_preset(name)
    table.update(protocol="folder", path="/tmp/unused")
    table.pop("host", None), table.pop("port", None), table.pop("atomic_rename", None)
    return PlatformConfig.model_validate(table)


def test_facts_come_from_ffprobe_with_the_frame_rate_as_a_rational(clips: Clips, exiftool: Any) -> None:
    mov = clips.make("ntsc.mov", size="1920x1080", seconds=1.0, rate="30000/1001", audio=True)
    mp4 = clips.make("small.mp4", seconds=2.0)
    assert (sniff(mov), sniff(mp4)) == ("mov", "mp4")
    clip = probe(mov, "mov")
    assert not isinstance(clip, str)
    assert (clip.container, clip.codec, clip.width, clip.height) == ("mov", "h264", 1920, 1080)
    assert clip.fps == Fraction(30000, 1001) and clip.fps_text == "29.97"
    assert abs(clip.seconds - 1.0) < 0.1 and clip.audio and clip.size_bytes == mov.stat().st_size
    write_xmp(mp4, "Test pattern", ["test", "pattern", "colour"])
    item = inspect(mp4, exiftool)
    assert item.problem is None and item.clip is not None
    assert item.clip.summary() == "320×180 at 25 fps, 2.0 s, H264, MP4, no sound"
    assert item.metadata is not None and item.metadata.keywords == ("test", "pattern", "colour")


def test_each_preset_says_what_does_not_fit_with_the_numbers(clips: Clips, exiftool: Any) -> None:
    short = inspect(clips.make("small.mp4", seconds=2.0), exiftool).facts()
    hd = inspect(
        clips.make("ntsc.mov", size="1920x1080", seconds=1.0, rate="30000/1001", audio=True), exiftool
    )
    shutterstock, adobe, deposit = (
        preset_platform(n) for n in ("shutterstock", "adobe_stock", "depositphotos")
    )

    verdict = evaluate("shutterstock", short, shutterstock.rules)
    assert verdict.verdict == "reject"
    assert "2.0 s; shutterstock needs 5–60 s" in verdict.reasons

    verdict = evaluate("adobe_stock", short, adobe.rules)
    assert any(
        reason.startswith("320×180 at 25 fps; adobe_stock takes only 1920×1080, 2048×1080, 3840×2160")
        for reason in verdict.reasons
    ), verdict.reasons
    assert (
        "MP4 clip, depositphotos takes only MOV, AVI, MPEG"
        in evaluate("depositphotos", short, deposit.rules).reasons
    )
    # 1920×1080 at 29.97 fps fits Adobe's frame and rate lists; only its length does not.
    verdict = evaluate("adobe_stock", hd.facts(), adobe.rules)
    assert [r for r in verdict.reasons if "fps" in r or "×" in r] == [], verdict.reasons
    # A platform without a [rules.video] table takes no clips, whatever its formats say.
    bare = PlatformConfig(protocol="folder", path=Path("/tmp/unused"))
    assert evaluate("plain", short, bare.rules).reasons == (
        "MP4 clip, plain takes no video (no [platforms.plain.rules.video] table)",
    )


def test_avi_and_mpeg_clips_are_taken_where_a_preset_takes_them_and_a_cut_avi_is_named(
    clips: Clips, exiftool: Any, tmp_path: Path
) -> None:
    avi, mpg = clips.make("pattern.avi", seconds=1.0), clips.make("pattern.mpg", seconds=1.0)
    assert (sniff(avi), sniff(mpg)) == ("avi", "mpeg")
    items = {path.suffix: ingest(path, tmp_path / "state", exiftool) for path in (avi, mpg)}
    assert [item.problem for item in items.values()] == [None, None]
    assert items[".avi"].clip is not None and items[".mpg"].clip is not None
    assert items[".avi"].clip.summary() == "320×180 at 25 fps, 1.0 s, H264, AVI, no sound"
    summary = items[".mpg"].clip.summary()  # a program stream's length is estimated: 0.9-1.0 s
    assert summary.startswith("320×180 at 25 fps, ") and summary.endswith(" s, MPEG2VIDEO, MPEG, no sound")
    adobe, dreamstime = preset_platform("adobe_stock"), preset_platform("dreamstime")
    for item in items.values():
        assert not any(
            "clip, adobe_stock takes only" in r
            for r in evaluate("adobe_stock", item.facts(), adobe.rules).reasons
        )
    assert (
        "AVI clip, dreamstime takes only MOV"
        in evaluate("dreamstime", items[".avi"].facts(), dreamstime.rules).reasons
    )
    # Cut short: the first RIFF chunk claims more bytes than the copy has.
    (tmp_path / "cut.avi").write_bytes(avi.read_bytes()[:20_000])
    cut = ingest(tmp_path / "cut.avi", tmp_path / "state", exiftool)
    assert cut.clip is None and cut.problem is not None
    assert cut.problem.startswith("cut off: the clip ends inside its RIFF chunk (it needs")


def test_hostile_clips_get_one_line_each(clips: Clips, exiftool: Any, tmp_path: Path) -> None:
    data = clips.make("plain.mp4", seconds=2.0).read_bytes()
    # The export never wrote its index: the 'moov' box is missing.
    (tmp_path / "no_index.mp4").write_bytes(b"".join(box for box in _boxes(data) if box[4:8] != b"moov"))
    # moov first (faststart): cutting the file cuts the media data, which ffprobe alone misses.
    fast = clips.make("fast.mp4", seconds=2.0, faststart=True).read_bytes()
    (tmp_path / "cut_mdat.mp4").write_bytes(fast[: len(fast) // 2])
    (tmp_path / "notes.mp4").write_text("I am a text file with a clip's name\n")
    # A real ftyp and a 'moov' box of garbage: whole boxes, but no stream ffprobe can find.
    (tmp_path / "garbage.mp4").write_bytes(data[:32] + (24).to_bytes(4, "big") + b"moov" + b"\xff" * 16)
    reasons = {}
    for name in ("no_index.mp4", "cut_mdat.mp4", "notes.mp4", "garbage.mp4"):
        item = ingest(tmp_path / name, tmp_path / "state", exiftool)
        assert item.clip is None and item.problem is not None
        reasons[name] = item.problem
    assert reasons["no_index.mp4"].startswith("damaged: no 'moov' box (the clip's index)")
    assert reasons["cut_mdat.mp4"].startswith("cut off: the clip ends inside its 'mdat' box")
    assert reasons["notes.mp4"].startswith("not a file stockbridge can take (unknown content")
    assert (
        reasons["garbage.mp4"]
        == "no video stream in the file (sound only, or damaged); export the clip again"
    )
    assert all("\n" not in reason for reason in reasons.values())
    # Absurd values claimed by a file ffprobe reads: refused, never believed.
    huge = {"streams": [{"codec_type": "video", "width": 99999, "height": 2, "avg_frame_rate": "25/1"}]}
    assert facts_from(huge, "mp4", 10) == "the clip claims a frame of 99999×2 pixels; the file is damaged"
    fast_fps = {"streams": [{"codec_type": "video", "width": 64, "height": 64, "avg_frame_rate": "90000/1"}]}
    assert facts_from(fast_fps, "mp4", 10) == "the clip claims 90000 frames per second; the file is damaged"
    assert IsoBoxes().finish(8, lambda offset, length: b"\x00\x00\x00\x04moov"[offset : offset + length]) == (
        "damaged: a box at byte 0 claims 4 bytes; export it again"
    )


def test_a_hanging_ffprobe_is_stopped_at_its_timeout(clips: Clips, tmp_path: Path) -> None:
    # No real ffprobe hangs on demand: a stand-in that never answers (and a child of its own).
    hang = tmp_path / "ffprobe"
    hang.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "args"}\nsleep 30 &\nwait\n')
    hang.chmod(hang.stat().st_mode | stat.S_IXUSR)
    clip = clips.make("small.mp4", seconds=2.0)
    reason = probe(clip, "mp4", ffprobe=str(hang), timeout=0.5)
    assert reason == "ffprobe did not finish reading the clip within 0.5 s; the file may be damaged"
    assert os.path.exists(clip)
    # It was told the demuxer and local files only (decisions.md V-2).
    assert "-protocol_whitelist file -f mov " in (tmp_path / "args").read_text()


def _boxes(data: bytes) -> list[bytes]:
    """The top-level boxes of an MP4 (32-bit sizes: a test clip's are small)."""
    boxes, offset = [], 0
    while offset < len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset : offset + size])
        offset += size
    return boxes


def test_without_ffprobe_a_clip_is_not_taken_yet_and_says_how_to_fix_it(
    clips: Clips, exiftool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video, "ffprobe_path", lambda: None)
    with pytest.raises(InputError) as refused:
        ingest(clips.make("small.mp4", seconds=2.0), tmp_path / "state", exiftool)
    assert refused.value.message == (
        "small.mp4: cannot look at a clip: ffprobe is not installed; install ffmpeg (Debian: apt install ffmpeg)"
    )
