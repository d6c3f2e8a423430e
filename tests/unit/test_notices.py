"""`status` lists a file not taken only while it still is: deleted or fixed, it goes."""

from __future__ import annotations

import os
from pathlib import Path

from stockbridge.config.models import WatchConfig
from stockbridge.intake.notices import NoticeBoard, current
from stockbridge.intake.scan import scan
from stockbridge.ledger.store import Ledger


def test_notices_of_deleted_and_fixed_entries_go_the_others_stay(tmp_path: Path):
    root = tmp_path / "exports"
    root.mkdir()
    secret = tmp_path / "id_ed25519"
    secret.write_text("PRIVATE KEY")
    for name in ("gone.jpg", "fixed.jpg", "still.jpg"):
        (root / name).symlink_to(secret)
    os.mkfifo(root / "pipe.jpg")
    (root / "x.jpg").mkdir()
    (root / "busy.jpg").write_bytes(b"half")
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        board = NoticeBoard(ledger, WatchConfig(folder=root, settle_seconds=1, max_settle_seconds=60))
        scan(root, on_skipped=board.skipped)
        board.unstable(root / "busy.jpg")
        assert {Path(n.path).name: n.kind for n in current(ledger)} == {
            "gone.jpg": "link",
            "fixed.jpg": "link",
            "still.jpg": "link",
            "pipe.jpg": "special",
            "x.jpg": "folder",
            "busy.jpg": "unstable",
        }
        (root / "gone.jpg").unlink()
        (root / "fixed.jpg").unlink()
        (root / "fixed.jpg").write_bytes(b"a real copy")  # the service takes it next; not a link now
        (root / "x.jpg").rmdir()
        (root / "busy.jpg").unlink()
        kept = current(ledger)
        assert [Path(n.path).name for n in kept] == ["pipe.jpg", "still.jpg"]
        assert [Path(n.path).name for n in ledger.notices()] == ["pipe.jpg", "still.jpg"], (
            "stale rows deleted"
        )
        pipe = next(n for n in ledger.notices() if n.kind == "special")
        assert pipe.reason == "not a regular file (a pipe, socket or device); never opened"
    finally:
        ledger.close()


def test_the_unstable_reason_says_how_long_and_what_to_do(tmp_path: Path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        board = NoticeBoard(ledger, WatchConfig(folder=tmp_path, settle_seconds=10, max_settle_seconds=600))
        (tmp_path / "big.tif").write_bytes(b"x")
        board.unstable(tmp_path / "big.tif")
        (notice,) = current(ledger)
        assert notice.reason == (
            "still changing after 600 s; taken once it stays unchanged for 10 s"
            " (only a slow copy? raise [watch] max_settle_seconds)"
        )
    finally:
        ledger.close()
