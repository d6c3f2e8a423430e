"""An export cut off mid-write never goes out (issue 14, decisions.md W-3): through `stockbridge once`
and `explain`, as a user runs them, it is refused on every platform with a reason to act on, found by
its structure alone, while a whole file next to it goes to each platform."""

from __future__ import annotations

import json

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table

REASON = "cut off: the file ends inside its image data (no end-of-image marker); export it again"


def test_a_cut_off_jpeg_is_rejected_everywhere_with_its_reason_and_a_whole_one_goes(
    workspace: Workspace, exiftool, ftps_server, folder_target, tmp_path
):
    whole = make_image(
        workspace.exports / "whole.jpg", width=1600, height=1200, title="Whole", exiftool=exiftool, seed=31
    )
    source = make_image(
        tmp_path / "cut.jpg", width=1600, height=1200, title="Cut", exiftool=exiftool, seed=32
    )
    (workspace.exports / "cut.jpg").write_bytes(source.read_bytes()[: source.stat().st_size * 3 // 5])
    workspace.write_config(
        platform_table("agency", ftps_server),  # takes the file as it is: no render, no decode
        platform_table("archive", folder_target, **{"rules.max_long_edge": 800}),  # gets a resized copy
    )

    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    files = {entry["path"].rsplit("/", 1)[-1]: entry["platforms"] for entry in workspace.status()["files"]}
    for platform in ("agency", "archive"):
        assert files["cut.jpg"][platform]["state"] == "rejected"
        assert files["cut.jpg"][platform]["reason"] == REASON
        assert files["whole.jpg"][platform]["state"] == "uploaded"
    assert [p.name for p in ftps_server.root.iterdir()] == ["whole.jpg"]
    assert (ftps_server.root / "whole.jpg").read_bytes() == whole.read_bytes()
    assert [p.name for p in folder_target.root.iterdir()] == ["whole.jpg"]
    assert REASON in result.stderr  # the log line says it too

    explained = workspace.cli("explain", "--json", str(workspace.exports / "cut.jpg"))
    assert explained.returncode == 0, explained.stderr
    verdicts = json.loads(explained.stdout)["files"][0]["platforms"]
    assert {name: (v["verdict"], v["reasons"]) for name, v in verdicts.items()} == {
        "agency": ("reject", [REASON]),
        "archive": ("reject", [REASON]),
    }
