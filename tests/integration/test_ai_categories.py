"""AI-generated work and per-file categories, through the real pipeline (issue 15).

Files tagged by a separate ExifTool process, as Lightroom or a generator would have written them
(IPTC DigitalSourceType as its full URI, photoshop:Category, SupplementalCategories, a
hierarchical keyword ``category|Animals``), taken by ``stockbridge once`` into folder platforms
built on the Shutterstock, Adobe Stock and Dreamstime presets. What a contributor notices: the AI
file rejected by Shutterstock with the policy named and accepted by Adobe with the portal's
checkboxes listed in ``status``; a file without a category held with the valid names, another
released by a mapping added to the config; each CSV row with that file's own categories and flags.
"""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stockbridge.cli.main import main
from stockbridge.demo.samples import make_image
from stockbridge.metadata.exiftool import ExifTool
from tests.images import require_exiftool

AI_URI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
KEYWORDS = ("sunset", "sky", "beach", "sea", "summer", "travel", "orange", "calm", "water", "coast")


@dataclass
class World:
    root: Path
    config: Path
    first: dict[str, Any]  # status --json after the first run
    second: dict[str, Any]  # ... after the second run, with a category mapping added


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code in (0, 1), result.output
    return result.output


def tag(*files: tuple[Path, tuple[str, ...]]) -> None:
    """Tag each file with its assignments in one separate exiftool process, as another program
    would have (``-execute`` between files)."""
    lines = []
    for path, assignments in files:
        lines += ["-q", "-overwrite_original", *assignments, str(path), "-execute"]
    command = [require_exiftool(), "-@", "-"]
    subprocess.run(
        command, input="\n".join(lines) + "\n", text=True, check=True, capture_output=True, timeout=30
    )


def photo(
    exiftool: ExifTool,
    path: Path,
    seed: int,
    *assignments: str,
    title: str = "Beach at dusk",
    keywords: tuple[str, ...] = KEYWORDS,
) -> tuple[Path, tuple[str, ...]]:
    # Small (the platforms' minimum sizes are lowered in CONFIG): the pixels are not what is tested.
    make_image(path, width=640, height=480, title=title, keywords=keywords, seed=seed, exiftool=exiftool)
    return path, assignments


