"""Pace: a platform's daily cap and windows hold files back; `once` sends what today allows and exits 0."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table


def wait_past_midnight_if_near(margin: timedelta = timedelta(seconds=60)) -> None:
    """Daily caps restart at local midnight: a test that straddles it would see a new day."""
    now = datetime.now()
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
    if midnight - now < margin:
        time.sleep((midnight - now).total_seconds() + 1)


def test_once_with_a_daily_cap_of_two_sends_two_and_schedules_the_rest(
    workspace: Workspace, exiftool, folder_target
):
    wait_past_midnight_if_near()
    for seed in range(1, 6):
        make_image(
            workspace.exports / f"IMG_{seed:04}.jpg",
            width=800,
            height=600,
            exiftool=exiftool,
            seed=seed,
            title=f"Sample {seed}",
        )
    workspace.write_config(platform_table("archive", folder_target, schedule={"daily_max_files": 2}))

    first = workspace.cli("once")
    assert first.returncode == 0, first.stderr  # scheduled is not a failure: cron expects 0
    assert len([p for p in folder_target.root.iterdir() if p.is_file()]) == 2
    assert "archive: 3 file(s) scheduled, the first goes tomorrow 00:00" in first.stderr
    assert "jobs: 3 scheduled, 2 uploaded" in first.stderr

    jobs = [entry["platforms"]["archive"] for entry in workspace.status()["files"]]
    assert sorted(job["state"] for job in jobs) == ["scheduled"] * 3 + ["uploaded"] * 2
    scheduled = [job for job in jobs if job["state"] == "scheduled"]
    tomorrow = datetime.now().date().toordinal() + 1
    for job in scheduled:
        assert job["reason"].startswith("daily cap of 2 files reached; resumes ")
        assert datetime.fromisoformat(job["scheduled_at"]).date().toordinal() in (tomorrow, tomorrow + 1)
    assert sum("resumes tomorrow 00:00" in job["reason"] for job in scheduled) == 2  # then one the day after

    table = workspace.cli("status")
    assert table.returncode == 0, table.stderr
    assert "scheduled" in table.stdout and "daily cap of 2 files reached" in table.stdout

    second = workspace.cli("once")
    assert second.returncode == 0, second.stderr
    assert len([p for p in folder_target.root.iterdir() if p.is_file()]) == 2, "the cap was passed"
    assert sorted(e["platforms"]["archive"]["state"] for e in workspace.status()["files"]) == (
        ["scheduled"] * 3 + ["uploaded"] * 2
    )


def test_once_outside_every_window_sends_nothing_and_says_when_the_window_opens(
    workspace: Workspace, exiftool, folder_target
):
    wait_past_midnight_if_near()
    now = datetime.now()
    # A one-minute window that opened two hours ago (wrapping over midnight as needed).
    start = (now.hour + 22) % 24
    window = f"{start:02}:00-{start:02}:01"
    make_image(workspace.exports / "IMG_1.jpg", width=800, height=600, exiftool=exiftool, seed=1)
    workspace.write_config(platform_table("archive", folder_target, schedule={"windows": [window]}))

    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert not [p for p in Path(folder_target.root).iterdir() if p.is_file()]
    (entry,) = workspace.status()["files"]
    job = entry["platforms"]["archive"]
    assert job["state"] == "scheduled"
    assert job["reason"] == f"scheduled: next window opens tomorrow {start:02}:00" or (
        start > now.hour and job["reason"] == f"scheduled: next window opens {start:02}:00"
    )


def test_status_can_list_only_the_scheduled_files(workspace: Workspace, exiftool, folder_target):
    for index in range(3):
        make_image(
            workspace.exports / f"IMG_{index}.jpg",
            width=800,
            height=600,
            title="t",
            exiftool=exiftool,
            seed=index,
        )
    workspace.write_config(platform_table("archive", folder_target, **{"schedule.daily_max_files": 1}))
    assert workspace.cli("once").returncode == 0
    result = workspace.cli("status", "--state", "scheduled", "--json")
    assert result.returncode == 0, result.stderr
    states = [
        job["state"] for entry in json.loads(result.stdout)["files"] for job in entry["platforms"].values()
    ]
    assert states == ["scheduled", "scheduled"]
