"""The watcher against a real watchdog observer in a temporary folder.

Settle times are short (0.3–0.6 s) to keep the suite fast; every wait polls with a deadline.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from loguru import logger

from stockbridge import watcher as watcher_module
from stockbridge.watcher import Watcher, collect_settled

SETTLE = 0.3
DEADLINE = 5.0  # generous upper bound for anything to show up; never reached when things work


@dataclass
class Handed:
    path: Path
    at: float  # time.monotonic() when on_ready was called
    size: int  # the file's size at that moment


@dataclass
class Recorder:
    """A thread-safe on_ready that remembers what it was given."""

    handed: list[Handed] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, path: Path) -> None:
        size = path.stat().st_size
        with self.lock:
            self.handed.append(Handed(path, time.monotonic(), size))

    @property
    def paths(self) -> list[Path]:
        with self.lock:
            return [item.path for item in self.handed]

    def wait_for(self, path: Path, timeout: float = DEADLINE) -> Handed:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for item in self.handed:
                    if item.path == path:
                        return item
            time.sleep(0.02)
        pytest.fail(f"{path.name} was not handed over within {timeout} s; got {self.paths}")


WatcherFactory = Callable[..., Watcher]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    # Resolved like the watcher resolves it, so reported paths compare equal.
    return folder.resolve()


@pytest.fixture
def start_watcher(root: Path) -> Iterator[WatcherFactory]:
    started: list[Watcher] = []

    def start(on_ready: Callable[[Path], None], **options: object) -> Watcher:
        options.setdefault("settle_seconds", SETTLE)
        watcher = Watcher(root, on_ready=on_ready, **options)  # type: ignore[arg-type]
        watcher.start()
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.stop(timeout=5.0)


def settle_margin(settle: float = SETTLE) -> None:
    """Long enough for anything that was going to be handed over to have been."""
    time.sleep(settle + 0.3)


def test_a_slowly_written_file_is_handed_over_once_after_its_last_write(
    root: Path, start_watcher: WatcherFactory
) -> None:
    settle = 0.6  # twice the gap between pieces, so a normal scheduling hiccup cannot split them
    recorder = Recorder()
    start_watcher(recorder, settle_seconds=settle)
    photo = root / "slow.jpg"
    with photo.open("wb") as handle:
        for _ in range(5):
            handle.write(os.urandom(64 * 1024))
            handle.flush()
            last_write = time.monotonic()
            time.sleep(0.3)
    handed = recorder.wait_for(photo)
    settle_margin(settle)
    assert recorder.paths == [photo]
    assert handed.size == 5 * 64 * 1024  # never half a file
    assert handed.at >= last_write + settle


def test_a_temp_file_renamed_to_its_final_name_is_handed_over_under_the_final_name(
    root: Path, start_watcher: WatcherFactory
) -> None:
    recorder = Recorder()
    start_watcher(recorder)
    temp, final = root / "x.tmp", root / "x.jpg"
    temp.write_bytes(os.urandom(32 * 1024))
    os.replace(temp, final)
    recorder.wait_for(final)
    settle_margin()
    assert recorder.paths == [final]


def test_a_file_moved_in_from_outside_the_folder_is_handed_over(
    root: Path, tmp_path: Path, start_watcher: WatcherFactory
) -> None:
    recorder = Recorder()
    start_watcher(recorder)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "b.jpg").write_bytes(os.urandom(16 * 1024))
    os.replace(outside / "b.jpg", root / "b.jpg")
    recorder.wait_for(root / "b.jpg")


def test_files_exported_while_the_service_was_stopped_are_handed_over_at_start(
    root: Path, start_watcher: WatcherFactory
) -> None:
    (root / "sub").mkdir()
    early = [root / "early1.jpg", root / "sub" / "early2.jpg"]
    for path in early:
        path.write_bytes(b"exported yesterday")
    recorder = Recorder()
    start_watcher(recorder)
    for path in early:
        recorder.wait_for(path)
    settle_margin()
    assert sorted(recorder.paths) == sorted(early)


def test_junk_names_are_never_handed_over(root: Path, start_watcher: WatcherFactory) -> None:
    recorder = Recorder()
    start_watcher(recorder)
    junk = [
        ".DS_Store",
        "._photo.jpg",
        "Thumbs.db",
        "photo.jpg.part",
        "photo.tmp",
        "~$photo.psd",
        "@eaDir/photo.jpg",
        ".hidden/photo.jpg",
    ]
    for name in junk:
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_bytes(b"junk")
    sentinel = root / "real.jpg"
    sentinel.write_bytes(b"a real photo")  # written last: once it is out, the junk had its chance
    recorder.wait_for(sentinel)
    settle_margin()
    assert recorder.paths == [sentinel]


def test_a_directory_named_like_a_photo_is_never_handed_over(
    root: Path, start_watcher: WatcherFactory
) -> None:
    recorder = Recorder()
    start_watcher(recorder)
    (root / "x.jpg").mkdir()
    sentinel = root / "real.jpg"
    sentinel.write_bytes(b"a real photo")
    recorder.wait_for(sentinel)
    settle_margin()
    assert recorder.paths == [sentinel]


def test_files_in_sub_folders_are_seen_when_recursive(root: Path, start_watcher: WatcherFactory) -> None:
    recorder = Recorder()
    start_watcher(recorder, recursive=True)
    (root / "editorial" / "2024").mkdir(parents=True)
    nested = root / "editorial" / "2024" / "news.jpg"
    nested.write_bytes(b"nested photo")
    recorder.wait_for(nested)


def test_files_in_sub_folders_are_not_seen_when_not_recursive(
    root: Path, start_watcher: WatcherFactory
) -> None:
    (root / "existing").mkdir()
    (root / "existing" / "old.jpg").write_bytes(b"old")  # the startup scan must skip it too
    recorder = Recorder()
    start_watcher(recorder, recursive=False)
    (root / "sub").mkdir()
    (root / "sub" / "nested.jpg").write_bytes(b"nested photo")
    sentinel = root / "top.jpg"
    sentinel.write_bytes(b"top photo")
    recorder.wait_for(sentinel)
    settle_margin()
    assert recorder.paths == [sentinel]


def test_a_failing_on_ready_does_not_stop_later_files(root: Path, start_watcher: WatcherFactory) -> None:
    recorder = Recorder()
    calls: list[Path] = []

    def flaky(path: Path) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise RuntimeError("the pipeline choked on the first file")
        recorder(path)

    start_watcher(flaky)
    first, second = root / "first.jpg", root / "second.jpg"
    first.write_bytes(b"first")
    deadline = time.monotonic() + DEADLINE
    while not calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert calls == [first]
    second.write_bytes(b"second")
    recorder.wait_for(second)


def test_the_polling_observer_sees_new_files(root: Path, start_watcher: WatcherFactory) -> None:
    recorder = Recorder()
    start_watcher(recorder, observer="polling", poll_interval=0.1)
    photo = root / "on_a_share.jpg"
    photo.write_bytes(os.urandom(8 * 1024))
    recorder.wait_for(photo)


def test_the_polling_observer_follows_a_temp_file_renamed_to_its_final_name(
    root: Path, start_watcher: WatcherFactory
) -> None:
    recorder = Recorder()
    start_watcher(recorder, observer="polling", poll_interval=0.1)
    temp, final = root / ".x.jpg.partial", root / "x.jpg"
    temp.write_bytes(os.urandom(8 * 1024))
    time.sleep(0.3)  # let a poll see the temp name first
    os.replace(temp, final)
    recorder.wait_for(final)
    settle_margin()
    assert recorder.paths == [final]


def test_when_native_events_are_unavailable_the_watcher_falls_back_to_polling(
    root: Path, start_watcher: WatcherFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ExhaustedInotify(watcher_module.Observer):  # type: ignore[misc,valid-type]
        def start(self) -> None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher_module, "Observer", ExhaustedInotify)
    recorder = Recorder()
    watcher = start_watcher(recorder, poll_interval=0.1)
    assert watcher.observer_kind == "polling"
    photo = root / "still_seen.jpg"
    photo.write_bytes(b"photo")
    recorder.wait_for(photo)


def test_the_periodic_rescan_finds_files_no_event_announced(
    root: Path, start_watcher: WatcherFactory
) -> None:
    recorder = Recorder()
    # A polling observer that would not look again for a minute stands in for lost events.
    start_watcher(recorder, observer="polling", poll_interval=60.0, rescan_seconds=0.3)
    photo = root / "missed.jpg"
    photo.write_bytes(b"an event for this was lost")
    recorder.wait_for(photo)


def test_a_file_changed_after_hand_over_is_handed_over_again(
    root: Path, start_watcher: WatcherFactory
) -> None:
    recorder = Recorder()
    start_watcher(recorder)
    photo = root / "a.jpg"
    photo.write_bytes(b"first export")
    recorder.wait_for(photo)
    photo.write_bytes(b"second export, edited")
    deadline = time.monotonic() + DEADLINE
    while len(recorder.paths) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder.paths == [photo, photo]
    assert [item.size for item in recorder.handed] == [12, 21]


def test_stop_ends_both_threads_promptly(root: Path) -> None:
    before = set(threading.enumerate())
    watcher = Watcher(root, on_ready=Recorder(), settle_seconds=SETTLE)
    watcher.start()
    assert len(set(threading.enumerate()) - before) >= 2
    started = time.monotonic()
    watcher.stop(timeout=5.0)
    assert time.monotonic() - started < 2.0
    assert not [thread for thread in set(threading.enumerate()) - before if thread.is_alive()]


# --- collect_settled (stockbridge once) -----------------------------------------------------------


def test_collect_settled_returns_finished_files_and_lists_one_still_growing(root: Path) -> None:
    done = root / "done.jpg"
    done.write_bytes(b"finished export")
    growing = root / "growing.jpg"
    growing.write_bytes(b"")
    (root / "junk.tmp").write_bytes(b"junk")
    stop = threading.Event()

    def keep_appending() -> None:
        with growing.open("ab") as handle:
            while not stop.wait(0.05):
                handle.write(b"more")
                handle.flush()

    writer = threading.Thread(target=keep_appending, daemon=True)
    writer.start()
    started = time.monotonic()
    try:
        stable, still_changing = collect_settled(
            root, recursive=True, settle_seconds=SETTLE, ignore=(), max_wait=1.0
        )
    finally:
        stop.set()
        writer.join(timeout=2.0)
    elapsed = time.monotonic() - started
    assert stable == [done]
    assert still_changing == [growing]
    assert SETTLE <= elapsed < 1.0 + SETTLE + 0.5  # bounded by max_wait


def test_collect_settled_takes_a_file_that_stops_changing_before_max_wait(root: Path) -> None:
    late = root / "late.jpg"
    late.write_bytes(b"")

    def finish_soon() -> None:
        with late.open("ab") as handle:
            for _ in range(4):  # 0.4 s of writing, shorter than max_wait
                handle.write(b"chunk")
                handle.flush()
                time.sleep(0.1)

    writer = threading.Thread(target=finish_soon, daemon=True)
    writer.start()
    try:
        stable, still_changing = collect_settled(
            root, recursive=True, settle_seconds=SETTLE, ignore=(), max_wait=2.0
        )
    finally:
        writer.join(timeout=2.0)
    assert (stable, still_changing) == ([late], [])
    assert late.stat().st_size == 20


def test_collect_settled_on_an_empty_folder_returns_at_once(root: Path) -> None:
    started = time.monotonic()
    assert collect_settled(root, recursive=True, settle_seconds=10.0, ignore=(), max_wait=60.0) == ([], [])
    assert time.monotonic() - started < 1.0


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    lines: list[str] = []
    handler = logger.add(lambda message: lines.append(str(message)), level="WARNING", format="{message}")
    yield lines
    logger.remove(handler)


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)


def test_a_dead_native_observer_is_restarted_and_later_files_are_still_handed_over(
    root: Path, start_watcher: WatcherFactory, warnings: list[str]
) -> None:
    recorder = Recorder()
    watcher = start_watcher(recorder, rescan_seconds=None)
    first = watcher._observer
    assert first is not None
    first.stop()  # behind the watcher's back, like a crashed emitter
    first.join(DEADLINE)
    wait_until(lambda: watcher.observer_restarts == 1 and watcher._observer is not first)
    photo = root / "after_restart.jpg"
    photo.write_bytes(b"written once the first observer was dead")
    recorder.wait_for(photo)
    restarts = [line for line in warnings if "restarting it" in line]
    assert len(restarts) == 1
    assert str(root) in restarts[0]


def test_a_polling_emitter_that_stopped_on_an_error_is_rebuilt(
    root: Path, start_watcher: WatcherFactory
) -> None:
    recorder = Recorder()
    watcher = start_watcher(recorder, observer="polling", poll_interval=0.1, rescan_seconds=None)
    observer = watcher._observer
    assert observer is not None
    # watchdog's polling emitter stops itself on the first OSError (an unreachable share) while the
    # observer thread lives on: only the emitter is dead.
    for emitter in list(observer.emitters):
        emitter.stop()
        emitter.join(DEADLINE)
    assert observer.is_alive()
    wait_until(lambda: watcher.observer_restarts == 1 and watcher._observer is not observer)
    photo = root / "after_share_came_back.jpg"
    photo.write_bytes(b"photo")
    recorder.wait_for(photo)


def test_an_observer_that_keeps_dying_is_restarted_with_a_growing_wait(
    root: Path, start_watcher: WatcherFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watcher_module, "OBSERVER_RESTART_BACKOFF_SECONDS", 0.5)
    restart_times: list[float] = []
    sink = logger.add(
        lambda message: restart_times.append(time.monotonic()),
        level="WARNING",
        filter=lambda record: "restarting it" in record["message"],
    )
    try:
        watcher = start_watcher(Recorder(), rescan_seconds=None)
        for restarts in (1, 2, 3):
            observer = watcher._observer
            assert observer is not None
            observer.stop()
            observer.join(DEADLINE)
            # The counter goes up before the new observer is in place: wait for both.
            wait_until(
                lambda: watcher.observer_restarts == restarts and watcher._observer is not observer  # noqa: B023
            )
    finally:
        logger.remove(sink)
    first_wait = restart_times[1] - restart_times[0]
    second_wait = restart_times[2] - restart_times[1]
    assert first_wait >= 0.45  # the first backoff was waited out
    assert second_wait >= 0.95  # and then doubled


def test_an_event_whose_recording_raises_does_not_stop_later_events(
    root: Path, start_watcher: WatcherFactory, monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    recorder = Recorder()
    watcher = start_watcher(recorder, rescan_seconds=None)
    real_touch = watcher._tracker.touch

    def touch(path: Path, now: float | None = None, *, event: bool = True) -> None:
        if path.name == "poison.jpg":
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "a hostile name")
        real_touch(path, now, event=event)

    monkeypatch.setattr(watcher._tracker, "touch", touch)
    (root / "poison.jpg").write_bytes(b"x")
    wait_until(lambda: any("could not be recorded" in line for line in warnings))
    photo = root / "after_poison.jpg"
    photo.write_bytes(b"photo")
    recorder.wait_for(photo)
    observer = watcher._observer
    assert observer is not None and observer.is_alive()
    assert watcher.observer_restarts == 0  # the handler swallowed it; nothing died
    assert root / "poison.jpg" not in recorder.paths


def test_a_file_that_never_stops_changing_is_reported_once_as_unstable_and_not_handed_over(
    root: Path, start_watcher: WatcherFactory, warnings: list[str]
) -> None:
    recorder = Recorder()
    unstable: list[Path] = []
    start_watcher(
        recorder,
        settle_seconds=0.2,
        max_settle_seconds=1.0,
        on_unstable=unstable.append,
        rescan_seconds=None,
    )
    busy = root / "busy.jpg"
    calm = root / "calm.jpg"
    stop_writing = threading.Event()

    def keep_writing() -> None:
        with busy.open("ab") as handle:
            while not stop_writing.wait(0.05):
                handle.write(b"more")
                handle.flush()

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        calm.write_bytes(b"a finished photo")
        recorder.wait_for(calm)  # a busy file does not hold the others back
        wait_until(lambda: unstable == [busy])
        time.sleep(1.5)  # well past another max_settle_seconds while it keeps changing
    finally:
        stop_writing.set()
        writer.join(DEADLINE)
    assert unstable == [busy]
    assert busy not in recorder.paths
    reports = [line for line in warnings if "busy.jpg" in line]
    assert len(reports) == 1
    assert "unstable" in reports[0] and "not uploaded" in reports[0]
    assert "max_settle_seconds" in reports[0]


def test_a_polled_folder_that_vanishes_and_comes_back_is_watched_again(
    root: Path, start_watcher: WatcherFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watcher_module, "OBSERVER_RESTART_BACKOFF_SECONDS", 0.2)
    monkeypatch.setattr(watcher_module, "OBSERVER_RESTART_MAX_BACKOFF_SECONDS", 0.4)
    recorder = Recorder()
    watcher = start_watcher(recorder, observer="polling", poll_interval=0.1, rescan_seconds=None)
    away = root.with_name("share_unmounted")
    root.rename(away)  # like an unreachable share: the polling snapshot raises OSError
    try:
        wait_until(lambda: watcher.observer_restarts >= 2)  # keeps dying while the folder is gone
    finally:
        away.rename(root)
    photo = root / "after_the_share_came_back.jpg"
    photo.write_bytes(b"photo")
    recorder.wait_for(photo)  # no rescan_seconds: only a rebuilt observer (and its rescan) finds it
    wait_until(lambda: watcher_module._observer_running(watcher._observer))  # type: ignore[arg-type]


def test_a_native_observer_rebuilt_while_the_folder_is_gone_stays_native_and_sees_it_come_back(
    root: Path, start_watcher: WatcherFactory, monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    monkeypatch.setattr(watcher_module, "OBSERVER_RESTART_BACKOFF_SECONDS", 0.2)
    monkeypatch.setattr(watcher_module, "OBSERVER_RESTART_MAX_BACKOFF_SECONDS", 0.4)
    recorder = Recorder()
    watcher = start_watcher(recorder, rescan_seconds=None)
    away = root.with_name("unmounted")
    root.rename(away)
    try:
        observer = watcher._observer
        assert observer is not None
        observer.stop()
        observer.join(DEADLINE)
        wait_until(lambda: any("Cannot restart the folder observer" in line for line in warnings))
    finally:
        away.rename(root)
    photo = root / "back_again.jpg"
    photo.write_bytes(b"photo")
    recorder.wait_for(photo)
    assert watcher.observer_kind == "native"  # not mistaken for the inotify watch limit
    assert not any("sysctl" in line for line in warnings)


@dataclass
class Skipped:
    """A thread-safe on_skipped that remembers what it was given."""

    calls: list[tuple[Path, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, path: Path, what: str) -> None:
        with self.lock:
            self.calls.append((path, what))

    def of(self, path: Path) -> list[str]:
        with self.lock:
            return [what for seen, what in self.calls if seen == path]


def seconds_until(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.parametrize("observer", ["native", "polling"])
def test_links_pipes_and_photo_named_folders_made_while_watching_are_reported_at_once_not_at_the_rescan(
    root: Path, tmp_path: Path, start_watcher: WatcherFactory, observer: str
) -> None:
    secret = tmp_path / "id_ed25519"
    secret.write_text("PRIVATE KEY")
    warnings: list[str] = []
    sink = logger.add(
        lambda message: warnings.append(str(message).rstrip("\n")), level="WARNING", format="{message}"
    )
    recorder, skipped = Recorder(), Skipped()
    try:
        # rescan_seconds=None: no rescan at all, so only the events can have told.
        start_watcher(recorder, on_skipped=skipped, rescan_seconds=None, observer=observer, poll_interval=0.2)
        link, fifo, folder, photo = root / "key.jpg", root / "p.jpg", root / "x.jpg", root / "ok.jpg"
        link.symlink_to(secret)
        os.mkfifo(fifo)
        folder.mkdir()
        photo.write_bytes(os.urandom(8 * 1024))
        took = seconds_until(
            lambda: skipped.of(link) and skipped.of(fifo) and skipped.of(folder), "the reports"
        )
        recorder.wait_for(photo)
        settle_margin()
    finally:
        logger.remove(sink)
    assert took < 3.0
    assert recorder.paths == [photo], "the normal file next to them goes through, nothing else"
    assert skipped.of(link) == ["a symbolic link, never followed; copy the photo in"]
    assert skipped.of(fifo) == ["not a regular file (a pipe, socket or device); never opened"]
    assert skipped.of(folder) == ["a folder, not a photo; the files inside it are looked at"]
    for path in (link, fifo, folder):
        assert [line for line in warnings if line.startswith(f"{path}: ")] == [
            f"{path}: {skipped.of(path)[0]}"
        ]


def test_a_link_removed_and_made_again_is_reported_again_but_a_rescan_does_not_repeat_it(
    root: Path, tmp_path: Path, start_watcher: WatcherFactory
) -> None:
    target = tmp_path / "elsewhere.jpg"
    target.write_bytes(b"x")
    skipped = Skipped()
    watcher = start_watcher(Recorder(), on_skipped=skipped, rescan_seconds=None, observer="native")
    link = root / "l.jpg"
    link.symlink_to(target)
    seconds_until(lambda: skipped.of(link), "the first report")
    watcher.rescan()
    watcher.tick()
    assert len(skipped.of(link)) == 1, "seen again by a scan: not a new report"
    link.unlink()
    time.sleep(0.3)  # the deletion event
    link.symlink_to(target)
    seconds_until(lambda: len(skipped.of(link)) == 2, "the report of the new link")
