"""`once` tells a webhook what happened, through Apprise: a batch's counts, a pause once; a hanging
receiver holds nothing up; the [notify] tables of 0.1.0 still work."""

from __future__ import annotations

import json
import time

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table
from tests.receivers import closed_port, hanging_receiver, http_receiver


def test_once_reports_a_finished_batch_through_the_0_1_0_tables_even_when_another_receiver_hangs(
    workspace: Workspace, exiftool, folder_target
):
    for seed in (1, 2):
        make_image(workspace.exports / f"IMG_{seed}.jpg", width=800, height=600, exiftool=exiftool, seed=seed)
    with http_receiver() as receiver, hanging_receiver() as hanging:
        workspace.write_config(
            platform_table("archive", folder_target),
            f'[notify]\ntimeout_seconds = 1\nwebhook = {{ url = "{receiver.url}" }}\n'
            f'ntfy = {{ url = "{hanging}" }}\n',
        )
        started = time.monotonic()
        result = workspace.cli("once")
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["IMG_1.jpg", "IMG_2.jpg"]
    assert [json.loads(request.body) for request in receiver.requests] == [
        {"event": "batch", "title": "stockbridge: archive batch done", "text": "archive: 2 uploaded."}
    ]
    assert "notify: ntfy failed" in result.stderr
    assert "notify.webhook: still works, but [notify] now sends through Apprise" in result.stderr
    assert elapsed < 30, f"once took {elapsed:.0f} s"


def test_an_unreachable_platform_is_reported_once_per_pause_without_host_or_password(
    workspace: Workspace, exiftool
):
    make_image(workspace.exports / "IMG_1.jpg", width=800, height=600, exiftool=exiftool, seed=1)
    port = closed_port()
    with http_receiver() as receiver:
        workspace.write_config(
            "[platforms.agency]\n"
            f'protocol = "ftp"\nhost = "127.0.0.1"\nport = {port}\nusername = "robot"\n'
            'password = "pw-Secret-4711"\ntimeout_seconds = 2\n',
            f'[notify]\ntimeout_seconds = 2\nurls = ["{receiver.url.replace("http://", "json://")}"]\n',
        )
        result = workspace.cli("once", timeout=180)
    assert result.returncode == 1, result.stderr  # the file is still pending: not done
    assert result.stderr.count("cannot reach the server") >= 2, "expected several tries"
    (paused,) = [json.loads(request.body) for request in receiver.requests]
    assert paused["type"] == "warning"
    assert paused["title"] == "stockbridge: agency paused"
    assert paused["message"].startswith("agency paused: the server cannot be reached.")
    body = json.dumps(paused)
    assert "127.0.0.1" not in body and str(port) not in body and "robot" not in body
    assert "pw-Secret-4711" not in body
