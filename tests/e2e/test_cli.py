"""The command line around the service, run as a user would: status filters, history, init,
config schema/docs, shell completion, --log-file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stockbridge.ledger import states
from stockbridge.ledger.store import Ledger
from tests.e2e.conftest import Workspace


def folder_platforms(workspace: Workspace) -> list[str]:
    return [
        f'[platforms.{name}]\nprotocol = "folder"\npath = "{workspace.root / name}"\n'
        for name in ("shop", "archive")
    ]


def seed_ledger(workspace: Workspace) -> None:
    book = Ledger(workspace.state / "ledger.sqlite3")
    for letter in "ab":
        book.record_asset(
            sha256=letter * 64, path=f"/exports/{letter}.jpg", size=1, file_type="jpeg", object_path=None
        )
    book.create_job(sha256="a" * 64, platform="shop", state=states.UPLOADED, remote_name="a.jpg")
    book.create_job(sha256="a" * 64, platform="archive", state=states.HELD, reason="needs a title")
    book.create_job(sha256="b" * 64, platform="shop", state=states.FAILED, reason="550 refused")
    batch = book.open_batch("shop", 2)
    book.close_batch(batch, 1, 1)
    book.close()


def test_status_filters_apply_to_the_json_and_the_table(workspace: Workspace):
    workspace.write_config(*folder_platforms(workspace))
    seed_ledger(workspace)

    result = workspace.cli("status", "--json", "--platform", "shop", "--state", "failed", "--since", "1h")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [(Path(f["path"]).name, f["platforms"]) for f in payload["files"]] == [
        (
            "b.jpg",
            {
                "shop": {
                    "state": "failed",
                    "reason": "550 refused",
                    "remote_name": None,
                    "changes": [],
                    "verified_by": None,
                }
            },
        )
    ]

    table = workspace.cli("status", "--format", "table", "--state", "held", "--state", "uploaded")
    assert table.returncode == 0, table.stderr
    assert "a.jpg" in table.stdout and "needs a title" in table.stdout
    assert "b.jpg" not in table.stdout and "550 refused" not in table.stdout


def test_status_refuses_an_unknown_platform_state_or_since(workspace: Workspace):
    workspace.write_config(*folder_platforms(workspace))
    seed_ledger(workspace)
    unknown = workspace.cli("status", "--platform", "nope")
    assert unknown.returncode == 2 and "--platform nope: no such platform" in unknown.stderr
    assert workspace.cli("status", "--state", "sleeping").returncode == 2
    since = workspace.cli("status", "--since", "soon")
    assert since.returncode == 2 and "not a duration or a date" in since.stderr


def test_history_lists_batches_as_a_table_and_as_json(workspace: Workspace):
    workspace.write_config(*folder_platforms(workspace))
    seed_ledger(workspace)
    result = workspace.cli("history", "--json", "--limit", "5")
    assert result.returncode == 0, result.stderr
    [batch] = json.loads(result.stdout)["batches"]
    assert {k: batch[k] for k in ("platform", "files", "uploaded", "failed")} == {
        "platform": "shop",
        "files": 2,
        "uploaded": 1,
        "failed": 1,
    }
    table = workspace.cli("history", "--format", "table")
    assert table.returncode == 0 and "shop" in table.stdout and "uploaded" in table.stdout


def test_log_file_receives_the_log_of_a_command(workspace: Workspace, tmp_path: Path):
    workspace.write_config(*folder_platforms(workspace))
    log_file = tmp_path / "logs" / "stockbridge.log"
    result = workspace.cli("once", "--log-file", str(log_file), "--log-json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any(r["message"].startswith("done: ") for r in records)


def run_stockbridge(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "stockbridge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def test_init_on_the_command_line_writes_once_then_refuses_with_exit_2(tmp_path: Path):
    path = tmp_path / "config.toml"
    first = run_stockbridge("init", str(path), "--preset", "shutterstock")
    assert first.returncode == 0, first.stderr
    assert f"wrote {path}" in first.stdout and "[platforms.shutterstock]" in path.read_text()
    again = run_stockbridge("init", str(path))
    assert again.returncode == 2 and "not overwritten" in again.stderr
    unknown = run_stockbridge("init", str(tmp_path / "other.toml"), "--preset", "nope")
    assert unknown.returncode == 2 and "unknown preset" in unknown.stderr
    assert not (tmp_path / "other.toml").exists()


def test_shell_completion_sources_are_produced_for_bash_zsh_and_fish():
    expected = {"bash": "complete -o nosort -F", "zsh": "#compdef stockbridge", "fish": "complete --no-files"}
    executable = Path(sys.executable).with_name("stockbridge")
    for shell, marker in expected.items():
        env = {**os.environ, "_STOCKBRIDGE_COMPLETE": f"{shell}_source"}
        result = subprocess.run(
            [str(executable)], capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL
        )
        assert result.returncode == 0, (shell, result.stderr)
        assert marker in result.stdout and "_STOCKBRIDGE_COMPLETE" in result.stdout, (shell, result.stdout)


def test_completion_offers_the_commands_and_preset_names(tmp_path: Path):
    executable = Path(sys.executable).with_name("stockbridge")
    env = {
        **os.environ,
        "_STOCKBRIDGE_COMPLETE": "bash_complete",
        "COMP_WORDS": "stockbridge hi",
        "COMP_CWORD": "1",
    }
    result = subprocess.run([str(executable)], capture_output=True, text=True, timeout=30, env=env)
    assert "plain,history" in result.stdout.splitlines()
    env |= {"COMP_WORDS": "stockbridge init --preset ad", "COMP_CWORD": "3"}
    result = subprocess.run([str(executable)], capture_output=True, text=True, timeout=30, env=env)
    assert result.stdout.splitlines() == ["plain,adobe_stock"]


def test_once_draws_progress_bars_on_a_terminal_and_nothing_extra_in_a_pipe(workspace: Workspace, exiftool):
    import os as _os
    import pty

    from stockbridge.demo.samples import make_image

    for seed in (1, 2):
        make_image(
            workspace.exports / f"IMG_{seed}.jpg",
            width=800,
            height=600,
            exiftool=exiftool,
            seed=seed,
            title="t",
            keywords=["a"],
        )
    (workspace.root / "archive").mkdir()
    workspace.write_config(
        f'[platforms.archive]\nprotocol = "folder"\npath = "{workspace.root / "archive"}"\n'
    )

    piped = workspace.cli("once")
    assert piped.returncode == 0, piped.stderr
    assert "ingesting" not in piped.stderr and "━" not in piped.stderr
    assert "uploaded IMG_1.jpg → archive" in piped.stderr  # the log line per outcome stays

    for path in workspace.exports.iterdir():  # new content, so the second run has work to do
        path.unlink()
    for seed in (3, 4):
        make_image(workspace.exports / f"IMG_{seed}.jpg", width=800, height=600, exiftool=exiftool, seed=seed)
    controller, terminal = pty.openpty()
    env = workspace.env() | {"COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen(
        workspace.command("once"), stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env
    )
    _os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = _os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=120) == 0
    _os.close(controller)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert "settling" in shown and "ingesting" in shown and "→ archive" in shown
    assert "2/2" in shown and "MB/s" in shown
    assert "uploaded IMG_3.jpg → archive" in shown  # log lines still shown, above the bars


def test_run_shows_the_first_scans_backlog_on_a_terminal(workspace: Workspace, exiftool):
    import os as _os
    import pty
    import select
    import signal
    import time

    from stockbridge.demo.samples import make_image

    for seed in (1, 2, 3):
        make_image(workspace.exports / f"IMG_{seed}.jpg", width=800, height=600, exiftool=exiftool, seed=seed)
    archive = workspace.root / "archive"
    archive.mkdir()
    workspace.write_config(
        f'[platforms.archive]\nprotocol = "folder"\npath = "{archive}"\n[platforms.archive.batch]\nmax_wait_seconds = 0\n'
    )
    controller, terminal = pty.openpty()
    env = workspace.env() | {"COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen(
        workspace.command("run"), stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env
    )
    _os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60

    def shows_the_end() -> bool:
        shown = b"".join(chunks).decode("utf-8", "replace")
        return len(list(archive.iterdir())) == 3 and "3/3" in shown and "→ archive" in shown

    try:
        while time.monotonic() < deadline and not shows_the_end():
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunks.append(_os.read(controller, 65536))
                except OSError:
                    break
    finally:
        process.send_signal(signal.SIGTERM)
        while True:  # drain until the child closes the terminal
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                break
            try:
                chunk = _os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
        _os.close(controller)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert len(list(archive.iterdir())) == 3
    assert "ingesting" in shown and "3/3" in shown and "→ archive" in shown
