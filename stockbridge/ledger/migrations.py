"""The ledger's schema: its version and the numbered migrations that build it.

**Schema.** ``PRAGMA user_version`` is the number of the last of :data:`MIGRATIONS` applied. Opening
a ledger applies the missing ones in order, in one transaction (all or none). Version 1 is the schema
0.1.0 shipped, which had no version number (0), so it is written with ``IF NOT EXISTS`` and finds its
tables already there. A ledger from a newer stockbridge is refused, never downgraded. A migration is
a new entry at the end of the list, never an edit to a released one.

``jobs.parent_id`` (version 1) is never written and never read: a release delivered to a folder is one
job shared by every photo that needs it, so it has no single parent; which releases a photo needs is
in its own job's ``meta["releases"]``. The column stays, always NULL (0.1.0's INSERT names it, so
dropping it would keep 0.1.0 from writing to a ledger this version has opened).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS assets (
    sha256      TEXT PRIMARY KEY,
    path        TEXT NOT NULL,      -- the source path it was first seen at (its remote names come from it)
    size        INTEGER NOT NULL,
    file_type   TEXT,
    object_path TEXT,               -- private staged copy in the state dir
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    path      TEXT PRIMARY KEY,     -- lets a restart skip re-hashing unchanged files
    dev       INTEGER NOT NULL,
    ino       INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    sha256    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id              INTEGER PRIMARY KEY,
    sha256          TEXT NOT NULL REFERENCES assets(sha256),
    platform        TEXT NOT NULL,
    kind            TEXT NOT NULL DEFAULT 'image',  -- image | release
    state           TEXT NOT NULL,
    reason          TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    remote_name     TEXT,
    remote_dir      TEXT,           -- NULL: the platform's remote_dir (else editorial, releases)
    upload_path     TEXT,           -- the exact file to send (staged copy or derived copy)
    changes         TEXT,           -- what this platform's copy differs in, one change a line
    meta            TEXT,           -- JSON: title, description, keywords as sent (for CSV manifests)
    parent_id       INTEGER,        -- release jobs: the image job that needs them
    upload_size     INTEGER,
    verified        INTEGER,        -- 1: remote size checked; 0: server moved it away after a confirmed transfer
    next_attempt_at REAL NOT NULL DEFAULT 0,
    batch_id        INTEGER,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    uploaded_at     REAL,
    UNIQUE (sha256, platform)
);
CREATE INDEX IF NOT EXISTS jobs_by_platform_state ON jobs(platform, state);
CREATE INDEX IF NOT EXISTS jobs_by_upload_path ON jobs(upload_path);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_remote_name ON jobs(platform, COALESCE(remote_dir, ''), remote_name);
CREATE TABLE IF NOT EXISTS batches (
    id         INTEGER PRIMARY KEY,
    platform   TEXT NOT NULL,
    opened_at  REAL NOT NULL,
    closed_at  REAL,
    files      INTEGER NOT NULL DEFAULT 0,
    uploaded   INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS platform_pauses (
    platform     TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,    -- auth | trust | quota | unreachable | config
    reason       TEXT NOT NULL,
    paused_at    REAL NOT NULL,
    until        REAL              -- NULL: until `stockbridge retry --platform NAME`
);
CREATE TABLE IF NOT EXISTS notices (
    path        TEXT PRIMARY KEY,  -- a file in the watch folder that was seen but not taken
    kind        TEXT NOT NULL,     -- link | special | folder | unstable | refused
    reason      TEXT NOT NULL,
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL
);
"""


_JOB_EVENTS = """
CREATE TABLE IF NOT EXISTS job_events (
    id        INTEGER PRIMARY KEY,
    job_id    INTEGER NOT NULL,
    sha256    TEXT NOT NULL,
    platform  TEXT NOT NULL,
    state     TEXT NOT NULL,
    reason    TEXT,
    at        REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS job_events_by_sha256 ON job_events(sha256, id);
INSERT INTO job_events (job_id, sha256, platform, state, reason, at)
    SELECT id, sha256, platform, state, reason, updated_at FROM jobs ORDER BY id;
CREATE TRIGGER IF NOT EXISTS job_events_created AFTER INSERT ON jobs
BEGIN
    INSERT INTO job_events (job_id, sha256, platform, state, reason, at)
    VALUES (NEW.id, NEW.sha256, NEW.platform, NEW.state, NEW.reason, NEW.updated_at);
END;
CREATE TRIGGER IF NOT EXISTS job_events_moved AFTER UPDATE OF state, reason ON jobs
WHEN NEW.state IS NOT OLD.state OR NEW.reason IS NOT OLD.reason
BEGIN
    INSERT INTO job_events (job_id, sha256, platform, state, reason, at)
    VALUES (NEW.id, NEW.sha256, NEW.platform, NEW.state, NEW.reason, NEW.updated_at);
END;
CREATE INDEX IF NOT EXISTS assets_by_first_seen ON assets(first_seen);
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int  # user_version once applied
    name: str
    sql: str  # statements separated by ";"


#: The schema's history, in order. Append; never edit a released step.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the schema of 0.1.0", _SCHEMA_V1),
    Migration(
        2,
        "jobs.verified_by: how an upload was verified (size, or a hash name such as sha256)",
        "ALTER TABLE jobs ADD COLUMN verified_by TEXT;",
    ),
    Migration(
        3,
        "assets.photo_id: which photo a file is across exports (its XMP document ID, else its path in"
        " the watch folder), so a re-export of an uploaded photo is not sent again (delivery/reexport.py);"
        " indexed, and so is assets.path (assets from before are the photo at their path)",
        "ALTER TABLE assets ADD COLUMN photo_id TEXT;\n"
        "CREATE INDEX IF NOT EXISTS assets_by_photo ON assets(photo_id);\n"
        "CREATE INDEX IF NOT EXISTS assets_by_path ON assets(path);",
    ),
    Migration(
        4,
        "jobs.writing_name/writing_size/writing_sha256: the remote name an upload is writing (temporary or"
        " final) and the size and SHA-256 of the file it sends, recorded before the first byte, so a cut"
        " or crashed upload of a large file resumes only into a partial that is ours"
        " (transports/resume.py); jobs.resumed_at/resumed_by: the offset its last attempt resumed from"
        " and how the prefix was checked",
        "ALTER TABLE jobs ADD COLUMN writing_name TEXT;\n"
        "ALTER TABLE jobs ADD COLUMN writing_size INTEGER;\n"
        "ALTER TABLE jobs ADD COLUMN writing_sha256 TEXT;\n"
        "ALTER TABLE jobs ADD COLUMN resumed_at INTEGER;\n"
        "ALTER TABLE jobs ADD COLUMN resumed_by TEXT;",
    ),
    Migration(
        5,
        "job_events: every state (and reason) a job has had, written by triggers so no code path can"
        " forget it, for a file's own history on the web page; assets indexed by first_seen, the"
        " page's newest-first order over 10,000 files",
        _JOB_EVENTS,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def _statements(sql: str) -> list[str]:
    """``sql`` split into its statements (executescript would commit the open transaction)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    assert not current.strip(), f"incomplete SQL statement: {current!r}"
    return statements
