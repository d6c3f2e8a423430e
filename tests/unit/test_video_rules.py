"""The [rules.video] table and the clip cap of a batch, as pure units (issue 15): the numbers a reason
names, the key a bad value is reported under, and which jobs a capped batch leaves for the next."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from stockbridge.assets.video import ClipFacts, describe
from stockbridge.config.loading import load_config
from stockbridge.config.video import VideoRules
from stockbridge.delivery.batch import Batch, capped_top_up, clip_cap, fit_clips, is_clip
from stockbridge.errors import ConfigError
from stockbridge.ledger.states import JobState
from stockbridge.ledger.store import Job
from stockbridge.rules.video import clip_rejects

HD = ClipFacts("mov", "h264", 1280, 720, Fraction(30000, 1001), 12.0, 80_000_000, audio=True)


def job(number: int, clip: bool) -> Job:
    meta: dict[str, object] = {"clip": {"codec": "h264"}} if clip else {"title": "a photo"}
    return Job(
        number,
        f"{number:064x}",
        "p",
        JobState.PENDING,
        None,
        0,
        None,
        None,
        None,
        None,
        0,
        0,
        0,
        None,
        "f",
        meta=meta,
    )


def test_reasons_name_the_clip_and_the_agency_numbers() -> None:
    rules = VideoRules(
        resolutions=[
            "1920x1080",
            "2048×1080",
            "3840x2160",
            "4096x2160",
            "4096x2304",
            "7680x4320",
            "8192x4320",
        ],
        min_seconds=15,
        frame_rates=[25, 50],
        codecs=["ProRes"],
        audio=False,
        max_file_mb=50,
    )
    assert clip_rejects("adobe_stock", HD, rules) == [
        "H264 video, adobe_stock takes only PRORES",
        "12.0 s; adobe_stock needs at least 15 s",
        "1280×720 at 29.97 fps; adobe_stock takes only 1920×1080, 2048×1080, 3840×2160, 4096×2160, 4096×2304,"
        " 7680×4320, …; stockbridge never scales a clip",
        "29.97 fps; adobe_stock takes 25, 50 fps",
        "80.0 MB, adobe_stock takes clips of at most 50 MB",
        "the clip has a sound track, adobe_stock takes clips without sound; export it muted",
    ]
    wide = ClipFacts("mp4", "h264", 1920, 804, Fraction(24000, 1001), 10.0, 1, audio=False)
    assert (
        clip_rejects("a", wide, VideoRules(resolutions=["1920x1080"], widescreen=True, frame_rates=[23.98]))
        == []
    )
    upright = ClipFacts("mp4", "hevc", 1080, 1920, Fraction(30), 10.0, 1, audio=False)
    assert clip_rejects("p", upright, VideoRules(min_resolution="1920x1080")) == []
    assert clip_rejects("p", HD, VideoRules(min_resolution="1920x1080")) == [
        "1280×720; p needs at least 1920×1080; stockbridge never upscales"
    ]
    assert describe(HD.as_meta()) == "1280×720 at 29.97 fps, 12.0 s, H264, MOV, sound"
    assert describe({"fps": "1/0"}) is None


def config_with(tmp_path: Path, tables: str) -> Path:
    path, exports = tmp_path / "config.toml", tmp_path / "exports"
    exports.mkdir(exist_ok=True)
    path.write_text(
        f'[watch]\nfolder = "{exports}"\n[platforms.p]\nprotocol = "folder"\npath = "{tmp_path / "sent"}"\n'
        + tables
    )
    path.chmod(0o600)
    return path


def test_a_bad_video_key_is_reported_under_its_path(tmp_path: Path) -> None:
    path = config_with(
        tmp_path,
        '[platforms.p.rules.video]\ncontainers = ["mkv"]\nresolutions = ["1920*1080"]\nmin_seconds = 9\n'
        "max_seconds = 5\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = "\n".join(caught.value.problems)
    assert (
        "platforms.p.rules.video.containers" in problems
        and "unknown container 'mkv'; known: mp4, mov, avi, mpeg" in problems
    )
    assert "platforms.p.rules.video.resolutions" in problems and 'like "1920x1080"' in problems


def test_the_old_place_of_the_video_table_still_loads_and_the_warning_names_the_new_one(
    tmp_path: Path,
) -> None:
    """Configs written while video rules sat at [platforms.NAME.video] keep working (issue 15)."""
    config = load_config(config_with(tmp_path, "[platforms.p.video]\nmax_clips_per_batch = 3\n"))
    assert clip_cap(config.platforms["p"]) == 3
    assert config.warnings == (
        f"{tmp_path / 'config.toml'}: platforms.p.video: renamed to platforms.p.rules.video in"
        " stockbridge 0.1.0; the old name still works, but write the new one",
    )
    both = config_with(
        tmp_path, "[platforms.p.video]\naudio = false\n[platforms.p.rules.video]\naudio = true\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(both)
    assert caught.value.problems == [
        "platforms.p.video: renamed to platforms.p.rules.video in stockbridge 0.1.0, and the file sets"
        " platforms.p.rules.video too; remove platforms.p.video"
    ]


def test_a_batch_takes_photos_and_at_most_the_cap_of_clips_the_rest_wait() -> None:
    jobs = [job(1, True), job(2, False), job(3, True), job(4, True), job(5, False)]
    assert [j.id for j in fit_clips(jobs, 2)] == [1, 2, 3, 5]
    assert fit_clips(jobs, None) == jobs
    batch = Batch(1, "p", [job(10, True)])
    given_back: list[int] = []
    more = capped_top_up(
        lambda _dir, _room: jobs, batch, 2, lambda left: given_back.extend(j.id for j in left)
    )
    assert [j.id for j in more(None, 10)] == [1, 2, 5]  # one clip already in the batch
    assert given_back == [3, 4] and not is_clip(jobs[1])
