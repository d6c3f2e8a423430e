"""What ``status`` shows: every file × platform with its state and reason, from the ledger."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from stockbridge.config import Config
from stockbridge.ledger import Ledger

STATE_STYLES = {
    "uploaded": "green",
    "pending": "cyan",
    "uploading": "cyan",
    "held": "yellow",
    "rejected": "magenta",
    "failed": "red",
}


def status_payload(config: Config) -> dict[str, Any]:
    """``{"files": [{"path", "sha256", "kind", "platforms": {NAME: {"state", "reason", "remote_name", "changes"}}}]}``.

    ``kind`` is "image", or "release" for a release file delivered with the images that need it.

    ``changes`` lists what the platform's copy differs in from the source (e.g. keywords trimmed).
    A ``paused`` object (platform → reason) is present when a platform waits for the user.
    """
    if not config.ledger_path.exists():
        return {"files": []}
    ledger = Ledger(config.ledger_path)
    try:
        files: dict[str, dict[str, Any]] = {}
        for asset in ledger.assets():
            files[asset.sha256] = {
                "path": asset.path,
                "sha256": asset.sha256,
                "kind": "image",
                "platforms": {},
            }
        for job in ledger.jobs():
            entry = files.get(job.sha256)
            if entry is None:
                continue
            entry["kind"] = job.kind
            entry["platforms"][job.platform] = {
                "state": job.state,
                "reason": job.reason,
                "remote_name": job.remote_name,
                "changes": list(job.changes),
            }
        pauses = {name: ledger.pause_of(name) for name in config.platforms}
    finally:
        ledger.close()
    payload: dict[str, Any] = {"files": list(files.values())}
    paused = {name: pause.reason for name, pause in pauses.items() if pause is not None}
    if paused:
        payload["paused"] = paused
        # Only a pause without an end needs the user (`retry`); a timed one lifts by itself.
        payload["paused_until"] = {name: pause.until for name, pause in pauses.items() if pause is not None}
    return payload


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
    if not files:
        console.print("No files recorded yet.")
        return
    table = Table(show_lines=False)
    table.add_column("file", overflow="fold")
    platforms = sorted({name for entry in files for name in entry["platforms"]})
    for name in platforms:
        table.add_column(name, overflow="fold")
    for entry in files:
        cells = [entry["path"].rsplit("/", 1)[-1] + (" (release)" if entry.get("kind") == "release" else "")]
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
            cells.append(text)
        table.add_row(*cells)
    console.print(table)


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
