"""The ledger: what stockbridge knows about every asset and every upload, in SQLite.

One job per (content hash, platform), enforced by a UNIQUE constraint, so the same content exported
twice, a duplicate watcher event or a restart can never create a second upload. Every state change is
one transaction, committed before the work it announces starts (write-ahead intent): a job is
``uploading`` with its remote name *before* the first byte leaves, so a crash mid-transfer resumes to
the same remote name, never a second one.

Settings (decisions.md R-4): WAL, ``synchronous=FULL`` (a lost intent could mean a
duplicate upload, so durability wins over speed), ``busy_timeout``, ``quick_check`` at start.

Job states and the moves they may make are in :mod:`~stockbridge.ledger.states` (a move the table
lacks raises :class:`~stockbridge.ledger.states.ForbiddenTransition`); the schema and its numbered
migrations, applied when a ledger is opened, in :mod:`~stockbridge.ledger.migrations`; the records
it hands out (:class:`Job`, :class:`Asset`, ...) in :mod:`~stockbridge.ledger.records`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from stockbridge.errors import StockbridgeError
from stockbridge.ledger.migrations import MIGRATIONS, SCHEMA_VERSION, _statements
from stockbridge.ledger.records import Asset, Batch, Job, Notice, Pause, Writing, job_from_row
from stockbridge.ledger.states import (
    ALLOWED,
    FAILED,
    INITIAL_STATES,
    PENDING,
    REJECTED,
    UPLOADED,
    UPLOADING,
    ForbiddenTransition,
    JobState,
)


class LedgerError(StockbridgeError):
    pass


class Ledger:
    """Thread-safe: one connection behind a lock (writes are tiny; SQLite serialises them anyway)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{path}: cannot open the ledger ({exc})") from exc
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute("PRAGMA foreign_keys=ON")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise LedgerError(
                    f"{path}: the ledger is damaged ({check})",
                    hint="move it aside and restore a backup; stockbridge will not guess what was sent",
                )
            self._migrate()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise LedgerError(f"{path}: cannot open the ledger ({exc})") from exc
            raise

    def _migrate(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION`: the missing migrations, in order, in one
        transaction (a crash or an error leaves the ledger as it was)."""
        if self._user_version() == SCHEMA_VERSION:
            return
        with self._transaction() as db:
            version = self._user_version()  # again, under the write lock: another process may have done it
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"{self.path.parent}: this state folder was written by a newer stockbridge"
                    f" (ledger schema {version}; this one knows up to {SCHEMA_VERSION})",
                    hint="upgrade stockbridge; an older one never changes a newer ledger",
                )
            for migration in MIGRATIONS:
                if migration.version > version:
                    for statement in _statements(migration.sql):
                        db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION:d}")

    def _user_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    # ---------------------------------------------------------------- sources and assets

    def known_source(self, path: str, dev: int, ino: int, size: int, mtime_ns: int) -> str | None:
        """The content hash recorded for this exact file state, if any (saves re-hashing)."""
        with self._lock:
            row = self._db.execute(
                "SELECT sha256 FROM sources WHERE path=? AND dev=? AND ino=? AND size=? AND mtime_ns=?",
                (path, dev, ino, size, mtime_ns),
            ).fetchone()
        return row["sha256"] if row else None

    def record_asset(
        self,
        *,
        sha256: str,
        path: str,
        size: int,
        file_type: str | None,
        object_path: str | None,
        fingerprint: tuple[int, int, int, int] | None = None,
        photo_id: str | None = None,
    ) -> None:
        """``photo_id``: which photo this is across exports (delivery/reexport.py); kept from the
        first time the content was seen."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                """INSERT INTO assets (sha256, path, size, file_type, object_path, first_seen, last_seen, photo_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(sha256) DO UPDATE SET last_seen=excluded.last_seen,
                       object_path=COALESCE(excluded.object_path, assets.object_path),
                       photo_id=COALESCE(assets.photo_id, excluded.photo_id)""",
                (sha256, path, size, file_type, object_path, now, now, photo_id),
            )
            if fingerprint is not None:
                dev, ino, fsize, mtime_ns = fingerprint
                db.execute(
                    """INSERT INTO sources (path, dev, ino, size, mtime_ns, sha256) VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT(path) DO UPDATE SET dev=excluded.dev, ino=excluded.ino,
                           size=excluded.size, mtime_ns=excluded.mtime_ns, sha256=excluded.sha256""",
                    (path, dev, ino, fsize, mtime_ns, sha256),
                )
            # Taken now: whatever kept it out before (unstable, a link, refused) is over.
            db.execute("DELETE FROM notices WHERE path=?", (path,))

    def asset(self, sha256: str) -> Asset | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM assets WHERE sha256=?", (sha256,)).fetchone()
        if row is None:
            return None
        return Asset(row["sha256"], row["path"], row["size"], row["file_type"], row["object_path"])

    def assets(self) -> list[Asset]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM assets ORDER BY first_seen, path").fetchall()
        return [Asset(r["sha256"], r["path"], r["size"], r["file_type"], r["object_path"]) for r in rows]

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """A read-only query for reports (the web page's lists and counts); writes go through the
        methods of this class, each one transaction."""
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    # ---------------------------------------------------------------- files not taken

    def note(self, path: str, kind: str, reason: str) -> None:
        """Record that ``path`` was seen and not taken. Seen again: ``last_seen`` and the reason are
        updated, ``first_seen`` stays. Cleared by :meth:`record_asset` for the same path (taken) or
        :meth:`forget_notices`."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                """INSERT INTO notices (path, kind, reason, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(path) DO UPDATE SET kind=excluded.kind, reason=excluded.reason,
                       last_seen=excluded.last_seen""",
                (path, kind, reason, now, now),
            )

    def notices(self) -> list[Notice]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM notices ORDER BY path").fetchall()
        return [Notice(r["path"], r["kind"], r["reason"], r["first_seen"], r["last_seen"]) for r in rows]

    def forget_notices(self, paths: Sequence[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM notices WHERE path=?", [(path,) for path in paths])

    # ---------------------------------------------------------------- jobs

    def create_job(
        self,
        *,
        sha256: str,
        platform: str,
        state: JobState,
        reason: str | None = None,
        remote_name: str | None = None,
        upload_path: str | None = None,
        upload_size: int | None = None,
        changes: Sequence[str] = (),
        kind: str = "image",
        remote_dir: str | None = None,
        meta: dict[str, object] | None = None,
    ) -> bool:
        """Create the job for (sha256, platform) unless it exists. True if created."""
        state = JobState(state)
        if state not in INITIAL_STATES:
            raise ValueError(f"a job cannot start {state}: only begin_upload writes an upload intent")
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                """INSERT INTO jobs (sha256, platform, kind, state, reason, remote_name, remote_dir, upload_path,
                                     upload_size, changes, meta, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(sha256, platform) DO NOTHING""",
                (
                    sha256,
                    platform,
                    kind,
                    state.value,
                    reason,
                    remote_name,
                    remote_dir,
                    upload_path,
                    upload_size,
                    "\n".join(changes) or None,
                    json.dumps(meta, ensure_ascii=False) if meta is not None else None,
                    now,
                    now,
                ),
            )
            return cursor.rowcount == 1

    def activate(
        self,
        job_id: int,
        *,
        remote_name: str,
        upload_path: str,
        upload_size: int,
        changes: Sequence[str],
        remote_dir: str | None,
        meta: dict[str, object] | None,
    ) -> None:
        """A held job whose cause went away (a release arrived) becomes pending."""
        with self._transaction() as db:
            _move(db, job_id, PENDING)
            db.execute(
                """UPDATE jobs SET state=?, reason=NULL, remote_name=?, upload_path=?, upload_size=?, changes=?,
                       remote_dir=?, meta=?, next_attempt_at=0, created_at=?, updated_at=? WHERE id=?""",
                (
                    PENDING.value,
                    remote_name,
                    upload_path,
                    upload_size,
                    "\n".join(changes) or None,
                    remote_dir,
                    json.dumps(meta, ensure_ascii=False) if meta is not None else None,
                    time.time(),
                    time.time(),
                    job_id,
                ),
            )

    def job_for(self, sha256: str, platform: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                _JOB_SELECT + " WHERE jobs.sha256=? AND jobs.platform=?", (sha256, platform)
            ).fetchone()
        return job_from_row(row) if row else None

    def remote_name_taken(
        self, platform: str, remote_name: str, sha256: str, remote_dir: str | None = None
    ) -> bool:
        """Is ``remote_name`` (in ``remote_dir``) already used on ``platform`` by different content?"""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM jobs WHERE platform=? AND remote_name=? AND sha256<>? AND COALESCE(remote_dir, '')=?",
                (platform, remote_name, sha256, remote_dir or ""),
            ).fetchone()
        return row is not None

    def photo_jobs(self, platform: str, photo_id: str | None, path: str) -> list[Job]:
        """Image jobs on ``platform`` of every version of one photo, oldest first: the assets with
        ``photo_id``, and those taken before photo ids were recorded (schema 2) at ``path``. Such an
        asset itself (``photo_id`` None) is the photo at its path."""
        versions = "SELECT sha256 FROM assets WHERE path=?"  # both through an index (migration 3)
        if photo_id is not None:
            versions = f"SELECT sha256 FROM assets WHERE photo_id=? UNION ALL {versions} AND photo_id IS NULL"
        params = (path,) if photo_id is None else (photo_id, path)
        with self._lock:
            rows = self._db.execute(
                _JOB_SELECT + f" WHERE jobs.platform=? AND jobs.kind='image' AND jobs.sha256 IN ({versions})"
                " ORDER BY jobs.id",
                (platform, *params),
            ).fetchall()
        return [job_from_row(row) for row in rows]

    def has_job(self, sha256: str, platform: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM jobs WHERE sha256=? AND platform=?", (sha256, platform)
            ).fetchone()
        return row is not None

    def job(self, job_id: int) -> Job:
        with self._lock:
            row = self._db.execute(_JOB_SELECT + " WHERE jobs.id=?", (job_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no job {job_id}")
        return job_from_row(row)

    def jobs(
        self,
        *,
        platform: str | None = None,
        states: Sequence[str] | None = None,
        sha256: str | None = None,
    ) -> list[Job]:
        clauses, params = [], []
        if platform is not None:
            clauses.append("jobs.platform=?")
            params.append(platform)
        if states is not None:
            clauses.append(f"jobs.state IN ({','.join('?' * len(states))})")
            params.extend(states)
        if sha256 is not None:
            clauses.append("jobs.sha256=?")
            params.append(sha256)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(_JOB_SELECT + where + " ORDER BY jobs.id", params).fetchall()
        return [job_from_row(row) for row in rows]

    def batch_jobs(self, batch_id: int) -> list[Job]:
        """The jobs a batch sent (or tried to), in order (``history``'s manual steps per file)."""
        with self._lock:
            rows = self._db.execute(
                _JOB_SELECT + " WHERE jobs.batch_id=? ORDER BY jobs.id", (batch_id,)
            ).fetchall()
        return [job_from_row(row) for row in rows]

    def due_jobs(self, platform: str, now: float, limit: int) -> list[Job]:
        """Pending jobs of ``platform`` whose backoff has expired, oldest first."""
        with self._lock:
            rows = self._db.execute(
                _JOB_SELECT + " WHERE jobs.platform=? AND jobs.state=? AND jobs.next_attempt_at<=?"
                " ORDER BY jobs.id LIMIT ?",
                (platform, PENDING, now, limit),
            ).fetchall()
        return [job_from_row(row) for row in rows]

    def path_in_use(self, upload_path: str) -> bool:
        """Does a job not yet done (not uploaded or rejected) still send this file?"""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM jobs WHERE upload_path=? AND state NOT IN (?, ?) LIMIT 1",
                (upload_path, UPLOADED, REJECTED),
            ).fetchone()
        return row is not None

    def next_attempt(self, platform: str) -> float | None:
        """When the earliest pending job of ``platform`` may go (None: nothing is pending)."""
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(next_attempt_at) FROM jobs WHERE platform=? AND state=?", (platform, PENDING)
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def uploaded_since(self, platform: str, since: float) -> tuple[int, int]:
        """(files, bytes) uploaded to ``platform`` at or after ``since`` (a schedule's daily caps)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(upload_size), 0) FROM jobs"
                " WHERE platform=? AND state=? AND uploaded_at>=?",
                (platform, UPLOADED, since),
            ).fetchone()
        return int(row[0]), int(row[1])

    def set_state(self, job_id: int, state: JobState, reason: str | None = None, **fields: object) -> None:
        """Move a job (raises :class:`ForbiddenTransition` for a move :data:`TRANSITIONS` lacks)."""
        state = JobState(state)
        allowed = {"attempts", "remote_name", "next_attempt_at", "batch_id", "verified", "uploaded_at"}
        unknown = set(fields) - allowed
        assert not unknown, unknown
        assignments = ["state=?", "reason=?", "updated_at=?"] + [f"{key}=?" for key in fields]
        params = [state.value, reason, time.time(), *fields.values(), job_id]
        with self._transaction() as db:
            _move(db, job_id, state)
            db.execute(f"UPDATE jobs SET {', '.join(assignments)} WHERE id=?", params)

    def begin_upload(self, job_id: int, batch_id: int, writing: Writing | None = None) -> Job:
        """Write-ahead intent: the job is ``uploading`` before the first byte is sent. ``writing``:
        the remote name a large file is written to, and what is sent (a later attempt resumes only
        into that); None for a file that always starts from zero."""
        name, size, sha256 = (writing.name, writing.size, writing.sha256) if writing else (None, None, None)
        with self._transaction() as db:
            _move(db, job_id, UPLOADING)
            db.execute(
                "UPDATE jobs SET state=?, attempts=attempts+1, batch_id=?, updated_at=?, writing_name=?,"
                " writing_size=?, writing_sha256=?, resumed_at=NULL, resumed_by=NULL WHERE id=?",
                (UPLOADING.value, batch_id, time.time(), name, size, sha256, job_id),
            )
        return self.job(job_id)

    def record_resume(self, job_id: int, offset: int, checked_by: str) -> None:
        """The upload going on now resumed from ``offset`` bytes already on the server."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET resumed_at=?, resumed_by=?, updated_at=? WHERE id=?",
                (offset, checked_by, time.time(), job_id),
            )

    def mark_uploaded(self, job_id: int, *, verified: bool, verified_by: str | None = None) -> None:
        """The server has the file. ``verified``: its size (and hash) were checked under the final
        name; False: the agency moved it away at once. ``verified_by``: how it was checked, "size",
        "listing" or a hash name ("sha256", "md5", "crc32"); only with ``verified``."""
        self.mark_uploaded_many([(job_id, verified, verified_by)])

    def mark_uploaded_many(self, marks: Sequence[tuple[int, bool, str | None]]) -> None:
        """``mark_uploaded`` for each ``(job_id, verified, verified_by)``, in one transaction: the
        files of a batch checked by one listing cost one commit (one fsync), not one each."""
        for job_id, verified, verified_by in marks:
            if verified_by is not None and not verified:
                raise ValueError(
                    f"job {job_id}: verified_by={verified_by!r} for an upload that was not verified"
                )
        now = time.time()
        with self._transaction() as db:
            for job_id, verified, verified_by in marks:
                reason = (
                    None
                    if verified
                    else "the server took the file and moved it away at once (not verifiable)"
                )
                _move(db, job_id, UPLOADED)
                db.execute(
                    "UPDATE jobs SET state=?, reason=?, verified=?, verified_by=?, uploaded_at=?,"
                    " updated_at=?, writing_name=NULL WHERE id=?",
                    (UPLOADED.value, reason, 1 if verified else 0, verified_by, now, now, job_id),
                )

    def interrupted_uploads(self, platform: str) -> list[Job]:
        """Jobs left ``uploading`` by a crash: their transfer may or may not have finished."""
        return self.jobs(platform=platform, states=[UPLOADING])

    # ---------------------------------------------------------------- batches

    def open_batch(self, platform: str, files: int) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO batches (platform, opened_at, files) VALUES (?, ?, ?)",
                (platform, time.time(), files),
            )
            return int(cursor.lastrowid or 0)

    def close_batch(self, batch_id: int, uploaded: int, failed: int, files: int | None = None) -> None:
        """``files``: how many the batch sent in the end, files that joined it while open included."""
        with self._transaction() as db:
            db.execute(
                "UPDATE batches SET closed_at=?, uploaded=?, failed=?, files=COALESCE(?, files) WHERE id=?",
                (time.time(), uploaded, failed, files, batch_id),
            )

    def batches(self, *, limit: int | None = None, platform: str | None = None) -> list[Batch]:
        """Batches, newest first."""
        params: list[object] = []
        query = "SELECT * FROM batches"
        if platform is not None:
            query += " WHERE platform=?"
            params.append(platform)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [
            Batch(
                id=row["id"],
                platform=row["platform"],
                opened_at=row["opened_at"],
                closed_at=row["closed_at"],
                files=row["files"],
                uploaded=row["uploaded"],
                failed=row["failed"],
            )
            for row in rows
        ]

    def clips_in_batches(self) -> dict[int, int]:
        """How many video clips each batch sent (a clip's job holds its ffprobe facts in meta)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT batch_id, COUNT(*) FROM jobs WHERE batch_id IS NOT NULL"
                " AND json_extract(meta, '$.clip') IS NOT NULL GROUP BY batch_id"
            ).fetchall()
        return {int(row[0]): int(row[1]) for row in rows}

    # ---------------------------------------------------------------- platform pauses

    def pause(self, platform: str, reason: str, until: float | None, kind: str = "other") -> None:
        with self._transaction() as db:
            db.execute(
                """INSERT INTO platform_pauses (platform, kind, reason, paused_at, until) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(platform) DO UPDATE SET kind=excluded.kind, reason=excluded.reason,
                       paused_at=excluded.paused_at, until=excluded.until""",
                (platform, kind, reason, time.time(), until),
            )

    def pause_of(self, platform: str, now: float | None = None) -> Pause | None:
        now = time.time() if now is None else now
        with self._lock:
            row = self._db.execute("SELECT * FROM platform_pauses WHERE platform=?", (platform,)).fetchone()
        if row is None or (row["until"] is not None and row["until"] <= now):
            return None
        return Pause(row["platform"], row["kind"], row["reason"], row["paused_at"], row["until"])

    def resume(self, platform: str | None = None, kinds: Sequence[str] | None = None) -> list[str]:
        """Lift pauses (all, one platform's, or only those of ``kinds``). Returns the platforms resumed."""
        clauses, params = [], []
        if platform is not None:
            clauses.append("platform=?")
            params.append(platform)
        if kinds is not None:
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            params.extend(kinds)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._transaction() as db:
            rows = db.execute(f"SELECT platform FROM platform_pauses{where}", params).fetchall()
            db.execute(f"DELETE FROM platform_pauses{where}", params)
        return [row["platform"] for row in rows]

    def requeue_failed(self, platform: str | None = None, sha256s: Sequence[str] | None = None) -> int:
        """Give failed jobs another go (``stockbridge retry``). Returns how many."""
        assert (FAILED, PENDING) in ALLOWED
        clauses, params = ["state=?"], [FAILED.value]
        if platform is not None:
            clauses.append("platform=?")
            params.append(platform)
        if sha256s is not None:
            clauses.append(f"sha256 IN ({','.join('?' * len(sha256s))})")
            params.extend(sha256s)
        where = " AND ".join(f"jobs.{clause}" for clause in clauses)
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT jobs.id, jobs.upload_path, jobs.remote_name, assets.path FROM jobs"
                f" LEFT JOIN assets ON assets.sha256 = jobs.sha256 WHERE {where}",
                params,
            ).fetchall()
            # A job that failed while its copy was being made has nothing to send: it is forgotten,
            # so the file is prepared again for that platform when it is next seen; if the file is
            # gone, its answer stays.
            unprepared = [
                row
                for row in rows
                if row["upload_path"] is None and row["remote_name"] is None and row["path"] is not None
            ]
            forget = [row["id"] for row in unprepared if Path(row["path"]).exists()]
            keep = {row["id"] for row in unprepared}
            again = [row["id"] for row in rows if row["id"] not in keep]
            db.executemany("DELETE FROM jobs WHERE id=?", [(job_id,) for job_id in forget])
            now = time.time()
            db.executemany(
                "UPDATE jobs SET state=?, reason=NULL, attempts=0, next_attempt_at=0, updated_at=? WHERE id=?",
                [(PENDING.value, now, job_id) for job_id in again],
            )
            return len(again) + len(forget)


_JOB_SELECT = (
    "SELECT jobs.*, assets.path AS path, assets.photo_id AS photo_id"
    " FROM jobs JOIN assets ON assets.sha256 = jobs.sha256"
)


def _move(db: sqlite3.Connection, job_id: int, new: JobState) -> None:
    """Check, inside the caller's transaction, that the job may move to ``new`` from where it is."""
    row = db.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
    if row is None:
        raise LedgerError(f"no job {job_id}")
    old = JobState(row["state"])
    if (old, new) not in ALLOWED:
        raise ForbiddenTransition(job_id, old, new)
