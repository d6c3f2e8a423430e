"""render: derived copies made with Pillow and LittleCMS, metadata carried over by real ExifTool.

Images are generated here; the ICC profiles too (ImageCms builds only sRGB, Lab and XYZ): an Adobe
RGB (1998)-compatible matrix/TRC profile with Adobe's published colorants, and a CMYK → Lab
lookup-table profile of a simple "press". Expected colours are computed independently of LittleCMS.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageStat

from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.images import RenderError, RenderSpec, fit_size, render
from stockbridge.render.pixels import image_props
from tests.images import MakeImage, require_exiftool

# ---------------------------------------------------------------------- ICC profiles for the tests

D50 = (0.9642, 1.0, 0.8249)
#: Colorants of Adobe's AdobeRGB1998.icc (primaries adapted to D50; each column sums to D50).
ADOBE_RGB_COLORANTS = ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457))
ADOBE_RGB_GAMMA = 563 / 256  # 2.19921875: the curv tag's u8Fixed8 value
#: Colorants of LittleCMS's built-in sRGB (ImageCms.createProfile("sRGB"), read with exiftool).
SRGB_COLORANTS = ((0.43604, 0.22249, 0.01392), (0.38512, 0.71690, 0.09706), (0.14305, 0.06061, 0.71391))


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _desc(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (
        b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    )


def _profile(device_class: bytes, colour_space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v2.1 profile: 128-byte header, tag table, tags (ICC.1:2001-04 §6)."""
    table = bytearray(struct.pack(">I", len(tags)))
    body = bytearray()
    start = 128 + 4 + 12 * len(tags)
    for signature, data in tags:
        body += b"\0" * (-(start + len(body)) % 4)
        table += signature + struct.pack(">II", start + len(body), len(data))
        body += data
    header = (
        struct.pack(">I", 128 + len(table) + len(body))
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + device_class
        + colour_space
        + pcs
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + _s15(D50[0])
        + _s15(D50[1])
        + _s15(D50[2])
        + b"\0" * 48
    )
    return header + bytes(table) + bytes(body)


def adobe_rgb_profile() -> bytes:
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 563) + b"\0\0"
    red, green, blue = ADOBE_RGB_COLORANTS
    return _profile(
        b"mntr",
        b"RGB ",
        b"XYZ ",
        [
            (b"desc", _desc("Adobe RGB (1998)")),
            (b"wtpt", _xyz(*D50)),
            (b"rXYZ", _xyz(*red)),
            (b"gXYZ", _xyz(*green)),
            (b"bXYZ", _xyz(*blue)),
            (b"rTRC", curve),
            (b"gTRC", curve),
            (b"bTRC", curve),
        ],
    )


def naive_press(c: float, m: float, y: float, k: float) -> tuple[float, float, float]:
    """The test press: the sRGB colour printed by C, M, Y, K (0..1)."""
    return (1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)


def cmyk_profile(press: Callable[[float, float, float, float], tuple[float, float, float]]) -> bytes:
    """CMYK → Lab profile: an A2B0 lut16 holding ``press`` at 6 nodes per ink (8-bit 0, 51, ... 255)."""
    grid = 6
    steps = [index / (grid - 1) for index in range(grid)]
    clut = bytearray()
    for c in steps:
        for m in steps:
            for y in steps:
                for k in steps:
                    lightness, a, b = srgb_to_lab(press(c, m, y, k))
                    # lut16 Lab (ICC v2): L 0..100 → 0..0xFF00; a, b -128..128 → 0..0xFFFF
                    clut += struct.pack(
                        ">3H", round(lightness / 100 * 0xFF00), round((a + 128) * 256), round((b + 128) * 256)
                    )
    identity = struct.pack(">2H", 0, 0xFFFF)
    lut = (
        b"mft2\0\0\0\0"
        + struct.pack(">4B", 4, 3, grid, 0)
        + b"".join(_s15(value) for value in (1, 0, 0, 0, 1, 0, 0, 0, 1))
        + struct.pack(">2H", 2, 2)
        + identity * 4
        + bytes(clut)
        + identity * 3
    )
    return _profile(
        b"prtr",
        b"CMYK",
        b"Lab ",
        [(b"desc", _desc("Test press CMYK")), (b"wtpt", _xyz(*D50)), (b"A2B0", lut)],
    )


