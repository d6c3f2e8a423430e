"""Secrets end to end: a readable config with a password is refused; no password in any output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table


def test_run_and_once_refuse_a_config_others_can_read_that_holds_a_password_and_check_warns(
    workspace: Workspace, ftp_server
):
    config = workspace.write_config(platform_table("agency", ftp_server))
    config.chmod(0o644)

    for command in ("once", "run"):
        refused = workspace.cli(command, timeout=30)
        assert refused.returncode == 2, (command, refused.stderr)
        assert str(config) in refused.stderr and f"chmod 600 {config}" in refused.stderr, refused.stderr
        assert "allow_insecure_config = true" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert ftp_server.password not in refused.stdout + refused.stderr

    checked = workspace.cli("check", timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert "WARNING" in checked.stderr and "chmod 600" in checked.stderr

    config.write_text("allow_insecure_config = true\n" + config.read_text())
    config.chmod(0o644)
    allowed = workspace.cli("once", timeout=30)
    assert allowed.returncode == 0, allowed.stderr
    assert "chmod 600" in allowed.stderr, "the warning still shows when the user allows it"


def _every_text(outputs: list[subprocess.CompletedProcess[str]], *folders: Path) -> dict[str, bytes]:
    texts = {
        f"{' '.join(map(str, out.args[3:]))} [{stream}]": getattr(out, stream).encode()
        for out in outputs
        for stream in ("stdout", "stderr")
    }
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                texts[str(path)] = path.read_bytes()
    return texts


def test_no_password_appears_in_any_output_log_file_or_state_file(
    workspace: Workspace, ftp_server, exiftool, tmp_path
):
    right = ftp_server.password
    assert right
    wrong = "Wr0ng-Secret-Passw0rd-xyz"
    logs = tmp_path / "logs"
    logs.mkdir()
    make_image(workspace.exports / "one.jpg", width=1600, height=1200, exiftool=exiftool, seed=1, title="One")
    make_image(workspace.exports / "two.jpg", width=1600, height=1200, exiftool=exiftool, seed=2, title="Two")
    outputs: list[subprocess.CompletedProcess[str]] = []

    def cli(*args: str, log: str, json_log: bool = False) -> subprocess.CompletedProcess[str]:
        extra = ["-v", "--log-file", str(logs / log)] + (["--log-json"] if json_log else [])
        result = workspace.cli(*args, *extra, timeout=60)
        assert "Traceback" not in result.stderr, result.stderr
        outputs.append(result)
        return result

    workspace.write_config(platform_table("agency", ftp_server))
    assert cli("once", log="once.log").returncode == 0
    assert cli("status", log="status.log").returncode == 0
    assert json.loads(cli("status", "--json", log="status.json.log", json_log=True).stdout)["files"]
    assert cli("check", "--connect", log="check.log").returncode == 0
    explained = cli("explain", str(workspace.exports / "one.jpg"), "--json", log="explain.log", json_log=True)
    assert explained.returncode == 0

    ftp_server.password = wrong  # what we now send is wrong: the server refuses it
    workspace.write_config(platform_table("agency", ftp_server))
    make_image(
        workspace.exports / "three.jpg", width=1600, height=1200, exiftool=exiftool, seed=3, title="Three"
    )
    assert cli("once", log="once-wrong.log", json_log=True).returncode == 1
    assert cli("check", "--connect", log="check-wrong.log").returncode == 1
    assert cli("status", "--json", log="status-wrong.log").returncode == 0

    texts = _every_text(outputs, logs, workspace.state)
    assert len(texts) > 20 and any(b"DEBUG" in text for text in texts.values()), "the logs were not verbose"
    assert any(b"login refused" in text or b"530" in text for text in texts.values())
    for password in (right, wrong):
        leaks = [where for where, text in texts.items() if password.encode() in text]
        assert leaks == [], f"{password!r} leaked into {leaks}"
