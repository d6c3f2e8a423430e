"""A vector and its preview are one asset, whichever settles first (issue 15).

Real Ghostscript (the EPS and its size), real ExifTool (the metadata), the real pipeline and
ledger; folder platforms, so no server is needed here (tests/e2e/test_vectors.py sends pairs to
the FTPS and SFTP servers).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockbridge.delivery.prepare import Pipeline
from stockbridge.demo.samples import make_image
from stockbridge.demo.vectors import make_eps, make_svg
from stockbridge.ledger import states
from stockbridge.ledger.store import Ledger
from stockbridge.web.queries import list_files
from tests.configs import folder_platforms_config

pytestmark = pytest.mark.skipif(shutil.which("gs") is None, reason="needs Ghostscript")

PAIR = 'vector = { formats = ["eps"], travel = "pair", preview = "required", preview_min_edge = 500 }'
KEYWORDS = ["hills", "sun", "sky", "landscape", "vector", "illustration", "green"]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One EPS drawn by Ghostscript for the module (eps2write costs ~0.3 s a file): tests copy it."""
    folder = tmp_path_factory.mktemp("drawn")
    return make_eps(folder / "hills.eps", width_pt=2000, height_pt=1500, title="Hills", keywords=KEYWORDS)


@pytest.fixture(scope="module")
def drawn_at_noon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("noon")
    return make_eps(
        folder / "hills.eps", width_pt=2000, height_pt=1500, title="Hills at noon", keywords=KEYWORDS
    )


def hills(exports: Path, drawn: Path) -> Path:
    """A fresh copy of a drawn EPS in the watch folder, as an export lands there."""
    exports.mkdir(parents=True, exist_ok=True)
    target = exports / "hills.eps"
    shutil.copyfile(drawn, target)
    return target


@pytest.fixture
def pipeline(tmp_path: Path, exiftool: Any) -> Iterator[Pipeline]:
    config = folder_platforms_config(tmp_path, agency=PAIR)
    ledger = Ledger(config.ledger_path)
    try:
        yield Pipeline(config, ledger, exiftool)
    finally:
        ledger.close()


def preview(exports: Path, exiftool: Any, **metadata: Any) -> Path:
    return make_image(exports / "hills.jpg", width=600, height=500, exiftool=exiftool, seed=5, **metadata)


def image_jobs_of(pipeline: Pipeline, name: str) -> list[Any]:
    return [job for job in pipeline.ledger.jobs() if job.kind == "image" and Path(job.path).name == name]


def test_a_vector_waits_for_its_preview_and_goes_by_itself_when_it_comes(
    tmp_path: Path, pipeline: Pipeline, exiftool: Any, drawn: Path
) -> None:
    exports = tmp_path / "exports"
    eps = hills(exports, drawn)
    item = pipeline.accept_file(eps)
    assert item is not None
    job = pipeline.ledger.job_for(item.sha256, "agency")
    assert job is not None and job.state == states.HELD
    assert job.reason is not None and job.reason.startswith("waiting for hills.jpg: agency needs a preview")

    jpg = preview(exports, exiftool)
    assert pipeline.accept_file(jpg) is None  # a preview: never a photo of its own
    job = pipeline.ledger.job_for(item.sha256, "agency")
    assert job is not None and job.state == states.PENDING, job.reason
    assert job.remote_name == "hills.eps" and (job.meta or {}).get("preview") == "hills.jpg"
    previews = [other for other in pipeline.ledger.jobs() if other.kind == "preview"]
    assert [(other.remote_name, other.state) for other in previews] == [("hills.jpg", states.PENDING)]
    assert image_jobs_of(pipeline, "hills.jpg") == []
    # The web page's file list shows the pair as one file too (stockbridge/web/queries.py).
    listed = list_files(pipeline.config, pipeline.ledger)["items"]
    assert [(entry["name"], entry["kind"]) for entry in listed] == [("hills.eps", "vector")]

    # Its vector superseded by a newer export before it went: the preview never goes alone.
    pipeline.ledger.set_state(job.id, states.REJECTED, "superseded by a newer export")
    assert pipeline.begin_upload(previews[0].id, pipeline.ledger.open_batch("agency", 1)) is None
    preview_job = pipeline.ledger.job(previews[0].id)
    assert (preview_job.state, preview_job.reason) == (
        states.REJECTED,
        "its vector hills.eps is not sent (superseded by a newer export): a preview never goes alone",
    )


def test_a_preview_that_comes_first_is_never_sold_as_a_photo(
    tmp_path: Path, pipeline: Pipeline, exiftool: Any, drawn: Path
) -> None:
    exports = tmp_path / "exports"
    jpg = preview(exports, exiftool, title="Hills", keywords=KEYWORDS)
    assert pipeline.accept_file(jpg) is not None  # no vector yet: it looks like a photo
    [photo] = image_jobs_of(pipeline, "hills.jpg")
    assert photo.state == states.PENDING

    # The vector is taken: the photo job not yet begun is the preview's, and goes with it.
    eps = hills(exports, drawn)
    item = pipeline.accept_file(eps)
    assert item is not None
    [photo] = image_jobs_of(pipeline, "hills.jpg")
    assert photo.state == states.REJECTED
    assert photo.reason == "the preview of hills.eps, not a photo: it goes with the vector"
    assert not private_copy(pipeline, photo.sha256).exists(), "the photo's private copy was left in state"
    job = pipeline.ledger.job_for(item.sha256, "agency")
    assert job is not None and job.state == states.PENDING, job.reason

    # The uploader's last look before a photo's first byte: a vector appeared beside it.
    other = make_image(exports / "dunes.png", width=600, height=500, fmt="png", exiftool=exiftool, seed=6)
    assert pipeline.accept_file(other) is not None
    [photo] = image_jobs_of(pipeline, "dunes.png")
    (exports / "dunes.svg").write_text("<svg/>")  # not even taken yet: its name is enough
    assert pipeline.begin_upload(photo.id, pipeline.ledger.open_batch("agency", 1)) is None
    [photo] = image_jobs_of(pipeline, "dunes.png")
    assert (photo.state, photo.reason) == (
        states.REJECTED,
        "the preview of dunes.svg, not a photo: it goes with the vector",
    )
    assert not private_copy(pipeline, photo.sha256).exists(), "the photo's private copy was left in state"


