"""`stockbridge run`, the service: only finished files, picked up as they arrive, clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table, service
from tests.waiting import wait_for


def test_a_file_written_slowly_is_uploaded_only_after_it_settled(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    sample = make_image(
        tmp_path / "sample.jpg", width=1600, height=1200, title="Slow", exiftool=exiftool, seed=5
    )
    data = sample.read_bytes()
    settle = 2.0
    workspace.write_config(
        platform_table("archive", folder_target, **{"batch.max_wait_seconds": 0}), settle_seconds=settle
    )
    log = tmp_path / "service.log"
    with service(workspace, log) as process:
        target = folder_target.root / "slow.jpg"
        pieces = 6
        step = len(data) // pieces + 1
        with (workspace.exports / "slow.jpg").open("wb") as out:
            for index in range(pieces):
                # Pauses of 0.1 s against a settle of 2 s: only a writer frozen for 1.9 s (a stall
                # no machine running this suite has) would look finished. The service's settle
                # clock cannot be driven from here; tests/integration/test_watcher.py drives it.
                time.sleep(0.1)
                last_write = time.monotonic()
                out.write(data[index * step : (index + 1) * step])
                out.flush()
                assert not target.exists(), "a file still being written was uploaded"
        wait_for(target.exists, 30, "the settled file to be uploaded")
        assert time.monotonic() - last_write >= settle, "taken before settle_seconds had passed"
        assert target.read_bytes() == data
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    text = log.read_text()
    assert "uploaded slow.jpg → archive" in text
    assert text.count("uploaded slow.jpg") == 1


def test_a_temp_file_renamed_into_place_is_taken_under_its_final_name(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    workspace.write_config(platform_table("archive", folder_target, **{"batch.max_wait_seconds": 0}))
    with service(workspace, tmp_path / "service.log"):
        temp = workspace.exports / "x.tmp"
        make_image(temp, width=1200, height=900, title="Renamed", exiftool=exiftool, seed=9)
        time.sleep(0.8)  # longer than settle_seconds: a .tmp name must never be taken however still
        os.rename(temp, workspace.exports / "x.jpg")
        wait_for(lambda: (folder_target.root / "x.jpg").exists(), 20, "x.jpg to be uploaded")
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["x.jpg"]
    names = {Path(entry["path"]).name for entry in workspace.status()["files"]}
    assert names == {"x.jpg"}


def test_files_that_arrived_while_stopped_are_sent_at_start_and_batches_close_on_max_files(
    workspace: Workspace, exiftool, ftps_server, tmp_path
):
    for index in range(5):
        make_image(
            workspace.exports / f"IMG_{index}.jpg",
            width=1000,
            height=750,
            title="x",
            exiftool=exiftool,
            seed=index,
        )
    # max_wait is long: only max_files can close a batch, so exactly 4 go, then 1 waits.
    workspace.write_config(
        platform_table("agency", ftps_server, **{"batch.max_files": 4, "batch.max_wait_seconds": 3600})
    )
    log = tmp_path / "service.log"
    with service(workspace, log):
        wait_for(lambda: len(list(ftps_server.root.iterdir())) >= 4, 30, "the first batch")
        # The fifth is in the ledger, waiting: seen, and held back only by the batch rule.
        wait_for(
            lambda: sorted(workspace.states().values()) == ["pending"] + ["uploaded"] * 4,
            30,
            "four uploaded and one pending",
        )
        assert len(list(ftps_server.root.iterdir())) == 4
    assert ftps_server.commands().count("PASS") == 1, "one connection serves the whole batch"
    states = workspace.states()
    assert sorted(states.values()) == ["pending"] + ["uploaded"] * 4


def test_sigterm_mid_upload_stops_at_once_and_the_next_start_sends_the_file_once(
    workspace: Workspace, exiftool, tmp_path
):
    from stockbridge.demo.localserver import local_ftp_server

    # ~1.5 MB at 100 KB/s: the upload takes ~15 s, so SIGTERM lands in the middle of it.
    source = make_image(
        workspace.exports / "big.jpg",
        width=2400,
        height=1800,
        title="Big",
        exiftool=exiftool,
        seed=11,
        quality=97,
    )
    size = source.stat().st_size
    assert size > 600_000
    root = tmp_path / "slow-ftp"
    with local_ftp_server(
        root, tls=False, username="u", password="slow-link-pw", upload_limit=100_000
    ) as ftpd:
        from tests.servers import pyftpdlib_platform

        server = pyftpdlib_platform(ftpd, root)
        workspace.write_config(platform_table("slow", server, **{"batch.max_wait_seconds": 0}))
        log = tmp_path / "service.log"
        with service(workspace, log) as process:
            partial = root / "big.jpg"
            wait_for(
                lambda: partial.exists() and partial.stat().st_size > 0, 20, "the upload to be under way"
            )
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        assert ("big.jpg", size) not in ftpd.arrived, "shutdown waited for the whole upload"
        assert "abandoned by shutdown" in log.read_text()
        assert list(root.iterdir()) == [], "a half-sent file was left under its final name"
        assert workspace.states() == {("big.jpg", "slow"): "pending"}

        result = workspace.cli("once", timeout=120)
        assert result.returncode == 0, result.stderr
        assert [p.name for p in root.iterdir()] == ["big.jpg"]
        assert (root / "big.jpg").read_bytes() == source.read_bytes()
        assert workspace.states() == {("big.jpg", "slow"): "uploaded"}


def test_a_watch_folder_missing_at_start_is_waited_for_not_fatal(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    # An export drive mounted after the service started: `run` says so once and waits, while
    # `check` and `once` still refuse (exit 2) with the same words.
    workspace.write_config(platform_table("archive", folder_target, **{"batch.max_wait_seconds": 0}))
    workspace.exports.rmdir()
    checked = workspace.cli("check")
    assert checked.returncode == 2 and "does not exist" in checked.stderr
    log = tmp_path / "service.log"
    with service(workspace, log, ready=b"waiting for it") as process:
        workspace.exports.mkdir()
        make_image(
            workspace.exports / "late.jpg", width=800, height=600, title="Late", exiftool=exiftool, seed=8
        )
        wait_for(lambda: (folder_target.root / "late.jpg").exists(), 30, "the file in the late folder")
    assert process.returncode == 0, "a clean stop"
    assert log.read_text().count("does not exist") == 1, "said once, not at every look"