def srgb_to_lab(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    xyz = [sum(linear[i] * SRGB_COLORANTS[i][k] for i in range(3)) for k in range(3)]

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    fx, fy, fz = (f(xyz[k] / D50[k]) for k in range(3))
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def adobe_rgb_to_srgb(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """Adobe RGB (0..1) → 8-bit sRGB through XYZ (D50), by the book, without LittleCMS."""
    linear = [channel**ADOBE_RGB_GAMMA for channel in rgb]
    xyz = [sum(linear[i] * ADOBE_RGB_COLORANTS[i][k] for i in range(3)) for k in range(3)]
    srgb_linear = _solve(SRGB_COLORANTS, xyz)
    return tuple(  # type: ignore[return-value]
        255 * (12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055) for v in srgb_linear
    )


def _solve(columns: tuple[tuple[float, float, float], ...], xyz: list[float]) -> list[float]:
    """x with sum(x[i] * columns[i]) == xyz (Cramer's rule)."""

    def det(a: list[list[float]]) -> float:
        return (
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        )

    matrix = [[columns[i][k] for i in range(3)] for k in range(3)]
    whole = det(matrix)
    result = []
    for index in range(3):
        replaced = [row[:] for row in matrix]
        for k in range(3):
            replaced[k][index] = xyz[k]
        result.append(det(replaced) / whole)
    return result


def write_rgb16_tiff(
    path: Path, width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]], icc: bytes
) -> None:
    """An uncompressed 16-bit RGB TIFF with an ICC profile (Pillow cannot write 16-bit RGB)."""
    strip = b"".join(struct.pack("<3H", *pixel(x, y)) for y in range(height) for x in range(width))
    entries = [  # (tag, type, count, value): SHORT 3, LONG 4, UNDEFINED 7
        (256, 4, 1, struct.pack("<I", width)),
        (257, 4, 1, struct.pack("<I", height)),
        (258, 3, 3, struct.pack("<3H", 16, 16, 16)),
        (259, 3, 1, struct.pack("<H", 1)),
        (262, 3, 1, struct.pack("<H", 2)),
        (273, 4, 1, b""),  # StripOffsets: filled in below
        (277, 3, 1, struct.pack("<H", 3)),
        (278, 4, 1, struct.pack("<I", height)),
        (279, 4, 1, struct.pack("<I", len(strip))),
        (284, 3, 1, struct.pack("<H", 1)),
        (34675, 7, len(icc), icc),
    ]
    extra_start = 8 + 2 + 12 * len(entries) + 4
    extra = bytearray()
    offsets = {}
    for tag, _, _, value in entries:
        if len(value) > 4:
            offsets[tag] = extra_start + len(extra)
            extra += value + b"\0" * (len(value) % 2)
    strip_offset = extra_start + len(extra)
    ifd = bytearray(struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = struct.pack("<I", strip_offset)
        elif tag in offsets:
            value = struct.pack("<I", offsets[tag])
        ifd += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
    ifd += b"\0\0\0\0"
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd + extra + strip)


# ---------------------------------------------------------------------- helpers


def exiftool_json(path: Path, *options: str) -> dict[str, object]:
    output = subprocess.run(
        [require_exiftool(), "-j", "-G1", *options, str(path)], capture_output=True, check=True, text=True
    ).stdout
    return json.loads(output)[0]


def tag_with_exiftool(path: Path, *assignments: str) -> None:
    subprocess.run(
        [require_exiftool(), "-q", "-overwrite_original", "-charset", "iptc=UTF8", *assignments, str(path)],
        check=True,
    )


def mean(image: Image.Image, box: tuple[int, int, int, int]) -> list[float]:
    return ImageStat.Stat(image.crop(box)).mean


