"""Issue 13, item 4: a photo exported again with new keywords is not submitted twice.

Real files, their XMP document IDs written by the exiftool program as Lightroom writes them, through
`stockbridge once` against a local FTPS server and a folder."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table
from tests.images import require_exiftool

KEYWORDS = [f"keyword{index}" for index in range(12)]


def export(exiftool, path: Path, *, seed: int, document_id: str | None = None, **metadata) -> Path:
    """What an editor's export leaves in the folder: a finished file, with Lightroom's xmpMM IDs."""
    metadata.setdefault("title", f"Sample {path.stem}")
    metadata.setdefault("keywords", KEYWORDS)
    staged = path.parent.parent / f"export-{path.name}"
    make_image(staged, width=1600, height=1200, exiftool=exiftool, seed=seed, **metadata)
    if document_id is not None:
        subprocess.run(
            [require_exiftool(), "-q", "-overwrite_original", f"-XMP-xmpMM:DocumentID=xmp.did:{document_id}",
             f"-XMP-xmpMM:OriginalDocumentID=xmp.did:{document_id}-raw", str(staged)],
            check=True,
        )  # fmt: skip
    os.replace(staged, path)  # one finished file appears, as an export does
    return path


def jobs(workspace: Workspace) -> dict[tuple[str, str], dict]:
    """(file name, platform) → the job as `status --json` shows it."""
    return {
        (Path(entry["path"]).name, platform): job
        for entry in workspace.status()["files"]
        for platform, job in entry["platforms"].items()
    }


def stored(server) -> tuple[int, list[str]]:
    """(STOR commands the server got, the files on it)."""
    return server.commands().count("STOR"), sorted(path.name for path in server.root.iterdir())


def test_a_re_export_of_an_uploaded_photo_is_held_with_the_upload_named_and_resend_sends_it_once(
    workspace: Workspace, exiftool, ftps_server, folder_target
):
    first = export(exiftool, workspace.exports / "IMG_0001.jpg", seed=1, document_id="photo-1")
    workspace.write_config(
        platform_table("agency", ftps_server),  # on_reexport = "hold", the default
        platform_table("archive", folder_target, on_reexport="send"),
    )
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert stored(ftps_server) == (1, ["IMG_0001.jpg"])

    # Keywords fixed in Lightroom, exported again (Lightroom names the new file IMG_0001-2.jpg).
    second = export(exiftool, workspace.exports / "IMG_0001-2.jpg", seed=1, document_id="photo-1",
                    keywords=["fixed", *KEYWORDS])  # fmt: skip
    assert first.read_bytes() != second.read_bytes()
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr  # held is an answer, not a failure
    assert stored(ftps_server) == (1, ["IMG_0001.jpg"]), "the re-export was sent again"
    held = jobs(workspace)[("IMG_0001-2.jpg", "agency")]
    assert held["state"] == "held"
    today = time.strftime("%Y-%m-%d")
    assert re.fullmatch(
        rf"a re-export of a photo already uploaded to agency: the earlier version IMG_0001\.jpg went as"
        rf" IMG_0001\.jpg on {today} \d\d:\d\d; not sent again, agencies penalise duplicate submissions\."
        rf" To send it anyway: stockbridge resend {re.escape(str(second))} --platform agency",
        held["reason"],
    ), held["reason"]
    assert "held IMG_0001-2.jpg for agency: a re-export" in result.stderr
    # on_reexport = "send": the archive takes the new version as a file of its own.
    assert jobs(workspace)[("IMG_0001-2.jpg", "archive")]["state"] == "uploaded"
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["IMG_0001-2.jpg", "IMG_0001.jpg"]

    # Sent on purpose: queued by `resend`, sent by the next `once`, once, under a name of its own.
    result = workspace.cli("resend", str(second), "--platform", "agency")
    assert result.returncode == 0, result.stderr
    assert "IMG_0001-2.jpg → agency: queued as IMG_0001-2.jpg" in result.stdout
    assert stored(ftps_server) == (1, ["IMG_0001.jpg"]), "resend only queues it"
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert stored(ftps_server) == (2, ["IMG_0001-2.jpg", "IMG_0001.jpg"])
    sent = exiftool.read([ftps_server.root / "IMG_0001-2.jpg"])[ftps_server.root / "IMG_0001-2.jpg"]
    assert sent.keywords[0] == "fixed"
    assert jobs(workspace)[("IMG_0001-2.jpg", "agency")]["state"] == "uploaded"
    assert workspace.cli("once").returncode == 0
    assert stored(ftps_server)[0] == 2, "sent once, not at every run"

    again = workspace.cli("resend", str(second), "--platform", "agency")
    assert again.returncode == 1
    assert "IMG_0001-2.jpg: uploaded for agency; nothing to resend" in again.stderr
    unknown = workspace.cli("resend", str(second), "--platform", "nowhere")
    assert unknown.returncode == 2 and "--platform nowhere: no such enabled platform" in unknown.stderr


def test_without_document_ids_the_same_path_is_the_same_photo_and_a_version_never_uploaded_goes(
    workspace: Workspace, exiftool, folder_target
):
    workspace.write_config(platform_table("archive", folder_target, **{"rules.title": {"required": True}}))
    export(exiftool, workspace.exports / "beach.jpg", seed=1, title=None)  # held: no title
    export(exiftool, workspace.exports / "dunes.jpg", seed=2)
    assert workspace.cli("once").returncode == 0
    assert workspace.states() == {("beach.jpg", "archive"): "held", ("dunes.jpg", "archive"): "uploaded"}
    # Status lists files in the order they were taken, which the prepare workers decide.
    [beach_v1] = [e["sha256"] for e in workspace.status()["files"] if e["path"].endswith("beach.jpg")]

    # Both exported again over the same names: the title added, the keywords changed.
    export(exiftool, workspace.exports / "beach.jpg", seed=1, title="Beach at dawn")
    export(exiftool, workspace.exports / "dunes.jpg", seed=2, keywords=["dunes", *KEYWORDS])
    assert workspace.cli("once").returncode == 0
    files = workspace.status()["files"]
    beach = {
        entry["sha256"]: entry["platforms"]["archive"]
        for entry in files
        if entry["path"].endswith("beach.jpg")
    }
    dunes = [entry["platforms"]["archive"] for entry in files if entry["path"].endswith("dunes.jpg")]
    # The beach was never uploaded: its new version simply goes; the held one is superseded.
    (beach_v2,) = set(beach) - {beach_v1}
    assert beach[beach_v2]["state"] == "uploaded"
    assert beach[beach_v1]["state"] == "rejected"
    assert beach[beach_v1]["reason"].startswith("superseded by a newer export of the same photo (beach.jpg)")
    # The dunes were uploaded: recognised by their path, the new version is held.
    assert [job["state"] for job in dunes] == ["uploaded", "held"]
    assert "the earlier version went as dunes.jpg on" in dunes[1]["reason"]
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["beach.jpg", "dunes.jpg"]


def test_a_newer_export_supersedes_one_still_waiting_so_only_the_newest_is_sent(
    workspace: Workspace, exiftool, ftps_server
):
    hour = time.localtime().tm_hour
    closed = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"  # a window that is not now
    workspace.write_config(platform_table("agency", ftps_server, **{"schedule.windows": [closed]}))
    export(exiftool, workspace.exports / "IMG_0002.jpg", seed=3, document_id="photo-2")
    assert workspace.cli("once").returncode == 0
    assert workspace.states() == {("IMG_0002.jpg", "agency"): "scheduled"}  # pending till the window

    export(
        exiftool,
        workspace.exports / "IMG_0002.jpg",
        seed=3,
        document_id="photo-2",
        keywords=["fixed", *KEYWORDS],
    )
    assert workspace.cli("once").returncode == 0
    workspace.write_config(platform_table("agency", ftps_server))  # the window opens
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    count, (name,) = stored(ftps_server)
    # The waiting version still held the name IMG_0002.jpg when the new one was queued: it got its own.
    assert count == 1 and re.fullmatch(r"IMG_0002_[0-9a-f]+\.jpg", name), name
    landed = ftps_server.root / name
    assert exiftool.read([landed])[landed].keywords[0] == "fixed", "the newest export is the one sent"
    answers = sorted((job["state"], job["reason"] or "") for job in jobs_by_sha(workspace))
    assert [state for state, _ in answers] == ["rejected", "uploaded"]
    assert answers[0][1].startswith("superseded by a newer export of the same photo (IMG_0002.jpg)")
    assert "IMG_0002.jpg for agency: superseded by a newer export" in result.stderr


def jobs_by_sha(workspace: Workspace) -> list[dict]:
    return [entry["platforms"]["agency"] for entry in workspace.status()["files"]]
