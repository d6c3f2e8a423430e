"""Pixel checks: damaged images and decompression bombs are refused with a reason."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from stockbridge.errors import InputError
from stockbridge.render.pixels import MAX_PIXELS, check_decodable, image_props
from tests.images import unreadable_tiff


def jpeg_bytes(width: int = 320, height: int = 240) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_whole_jpeg_passes(tmp_path: Path):
    path = tmp_path / "ok.jpg"
    path.write_bytes(jpeg_bytes())
    assert check_decodable(path, "jpeg") is None


def test_a_jpeg_cut_in_its_image_data_is_damaged(tmp_path: Path):
    data = jpeg_bytes(1600, 1200)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) * 2 // 3])
    reason = check_decodable(path, "jpeg")
    assert reason is not None and "damaged or incomplete" in reason and "export it again" in reason


def test_a_png_cut_short_is_damaged(tmp_path: Path):
    buffer = io.BytesIO()
    Image.effect_noise((400, 400), 60).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[:-5000])
    assert "damaged or incomplete" in (check_decodable(path, "png") or "")


def test_a_decompression_bomb_is_refused_without_decoding_it(tmp_path: Path):
    # A tiny PNG whose header claims far more pixels than stockbridge opens.
    side = int(MAX_PIXELS**0.5) + 1000
    path = tmp_path / "bomb.png"
    Image.new("1", (side, side)).save(path, "PNG")
    assert path.stat().st_size < 5_000_000
    reason = check_decodable(path, "png")
    assert reason is not None and ("decompression bomb" in reason or "more than stockbridge opens" in reason)


def test_a_file_of_another_format_is_not_opened_as_the_claimed_one(tmp_path: Path):
    path = tmp_path / "really.png"
    Image.new("RGB", (10, 10)).save(path, "PNG")
    assert check_decodable(path, "jpeg") is not None


def test_a_reason_names_the_users_file_never_the_private_copy_in_the_state_folder(tmp_path: Path):
    # Issue 13: "cannot identify image file '…/state/objects/79/798b….tif'" reached status and the log.
    copy = tmp_path / "state" / "objects" / "79" / f"{'798b' * 16}.tif"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(unreadable_tiff())
    reason = check_decodable(copy, "tiff", name="IMG_0412.tif")
    assert (
        reason
        == "the image data is damaged or incomplete (cannot identify image file 'IMG_0412.tif'); export it again"
    )
    without_a_name = check_decodable(copy, "tiff")
    assert without_a_name is not None and "798b" not in without_a_name and "state" not in without_a_name
    with pytest.raises(InputError) as refused:
        image_props(copy, "tiff", name="IMG_0412.tif")
    assert "798b" not in refused.value.message and "'IMG_0412.tif'" in refused.value.message


def test_a_pngs_size_is_read_from_its_header_without_decoding_its_pixels(tmp_path, monkeypatch):
    # Found by the structural-check work (issue 14): getexif() on a PNG decoded every pixel, so
    # a PNG whose data is damaged lost its size, and a platform's max_long_edge planned no resize.
    from PIL import Image, PngImagePlugin

    from stockbridge.render.pixels import image_props

    path = tmp_path / "wide.png"
    Image.new("RGB", (3000, 2000), (10, 20, 30)).save(path)

    def no_decoding(self, *args, **kwargs):
        raise OSError("the pixels were decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
    props = image_props(path, "png")
    assert (props.width, props.height, props.orientation) == (3000, 2000, 1)