def profile_description(path: Path) -> str:
    with Image.open(path) as image:
        icc = image.info.get("icc_profile")
    assert icc, f"{path.name} carries no ICC profile"
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spec(**overrides: object) -> RenderSpec:
    values: dict[str, object] = {
        "output_format": "jpeg",
        "size": None,
        "to_srgb": True,
        "jpeg_quality": 92,
        "max_file_bytes": None,
    }
    values.update(overrides)
    return RenderSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    return directory


def leftovers(*folders: Path) -> list[str]:
    return [
        path.name
        for folder in folders
        for path in folder.iterdir()
        if "_original" in path.name or "exiftool_tmp" in path.name or ".render" in path.name
    ]


# ---------------------------------------------------------------------- colour


def test_a_photoshop_cmyk_jpeg_becomes_an_srgb_jpeg_of_the_same_colour(
    tmp_path: Path, state: Path, exiftool: ExifTool
):
    source = tmp_path / "cmyk.jpg"
    image = Image.new("CMYK", (400, 200), (0, 0, 0, 0))  # paper white on the right
    image.paste((0, 153, 204, 51), (0, 0, 200, 200))  # orange ink: C0 M60 Y80 K20
    # Pillow writes CMYK JPEGs the way Photoshop does: inverted, with an Adobe APP14 marker.
    image.save(source, "JPEG", quality=95, icc_profile=cmyk_profile(naive_press))
    assert b"Adobe" in source.read_bytes()[:200]

    result = render(source, state / "copy.jpg", spec(), exiftool)

    with Image.open(state / "copy.jpg") as copy:
        assert copy.mode == "RGB" and copy.format == "JPEG"
        orange, paper = mean(copy, (40, 40, 160, 160)), mean(copy, (240, 40, 360, 160))
    expected = [255 * channel for channel in naive_press(0, 0.6, 0.8, 0.2)]  # (204, 81.6, 40.8)
    assert all(abs(got - want) <= 4 for got, want in zip(orange, expected, strict=True)), orange
    assert all(channel >= 250 for channel in paper), paper
    assert "sRGB" in profile_description(state / "copy.jpg")
    assert (result.width, result.height) == (400, 200)


def test_a_16_bit_adobe_rgb_tiff_becomes_an_8_bit_srgb_jpeg_with_the_right_values(
    tmp_path: Path, state: Path, exiftool: ExifTool
):
    source = tmp_path / "adobe16.tif"
    colour = (0.55, 0.40, 0.25)  # a skin tone, inside sRGB's gamut

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        if x < 64:
            return tuple(round(channel * 65535) for channel in colour)  # type: ignore[return-value]
        return (32768, 32768, 32768) if y < 64 else (65535, 65535, 65535)

    write_rgb16_tiff(source, 128, 128, pixel, adobe_rgb_profile())
    props = image_props(source, "tiff")
    assert (props.bits, props.icc_description, props.is_srgb) == (16, "Adobe RGB (1998)", False)

    started = time.perf_counter()
    render(source, state / "copy.jpg", spec(), exiftool)
    print(f"16-bit TIFF 128×128 → sRGB JPEG: {time.perf_counter() - started:.3f} s")

    with Image.open(state / "copy.jpg") as copy:
        skin, grey, white = (
            mean(copy, (8, 8, 56, 120)),
            mean(copy, (72, 8, 120, 56)),
            mean(copy, (72, 72, 120, 120)),
        )
    expected = adobe_rgb_to_srgb(colour)
    assert all(abs(got - want) <= 3 for got, want in zip(skin, expected, strict=True)), (skin, expected)
    # Mid grey stays mid grey (scaled from 16 bits, not clipped to white), white stays white.
    assert all(abs(channel - 128) <= 3 for channel in grey), grey
    assert all(channel >= 253 for channel in white), white
    assert "sRGB" in profile_description(state / "copy.jpg")
    assert exiftool_json(state / "copy.jpg", "-n", "-File:BitsPerSample")["File:BitsPerSample"] == 8


