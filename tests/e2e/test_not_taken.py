"""Files that are seen and not taken are said at once and listed by `status` until dealt with.

A symlink, a hard link, a file that never stops changing: none becomes a job, so before issue 4 they
were a log line that scrolled away. Now `status` has a "Not taken" part with each one's reason, and
the entry goes once the file is taken, deleted or fixed.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table, service
from tests.waiting import wait_for

HARD_LINK_REASON = (
    "has 2 hard links; not taken (a hard link could expose a file from outside the folder)."
    " Export a normal copy, or set [watch] allow_hardlinks = true"
)


def not_taken(workspace: Workspace) -> dict[str, dict]:
    return {Path(entry["path"]).name: entry for entry in workspace.status()["not_taken"]}


def wait_for_status(workspace: Workspace, condition, timeout: float, what: str) -> dict[str, dict]:
    """Polls `status --json` (a subprocess each time) until ``condition(not_taken)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        seen = not_taken(workspace)
        if condition(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; not taken: {seen}")
        time.sleep(0.2)


def test_a_symlink_dropped_in_while_running_is_reported_at_once_and_listed_until_removed(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    secret = make_image(tmp_path / "private.jpg", width=1200, height=900, title="Not for sale", seed=3)
    workspace.write_config(platform_table("archive", folder_target, **{"batch.max_wait_seconds": 0}))
    log = tmp_path / "service.log"
    with service(workspace, log):  # rescan_seconds is the default 600: only the event can tell
        link = workspace.exports / "holiday.jpg"
        link.symlink_to(secret)
        made = time.monotonic()
        make_image(workspace.exports / "beach.jpg", width=1200, height=900, title="Beach", seed=4)
        warning = f"{workspace.exports.resolve() / link.name}: a symbolic link, never followed"
        # Within 60 s, ten times less than the rescan: only the event can have told.
        wait_for(lambda: warning in log.read_text(), 60, "the WARNING about the symlink")
        reported_after = time.monotonic() - made
        wait_for(lambda: (folder_target.root / "beach.jpg").exists(), 20, "the normal file to be uploaded")
        listed = wait_for_status(workspace, lambda seen: "holiday.jpg" in seen, 5, "the symlink in status")
        assert listed["holiday.jpg"]["kind"] == "link"
        assert listed["holiday.jpg"]["reason"] == "a symbolic link, never followed; copy the photo in"
        text = workspace.cli("status", "--format", "table").stdout
        assert "Not taken" in text and "holiday.jpg" in text and "a symbolic link" in text

        link.unlink()
        assert "holiday.jpg" not in not_taken(workspace), "deleted from the folder: no longer listed"
    print(f"\nsymlink reported {reported_after:.2f} s after it was made")
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["beach.jpg"]
    assert log.read_text().count("a symbolic link, never followed") == 1


def test_a_file_that_never_stops_changing_is_listed_as_unstable_until_it_settles_and_is_taken(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    photo = make_image(tmp_path / "final.jpg", width=1200, height=900, title="Finally", seed=6).read_bytes()
    workspace.write_config(
        platform_table("archive", folder_target, **{"batch.max_wait_seconds": 0}),
        settle_seconds=1.0,
        watch={"max_settle_seconds": 1.5},
    )
    busy = workspace.exports / "busy.jpg"
    stop = threading.Event()

    def keep_writing() -> None:
        # A write every 0.05 s against a settle of 1 s: it looks finished only if this thread
        # froze for a whole second. (The service's settle clock cannot be driven from here.)
        with busy.open("wb") as out:
            while not stop.wait(0.05):
                out.write(os.urandom(1024))
                out.flush()

    writer = threading.Thread(target=keep_writing, daemon=True)
    with service(workspace, tmp_path / "service.log"):
        writer.start()
        try:
            listed = wait_for_status(workspace, lambda seen: "busy.jpg" in seen, 15, "busy.jpg in status")
        finally:
            stop.set()
            writer.join()
        assert listed["busy.jpg"]["kind"] == "unstable"
        assert listed["busy.jpg"]["reason"].startswith("still changing after 1.5 s; taken once it stays")
        assert not (folder_target.root / "busy.jpg").exists()

        busy.write_bytes(photo)  # the export finished
        wait_for(lambda: (folder_target.root / "busy.jpg").exists(), 20, "busy.jpg to be uploaded")
        wait_for_status(workspace, lambda seen: "busy.jpg" not in seen, 5, "busy.jpg to leave the list")
    assert (folder_target.root / "busy.jpg").read_bytes() == photo


def test_once_refuses_a_hard_link_lists_it_and_takes_a_normal_copy_put_in_its_place(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    # A photo outside the folder stands in for ~/.ssh/id_ed25519: linked in, it must not go out.
    outside = make_image(tmp_path / "outside.jpg", width=1200, height=900, title="Outside", seed=7)
    linked = workspace.exports / "linked.jpg"
    os.link(outside, linked)
    make_image(workspace.exports / "normal.jpg", width=1200, height=900, title="Normal", seed=8)
    workspace.write_config(platform_table("archive", folder_target))

    first = workspace.cli("once", timeout=60)
    assert "Traceback" not in first.stderr, first.stderr
    assert f"linked.jpg: {HARD_LINK_REASON}" in first.stderr
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["normal.jpg"]
    listed = not_taken(workspace)
    assert list(listed) == ["linked.jpg"]
    assert (listed["linked.jpg"]["kind"], listed["linked.jpg"]["reason"]) == ("refused", HARD_LINK_REASON)
    assert listed["linked.jpg"]["path"] == str(linked.resolve())
    assert "linked.jpg" not in {Path(entry["path"]).name for entry in workspace.status()["files"]}
    text = workspace.cli("status", "--format", "table").stdout
    assert "Not taken" in text and "has 2 hard links" in text

    linked.unlink()
    shutil.copyfile(outside, linked)  # "export a normal copy"
    second = workspace.cli("once", timeout=60)
    assert "hard links" not in second.stderr, second.stderr
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["linked.jpg", "normal.jpg"]
    assert not_taken(workspace) == {}, "taken now: gone from the list"

    # stockbridge's own copies never share an inode with anything in the watch folder.
    watched = {(s.st_dev, s.st_ino) for s in (p.stat() for p in workspace.exports.iterdir())}
    staged = [p for p in workspace.state.rglob("*") if p.is_file()]
    assert staged and not any((s.st_dev, s.st_ino) in watched for s in (p.stat() for p in staged))
    assert all(p.stat().st_nlink == 1 for p in workspace.exports.iterdir())


def test_with_allow_hardlinks_a_hard_link_is_taken(workspace: Workspace, exiftool, folder_target, tmp_path):
    outside = make_image(tmp_path / "outside.jpg", width=1200, height=900, title="Mine", seed=9)
    os.link(outside, workspace.exports / "linked.jpg")
    workspace.write_config(platform_table("archive", folder_target), watch={"allow_hardlinks": True})
    result = workspace.cli("once", timeout=60)
    assert result.returncode == 0, result.stderr
    assert (folder_target.root / "linked.jpg").read_bytes() == outside.read_bytes()
    assert not_taken(workspace) == {}
