"""What a title is made of, on real files written by ExifTool (issue 13).

- Camera and software boilerplate ("OLYMPUS DIGITAL CAMERA", "File written by Adobe Photoshop 4.0")
  is no title and no description: the file is held with "no title", never titled with it (item 2).
"""

from __future__ import annotations

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
