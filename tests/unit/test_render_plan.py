"""plan_render: which copy each platform needs, decided from the header alone."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from stockbridge.config.rules import RulesConfig
from stockbridge.render.images import RenderSpec, fit_size, plan_render
from tests.images import props

MB = 1_000_000


ADOBE_RGB: dict[str, Any] = {"icc_description": "Adobe RGB (1998)", "is_srgb": False}
TIFF_16_ADOBE: dict[str, Any] = {"mode": "RGB", "bits": 16, **ADOBE_RGB}
CMYK_PROFILED: dict[str, Any] = {
    "mode": "CMYK",
    "icc_description": "U.S. Web Coated (SWOP) v2",
    "is_srgb": False,
}
JPEG_ONLY: dict[str, Any] = {"formats": ["jpeg"]}
CONVERT: dict[str, Any] = {"formats": ["jpeg"], "convert_to": "jpeg"}


@pytest.mark.parametrize(
    ("image", "file_type", "size_mb", "rules"),
    [
        pytest.param(props(), "jpeg", 12.0, {}, id="no rules"),
        pytest.param(
            props(), "jpeg", 12.0, {**CONVERT, "color_space": "sRGB", "max_megapixels": 45}, id="fits"
        ),
        pytest.param(props(orientation=6), "jpeg", 12.0, {"max_megapixels": 45}, id="orientation alone"),
        pytest.param(props(**ADOBE_RGB), "jpeg", 12.0, {}, id="Adobe RGB without a colour rule"),
        pytest.param(props(**CMYK_PROFILED), "jpeg", 12.0, JPEG_ONLY, id="CMYK without rules"),
        pytest.param(
            props(**TIFF_16_ADOBE), "tiff", 140.0, {"formats": ["tiff"]}, id="16-bit TIFF taken as is"
        ),
        pytest.param(
            props(mode="RGBA", has_alpha=True), "png", 20.0, {"formats": ["png"]}, id="PNG with alpha"
        ),
        pytest.param(
            props(3000, 2000), "jpeg", 5.0, {"max_megapixels": 45, "max_long_edge": 8000}, id="small"
        ),
    ],
)
def test_a_file_that_already_fits_is_sent_byte_identical(image, file_type, size_mb, rules):
    plan = plan_render("adobe", image, file_type, int(size_mb * MB), RulesConfig(**rules))
    assert plan.spec is None
    assert plan.changes == ()
    assert plan.reject == ()


def test_too_many_megapixels_are_downscaled_to_the_largest_size_under_the_cap():
    plan = plan_render("adobe", props(8256, 5504), "jpeg", 30 * MB, RulesConfig(max_megapixels=45))
    assert plan.spec is not None and plan.spec.size == (8216, 5477)
    assert 8216 * 5477 <= 45 * MB < 8217 * 5478  # 8217 wide would need 5478 high (5477.99)
    assert plan.changes == ("downscale 8256×5504 → 8216×5477 (45 MP cap)",)
    assert plan.spec.output_format == "jpeg" and plan.spec.jpeg_quality == 92 and not plan.spec.to_srgb


def test_a_long_edge_cap_keeps_the_aspect_ratio():
    plan = plan_render("pond", props(6000, 4000), "jpeg", 12 * MB, RulesConfig(max_long_edge=5000))
    assert plan.spec is not None and plan.spec.size == (5000, 3333)
    assert plan.changes == ("downscale 6000×4000 → 5000×3333 (5000 px long edge cap)",)


def test_a_rotated_portrait_is_capped_on_its_upright_size_and_turned_upright():
    image = props(6000, 4000, orientation=6)  # stored landscape, shown portrait
    plan = plan_render("pond", image, "jpeg", 12 * MB, RulesConfig(max_long_edge=3000))
    assert plan.spec is not None and plan.spec.size == (2000, 3000)
    assert plan.changes == (
        "downscale 4000×6000 → 2000×3000 (3000 px long edge cap)",
        "rotate upright (EXIF orientation 6)",
    )


def test_both_caps_are_met_and_both_named_when_both_are_exceeded():
    plan = plan_render(
        "agency", props(10000, 5000), "jpeg", 30 * MB, RulesConfig(max_megapixels=40, max_long_edge=8000)
    )
    assert plan.spec is not None and plan.spec.size is not None
    width, height = plan.spec.size
    assert width <= 8000 and width * height <= 40 * MB
    assert plan.changes[0].endswith("(40 MP cap, 8000 px long edge cap)")


@pytest.mark.parametrize("seed", range(5))
def test_fitted_sizes_never_exceed_a_cap_nor_upscale_and_are_the_largest_that_fit(seed: int):
    rng = random.Random(seed)
    for _ in range(400):
        width, height = rng.randint(100, 12000), rng.randint(100, 12000)
        max_pixels = rng.choice([None, rng.randint(1, 100) * MB])
        max_edge = rng.choice([None, rng.randint(100, 12000)])
        size = fit_size((width, height), max_pixels, max_edge)
        if size is None:
            assert (max_pixels is None or width * height <= max_pixels) and (
                max_edge is None or max(width, height) <= max_edge
            )
            continue
        new_width, new_height = size
        long_edge, short_edge = max(size), min(size)
        assert new_width <= width and new_height <= height
        assert max_pixels is None or new_width * new_height <= max_pixels
        assert max_edge is None or long_edge <= max_edge
        # The aspect ratio holds to within rounding of the short edge (half up).
        assert abs(short_edge - long_edge * min(width, height) / max(width, height)) <= 0.5
        # One pixel more on the long edge would break a cap (the result is the largest).
        bigger = long_edge + 1
        bigger_short = (2 * bigger * min(width, height) + max(width, height)) // (2 * max(width, height))
        assert (
            bigger > max(width, height)
            or (max_edge is not None and bigger > max_edge)
            or (max_pixels is not None and bigger * bigger_short > max_pixels)
        )


@pytest.mark.parametrize(
    ("image", "file_type", "rules", "change", "to_srgb"),
    [
        pytest.param(props(), "png", CONVERT, "convert PNG → JPEG q92", False, id="PNG"),
        pytest.param(
            props(mode="RGBA", has_alpha=True),
            "png",
            CONVERT,
            "convert PNG with transparency (flattened on white) → JPEG q92",
            False,
            id="PNG with alpha",
        ),
        pytest.param(props(mode="P"), "png", CONVERT, "convert PNG palette → JPEG q92", False, id="palette"),
        pytest.param(
            props(**TIFF_16_ADOBE),
            "tiff",
            {**CONVERT, "color_space": "sRGB"},
            "convert TIFF 16-bit Adobe RGB (1998) → JPEG sRGB q92",
            True,
            id="16-bit Adobe RGB TIFF",
        ),
        pytest.param(
            props(**TIFF_16_ADOBE),
            "tiff",
            {"formats": ["tiff", "jpeg"], "convert_to": "jpeg", "jpeg_quality": 95},
            "convert TIFF 16-bit Adobe RGB (1998) → JPEG q95",
            False,
            id="16-bit TIFF on a platform taking TIFF, with convert_to",
        ),
        pytest.param(
            props(**CMYK_PROFILED),
            "jpeg",
            {"color_space": "sRGB"},
            "convert JPEG U.S. Web Coated (SWOP) v2 → JPEG sRGB q92",
            True,
            id="CMYK JPEG, sRGB wanted",
        ),
        pytest.param(
            props(**CMYK_PROFILED),
            "jpeg",
            {"convert_to": "jpeg"},
            "convert JPEG U.S. Web Coated (SWOP) v2 → JPEG sRGB q92",
            True,
            id="CMYK JPEG with convert_to",
        ),
        pytest.param(
            props(**ADOBE_RGB),
            "jpeg",
            {"color_space": "sRGB", "jpeg_quality": 90},
            "convert JPEG Adobe RGB (1998) → JPEG sRGB q90",
            True,
            id="Adobe RGB JPEG, sRGB wanted",
        ),
    ],
)
def test_files_the_platform_cannot_take_as_they_are_are_converted(image, file_type, rules, change, to_srgb):
    plan = plan_render("adobe", image, file_type, 30 * MB, RulesConfig(**rules))
    assert plan.reject == ()
    assert plan.spec is not None and plan.spec.size is None and plan.spec.to_srgb is to_srgb
    assert plan.changes == (change,)


@pytest.mark.parametrize(
    ("image", "file_type", "size_mb", "rules", "reason"),
    [
        pytest.param(
            props(),
            "tiff",
            30.0,
            JPEG_ONLY,
            'TIFF file, adobe takes only JPEG; set convert_to = "jpeg" to send a JPEG copy',
            id="TIFF without convert_to",
        ),
        pytest.param(
            props(),
            "tiff",
            30.0,
            {"formats": ["png"], "convert_to": "jpeg"},
            "TIFF file, adobe takes only PNG",
            id="convert_to on a platform that does not take JPEG",
        ),
        pytest.param(
            props(12000, 9000, **TIFF_16_ADOBE),
            "tiff",
            600.0,
            {"max_megapixels": 100},
            "TIFF file must be downscaled (12000×9000 is over the 100 MP cap), and stockbridge makes only "
            'JPEG copies (set convert_to = "jpeg")',
            id="16-bit TIFF too large, without convert_to",
        ),
        pytest.param(
            props(**TIFF_16_ADOBE),
            "tiff",
            140.0,
            {"color_space": "sRGB", "max_file_mb": 45},
            "TIFF file is Adobe RGB (1998), not sRGB and is 140.0 MB, over 45 MB, and stockbridge makes "
            'only JPEG copies (set convert_to = "jpeg")',
            id="TIFF not sRGB and over the file size cap",
        ),
        pytest.param(
            props(mode="CMYK", is_srgb=False),
            "jpeg",
            10.0,
            {"color_space": "sRGB"},
            "CMYK without an embedded ICC profile: its colours are unknown; export it with a profile, or as RGB",
            id="CMYK without a profile",
        ),
    ],
)
def test_files_no_copy_can_fix_are_rejected_with_a_reason(image, file_type, size_mb, rules, reason):
    plan = plan_render("adobe", image, file_type, int(size_mb * MB), RulesConfig(**rules))
    assert plan.spec is None
    assert plan.reject == (reason,)


def test_a_jpeg_over_the_file_size_cap_is_re_encoded_to_fit():
    plan = plan_render("adobe", props(), "jpeg", 52_100_000, RulesConfig(max_file_mb=45, min_megapixels=4))
    assert plan.spec is not None
    assert plan.spec.max_file_bytes == 45_000_000 and plan.spec.min_pixels == 4_000_000
    assert plan.spec.size is None
    assert plan.changes == ("re-encode to fit 45 MB (source 52.1 MB)",)


def test_a_copy_made_for_another_reason_still_respects_the_file_size_cap():
    plan = plan_render("adobe", props(), "png", 10 * MB, RulesConfig(**CONVERT, max_file_mb=45))
    assert plan.spec is not None and plan.spec.max_file_bytes == 45_000_000
    assert plan.changes == ("convert PNG → JPEG q92",)


def test_a_rendered_copy_is_also_turned_upright():
    plan = plan_render("adobe", props(orientation=8), "png", 10 * MB, RulesConfig(**CONVERT))
    assert plan.changes == ("convert PNG → JPEG q92", "rotate upright (EXIF orientation 8)")


def test_equal_needs_share_one_key_and_different_needs_do_not():
    rules = RulesConfig(max_megapixels=45, max_file_mb=45)
    first = plan_render("adobe", props(8256, 5504), "jpeg", 30 * MB, rules).spec
    second = plan_render("shutterstock", props(8256, 5504), "jpeg", 30 * MB, rules).spec
    assert first is not None and second is not None
    assert first.key() == second.key()
    assert len(first.key()) == 16 and int(first.key(), 16) >= 0
    assert replace(first, jpeg_quality=95).key() != first.key()
    assert replace(first, size=(8000, 5333)).key() != first.key()
    assert replace(first, to_srgb=True).key() != first.key()
    assert RenderSpec("jpeg", None, True, 92).key() == RenderSpec("jpeg", None, True, 92).key()