def private_copy(pipeline: Pipeline, sha256: str) -> Path:
    asset = pipeline.ledger.asset(sha256)
    assert asset is not None and asset.object_path
    return Path(asset.object_path)


def test_the_vector_metadata_wins_and_both_copies_carry_it(
    tmp_path: Path, pipeline: Pipeline, exiftool: Any, drawn_at_noon: Path
) -> None:
    exports = tmp_path / "exports"
    eps = hills(exports, drawn_at_noon)
    jpg = preview(
        exports, exiftool, title="Preview title", description="Two green hills under a sun", keywords=["x"]
    )
    sources = {path: path.read_bytes() for path in (eps, jpg)}
    item = pipeline.accept_file(eps)
    assert item is not None
    job = pipeline.ledger.job_for(item.sha256, "agency")
    assert job is not None and job.state == states.PENDING, job.reason
    meta = job.meta or {}
    # Where both have a field, the vector's stands; where only the preview has one, it is taken.
    assert meta["title"] == "Hills at noon" and meta["keywords"] == KEYWORDS
    assert meta["description"] == "Two green hills under a sun"
    assert meta["illustration"] is True  # a vector is an illustration (a CSV's Illustration column)
    assert "description from the preview hills.jpg (the vector has none)" in job.changes
    [sent_preview] = [other for other in pipeline.ledger.jobs() if other.kind == "preview"]
    assert job.upload_path is not None and sent_preview.upload_path is not None
    copies = exiftool.read([Path(job.upload_path), Path(sent_preview.upload_path)])
    for copy in copies.values():
        assert (copy.title, copy.description, list(copy.keywords)) == (
            "Hills at noon",
            "Two green hills under a sun",
            KEYWORDS,
        )
    assert all(path.read_bytes() == data for path, data in sources.items())  # sources never written


def test_hostile_vectors_get_a_rejection_with_their_reason(tmp_path: Path, pipeline: Pipeline) -> None:
    exports = tmp_path / "exports"
    exports.mkdir(exist_ok=True)
    target = tmp_path / "written"
    (exports / "evil.eps").write_text(
        f"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n({target}) (w) file\nshowpage\n%%EOF\n"
    )
    (exports / "evil.svg").write_text(
        '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>'
    )
    reasons = {}
    for name in ("evil.eps", "evil.svg"):
        item = pipeline.accept_file(exports / name)
        assert item is not None
        job = pipeline.ledger.job_for(item.sha256, "agency")
        assert job is not None and job.state == states.REJECTED
        reasons[name] = job.reason
    assert reasons == {
        "evil.eps": "Ghostscript refused to run it (/invalidfileaccess in --file--); not taken, nothing it asked"
        " for was done",
        "evil.svg": "declares XML entities or external references (EntitiesForbidden); not taken, nothing was"
        " fetched",
    }
    assert not target.exists()


def test_a_zip_over_the_platform_cap_is_rejected_with_its_size(
    tmp_path: Path, exiftool: Any, drawn: Path
) -> None:
    config = folder_platforms_config(
        tmp_path,
        agency='vector = { formats = ["eps"], travel = "zip", preview = "required", max_file_mb = 0.3 }',
    )
    exports = tmp_path / "exports"
    eps = hills(exports, drawn)
    make_image(exports / "hills.jpg", width=1500, height=1200, exiftool=exiftool, seed=5)
    assert eps.stat().st_size < 300_000  # the vector alone fits
    ledger = Ledger(config.ledger_path)
    try:
        item = Pipeline(config, ledger, exiftool).accept_file(eps)
        assert item is not None
        job = ledger.job_for(item.sha256, "agency")
        assert job is not None and job.state == states.REJECTED
        assert job.reason is not None and job.reason.startswith(
            "could not prepare this platform's copy: the zip of the vector and its preview is "
        )
        assert job.reason.endswith("MB, over the 0.3 MB cap")
    finally:
        ledger.close()


def test_an_svg_carries_its_own_xmp_and_goes_as_exported(tmp_path: Path, exiftool: Any) -> None:
    config = folder_platforms_config(
        tmp_path, icons='keywords = { min = 5 }\ntitle = { required = true }\nvector = { formats = ["svg"] }'
    )
    exports = tmp_path / "exports"
    exports.mkdir(exist_ok=True)
    svg = make_svg(exports / "sun.svg", width="2000", height="2000", title="Sun icon", keywords=KEYWORDS)
    ledger = Ledger(config.ledger_path)
    try:
        item = Pipeline(config, ledger, exiftool).accept_file(svg)
        assert item is not None
        job = ledger.job_for(item.sha256, "icons")
        assert job is not None and job.state == states.PENDING, job.reason
        assert (job.meta or {})["title"] == "Sun icon" and (job.meta or {})["keywords"] == KEYWORDS
        assert job.upload_path is not None and Path(job.upload_path).read_bytes() == svg.read_bytes()
    finally:
        ledger.close()
