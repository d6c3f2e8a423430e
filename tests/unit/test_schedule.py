"""Pace: daily caps and upload windows decide when each file may go (local wall-clock time)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from stockbridge.config.models import ScheduleConfig
from stockbridge.delivery.pace import forecast, next_allowed, plan_slot

MB = 1_000_000
NIGHT = ScheduleConfig(windows=["22:00-06:00"])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# fmt: off
NEXT_ALLOWED = [
    # no schedule, or nothing limits: now
    ("2025-06-10 12:00", None, 999, 10**12, MB, None),
    ("2025-06-10 12:00", ScheduleConfig(daily_max_files=5), 4, 0, MB, None),
    # the file cap: tomorrow at midnight
    ("2025-06-10 12:00", ScheduleConfig(daily_max_files=5), 5, 0, MB, "2025-06-11 00:00"),
    # the byte cap: a file that would pass it waits; one that fits goes
    ("2025-06-10 12:00", ScheduleConfig(daily_max_mb=4000), 10, 3990 * MB, 20 * MB, "2025-06-11 00:00"),
    ("2025-06-10 12:00", ScheduleConfig(daily_max_mb=4000), 10, 3970 * MB, 20 * MB, None),
    # a file larger than the whole cap goes alone as the day's first, never waits for ever
    ("2025-06-10 12:00", ScheduleConfig(daily_max_mb=10), 0, 0, 20 * MB, None),
    # a window that crosses midnight: before, inside (both sides of midnight), at its end
    ("2025-06-10 12:00", NIGHT, 0, 0, MB, "2025-06-10 22:00"),
    ("2025-06-10 22:00", NIGHT, 0, 0, MB, None),
    ("2025-06-10 23:59", NIGHT, 0, 0, MB, None),
    ("2025-06-11 03:00", NIGHT, 0, 0, MB, None),
    ("2025-06-11 06:00", NIGHT, 0, 0, MB, "2025-06-11 22:00"),
    # several windows: the next one to open
    ("2025-06-10 09:30", ScheduleConfig(windows=["06:00-09:00", "12:00-13:00"]), 0, 0, MB, "2025-06-10 12:00"),
    ("2025-06-10 13:30", ScheduleConfig(windows=["06:00-09:00", "12:00-13:00"]), 0, 0, MB, "2025-06-11 06:00"),
    # capped inside a night window: the cap restarts at midnight, still inside the window
    ("2025-06-10 23:00", ScheduleConfig(daily_max_files=2, windows=["22:00-06:00"]), 2, 0, MB, "2025-06-11 00:00"),
    # capped with a daytime window: tomorrow, when the window opens
    ("2025-06-10 10:00", ScheduleConfig(daily_max_files=2, windows=["09:00-17:00"]), 2, 0, MB, "2025-06-11 09:00"),
]
REASONS = [
    ("2025-06-10 12:00", NIGHT, 0, "scheduled: next window opens 22:00"),
    ("2025-06-10 12:00", ScheduleConfig(daily_max_files=50), 50, "daily cap of 50 files reached; resumes tomorrow 00:00"),
    ("2025-06-11 07:00", ScheduleConfig(windows=["06:00-07:00"]), 0, "scheduled: next window opens tomorrow 06:00"),
]
# fmt: on


@pytest.mark.parametrize(("now", "schedule", "files", "sent", "size", "expected"), NEXT_ALLOWED)
def test_next_allowed_follows_caps_and_windows(now, schedule, files, sent, size, expected):
    result = next_allowed(at(now), schedule, files, sent, size)
    assert result == (at(expected) if expected else None)


@pytest.mark.parametrize(("now", "schedule", "files", "reason"), REASONS)
def test_a_waiting_file_says_why_and_when(now, schedule, files, reason):
    slot = plan_slot(at(now), schedule, files, 0, MB)
    assert slot is not None
    assert slot.reason == reason


def test_a_backlog_spreads_over_the_days_its_cap_allows():
    schedule = ScheduleConfig(daily_max_files=2)
    slots = forecast(at("2025-06-10 12:00"), schedule, 1, 0, [MB] * 6)
    assert slots[0] is None  # one more goes today
    assert [slot.at if slot else None for slot in slots[1:]] == [
        at("2025-06-11 00:00"),
        at("2025-06-11 00:00"),
        at("2025-06-12 00:00"),
        at("2025-06-12 00:00"),
        at("2025-06-13 00:00"),
    ]
    assert slots[1] is not None and slots[1].reason == "daily cap of 2 files reached; resumes tomorrow 00:00"
    assert (
        slots[3] is not None and slots[3].reason == "daily cap of 2 files reached; resumes 2025-06-12 00:00"
    )


def test_a_byte_cap_lets_as_many_files_as_fit_in_123rfs_4_gb():
    schedule = ScheduleConfig(daily_max_mb=4000)
    slots = forecast(at("2025-06-10 08:00"), schedule, 0, 0, [30 * MB] * 140)
    today = [slot for slot in slots if slot is None]
    assert len(today) == 133  # 133 × 30 MB = 3990 MB
    assert all(slot is not None and slot.at == at("2025-06-11 00:00") for slot in slots[133:])


def test_windows_keep_wall_clock_time_on_the_nights_the_clocks_change():
    berlin = ZoneInfo("Europe/Berlin")
    # 2025-03-30 02:00 → 03:00 (spring forward), 2025-10-26 03:00 → 02:00 (fall back).
    for day in ("2025-03-29", "2025-10-25"):
        now = datetime.fromisoformat(f"{day} 12:00").replace(tzinfo=berlin)
        opens = next_allowed(now, ScheduleConfig(windows=["22:00-06:00"]), 0, 0, MB)
        assert opens is not None and (opens.hour, opens.minute, opens.date()) == (22, 0, now.date())
        capped = next_allowed(now, ScheduleConfig(daily_max_files=1), 1, 0, MB)
        assert capped is not None and (capped.hour, capped.day) == (0, now.day + 1)
        assert capped.timestamp() - now.timestamp() == 12 * 3600  # the change is at 02:00/03:00, after
    inside = datetime.fromisoformat("2025-03-30 04:00").replace(tzinfo=berlin)
    assert next_allowed(inside, ScheduleConfig(windows=["22:00-06:00"]), 0, 0, MB) is None


def test_a_malformed_window_is_a_config_error_with_its_path():
    from stockbridge.config.loading import validate_config
    from stockbridge.errors import ConfigError

    data = {
        "watch": {"folder": "in"},
        "platforms": {"a": {"protocol": "folder", "path": "out", "schedule": {"windows": ["10pm-6am"]}}},
    }
    with pytest.raises(ConfigError) as caught:
        validate_config(data)
    assert caught.value.problems == [
        'platforms.a.schedule.windows: expected "HH:MM-HH:MM" (24-hour clock), got "10pm-6am"'
    ]
