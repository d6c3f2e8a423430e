"""A state folder written by 0.1.0 opens with this code: every file keeps its answer, nothing is sent
again, and new files go. A ledger from a newer stockbridge is refused, and a failed upgrade changes
nothing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from stockbridge.cli.report import history_payload, status_payload
from stockbridge.config.loading import validate_config
from stockbridge.ledger import states, store
from stockbridge.ledger.migrations import MIGRATIONS, SCHEMA_VERSION, Migration
from stockbridge.ledger.store import Ledger, LedgerError
from tests.legacy import add_asset, add_job, ledger_0_1_0


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def write_0_1_0_state(state: Path) -> Path:
    """A 0.1.0 state folder: jobs in every state, a release, a closed batch and one a crash cut
    short, a paused platform, a file not taken."""
    path = state / "ledger.sqlite3"
    db = ledger_0_1_0(path)
    for name in ["up.jpg", "gone.jpg", "cut.jpg", "wait.jpg", "held.jpg", "small.jpg", "refused.jpg"]:
        add_asset(db, sha(name), f"/exports/{name}")
    add_asset(db, sha("release.pdf"), "/exports/release.pdf")
    meta = {"title": "Up", "description": None, "keywords": ["a", "b"], "editorial": False, "releases": []}
    add_job(db, sha("up.jpg"), "shop", "uploaded", remote_name="up.jpg", upload_size=1000, attempts=1,
            verified=1, uploaded_at=1.0e9, batch_id=1, changes="keywords 62 → 50 (first 50 kept)",
            meta=json.dumps(meta))  # fmt: skip
    add_job(db, sha("up.jpg"), "archive", "uploaded", remote_name="up.jpg", attempts=1, verified=1,
            uploaded_at=1.0e9)  # fmt: skip
    add_job(db, sha("gone.jpg"), "shop", "uploaded", remote_name="gone.jpg", attempts=1, verified=0,
            uploaded_at=1.0e9, reason="the server took the file and moved it away at once (not verifiable)")  # fmt: skip
    add_job(db, sha("cut.jpg"), "shop", "uploading", remote_name="cut.jpg", upload_size=1000, attempts=1,
            batch_id=2, upload_path=str(state / "objects" / "cut.jpg"))  # fmt: skip
    add_job(db, sha("wait.jpg"), "shop", "pending", remote_name="wait.jpg", attempts=1, next_attempt_at=2.0e9,
            reason="attempt 1 failed (timed out); retrying in 60 s")  # fmt: skip
    add_job(db, sha("release.pdf"), "shop", "pending", kind="release", remote_name="up_MR.pdf",
            remote_dir="/releases")  # fmt: skip
    add_job(db, sha("held.jpg"), "archive", "held", reason="needs a model release (people detected)")
    add_job(
        db, sha("small.jpg"), "shop", "rejected", reason="1.0 MP (1200×900), agency needs at least 2.0 MP"
    )
    add_job(db, sha("refused.jpg"), "shop", "failed", remote_name="refused.jpg", attempts=1,
            reason="the server refused this file: 553 file name not allowed")  # fmt: skip
    db.execute("INSERT INTO batches VALUES (1, 'shop', 1.0e9, 1.0e9 + 5, 2, 1, 1)")
    db.execute("INSERT INTO batches (platform, opened_at, files) VALUES ('shop', 1.0e9 + 60, 1)")  # crash
    db.execute("INSERT INTO platform_pauses VALUES ('archive', 'auth', 'login refused: 530', 1.0e9, NULL)")
    link = state.parent / "exports" / "link.jpg"  # a link in the watch folder, still there
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/hostname")
    db.execute(
        "INSERT INTO notices VALUES (?, 'link', 'a symbolic link, never followed', 1.0e9, 1.0e9)",
        (str(link),),
    )
    db.execute("INSERT INTO sources VALUES ('/exports/up.jpg', 1, 2, 1000, 123, ?)", (sha("up.jpg"),))
    db.close()
    return path


def config_for(tmp_path: Path, state: Path):
    return validate_config(
        {
            "watch": {"folder": str(tmp_path / "exports")},
            "state": {"dir": str(state)},
            "platforms": {
                name: {"protocol": "folder", "path": str(tmp_path / name)} for name in ("shop", "archive")
            },
        }
    )


def answers_in(path: Path) -> dict[tuple[str, str], tuple[object, ...]]:
    """(file, platform) → what the user was told, read with plain SQL."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT assets.path, platform, state, reason, remote_name, remote_dir, attempts, verified, changes"
            " FROM jobs JOIN assets USING (sha256)"
        ).fetchall()
    finally:
        db.close()
    return {(Path(row[0]).name, row[1]): row[2:] for row in rows}


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_a_0_1_0_state_opens_with_every_answer_kept_and_nothing_sent_again(tmp_path):
    state = tmp_path / "state"
    path = write_0_1_0_state(state)
    answers = answers_in(path)
    assert user_version(path) == 0, "0.1.0 set no version"

    # The first command after the upgrade: `status` shows every file × platform as before.
    payload = status_payload(config_for(tmp_path, state), detail=True)
    shown = {
        (Path(entry["path"]).name, platform): (
            job["state"],
            job["reason"],
            job["remote_name"],
            job["changes"],
        )
        for entry in payload["files"]
        for platform, job in entry["platforms"].items()
    }
    assert shown == {
        key: (state, reason, remote, changes.split("\n") if changes else [])
        for key, (state, reason, remote, _dir, _attempts, _verified, changes) in answers.items()
    }
    assert json.loads(json.dumps(payload))["files"] == payload["files"], "states are plain JSON strings"
    assert payload["paused"] == {"archive": "login refused: 530"}
    assert [(n["path"], n["kind"]) for n in payload["not_taken"]] == [
        (str(tmp_path / "exports" / "link.jpg"), "link")
    ]
    batches = history_payload(config_for(tmp_path, state))["batches"]
    assert [(b["id"], b["files"], b["uploaded"], b["closed"] is None) for b in batches] == [
        (2, 1, 0, True),  # cut short by the crash
        (1, 2, 1, False),
    ]
    assert answers_in(path) == answers, "nothing in the ledger changed its answer"
    assert user_version(path) == SCHEMA_VERSION

    ledger = Ledger(path)
    try:
        # Nothing uploaded, rejected, held or failed is ever due; the pending ones still are.
        due = ledger.due_jobs("shop", now=3.0e9, limit=100)
        assert sorted(job.remote_name or "" for job in due) == ["up_MR.pdf", "wait.jpg"]
        assert ledger.due_jobs("shop", now=1.5e9, limit=100)[0].remote_name == "up_MR.pdf", "backoff kept"
        # The upload a crash cut off is checked on the server first, and resumes to the same name.
        (cut,) = ledger.interrupted_uploads("shop")
        assert (cut.remote_name, cut.attempts, cut.upload_size) == ("cut.jpg", 1, 1000)
        assert ledger.known_source("/exports/up.jpg", 1, 2, 1000, 123) == sha("up.jpg"), "no re-hashing"
        uploaded = ledger.jobs(states=[states.UPLOADED])
        assert {(j.path, j.platform, j.remote_name, j.verified, j.verified_by) for j in uploaded} == {
            ("/exports/up.jpg", "shop", "up.jpg", True, None),
            ("/exports/up.jpg", "archive", "up.jpg", True, None),
            ("/exports/gone.jpg", "shop", "gone.jpg", False, None),
        }
        assert ledger.job_for(sha("up.jpg"), "shop").meta["keywords"] == ["a", "b"]  # type: ignore[union-attr]

        # A new file is taken, sent and recorded with how it was verified.
        ledger.record_asset(
            sha256=sha("new.jpg"), path="/exports/new.jpg", size=5, file_type="jpeg", object_path=None
        )
        assert ledger.create_job(
            sha256=sha("new.jpg"), platform="shop", state=states.PENDING, remote_name="new.jpg"
        )
        new = ledger.job_for(sha("new.jpg"), "shop")
        assert new is not None
        ledger.begin_upload(new.id, ledger.open_batch("shop", 1))
        ledger.mark_uploaded(new.id, verified=True, verified_by="sha256")
        # Two files still never share a remote name on a platform (0.1.0's index is kept).
        with pytest.raises(sqlite3.IntegrityError):
            ledger.create_job(
                sha256=sha("new.jpg"), platform="archive", state=states.PENDING, remote_name="up.jpg"
            )
    finally:
        ledger.close()

    reopened = Ledger(path)
    try:
        done = reopened.job(new.id)
        assert (done.state, done.remote_name, done.verified, done.verified_by) == (
            "uploaded",
            "new.jpg",
            True,
            "sha256",
        )
    finally:
        reopened.close()
    assert user_version(path) == SCHEMA_VERSION


