"""Reasons that print a size next to the limit it broke never print the two as equal (issue 13, item 6).

"1.9 MP (1600×1195), istock needs at least 1.9 MP" (1.912 against 1.92) and "0.0 MP (100×100)" were
the user's words; every reason that compares megapixels or MB is checked here, row by row.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from stockbridge.config.rules import RulesConfig
from stockbridge.render.images import plan_render
from stockbridge.render.pixels import MAX_PIXELS, _too_many
from stockbridge.rules.measures import against, limit_text
from stockbridge.rules.plan import REJECT, AssetFacts, evaluate
from tests.images import props


def facts(width: int | None, height: int | None, size_bytes: int = 2_000_000) -> AssetFacts:
    return AssetFacts(
        file_type="jpeg", size_bytes=size_bytes, width=width, height=height, title="Boats", keywords=("a",)
    )


def one_reason(width: int | None, height: int | None, size_bytes: int = 2_000_000, **rules: Any) -> str:
    verdict = evaluate("istock", facts(width, height, size_bytes), RulesConfig(**rules))
    assert verdict.verdict == REJECT
    (reason,) = verdict.reasons
    return reason


@pytest.mark.parametrize(
    ("width", "height", "minimum", "reason"),
    [
        pytest.param(
            1600,
            1195,
            1.92,
            "1.91 MP (1600×1195), istock needs at least 1.92 MP; stockbridge never upscales",
            id="1.912 against 1.92 (the user's case)",
        ),
        pytest.param(100, 100, 4.0, "0.01 MP (100×100), istock needs at least 4.0 MP", id="small: not 0.0"),
        pytest.param(10, 10, 4.0, "0.0001 MP (10×10), istock needs at least 4.0 MP", id="tiny: not 0.0"),
        pytest.param(1, 1, 4.0, "0.000001 MP (1×1), istock needs at least 4.0 MP", id="one pixel"),
        pytest.param(1999, 1999, 4.0, "3.996 MP (1999×1999), istock needs at least 4.0 MP", id="3.996 vs 4"),
        pytest.param(2040, 1530, 4.0, "3.1 MP (2040×1530), istock needs at least 4.0 MP", id="far below"),
        pytest.param(
            2400, 1599, 3.84, "3.838 MP (2400×1599), istock needs at least 3.84 MP", id="3.8376 is not 3.84"
        ),
        pytest.param(2980, 1996, 5.95, "5.948 MP (2980×1996), istock needs at least 5.95 MP", id="5.94808"),
    ],
)
def test_too_few_megapixels_print_a_number_below_the_minimum(width, height, minimum, reason):
    text = one_reason(width, height, min_megapixels=minimum)
    assert reason in text
    shown, needed = re.match(r"([\d.]+) MP .*needs at least ([\d.]+) MP", text).groups()  # type: ignore[union-attr]
    assert float(shown) < float(needed) and float(shown) > 0


def test_an_unknown_pixel_size_names_the_minimum_as_configured():
    assert one_reason(None, None, min_megapixels=1.92) == "pixel size unknown, istock needs at least 1.92 MP"
    assert one_reason(None, None, min_megapixels=4) == "pixel size unknown, istock needs at least 4.0 MP"


@pytest.mark.parametrize(
    ("size_bytes", "cap", "reason"),
    [
        (52_300_000, 45, "52.3 MB, istock takes at most 45 MB"),
        (45_040_000, 45, "45.04 MB, istock takes at most 45 MB"),
        (45_000_001, 45, "45.000001 MB, istock takes at most 45 MB"),
        (30_050_000, 30.05 - 0.01, "30.05 MB, istock takes at most 30.04 MB"),
    ],
)
def test_a_file_over_max_file_mb_prints_a_size_above_the_cap(size_bytes, cap, reason):
    # Without pixel facts (an unreadable header) planning checks the file size itself.
    assert one_reason(6000, 4000, size_bytes, max_file_mb=cap) == reason


@pytest.mark.parametrize(
    ("size_bytes", "cap", "change"),
    [
        (52_100_000, 45, "re-encode to fit 45 MB (source 52.1 MB)"),
        (45_040_000, 45, "re-encode to fit 45 MB (source 45.04 MB)"),
        (45_040_000, 45.5, None),  # fits: no copy
        (46_000_000, 45.5, "re-encode to fit 45.5 MB (source 46.0 MB)"),
    ],
)
def test_re_encoding_to_fit_max_file_mb_prints_a_source_size_above_the_cap(size_bytes, cap, change):
    plan = plan_render("adobe", props(6000, 4000), "jpeg", size_bytes, RulesConfig(max_file_mb=cap))
    assert plan.changes == ((change,) if change else ())


def test_a_tiff_that_cannot_be_converted_prints_its_size_above_the_cap():
    plan = plan_render("adobe", props(6000, 4000), "tiff", 45_040_000, RulesConfig(max_file_mb=45))
    assert plan.reject == (
        'TIFF file is 45.04 MB, over 45 MB, and stockbridge makes only JPEG copies (set convert_to = "jpeg")',
    )


@pytest.mark.parametrize(
    ("size", "cap", "text"),
    [
        ((8256, 5504), 45, "downscale 8256×5504 → 8216×5477 (45 MP cap)"),
        ((6001, 7500), 45, "(45 MP cap)"),  # 45.0075 MP: just over
        ((9000, 6000), 45.5, "(45.5 MP cap)"),  # not "46 MP cap" nor "45.5000"
        ((8256, 5504), 45.25, "(45.25 MP cap)"),
    ],
)
def test_downscaling_to_max_megapixels_names_the_cap_as_configured(size, cap, text):
    plan = plan_render("adobe", props(*size), "jpeg", 10_000_000, RulesConfig(max_megapixels=cap))
    (change,) = plan.changes
    assert text in change
    assert plan.spec is not None and plan.spec.size is not None
    width, height = plan.spec.size
    assert width * height <= cap * 1_000_000


def test_an_image_over_what_stockbridge_opens_prints_a_number_above_the_limit():
    assert _too_many(MAX_PIXELS + 400_000) == "300.4 MP is more than stockbridge opens (300 MP)"
    assert _too_many(450_000_000) == "450 MP is more than stockbridge opens (300 MP)"


@pytest.mark.parametrize("limit", [1.92, 2.0, 3.84, 4.0, 5.95, 45, 45.5, 100])
def test_no_size_near_a_limit_prints_as_the_limit(limit):
    # Every pixel count (or byte count) within a few thousand of the limit, either side.
    exact = round(limit * 1_000_000)
    for count in range(exact - 3000, exact + 3000, 7):
        if count == exact:
            continue
        shown, printed_limit = against(count / 1_000_000, limit)
        assert printed_limit == limit_text(limit)
        if count < exact:
            assert float(shown) < float(printed_limit), (count, shown, printed_limit)
        else:
            assert float(shown) > float(printed_limit), (count, shown, printed_limit)
