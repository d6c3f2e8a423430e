"""What the page shows, read from the ledger with SQL that stays fast at 10,000 files: one page of
files at a time, newest first (an index on ``assets.first_seen``, migration 8), filters as
``EXISTS`` on the jobs' ``(sha256, platform)`` key, and the jobs of that page only.

Reasons are in stockbridge's own words (:func:`~stockbridge.delivery.policy.plain_reason`); paths
are relative to the watch folder. Nothing here writes.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from stockbridge.assets import mediatypes
from stockbridge.config.models import Config
from stockbridge.delivery.pace import SCHEDULED, Slot, day_start, scheduled_jobs
from stockbridge.delivery.policy import plain_reason
from stockbridge.ledger.store import Ledger
from stockbridge.web.advice import advice_for, pause_advice

STATES = ("uploaded", "held", "rejected", "failed", "pending", SCHEDULED, "uploading")
MAX_LIMIT = 200


def utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def local_to_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Reader:
    """One ledger connection of the page's own (SQLite WAL: readers never wait for the uploads)."""

    def __init__(self, ledger_path: Path) -> None:
        self.ledger_path = ledger_path
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()

    @property
    def ledger(self) -> Ledger:
        with self._lock:
            if self._ledger is None:
                self._ledger = Ledger(self.ledger_path)
            return self._ledger

    def close(self) -> None:
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None

    def copies(self, sha256: str) -> tuple[str | None, list[str]] | None:
        """(file type, copies in the state folder) of an asset, for its thumbnail; None if unknown."""
        rows = self.ledger.query("SELECT file_type, object_path FROM assets WHERE sha256=?", (sha256,))
        if not rows:
            return None
        jobs = self.ledger.query("SELECT upload_path FROM jobs WHERE sha256=? AND kind='image'", (sha256,))
        paths = [rows[0]["object_path"], *(row["upload_path"] for row in jobs)]
        return rows[0]["file_type"], [path for path in paths if path]


# ---------------------------------------------------------------------- files


def waiting(config: Config, ledger: Ledger) -> dict[int, Slot]:
    """Pending jobs that wait for their platform's schedule: job id → when and why."""
    now = datetime.now()
    slots: dict[int, Slot] = {}
    for name, platform in config.enabled_platforms().items():
        slots.update(scheduled_jobs(ledger, name, platform.schedule, now))
    return slots


