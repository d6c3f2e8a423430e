"""What ``status`` and ``history`` show, from the ledger: as a table on a terminal, as tab-separated
lines in a pipe (``--format tsv``: one line per file × platform, for ``grep``, ``cut``, ``awk``), or
as JSON (``--format json``)."""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from stockbridge.assets import mediatypes
from stockbridge.assets.video import describe as describe_clip
from stockbridge.config.models import Config
from stockbridge.delivery.pace import SCHEDULED, Slot, scheduled_jobs
from stockbridge.delivery.policy import plain_reason
from stockbridge.errors import ConfigError
from stockbridge.intake.notices import current as current_notices
from stockbridge.ledger.store import Ledger

STATE_STYLES = {
    "uploaded": "green",
    "pending": "cyan",
    SCHEDULED: "blue",
    "uploading": "cyan",
    "held": "yellow",
    "rejected": "magenta",
    "failed": "red",
}


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

#: ``--format``: a table for people, tab-separated lines for scripts, JSON for programs.
FORMATS = ("table", "tsv", "json")


def pick_format(chosen: str | None, *, as_json: bool, is_terminal: bool) -> str:
    """``--format`` if given (``--json`` is ``--format json``); else a table on a terminal and
    tab-separated lines anywhere else (a pipe, a file, cron's mail): a box table 80 columns wide
    breaks names mid-word there."""
    if chosen is not None:
        return chosen
    if as_json:
        return "json"
    return "table" if is_terminal else "tsv"


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: a duration back from now ("90s", "30m", "2h", "3d", "1w") or a local date or
    date-time ("2026-11-01", "2026-11-01T18:30"). Returns a Unix timestamp."""
    now = time.time() if now is None else now
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ConfigError(
            f"--since {text}: not a duration or a date",
            hint='e.g. --since 2h, --since 3d, --since 2026-11-01 or --since "2026-11-01 18:30"',
        ) from None


def status_payload(
    config: Config,
    *,
    platforms: Collection[str] | None = None,
    states: Collection[str] | None = None,
    since: float | None = None,
    detail: bool = False,
) -> dict[str, Any]:
    """``{"files": [{"path", "sha256", "kind", "platforms": {NAME: {"state", "reason", "remote_name", "changes",
    "verified_by"}}}]}``.

    ``verified_by`` says how an upload was checked on the server: "size" (its own SIZE or stat),
    "listing" (one listing of the folder showed it at full size under its final name), or the hash
    the server computed and we compared ("sha256", "sha1", "md5", "crc32"); null for anything not uploaded,
    for a file the server moved away at once, and for uploads recorded before 0.2.

    ``resumed`` (``{"at_bytes", "checked_by"}``) is present when the job's last attempt went on from
    a partial file its cut or crashed upload left on the server: from how many bytes, and how that
    prefix was checked ("sha256", "crc32", ... where the server hashes files, else "size").

    ``kind`` is "image", or "release" for a release file delivered with the images that need it.
    A vector's platform entry may hold ``preview``: its preview's remote name (or "NAME.jpg (in
    NAME.zip)" when it travels inside the vector's zip) and, when the preview went beside it as a
    job of its own, ``preview_state`` (and ``preview_reason``): the pair is one file here, never
    two (a preview whose vector is no longer known keeps a row of its own, kind "preview").
    A video clip also has ``clip``: its ffprobe facts in one line ("1920×1080 at 29.97 fps, 12.0 s,
    H264, MOV, no sound"), a vector ``vector``: its format, drawing size and Illustrator level in one
    line ("EPS, 2400×1800 pt (4.3 MP), Illustrator 10"). ``manual_steps`` (platform → {"step", "clips"}) is present when clips
    uploaded to a platform wait for something done on its website (``rules.video.manual_step``).

    ``changes`` lists what the platform's copy differs in from the source (e.g. keywords trimmed).
    ``manual``, present only when there are some, lists the steps left for the agency's website
    for that file (an AI checkbox, categories set on the web), as its preset's rules say.
    A ``paused`` object (platform → reason) is present when a platform waits for the user.
    A pending job that waits for its platform's ``schedule`` shows as state "scheduled", with the
    reason and ``scheduled_at`` (local time, ISO 8601) when it will go; the ledger keeps it pending.

    Filters (``status --platform/--state/--since``) keep only the jobs on those platforms, in those
    states, changed at or after ``since``; a file left with no job is left out.

    ``not_taken`` lists files in the watch folder that were seen and never became a job, each with
    ``path``, ``kind`` (link, special, folder, unstable, refused), ``reason``, ``first_seen`` and
    ``last_seen`` (local ISO 8601): a symlink, a hard link, a file still changing after
    max_settle_seconds, a file ingest refused. One leaves the list once it is taken, deleted or fixed.
    ``--platform``/``--state`` leave the list empty (it is no platform's); ``--since`` keeps those seen
    since then.

    Reasons are in stockbridge's own words (a server's reply may name its host or the login: the log
    has it); ``detail`` (``status --detail``) gives them whole, the server's words included. The web
    page's ``GET /api/status`` is this document without ``detail``.
    """
    words = (lambda reason: reason) if detail else plain_reason
    if not config.ledger_path.exists():
        return {"files": [], "not_taken": []}
    ledger = Ledger(config.ledger_path)
    try:
        not_taken = [
            {
                "path": notice.path,
                "kind": notice.kind,
                "reason": notice.reason,
                "first_seen": _iso(notice.first_seen),
                "last_seen": _iso(notice.last_seen),
            }
            for notice in current_notices(ledger)
            if platforms is None and states is None and (since is None or notice.last_seen >= since)
        ]
        files: dict[str, dict[str, Any]] = {}
        for asset in ledger.assets():
            files[asset.sha256] = {
                "path": asset.path,
                "sha256": asset.sha256,
                "kind": "image",
                "platforms": {},
            }
        now = datetime.now()
        waiting: dict[int, Slot] = {}
        for name, platform in config.enabled_platforms().items():
            waiting.update(scheduled_jobs(ledger, name, platform.schedule, now))
        uploaded_clips: dict[str, int] = {}
        for job in ledger.jobs():
            entry = files.get(job.sha256)
            if entry is None:
                continue
            if platforms is not None and job.platform not in platforms:
                continue
            slot = waiting.get(job.id)
            if states is not None and (SCHEDULED if slot else job.state) not in states:
                continue
            if since is not None and job.updated_at < since:
                continue
            entry["kind"] = job.kind
            clip = describe_clip((job.meta or {}).get("clip"))
            if clip is not None:
                entry["clip"] = clip
                if job.state == "uploaded":
                    uploaded_clips[job.platform] = uploaded_clips.get(job.platform, 0) + 1
            if isinstance(vector := (job.meta or {}).get("vector"), str):
                entry["vector"] = vector
            entry["platforms"][job.platform] = {
                "state": job.state,
                "reason": words(job.reason),
                "remote_name": job.remote_name,
                "changes": list(job.changes),
                "verified_by": job.verified_by,
            }
            preview = (job.meta or {}).get("preview")
            if preview:  # a vector's preview, sent beside it or inside its zip
                entry["platforms"][job.platform]["preview"] = str(preview)
            if steps := manual_steps(job.meta):
                entry["platforms"][job.platform]["manual"] = steps
            if job.resumed_at is not None:  # its last attempt went on from a partial on the server
                entry["platforms"][job.platform]["resumed"] = {
                    "at_bytes": job.resumed_at,
                    "checked_by": job.resumed_by,
                }
            if slot is not None:
                entry["platforms"][job.platform].update(
                    state=SCHEDULED, reason=slot.reason, scheduled_at=slot.at.isoformat(timespec="minutes")
                )
        pauses = {name: ledger.pause_of(name) for name in config.platforms}
    finally:
        ledger.close()
    _fold_previews(files)
    filtered = platforms is not None or states is not None or since is not None
    payload: dict[str, Any] = {
        "files": [entry for entry in files.values() if entry["platforms"] or not filtered],
        "not_taken": not_taken,
    }
    shown = {
        name: pause
        for name, pause in pauses.items()
        if pause is not None and (platforms is None or name in platforms)
    }
    clip_steps = {
        name: {"step": video.manual_step, "clips": uploaded_clips[name]}
        for name, platform in config.platforms.items()
        if (video := platform.rules.video) is not None and video.manual_step and uploaded_clips.get(name)
    }
    if clip_steps:
        payload["manual_steps"] = clip_steps  # clips uploaded there wait for this on the agency's site
    paused = {name: words(pause.reason) for name, pause in shown.items()}
    if paused:
        payload["paused"] = paused
        # Only a pause without an end needs the user (`retry`); a timed one lifts by itself.
        payload["paused_until"] = {name: pause.until for name, pause in shown.items()}
    return payload


def _fold_previews(files: dict[str, dict[str, Any]]) -> None:
    """A preview sent beside its vector ("pair") is shown in the vector's row, as one asset: each
    platform's ``preview_state`` (and reason) comes from the preview's own job."""
    vectors = {
        (str(Path(entry["path"]).parent), Path(entry["path"]).stem): entry
        for entry in files.values()
        if mediatypes.is_vector(_type_of(entry["path"]))
    }
    for key, entry in list(files.items()):
        if entry["kind"] != "preview":
            continue
        path = Path(entry["path"])
        vector = vectors.get((str(path.parent), path.stem))
        if vector is None:
            continue
        for name, job in entry["platforms"].items():
            shown = vector["platforms"].get(name)
            if shown is None:
                continue
            shown["preview"] = job["remote_name"] or path.name
            shown["preview_state"] = job["state"]
            if job["reason"]:
                shown["preview_reason"] = job["reason"]
        del files[key]


def _type_of(path: str) -> str | None:
    media = mediatypes.from_filename(path)
    return media.name if media is not None else None


def history_payload(config: Config, *, limit: int | None = 20) -> dict[str, Any]:
    """``{"batches": [{"id", "platform", "opened", "closed", "files", "uploaded", "failed", "previews",
    "manual"}]}``, newest first; times are local ISO 8601 date-times, ``closed`` null while a batch is
    open (or was cut short by a crash). ``previews``: how many of ``files`` are vectors' previews sent
    beside them (a vector and its preview are one asset, two files). ``manual``: ``[{"path", "remote_name", "steps"}]``, the files of the batch
    that left steps for the agency's website."""
    if not config.ledger_path.exists():
        return {"batches": []}
    ledger = Ledger(config.ledger_path)
    try:
        batches = ledger.batches(limit=limit)
        jobs = {batch.id: ledger.batch_jobs(batch.id) for batch in batches}
        manual = {
            batch.id: [
                {"path": job.path, "remote_name": job.remote_name, "steps": steps}
                for job in jobs[batch.id]
                if (steps := manual_steps(job.meta))
            ]
            for batch in batches
        }
        # A vector's preview sent beside it is a file of the batch but no asset of its own.
        previews = {batch.id: sum(job.kind == "preview" for job in jobs[batch.id]) for batch in batches}
        clips = ledger.clips_in_batches()
    finally:
        ledger.close()
    return {
        "batches": [
            {
                "id": batch.id,
                "platform": batch.platform,
                "opened": _iso(batch.opened_at),
                "closed": _iso(batch.closed_at) if batch.closed_at is not None else None,
                # A batch closed before 0.3 counted only the files it opened with, not those that
                # joined it while open ("files 1, uploaded 6"): it had at least as many as answered.
                "files": max(batch.files, batch.uploaded + batch.failed),
                "uploaded": batch.uploaded,
                "failed": batch.failed,
                "previews": previews[batch.id],
                # Steps left for the agency's website, per file (an AI checkbox, categories).
                "manual": manual[batch.id],
                "clips": clips.get(batch.id, 0),  # of its files, video clips
            }
            for batch in batches
        ]
    }


def manual_steps(meta: dict[str, object] | None) -> list[str]:
    """The steps a job left for the agency's website (recorded when it was queued)."""
    steps = (meta or {}).get("manual")
    return [str(step) for step in steps] if isinstance(steps, list) else []


def print_history_table(payload: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    if not payload["batches"]:
        console.print("No batches sent yet.")
        return
    # Never "adobe_s…" or "adobe_sto/ck": names keep their width; on a narrow terminal the times
    # wrap at their space (date above time), and neighbouring cells share their padding.
    table = Table(collapse_padding=True)
    for column in HISTORY_COLUMNS:
        times = column in ("opened", "closed")
        table.add_column(
            column,
            justify="right" if column in ("batch", "files", "uploaded", "failed") else "left",
            no_wrap=not times,
            min_width=len("2026-11-28") if times else None,
        )
    for batch in payload["batches"]:
        closed = batch["closed"]
        table.add_row(
            str(batch["id"]),
            _escape(batch["platform"]),
            batch["opened"].replace("T", " "),
            closed.replace("T", " ") if closed else "[yellow]open[/]",
            str(batch["files"])
            + (f" ({batch['clips']} clips)" if batch.get("clips") else "")
            + (f" ({batch['previews']} preview)" if batch.get("previews") else ""),
            f"[green]{batch['uploaded']}[/]" if batch["uploaded"] else "0",
            f"[red]{batch['failed']}[/]" if batch["failed"] else "0",
        )
    console.print(table)
    _print_manual(payload["batches"], console)


def _print_manual(batches: list[dict[str, Any]], console: Console) -> None:
    """Under the history table: what is left to do on the agencies' websites, file by file."""
    for batch in batches:
        for entry in batch.get("manual", []):
            name = entry["remote_name"] or entry["path"].rsplit("/", 1)[-1]
            console.print(
                f"[bold]to do on {_escape(batch['platform'])}[/] (batch {batch['id']}) {_escape(name)}:"
            )
            for step in entry["steps"]:
                console.print(f"  - {_escape(step)}")


HISTORY_COLUMNS = ("batch", "platform", "opened", "closed", "files", "uploaded", "failed")


def history_lines(payload: dict[str, Any]) -> list[str]:
    """``history --format tsv``: a header line, then one tab-separated line per batch (``closed``
    is empty while a batch is open)."""
    lines = ["\t".join(HISTORY_COLUMNS)]
    for batch in payload["batches"]:
        values = [batch["id"], batch["platform"], batch["opened"], batch["closed"] or ""]
        values += [batch["files"], batch["uploaded"], batch["failed"]]
        lines.append("\t".join(_printable(str(value)) for value in values))
    return lines


def status_lines(payload: dict[str, Any]) -> list[str]:
    """``status --format tsv``: one line per file × platform, ``file  platform  state  detail  kind
    facts``, where detail is the reason, else the remote name of an upload; kind is photo, vector,
    clip, release or preview; facts a clip's or a vector's facts in one line (empty for the
    others). Then one per file not taken, with ``-`` as platform, ``not_taken`` as state and both
    last fields empty. ``file`` is the full path, so it is unique. No header, so ``cut -f3 | sort
    | uniq -c`` counts states. Columns are only ever added at the end (kind and facts were the first),
    so ``cut -f1-4`` and ``$3`` keep meaning what they meant. A tab or line break inside a value is
    shown escaped (``\\t``, ``\\n``): a value never splits a line or a field."""
    lines = []
    for entry in payload["files"]:
        kind, facts = _kind_and_facts(entry)
        for name, job in sorted(entry["platforms"].items()):
            detail = job["reason"] or (job["remote_name"] if job["state"] == "uploaded" else None) or ""
            if job.get("preview"):  # a vector's preview travels with it: one asset, one line
                detail += f" + {job['preview']}"
                if job.get("preview_state") and job["preview_state"] != job["state"]:
                    detail += f" (preview {job['preview_state']})"
            if job.get("manual"):
                detail = "; ".join([detail, *(f"to do: {step}" for step in job["manual"])]).lstrip("; ")
            values = (entry["path"], name, job["state"], detail, kind, facts)
            lines.append("\t".join(_printable(value) for value in values))
    for entry in payload.get("not_taken", []):
        values = (entry["path"], "-", "not_taken", entry["reason"], "", "")
        lines.append("\t".join(_printable(value) for value in values))
    return lines


def _kind_and_facts(entry: dict[str, Any]) -> tuple[str, str]:
    """``status --format tsv``'s kind and facts columns for one file."""
    if entry.get("kind") in ("release", "preview"):
        return entry["kind"], ""
    if entry.get("clip") or mediatypes.is_video(_type_of(entry["path"])):
        return "clip", entry.get("clip") or ""
    if entry.get("vector") or mediatypes.is_vector(_type_of(entry["path"])):
        return "vector", entry.get("vector") or ""
    return "photo", ""


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).isoformat(timespec="seconds")


def print_status_table(config: Config, payload: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    files = payload["files"]
    for name, reason in payload.get("paused", {}).items():
        if payload.get("paused_until", {}).get(name) is None:
            console.print(
                f"[bold red]{name} is paused:[/] {_escape(reason)} — run `stockbridge retry --platform {name}`"
            )
        else:
            console.print(f"[yellow]{name} is waiting:[/] {_escape(reason)}")
    if files:
        _print_files(files, console)
    elif not payload.get("not_taken"):
        console.print("No files recorded yet.")
    if payload.get("not_taken"):
        _print_not_taken(config, payload["not_taken"], console)
    for name, todo in payload.get("manual_steps", {}).items():
        console.print(
            f"[bold yellow]{name}, {todo['clips']} clip(s) uploaded, to do on its website:[/] {_escape(todo['step'])}"
        )


def _print_not_taken(config: Config, not_taken: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Not taken", title_justify="left", title_style="bold yellow")
    table.add_column("file", overflow="fold")
    table.add_column("why", overflow="fold")
    root = config.watch.folder.expanduser().resolve()  # the watcher's spelling of the paths
    for entry in not_taken:
        path = Path(entry["path"])
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        table.add_row(_escape(_printable(str(shown))), _escape(entry["reason"]))
    console.print(table)


def _printable(name: str) -> str:
    """A hostile name (a newline, an escape sequence) is shown escaped, never acted on by the terminal."""
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


def _print_files(files: list[dict[str, Any]], console: Console) -> None:
    table = Table(show_lines=False)
    table.add_column("file", overflow="fold")
    platforms = sorted({name for entry in files for name in entry["platforms"]})
    for name in platforms:
        table.add_column(name, overflow="fold")
    for entry in files:
        previews = sorted({job["preview"] for job in entry["platforms"].values() if job.get("preview")})
        label = (
            " (release)"
            if entry.get("kind") == "release"
            else " (preview)"
            if entry.get("kind") == "preview"
            else ""
        )
        cells = [
            entry["path"].rsplit("/", 1)[-1]
            + label
            + "".join(f"\n+ {_escape(name)}" for name in previews[:1])
        ]
        if entry.get("clip"):
            cells[0] += f"\nclip: {_escape(entry['clip'])}"
        if entry.get("vector"):
            cells[0] += f"\nvector: {_escape(entry['vector'])}"
        for name in platforms:
            job = entry["platforms"].get(name)
            if job is None:
                cells.append("")
                continue
            style = STATE_STYLES.get(job["state"], "")
            text = f"[{style}]{job['state']}[/]" if style else job["state"]
            if job["reason"]:
                text += f"\n{_escape(job['reason'])}"
            elif job["state"] == "uploaded" and job["remote_name"]:
                text += f"\nas {_escape(job['remote_name'])}"
            for change in job.get("changes", []):
                text += f"\n{_escape(change)}"
            if job.get("preview_state"):
                text += f"\npreview {_escape(job['preview'])}: {job['preview_state']}"
                if job.get("preview_reason"):
                    text += f" ({_escape(job['preview_reason'])})"
            for step in job.get("manual", []):
                text += f"\n[bold]to do:[/] {_escape(step)}"
            cells.append(text)
        table.add_row(*cells)
    console.print(table)


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
