"""The watcher against a real watchdog observer in a temporary folder.

Settle times are short (0.3–0.6 s) to keep the suite fast; every wait polls for its event with a
deadline. Where a test needs a file to be "still being written", the settle clock is driven by the
test (``SettleClock``, ``OnceClock``), so no thread's timing can make it look finished.
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
from watchdog.events import FileSystemEvent, FileSystemEventHandler

from stockbridge.intake import observers as observers_module
from stockbridge.intake import settle as settle_module
from stockbridge.intake import watcher as watcher_module
from stockbridge.intake.settle import collect_settled
from stockbridge.intake.watcher import Watcher
from tests.waiting import wait_for

SETTLE = 0.3
DEADLINE = 5.0  # generous upper bound for anything to show up; never reached when things work


@dataclass
class Handed:
    path: Path
    at: float  # time.monotonic() when on_ready was called
    size: int  # the file's size at that moment


@dataclass
class Recorder:
    """A thread-safe on_ready that remembers what it was given, and when by ``clock``."""

    handed: list[Handed] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], float] = time.monotonic

    def __call__(self, path: Path) -> None:
        size = path.stat().st_size
        with self.lock:
            self.handed.append(Handed(path, self.clock(), size))

    @property
    def paths(self) -> list[Path]:
        with self.lock:
            return [item.path for item in self.handed]

    def first(self, path: Path) -> Handed | None:
        with self.lock:
            return next((item for item in self.handed if item.path == path), None)

    def wait_for(self, path: Path, timeout: float = DEADLINE) -> Handed:
        return wait_for(lambda: self.first(path), timeout, f"{path.name} to be handed over")


class SettleClock:
    """The watcher's settle clock, driven by the test: settle time passes only when the test says.

    Between two ``advance`` calls the writer has changed the file, so whatever the real scheduling
    (a slow event, a busy machine), the watcher never sees it unchanged for a full settle window.
    """

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
    """A window in which nothing more may be handed over (a junk name, a second handover).

    The one deliberate sleep here: it looks for something that must NOT happen, so a correct
    watcher passes however slow the machine; it only bounds how long a wrong handover is looked for.
    """
    time.sleep(settle + 0.3)


def test_a_slowly_written_file_is_handed_over_once_after_its_last_write(
    root: Path, start_watcher: WatcherFactory
) -> None:
    settle = 0.6
    clock = SettleClock()
    recorder = Recorder(clock=clock)
    watcher = start_watcher(recorder, settle_seconds=settle, clock=clock)
    photo = root / "slow.jpg"
    with photo.open("wb") as handle:
        for _ in range(5):
            handle.write(os.urandom(64 * 1024))
            handle.flush()
            last_write = clock()
            clock.advance(settle / 2)  # the writer pauses for half the settle time ...
            assert watcher.tick() == [] and recorder.paths == [], "taken while still being written"
    clock.advance(settle / 4)  # ... and after its last write, not yet a full settle window
    assert watcher.tick() == [] and recorder.paths == [], "taken before settle_seconds had passed"

    def handed() -> Handed | None:
        clock.advance(0.05)
        return recorder.first(photo)

    at = wait_for(handed, DEADLINE, "the finished file to be handed over")
    assert at.size == 5 * 64 * 1024  # never half a file
    assert at.at >= last_write + settle
    for _ in range(3):
        clock.advance(settle)
        watcher.tick()
    assert recorder.paths == [photo], "handed over once"


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
    wait_for(lambda: calls, DEADLINE, "the first file to reach on_ready")
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
    watcher = start_watcher(recorder, observer="polling", poll_interval=0.1)
    temp, final = root / ".x.jpg.partial", root / "x.jpg"
    seen: list[str] = []

    class Spy(FileSystemEventHandler):
        def on_created(self, event: FileSystemEvent) -> None:
            seen.append(os.fsdecode(event.src_path))

    assert watcher._observer is not None
    watcher._observer.schedule(Spy(), str(root))
    temp.write_bytes(os.urandom(8 * 1024))
    wait_for(lambda: str(temp) in seen, DEADLINE, "a poll to see the temp name first")
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
    wait_for(lambda: len(recorder.paths) >= 2, DEADLINE, "the edited file to be handed over")
    assert recorder.paths == [photo, photo]
    assert [item.size for item in recorder.handed] == [12, 21]


def test_stop_ends_both_threads_and_leaves_none_behind(root: Path, warnings: list[str]) -> None:
    before = set(threading.enumerate())
    watcher = Watcher(root, on_ready=Recorder(), settle_seconds=SETTLE)
    watcher.start()
    assert len(set(threading.enumerate()) - before) >= 2
    watcher.stop(timeout=DEADLINE)
    assert not [thread for thread in set(threading.enumerate()) - before if thread.is_alive()]
    assert not [line for line in warnings if "did not stop" in line]


# --- collect_settled (stockbridge once) -----------------------------------------------------------


class OnceClock:
    """Stands in for the ``time`` module of ``collect_settled``: a sleep moves the clock on at once
    and lets ``during_sleep`` act (a writer adding to a file), so what changes within each settle
    window is decided by the test, not by how the machine schedules threads."""

    def __init__(self, during_sleep: Callable[[], None]) -> None:
        self.now = 0.0
        self.during_sleep = during_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.during_sleep()


def test_collect_settled_returns_finished_files_and_lists_one_still_growing(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = root / "done.jpg"
    done.write_bytes(b"finished export")
    growing = root / "growing.jpg"
    growing.write_bytes(b"")
    (root / "junk.tmp").write_bytes(b"junk")

    def append() -> None:
        with growing.open("ab") as handle:
            handle.write(b"more")

    clock = OnceClock(append)
    monkeypatch.setattr(settle_module, "time", clock)
    stable, still_changing = collect_settled(
        root, recursive=True, settle_seconds=SETTLE, ignore=(), max_wait=1.0
    )
    assert stable == [done]
    assert still_changing == [growing]
    assert SETTLE <= clock.now <= 1.0  # at least one settle window, and bounded by max_wait


def test_collect_settled_takes_a_file_that_stops_changing_before_max_wait(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = root / "late.jpg"
    late.write_bytes(b"")
    pieces = iter([b"chunk"] * 4)  # written over the first four settle windows, then no more

    def append() -> None:
        piece = next(pieces, None)
        if piece is not None:
            with late.open("ab") as handle:
                handle.write(piece)

    monkeypatch.setattr(settle_module, "time", OnceClock(append))
    stable, still_changing = collect_settled(
        root, recursive=True, settle_seconds=SETTLE, ignore=(), max_wait=2.0
    )
    assert (stable, still_changing) == ([late], [])
    assert late.stat().st_size == 20


def test_collect_settled_on_an_empty_folder_returns_at_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = OnceClock(lambda: None)
    monkeypatch.setattr(settle_module, "time", clock)
    assert collect_settled(root, recursive=True, settle_seconds=10.0, ignore=(), max_wait=60.0) == ([], [])
    assert clock.now == 0.0, "waited a settle window for nothing"


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    lines: list[str] = []
    handler = logger.add(lambda message: lines.append(str(message)), level="WARNING", format="{message}")
    yield lines
    logger.remove(handler)


def wait_until(condition: Callable[[], object], what: str = "the condition") -> None:
    wait_for(condition, DEADLINE, what)


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
    clock = SettleClock()
    recorder = Recorder(clock=clock)
    unstable: list[Path] = []
    watcher = start_watcher(
        recorder,
        settle_seconds=0.2,
        max_settle_seconds=1.0,
        on_unstable=unstable.append,
        rescan_seconds=None,
        clock=clock,
    )
    busy = root / "busy.jpg"
    calm = root / "calm.jpg"
    calm.write_bytes(b"a finished photo")
    reported_at: float | None = None
    deadline = time.monotonic() + DEADLINE
    with busy.open("ab") as handle:
        # Written between every step of the settle clock, for three max_settle_seconds past the
        # report: it never stands still for a settle window, however the threads are scheduled.
        while reported_at is None or clock() < reported_at + 3.0 or calm not in recorder.paths:
            assert time.monotonic() < deadline, f"handed over {recorder.paths}, unstable {unstable}"
            handle.write(b"more")
            handle.flush()
            clock.advance(0.05)
            watcher.tick()
            if unstable and reported_at is None:
                reported_at = clock()
    # A busy file does not hold the others back.
    assert calm in recorder.paths
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
    wait_until(lambda: observers_module._observer_running(watcher._observer))  # type: ignore[arg-type]


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
        wait_for(
            lambda: skipped.of(link) and skipped.of(fifo) and skipped.of(folder), DEADLINE, "the reports"
        )
        recorder.wait_for(photo)
        settle_margin()
    finally:
        logger.remove(sink)
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
    wait_for(lambda: skipped.of(link), DEADLINE, "the first report")
    watcher.rescan()
    watcher.tick()
    assert len(skipped.of(link)) == 1, "seen again by a scan: not a new report"
    link.unlink()
    wait_for(lambda: link not in watcher._skipped, DEADLINE, "the deletion event")
    link.symlink_to(target)
    wait_for(lambda: len(skipped.of(link)) == 2, DEADLINE, "the report of the new link")
