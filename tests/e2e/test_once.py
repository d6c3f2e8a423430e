"""`stockbridge once` / `status` / `explain` / `check` / `retry`, run as a user would: as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table

KEYWORDS = [f"keyword{index}" for index in range(40)]


def image(exiftool, path: Path, *, seed: int, width: int = 1600, height: int = 1200, **metadata) -> Path:
    metadata.setdefault("title", f"Sample {path.stem}")
    metadata.setdefault("keywords", KEYWORDS[:12])
    return make_image(path, width=width, height=height, exiftool=exiftool, seed=seed, **metadata)


def test_once_delivers_every_file_once_to_ftps_sftp_and_a_folder(
    workspace: Workspace, exiftool, ftps_server, sshd_server, folder_target
):
    names = ["IMG_0001.jpg", "IMG_0002.jpg", "Zürich Sunset.jpg"]
    for seed, name in enumerate(names, start=1):
        image(exiftool, workspace.exports / name, seed=seed)
    workspace.write_config(
        platform_table("agency_ftps", ftps_server),
        platform_table("agency_sftp", sshd_server),
        platform_table("archive", folder_target),
    )

    first = workspace.cli("once")
    assert first.returncode == 0, first.stderr

    expected_remote = ["IMG_0001.jpg", "IMG_0002.jpg", "Zurich_Sunset.jpg"]
    for server in (ftps_server, sshd_server, folder_target):
        landed = sorted(p.name for p in server.root.iterdir() if p.is_file())
        assert landed == expected_remote, (server.name, landed)
        for source, remote in zip(names, expected_remote, strict=True):
            assert (server.root / remote).read_bytes() == (workspace.exports / source).read_bytes()

    status = workspace.status()
    assert len(status["files"]) == 3
    for entry in status["files"]:
        assert len(entry["sha256"]) == 64
        assert set(entry["platforms"]) == {"agency_ftps", "agency_sftp", "archive"}
        for job in entry["platforms"].values():
            assert job == {
                "state": "uploaded",
                "reason": None,
                "remote_name": job["remote_name"],
                "changes": [],
                # None of these servers computes hashes (pyftpdlib, OpenSSH, a folder).
                "verified_by": "size",
            }

    stores_before = ftps_server.commands().count("STOR")
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder_target.root.iterdir()}
    second = workspace.cli("once")
    assert second.returncode == 0, second.stderr
    assert ftps_server.commands().count("STOR") == stores_before, "a second run sent something again"
    assert {p.name: p.stat().st_mtime_ns for p in folder_target.root.iterdir()} == mtimes


def test_each_platform_gets_its_verdict_with_a_reason(
    workspace: Workspace, exiftool, ftps_server, folder_target
):
    image(exiftool, workspace.exports / "fits.jpg", seed=1)
    image(exiftool, workspace.exports / "small.jpg", seed=2, width=800, height=600)
    image(exiftool, workspace.exports / "many_keywords.jpg", seed=3, keywords=KEYWORDS[:40])
    image(exiftool, workspace.exports / "untitled.jpg", seed=4, title=None)
    (workspace.exports / "notes.jpg").write_text("this is text, not a photo\n")
    workspace.write_config(
        platform_table(
            "agency",
            ftps_server,
            **{
                "rules.min_megapixels": 1.0,
                "rules.keywords": {"min": 5, "max": 25},
                "rules.title": {"required": True},
            },
        ),
        platform_table("archive", folder_target),
    )
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr  # held and rejected are final answers, not failures

    files = {Path(e["path"]).name: e["platforms"] for e in workspace.status()["files"]}
    assert files["fits.jpg"]["agency"]["state"] == "uploaded"
    assert files["small.jpg"]["agency"]["state"] == "rejected"
    assert files["small.jpg"]["agency"]["reason"].startswith("0.5 MP (800×600), agency needs at least 1.0 MP")
    assert files["small.jpg"]["archive"]["state"] == "uploaded"
    assert files["untitled.jpg"]["agency"]["state"] == "held"
    assert "no title" in files["untitled.jpg"]["agency"]["reason"]
    assert files["notes.jpg"]["agency"]["state"] == "rejected"
    assert "not a file" in files["notes.jpg"]["archive"]["reason"]
    assert files["many_keywords.jpg"]["agency"]["state"] == "uploaded"
    assert files["many_keywords.jpg"]["agency"]["changes"] == ["keywords 40 → 25 (first 25 kept)"]
    assert files["many_keywords.jpg"]["archive"]["changes"] == []

    # The agency's copy carries the first 25 keywords, in order; the archive and the source keep all 40.
    sent = exiftool.read([ftps_server.root / "many_keywords.jpg"])[ftps_server.root / "many_keywords.jpg"]
    assert list(sent.keywords) == KEYWORDS[:25]
    archived = exiftool.read([folder_target.root / "many_keywords.jpg"])[
        folder_target.root / "many_keywords.jpg"
    ]
    assert list(archived.keywords) == KEYWORDS[:40]
    source = exiftool.read([workspace.exports / "many_keywords.jpg"])[workspace.exports / "many_keywords.jpg"]
    assert list(source.keywords) == KEYWORDS[:40]
    assert sorted(p.name for p in workspace.exports.iterdir()) == sorted(
        ["fits.jpg", "small.jpg", "many_keywords.jpg", "untitled.jpg", "notes.jpg"]
    ), "something was written into the export folder"


def test_the_same_content_exported_again_under_another_name_is_not_sent_again(
    workspace: Workspace, exiftool, folder_target
):
    image(exiftool, workspace.exports / "first.jpg", seed=7)
    workspace.write_config(platform_table("archive", folder_target))
    assert workspace.cli("once").returncode == 0
    shutil.copyfile(workspace.exports / "first.jpg", workspace.exports / "first (copy).jpg")
    assert workspace.cli("once").returncode == 0
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["first.jpg"]


def test_different_files_with_the_same_name_both_arrive(workspace: Workspace, exiftool, folder_target):
    (workspace.exports / "a").mkdir()
    (workspace.exports / "b").mkdir()
    image(exiftool, workspace.exports / "a" / "IMG_1.jpg", seed=1)
    image(exiftool, workspace.exports / "b" / "IMG_1.jpg", seed=2)
    workspace.write_config(platform_table("archive", folder_target))
    assert workspace.cli("once").returncode == 0
    landed = sorted(p.name for p in folder_target.root.iterdir())
    assert len(landed) == 2 and "IMG_1.jpg" in landed
    other = next(name for name in landed if name != "IMG_1.jpg")
    assert other.startswith("IMG_1_") and other.endswith(".jpg")
    remote_names = {
        job["remote_name"] for entry in workspace.status()["files"] for job in entry["platforms"].values()
    }
    assert remote_names == set(landed)


def test_a_refused_login_pauses_that_platform_only_and_never_shows_the_password(
    workspace: Workspace, exiftool, ftps_server, folder_target
):
    image(exiftool, workspace.exports / "one.jpg", seed=1)
    image(exiftool, workspace.exports / "two.jpg", seed=2)
    wrong = "Wr0ng-Passw0rd-xyz"
    ftps_server.password = wrong
    workspace.write_config(platform_table("agency", ftps_server), platform_table("archive", folder_target))
    result = workspace.cli("once")
    assert result.returncode == 1
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["one.jpg", "two.jpg"]
    assert ftps_server.commands().count("PASS") == 1, "a refused login must not be retried (accounts lock)"
    status = workspace.cli("status", "--json")
    payload = json.loads(status.stdout)
    assert "login refused" in payload["paused"]["agency"]
    table = workspace.cli("status")
    assert "agency is paused" in table.stdout
    for text in (result.stdout, result.stderr, status.stdout, status.stderr, table.stdout):
        assert wrong not in text
    assert "retry --platform agency" in result.stderr

    retried = workspace.cli("retry", "--platform", "agency")
    assert retried.returncode == 0 and "resumed agency" in retried.stdout


def test_explain_json_shows_verdicts_reasons_and_changes_without_uploading(
    workspace: Workspace, exiftool, folder_target
):
    path = image(exiftool, workspace.exports / "many.jpg", seed=3, keywords=KEYWORDS[:30])
    small = image(exiftool, workspace.exports / "small.jpg", seed=4, width=400, height=300)
    workspace.write_config(
        platform_table(
            "strict", folder_target, **{"rules.min_megapixels": 1.0, "rules.keywords": {"max": 20}}
        )
    )
    result = workspace.cli("explain", str(path), str(small), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    many, tiny = payload["files"]
    assert many["platforms"]["strict"] == {
        "verdict": "accept",
        "reasons": [],
        "changes": ["keywords 30 → 20 (first 20 kept)"],
    }
    assert tiny["platforms"]["strict"]["verdict"] == "reject"
    assert "0.1 MP (400×300)" in tiny["platforms"]["strict"]["reasons"][0]
    assert list(folder_target.root.iterdir()) == []
    assert not (workspace.state / "ledger.sqlite3").exists()


def test_explain_refuses_a_hard_link_and_a_symlink_with_the_words_run_uses(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    outside = image(exiftool, tmp_path / "outside.jpg", seed=5)
    linked = workspace.exports / "linked.jpg"
    os.link(outside, linked)
    pointer = workspace.exports / "pointer.jpg"
    pointer.symlink_to(outside)
    workspace.write_config(platform_table("archive", folder_target))
    result = workspace.cli("explain", str(linked), str(pointer), "--json")
    assert result.returncode == 0, result.stderr
    hard, soft = (entry["platforms"]["archive"] for entry in json.loads(result.stdout)["files"])
    assert hard["verdict"] == "reject" and "has 2 hard links; not taken" in hard["reasons"][0]
    assert "allow_hardlinks = true" in hard["reasons"][0]
    assert soft["verdict"] == "reject" and "a symbolic link, never followed" in soft["reasons"][0]
    once = workspace.cli("once")
    assert "linked.jpg: has 2 hard links; not taken" in once.stderr
    assert list(folder_target.root.iterdir()) == []


def test_check_exits_0_when_valid_and_2_with_every_problem_named(workspace: Workspace, folder_target):
    workspace.write_config(platform_table("archive", folder_target))
    ok = workspace.cli("check")
    assert ok.returncode == 0 and "valid" in ok.stdout
    workspace.config.write_text(
        f'[watch]\nfolder = "{workspace.exports}"\nsetle_seconds = 1\n'
        '[platforms.a]\nprotocol = "folder"\npath = "x"\n[platforms.a.rules]\nkeywords = { max = "fifty" }\n'
    )
    bad = workspace.cli("check")
    assert bad.returncode == 2
    assert 'watch.setle_seconds: unknown key; did you mean "settle_seconds"?' in bad.stderr
    assert 'platforms.a.rules.keywords.max: expected an integer, got "fifty"' in bad.stderr
    assert "Traceback" not in bad.stderr


def test_check_connect_logs_in_and_proves_the_folder_is_writable(
    workspace: Workspace, ftps_server, sshd_server, folder_target
):
    workspace.write_config(
        platform_table("agency_ftps", ftps_server),
        platform_table("agency_sftp", sshd_server),
        platform_table("archive", folder_target),
    )
    result = workspace.cli("check", "--connect")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": ok,") == 3
    for server in (ftps_server, sshd_server, folder_target):
        assert list(server.root.iterdir()) == [], "the write check left a file behind"
    ftps_server.password = "not-the-password"
    workspace.write_config(platform_table("agency_ftps", ftps_server))
    refused = workspace.cli("check", "--connect")
    assert refused.returncode == 1 and "agency_ftps: FAILED" in refused.stdout
    assert "not-the-password" not in refused.stdout + refused.stderr


def test_a_server_that_cannot_be_reached_leaves_its_files_pending_and_others_go_through(
    workspace: Workspace, exiftool, ftps_server, folder_target
):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        ftps_server.port = probe.getsockname()[1]
    image(exiftool, workspace.exports / "one.jpg", seed=1)
    workspace.write_config(platform_table("agency", ftps_server), platform_table("archive", folder_target))
    result = workspace.cli("once")
    assert result.returncode == 1
    assert [p.name for p in folder_target.root.iterdir()] == ["one.jpg"]
    files = {Path(e["path"]).name: e["platforms"] for e in workspace.status()["files"]}
    assert files["one.jpg"]["agency"]["state"] == "pending"
    assert "cannot reach the server" in files["one.jpg"]["agency"]["reason"]
    assert "left pending for the next run" in result.stderr


def test_bad_files_each_get_one_line_and_a_reason_while_good_ones_go_through(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    good = image(exiftool, tmp_path / "good.jpg", seed=21)
    data = good.read_bytes()
    exports = workspace.exports
    (exports / "good.jpg").write_bytes(data)
    (exports / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (exports / "header_only.jpg").write_bytes(data[:300])
    (exports / "empty.jpg").write_bytes(b"")
    (exports / "text.jpg").write_text("hello\n")
    (exports / "line\nbreak.jpg").write_bytes(image(exiftool, tmp_path / "other.jpg", seed=22).read_bytes())
    (exports / "folder.jpg").mkdir()
    workspace.write_config(platform_table("archive", folder_target))

    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["good.jpg", "line_break.jpg"]
    files = {Path(e["path"]).name: e["platforms"]["archive"] for e in workspace.status()["files"]}
    assert files["truncated.jpg"]["state"] == "rejected"
    assert files["truncated.jpg"]["reason"].startswith("cut off: the file ends inside its image data")
    assert files["header_only.jpg"]["reason"].startswith("cut off: the file ends inside its header")
    assert files["empty.jpg"]["reason"].startswith("not a file stockbridge can take")
    assert files["text.jpg"]["reason"].startswith("not a file stockbridge can take")
    assert "folder.jpg" not in files
    # One log line per outcome: a line break in a file name cannot forge a second line.
    lines = result.stderr.splitlines()
    assert any("line\\nbreak.jpg" in line and "uploaded" in line for line in lines)
    assert not any(line.startswith("break.jpg") for line in lines)
    assert "Traceback" not in result.stderr


def test_one_exiftool_process_serves_a_whole_once_run(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    """Issue 14: the main thread and both prepare workers share one ExifTool (it used to start
    three: ~70 ms of CPU each, before the first file)."""
    real = shutil.which("exiftool")
    assert real is not None
    started = tmp_path / "exiftool-starts.log"
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "exiftool"
    wrapper.write_text(f'#!/bin/sh\necho "$$" >> "{started}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    names = [f"IMG_{index}.jpg" for index in range(4)]
    for seed, name in enumerate(names, start=1):
        image(exiftool, workspace.exports / name, seed=seed, width=640, height=480)
    workspace.write_config(platform_table("archive", folder_target), "[prepare]\nworkers = 2\n")

    env = {"PATH": f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}"}
    result = workspace.cli_with_env("once", env=env)

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder_target.root.iterdir()) == names
    assert len(started.read_text().split()) == 1, started.read_text()
