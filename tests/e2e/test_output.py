"""Output people and scripts can use (issue 13, items 10–12), run as a user would: `status` and
`history` in a pipe and on a terminal, `once --log-json` read by a machine, `-q` for cron."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from datetime import datetime

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace
from tests.images import unreadable_tiff

#: Longer than rich would give it in 80 columns if the table let it wrap: "adobe_stock_st/aging".
PLATFORM = "adobe_stock_staging"
BOX = ("┃", "│", "━", "─", "┏", "┡")


def staging(workspace: Workspace) -> str:
    target = workspace.root / "staging"
    target.mkdir(exist_ok=True)
    return (
        f'[platforms.{PLATFORM}]\nprotocol = "folder"\npath = "{target}"\n'
        f"[platforms.{PLATFORM}.rules]\nmin_megapixels = 0.2\n"
    )


def on_a_terminal(workspace: Workspace, *args: str) -> str:
    """What ``stockbridge ARGS`` shows on an 80-column terminal."""
    controller, terminal = pty.openpty()
    env = workspace.env() | {"COLUMNS": "80", "LINES": "40", "TERM": "xterm"}
    process = subprocess.Popen(
        workspace.command(*args), stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=60) == 0
    os.close(controller)
    return b"".join(chunks).decode("utf-8", "replace")


def test_once_is_one_flat_json_object_per_line_quiet_hides_rejections_and_reasons_name_the_users_file(
    workspace: Workspace, exiftool
):
    # verify = "decode": scan.tif below is whole in structure, so only a decode finds it unreadable.
    workspace.write_config(staging(workspace), watch={"verify": "decode"})
    # 0.03 MP: rejected. An answer, not a warning: `-q` (cron) shows nothing for it.
    make_image(workspace.exports / "tiny.jpg", width=200, height=150, exiftool=exiftool, seed=1, title="t")
    quiet = workspace.cli("once", "-q")
    assert quiet.returncode == 0, quiet.stderr
    assert "rejected" not in quiet.stderr and "tiny.jpg" not in quiet.stderr, quiet.stderr
    assert workspace.states()[("tiny.jpg", PLATFORM)] == "rejected"

    make_image(
        workspace.exports / "IMG_0412.jpg", width=800, height=600, exiftool=exiftool, seed=2, title="t"
    )
    (workspace.exports / "scan.tif").write_bytes(unreadable_tiff())  # Pillow's words name the private copy
    result = workspace.cli("once", "--log-json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line, or this fails
    for record in records:
        assert {"time", "level", "message"} <= set(record), record
        assert datetime.fromisoformat(record["time"]).tzinfo is not None
    [upload] = [r for r in records if r["message"].startswith("uploaded IMG_0412.jpg")]
    assert upload["level"] == "INFO"
    assert {k: upload[k] for k in ("file", "platform", "state")} == {
        "file": "IMG_0412.jpg",
        "platform": PLATFORM,
        "state": "uploaded",
    }
    [queued] = [r for r in records if r["message"].startswith("queued IMG_0412.jpg")]
    assert queued["state"] == "pending" and queued["platform"] == PLATFORM
    [closed] = [r for r in records if "closed:" in r["message"]]
    assert closed["batch"] == upload["batch"] and closed["platform"] == PLATFORM
    assert closed["message"].endswith("1 file(s), 1 uploaded, 0 failed")
    [rejected] = [r for r in records if r.get("file") == "scan.tif"]
    assert (rejected["level"], rejected["state"], rejected["platform"]) == ("INFO", "rejected", PLATFORM)

    reason = workspace.status()["files"]
    [scan] = [
        entry["platforms"][PLATFORM]["reason"] for entry in reason if entry["path"].endswith("scan.tif")
    ]
    assert "'scan.tif'" in scan, scan
    assert str(workspace.state) not in result.stderr and "objects/" not in scan
    assert str(workspace.state) not in rejected["message"]


def test_status_and_history_print_tab_separated_lines_in_a_pipe_and_whole_names_in_a_table(
    workspace: Workspace, exiftool
):
    workspace.write_config(staging(workspace))
    make_image(workspace.exports / "IMG_1.jpg", width=800, height=600, exiftool=exiftool, seed=3, title="t")
    make_image(workspace.exports / "tiny.jpg", width=200, height=150, exiftool=exiftool, seed=4, title="t")
    assert workspace.cli("once").returncode == 0

    piped = workspace.cli("status")  # stdout is a pipe here
    assert piped.returncode == 0, piped.stderr
    assert not any(mark in piped.stdout for mark in BOX), piped.stdout
    rows = sorted(line.split("\t") for line in piped.stdout.splitlines())
    exports = workspace.exports.resolve()
    assert rows[0] == [str(exports / "IMG_1.jpg"), PLATFORM, "uploaded", "IMG_1.jpg", "photo", ""]
    assert rows[1][:3] == [str(exports / "tiny.jpg"), PLATFORM, "rejected"]
    assert "MP" in rows[1][3] and len(rows) == 2
    assert json.loads(workspace.cli("status", "--format", "json").stdout) == workspace.status()
    assert any(mark in workspace.cli("status", "--format", "table").stdout for mark in BOX)
    both = workspace.cli("status", "--json", "--format", "tsv")
    assert both.returncode == 2 and "contradict" in both.stderr

    table = on_a_terminal(workspace, "status")
    assert any(mark in table for mark in BOX) and "IMG_1.jpg" in table

    history = workspace.cli("history")
    lines = [line.split("\t") for line in history.stdout.splitlines()]
    assert lines[0] == ["batch", "platform", "opened", "closed", "files", "uploaded", "failed"]
    assert [line[1] for line in lines[1:]] == [PLATFORM] and lines[1][4:] == ["1", "1", "0"]
    shown = on_a_terminal(workspace, "history")
    assert PLATFORM in shown and "…" not in shown, shown
