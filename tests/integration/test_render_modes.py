"""Every Pillow mode stockbridge can meet, through plan_render and render to a platform that wants an
sRGB JPEG (iStock's preset: "RGB JPEG only"): an 8-bit, 3-channel JPEG of the right colours tagged
with the standard ICC v2 "sRGB IEC61966-2.1" profile, or a refusal that names the mode and says what
to do (issue 13). Files are real ones written by Pillow (or by hand, where Pillow cannot write them:
a big-endian deflate 16-bit TIFF like Pillow's own ``16bit.MM.deflate.tif``, which its wheel does
not ship). Expected colours are worked out without LittleCMS.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from stockbridge.config.rules import RulesConfig
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.images import SRGB_PROFILE, plan_render, render
from stockbridge.render.pixels import image_props
from tests.integration.test_render import exiftool_json, mean, profile_description

#: iStock's rules as far as pixels go (stockbridge/presets/istock.toml), with conversion on.
SRGB_JPEG = RulesConfig(formats=["jpeg"], convert_to="jpeg", color_space="sRGB")
WIDTH, HEIGHT = 120, 80
LEFT, RIGHT = (10, 10, 50, 70), (70, 10, 110, 70)  # the middles of the two halves
STANDARD_SRGB = "sRGB IEC61966-2.1"
WHITE = (255, 255, 255)


def halves(mode: str, left: object, right: object) -> Image.Image:
    image = Image.new(mode, (WIDTH, HEIGHT), left)  # type: ignore[arg-type]
    image.paste(right, (WIDTH // 2, 0, WIDTH, HEIGHT))  # type: ignore[arg-type]
    return image


def lab_mid_grey_in_srgb() -> float:
    """L* 50.2 (Pillow's LAB byte 128), a* = b* = 0, in 8-bit sRGB: by CIE 1976 and IEC 61966-2-1."""
    lightness = 128 / 255 * 100
    luminance = ((lightness + 16) / 116) ** 3
    return 255 * (1.055 * luminance ** (1 / 2.4) - 0.055)  # 119.4


def palette_with_transparency() -> Image.Image:
    image = Image.new("P", (WIDTH, HEIGHT), 0)
    image.putpalette([230, 120, 20, 0, 0, 0] + [0, 0, 0] * 254)
    image.paste(1, (WIDTH // 2, 0, WIDTH, HEIGHT))
    image.info["transparency"] = 1  # index 1 is fully transparent
    return image


def ycbcr() -> Image.Image:
    return halves("RGB", (200, 30, 60), (20, 180, 90)).convert("YCbCr")


def write_grey16_mm_deflate_tiff(path: Path, image: Image.Image) -> None:
    """A big-endian ("MM"), deflate-compressed 16-bit grey TIFF, as Pillow's 16bit.MM.deflate.tif is
    (Pillow writes deflate TIFFs little-endian only)."""
    width, height = image.size
    strip = zlib.compress(b"".join(struct.pack(">H", value) for value in image.get_flattened_data()))
    entries = [  # (tag, type SHORT 3 / LONG 4, value); every value fits in the entry itself
        (256, 4, width),
        (257, 4, height),
        (258, 3, 16),
        (259, 3, 8),  # Adobe deflate
        (262, 3, 1),  # BlackIsZero
        (273, 4, 0),  # StripOffsets: filled in below
        (277, 3, 1),
        (278, 4, height),
        (279, 4, len(strip)),
    ]
    strip_offset = 8 + 2 + 12 * len(entries) + 4
    ifd = bytearray(struct.pack(">H", len(entries)))
    for tag, kind, value in entries:
        value = strip_offset if tag == 273 else value
        packed = struct.pack(">HH", value, 0) if kind == 3 else struct.pack(">I", value)
        ifd += struct.pack(">HHI", tag, kind, 1) + packed
    ifd += b"\0\0\0\0"
    path.write_bytes(b"MM\0*" + struct.pack(">I", 8) + ifd + strip)


def grey16() -> Image.Image:
    # 32896 = 128 × 257: mid-grey exactly; 16448 = 64 × 257.
    return halves("I;16", 32896, 16448)


#: (id, file name, how to write it, the copy's mean colour on the left and the right, tolerance)
CONVERTED: list[tuple[str, str, Callable[[Path], None], tuple[float, ...], tuple[float, ...], float]] = [
    ("1", "bilevel.tif", lambda path: halves("1", 0, 1).save(path), (0, 0, 0), WHITE, 2),
    ("L", "grey.png", lambda path: halves("L", 128, 30).save(path), (128,) * 3, (30,) * 3, 2),
    (
        "LA transparent half on white",
        "grey-alpha.png",
        lambda path: halves("LA", (128, 255), (0, 0)).save(path),
        (128,) * 3,
        WHITE,
        2,
    ),
    (
        "P with a transparent index on white",
        "palette.png",
        lambda path: palette_with_transparency().save(path),
        (230, 120, 20),
        WHITE,
        3,
    ),
    ("I;16 PNG", "grey16.png", lambda path: grey16().save(path), (128,) * 3, (64,) * 3, 2),
    (
        "I;16B TIFF",
        "grey16-mm.tif",
        lambda path: halves("I;16B", 32896, 16448).save(path),
        (128,) * 3,
        (64,) * 3,
        2,
    ),
    (
        "I;16B deflate TIFF",
        "grey16-mm-deflate.tif",
        lambda path: write_grey16_mm_deflate_tiff(path, grey16()),
        (128,) * 3,
        (64,) * 3,
        2,
    ),
    (
        "I;16L TIFF",
        "grey16-ii.tif",
        lambda path: halves("I;16L", 32896, 16448).save(path),
        (128,) * 3,
        (64,) * 3,
        2,
    ),
    (
        "RGB",
        "rgb.tif",
        lambda path: halves("RGB", (200, 30, 60), (20, 180, 90)).save(path),
        (200, 30, 60),
        (20, 180, 90),
        3,
    ),
    (
        "RGBA half-transparent half on white",
        "rgba.png",
        lambda path: halves("RGBA", (200, 30, 60, 255), (0, 0, 255, 0)).save(path),
        (200, 30, 60),
        WHITE,
        3,
    ),
    ("YCbCr", "ycbcr.tif", lambda path: ycbcr().save(path), (200, 30, 60), (20, 180, 90), 4),
    (
        "LAB mid-grey and paper white",
        "lab.tif",
        lambda path: halves("LAB", (128, 128, 128), (255, 128, 128)).save(path),
        (lab_mid_grey_in_srgb(),) * 3,
        WHITE,
        3,
    ),
]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    return directory


def srgb_copy(source: Path, state: Path, exiftool: ExifTool, rules: RulesConfig = SRGB_JPEG) -> Path:
    file_type = {".tif": "tiff", ".png": "png", ".jpg": "jpeg"}[source.suffix]
    props = image_props(source, file_type)
    plan = plan_render("istock", props, file_type, source.stat().st_size, rules)
    assert plan.reject == () and plan.spec is not None, plan
    target = state / "copy.jpg"
    render(source, target, plan.spec, exiftool)
    return target


def assert_standard_srgb(copy: Path) -> None:
    assert profile_description(copy).startswith(STANDARD_SRGB)
    icc = exiftool_json(copy, "-ICC_Profile:ProfileVersion", "-ICC_Profile:ProfileDescription")
    assert str(icc["ICC-header:ProfileVersion"]).startswith("2."), icc  # "2.2.0"
    assert str(icc["ICC_Profile:ProfileDescription"]).startswith(STANDARD_SRGB), icc


@pytest.mark.parametrize(
    ("name", "write", "left", "right", "tolerance"),
    [pytest.param(*case[1:], id=case[0]) for case in CONVERTED],
)
def test_every_mode_becomes_an_8_bit_srgb_jpeg_of_the_right_colours(
    tmp_path: Path,
    state: Path,
    exiftool: ExifTool,
    name: str,
    write: Callable[[Path], None],
    left: tuple[float, ...],
    right: tuple[float, ...],
    tolerance: float,
):
    source = tmp_path / name
    write(source)

    copy = srgb_copy(source, state, exiftool)

    with Image.open(copy) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (WIDTH, HEIGHT))
        got_left, got_right = mean(image, LEFT), mean(image, RIGHT)
    assert all(abs(got - want) <= tolerance for got, want in zip(got_left, left, strict=True)), got_left
    assert all(abs(got - want) <= tolerance for got, want in zip(got_right, right, strict=True)), got_right
    assert_standard_srgb(copy)


def test_the_issue_13_big_endian_16_bit_tiff_is_converted_not_crashed(
    tmp_path: Path, state: Path, exiftool: ExifTool
):
    source = tmp_path / "x.tif"
    Image.new("I;16B", (2400, 2000)).save(source)  # the reproduction, as the issue gives it
    assert image_props(source, "tiff").mode == "I;16B"

    copy = srgb_copy(source, state, exiftool)

    with Image.open(copy) as image:
        assert (image.mode, image.size) == ("RGB", (2400, 2000))
        assert image.getextrema() == ((0, 0), (0, 0), (0, 0))  # black stays black


@pytest.mark.parametrize(
    ("name", "write", "says"),
    [
        pytest.param(
            "float.tif",
            lambda path: Image.new("F", (WIDTH, HEIGHT), 0.5).save(path),
            ("Pillow mode F", "floating-point", "export it as 8- or 16-bit"),
            id="F",
        ),
        pytest.param(
            "int32.tif",
            lambda path: Image.new("I", (WIDTH, HEIGHT), 1 << 20).save(path),
            ("Pillow mode I", "32-bit integer", "export it as 8- or 16-bit greyscale"),
            id="I (32-bit)",
        ),
        pytest.param(
            "cmyk.tif",
            lambda path: Image.new("CMYK", (WIDTH, HEIGHT), (0, 153, 204, 51)).save(path),
            ("CMYK without an embedded ICC profile", "export it with a profile, or as RGB"),
            id="CMYK without a profile",
        ),
    ],
)
def test_a_mode_no_copy_can_be_made_of_is_refused_naming_it_and_what_to_do(
    tmp_path: Path, name: str, write: Callable[[Path], None], says: tuple[str, ...]
):
    source = tmp_path / name
    write(source)

    props = image_props(source, "tiff")
    plan = plan_render("istock", props, "tiff", source.stat().st_size, SRGB_JPEG)

    assert plan.spec is None and len(plan.reject) == 1
    for words in says:
        assert words in plan.reject[0], plan.reject


def test_a_greyscale_jpeg_without_a_profile_goes_to_an_srgb_platform_as_three_channel_srgb(
    tmp_path: Path, state: Path, exiftool: ExifTool
):
    source = tmp_path / "grey.jpg"
    halves("L", 128, 30).save(source, quality=95)
    props = image_props(source, "jpeg")
    assert (props.mode, props.icc_description, props.is_srgb) == ("L", None, False)
    plan = plan_render("istock", props, "jpeg", source.stat().st_size, SRGB_JPEG)
    assert plan.changes == ("convert JPEG greyscale → JPEG sRGB q92",)

    copy = srgb_copy(source, state, exiftool)

    with Image.open(copy) as image:
        assert image.mode == "RGB"
        assert all(abs(channel - 128) <= 2 for channel in mean(image, LEFT))
    assert exiftool_json(copy, "-n", "-File:ColorComponents")["File:ColorComponents"] == 3
    assert_standard_srgb(copy)


def test_a_greyscale_file_keeps_one_channel_where_no_colour_space_is_asked(
    tmp_path: Path, state: Path, exiftool: ExifTool
):
    source = tmp_path / "grey.png"
    halves("L", 128, 30).save(source)

    copy = srgb_copy(source, state, exiftool, RulesConfig(formats=["jpeg"], convert_to="jpeg"))

    with Image.open(copy) as image:
        assert image.mode == "L"


def test_the_shipped_srgb_profile_is_the_standard_v2_one_and_converts_like_littlecms_srgb():
    profile = ImageCms.ImageCmsProfile(__import__("io").BytesIO(SRGB_PROFILE))
    assert ImageCms.getProfileDescription(profile).startswith(STANDARD_SRGB)
    assert profile.profile.version < 3
    assert "public domain" in profile.profile.copyright
    # The same colorants and curve as LittleCMS's built-in sRGB: converting into it changes nothing.
    ramp = Image.new("RGB", (256, 1))
    ramp.putdata([(value, 255 - value, value * 7 % 256) for value in range(256)])
    built_in = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    same = ImageCms.profileToProfile(ramp, built_in, profile, outputMode="RGB")
    assert same is not None and same.tobytes() == ramp.tobytes()
