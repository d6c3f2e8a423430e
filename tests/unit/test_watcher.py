"""Unit tests for the watcher's pure parts: ignore rules, fingerprints, scan, and the settle state
machine driven by a fake clock (no sleeps)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockbridge.intake.scan import is_ignored, scan
from stockbridge.intake.settle import Fingerprint, SettleTracker, fingerprint

SETTLE = 10.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracker(clock: FakeClock) -> SettleTracker:
    return SettleTracker(SETTLE, max_settle_seconds=100.0, clock=clock)


def append(path: Path, data: bytes = b"x" * 100) -> None:
    with path.open("ab") as handle:
        handle.write(data)


# --- is_ignored -----------------------------------------------------------------------------------

ROOT = Path("/exports")


@pytest.mark.parametrize(
    ("relative", "extra", "ignored"),
    [
        ("IMG_0001.jpg", (), False),
        ("sub/IMG_0001.jpg", (), False),
        ("IMG_0001.xmp", (), False),  # sidecars pass; the pipeline decides by content type
        ("IMG_0001.tif", (), False),
        ("my~photo.jpg", (), False),  # a tilde inside the name is fine
        (".DS_Store", (), True),
        ("._IMG_0001.jpg", (), True),  # macOS AppleDouble resource fork
        (".IMG_0001.jpg.tmp", (), True),  # atomic-save temp name
        ("IMG_0001.tmp", (), True),
        ("IMG_0001.TMP", (), True),  # case does not matter
        ("IMG_0001.temp", (), True),
        ("IMG_0001.jpg.part", (), True),
        ("IMG_0001.jpg.partial", (), True),
        ("IMG_0001.jpg.crdownload", (), True),
        ("IMG_0001.jpg.download", (), True),
        ("IMG_0001.jpg.filepart", (), True),
        ("~$IMG_0001.psd", (), True),
        ("IMG_0001.jpg~", (), True),
        ("Thumbs.db", (), True),
        ("THUMBS.DB", (), True),
        ("desktop.ini", (), True),
        ("@eaDir/IMG_0001.jpg", (), True),  # everything inside an ignored folder
        ("#recycle/IMG_0001.jpg", (), True),
        (".hidden/IMG_0001.jpg", (), True),  # hidden folders
        ("sub/.cache/deep/IMG_0001.jpg", (), True),
        ("rejects/IMG_0001.jpg", ("rejects",), True),  # user patterns apply to folders too
        ("IMG_0001_draft.jpg", ("*_draft.*",), True),
        ("IMG_0001.jpg", ("*_draft.*",), False),
    ],
)
def test_junk_names_and_everything_inside_junk_folders_are_ignored(
    relative: str, extra: tuple[str, ...], ignored: bool
) -> None:
    assert is_ignored(ROOT / relative, ROOT, extra) is ignored


def test_hidden_folders_above_the_watch_folder_do_not_hide_it() -> None:
    root = Path("/home/me/.local/exports")
    assert not is_ignored(root / "IMG_0001.jpg", root, ())


def test_a_path_outside_the_watch_folder_is_never_taken() -> None:
    assert is_ignored(Path("/etc/passwd"), ROOT, ())


# --- fingerprint ----------------------------------------------------------------------------------


def test_a_regular_file_has_a_fingerprint_that_changes_when_it_grows(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"1234")
    first = fingerprint(photo)
    assert isinstance(first, Fingerprint)
    assert first.size == 4
    append(photo)
    second = fingerprint(photo)
    assert second is not None and second != first and second.size == 104


def test_a_directory_named_like_a_photo_has_no_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").mkdir()
    assert fingerprint(tmp_path / "x.jpg") is None


def test_a_symlink_to_a_real_file_has_no_fingerprint(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"private key")
    (tmp_path / "photo.jpg").symlink_to(secret)
    assert fingerprint(tmp_path / "photo.jpg") is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_a_named_pipe_has_no_fingerprint(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    assert fingerprint(tmp_path / "pipe.jpg") is None


def test_a_missing_file_has_no_fingerprint(tmp_path: Path) -> None:
    assert fingerprint(tmp_path / "gone.jpg") is None


# --- scan -----------------------------------------------------------------------------------------


def make_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "b.jpg").write_bytes(b"b")
    (root / "a.jpg").write_bytes(b"a")
    (root / "sub" / "c.jpg").write_bytes(b"c")
    (root / "sub" / "deeper" / "d.jpg").write_bytes(b"d")
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "@eaDir").mkdir()
    (root / "@eaDir" / "thumb.jpg").write_bytes(b"thumb")
    (root / "dir.jpg").mkdir()


def test_scan_lists_every_real_file_sorted_and_skips_junk(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert scan(tmp_path, recursive=True) == [
        tmp_path / "a.jpg",
        tmp_path / "b.jpg",
        tmp_path / "sub" / "c.jpg",
        tmp_path / "sub" / "deeper" / "d.jpg",
    ]


def test_scan_without_recursion_lists_only_the_top_folder(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert scan(tmp_path, recursive=False) == [tmp_path / "a.jpg", tmp_path / "b.jpg"]


def test_scan_does_not_follow_symlinks_even_into_a_loop(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.jpg").write_bytes(b"p")
    root = tmp_path / "exports"
    root.mkdir()
    (root / "real.jpg").write_bytes(b"r")
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)
    (root / "linked.jpg").symlink_to(outside / "private.jpg")
    (root / "loop").symlink_to(root, target_is_directory=True)
    assert scan(root, recursive=True) == [root / "real.jpg"]


def test_scan_applies_user_ignore_patterns(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert scan(tmp_path, recursive=True, extra_ignore=("sub",)) == [tmp_path / "a.jpg", tmp_path / "b.jpg"]


# --- SettleTracker --------------------------------------------------------------------------------


def test_a_file_is_due_only_after_settle_seconds_without_change(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"data")
    tracker.touch(photo)
    clock.advance(SETTLE - 0.1)
    assert tracker.due() == []
    clock.advance(0.1)
    assert tracker.due() == [photo]


def test_a_settled_file_is_handed_out_once_even_when_rescanned(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"data")
    tracker.touch(photo)
    clock.advance(SETTLE)
    assert tracker.due() == [photo]
    tracker.touch(photo)  # a rescan or a reader's event: same bytes
    clock.advance(SETTLE)
    assert tracker.due() == []
    assert len(tracker) == 0


def test_a_file_changed_after_it_settled_is_handed_out_again(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"v1")
    tracker.touch(photo)
    clock.advance(SETTLE)
    assert tracker.due() == [photo]
    append(photo)  # re-exported with new edits
    tracker.touch(photo)
    clock.advance(SETTLE)
    assert tracker.due() == [photo]


def test_each_event_restarts_the_timer_of_a_file_being_written(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"")
    tracker.touch(photo)
    for _ in range(5):  # a slow writer: a piece every 6 s, each shorter than settle
        clock.advance(6.0)
        append(photo)
        tracker.touch(photo)
        assert tracker.due() == []
    clock.advance(SETTLE - 1)
    assert tracker.due() == []
    clock.advance(1)
    assert tracker.due() == [photo]


def test_frequent_rescans_do_not_hold_back_a_settling_file(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"data")
    tracker.touch(photo)
    for _ in range(4):
        clock.advance(SETTLE / 4)
        tracker.touch(photo, event=False)
    assert tracker.due() == [photo]


def test_a_rescan_that_sees_a_change_restarts_the_timer(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"data")
    tracker.touch(photo)
    clock.advance(SETTLE - 1)
    append(photo)
    tracker.touch(photo, event=False)
    clock.advance(1)
    assert tracker.due() == []
    clock.advance(SETTLE - 1)
    assert tracker.due() == [photo]


def test_a_change_without_an_event_is_caught_by_the_final_stat(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"start")
    tracker.touch(photo)
    clock.advance(SETTLE / 2)
    append(photo)  # the event was lost (queue overflow, network share)
    clock.advance(SETTLE / 2)
    assert tracker.due() == []  # changed: the timer restarts now
    clock.advance(SETTLE - 0.1)
    assert tracker.due() == []
    clock.advance(0.1)
    assert tracker.due() == [photo]


def test_a_busy_file_does_not_delay_the_others(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    busy, quiet = tmp_path / "busy.jpg", tmp_path / "quiet.jpg"
    busy.write_bytes(b"")
    quiet.write_bytes(b"done")
    tracker.touch(busy)
    tracker.touch(quiet)
    for _ in range(3):
        clock.advance(SETTLE / 2 + 0.5)
        append(busy)
        tracker.touch(busy)
    assert tracker.due() == [quiet]


def test_a_file_deleted_while_settling_is_dropped_silently(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"data")
    tracker.touch(photo)
    photo.unlink()
    clock.advance(SETTLE)
    assert tracker.due() == []
    assert tracker.unstable() == []
    assert len(tracker) == 0


def test_directories_and_symlinks_are_never_tracked(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    (tmp_path / "x.jpg").mkdir()
    target = tmp_path / "target"
    target.write_bytes(b"t")
    (tmp_path / "link.jpg").symlink_to(target)
    tracker.touch(tmp_path / "x.jpg")
    tracker.touch(tmp_path / "link.jpg")
    clock.advance(SETTLE)
    assert tracker.due() == []


def test_a_file_replaced_by_a_directory_while_settling_is_dropped(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"data")
    tracker.touch(photo)
    photo.unlink()
    photo.mkdir()
    clock.advance(SETTLE)
    assert tracker.due() == []


def test_a_file_that_never_stops_changing_is_reported_unstable_once(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "log.jpg"
    photo.write_bytes(b"")
    tracker.touch(photo)
    reported: list[Path] = []
    for _ in range(30):  # 30 × 5 s = 150 s of changes, max_settle_seconds is 100 s
        clock.advance(5.0)
        append(photo)
        tracker.touch(photo)
        assert tracker.due() == []
        reported += tracker.unstable()
    assert reported == [photo]


def test_an_unstable_file_stays_watched_and_is_taken_once_it_stands_still(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "slow.jpg"
    photo.write_bytes(b"")
    tracker.touch(photo)
    while not tracker.unstable():
        clock.advance(5.0)
        append(photo)
        tracker.touch(photo)
        tracker.due()
    assert len(tracker) == 1  # given up on and reported, still watched
    clock.advance(SETTLE)  # the writer finished with the change that made it unstable
    assert tracker.due() == [photo]
    assert tracker.unstable() == []


def test_the_last_write_of_a_long_episode_is_not_lost(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    # The writer stops just before the episode is max_settle_seconds old: the pass that gives up on
    # it falls inside the settle wait of its final bytes, which must still be handed out.
    photo = tmp_path / "late.jpg"
    photo.write_bytes(b"")
    tracker.touch(photo)
    clock.advance(99.0)
    append(photo)
    tracker.touch(photo)
    clock.advance(1.0)
    assert tracker.due() == []  # 100 s old and changed 1 s ago: unstable
    assert tracker.unstable() == [photo]
    clock.advance(SETTLE)
    assert tracker.due() == [photo]


def test_a_file_that_keeps_changing_through_many_episodes_is_reported_unstable_only_once(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "forever.jpg"
    photo.write_bytes(b"")
    tracker.touch(photo)
    reports: list[Path] = []
    for _ in range(200):  # several times max_settle_seconds of constant change
        clock.advance(5.0)
        append(photo)
        tracker.touch(photo)
        tracker.due()
        reports += tracker.unstable()
    assert reports == [photo]
    clock.advance(SETTLE)  # it finally settles: handed out, and a later episode may be reported again
    assert tracker.due() == [photo]


def test_unstable_is_detected_even_without_events(
    tmp_path: Path, tracker: SettleTracker, clock: FakeClock
) -> None:
    photo = tmp_path / "slow.jpg"
    photo.write_bytes(b"")
    tracker.touch(photo)
    for _ in range(12):  # only the final stat sees the changes
        clock.advance(SETTLE)
        append(photo)
        assert tracker.due() == []
    assert tracker.unstable() == [photo]


def test_settle_of_zero_hands_out_files_on_the_next_pass(tmp_path: Path, clock: FakeClock) -> None:
    tracker = SettleTracker(0.0, clock=clock)
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"data")
    tracker.touch(photo)
    assert tracker.due() == [photo]


def test_max_settle_shorter_than_settle_is_refused() -> None:
    with pytest.raises(ValueError, match="max_settle_seconds"):
        SettleTracker(10.0, max_settle_seconds=5.0)