def schema_of(path: Path) -> list[tuple[str, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        db.close()


def test_an_upgraded_0_1_0_ledger_has_exactly_the_schema_of_a_new_one(tmp_path):
    """Migration 1 is 0.1.0's schema as released: a new ledger and an upgraded one are the same."""
    old = write_0_1_0_state(tmp_path / "old")
    Ledger(old).close()
    Ledger(tmp_path / "new" / "ledger.sqlite3").close()
    assert schema_of(old) == schema_of(tmp_path / "new" / "ledger.sqlite3")
    assert "verified_by TEXT" in dict((row[1], row[3]) for row in schema_of(old))["jobs"]


def test_a_ledger_from_a_newer_stockbridge_is_refused_and_left_alone(tmp_path):
    state = tmp_path / "state"
    path = state / "ledger.sqlite3"
    Ledger(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    before = schema_of(path)
    with pytest.raises(LedgerError) as caught:
        Ledger(path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{state}: this state folder was written by a newer stockbridge" in message
    assert f"ledger schema {SCHEMA_VERSION + 1}" in message and "upgrade stockbridge" in message
    assert user_version(path) == SCHEMA_VERSION + 1 and schema_of(path) == before


def test_an_upgrade_that_fails_half_way_changes_nothing(tmp_path, monkeypatch):
    path = write_0_1_0_state(tmp_path / "state")
    broken = Migration(
        SCHEMA_VERSION + 1,
        "a step that breaks after its first statement",
        "ALTER TABLE jobs ADD COLUMN x TEXT;\nBOGUS;",
    )
    monkeypatch.setattr(store, "MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr(store, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(LedgerError, match="cannot open the ledger"):
        Ledger(path)
    assert user_version(path) == 0
    assert schema_of(path) == schema_of(write_0_1_0_state(tmp_path / "pristine"))
    monkeypatch.undo()
    Ledger(path).close()  # the real upgrade still goes through
    assert user_version(path) == SCHEMA_VERSION


def write_version_2_ledger(path: Path) -> None:
    """A ledger as the release with schema 2 left it (no photo ids): one photo uploaded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:2]:
        db.executescript(migration.sql)
    db.execute("PRAGMA user_version=2")
    add_asset(db, sha("IMG_1 v1"), "/exports/IMG_1.jpg")
    add_job(db, sha("IMG_1 v1"), "shop", "uploaded", remote_name="IMG_1.jpg", attempts=1, verified=1,
            verified_by="sha256", uploaded_at=1.0e9)  # fmt: skip
    db.close()


def test_a_version_2_ledger_upgrades_and_its_uploads_count_as_the_photo_at_their_path(tmp_path):
    path = tmp_path / "state" / "ledger.sqlite3"
    write_version_2_ledger(path)
    ledger = Ledger(path)
    try:
        assert user_version(path) == SCHEMA_VERSION >= 3
        (old,) = ledger.jobs()
        assert (old.state, old.remote_name, old.verified_by, old.photo_id) == (
            "uploaded",
            "IMG_1.jpg",
            "sha256",
            None,
        )
        # A re-export at the same path, now with a photo id, finds the upload made before the upgrade.
        ledger.record_asset(sha256=sha("IMG_1 v2"), path="/exports/IMG_1.jpg", size=5, file_type="jpeg",
                            object_path=None, photo_id="xmp:xmp.did:1")  # fmt: skip
        ledger.create_job(sha256=sha("IMG_1 v2"), platform="shop", state=states.HELD, reason="a re-export")
        versions = ledger.photo_jobs("shop", "xmp:xmp.did:1", "/exports/IMG_1.jpg")
        assert [(job.remote_name, job.state) for job in versions] == [
            ("IMG_1.jpg", "uploaded"),
            (None, "held"),
        ]
        # ... and the old one, asked from its side (no photo id: the photo at its path), finds the new one.
        assert len(ledger.photo_jobs("shop", None, "/exports/IMG_1.jpg")) == 2
        assert ledger.photo_jobs("shop", "xmp:xmp.did:2", "/exports/IMG_2.jpg") == []
        # The first photo id recorded for a content stays.
        ledger.record_asset(sha256=sha("IMG_1 v2"), path="/exports/moved.jpg", size=5, file_type="jpeg",
                            object_path=None, photo_id="path:moved.jpg")  # fmt: skip
        assert ledger.job_for(sha("IMG_1 v2"), "shop").photo_id == "xmp:xmp.did:1"  # type: ignore[union-attr]
    finally:
        ledger.close()
    assert "assets_by_photo" in {row[1] for row in schema_of(path)}
