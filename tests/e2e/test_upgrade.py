"""Upgrading from 0.1.0: `stockbridge once` on a state folder 0.1.0 left sends only what is new."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3

from stockbridge.demo.samples import make_image
from stockbridge.ledger.migrations import SCHEMA_VERSION
from tests.e2e.conftest import Workspace, platform_table
from tests.legacy import add_asset, add_job, ledger_0_1_0


def test_once_after_an_upgrade_from_0_1_0_sends_only_the_new_file(
    workspace: Workspace, exiftool, folder_target
):
    for seed, name in enumerate(["old.jpg", "cut.jpg", "new.jpg"], start=1):
        make_image(
            workspace.exports / name, width=1600, height=1200, exiftool=exiftool, seed=seed, title=name
        )
    old, cut = (workspace.exports / name for name in ("old.jpg", "cut.jpg"))
    # What 0.1.0 left: old.jpg uploaded (the agency has since taken it away), and cut.jpg cut off by a
    # crash after its last byte landed, before the ledger heard.
    db = ledger_0_1_0(workspace.state / "ledger.sqlite3")
    for source in (old, cut):
        add_asset(
            db, hashlib.sha256(source.read_bytes()).hexdigest(), str(source), size=source.stat().st_size
        )
    add_job(db, hashlib.sha256(old.read_bytes()).hexdigest(), "archive", "uploaded", remote_name="old.jpg",
            upload_size=old.stat().st_size, attempts=1, verified=1, uploaded_at=1.0e9)  # fmt: skip
    add_job(db, hashlib.sha256(cut.read_bytes()).hexdigest(), "archive", "uploading", remote_name="cut.jpg",
            upload_size=cut.stat().st_size, upload_path=str(workspace.state / "cut-copy.jpg"), attempts=1)  # fmt: skip
    db.close()
    shutil.copyfile(cut, workspace.state / "cut-copy.jpg")  # the copy it was sending
    shutil.copyfile(cut, folder_target.root / "cut.jpg")
    os.utime(folder_target.root / "cut.jpg", ns=(1_000_000_000, 1_000_000_000))
    workspace.write_config(platform_table("archive", folder_target))

    result = workspace.cli("once")

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["cut.jpg", "new.jpg"], (
        "old.jpg went again"
    )
    assert (folder_target.root / "cut.jpg").stat().st_mtime_ns == 1_000_000_000, "cut.jpg was sent again"
    assert (folder_target.root / "new.jpg").read_bytes() == (workspace.exports / "new.jpg").read_bytes()
    jobs = {
        os.path.basename(entry["path"]): entry["platforms"]["archive"]
        for entry in workspace.status()["files"]
    }
    assert {name: (job["state"], job["remote_name"]) for name, job in jobs.items()} == {
        "old.jpg": ("uploaded", "old.jpg"),
        "cut.jpg": ("uploaded", "cut.jpg"),
        "new.jpg": ("uploaded", "new.jpg"),
    }
    db = sqlite3.connect(workspace.state / "ledger.sqlite3")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        db.close()
