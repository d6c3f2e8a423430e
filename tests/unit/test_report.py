"""What `status` and `history` show: filters over the ledger, batches newest first."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from stockbridge.cli.report import history_payload, parse_since, status_payload
from stockbridge.config.loading import validate_config
from stockbridge.errors import ConfigError
from stockbridge.ledger import states
from stockbridge.ledger.store import Ledger

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds_back"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("3d", 3 * 86400), ("1w", 7 * 86400), ("1.5h", 5400)],
)
def test_since_takes_a_duration_back_from_now(text, seconds_back):
    assert parse_since(text, now=NOW) == NOW - seconds_back


def test_since_takes_a_local_date_or_date_time():
    assert parse_since("2026-11-01", now=NOW) == datetime(2026, 11, 1).timestamp()
    assert parse_since("2026-11-01T18:30", now=NOW) == datetime(2026, 11, 1, 18, 30).timestamp()


def test_since_rejects_anything_else_with_examples():
    with pytest.raises(ConfigError) as caught:
        parse_since("yesterday")
    assert "--since yesterday" in caught.value.message and "2h" in (caught.value.hint or "")


def write_ledger(state: Path) -> None:
    """Three files on two platforms; the oldest job last changed ten days ago."""
    book = Ledger(state / "ledger.sqlite3")
    for letter in "abc":
        book.record_asset(
            sha256=letter * 64, path=f"/exports/{letter}.jpg", size=1, file_type="jpeg", object_path=None
        )
    book.create_job(sha256="a" * 64, platform="shop", state=states.UPLOADED, remote_name="a.jpg")
    book.create_job(sha256="a" * 64, platform="archive", state=states.HELD, reason="needs a title")
    book.create_job(sha256="b" * 64, platform="shop", state=states.FAILED, reason="550 refused")
    book.create_job(sha256="c" * 64, platform="archive", state=states.UPLOADED, remote_name="c.jpg")
    for platform, files, uploaded, failed in [("shop", 2, 1, 1), ("archive", 1, 1, 0)]:
        batch = book.open_batch(platform, files)
        book.close_batch(batch, uploaded, failed)
    book.open_batch("shop", 3)  # still open
    book.close()
    with sqlite3.connect(state / "ledger.sqlite3") as db:
        db.execute("UPDATE jobs SET updated_at=? WHERE sha256=?", (time.time() - 10 * 86400, "c" * 64))


@pytest.fixture
def config(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    write_ledger(state)
    return validate_config(
        {
            "watch": {"folder": str(tmp_path / "exports")},
            "state": {"dir": str(state)},
            "platforms": {
                "shop": {"protocol": "folder", "path": str(tmp_path / "shop")},
                "archive": {"protocol": "folder", "path": str(tmp_path / "archive")},
            },
        }
    )


def cells(payload: dict) -> set[tuple[str, str, str]]:
    return {
        (Path(entry["path"]).name, platform, job["state"])
        for entry in payload["files"]
        for platform, job in entry["platforms"].items()
    }


def test_status_without_filters_shows_every_job(config):
    assert cells(status_payload(config)) == {
        ("a.jpg", "shop", "uploaded"),
        ("a.jpg", "archive", "held"),
        ("b.jpg", "shop", "failed"),
        ("c.jpg", "archive", "uploaded"),
    }


def test_status_filters_by_platform_and_leaves_out_files_with_nothing_there(config):
    payload = status_payload(config, platforms={"shop"})
    assert cells(payload) == {("a.jpg", "shop", "uploaded"), ("b.jpg", "shop", "failed")}
    assert set(payload["files"][0]) == {"path", "sha256", "kind", "platforms"}


def test_status_filters_by_several_states(config):
    assert cells(status_payload(config, states={"held", "failed"})) == {
        ("a.jpg", "archive", "held"),
        ("b.jpg", "shop", "failed"),
    }


def test_status_since_leaves_out_jobs_that_last_changed_before(config):
    assert ("c.jpg", "archive", "uploaded") not in cells(status_payload(config, since=parse_since("3d")))
    assert ("c.jpg", "archive", "uploaded") in cells(status_payload(config, since=parse_since("2w")))


def test_history_lists_batches_newest_first_with_their_counts(config):
    batches = history_payload(config)["batches"]
    assert [(b["platform"], b["files"], b["uploaded"], b["failed"]) for b in batches] == [
        ("shop", 3, 0, 0),
        ("archive", 1, 1, 0),
        ("shop", 2, 1, 1),
    ]
    assert batches[0]["closed"] is None and batches[1]["closed"] is not None
    datetime.fromisoformat(batches[1]["opened"])
    assert len(history_payload(config, limit=2)["batches"]) == 2


def test_status_lists_files_not_taken_with_their_reason_relative_to_the_watch_folder(config, tmp_path):
    from rich.console import Console

    from stockbridge.cli.report import print_status_table

    sub = tmp_path / "2026" / "june"
    sub.mkdir(parents=True)
    (sub / "x.jpg").symlink_to(tmp_path / "nowhere")
    (tmp_path / "evil\x1b[31m.jpg").write_bytes(b"x")
    book = Ledger(config.ledger_path)
    book.note(str(sub / "x.jpg"), "link", "a symbolic link, never followed; copy the photo in")
    book.note(str(tmp_path / "evil\x1b[31m.jpg"), "refused", "has 2 hard links; not taken [watch]")
    book.close()

    payload = status_payload(config)
    assert [(Path(e["path"]).name, e["kind"]) for e in payload["not_taken"]] == [
        ("x.jpg", "link"),  # sorted by path: .../2026/june/x.jpg before .../evil...
        ("evil\x1b[31m.jpg", "refused"),
    ]
    assert status_payload(config, platforms={"shop"})["not_taken"] == [], "no platform's business"
    console = Console(width=200, record=True, color_system=None)
    print_status_table(config, payload, console)
    text = console.export_text()
    assert "Not taken" in text
    assert "2026/june/x.jpg" in text and "a symbolic link, never followed; copy the photo in" in text
    assert "evil\\x1b[31m.jpg" in text and "\x1b" not in text, "a hostile name is shown escaped"
    assert "has 2 hard links; not taken [watch]" in text, "brackets are not taken for markup"
