"""Camera and software boilerplate counts as empty text (issue 13, item 2).

"OLYMPUS DIGITAL CAMERA" in EXIF ImageDescription became an Adobe Stock title through
``title.from_description``. The list is in metadata/boilerplate.py; here: what it matches, what it
must never match (a real caption), and that every entry says where it comes from.
"""

from __future__ import annotations

import pytest

from stockbridge.config.rules import RulesConfig
from stockbridge.metadata.boilerplate import BOILERPLATE, boilerplate
from stockbridge.metadata.fields import _metadata_from
from stockbridge.rules.plan import ACCEPT, HOLD, AssetFacts, evaluate


@pytest.mark.parametrize(
    "text",
    [
        "OLYMPUS DIGITAL CAMERA",
        "olympus digital camera",
        "  OLYMPUS   DIGITAL CAMERA  ",
        "SONY DSC",
        "KODAK Digital Still Camera     ",  # padded with spaces, as the camera writes it
        "DCIM",
        "DCIM\\100MEDIA\\DJI_0001.JPG",
        "DCIM/100CANON",
        "Digital Camera",
        "SAMSUNG",
        "Created with GIMP",
        "File written by Adobe Photoshop 4.0",
        "File written by Adobe Photoshop\u00ae 4.0",
        "File written by Adobe Photoshop? 4.0",  # ExifTool's reading of the Mac Roman ® byte
        "File written by Adobe Photoshop\ufffd 5.2",
        "Default",
        "<Untitled>",
        "EXIF_JPEG_PICTURE",
        "rhdr",
    ],
)
def test_known_placeholder_texts_are_boilerplate(text):
    assert boilerplate(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Sunset over the harbour",
        "Shot on a SONY DSC-RX100 at dawn",  # mentions a camera: a real caption
        "OLYMPUS DIGITAL CAMERA on a wooden table",  # a photo of the camera
        "DCIM folder on a memory card",
        "Default settings of a mixing desk",
        "Monday morning",  # not the Huawei code "mon"
        "Untitled painting in a gallery",
        "Photoshop course: File written by Adobe Photoshop",  # not at the start
    ],
)
def test_real_text_is_never_boilerplate(text):
    assert boilerplate(text) is None


def test_every_entry_says_who_writes_it_and_where_that_is_known_from():
    for entry in BOILERPLATE:
        assert entry.text.strip() and entry.origin.strip() and entry.source.strip(), entry
    texts = [entry.text.casefold() for entry in BOILERPLATE]
    assert len(texts) == len(set(texts)), "an entry is listed twice"


def test_metadata_passes_boilerplate_over_and_takes_the_next_real_field():
    entry = {
        "XMP-dc:Title": "SONY DSC",
        "IPTC:ObjectName": "Boats at dawn",
        "XMP-dc:Description": "OLYMPUS DIGITAL CAMERA",
        "IPTC:Caption-Abstract": "Fishing boats in a calm harbour",
        "IFD0:ImageDescription": "OLYMPUS DIGITAL CAMERA",
    }
    meta = _metadata_from(entry)
    assert meta.title == "Boats at dawn"
    assert meta.description == "Fishing boats in a calm harbour"
    assert meta.placeholders == ("SONY DSC", "OLYMPUS DIGITAL CAMERA")


def test_a_file_whose_only_text_is_boilerplate_has_no_title_and_no_description():
    meta = _metadata_from({"IFD0:ImageDescription": "OLYMPUS DIGITAL CAMERA"})
    assert meta.title is None and meta.description is None
    assert meta.placeholders == ("OLYMPUS DIGITAL CAMERA",)


ADOBE_TITLE = RulesConfig.model_validate(
    {"title": {"required": True, "max_chars": 70, "over_max": "shorten", "from_description": True}}
)


def test_boilerplate_is_held_with_no_title_and_the_reason_names_the_placeholder():
    facts = AssetFacts(file_type="jpeg", size_bytes=1, placeholders=("OLYMPUS DIGITAL CAMERA",))
    verdict = evaluate("adobe", facts, ADOBE_TITLE)
    assert verdict.verdict == HOLD
    assert verdict.reasons == (
        "no title, adobe requires one; set the title in your editor and export again "
        '("OLYMPUS DIGITAL CAMERA" is a placeholder written by Olympus cameras, not a title)',
    )


def test_a_real_description_still_fills_an_empty_title():
    facts = AssetFacts(
        file_type="jpeg",
        size_bytes=1,
        description="Fishing boats in a calm harbour",
        placeholders=("SONY DSC",),
    )
    verdict = evaluate("adobe", facts, ADOBE_TITLE)
    assert verdict.verdict == ACCEPT
    assert verdict.title == "Fishing boats in a calm harbour"
    assert verdict.changes == ("title filled from the description",)