def list_files(
    config: Config,
    ledger: Ledger,
    *,
    platform: str | None = None,
    states: list[str] | None = None,
    since: float | None = None,
    q: str | None = None,
    kind: str = "image",
    offset: int = 0,
    limit: int = 60,
) -> dict[str, Any]:
    """``GET /api/files``: one page of files, newest first, with the total that match."""
    slots = waiting(config, ledger)
    where, params = _filters(platform, states, since, q, kind, list(slots))
    total = ledger.query(f"SELECT COUNT(*) FROM assets a WHERE {where}", params)[0][0]
    rows = ledger.query(
        f"SELECT a.sha256, a.path, a.size, a.file_type, a.first_seen FROM assets a WHERE {where}"
        " ORDER BY a.first_seen DESC, a.sha256 LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    items = _items(config, ledger, rows, slots)
    return {"total": total, "offset": offset, "limit": limit, "items": items}


def one_file(config: Config, ledger: Ledger, sha256: str) -> dict[str, Any] | None:
    """``GET /api/files/<sha256>``: the item, and its history oldest first."""
    rows = ledger.query(
        "SELECT sha256, path, size, file_type, first_seen FROM assets WHERE sha256=?", (sha256,)
    )
    if not rows:
        return None
    item = _items(config, ledger, rows, waiting(config, ledger))[0]
    events = ledger.query(
        "SELECT at, platform, state, reason FROM job_events WHERE sha256=? ORDER BY id", (sha256,)
    )
    item["history"] = [
        {
            "at": utc(row["at"]),
            "platform": row["platform"],
            "state": row["state"],
            "reason": plain_reason(row["reason"]),
        }
        for row in events
    ]
    return item


def _filters(
    platform: str | None,
    states: list[str] | None,
    since: float | None,
    q: str | None,
    kind: str,
    scheduled: list[int],
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    release = "EXISTS (SELECT 1 FROM jobs r WHERE r.sha256 = a.sha256 AND r.kind = 'release')"
    clauses.append(release if kind == "release" else f"NOT {release}")
    # A vector's preview sent beside it ("pair") is part of the vector's asset, never a file of its own.
    clauses.append("NOT EXISTS (SELECT 1 FROM jobs p WHERE p.sha256 = a.sha256 AND p.kind = 'preview')")
    if platform is not None or states:
        job = ["j.sha256 = a.sha256"]
        if platform is not None:
            job.append("j.platform = ?")
            params.append(platform)
        if states:
            job.append(_state_clause(states, scheduled, params))
        clauses.append(f"EXISTS (SELECT 1 FROM jobs j WHERE {' AND '.join(job)})")
    if since is not None:
        clauses.append("a.first_seen >= ?")
        params.append(since)
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("a.path LIKE ? ESCAPE '\\'")
        params.append(f"%{escaped}%")
    return " AND ".join(clauses), params


def _state_clause(states: list[str], scheduled: list[int], params: list[Any]) -> str:
    """Jobs in ``states``; "scheduled" is a pending job waiting for its schedule, "pending" any other."""
    ids = json.dumps(scheduled)
    parts = []
    plain = [state for state in states if state not in ("pending", SCHEDULED)]
    if plain:
        parts.append(f"j.state IN ({','.join('?' * len(plain))})")
        params.extend(plain)
    if SCHEDULED in states:
        parts.append("(j.state = 'pending' AND j.id IN (SELECT value FROM json_each(?)))")
        params.append(ids)
    if "pending" in states:
        parts.append("(j.state = 'pending' AND j.id NOT IN (SELECT value FROM json_each(?)))")
        params.append(ids)
    return f"({' OR '.join(parts)})"


def _items(config: Config, ledger: Ledger, rows: list[Any], slots: dict[int, Slot]) -> list[dict[str, Any]]:
    if not rows:
        return []
    from stockbridge.web.thumbs import can_have_thumb

    shas = [row["sha256"] for row in rows]
    jobs = ledger.query(
        "SELECT id, sha256, platform, kind, state, reason, remote_name, updated_at FROM jobs"
        f" WHERE sha256 IN ({','.join('?' * len(shas))}) ORDER BY platform",
        shas,
    )
    by_sha: dict[str, dict[str, Any]] = {sha: {} for sha in shas}
    kinds: dict[str, str] = {}
    for job in jobs:
        slot = slots.get(job["id"])
        state = SCHEDULED if slot is not None else job["state"]
        reason = slot.reason if slot is not None else plain_reason(job["reason"])
        kinds[job["sha256"]] = job["kind"]
        by_sha[job["sha256"]][job["platform"]] = {
            "state": state,
            "reason": reason,
            "advice": advice_for(state, reason),
            "updated": utc(job["updated_at"]),
            "job": job["id"],
            "remote_name": job["remote_name"] if job["state"] == "uploaded" else None,
            "scheduled_at": slot.at.isoformat(timespec="minutes") if slot is not None else None,
        }
    root = config.watch.folder.expanduser().resolve()
    items = []
    for row in rows:
        media = mediatypes.get(row["file_type"])
        release = kinds.get(row["sha256"]) == "release"
        items.append(
            {
                "id": row["sha256"],
                "name": Path(row["path"]).name,
                "path": _relative(row["path"], root),
                "kind": "release" if release else (media.kind if media is not None else "raster"),
                "type": row["file_type"],
                "size": row["size"],
                "seen": utc(row["first_seen"]),
                "thumb": f"/api/thumbs/{row['sha256']}"
                if not release and can_have_thumb(row["file_type"])
                else None,
                "platforms": by_sha[row["sha256"]],
            }
        )
    return items


def _relative(path: str, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).name  # outside the watch folder (a release elsewhere): its name only


# ---------------------------------------------------------------------- platforms


def platform_cards(
    config: Config, ledger: Ledger, live: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """``GET /api/platforms``: one card per enabled platform. ``live``: the running service's
    ``{name: {"uploading": bool, "progress": {...} | None}}``."""
    now = datetime.now()
    midnight = day_start(now).timestamp()
    cards = []
    for name, platform in config.enabled_platforms().items():
        counts = {state: 0 for state in STATES}
        for row in ledger.query(
            "SELECT state, COUNT(*) AS n FROM jobs WHERE platform=? GROUP BY state", (name,)
        ):
            counts[row["state"]] = row["n"]
        slots = scheduled_jobs(ledger, name, platform.schedule, now)
        counts[SCHEDULED] = len(slots)
        counts["pending"] -= len(slots)
        pause = ledger.pause_of(name)
        today = ledger.uploaded_since(name, midnight)[0]
        last = ledger.batches(limit=1, platform=name)
        state = (live or {}).get(name, {})
        if state.get("uploading"):
            activity = "uploading"
        elif pause is not None:
            activity = "paused"
        elif slots:
            activity = "scheduled"
        else:
            activity = "idle"
        cards.append(
            {
                "name": name,
                "label": name.replace("_", " ").title(),
                "transport": platform.protocol,
                "activity": activity,
                "progress": state.get("progress"),
                "paused": None
                if pause is None
                else {
                    "kind": pause.kind,
                    "reason": plain_reason(pause.reason),
                    "until": utc(pause.until),
                    "advice": pause_advice(pause.kind),
                },
                "next_batch": local_to_utc(min(slot.at for slot in slots.values())) if slots else None,
                "today": {
                    "uploaded": today,
                    "cap": platform.schedule.daily_max_files if platform.schedule is not None else None,
                },
                "counts": counts,
                "last_batch": None
                if not last
                else {
                    "id": last[0].id,
                    "opened": utc(last[0].opened_at),
                    "closed": utc(last[0].closed_at),
                    "files": max(last[0].files, last[0].uploaded + last[0].failed),
                    "uploaded": last[0].uploaded,
                    "failed": last[0].failed,
                },
            }
        )
    return cards


def not_taken(config: Config, ledger: Ledger) -> list[dict[str, Any]]:
    """``GET /api/not-taken``: files in the watch folder that never became a job, and why."""
    from stockbridge.intake.notices import current

    root = config.watch.folder.expanduser().resolve()
    return [
        {
            "path": _relative(notice.path, root),
            "kind": notice.kind,
            "reason": notice.reason,
            "advice": advice_for("not_taken", notice.reason, notice.kind),
            "last_seen": utc(notice.last_seen),
        }
        for notice in current(ledger)
    ]
