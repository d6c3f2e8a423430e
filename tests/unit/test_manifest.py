"""CSV manifests: the agency's header row, each file's cells, safe in a spreadsheet, read back intact."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from stockbridge.config.models import CsvConfig
from stockbridge.delivery.manifests import ManifestRow, render_manifest, write_manifest

SHUTTERSTOCK_LIKE = CsvConfig(
    columns=["Filename", "Description", "Keywords", "Categories", "Editorial"],
    values={"Categories": "Nature, Landscapes"},
)
ADOBE_LIKE = CsvConfig(
    columns=["Filename", "Title", "Keywords", "Category", "Releases"], values={"Category": "11"}
)

LAKE = ManifestRow(
    filename="Lake_at_dawn_1a2b3c4d.jpg",
    title="Lake at dawn",
    description="Mist over a mountain lake at dawn, Zürich",
    keywords=("lake", "mist", "dawn", "Zürich", "湖", "café"),
    editorial=False,
    releases=(),
)
MARKET = ManifestRow(
    filename="Market.jpg",
    title="Street market",
    description=None,
    keywords=("market", "people"),
    editorial=True,
    releases=("Jane Doe 2026", "Stall owner"),
)


def read_back(path: Path, delimiter: str = ",") -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter))


def test_a_shutterstock_like_manifest_has_its_header_and_one_row_per_file(tmp_path):
    path = write_manifest(tmp_path / "batch.csv", SHUTTERSTOCK_LIKE, [LAKE, MARKET])
    assert read_back(path) == [
        ["Filename", "Description", "Keywords", "Categories", "Editorial"],
        [
            "Lake_at_dawn_1a2b3c4d.jpg",
            "Mist over a mountain lake at dawn, Zürich",
            "lake, mist, dawn, Zürich, 湖, café",
            "Nature, Landscapes",
            "No",
        ],
        # No description: the one caption field takes the title.
        ["Market.jpg", "Street market", "market, people", "Nature, Landscapes", "Yes"],
    ]


def test_an_adobe_like_manifest_fills_title_keywords_and_releases(tmp_path):
    path = write_manifest(tmp_path / "adobe.csv", ADOBE_LIKE, [LAKE, MARKET])
    assert read_back(path) == [
        ["Filename", "Title", "Keywords", "Category", "Releases"],
        ["Lake_at_dawn_1a2b3c4d.jpg", "Lake at dawn", "lake, mist, dawn, Zürich, 湖, café", "11", ""],
        ["Market.jpg", "Street market", "market, people", "11", "Jane Doe 2026, Stall owner"],
    ]


def test_the_file_is_utf8_without_a_byte_order_mark(tmp_path):
    path = write_manifest(tmp_path / "batch.csv", ADOBE_LIKE, [LAKE])
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert "Zürich, 湖, café".encode() in raw


def test_known_headers_match_in_any_case_and_through_their_aliases():
    config = CsvConfig(columns=["FILE NAME", "caption", "Tags", "model release", "editorial", "TITLE"])
    rows = list(csv.reader(io.StringIO(render_manifest(config, [MARKET]))))
    assert rows[1] == [
        "Market.jpg",
        "Street market",
        "market, people",
        "Jane Doe 2026, Stall owner",
        "Yes",
        "Street market",
    ]


def test_unknown_headers_take_their_value_from_the_config_or_stay_empty():
    config = CsvConfig(columns=["Filename", "License", "Prompt"], values={"License": "Pro"})
    rows = list(csv.reader(io.StringIO(render_manifest(config, [LAKE]))))
    assert rows[1] == ["Lake_at_dawn_1a2b3c4d.jpg", "Pro", ""]


def test_an_empty_known_cell_falls_back_to_the_configured_value():
    config = CsvConfig(columns=["Filename", "Releases"], values={"releases": "none"})
    rows = list(csv.reader(io.StringIO(render_manifest(config, [LAKE, MARKET]))))
    assert [row[1] for row in rows[1:]] == ["none", "Jane Doe 2026, Stall owner"]


@pytest.mark.parametrize(
    "hostile",
    ['=HYPERLINK("http://evil.example","click")', "+1", "-2", "@SUM(A1:A9)", "\tcmd", "\rcmd"],
)
def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(tmp_path, hostile):
    row = ManifestRow(
        filename="x.jpg",
        title=hostile,
        description=hostile,
        keywords=(hostile, "safe"),
        editorial=False,
        releases=(hostile,),
    )
    path = write_manifest(tmp_path / "batch.csv", ADOBE_LIKE, [row])
    cells = read_back(path)[1]
    stripped = hostile.lstrip("=+-@\t\r")
    assert cells[1] == stripped
    assert cells[2] == stripped + ", safe"
    assert cells[4] == stripped
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_formula_characters_inside_a_cell_are_left_alone():
    row = ManifestRow("x.jpg", "Sale 50% = half price", None, ("a-b", "c+d"), False, ())
    cells = list(csv.reader(io.StringIO(render_manifest(ADOBE_LIKE, [row]))))[1]
    assert cells[1:3] == ["Sale 50% = half price", "a-b, c+d"]


def test_a_semicolon_delimiter_keeps_comma_separated_keywords_in_one_cell(tmp_path):
    config = CsvConfig(columns=["Filename", "Title", "Keywords"], delimiter=";")
    path = write_manifest(tmp_path / "freepik.csv", config, [LAKE])
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "Filename;Title;Keywords"
    assert read_back(path, delimiter=";")[1] == [
        "Lake_at_dawn_1a2b3c4d.jpg",
        "Lake at dawn",
        "lake, mist, dawn, Zürich, 湖, café",
    ]


def test_quotes_and_line_breaks_survive_the_round_trip(tmp_path):
    row = ManifestRow('He said "hi", twice', 'A "quoted" title', "two\nlines", ("a;b",), False, ())
    config = CsvConfig(columns=["Filename", "Title", "Description", "Keywords"], delimiter=";")
    path = write_manifest(tmp_path / "batch.csv", config, [row])
    assert read_back(path, delimiter=";")[1] == [
        'He said "hi", twice',
        'A "quoted" title',
        "two\nlines",
        "a;b",
    ]


def test_writing_replaces_an_old_manifest_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "csv" / "batch.csv"
    write_manifest(target, ADOBE_LIKE, [LAKE, MARKET])
    write_manifest(target, ADOBE_LIKE, [MARKET])
    assert len(read_back(target)) == 2
    assert sorted(path.name for path in target.parent.iterdir()) == ["batch.csv"]


def test_a_manifest_with_no_files_is_just_the_header():
    assert render_manifest(ADOBE_LIKE, []) == "Filename,Title,Keywords,Category,Releases\r\n"
