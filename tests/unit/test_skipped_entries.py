"""The scan says once, by name, what it will not take that a user might expect it to take."""

from __future__ import annotations

import os
from pathlib import Path

from loguru import logger

from stockbridge.intake.scan import scan


def _warnings_during(action) -> list[str]:
    messages: list[str] = []
    sink = logger.add(messages.append, level="WARNING", format="{message}")
    try:
        action()
    finally:
        logger.remove(sink)
    return [str(message).rstrip("\n") for message in messages]


def test_links_folders_named_like_photos_and_pipes_are_skipped_with_one_warning_each(tmp_path: Path):
    root = tmp_path / "exports"
    root.mkdir()
    secret = tmp_path / "id_ed25519"
    secret.write_text("PRIVATE KEY")
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (root / "outside.jpg").symlink_to(secret)
    (root / "inside.jpg").symlink_to(root / "photo.jpg")
    (root / "x.jpg").mkdir()
    (root / "plain folder").mkdir()
    os.mkfifo(root / "p.jpg")

    first = _warnings_during(lambda: scan(root))
    again = _warnings_during(lambda: scan(root))

    assert scan(root) == [root / "photo.jpg"]
    assert sorted(first) == sorted(
        [
            f"{root / 'outside.jpg'}: a symbolic link, never followed; copy the photo in",
            f"{root / 'inside.jpg'}: a symbolic link, never followed; copy the photo in",
            f"{root / 'x.jpg'}: a folder, not a photo; the files inside it are looked at",
            f"{root / 'p.jpg'}: not a regular file (a pipe, socket or device); never opened",
        ]
    )
    assert again == [], "a rescan must not repeat the same warning"
