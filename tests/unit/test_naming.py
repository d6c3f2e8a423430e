"""Remote names: readable, safe on every server, distinct for distinct files."""

from __future__ import annotations

import pytest

from stockbridge.rules.naming import remote_name

SHA = "ab12cd34" + "0" * 56


@pytest.mark.parametrize(
    ("source", "file_type", "expected"),
    [
        ("IMG_0412.jpg", "jpeg", "IMG_0412.jpg"),
        ("IMG_0412.JPEG", "jpeg", "IMG_0412.jpg"),
        ("Zürich Sunset.jpg", "jpeg", "Zurich_Sunset.jpg"),
        ("-rf.jpg", "jpeg", "rf.jpg"),
        ("a\r\nDELE x.jpg", "jpeg", "a_DELE_x.jpg"),
        ("../../etc/passwd.jpg", "jpeg", "etc_passwd.jpg"),
        ("東京.jpg", "jpeg", "image_ab12cd340000.jpg"),
        ("scan.tiff", "tiff", "scan.tif"),
        ("photo.png", "png", "photo.png"),
        ("noext", "jpeg", "noext.jpg"),
        ("x" * 300 + ".jpg", "jpeg", "x" * 100 + ".jpg"),
    ],
)
def test_source_names_become_safe_remote_names(source, file_type, expected):
    assert remote_name(source, SHA, file_type) == expected


def test_a_different_file_of_the_same_name_gets_a_short_hash_suffix():
    assert remote_name("IMG_1.jpg", SHA, "jpeg", with_suffix=True) == "IMG_1_ab12cd34.jpg"


def test_remote_names_never_hold_characters_a_server_could_misread():
    hostile = [
        "a/b.jpg",
        "a\\b.jpg",
        "a\0b.jpg",
        " lead.jpg",
        "semi;colon.jpg",
        "quote'\".jpg",
        "-",
        "..",
        ".",
    ]
    for source in hostile:
        name = remote_name(source, SHA, "jpeg")
        assert name and not name.startswith(("-", ".")), name
        assert set(name) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."), name


def test_a_platform_file_name_rule_limits_characters_and_length():
    name = remote_name("Harbour at dawn - Lisbon (v2).jpg", SHA, "jpeg", allowed="A-Za-z0-9_", max_chars=30)
    assert name == "Harbour_at_dawn_Lisbon_v2.jpg"
    long = remote_name("A very long descriptive file name for an agency.jpg", SHA, "jpeg", max_chars=30)
    assert len(long) <= 30 and long.endswith(".jpg")
    suffixed = remote_name(
        "A very long descriptive file name.jpg", SHA, "jpeg", max_chars=30, with_suffix=True
    )
    assert len(suffixed) <= 30 and suffixed.endswith("_ab12cd34.jpg")


def test_the_hash_suffix_uses_only_characters_the_platform_allows():
    assert remote_name("IMG 1.jpg", SHA, "jpeg", allowed="A-Za-z0-9", with_suffix=True) == "IMG1ab12cd34.jpg"
