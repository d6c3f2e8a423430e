"""The command-line twins of the page's actions: the same code, the same ledger, the same words."""

from __future__ import annotations

import sqlite3

from click.testing import CliRunner
from starlette.testclient import TestClient

from stockbridge.cli.main import main
from stockbridge.ledger.migrations import MIGRATIONS
from tests.web.conftest import Site


def test_pause_and_resume_on_the_command_line_show_on_the_page(site: Site, client: TestClient) -> None:
    config = ["--config", str(site.workspace.config)]
    paused = CliRunner().invoke(main, ["pause", "--platform", "agency", *config])
    assert paused.exit_code == 0 and "agency paused" in paused.output
    card = {card["name"]: card for card in client.get("/api/platforms").json()}["agency"]
    assert card["activity"] == "paused" and card["paused"] == {
        "kind": "manual",
        "reason": "paused by you",
        "until": None,
        "advice": "You paused it: resume it when it should go on.",
    }
    assert client.get("/api/status").json()["paused"] == {"agency": "paused by you"}
    resumed = CliRunner().invoke(main, ["resume", "--platform", "agency", *config])
    assert resumed.exit_code == 0 and resumed.output.strip() == "agency resumed"
    assert client.get("/api/platforms").json()[0]["paused"] is None
    unknown = CliRunner().invoke(main, ["pause", "--platform", "nowhere", *config])
    assert unknown.exit_code == 2 and "no such platform" in unknown.output


def test_recheck_on_the_command_line(site: Site) -> None:
    result = CliRunner().invoke(main, ["recheck", "--config", str(site.workspace.config)])
    assert result.exit_code == 0 and "looked at 0 held file(s) again" in result.output


def test_an_upgraded_ledger_starts_each_jobs_history_at_its_state(tmp_path) -> None:
    events = next(migration for migration in MIGRATIONS if "job_events" in migration.name)
    db = sqlite3.connect(tmp_path / "old.sqlite3")
    db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, sha256, platform, state, reason, updated_at)")
    db.execute("CREATE TABLE assets (sha256 TEXT PRIMARY KEY, first_seen REAL)")
    db.execute("INSERT INTO jobs VALUES (1, 'a', 'shop', 'failed', 'the server refused this file', 5.0)")
    db.executescript(events.sql)
    rows = db.execute("SELECT job_id, platform, state, reason, at FROM job_events").fetchall()
    assert rows == [(1, "shop", "failed", "the server refused this file", 5.0)]
    db.execute("UPDATE jobs SET state='pending', reason=NULL, updated_at=6.0 WHERE id=1")
    db.execute("UPDATE jobs SET updated_at=7.0 WHERE id=1")  # no move: no history line
    assert [row[0] for row in db.execute("SELECT state FROM job_events ORDER BY id")] == ["failed", "pending"]


def test_resend_from_the_page_sends_a_held_reexport_once(tmp_path, exiftool) -> None:
    from stockbridge.service.once import run_once
    from stockbridge.web.app import WebContext, build_app
    from stockbridge.web.token import TokenKeeper
    from tests.configs import folder_platforms_config
    from tests.web.conftest import LISTEN, ORIGIN, photos

    config = folder_platforms_config(tmp_path, "settle_seconds = 0.2", shop="")
    photos(config.watch.folder, exiftool, ("beach.jpg",))
    run_once(config)
    photos(config.watch.folder, exiftool, ("beach.jpg",), seed=42)  # exported again: new bytes
    run_once(config)
    keeper = TokenKeeper(config.state.dir)
    context = WebContext(config)
    with TestClient(build_app(context, keeper, listen=LISTEN), base_url=ORIGIN) as client:
        client.headers.update({"Authorization": f"Bearer {keeper.current()}", "Origin": ORIGIN})
        held = client.get("/api/files?state=held").json()["items"]
        assert len(held) == 1 and "re-export" in held[0]["platforms"]["shop"]["reason"]
        answer = client.post("/api/actions/resend", json={"id": held[0]["id"], "platform": "shop"})
        assert answer.status_code == 200, answer.text
        assert client.get(f"/api/files/{held[0]['id']}").json()["platforms"]["shop"]["state"] == "pending"
        run_once(config)
        assert client.get("/api/files?state=uploaded").json()["total"] == 2
        again = client.post("/api/actions/resend", json={"id": held[0]["id"]})
        assert again.status_code == 409, "sent once: nothing held to resend"
    context.reader.close()
    assert (
        sorted(path.name for path in (tmp_path / "shop").iterdir()) == ["beach-1.jpg", "beach.jpg"]
        or len(list((tmp_path / "shop").iterdir())) == 2
    )
