"""Release and editorial metadata read through the real ExifTool.

What a contributor would notice: the release status, release IDs and people named in a photo, as
Lightroom or ExifTool wrote them, deciding whether it is held for a release; a tag of their
choosing (say Instructions = "Editorial use only") marking it editorial; and no tag name that
could make ExifTool do anything but read.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from stockbridge.config.models import EditorialConfig, ReleasesConfig
from stockbridge.demo.samples import make_image as make_sample
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.metadata.fields import ImageMetadata
from stockbridge.rules.releases import is_editorial, release_needs
from tests.images import require_exiftool


@pytest.fixture
def blank(tmp_path: Path) -> Callable[[], Path]:
    """A small JPEG without any metadata, one per call."""
    counter = iter(range(1000))

    def make() -> Path:
        index = next(counter)
        return make_sample(tmp_path / f"blank{index}.jpg", width=64, height=48, fmt="jpeg", seed=index)

    return make


def cli_write(path: Path, *assignments: str) -> None:
    """Tag ``path`` with a separate exiftool process, as another program would have."""
    command = [require_exiftool(), "-q", "-overwrite_original", *assignments, str(path)]
    subprocess.run(command, check=True, capture_output=True, timeout=30)


def read_one(exiftool: ExifTool, path: Path, extra_tags: tuple[str, ...] = ()) -> ImageMetadata:
    result = exiftool.read([path], extra_tags)[path]
    assert isinstance(result, ImageMetadata), result
    return result


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("None", "MR-NON"),
        ("Not Applicable", "MR-NAP"),
        ("Unlimited Model Releases", "MR-UMR"),
        ("Limited or Incomplete Model Releases", "MR-LMR"),
    ],
)
def test_the_model_release_status_is_read_as_its_plus_code(
    exiftool: ExifTool, blank: Callable[[], Path], written: str, code: str
) -> None:
    path = blank()
    exiftool.write(path, {"XMP-plus:ModelReleaseStatus": written})
    assert read_one(exiftool, path).model_release_status == code


def test_release_ids_status_and_people_in_the_image_are_read(
    exiftool: ExifTool, blank: Callable[[], Path]
) -> None:
    path = blank()
    exiftool.write(
        path,
        {
            "XMP-plus:ModelReleaseStatus": "Unlimited Model Releases",
            "XMP-plus:ModelReleaseID": ["MR-77", "MR-78"],
            "XMP-plus:PropertyReleaseStatus": "Limited or Incomplete Property Releases",
            "XMP-plus:PropertyReleaseID": ["PR-5"],
            "XMP-iptcExt:PersonInImage": ["Anna Berg", "Jürgen Ölmann"],
        },
    )
    meta = read_one(exiftool, path)
    assert meta.model_release_status == "MR-UMR"
    assert meta.model_release_ids == ("MR-77", "MR-78")
    assert meta.property_release_status == "PR-LPR"
    assert meta.property_release_ids == ("PR-5",)
    assert meta.persons_in_image == ("Anna Berg", "Jürgen Ölmann")
    assert release_needs(meta, ReleasesConfig()) == {"people", "property"}


def test_a_file_without_release_metadata_reads_as_needing_nothing(
    exiftool: ExifTool, blank: Callable[[], Path]
) -> None:
    meta = read_one(exiftool, blank())
    assert (meta.model_release_status, meta.model_release_ids, meta.persons_in_image) == (None, (), ())
    assert (meta.property_release_status, meta.property_release_ids, meta.extra) == (None, (), {})
    assert release_needs(meta, ReleasesConfig()) == set()


def test_a_status_written_as_its_code_by_another_program_reads_the_same(
    exiftool: ExifTool, blank: Callable[[], Path]
) -> None:
    path = blank()
    cli_write(path, "-XMP-plus:ModelReleaseStatus#=MR-NAP", "-XMP-plus:PropertyReleaseStatus#=PR-NON")
    meta = read_one(exiftool, path)
    assert (meta.model_release_status, meta.property_release_status) == ("MR-NAP", "PR-NON")
    assert release_needs(meta, ReleasesConfig()) == {"property"}


def test_extra_tags_are_read_by_the_name_the_caller_asked_for(
    exiftool: ExifTool, blank: Callable[[], Path]
) -> None:
    path = blank()
    cli_write(
        path,
        "-XMP-photoshop:Instructions=Editorial use only",
        "-IPTC:SpecialInstructions=No model release",
        "-EXIF:Artist=Jane Doe",
    )
    asked = ("XMP-photoshop:Instructions", "iptc:specialinstructions", "XMP:Instructions", "EXIF:Artist")
    meta = read_one(exiftool, path, asked)
    assert meta.extra == {
        "XMP-photoshop:Instructions": ("Editorial use only",),
        "iptc:specialinstructions": ("No model release",),
        "XMP:Instructions": ("Editorial use only",),
        "EXIF:Artist": ("Jane Doe",),
    }
    config = EditorialConfig(field="XMP-photoshop:Instructions")
    assert is_editorial(path, path.parent, meta, config)


def test_an_extra_tag_the_file_lacks_is_absent_and_the_rest_is_still_read(
    exiftool: ExifTool, blank: Callable[[], Path]
) -> None:
    path = blank()
    exiftool.write(path, {"XMP-dc:Title": "Harbour at dawn"})
    meta = read_one(exiftool, path, ("XMP-photoshop:Instructions",))
    assert meta.extra == {}
    assert meta.title == "Harbour at dawn"
    assert not is_editorial(path, path.parent, meta, EditorialConfig(field="XMP-photoshop:Instructions"))


def test_extra_tags_are_read_for_every_file_of_a_batch(exiftool: ExifTool, blank: Callable[[], Path]) -> None:
    paths = [blank() for _ in range(3)]
    for index, path in enumerate(paths):
        cli_write(path, f"-XMP-photoshop:Instructions=note {index}")
    results = exiftool.read(paths, ["XMP-photoshop:Instructions"])
    notes = [result.extra for result in results.values() if isinstance(result, ImageMetadata)]
    assert notes == [{"XMP-photoshop:Instructions": (f"note {index}",)} for index in range(3)]


@pytest.mark.parametrize(
    "tag",
    [
        "Instructions",  # no group
        "XMP:Instructions\n-all=",  # a second argument
        "XMP:Instructions=x",  # an assignment
        "-XMP:Instructions",
        "XMP:-Instructions",
        "g1:2",  # exiftool's -g1:2 option
        "G1:3",
        "XMP:Instr*",
        "XMP:Instructions ",
        "../x:y",
        "",
    ],
)
def test_a_tag_name_that_could_be_an_option_or_a_second_argument_is_refused(
    exiftool: ExifTool, blank: Callable[[], Path], tag: str
) -> None:
    path = blank()
    exiftool.write(path, {"XMP-dc:Title": "kept"})
    before = path.read_bytes()
    with pytest.raises(ValueError, match="tag name"):
        exiftool.read([path], [tag])
    assert path.read_bytes() == before
    assert read_one(exiftool, path).title == "kept"
