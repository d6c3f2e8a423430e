"""Every agency gets a copy that fits: one master, three platforms, three different copies."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from PIL import Image

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table, service
from tests.waiting import wait_for

KEYWORDS = [f"keyword{index}" for index in range(30)]
LONG_TITLE = "Fishing boats resting in a calm harbour at dawn with mist over the water"


def master(exiftool, path: Path, **overrides) -> Path:
    values = dict(width=3000, height=2000, title=LONG_TITLE, keywords=KEYWORDS, exiftool=exiftool, seed=3)
    values.update(overrides)
    made = make_image(path, **values)
    exiftool.write(made, {"XMP-iptcExt:PersonInImage": ["Ana"], "EXIF:Artist": "Jo Photographer"})
    return made


def test_one_master_reaches_three_platforms_each_as_its_rules_say(
    workspace: Workspace, exiftool, ftps_server, sshd_server, folder_target
):
    source = master(exiftool, workspace.exports / "Harbour Dawn.jpg")
    release = workspace.exports / "Harbour Dawn.release.pdf"
    release.write_bytes(b"%PDF-1.4 signed model release\n")
    source_bytes = source.read_bytes()
    workspace.write_config(
        platform_table(
            "small_agency",
            ftps_server,
            **{
                "rules.max_megapixels": 1.5,
                "rules.keywords": {"max": 10},
                "rules.title": {"max_chars": 30, "over_max": "shorten"},
                "rules.releases": {
                    "required_for": ["people"],
                    "delivery": "folder",
                    "remote_dir": "modelrelease",
                },
            },
        ),
        platform_table(
            "sftp_agency",
            sshd_server,
            **{
                "rules.keywords": {"max": 25},
                "rules.filename": {"allowed": "A-Za-z0-9_", "max_chars": 20},
                "rules.releases": {"required_for": ["people"], "delivery": "suffix", "suffix": "_MR"},
            },
        ),
        platform_table("archive", folder_target),
    )
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr

    # small_agency: downscaled under 1.5 MP, 10 keywords, title cut at a word, release in modelrelease/.
    sent = ftps_server.root / "Harbour_Dawn.jpg"
    with Image.open(sent) as image:
        assert image.width * image.height <= 1_500_000
        assert abs(image.width / image.height - 1.5) < 0.01
    meta = exiftool.read([sent])[sent]
    assert list(meta.keywords) == KEYWORDS[:10]
    assert meta.title == "Fishing boats resting in a"
    releases = list((ftps_server.root / "modelrelease").iterdir())
    assert [p.read_bytes() for p in releases] == [release.read_bytes()]

    # sftp_agency: full size, 25 keywords, a 20-character name, release named after the image.
    names = sorted(p.name for p in sshd_server.root.iterdir())
    image_name = next(name for name in names if name.endswith(".jpg") and "_MR" not in name)
    assert len(image_name) <= 20 and set(image_name) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_."
    )
    assert f"{Path(image_name).stem}_MR.pdf" in names
    meta = exiftool.read([sshd_server.root / image_name])[sshd_server.root / image_name]
    assert len(meta.keywords) == 25 and meta.title == LONG_TITLE
    with Image.open(sshd_server.root / image_name) as image:
        assert image.size == (3000, 2000)

    # archive: the master, byte for byte; the export folder untouched.
    assert (folder_target.root / "Harbour_Dawn.jpg").read_bytes() == source_bytes
    assert source.read_bytes() == source_bytes
    assert sorted(p.name for p in workspace.exports.iterdir()) == [
        "Harbour Dawn.jpg",
        "Harbour Dawn.release.pdf",
    ]
    # The release is not a photo: it has no row of its own among the files.
    files = {
        Path(e["path"]).name: e for e in workspace.status()["files"] if e.get("kind", "image") == "image"
    }
    assert set(files) == {"Harbour Dawn.jpg"}
    changes = files["Harbour Dawn.jpg"]["platforms"]["small_agency"]["changes"]
    assert any(change.startswith("downscale 3000×2000 → ") for change in changes)
    assert "keywords 30 → 10 (first 10 kept)" in changes


def test_a_held_file_moves_on_by_itself_when_its_release_arrives(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    master(exiftool, workspace.exports / "portrait.jpg", width=1200, height=800)
    workspace.write_config(
        platform_table(
            "agency",
            folder_target,
            **{
                "rules.releases": {
                    "required_for": ["people"],
                    "delivery": "folder",
                    "remote_dir": "releases",
                },
                "batch.max_wait_seconds": 0,
            },
        )
    )
    with service(workspace, tmp_path / "service.log"):
        wait_for(
            lambda: workspace.states().get(("portrait.jpg", "agency")) == "held", 20, "the file to be held"
        )
        reason = workspace.status()["files"][0]["platforms"]["agency"]["reason"]
        assert "no model release found" in reason and "portrait.release" in reason
        (workspace.exports / "portrait_MR1.pdf").write_bytes(b"%PDF-1.4 release\n")
        wait_for(lambda: (folder_target.root / "portrait.jpg").exists(), 30, "the held file to be uploaded")
        wait_for(
            lambda: (
                (folder_target.root / "releases").is_dir()
                and any((folder_target.root / "releases").iterdir())
            ),
            10,
            "the release",
        )
    assert workspace.states()[("portrait.jpg", "agency")] == "uploaded"


def test_converted_copies_are_jpeg_srgb_and_files_that_fit_are_sent_as_they_are(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    png = workspace.exports / "graphic.png"
    make_image(
        png,
        width=1600,
        height=1000,
        fmt="png",
        title="Graphic",
        keywords=KEYWORDS[:12],
        exiftool=exiftool,
        seed=4,
    )
    jpeg = make_image(
        workspace.exports / "photo.jpg", width=1600, height=1000, title="Photo", exiftool=exiftool, seed=5
    )
    jpeg_bytes = jpeg.read_bytes()
    workspace.write_config(
        platform_table(
            "agency",
            folder_target,
            **{"rules.formats": ["jpeg"], "rules.convert_to": "jpeg", "rules.color_space": "sRGB"},
        )
    )
    assert workspace.cli("once").returncode == 0
    converted = folder_target.root / "graphic.jpg"
    with Image.open(converted) as image:
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (1600, 1000)
        assert image.info.get("icc_profile"), "the converted copy must be tagged sRGB"
    assert exiftool.read([converted])[converted].title == "Graphic"
    assert (folder_target.root / "photo.jpg").read_bytes() == jpeg_bytes


def test_explain_lists_every_change_each_platform_would_get(workspace: Workspace, exiftool, folder_target):
    source = master(exiftool, workspace.exports / "big.jpg")
    png = make_image(
        workspace.exports / "art.png",
        width=800,
        height=600,
        fmt="png",
        title="Art",
        exiftool=exiftool,
        seed=8,
    )
    workspace.write_config(
        platform_table(
            "agency",
            folder_target,
            **{
                "rules.formats": ["jpeg"],
                "rules.convert_to": "jpeg",
                "rules.max_megapixels": 1.5,
                "rules.keywords": {"max": 10},
                "rules.releases": {"required_for": ["people"], "delivery": "manual"},
            },
        )
    )
    result = workspace.cli("explain", str(source), str(png), "--json")
    assert result.returncode == 0, result.stderr
    big, art = (entry["platforms"]["agency"] for entry in json.loads(result.stdout)["files"])
    assert big["verdict"] == "hold"  # people in frame, and no release next to it
    assert "no model release found" in big["reasons"][0] and "big.release" in big["reasons"][0]
    assert any(change.startswith("downscale 3000×2000 → ") for change in big["changes"])
    assert art["verdict"] == "accept"
    assert any(change.startswith("convert PNG") and "JPEG" in change for change in art["changes"])


CSV_HEADER = ["Filename", "Title", "Keywords", "Editorial", "Category"]


def manifest_rows(root: Path) -> list[list[str]]:
    """The rows of every CSV manifest in ``root`` (each must start with CSV_HEADER)."""
    rows = []
    for manifest in sorted(p for p in root.iterdir() if p.suffix == ".csv"):
        lines = list(csv.reader(io.StringIO(manifest.read_text(encoding="utf-8"))))
        assert lines[0] == CSV_HEADER, manifest.name
        rows += lines[1:]
    return rows


def test_a_batch_of_editorial_files_only_still_gets_its_manifest_in_the_platform_folder(
    workspace: Workspace, exiftool, ftps_server
):
    # Editorial files go to their own remote folder; the CSV belongs in the platform's folder even
    # when no file of the batch went there.
    (workspace.exports / "editorial").mkdir()
    make_image(
        workspace.exports / "editorial" / "protest.jpg",
        width=1200,
        height=800,
        title="Protest",
        keywords=KEYWORDS[:8],
        exiftool=exiftool,
        seed=31,
    )
    workspace.write_config(
        platform_table(
            "news",
            ftps_server,
            **{
                "rules.editorial": {"remote_dir": "Editorial"},
                "csv.columns": CSV_HEADER,
                "csv.values": {"Category": "Travel"},
                "csv.upload": True,
            },
        )
    )
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (ftps_server.root / "Editorial").iterdir()) == ["protest.jpg"]
    rows = manifest_rows(ftps_server.root)
    assert [(row[0], row[3]) for row in rows] == [("protest.jpg", "Yes")], rows


def test_editorial_files_go_where_each_platform_says_and_routes_pick_platforms(
    workspace: Workspace, exiftool, ftps_server, folder_target
):
    (workspace.exports / "editorial").mkdir()
    (workspace.exports / "vectors").mkdir()
    make_image(
        workspace.exports / "editorial" / "protest.jpg",
        width=1200,
        height=800,
        title="Protest",
        keywords=KEYWORDS[:8],
        exiftool=exiftool,
        seed=31,
    )
    make_image(
        workspace.exports / "vectors" / "icon.jpg",
        width=1200,
        height=800,
        title="Icon",
        keywords=KEYWORDS[:8],
        exiftool=exiftool,
        seed=32,
    )
    make_image(
        workspace.exports / "plain.jpg",
        width=1200,
        height=800,
        title="Plain",
        keywords=KEYWORDS[:8],
        exiftool=exiftool,
        seed=33,
    )
    workspace.write_config(
        platform_table(
            "news",
            ftps_server,
            **{
                "rules.editorial": {"remote_dir": "Editorial"},
                "csv.columns": CSV_HEADER,
                "csv.values": {"Category": "Travel"},
                "csv.upload": True,
            },
        ),
        platform_table("archive", folder_target, **{"rules.editorial": "reject"}),
        '[[routes]]\nfolder = "vectors"\nplatforms = ["archive"]\n',
    )
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (ftps_server.root / "Editorial").iterdir()) == ["protest.jpg"]
    on_news = sorted(p.name for p in ftps_server.root.iterdir() if p.is_file())
    assert "plain.jpg" in on_news and "icon.jpg" not in on_news
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["icon.jpg", "plain.jpg"]
    files = {Path(e["path"]).name: e["platforms"] for e in workspace.status()["files"]}
    assert files["protest.jpg"]["archive"]["state"] == "rejected"
    assert "editorial" in files["protest.jpg"]["archive"]["reason"]
    assert files["icon.jpg"]["news"]["state"] == "rejected"
    assert "a route sends this file only to archive" in files["icon.jpg"]["news"]["reason"]

    # One manifest per batch: the two files may go in one batch or, prepared at different
    # moments, in two. Either way each uploaded file has exactly one row.
    rows = manifest_rows(ftps_server.root)
    assert sorted(row[0] for row in rows) == ["plain.jpg", "protest.jpg"]
    by_name = {row[0]: row for row in rows}
    assert by_name["protest.jpg"][3] == "Yes" and by_name["plain.jpg"][3] == "No"
    assert by_name["plain.jpg"][2] == ", ".join(KEYWORDS[:8]) and by_name["plain.jpg"][4] == "Travel"


def test_manual_releases_are_listed_in_a_batch_report_and_shared_copies_are_made_once(
    workspace: Workspace, exiftool, folder_target, tmp_path
):
    master(exiftool, workspace.exports / "model.jpg", width=2000, height=1500)
    (workspace.exports / "model.release.pdf").write_bytes(b"%PDF-1.4 release\n")
    second = tmp_path / "second-target"
    second.mkdir()
    rules = {
        "rules.max_megapixels": 1.0,
        "rules.releases": {"required_for": ["people"], "delivery": "manual"},
    }
    from tests.servers import LocalServer

    twin = LocalServer(name="folder", protocol="folder", root=second, remote_dir="/")
    workspace.write_config(
        platform_table("web_a", folder_target, **rules), platform_table("web_b", twin, **rules)
    )
    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    reports = sorted((workspace.state / "reports").iterdir())
    assert [p.name for p in reports] == ["web_a-batch1-releases.txt", "web_b-batch2-releases.txt"] or len(
        reports
    ) == 2
    text = reports[0].read_text()
    assert "model.jpg: " in text and "model.release.pdf" in text
    assert not (folder_target.root / "model.release.pdf").exists(), "a manual release is never uploaded"
    # Same rules, same copy: both platforms got the same derived bytes, rendered once.
    assert (folder_target.root / "model.jpg").read_bytes() == (second / "model.jpg").read_bytes()
    from stockbridge.ledger.store import Ledger

    ledger = Ledger(workspace.state / "ledger.sqlite3")
    paths = {job.upload_path for job in ledger.jobs() if job.kind == "image"}
    ledger.close()
    assert len(paths) == 1