def test_16_bit_grey_is_scaled_to_8_bits_not_clipped_to_white(
    tmp_path: Path, state: Path, exiftool: ExifTool
):
    source = tmp_path / "grey16.tif"
    gradient = Image.new("I;16", (256, 16))
    gradient.putdata([x * 257 for _ in range(16) for x in range(256)])
    gradient.save(source, "TIFF")

    render(source, state / "copy.jpg", spec(to_srgb=False), exiftool)

    with Image.open(state / "copy.jpg") as copy:
        low, high = copy.convert("L").getextrema()
        middle = mean(copy, (120, 4, 136, 12))
    assert low <= 5 and high >= 250
    assert all(abs(channel - 127.5) <= 3 for channel in middle), middle


def test_a_png_with_transparency_is_flattened_on_white(tmp_path: Path, state: Path, exiftool: ExifTool):
    source = tmp_path / "cutout.png"
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))  # transparent black: must not turn black
    image.paste((20, 60, 200, 255), (100, 0, 200, 100))
    image.save(source, "PNG")

    render(source, state / "copy.jpg", spec(to_srgb=False), exiftool)

    with Image.open(state / "copy.jpg") as copy:
        assert copy.mode == "RGB"
        background, blue = mean(copy, (10, 10, 90, 90)), mean(copy, (110, 10, 190, 90))
    assert all(channel >= 252 for channel in background), background
    assert all(abs(got - want) <= 3 for got, want in zip(blue, (20, 60, 200), strict=True)), blue


# ---------------------------------------------------------------------- orientation and size


def test_a_rotated_photo_comes_out_upright_with_orientation_1(
    tmp_path: Path, state: Path, exiftool: ExifTool
):
    source = tmp_path / "rotated.jpg"
    image = Image.new("RGB", (600, 400), (240, 240, 240))
    image.paste((220, 20, 20), (0, 0, 150, 100))  # a red mark in the stored top-left corner
    image.save(source, "JPEG", quality=95)
    tag_with_exiftool(
        source, "-IFD0:Orientation#=6", "-XMP-tiff:Orientation#=6"
    )  # shown turned 90° clockwise

    result = render(source, state / "copy.jpg", spec(size=(200, 300), to_srgb=False), exiftool)

    assert (result.width, result.height) == (200, 300)
    with Image.open(state / "copy.jpg") as copy:
        assert copy.size == (200, 300)
        # Turned clockwise, the stored top-left corner is at the top right.
        assert mean(copy, (160, 5, 195, 40))[0] > 180 and mean(copy, (5, 5, 40, 40))[0] > 200
        assert mean(copy, (160, 5, 195, 40))[1] < 80
    tags = exiftool_json(state / "copy.jpg", "-n", "-IFD0:Orientation", "-XMP-tiff:Orientation")
    assert tags["IFD0:Orientation"] == 1 and tags["XMP-tiff:Orientation"] == 1


@pytest.fixture(scope="module")
def photo_24mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stockbridge.demo.samples import draw_image

    path = tmp_path_factory.mktemp("big") / "24mp.jpg"
    draw_image(6000, 4000, seed=7).save(path, "JPEG", quality=90)
    return path


def test_a_24_mp_photo_is_downscaled_to_exactly_the_12_mp_cap(
    photo_24mp: Path, state: Path, exiftool: ExifTool
):
    size = fit_size((6000, 4000), 12_000_000, None)
    assert size == (4242, 2828)

    started = time.perf_counter()
    result = render(photo_24mp, state / "copy.jpg", spec(size=size, to_srgb=False), exiftool)
    print(f"24 MP JPEG → 12 MP: {time.perf_counter() - started:.2f} s")

    assert (result.width, result.height) == size and result.width * result.height <= 12_000_000
    with Image.open(state / "copy.jpg") as copy:
        assert copy.size == size
    assert "sRGB" in profile_description(state / "copy.jpg")  # untagged RGB is sRGB, and now says so


def test_a_large_reduction_decodes_at_reduced_scale_and_still_hits_the_exact_size(
    photo_24mp: Path, state: Path, exiftool: ExifTool
):
    started = time.perf_counter()
    result = render(photo_24mp, state / "small.jpg", spec(size=(1500, 1000), to_srgb=False), exiftool)
    print(f"24 MP JPEG → 1500×1000 with draft: {time.perf_counter() - started:.2f} s")
    with Image.open(state / "small.jpg") as copy:
        assert copy.size == (1500, 1000) == (result.width, result.height)


