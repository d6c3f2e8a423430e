"""Preparing and sending overlap (issue 6): uploads start with the first prepared file, an open
batch takes the files prepared while it goes, prepare workers run side by side, and a platform
with ``connections = N`` sends over N connections, each file once."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from stockbridge.demo.localserver import local_ftp_server
from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table, service
from tests.servers import LocalServer, pyftpdlib_platform
from tests.waiting import wait_for


def photos(
    workspace: Workspace, exiftool: Any, count: int, folder: str = "", width: int = 1800
) -> list[Path]:
    (workspace.exports / folder).mkdir(parents=True, exist_ok=True)
    return [
        make_image(
            workspace.exports / folder / f"IMG_{index}.jpg",
            width=width,
            height=width * 2 // 3,
            title=f"Photo {index}",
            exiftool=exiftool,
            seed=900 + index + 100 * sum(map(ord, folder)),
        )
        for index in range(count)
    ]


def log_lines(stderr: str, pattern: str) -> list[int]:
    return [index for index, line in enumerate(stderr.splitlines()) if re.search(pattern, line)]


def test_uploads_start_before_the_last_file_is_prepared_over_one_login(
    workspace: Workspace, exiftool: Any, ftp_server: LocalServer, folder_target: LocalServer
) -> None:
    sources = photos(workspace, exiftool, 8)
    workspace.write_config(
        "[prepare]\nworkers = 1\n",
        platform_table("agency", ftp_server),
        # A downscale for the archive makes preparing each file take a while.
        platform_table("archive", folder_target, **{"rules.max_long_edge": 600}),
    )
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    queued = log_lines(result.stderr, r"queued IMG_\d+\.jpg for agency")
    uploaded = log_lines(result.stderr, r"uploaded IMG_\d+\.jpg → agency")
    assert len(queued) == len(uploaded) == 8, result.stderr
    # A file is "sent" when the server confirmed it, "uploaded" once checked with its batch.
    sent = log_lines(result.stderr, r"(sent|uploaded) IMG_\d+\.jpg → agency")
    assert sent[0] < queued[-1], "the first upload went before the last file was prepared"
    # The batch stayed open for the files prepared while it was going: one login for all eight.
    assert ftp_server.commands().count("PASS") == 1
    assert sorted(Counter(ftp_server.extra["ftpd"].stored).values()) == [1] * 8
    assert {path.name: path.read_bytes() for path in sources} == {
        path.name: path.read_bytes() for path in ftp_server.root.iterdir()
    }


def test_same_named_files_prepared_side_by_side_get_their_own_names_and_equal_content_goes_once(
    workspace: Workspace, exiftool: Any, folder_target: LocalServer
) -> None:
    # Four workers prepare a/IMG_n.jpg and b/IMG_n.jpg at the same time: choosing a free remote
    # name must not let two of them take the same one.
    first = photos(workspace, exiftool, 6, folder="a", width=900)
    second = photos(workspace, exiftool, 6, folder="b", width=900)
    (workspace.exports / "c").mkdir()
    copy = workspace.exports / "c" / "IMG_0.jpg"
    copy.write_bytes(first[0].read_bytes())  # the same photo exported twice
    workspace.write_config("[prepare]\nworkers = 4\n", platform_table("archive", folder_target))
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    arrived = sorted(path.read_bytes() for path in folder_target.root.iterdir())
    assert len(arrived) == 12, sorted(path.name for path in folder_target.root.iterdir())
    assert arrived == sorted(path.read_bytes() for path in first + second), "each photo once, none lost"
    assert "same content as an earlier file" in result.stderr


def test_connections_send_one_platforms_files_side_by_side_each_once(
    workspace: Workspace, exiftool: Any, tmp_path: Path
) -> None:
    sources = photos(workspace, exiftool, 9, width=900)
    # A slow line (about 0.5 s a file): one connection cannot keep up with the prepared files, so
    # the others take some, however fast or slow this machine prepares them.
    per_second = max(path.stat().st_size for path in sources) * 2
    root = tmp_path / "slow-root"
    with local_ftp_server(
        root, tls=False, username="photographer", password="s3cret-pass", upload_limit=per_second
    ) as ftpd:
        server = pyftpdlib_platform(ftpd, root)
        workspace.write_config(platform_table("agency", server, connections=3))
        result = workspace.cli("once")
        assert result.returncode == 0, result.stderr
        stored = Counter(ftpd.stored)
        logins = server.commands().count("PASS")
    assert sorted(stored) == sorted(path.name for path in sources)
    assert set(stored.values()) == {1}, f"a file went twice: {stored}"
    assert 2 <= logins <= 9, f"{logins} logins for 3 connections"
    batches = log_lines(result.stderr, r"agency: batch of \d+ file")
    assert len(batches) >= 2, "more than one connection took files"


def test_the_service_sends_over_two_connections_and_takes_files_dropped_while_a_batch_goes(
    workspace: Workspace, exiftool: Any, ftp_server: LocalServer, tmp_path: Path
) -> None:

    first = photos(workspace, exiftool, 6, width=900)
    workspace.write_config(
        platform_table("agency", ftp_server, connections=2, **{"batch.max_wait_seconds": 0}),
        settle_seconds=0.2,
    )
    log = tmp_path / "service.log"
    ftpd = ftp_server.extra["ftpd"]
    with service(workspace, log):
        wait_for(lambda: len(set(ftpd.stored)) >= 6, 30, "the first six files")
        # Made beside the folder, then moved in whole, as an export's last step: written in place,
        # the service (settle 0.2 s) may take a file before ExifTool has tagged it.
        staged = photos(workspace, exiftool, 4, folder="../staging", width=900)
        (workspace.exports / "later").mkdir()
        later = [path.replace(workspace.exports / "later" / path.name) for path in staged]
        wait_for(lambda: len(set(ftpd.stored)) >= 10, 30, "the four files dropped later")
    stored = Counter(ftpd.stored)
    assert len(stored) == 10 and set(stored.values()) == {1}, f"each file once: {stored}"
    arrived = sorted(path.read_bytes() for path in ftp_server.root.iterdir())
    assert arrived == sorted(path.read_bytes() for path in first + later)
    assert ftp_server.commands().count("PASS") >= 2, "both connections were used"
