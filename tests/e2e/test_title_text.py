"""What a title is made of, on real files written by ExifTool (issue 13).

- Camera and software boilerplate ("OLYMPUS DIGITAL CAMERA", "File written by Adobe Photoshop 4.0")
  is no title and no description: the file is held with "no title", never titled with it (item 2).
- A title with characters the platform forbids (Adobe's CSV: commas) is changed or held, and the
  copy, the job's changes and the CSV manifest all say the same (item 16).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from stockbridge.demo.samples import make_image
from tests.e2e.conftest import Workspace, platform_table

KEYWORDS = [f"keyword{index}" for index in range(12)]
#: Adobe Stock's title rule, as its preset has it (without the forbidden characters).
ADOBE_TITLE = {"required": True, "max_chars": 70, "over_max": "shorten", "from_description": True}


def photo(exiftool, path: Path, *, seed: int, fmt: str = "jpeg", **text) -> Path:
    """A 1200×900 photo with keywords and only the text given: title/description (XMP and IPTC) and
    ``image_description`` (EXIF ImageDescription, where cameras put their boilerplate)."""
    camera_text = text.pop("image_description", None)
    made = make_image(
        path, width=1200, height=900, keywords=KEYWORDS, exiftool=exiftool, seed=seed, fmt=fmt, **text
    )
    if camera_text is not None:
        exiftool.write(made, {"EXIF:ImageDescription": camera_text})
    return made


def explained(workspace: Workspace, *paths: Path) -> dict[str, dict]:
    """``explain --json``: file name → the agency's verdict."""
    result = workspace.cli("explain", *map(str, paths), "--json")
    assert result.returncode == 0, result.stderr
    return {
        Path(entry["path"]).name: entry["platforms"]["agency"] for entry in json.loads(result.stdout)["files"]
    }


def test_camera_boilerplate_is_no_title_and_a_real_description_still_becomes_the_title(
    workspace: Workspace, exiftool, folder_target
):
    olympus = photo(
        exiftool, workspace.exports / "P1010001.jpg", seed=1, image_description="OLYMPUS DIGITAL CAMERA"
    )
    photoshop = photo(
        exiftool,
        workspace.exports / "scan.tif",
        seed=2,
        fmt="tiff",
        image_description="File written by Adobe Photoshop 4.0",
    )
    # A real caption in XMP/IPTC, and the camera's boilerplate in EXIF as cameras leave it.
    harbour = photo(
        exiftool,
        workspace.exports / "DSC00042.jpg",
        seed=3,
        description="Fishing boats in a calm harbour at dawn",
        image_description="SONY DSC",
    )
    read = exiftool.read([olympus, photoshop])
    assert read[olympus].title is None and read[olympus].description is None
    assert read[photoshop].description is None and read[photoshop].placeholders == (
        "File written by Adobe Photoshop 4.0",
    )
    workspace.write_config(
        platform_table(
            "agency",
            folder_target,
            **{"rules.formats": ["jpeg"], "rules.convert_to": "jpeg", "rules.title": ADOBE_TITLE},
        )
    )

    verdicts = explained(workspace, olympus, photoshop, harbour)
    assert verdicts["P1010001.jpg"]["verdict"] == "hold"
    assert verdicts["P1010001.jpg"]["reasons"] == [
        "no title, agency requires one; set the title in your editor and export again "
        '("OLYMPUS DIGITAL CAMERA" is a placeholder written by Olympus cameras, not a title)'
    ]
    assert verdicts["scan.tif"]["verdict"] == "hold"
    assert verdicts["scan.tif"]["reasons"][0].startswith("no title, agency requires one")
    assert "File written by Adobe Photoshop 4.0" in verdicts["scan.tif"]["reasons"][0]
    assert verdicts["DSC00042.jpg"]["verdict"] == "accept"
    assert verdicts["DSC00042.jpg"]["changes"] == ["title filled from the description"]

    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder_target.root.iterdir()) == ["DSC00042.jpg"]
    sent = folder_target.root / "DSC00042.jpg"
    assert exiftool.read([sent])[sent].title == "Fishing boats in a calm harbour at dawn"
    states = {Path(e["path"]).name: e["platforms"]["agency"] for e in workspace.status()["files"]}
    assert states["P1010001.jpg"]["state"] == states["scan.tif"]["state"] == "held"
    assert states["P1010001.jpg"]["reason"].startswith("no title")


ADOBE_CSV = ["Filename", "Title", "Keywords", "Category", "Releases"]


def test_commas_leave_adobes_titles_in_the_copy_the_changes_and_the_csv_manifest(
    workspace: Workspace, exiftool, folder_target
):
    palms = photo(exiftool, workspace.exports / "palms.jpg", seed=4, title="Sunset, beach, and palms")
    gulls = photo(exiftool, workspace.exports / "gulls.jpg", seed=5, description="Boats, nets, and gulls")
    workspace.write_config(
        platform_table(
            "agency",
            folder_target,
            **{
                "rules.title": {**ADOBE_TITLE, "forbidden": ",", "on_forbidden": "replace"},
                "csv.columns": ADOBE_CSV,
                "csv.upload": True,
            },
        )
    )

    verdicts = explained(workspace, palms, gulls)
    assert verdicts["palms.jpg"] == {
        "verdict": "accept",
        "reasons": [],
        "changes": ["title: commas replaced"],
    }
    assert verdicts["gulls.jpg"]["changes"] == ["title filled from the description", "title: commas replaced"]

    result = workspace.cli("once")
    assert result.returncode == 0, result.stderr
    sent = {path.name: path for path in folder_target.root.iterdir()}
    read = exiftool.read([sent["palms.jpg"], sent["gulls.jpg"], palms])
    assert read[sent["palms.jpg"]].title == "Sunset beach and palms"
    assert read[sent["gulls.jpg"]].title == "Boats nets and gulls"
    assert read[palms].title == "Sunset, beach, and palms", "the source was changed"
    # Every title field of the copy, so no reader finds the old one.
    tags = exiftool.read([sent["palms.jpg"]], extra_tags=("IPTC:ObjectName", "IPTC:Headline"))[
        sent["palms.jpg"]
    ]
    assert tags.extra == {
        "IPTC:ObjectName": ("Sunset beach and palms",),
        "IPTC:Headline": ("Sunset beach and palms",),
    }

    status = {Path(e["path"]).name: e["platforms"]["agency"] for e in workspace.status()["files"]}
    assert status["palms.jpg"]["state"] == "uploaded"
    assert status["palms.jpg"]["changes"] == ["title: commas replaced"]

    (manifest,) = [path for name, path in sent.items() if name.endswith(".csv")]
    rows = list(csv.reader(io.StringIO(manifest.read_text(encoding="utf-8"))))
    assert rows[0] == ADOBE_CSV
    titles = {row[0]: row[1] for row in rows[1:]}
    assert titles == {"palms.jpg": "Sunset beach and palms", "gulls.jpg": "Boats nets and gulls"}


def test_a_platform_that_holds_on_commas_names_them(workspace: Workspace, exiftool, folder_target):
    palms = photo(exiftool, workspace.exports / "palms.jpg", seed=6, title="Sunset, beach, and palms")
    workspace.write_config(
        platform_table("agency", folder_target, **{"rules.title": {"forbidden": ",", "on_forbidden": "hold"}})
    )
    assert explained(workspace, palms)["palms.jpg"] == {
        "verdict": "hold",
        "reasons": [
            "title contains commas, which agency does not allow; remove them in your editor and export "
            'again (or set title.on_forbidden = "replace")'
        ],
        "changes": [],
    }
