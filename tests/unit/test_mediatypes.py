"""One table of media types: every stage reads it, so adding a type is one entry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from PIL import Image

from stockbridge.assets import mediatypes
from stockbridge.assets.filetype import sniff
from stockbridge.assets.mediatypes import MediaType
from stockbridge.config.rules import RulesConfig
from stockbridge.intake.scan import skipped_entry
from stockbridge.render.pixels import image_props
from stockbridge.rules.naming import remote_name

REPO = Path(__file__).resolve().parents[2]

#: WebP: Pillow decodes it and ``sniff`` already names it; it is not in the table today.
WEBP = MediaType("webp", "WebP", "raster", (".webp",), pillow_format="WEBP", converts_to=("jpeg",))


def test_config_spellings_extensions_and_labels_come_from_the_table() -> None:
    assert RulesConfig(formats=["JPG", "tif", "png"]).formats == ["jpeg", "tiff", "png"]
    with pytest.raises(ValueError, match="unknown format 'webp'; known: jpeg, png, tiff"):
        RulesConfig(formats=["webp"])
    assert remote_name("Zürich Sunset.JPEG", "a" * 64, "jpeg") == "Zurich_Sunset.jpg"
    assert mediatypes.label("tiff") == "TIFF" and mediatypes.label("heic") == "HEIC"


def test_a_new_type_is_one_entry_and_every_stage_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = tmp_path / "IMG_1.webp"
    Image.new("RGB", (640, 480), (200, 120, 40)).save(photo, "WEBP")
    folder = tmp_path / "named.webp"
    folder.mkdir()
    assert RulesConfig(formats=None).formats is None
    with pytest.raises(ValueError):
        RulesConfig(formats=["webp"])
    assert skipped_entry(folder) is None  # a folder with an unknown ending is just a folder

    monkeypatch.setattr(mediatypes, "MEDIA_TYPES", (*mediatypes.MEDIA_TYPES, WEBP))
    assert RulesConfig(formats=["WEBP"]).formats == ["webp"]  # config validation
    assert skipped_entry(folder) is not None  # the watcher: a folder named like a photo
    assert sniff(photo) == "webp" and mediatypes.get(sniff(photo)) is WEBP  # ingest takes it
    assert remote_name("IMG_1.webp", "b" * 64, "webp") == "IMG_1.webp"  # naming
    props = image_props(photo, "webp")  # measured with its Pillow plug-in
    assert (props.width, props.height) == (640, 480)


def test_no_stage_keeps_its_own_list_of_types() -> None:
    # The six lists issue 12 found (config, naming, plan, render, watcher, filetype) are gone: no
    # module but the table spells out the set of types we take.
    offenders = []
    for path in (REPO / "stockbridge").rglob("*.py"):
        if path.name == "mediatypes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Set, ast.Tuple, ast.List, ast.Dict)):
                values = node.keys if isinstance(node, ast.Dict) else node.elts
                texts = {value.value for value in values if isinstance(value, ast.Constant)}
                if {"jpeg", "png", "tiff"} <= texts or {".jpg", ".png", ".tif"} <= texts:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == [], f"read stockbridge.assets.mediatypes instead: {offenders}"
