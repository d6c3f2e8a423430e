"""Set-up as a new user meets it: `check`, `once` and `explain` say what is wrong in one line, with
exit 2, instead of passing and failing later (issue 13, items 13 and 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table

KEYWORDS = [f"keyword{number}" for number in range(12)]


def test_check_and_once_refuse_a_config_with_no_platform(workspace: Workspace):
    workspace.write_config()
    checked = workspace.cli("check")
    assert checked.returncode == 2
    assert "platforms: no platform configured; nothing would be uploaded" in checked.stderr
    assert "valid" not in checked.stdout
    once = workspace.cli("once")
    assert once.returncode == 2 and "no platform configured" in once.stderr


def test_check_refuses_a_config_whose_every_platform_is_disabled(workspace: Workspace, folder_target):
    workspace.write_config(platform_table("archive", folder_target, enabled=False))
    checked = workspace.cli("check")
    assert checked.returncode == 2 and "every platform is disabled (archive)" in checked.stderr


def test_check_reports_a_missing_exiftool_with_what_to_install(workspace: Workspace, folder_target, tmp_path):
    workspace.write_config(platform_table("archive", folder_target))
    bare = tmp_path / "bare-path"  # a PATH with nothing on it: no exiftool
    bare.mkdir()
    result = workspace.cli_with_env("check", env={"PATH": str(bare)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ExifTool (exiftool) is not on PATH" in result.stderr
    assert "apt install libimage-exiftool-perl" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_connect_on_a_folder_says_the_folder_exists_and_is_writable(
    workspace: Workspace, folder_target
):
    workspace.write_config(platform_table("archive", folder_target))
    result = workspace.cli("check", "--connect")
    assert result.returncode == 0, result.stderr
    assert f"archive: ok, folder {folder_target.root} exists and is writable" in result.stdout
    assert "logged in" not in result.stdout


def test_explain_of_a_missing_file_is_one_line_and_exit_2(workspace: Workspace, folder_target):
    workspace.write_config(platform_table("archive", folder_target))
    result = workspace.cli("explain", str(workspace.exports / "nope.jpg"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: no such file: {workspace.exports / 'nope.jpg'}"]
    assert result.stdout == ""


def test_explain_of_a_folder_explains_every_file_in_it_but_junk(
    workspace: Workspace, exiftool, folder_target
):
    workspace.write_config(platform_table("archive", folder_target))
    for seed, name in enumerate(["a.jpg", "sub/b.jpg"], start=1):
        (workspace.exports / name).parent.mkdir(exist_ok=True)
        make_image(
            workspace.exports / name,
            width=1600,
            height=1200,
            exiftool=exiftool,
            seed=seed,
            title=f"Sample {seed}",
            keywords=KEYWORDS,
        )
    (workspace.exports / ".DS_Store").write_bytes(b"junk")
    (workspace.exports / "c.jpg.part").write_bytes(b"half")
    result = workspace.cli("explain", str(workspace.exports), "--json")
    assert result.returncode == 0, result.stderr
    explained = {
        Path(entry["path"]).relative_to(workspace.exports).as_posix(): entry
        for entry in json.loads(result.stdout)["files"]
    }
    assert sorted(explained) == ["a.jpg", "sub/b.jpg"]
    assert all(entry["platforms"]["archive"]["verdict"] == "accept" for entry in explained.values())


def test_demo_without_the_demo_extra_says_which_extra_to_install_and_creates_nothing(tmp_path: Path):
    # pyftpdlib made unimportable the way a plain `pipx install stockbridge` leaves it.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    keep = tmp_path / "kept"
    program = "import sys; sys.modules['pyftpdlib'] = None; from stockbridge.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", program, "demo", "--keep", str(keep)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TMPDIR": str(tmp)},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "the demo needs the [demo] extra (pyftpdlib not installed)" in lines[0]
    assert "pip install 'stockbridge[demo]'" in lines[0]
    assert "pipx inject stockbridge pyftpdlib pyOpenSSL" in lines[0]
    assert result.stdout == ""
    assert not keep.exists() and list(tmp.iterdir()) == []
