"""A state folder as stockbridge 0.1.0 left it: its ledger built from 0.1.0's own SQL.

``ledger-0.1.0.sql`` is the schema 0.1.0 created, copied verbatim from its ``ledger.py``; 0.1.0 set no
``user_version``. Rows are written with plain SQL, as 0.1.0 wrote them, so nothing here depends on
the code under test.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_0_1_0 = (Path(__file__).parent / "ledger-0.1.0.sql").read_text(encoding="utf-8")


def ledger_0_1_0(path: Path) -> sqlite3.Connection:
    """A new 0.1.0 ledger at ``path`` (in autocommit mode), for the caller to fill."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA_0_1_0)
    return db


def add_asset(db: sqlite3.Connection, sha256: str, path: str, size: int = 1000, at: float = 1.0e9) -> None:
    db.execute(
        "INSERT INTO assets (sha256, path, size, file_type, object_path, first_seen, last_seen)"
        " VALUES (?, ?, ?, 'jpeg', NULL, ?, ?)",
        (sha256, path, size, at, at),
    )


def add_job(db: sqlite3.Connection, sha256: str, platform: str, state: str, **columns: object) -> int:
    """A job row as 0.1.0 wrote it (``created_at``/``updated_at`` default to a fixed time)."""
    values: dict[str, object] = {"created_at": 1.0e9, "updated_at": 1.0e9, **columns}
    names = ["sha256", "platform", "state", *values]
    cursor = db.execute(
        f"INSERT INTO jobs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [sha256, platform, state, *values.values()],
    )
    return int(cursor.lastrowid or 0)
