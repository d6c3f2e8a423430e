"""A vector's verdict, table by table: what each platform's [rules.vector] makes of it (issue 15)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from stockbridge.assets.vector import PreviewCheck, VectorProbe
from stockbridge.config.rules import RulesConfig
from stockbridge.rules.plan import AssetFacts, evaluate

KEYWORDS = tuple(f"k{index}" for index in range(10))


def facts(
    file_type: str = "eps",
    *,
    size: tuple[float, float] = (2400, 1800),
    level: float | None = 10.0,
    creator: str | None = "Adobe Illustrator(R) 10.0",
    preview: PreviewCheck | None = None,
    size_bytes: int = 2_000_000,
) -> AssetFacts:
    probe = VectorProbe(
        file_type, size[0], size[1], "Ghostscript bbox", creator=creator, illustrator_version=level
    )
    return AssetFacts(
        file_type=file_type,
        size_bytes=size_bytes,
        width=probe.width,
        height=probe.height,
        title="Hills",
        keywords=KEYWORDS,
        vector=probe,
        preview=preview,
        preview_expected="hills.jpg",
    )


def rules(**vector: object) -> RulesConfig:
    return RulesConfig(vector=vector)


def good_preview(width: int = 2100, height: int = 2100) -> PreviewCheck:
    return PreviewCheck(Path("/exports/hills.jpg"), "jpeg", width, height)


def test_a_platform_without_vector_formats_takes_no_vectors() -> None:
    verdict = evaluate("photosonly", facts(), RulesConfig(formats=["jpeg"]))
    assert verdict.verdict == "reject"
    assert verdict.reasons == (
        "EPS vector, photosonly is set to take no vectors (its [platforms.photosonly.rules.vector] table lists no formats)",
    )
    svg = evaluate("epsonly", facts("svg", level=None), rules(formats=["eps"]))
    assert svg.reasons == ("SVG vector, epsonly takes only EPS",)


def test_the_illustrator_level_and_the_megapixels_decide() -> None:
    limits = {"formats": ["eps"], "max_illustrator_version": 10, "min_megapixels": 4, "max_megapixels": 25}
    assert evaluate("sstk", facts(), rules(**limits)).verdict == "accept"
    newer = evaluate("sstk", facts(level=27.0), rules(**limits))
    assert newer.reasons == (
        "saved as Illustrator 27, sstk takes Illustrator 10 or older; save it as Illustrator 10 EPS and export again",
    )
    small = evaluate("sstk", facts(size=(1000, 1000)), rules(**limits))
    assert small.reasons == (
        "1.0 MP (1000×1000 pt, Ghostscript bbox), sstk needs at least 4.0 MP; enlarge the artboard and export again",
    )
    unknown = facts(level=None, creator="GPL Ghostscript 10000 (eps2write)")
    sent = evaluate("sstk", unknown, rules(**limits))
    assert sent.verdict == "accept" and sent.changes == (
        "Illustrator level not checkable (made by GPL Ghostscript 10000 (eps2write)), sstk asks for"
        ' Illustrator 10 or older: sent anyway (unknown_version = "send")',
    )
    held = evaluate("sstk", unknown, rules(**limits, unknown_version="hold"))
    assert held.verdict == "hold" and "save it as Illustrator 10 EPS" in held.reasons[0]
    # A PDF-based AI names only the Illustrator that saved it: at or under the limit it fits; a
    # newer one may have saved it down-level, so that stays "not checkable".
    ai_limits = {**limits, "formats": ["ai"], "unknown_version": "hold"}
    old = replace(facts("ai", level=None, creator=None), vector=VectorProbe("ai", 2400, 1800, saved_by=10.0))
    assert evaluate("sstk", old, rules(**ai_limits)).verdict == "accept"
    new = replace(old, vector=VectorProbe("ai", 2400, 1800, saved_by=27.0))
    assert evaluate("sstk", new, rules(**ai_limits)).reasons == (
        "Illustrator level at most 27 (saved by Illustrator 27, its XMP CreatorTool), sstk asks for"
        " Illustrator 10 or older; save it as Illustrator 10 EPS and export again",
    )
    big = evaluate("sstk", facts(size_bytes=120_000_000), rules(formats=["eps"], max_file_mb=100))
    assert big.reasons == ("120.0 MB, sstk takes vectors of at most 100 MB",)


def test_a_required_preview_holds_the_vector_with_the_name_it_waits_for() -> None:
    pair = {"formats": ["eps"], "travel": "zip", "preview": "required", "preview_min_edge": 2000}
    waiting = evaluate("pond5", facts(), rules(**pair))
    assert waiting.verdict == "hold"
    assert waiting.reasons == (
        "waiting for hills.jpg: pond5 needs a preview beside the vector; it goes by itself once the preview is there",
    )
    small = evaluate("pond5", facts(preview=good_preview(1200, 900)), rules(**pair))
    assert small.verdict == "hold" and small.reasons[0].startswith(
        "preview is 1200×900, pond5 needs at least 2000×2000"
    )
    ready = evaluate("pond5", facts(preview=good_preview()), rules(**pair))
    assert ready.verdict == "accept" and ready.preview == Path("/exports/hills.jpg")
    assert "sent as one zip named after the stem: the EPS and its preview" in ready.changes
    broken = PreviewCheck(
        Path("/exports/hills.jpg"), None, problem="preview hills.jpg is not a JPEG or PNG (unknown content)"
    )
    optional = evaluate("free", facts(preview=broken), rules(formats=["eps"], travel="pair"))
    assert optional.verdict == "accept" and optional.preview is None
    assert optional.changes == (
        "preview hills.jpg is not a JPEG or PNG (unknown content): the vector goes without it",
    )


def test_the_vector_table_refuses_what_cannot_work() -> None:
    with pytest.raises(ValidationError, match="unknown vector format 'jpeg'; known: eps, ai, svg"):
        rules(formats=["jpeg"])
    with pytest.raises(ValidationError, match='preview = "required" needs travel = "pair" or "zip"'):
        rules(formats=["eps"], preview="required")
    with pytest.raises(ValidationError, match="'eps' is a vector format"):
        RulesConfig(formats=["jpeg", "eps"])
    assert rules(formats=["EPS", "ai"]).vector.formats == ["eps", "ai"]


def test_every_preset_that_speaks_of_vectors_cites_its_sources_and_date() -> None:
    from stockbridge.config.presets import load_preset, preset_about, preset_names

    with_vectors = [name for name in preset_names() if "vector" in load_preset(name).get("rules", {})]
    assert {
        "shutterstock",
        "adobe_stock",
        "pond5",
        "depositphotos",
        "vecteezy",
        "freepik",
        "dreamstime",
    } <= set(with_vectors)
    for name in with_vectors:
        about = preset_about(name)["vectors"]
        assert about["sources"] and all(source.startswith("https://") for source in about["sources"]), name
        assert about["checked"] == "2026-12-05" and about["notes"], name
        RulesConfig(**load_preset(name)["rules"])  # each table validates
    pond5 = RulesConfig(**load_preset("pond5")["rules"]).vector
    assert (pond5.formats, pond5.travel, pond5.preview, pond5.preview_min_edge) == (
        ["eps"],
        "zip",
        "required",
        2000,
    )
    shutterstock = RulesConfig(**load_preset("shutterstock")["rules"]).vector
    assert (shutterstock.preview, shutterstock.max_illustrator_version) == ("none", 10)
    assert "SECONDARY SOURCE ONLY" in preset_about("depositphotos")["vectors"]["notes"]