def test_a_downscale_has_exactly_the_pixels_of_one_lanczos_resize(
    make_image: MakeImage, state: Path, exiftool: ExifTool
):
    # render resizes in two calls (so a 100 MP source can be freed half-way); the pixels must be
    # those of Pillow's one-call LANCZOS resize, encoded the same way.
    source = make_image("wide.png", width=900, height=600, fmt="png")
    render(source, state / "copy.jpg", spec(size=(611, 407), to_srgb=False), exiftool)
    with Image.open(source) as image:
        image.convert("RGB").resize((611, 407), Image.Resampling.LANCZOS).save(
            state / "reference.jpg", "JPEG", quality=92, subsampling="4:4:4", optimize=True
        )
    with Image.open(state / "copy.jpg") as copy, Image.open(state / "reference.jpg") as reference:
        assert copy.tobytes() == reference.tobytes()


def test_a_copy_too_large_to_optimise_in_memory_keeps_its_pixels_and_is_only_larger(
    make_image: MakeImage, state: Path, exiftool: ExifTool, monkeypatch: pytest.MonkeyPatch
):
    source = make_image("photo.jpg", width=800, height=600)
    render(source, state / "optimised.jpg", spec(to_srgb=False), exiftool)
    # As if the copy were 100 MP: libjpeg's whole-image Huffman pass would need 600 MB.
    monkeypatch.setattr("stockbridge.render.images.OPTIMIZE_MAX_COEFFICIENT_BYTES", 800 * 600 * 6 - 1)
    result = render(source, state / "streamed.jpg", spec(to_srgb=False), exiftool)

    with Image.open(state / "optimised.jpg") as optimised, Image.open(state / "streamed.jpg") as streamed:
        assert streamed.tobytes() == optimised.tobytes()
    assert result.size_bytes == (state / "streamed.jpg").stat().st_size
    assert (state / "optimised.jpg").stat().st_size < result.size_bytes


# ---------------------------------------------------------------------- file size


def test_a_file_size_cap_is_met_by_stepping_the_quality_down(
    make_image: MakeImage, state: Path, exiftool: ExifTool
):
    source = make_image("noisy.jpg", width=1600, height=1200, quality=95)
    unlimited = render(source, state / "full.jpg", spec(to_srgb=False), exiftool)
    cap = int(unlimited.size_bytes * 0.6)

    started = time.perf_counter()
    result = render(source, state / "fitted.jpg", spec(to_srgb=False, max_file_bytes=cap), exiftool)
    print(f"ladder to 60 % of the q92 size: {time.perf_counter() - started:.2f} s, q{result.quality}")

    assert (state / "fitted.jpg").stat().st_size == result.size_bytes <= cap
    assert result.quality < 92
    assert any(f"quality 92 → {result.quality}" in note for note in result.notes)
    # The metadata counts too: it is still there, within the cap.
    assert exiftool_json(state / "fitted.jpg")["XMP-dc:Title"] == "Test image"


def test_a_cap_no_quality_can_meet_takes_fewer_pixels(make_image: MakeImage, state: Path, exiftool: ExifTool):
    source = make_image("noisy.jpg", width=1600, height=1200, quality=95)
    at_floor = render(source, state / "q70.jpg", spec(to_srgb=False, jpeg_quality=70), exiftool)
    cap = int(at_floor.size_bytes * 0.8)

    result = render(source, state / "fitted.jpg", spec(to_srgb=False, max_file_bytes=cap), exiftool)

    assert result.size_bytes <= cap and result.quality == 70
    assert result.width * result.height < 1600 * 1200 and abs(result.width / result.height - 4 / 3) < 0.01


