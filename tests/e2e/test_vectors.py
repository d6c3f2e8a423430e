"""An illustrator's pair reaches two agencies: side by side over FTPS, one zip over SFTP (issue 15).

Real parts: an EPS made by Ghostscript, metadata by ExifTool, the suite's FTPS server (pyftpdlib,
TLS) and OpenSSH's sshd, and ``stockbridge once`` as a user runs it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from stockbridge.demo.samples import make_image
from stockbridge.demo.vectors import make_eps
from tests.e2e.conftest import Workspace, platform_table, service
from tests.servers import LocalServer
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(shutil.which("gs") is None, reason="needs Ghostscript")

KEYWORDS = ["hills", "sun", "sky", "landscape", "vector", "illustration", "green", "summer"]


def test_a_vector_pair_goes_side_by_side_over_ftps_and_zipped_over_sftp(
    workspace: Workspace, exiftool, ftps_server, sshd_server
) -> None:
    make_eps(
        workspace.exports / "Sunny Hills.eps",
        width_pt=2400,
        height_pt=1800,
        title="Sunny hills",
        keywords=KEYWORDS,
    )
    make_image(
        workspace.exports / "Sunny Hills.jpg",
        width=2000,
        height=1500,
        description="Green hills under a summer sun",
        exiftool=exiftool,
        seed=4,
    )
    workspace.write_config(
        platform_table(
            "sidebyside",
            ftps_server,
            **{"rules.vector": {"formats": ["eps"], "travel": "pair", "preview": "required"}},
        ),
        platform_table(
            "zipped",
            sshd_server,
            **{
                "rules.vector": {
                    "formats": ["eps"],
                    "travel": "zip",
                    "preview": "required",
                    "min_megapixels": 4,
                },
                "csv.columns": ["Filename", "Title", "Description", "Keywords"],
                "csv.upload": True,
            },
        ),
    )
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr

    # FTPS: the vector and its preview side by side, one stem, both carrying the same metadata.
    assert sorted(p.name for p in ftps_server.root.iterdir()) == ["Sunny_Hills.eps", "Sunny_Hills.jpg"]
    sent = exiftool.read([ftps_server.root / "Sunny_Hills.eps", ftps_server.root / "Sunny_Hills.jpg"])
    for metadata in sent.values():
        assert (metadata.title, metadata.description, list(metadata.keywords)) == (
            "Sunny hills",
            "Green hills under a summer sun",
            KEYWORDS,
        )

    # SFTP: one zip named after the stem holding both; the CSV names the zip, the file sent.
    on_server = sorted(p.name for p in sshd_server.root.iterdir())
    assert "Sunny_Hills.zip" in on_server and not any(name.endswith((".eps", ".jpg")) for name in on_server)
    with zipfile.ZipFile(sshd_server.root / "Sunny_Hills.zip") as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == ["Sunny_Hills.eps", "Sunny_Hills.jpg"]
        assert archive.read("Sunny_Hills.eps").startswith(b"%!PS-Adobe-3.0 EPSF-3.0")
    [manifest] = [p for p in sshd_server.root.iterdir() if p.suffix == ".csv"]
    rows = list(csv.reader(io.StringIO(manifest.read_text(encoding="utf-8"))))
    assert rows[1][:2] == ["Sunny_Hills.zip", "Sunny hills"]

    # status: the pair is one asset, the preview never a photo of its own.
    files = workspace.status()["files"]
    assert [Path(entry["path"]).name for entry in files] == ["Sunny Hills.eps"]
    jobs = files[0]["platforms"]
    assert (
        jobs["sidebyside"]["state"],
        jobs["sidebyside"]["preview"],
        jobs["sidebyside"]["preview_state"],
    ) == (
        "uploaded",
        "Sunny_Hills.jpg",
        "uploaded",
    )
    assert (jobs["zipped"]["remote_name"], jobs["zipped"]["preview"]) == (
        "Sunny_Hills.zip",
        "Sunny Hills.jpg (in Sunny_Hills.zip)",
    )
    assert files[0]["vector"].startswith("EPS, 2400×1800 pt (4.3 MP), not checkable (made by GPL Ghostscript")
    piped = sorted(line.split("\t") for line in workspace.cli("status").stdout.splitlines())
    assert [row[1:] for row in piped] == [
        ["sidebyside", "uploaded", "Sunny_Hills.eps + Sunny_Hills.jpg", "vector", files[0]["vector"]],
        [
            "zipped",
            "uploaded",
            "Sunny_Hills.zip + Sunny Hills.jpg (in Sunny_Hills.zip)",
            "vector",
            files[0]["vector"],
        ],
    ]
    history = workspace.cli("history", "--json")
    assert history.returncode == 0, history.stderr
    batches = {batch["platform"]: batch for batch in json.loads(history.stdout)["batches"]}
    assert (batches["sidebyside"]["files"], batches["sidebyside"]["previews"]) == (2, 1)
    assert (batches["zipped"]["files"], batches["zipped"]["previews"]) == (1, 0)  # the zip holds both

    # Every platform answered: no private copy of the vector, its preview or the zip is left.
    assert _private_copies(workspace) == []


def test_the_service_holds_a_vector_until_its_preview_lands_then_sends_both(
    workspace: Workspace, exiftool, folder_target, tmp_path: Path
) -> None:
    workspace.write_config(
        platform_table(
            "pairs",
            folder_target,
            **{
                "rules.vector": {"formats": ["eps"], "travel": "pair", "preview": "required"},
                "batch.max_wait_seconds": 0,
            },
        ),
        settle_seconds=0.2,
    )
    log = tmp_path / "service.log"
    with service(workspace, log):
        make_eps(
            workspace.exports / "dunes.eps", width_pt=2000, height_pt=1200, title="Dunes", keywords=KEYWORDS
        )
        held = b"held dunes.eps for pairs: waiting for dunes.jpg: pairs needs a preview"
        wait_for(lambda: held in log.read_bytes(), 30, "the vector to be held for its preview")
        assert not (folder_target.root / "dunes.eps").exists()
        make_image(workspace.exports / "dunes.jpg", width=1000, height=600, exiftool=exiftool, seed=8)
        wait_for(
            lambda: (folder_target.root / "dunes.jpg").exists(), 30, "the preview to go beside the vector"
        )
        wait_for(lambda: (folder_target.root / "dunes.eps").exists(), 30, "the vector to go")
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["dunes.eps", "dunes.jpg"]
    assert b"dunes.jpg: the preview of dunes.eps" in log.read_bytes()  # never queued as a photo


def test_a_photo_of_the_preview_s_bytes_keeps_its_copy_until_its_own_platform_answers(
    workspace: Workspace, exiftool, folder_target, tmp_path: Path
) -> None:
    make_eps(workspace.exports / "dunes.eps", width_pt=2000, height_pt=1200, title="Dunes", keywords=KEYWORDS)
    make_image(workspace.exports / "dunes.jpg", width=1000, height=600, exiftool=exiftool, seed=8)
    shutil.copyfile(workspace.exports / "dunes.jpg", workspace.exports / "sand.jpg")  # a photo, same bytes
    later = LocalServer(name="folder", protocol="folder", root=tmp_path / "later", remote_dir="/")
    later.root.mkdir()
    workspace.write_config(
        platform_table("pairs", folder_target, **{"rules.vector": {"formats": ["eps"], "travel": "pair"}}),
        platform_table("later", later),  # takes photos, no vectors
    )
    assert workspace.cli("pause", "--platform", "later").returncode == 0
    result = workspace.cli("once")
    assert result.returncode == 1 and "later is paused" in result.stderr, result.stderr
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["dunes.eps", "dunes.jpg", "sand.jpg"]
    # The vector is done everywhere and its copies are gone; the photo still waits for "later",
    # so its private copy (the same bytes the preview had) is kept.
    [kept] = _private_copies(workspace)
    assert kept.read_bytes() == (workspace.exports / "sand.jpg").read_bytes()

    assert workspace.cli("resume", "--platform", "later").returncode == 0
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in later.root.iterdir()] == ["sand.jpg"]
    assert _private_copies(workspace) == []


def _private_copies(workspace: Workspace) -> list[Path]:
    """Files left in the state folder's private copies (staged and derived)."""
    return sorted(
        path
        for folder in ("objects", "derived")
        for path in (workspace.state / folder).rglob("*")
        if path.is_file()
    )
