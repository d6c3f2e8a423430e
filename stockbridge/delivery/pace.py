"""Pace: when a platform's next upload may go, given its daily caps and time windows.

A platform's ``schedule`` caps what goes per *local calendar day* (files and MB; the count
restarts at local midnight) and may restrict uploads to local-time windows (``"22:00-06:00"``
crosses midnight). Everything here works on wall-clock time: ``now`` is a naive local datetime
(or an aware one; its tzinfo is kept), so a window opens at 22:00 on the clock also on the days the
clocks change. Only when a wall-clock time becomes a timestamp (``datetime.timestamp()``) does the
zone matter, and Python resolves that through the local zone rules.

A job that may not go yet stays ``pending`` in the ledger; ``status`` and ``once`` show it as
*scheduled* with the time it will go (:func:`forecast`). The ledger's states are untouched: a
scheduled job has no final answer yet, exactly like any other pending job.

The first part is pure (table-tested); :func:`sent_today`, :func:`admit` and
:func:`scheduled_jobs` read the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from stockbridge.config.models import ScheduleConfig

if TYPE_CHECKING:
    from stockbridge.ledger.store import Job, Ledger

#: The clock, injectable: naive local wall-clock time.
Clock = Callable[[], datetime]
MB = 1_000_000
#: A display state (``status``, ``once``): a pending job that waits for its platform's schedule.
SCHEDULED = "scheduled"


@dataclass(frozen=True, slots=True)
class Window:
    start: time
    end: time  # end <= start: the window crosses midnight (equal: all day)

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        if self.start > self.end:
            return moment >= self.start or moment < self.end
        return True


@dataclass(frozen=True, slots=True)
class Slot:
    """A job may not go now: when it may, and why it waits."""

    at: datetime
    reason: str


def parse_window(text: str) -> Window:
    """``"22:00-06:00"`` → Window(22:00, 06:00). The config has checked the shape."""
    start, end = text.split("-")
    return Window(time.fromisoformat(start), time.fromisoformat(end))


def day_start(moment: datetime) -> datetime:
    """Local midnight that began ``moment``'s day: where the daily caps restart."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def in_window(moment: datetime, windows: Sequence[Window]) -> bool:
    return not windows or any(window.contains(moment.time()) for window in windows)


def next_window_open(moment: datetime, windows: Sequence[Window]) -> datetime:
    """``moment`` if inside a window (or there are none), else when the next window opens."""
    if in_window(moment, windows):
        return moment
    candidates = []
    for window in windows:
        opening = datetime.combine(moment.date(), window.start, tzinfo=moment.tzinfo)
        candidates.append(opening if opening > moment else opening + timedelta(days=1))
    return min(candidates)


def plan_slot(
    now: datetime,
    schedule: ScheduleConfig | None,
    sent_today_files: int,
    sent_today_bytes: int,
    next_size: int,
) -> Slot | None:
    """None: a file of ``next_size`` bytes may go now. Else when it may, and why it waits.

    A file larger than the whole daily byte cap goes alone as the first file of a day, rather than
    wait for ever (the agency judges it; for 123RF's 4 GB that is not a photo anyway).
    """
    if schedule is None:
        return None
    windows = [parse_window(text) for text in schedule.windows]
    cap: str | None = None
    if schedule.daily_max_files is not None and sent_today_files >= schedule.daily_max_files:
        cap = f"daily cap of {schedule.daily_max_files} files reached"
    elif (
        schedule.daily_max_mb is not None
        and sent_today_bytes > 0
        and sent_today_bytes + next_size > schedule.daily_max_mb * MB
    ):
        cap = f"daily cap of {schedule.daily_max_mb:g} MB reached"
    if cap is not None:
        at = next_window_open(day_start(now) + timedelta(days=1), windows)
        return Slot(at, f"{cap}; resumes {when(at, now)}")
    if not in_window(now, windows):
        at = next_window_open(now, windows)
        return Slot(at, f"scheduled: next window opens {when(at, now)}")
    return None


def next_allowed(
    now: datetime,
    schedule: ScheduleConfig | None,
    sent_today_files: int,
    sent_today_bytes: int,
    next_size: int,
) -> datetime | None:
    """When a file of ``next_size`` bytes may go: None means now."""
    slot = plan_slot(now, schedule, sent_today_files, sent_today_bytes, next_size)
    return None if slot is None else slot.at


def forecast(
    now: datetime,
    schedule: ScheduleConfig | None,
    sent_today_files: int,
    sent_today_bytes: int,
    sizes: Sequence[int],
) -> list[Slot | None]:
    """For files of ``sizes`` sent in order: None for each that may go now, else its slot."""
    result: list[Slot | None] = []
    moment, files, sent = now, sent_today_files, sent_today_bytes
    cause: Slot | None = None  # why the files from `moment` on wait (None: they go now)
    for size in sizes:
        first: Slot | None = None
        while True:
            slot = plan_slot(moment, schedule, files, sent, size)
            if slot is None:
                break
            first = first or slot
            if slot.at.date() != moment.date():
                files, sent = 0, 0  # a new day: the caps start again
            moment = slot.at
        cause = first or cause
        result.append(None if cause is None else Slot(moment, _reason_at(cause, moment, now)))
        files, sent = files + 1, sent + size
    return result


def _reason_at(first: Slot, at: datetime, now: datetime) -> str:
    """The first cause a file waits for, with the time it will really go (said relative to now)."""
    if first.reason.startswith("daily cap"):
        cause = first.reason.split(";")[0]
        return f"{cause}; resumes {when(at, now)}"
    if at == first.at:
        return f"scheduled: next window opens {when(at, now)}"
    return f"scheduled: outside the upload windows; goes {when(at, now)}"


def when(moment: datetime, now: datetime) -> str:
    """``22:00``, ``tomorrow 00:00`` or ``2025-03-02 00:00``, relative to ``now``."""
    days = (moment.date() - now.date()).days
    clock = moment.strftime("%H:%M")
    if days == 0:
        return clock
    if days == 1:
        return f"tomorrow {clock}"
    return f"{moment:%Y-%m-%d} {clock}"


# ---------------------------------------------------------------------- from the ledger


def sent_today(ledger: Ledger, platform: str, now: datetime) -> tuple[int, int]:
    """(files, bytes) uploaded to ``platform`` since local midnight."""
    return ledger.uploaded_since(platform, day_start(now).timestamp())


def admit(
    ledger: Ledger, platform: str, schedule: ScheduleConfig | None, jobs: Sequence[Job], now: datetime
) -> tuple[list[Job], Slot | None]:
    """The leading ``jobs`` that may go now, and (if any must wait) when the next of them may."""
    if schedule is None or not jobs:
        return list(jobs), None
    files, sent = sent_today(ledger, platform, now)
    for index, job in enumerate(jobs):
        slot = plan_slot(now, schedule, files, sent, job.upload_size or 0)
        if slot is not None:
            return list(jobs[:index]), slot
        files, sent = files + 1, sent + (job.upload_size or 0)
    return list(jobs), None


def scheduled_jobs(
    ledger: Ledger, platform: str, schedule: ScheduleConfig | None, now: datetime
) -> dict[int, Slot]:
    """Pending jobs of ``platform`` that wait for its schedule: job id → when it goes, and why."""
    if schedule is None:
        return {}
    from stockbridge.ledger import states

    pending = ledger.jobs(platform=platform, states=[states.PENDING])
    files, sent = sent_today(ledger, platform, now)
    slots = forecast(now, schedule, files, sent, [job.upload_size or 0 for job in pending])
    return {job.id: slot for job, slot in zip(pending, slots, strict=True) if slot is not None}
