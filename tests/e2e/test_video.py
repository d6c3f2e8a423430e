"""Clips end to end (issue 15, items 2, 6 and 7): `stockbridge once` takes MP4 and MOV made by ffmpeg,
sends them native to real FTPS (pyftpdlib) and SFTP (OpenSSH) servers, at most N clips a batch,
with their XMP metadata in the CSV manifest; `explain`, `status` and `history` show them; hostile
"clips" each get one line and the run goes on."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

from tests.clips import Clips, clips, write_xmp
from tests.e2e.conftest import Workspace, platform_table, service
from tests.waiting import wait_for

__all__ = ["clips"]  # the fixture, imported for pytest

VIDEO = {
    "rules.video.containers": ["mp4", "mov"],
    "rules.video.min_seconds": 1,
    "rules.video.max_seconds": 60,
    "rules.video.min_resolution": "320x180",
    "rules.video.frame_rates": [25, 29.97],
}


def test_clips_go_native_to_ftps_and_sftp_in_capped_batches_with_their_metadata_in_the_csv(
    workspace: Workspace, clips: Clips, ftps_server, sshd_server
) -> None:
    names = ["Harbour_1.mp4", "Harbour_2.mp4", "Harbour 3.mov"]
    for index, name in enumerate(names):
        made = clips.make(
            f"ok{index}.{name.rsplit('.', 1)[1]}", seconds=1.2, rate="25" if index else "30000/1001"
        )
        clips.copy(made, workspace.exports / name)
        write_xmp(workspace.exports / name, f"Harbour at dawn {index}", ["harbour", "dawn", f"boat{index}"])
    clips.copy(clips.make("short.mp4", seconds=0.4), workspace.exports / "Too_short.mp4")
    data = clips.make("fast.mp4", seconds=2.0, faststart=True).read_bytes()
    (workspace.exports / "Cut.mp4").write_bytes(data[: len(data) // 2])
    (workspace.exports / "Notes.mp4").write_text("not a clip\n")
    workspace.write_config(
        platform_table(
            "stock_ftps",
            ftps_server,
            **VIDEO,
            **{
                "rules.video.max_clips_per_batch": 2,
                "rules.video.manual_step": "add categories on the website",
            },
            **{"csv.columns": ["Filename", "Description", "Keywords"]},
        ),
        platform_table("stock_sftp", sshd_server, **VIDEO, **{"rules.video.remote_dir": "footage"}),
    )

    explained = workspace.cli(
        "explain", str(workspace.exports / "Harbour_1.mp4"), str(workspace.exports / "Too_short.mp4")
    )
    assert explained.returncode == 0, explained.stderr
    assert "clip: 320×180 at 29.97 fps, 1.2 s, H264, MP4, no sound" in explained.stdout
    assert "0.4 s; stock_ftps needs 1–60 s" in explained.stdout

    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr

    # Native: every byte as exported (the XMP ExifTool wrote in it included), on both servers.
    remote = {
        "Harbour_1.mp4": "Harbour_1.mp4",
        "Harbour_2.mp4": "Harbour_2.mp4",
        "Harbour 3.mov": "Harbour_3.mov",
    }
    for source, name in remote.items():
        assert (ftps_server.root / name).read_bytes() == (workspace.exports / source).read_bytes()
        assert (sshd_server.root / "footage" / name).read_bytes() == (workspace.exports / source).read_bytes()

    status = workspace.status()
    by_name = {Path(entry["path"]).name: entry for entry in status["files"]}
    assert by_name["Harbour_1.mp4"]["clip"] == "320×180 at 29.97 fps, 1.2 s, H264, MP4, no sound"
    assert by_name["Too_short.mp4"]["clip"] == "320×180 at 25 fps, 0.4 s, H264, MP4, no sound"
    assert by_name["Too_short.mp4"]["platforms"]["stock_ftps"]["state"] == "rejected"
    assert "0.4 s; stock_ftps needs 1–60 s" in by_name["Too_short.mp4"]["platforms"]["stock_ftps"]["reason"]
    assert by_name["Cut.mp4"]["platforms"]["stock_sftp"]["reason"].startswith(
        "cut off: the clip ends inside its 'mdat' box"
    )
    notes = by_name["Notes.mp4"]["platforms"]["stock_sftp"]
    assert notes["state"] == "rejected"
    assert notes["reason"].startswith("not a file stockbridge can take (unknown content; expected JPEG, PNG,")
    assert status["manual_steps"] == {"stock_ftps": {"step": "add categories on the website", "clips": 3}}
    # In a pipe: the clip's facts in the last column, after the four a script already reads.
    piped = [line.split("\t") for line in workspace.cli("status").stdout.splitlines()]
    [harbour] = [row for row in piped if row[0].endswith("Harbour_1.mp4") and row[1] == "stock_ftps"]
    assert harbour[2:] == [
        "uploaded",
        "Harbour_1.mp4",
        "clip",
        "320×180 at 29.97 fps, 1.2 s, H264, MP4, no sound",
    ]

    # At most two clips a batch on stock_ftps: three clips make two batches there.
    history = json.loads(workspace.cli("history", "--json").stdout)["batches"]
    ftps_batches = [batch for batch in history if batch["platform"] == "stock_ftps"]
    assert sorted(batch["clips"] for batch in ftps_batches) == [1, 2]
    assert sum(batch["uploaded"] for batch in ftps_batches) == 3

    rows = []
    for manifest in sorted((workspace.state / "csv").glob("stock_ftps-*.csv")):
        with manifest.open(encoding="utf-8", newline="") as handle:
            rows += list(csv.DictReader(handle))
    assert sorted(row["Filename"] for row in rows) == sorted(remote.values())
    harbour = next(row for row in rows if row["Filename"] == "Harbour_2.mp4")
    assert harbour == {
        "Filename": "Harbour_2.mp4",
        "Description": "Harbour at dawn 1",
        "Keywords": "harbour, dawn, boat1",
    }

    table = workspace.cli("status", "--format", "table")
    assert "stock_ftps, 3 clip(s) uploaded, to do on its website:" in table.stdout


def test_the_service_takes_clips_as_they_arrive_one_clip_a_batch(
    workspace: Workspace, clips: Clips, folder_target, tmp_path
) -> None:
    workspace.write_config(
        platform_table(
            "archive",
            folder_target,
            **{
                "batch.max_wait_seconds": 0,
                "rules.video.containers": ["mp4"],
                "rules.video.max_clips_per_batch": 1,
            },
        )
    )
    with service(workspace, tmp_path / "service.log") as process:
        for index in range(3):
            staged = clips.copy(
                clips.make(f"svc{index}.mp4", seconds=1.0 + index / 10), tmp_path / "staged.mp4"
            )
            os.rename(staged, workspace.exports / f"Clip_{index}.mp4")  # arrives whole, as an export
        for index in range(3):
            target = folder_target.root / f"Clip_{index}.mp4"
            wait_for(target.exists, 30, f"Clip_{index}.mp4 to be uploaded by the service")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    history = json.loads(workspace.cli("history", "--json").stdout)["batches"]
    assert sorted((batch["files"], batch["clips"]) for batch in history) == [(1, 1)] * 3