def test_an_impossible_cap_fails_with_the_numbers_and_leaves_nothing_behind(
    make_image: MakeImage, tmp_path: Path, state: Path, exiftool: ExifTool
):
    source = make_image("noisy.jpg", width=1600, height=1200, quality=95)
    with pytest.raises(RenderError) as failure:
        render(
            source,
            state / "copy.jpg",
            spec(to_srgb=False, max_file_bytes=50_000, min_pixels=1_500_000),
            exiftool,
        )
    message = str(failure.value)
    assert message.startswith("cannot fit 0.05 MB: ") and "even at quality 70 and " in message
    assert not (state / "copy.jpg").exists()
    assert list(state.iterdir()) == []


# ---------------------------------------------------------------------- metadata


def test_every_metadata_field_is_carried_over_and_the_source_is_untouched(
    make_image: MakeImage, tmp_path: Path, state: Path, exiftool: ExifTool
):
    keywords = ["Zürich", "東京", "Ελλάδα", "naïve café", "sunset"]
    source = make_image(
        "tagged.jpg",
        width=1200,
        height=800,
        title="Über den Dächern",
        description="Blick auf 東京",
        keywords=keywords,
    )
    tag_with_exiftool(
        source,
        "-EXIF:Artist=Jürgen Photographer",
        "-EXIF:Copyright=© 2024 Jürgen",
        "-GPSLatitude=47.3769",
        "-GPSLatitudeRef=N",
        "-GPSLongitude=8.5417",
        "-GPSLongitudeRef=E",
        "-ExifIFD:DateTimeOriginal=2024:05:06 07:08:09",
        "-ExifIFD:ExifImageWidth=1200",
        "-ExifIFD:ExifImageHeight=800",
        "-XMP-photoshop:Headline=Rooftops",
    )
    before = digest(source)

    render(source, state / "copy.jpg", spec(size=(600, 400), to_srgb=False), exiftool)

    assert digest(source) == before
    original, copy = exiftool_json(source), exiftool_json(state / "copy.jpg")
    carried = (
        "XMP-dc:",
        "XMP-photoshop:Headline",
        "IPTC:",
        "IFD0:Artist",
        "IFD0:Copyright",
        "GPS:",
        "ExifIFD:DateTimeOriginal",
    )
    expected = {tag: value for tag, value in original.items() if tag.startswith(carried)}
    assert len(expected) >= 12
    assert {tag: copy.get(tag) for tag in expected} == expected
    assert copy["IPTC:Keywords"] == keywords and copy["XMP-dc:Subject"] == keywords
    assert copy["IPTC:CodedCharacterSet"] == "UTF8"
    # The size tags describe the copy, not the source.
    assert (copy["ExifIFD:ExifImageWidth"], copy["ExifIFD:ExifImageHeight"]) == (600, 400)
    assert leftovers(tmp_path, state) == []


def test_a_tiff_converted_to_jpeg_keeps_its_title_and_keywords_and_gets_an_srgb_profile(
    tmp_path: Path, state: Path, exiftool: ExifTool
):
    source = tmp_path / "adobe16.tif"
    write_rgb16_tiff(source, 64, 48, lambda x, y: (x * 1000, y * 1300, 30000), adobe_rgb_profile())
    tag_with_exiftool(
        source,
        "-XMP-dc:Title=Fjord at dawn",
        "-IPTC:CodedCharacterSet=UTF8",
        "-IPTC:Keywords=fjord",
        "-IPTC:Keywords=Ålesund",
        "-XMP-photoshop:ICCProfileName=Adobe RGB (1998)",
        "-XMP-tiff:BitsPerSample=16 16 16",
    )
    before = digest(source)

    render(source, state / "copy.jpg", spec(), exiftool)

    copy = exiftool_json(state / "copy.jpg")
    assert copy["XMP-dc:Title"] == "Fjord at dawn"
    assert copy["IPTC:Keywords"] == ["fjord", "Ålesund"]
    assert copy["File:FileType"] == "JPEG"
    assert str(copy["ICC_Profile:ProfileDescription"]).startswith("sRGB")
    assert str(copy["XMP-photoshop:ICCProfileName"]).startswith("sRGB")  # not the stale "Adobe RGB (1998)"
    assert "XMP-tiff:BitsPerSample" not in copy
    assert digest(source) == before
    assert leftovers(tmp_path, state) == []