CONFIG = """\
[watch]
folder = "{root}/exports"
settle_seconds = 0
[state]
dir = "{root}/state"
[categories]
folders = {{ nature = "Nature" }}
[platforms.sstk]
preset = "shutterstock"
protocol = "folder"
path = "{root}/sstk"
rules.min_megapixels = 0.1
[platforms.adobe]
preset = "adobe_stock"
protocol = "folder"
path = "{root}/adobe"
rules.min_megapixels = 0.1
[platforms.dreams]
preset = "dreamstime"
protocol = "folder"
path = "{root}/dreams"
rules.min_megapixels = 0.1
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, exiftool: ExifTool) -> Iterator[World]:
    root = tmp_path_factory.mktemp("aicat")
    exports = root / "exports"
    for name in ("sstk", "adobe", "dreams"):
        (root / name).mkdir()
    tag(
        photo(
            exiftool,
            exports / "generated.jpg",
            1,
            f"-XMP-iptcExt:DigitalSourceType={AI_URI}",
            "-XMP-photoshop:Category=Nature",
            title="Sunset made with generative AI",
            keywords=(*KEYWORDS, "generative AI"),
        ),
        photo(exiftool, exports / "fox.jpg", 2, "-XMP-lr:HierarchicalSubject=category|Animals"),
        photo(exiftool, exports / "illustration" / "drawn.jpg", 3, "-XMP-photoshop:Category=Backgrounds"),
        photo(exiftool, exports / "nature" / "lake.jpg", 4),  # its category comes from the folder
        photo(exiftool, exports / "plain.jpg", 5),
        photo(exiftool, exports / "sunsets.jpg", 6, "-XMP-photoshop:SupplementalCategories=Sunsets"),
    )
    config = root / "config.toml"
    config.write_text(CONFIG.format(root=root))
    cli("once", "--config", str(config))
    first = json.loads(cli("status", "--config", str(config), "--json"))
    # The contributor maps their own word onto Shutterstock's list: the held file moves on.
    config.write_text(config.read_text() + '[platforms.sstk.rules.categories.map]\nSunsets = "Nature"\n')
    cli("once", "--config", str(config))
    second = json.loads(cli("status", "--config", str(config), "--json"))
    yield World(root, config, first, second)


def job(status: dict[str, Any], name: str, platform: str) -> dict[str, Any]:
    entry = next(entry for entry in status["files"] if entry["path"].endswith("/" + name))
    result: dict[str, Any] = entry["platforms"][platform]
    return result


def rows(world: World, platform: str) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for path in sorted((world.root / "state" / "csv").glob(f"{platform}-*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                found[row["Filename"]] = row
    return found


def test_an_ai_file_is_rejected_by_shutterstock_naming_the_policy(world: World) -> None:
    rejected = job(world.first, "generated.jpg", "sstk")
    assert rejected["state"] == "rejected"
    assert rejected["reason"] == (
        "AI-generated (IPTC DigitalSourceType trainedAlgorithmicMedia); sstk does not accept"
        " AI-generated content: submit.shutterstock.com/help/en/articles/10594622"
    )
    assert not (world.root / "sstk" / "generated.jpg").exists()


def test_an_ai_file_goes_to_adobe_with_its_portal_checkboxes_listed(world: World) -> None:
    sent = job(world.first, "generated.jpg", "adobe")
    assert sent["state"] == "uploaded"
    assert sent["manual"][:3] == [
        'tick "Created using generative AI tools" in the Contributor Portal',
        'tick "People and Property are fictional" if it shows fictional people or property',
        'an image: file type "Photos" if it could have been taken with a camera, else "Illustrations"',
    ]
    assert 'the title says "generative AI"' in sent["manual"][3]
    # Adobe asks for no "generative AI" keyword: its copy and its CSV row go without it.
    row = rows(world, "adobe")["generated.jpg"]
    assert "generative AI" not in row["Keywords"] and "sunset" in row["Keywords"]
    assert row["Category"] == "11"  # Nature → Landscapes
    history = json.loads(cli("history", "--config", str(world.config), "--json"))
    steps = [
        entry for batch in history["batches"] for entry in batch["manual"] if batch["platform"] == "adobe"
    ]
    assert [entry["remote_name"] for entry in steps] == ["generated.jpg"]


def test_a_file_without_a_category_is_held_with_the_valid_names(world: World) -> None:
    held = job(world.second, "plain.jpg", "sstk")
    assert held["state"] == "held"
    assert held["reason"].startswith(
        "no category, sstk needs one or two of Abstract, Animals/Wildlife, Arts, Backgrounds/Textures,"
    )
    assert "(26 in all: `stockbridge explain FILE` lists them)" in held["reason"]
    # Adobe's category is optional: the same file goes there, and Dreamstime lists its web step.
    assert job(world.first, "plain.jpg", "adobe")["state"] == "uploaded"
    assert job(world.first, "plain.jpg", "dreams")["manual"] == [
        'set the categories in "Unfinished Files" on dreamstime.com (the file\'s categories: none found in the file)'
    ]


def test_a_category_mapping_added_to_the_config_releases_a_held_file(world: World) -> None:
    before = job(world.first, "sunsets.jpg", "sstk")
    assert before["state"] == "held"
    assert before["reason"].startswith(
        'category "Sunsets" (from XMP-photoshop:SupplementalCategories) is not'
    )
    assert job(world.second, "sunsets.jpg", "sstk")["state"] == "uploaded"
    assert rows(world, "sstk")["sunsets.jpg"]["Categories"] == "Nature"


def test_each_csv_row_carries_the_files_own_categories_and_flags(world: World) -> None:
    sstk = rows(world, "sstk")
    assert sstk["fox.jpg"]["Categories"] == "Animals/Wildlife"  # from category|Animals
    assert sstk["lake.jpg"]["Categories"] == "Nature"  # from the nature/ folder
    assert sstk["drawn.jpg"]["Categories"] == "Backgrounds/Textures"
    assert (sstk["drawn.jpg"]["Illustration"], sstk["fox.jpg"]["Illustration"]) == ("Yes", "No")
    assert sstk["fox.jpg"]["Mature Content"] == "No"
    adobe = rows(world, "adobe")
    assert (adobe["fox.jpg"]["Category"], adobe["drawn.jpg"]["Category"]) == ("1", "8")


def test_explain_shows_the_ai_source_the_category_and_each_mapping(world: World) -> None:
    shown = json.loads(
        cli("explain", "--config", str(world.config), "--json", str(world.root / "exports" / "fox.jpg"))
    )
    entry = shown["files"][0]
    assert entry["facts"]["categories"] == ["Animals"]
    assert entry["facts"]["category_source"] == 'hierarchical keyword "category|…"'
    assert entry["facts"]["ai_generated"] is False
    assert entry["platforms"]["sstk"]["categories"] == ["Animals/Wildlife"]
    assert entry["platforms"]["adobe"]["categories"] == ["1"]
    text = cli("explain", "--config", str(world.config), str(world.root / "exports" / "generated.jpg"))
    assert "AI-generated: yes (IPTC DigitalSourceType trainedAlgorithmicMedia)" in text
    assert "category: Nature (from XMP-photoshop:Category)" in text


def test_the_service_plans_held_files_again_when_its_config_is_reloaded(
    tmp_path: Path, exiftool: ExifTool
) -> None:
    # `systemctl reload stockbridge` (SIGHUP) with a new mapping: the held file is queued at once.
    from stockbridge.config.loading import load_config
    from stockbridge.delivery.prepare import open_pipeline
    from stockbridge.service.daemon import Service

    tag(
        photo(
            exiftool, tmp_path / "exports" / "sunsets.jpg", 7, "-XMP-photoshop:SupplementalCategories=Sunsets"
        )
    )
    (tmp_path / "sstk").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(root=tmp_path).split("[platforms.adobe]")[0])
    cli("once", "--config", str(config))
    assert (
        job(json.loads(cli("status", "--config", str(config), "--json")), "sunsets.jpg", "sstk")["state"]
        == "held"
    )
    config.write_text(config.read_text() + '[platforms.sstk.rules.categories.map]\nSunsets = "Nature"\n')
    service = Service(load_config(config).model_copy(update={"source": config}))
    with open_pipeline(service.config) as pipeline:
        service._reload(pipeline)
        (queued,) = pipeline.ledger.jobs(platform="sstk")
    assert (queued.state, queued.meta and queued.meta["categories"]) == ("pending", ["Nature"])
