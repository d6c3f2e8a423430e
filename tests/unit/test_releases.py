"""Releases, editorial files and routes: what a contributor sees held, sent, named and routed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockbridge.config.models import EditorialConfig, ReleasesConfig, RouteConfig
from stockbridge.config.rules import ReleaseRule
from stockbridge.metadata.fields import ImageMetadata
from stockbridge.rules.releases import (
    find_releases,
    is_editorial,
    is_release_file,
    missing_release_reason,
    release_needs,
    release_remote_names,
    route_platforms,
)

CONFIG = ReleasesConfig()


def meta(**fields: object) -> ImageMetadata:
    base: dict[str, object] = {
        "title": "A title",
        "description": None,
        "keywords": (),
        "width": 1200,
        "height": 900,
        "file_type": "jpeg",
    }
    base.update(fields)
    return ImageMetadata(**base)  # type: ignore[arg-type]


def touch(path: Path, content: bytes = b"release") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# ---------------------------------------------------------------------- needs


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, set()),
        ({"keywords": ("beach", "sunset")}, set()),
        # "None": people are in frame and nobody signed: a release is needed (and will be missing).
        ({"model_release_status": "MR-NON"}, {"people"}),
        ({"model_release_status": "MR-UMR"}, {"people"}),
        ({"model_release_status": "MR-LMR"}, {"people"}),
        ({"model_release_status": "MR-NAP"}, set()),
        # Printed names and full vocabulary URIs, as other tools may write them.
        ({"model_release_status": "Not Applicable"}, set()),
        ({"model_release_status": "http://ns.useplus.org/ldf/vocab/MR-NAP"}, set()),
        ({"model_release_status": "Unlimited Model Releases"}, {"people"}),
        # A status we cannot read is no proof that nobody is in frame.
        ({"model_release_status": "MR-XYZ"}, {"people"}),
        ({"model_release_status": "  "}, set()),
        ({"persons_in_image": ("Anna Berg",)}, {"people"}),
        ({"keywords": ("beach", "People")}, {"people"}),
        ({"keywords": ("MODEL",)}, {"people"}),
        ({"keywords": ("people-free",)}, set()),
        # An explicit "Not Applicable" does not outweigh a named person in frame.
        ({"model_release_status": "MR-NAP", "persons_in_image": ("Anna",)}, {"people"}),
        ({"property_release_status": "PR-NON"}, {"property"}),
        ({"property_release_status": "PR-UPR"}, {"property"}),
        ({"property_release_status": "PR-NAP"}, set()),
        ({"model_release_status": "MR-UMR", "property_release_status": "PR-LPR"}, {"people", "property"}),
    ],
)
def test_each_signal_in_the_metadata_says_which_releases_an_image_needs(fields, expected):
    assert release_needs(meta(**fields), CONFIG) == expected


def test_property_keywords_from_the_config_mean_a_property_release_is_needed():
    config = ReleasesConfig(property_keywords=["Architecture", "interior"])
    assert release_needs(meta(keywords=("city", "architecture")), config) == {"property"}
    assert release_needs(meta(keywords=("city",)), config) == set()


def test_with_no_people_keywords_configured_only_the_metadata_signals_count():
    config = ReleasesConfig(people_keywords=[])
    assert release_needs(meta(keywords=("people",)), config) == set()


# ---------------------------------------------------------------------- release files


@pytest.mark.parametrize(
    ("relative", "is_release"),
    [
        ("IMG_1.release.pdf", True),
        ("IMG_1.release.jpg", True),
        ("IMG_1_MR.jpg", True),
        ("IMG_1_MR1.jpg", True),
        ("IMG_1_MR_anna.pdf", True),
        ("IMG_1_PR.jpg", True),
        ("sub/IMG_1_PR2.pdf", True),
        ("releases/MR-77.pdf", True),
        ("releases/2024/MR-77.jpg", True),
        ("Releases/MR-77.pdf", True),
        ("IMG_1.jpg", False),
        ("sub/IMG_1.jpg", False),
        ("Trip_Prague_001.jpg", False),
        ("summer_promo.jpg", False),
        ("release.jpg", False),
        ("releases.jpg", False),
        ("my_releases/IMG_1.jpg", False),
        ("editorial/IMG_1.jpg", False),
    ],
)
def test_release_files_are_told_apart_from_photos(tmp_path, relative, is_release):
    assert is_release_file(tmp_path / relative, tmp_path, CONFIG) is is_release


def test_a_configured_sidecar_pattern_and_folder_decide_what_is_a_release(tmp_path):
    config = ReleasesConfig(sidecars=["{stem}-signed.*"], folder="docs/mr")
    assert is_release_file(tmp_path / "IMG_1-signed.pdf", tmp_path, config)
    assert is_release_file(tmp_path / "docs" / "mr" / "x.pdf", tmp_path, config)
    assert not is_release_file(tmp_path / "IMG_1_MR.jpg", tmp_path, config)
    assert not is_release_file(tmp_path / "docs" / "x.jpg", tmp_path, config)


def test_sidecars_next_to_the_image_are_found_by_kind_and_sorted(tmp_path):
    image = touch(tmp_path / "shoot" / "IMG_1.jpg", b"photo")
    for name in ("IMG_1_MR2.pdf", "IMG_1.release.pdf", "IMG_1_MR1.jpg", "IMG_1_PR.jpg"):
        touch(tmp_path / "shoot" / name)
    touch(tmp_path / "shoot" / "IMG_10_MR.jpg")  # another image's release
    touch(tmp_path / "IMG_1_MR.jpg")  # not next to the image
    touch(tmp_path / "shoot" / "IMG_1_MR3.pdf.tmp")  # still being copied

    found = find_releases(image, tmp_path, meta(), CONFIG)

    assert [path.name for path in found["people"]] == ["IMG_1.release.pdf", "IMG_1_MR1.jpg", "IMG_1_MR2.pdf"]
    assert [path.name for path in found["property"]] == ["IMG_1_PR.jpg"]


def test_releases_in_the_releases_folder_are_found_by_the_ids_written_in_the_image(tmp_path):
    image = touch(tmp_path / "IMG_1.jpg", b"photo")
    touch(tmp_path / "releases" / "MR-77.pdf")
    touch(tmp_path / "releases" / "mr-78.jpg")
    touch(tmp_path / "releases" / "MR-79.pdf")  # another model
    touch(tmp_path / "releases" / "PR-5.pdf")

    metadata = meta(model_release_ids=("MR-77", "MR-78"), property_release_ids=("PR-5",))
    found = find_releases(image, tmp_path, metadata, CONFIG)

    assert found == {
        "people": (tmp_path / "releases" / "MR-77.pdf", tmp_path / "releases" / "mr-78.jpg"),
        "property": (tmp_path / "releases" / "PR-5.pdf",),
    }


def test_an_image_without_release_ids_takes_nothing_from_the_releases_folder(tmp_path):
    image = touch(tmp_path / "IMG_1.jpg", b"photo")
    touch(tmp_path / "releases" / "MR-77.pdf")
    assert find_releases(image, tmp_path, meta(), CONFIG) == {"people": (), "property": ()}


def test_a_release_id_that_looks_like_a_path_finds_nothing_outside_the_folder(tmp_path):
    image = touch(tmp_path / "watch" / "IMG_1.jpg", b"photo")
    (tmp_path / "watch" / "releases").mkdir()
    touch(tmp_path / "secret.pdf")
    metadata = meta(model_release_ids=("../../secret", "../secret"))
    assert find_releases(image, tmp_path / "watch", metadata, CONFIG)["people"] == ()


def test_a_release_that_is_a_symlink_to_outside_the_watch_folder_is_not_taken(tmp_path):
    watch = tmp_path / "watch"
    image = touch(watch / "IMG_1.jpg", b"photo")
    outside = touch(tmp_path / "elsewhere" / "passport.pdf", b"private")
    os.symlink(outside, watch / "IMG_1_MR.pdf")
    (watch / "releases").mkdir()
    os.symlink(outside, watch / "releases" / "MR-77.pdf")
    inside = touch(watch / "archive" / "signed.pdf")
    os.symlink(inside, watch / "IMG_1_MR2.pdf")

    found = find_releases(image, watch, meta(model_release_ids=("MR-77",)), CONFIG)

    assert found["people"] == (watch / "IMG_1_MR2.pdf",)


def test_a_releases_folder_that_links_out_of_the_watch_folder_is_not_searched(tmp_path):
    watch = tmp_path / "watch"
    image = touch(watch / "IMG_1.jpg", b"photo")
    touch(tmp_path / "elsewhere" / "MR-77.pdf")
    os.symlink(tmp_path / "elsewhere", watch / "releases")
    assert find_releases(image, watch, meta(model_release_ids=("MR-77",)), CONFIG)["people"] == ()


def test_folders_named_like_a_release_are_not_taken_as_release_files(tmp_path):
    image = touch(tmp_path / "IMG_1.jpg", b"photo")
    (tmp_path / "IMG_1_MR.d").mkdir()
    (tmp_path / "releases" / "MR-77.pdf").mkdir(parents=True)
    found = find_releases(image, tmp_path, meta(model_release_ids=("MR-77",)), CONFIG)
    assert found == {"people": (), "property": ()}


def test_a_releases_folder_spelled_in_another_case_is_found(tmp_path):
    image = touch(tmp_path / "IMG_1.jpg", b"photo")
    touch(tmp_path / "Releases" / "MR-77.pdf")
    found = find_releases(image, tmp_path, meta(model_release_ids=("MR-77",)), CONFIG)
    assert found["people"] == (tmp_path / "Releases" / "MR-77.pdf",)


def test_an_image_with_brackets_in_its_name_finds_only_its_own_sidecars(tmp_path):
    image = touch(tmp_path / "IMG [1].jpg", b"photo")
    touch(tmp_path / "IMG [1]_MR.pdf")
    touch(tmp_path / "IMG 1_MR.pdf")
    assert [path.name for path in find_releases(image, tmp_path, meta(), CONFIG)["people"]] == [
        "IMG [1]_MR.pdf"
    ]


# ---------------------------------------------------------------------- missing release reasons


def test_a_missing_model_release_says_why_it_is_needed_and_where_it_was_looked_for(tmp_path):
    image = tmp_path / "IMG_1234.jpg"
    metadata = meta(model_release_status="MR-UMR", model_release_ids=("MR-77",))
    reason = missing_release_reason("dreamstime", {"people"}, {}, image, metadata, CONFIG)
    assert reason == (
        "people in frame (ModelReleaseStatus: Unlimited Model Releases), no model release found for "
        "dreamstime (expected IMG_1234.release.*, IMG_1234_MR*.* next to it or a release with ID MR-77 in releases/)"
    )


def test_a_missing_release_without_ids_says_how_to_name_one_in_the_releases_folder(tmp_path):
    reason = missing_release_reason(
        "pond5", {"people"}, {"people": ()}, tmp_path / "IMG_1.jpg", meta(keywords=("model",)), CONFIG
    )
    assert reason == (
        "people in frame (keyword 'model'), no model release found for pond5 (expected IMG_1.release.*, "
        "IMG_1_MR*.* next to it or a file in releases/ named after the ModelReleaseID written in the image)"
    )


def test_a_status_of_none_is_named_in_the_reason_so_the_user_sees_nobody_signed(tmp_path):
    reason = missing_release_reason(
        "x", {"people"}, {}, tmp_path / "IMG_1.jpg", meta(model_release_status="MR-NON"), CONFIG
    )
    assert reason is not None and reason.startswith("people in frame (ModelReleaseStatus: None), ")


def test_missing_property_and_model_releases_are_both_named(tmp_path):
    metadata = meta(
        persons_in_image=("Anna",), property_release_status="PR-NON", property_release_ids=("PR-5",)
    )
    reason = missing_release_reason(
        "agefotostock", {"people", "property"}, {}, tmp_path / "IMG_1.jpg", metadata, CONFIG
    )
    assert reason == (
        "people in frame (PersonInImage: Anna), no model release found for agefotostock "
        "(expected IMG_1.release.*, IMG_1_MR*.* next to it or a file in releases/ named after the "
        "ModelReleaseID written in the image); "
        "property in frame (PropertyReleaseStatus: None), no property release found for agefotostock "
        "(expected IMG_1_PR*.* next to it or a release with ID PR-5 in releases/)"
    )


def test_no_reason_is_given_when_every_needed_release_was_found(tmp_path):
    found = {"people": (tmp_path / "IMG_1_MR.jpg",), "property": ()}
    image = tmp_path / "IMG_1.jpg"
    assert (
        missing_release_reason("x", {"people"}, found, image, meta(persons_in_image=("A",)), CONFIG) is None
    )
    assert missing_release_reason("x", set(), {}, image, meta(persons_in_image=("A",)), CONFIG) is None


# ---------------------------------------------------------------------- remote names


def test_suffix_delivery_names_releases_after_the_image_and_numbers_the_second(tmp_path):
    releases = [tmp_path / "IMG_1.release.JPG", tmp_path / "releases" / "MR 77.pdf"]
    rule = ReleaseRule(required_for=["people"], delivery="suffix", suffix="_MR")
    assert release_remote_names("IMG_1.jpg", releases, rule) == [
        (releases[0], "IMG_1_MR.jpg"),
        (releases[1], "IMG_1_MR_2.pdf"),
    ]


def test_suffix_delivery_can_name_property_releases_with_their_own_suffix(tmp_path):
    rule = ReleaseRule(delivery="suffix", suffix="_MR")
    release = tmp_path / "IMG_1_PR.jpg"
    assert release_remote_names("IMG_1.jpg", [release], rule, suffix="_PR") == [(release, "IMG_1_PR.jpg")]


def test_a_suffix_cannot_move_a_release_into_another_remote_folder(tmp_path):
    rule = ReleaseRule(delivery="suffix", suffix="/../_MR")
    release = tmp_path / "a.pdf"
    assert release_remote_names("IMG_1.jpg", [release], rule) == [(release, "IMG_1_MR.pdf")]


def test_folder_delivery_keeps_each_release_s_own_name_made_safe(tmp_path):
    releases = [tmp_path / "Zürich model release.PDF", tmp_path / "MR-77.jpg", tmp_path / "東京.pdf"]
    rule = ReleaseRule(delivery="folder", remote_dir="modelrelease")
    assert release_remote_names("IMG_1.jpg", releases, rule) == [
        (releases[0], "Zurich_model_release.pdf"),
        (releases[1], "MR-77.jpg"),
        (releases[2], "IMG_1_release.pdf"),
    ]


def test_folder_delivery_numbers_two_releases_whose_safe_names_clash(tmp_path):
    releases = [tmp_path / "a" / "MR 77.pdf", tmp_path / "b" / "MR_77.pdf"]
    rule = ReleaseRule(delivery="folder", remote_dir="releases")
    assert [name for _, name in release_remote_names("IMG_1.jpg", releases, rule)] == [
        "MR_77.pdf",
        "MR_77_2.pdf",
    ]


def test_manual_delivery_sends_no_release_to_the_server(tmp_path):
    rule = ReleaseRule(delivery="manual")
    assert release_remote_names("IMG_1.jpg", [tmp_path / "IMG_1_MR.pdf"], rule) == []


# ---------------------------------------------------------------------- editorial


EDITORIAL = EditorialConfig(field="XMP-photoshop:Instructions")


@pytest.mark.parametrize(
    ("relative", "fields", "expected"),
    [
        ("IMG_1.jpg", {}, False),
        ("editorial/IMG_1.jpg", {}, True),
        ("editorial/2024/march/IMG_1.jpg", {}, True),
        ("Editorial/IMG_1.jpg", {}, True),
        ("trips/editorial/IMG_1.jpg", {}, False),
        ("editorial.jpg", {}, False),
        ("IMG_1.jpg", {"keywords": ("news", "Editorial")}, True),
        ("IMG_1.jpg", {"keywords": ("editorials",)}, False),
        ("IMG_1.jpg", {"extra": {"XMP-photoshop:Instructions": ("EDITORIAL USE ONLY",)}}, True),
        ("IMG_1.jpg", {"extra": {"xmp-photoshop:instructions": ("for editorial use",)}}, True),
        ("IMG_1.jpg", {"extra": {"XMP-photoshop:Instructions": ("crop tight",)}}, False),
        ("IMG_1.jpg", {"extra": {"IPTC:SpecialInstructions": ("editorial",)}}, False),
    ],
)
def test_editorial_files_are_recognised_by_folder_keyword_or_field(tmp_path, relative, fields, expected):
    assert is_editorial(tmp_path / relative, tmp_path, meta(**fields), EDITORIAL) is expected


def test_without_a_field_configured_metadata_text_does_not_make_a_file_editorial(tmp_path):
    metadata = meta(extra={"XMP-photoshop:Instructions": ("editorial",)})
    assert not is_editorial(tmp_path / "IMG_1.jpg", tmp_path, metadata, EditorialConfig())


# ---------------------------------------------------------------------- routes


ROUTES = [
    RouteConfig(folder="vectors", platforms=["adobe", "freepik"]),
    RouteConfig(keyword="Vector", platforms=["freepik"]),
    RouteConfig(folder="clients/acme", keyword="acme", platforms=["backup", "disabled_one"]),
]
ENABLED = {"adobe", "freepik", "backup", "shutterstock"}


@pytest.mark.parametrize(
    ("relative", "keywords", "expected"),
    [
        ("IMG_1.jpg", (), ENABLED),
        ("vectors/IMG_1.jpg", (), {"adobe", "freepik"}),
        ("vectors/2024/IMG_1.jpg", ("acme",), {"adobe", "freepik"}),  # first match wins
        ("IMG_1.jpg", ("vector",), {"freepik"}),
        ("clients/acme/IMG_1.jpg", (), {"backup"}),  # disabled platforms dropped
        ("IMG_1.jpg", ("ACME",), {"backup"}),
        ("clients/IMG_1.jpg", (), ENABLED),
        ("old/vectors/IMG_1.jpg", (), ENABLED),
    ],
)
def test_the_first_matching_route_chooses_the_platforms_else_all_enabled(
    tmp_path, relative, keywords, expected
):
    assert (
        route_platforms(tmp_path / relative, tmp_path, meta(keywords=keywords), ROUTES, ENABLED) == expected
    )


def test_a_route_to_disabled_platforms_only_sends_the_file_nowhere(tmp_path):
    routes = [RouteConfig(keyword="private", platforms=["off"]), RouteConfig(keyword="x", platforms=["on"])]
    metadata = meta(keywords=("private", "x"))
    assert route_platforms(tmp_path / "IMG_1.jpg", tmp_path, metadata, routes, {"on"}) == frozenset()