def test_rendering_onto_the_source_itself_is_refused(make_image: MakeImage, exiftool: ExifTool):
    source = make_image("photo.jpg")
    before = digest(source)
    with pytest.raises(RenderError):
        render(source, source, spec(), exiftool)
    assert digest(source) == before


# ---------------------------------------------------------------------- image_props


def test_image_props_reads_the_header_without_decoding(tmp_path: Path, exiftool: ExifTool):
    rotated = tmp_path / "rotated.jpg"
    Image.new("RGB", (600, 400)).save(rotated, "JPEG")
    tag_with_exiftool(rotated, "-IFD0:Orientation#=6")
    props = image_props(rotated, "jpeg")
    assert (props.width, props.height, props.display_size, props.orientation) == (600, 400, (400, 600), 6)
    assert props.is_srgb and props.icc_description is None and props.bits == 8

    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (10, 10)).save(cmyk, "JPEG")
    assert image_props(cmyk, "jpeg").is_srgb is False  # CMYK is never sRGB, profile or not

    deep = tmp_path / "deep.png"
    Image.new("I;16", (10, 10)).save(deep, "PNG")
    assert image_props(deep, "png").bits == 16

    alpha = tmp_path / "alpha.png"
    Image.new("RGBA", (10, 10)).save(alpha, "PNG")
    assert image_props(alpha, "png").has_alpha


def test_image_props_refuses_a_file_that_is_not_what_it_claims(tmp_path: Path):
    from stockbridge.errors import InputError

    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="cannot read the image header"):
        image_props(fake, "jpeg")


_FAULTS_CHILD = r"""
import contextlib, resource, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from stockbridge.config.loading import load_config
from stockbridge.delivery.prepare import open_pipeline
from stockbridge.render.images import RenderSpec, render

class NoMetadata:
    def copy_metadata(self, source, target):
        return ()

mode, sources, out, config = sys.argv[1], sorted(Path(sys.argv[2]).glob("*.jpg")), Path(sys.argv[3]), sys.argv[4]
spec = RenderSpec(output_format="jpeg", size=(2500, 1667), to_srgb=False, jpeg_quality=92)
def one(index):
    render(sources[index % len(sources)], out / f"{index}.jpg", spec, NoMetadata())
# "service": inside the same set-up `once` and `run` use, so the test fails if they stop tuning.
with open_pipeline(load_config(Path(config))) if mode == "service" else contextlib.nullcontext():
    with ThreadPoolExecutor(2) as pool:  # renders only in worker threads, as in `once` and `run`
        list(pool.map(one, range(2)))  # imports, lazy initialisation
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        list(pool.map(one, range(8)))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_keeping_freed_image_memory_spares_most_page_faults_of_the_next_renders(tmp_path: Path) -> None:
    # Each render frees tens of MB of pixels; handed back to the kernel, the next render faults
    # every page in again (zeroed, under a lock all worker threads share): slower `once` and `run`.
    sources, out = tmp_path / "in", tmp_path / "out"
    sources.mkdir()
    out.mkdir()
    for seed in range(3):  # 24 MP, as from most cameras
        gradient = Image.linear_gradient("L").resize((6000, 4000))
        Image.merge("RGB", (gradient, gradient.rotate(90 * seed), gradient)).save(
            sources / f"{seed}.jpg", quality=90
        )
    (tmp_path / "exports").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[watch]\nfolder = "{tmp_path / "exports"}"\n\n[state]\ndir = "{tmp_path / "state"}"\n\n'
        f'[platforms.archive]\nprotocol = "folder"\npath = "{out}"\n'
    )
    faults = {}
    for mode in ("default", "service"):
        done = subprocess.run(
            [sys.executable, "-c", _FAULTS_CHILD, mode, str(sources), str(out), str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        faults[mode] = int(done.stdout.split()[-1])
    assert faults["service"] * 3 < faults["default"], faults


def test_keep_image_memory_leaves_a_malloc_setting_of_the_user_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from stockbridge.render.images import keep_image_memory

    monkeypatch.setenv("MALLOC_TOP_PAD_", "0")
    assert keep_image_memory() is False
