"""Which check a file gets before any platform has a job (decisions.md W-3, issue 14): the structural
check always, in ingest's hash pass; a render's full decode where a platform gets a copy; and
``check_decodable`` for files that go unchanged only with ``[watch] verify = "decode"``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stockbridge.delivery import prepare as pipeline_module
from stockbridge.delivery.prepare import Pipeline
from stockbridge.demo.samples import make_image
from stockbridge.ledger import states
from stockbridge.ledger.store import Ledger
from stockbridge.rules.assess import explain_file
from tests.configs import folder_platforms_config
from tests.images import whole_but_undecodable_tiff


def config_for(tmp_path: Path, verify: str | None, **platforms: str) -> Any:
    return folder_platforms_config(tmp_path, f'verify = "{verify}"\n' if verify else "", **platforms)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every full-decode check prepare makes (not the renders')."""
    calls: list[tuple[Any, ...]] = []
    real = pipeline_module.check_decodable
    monkeypatch.setattr(pipeline_module, "check_decodable", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def test_a_cut_off_file_is_refused_everywhere_by_its_structure_with_nothing_decoded_or_rendered(
    tmp_path: Path, exiftool: Any, monkeypatch: pytest.MonkeyPatch, decodes: list[tuple[Any, ...]]
) -> None:
    config = config_for(tmp_path, "decode", whole="", small="max_long_edge = 400")
    good = make_image(tmp_path / "good.jpg", width=1600, height=1200, title="Cut", exiftool=exiftool, seed=9)
    cut = tmp_path / "exports" / "cut.jpg"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    rendered: list[Any] = []
    monkeypatch.setattr(pipeline_module, "render", lambda *a, **k: rendered.append(a))
    ledger = Ledger(config.ledger_path)
    try:
        item = Pipeline(config, ledger, exiftool).accept_file(cut)
        assert item is not None
        for platform in ("whole", "small"):
            job = ledger.job_for(item.sha256, platform)
            assert job is not None and job.state == states.REJECTED, job
            assert job.reason == (
                "cut off: the file ends inside its image data (no end-of-image marker); export it again"
            )
        assert decodes == [] and rendered == []
    finally:
        ledger.close()


@pytest.mark.parametrize(("verify", "state"), [(None, states.PENDING), ("decode", states.REJECTED)])
def test_a_file_that_goes_unchanged_is_decoded_only_when_verify_says_decode(
    tmp_path: Path, exiftool: Any, decodes: list[tuple[Any, ...]], verify: str | None, state: str
) -> None:
    # Whole structure, pixels that do not decode: the price of the default, said in the README.
    config = config_for(tmp_path, verify, whole="")
    assert config.watch.verify == (verify or "structure")
    source = whole_but_undecodable_tiff(tmp_path / "exports" / "damaged.tif")
    ledger = Ledger(config.ledger_path)
    try:
        item = Pipeline(config, ledger, exiftool).accept_file(source)
        assert item is not None
        job = ledger.job_for(item.sha256, "whole")
        assert job is not None and job.state == state, job
        assert len(decodes) == (1 if verify == "decode" else 0)
        if verify == "decode":
            assert "damaged or incomplete" in (job.reason or "")
    finally:
        ledger.close()


def test_a_whole_file_that_goes_unchanged_costs_no_decode(
    tmp_path: Path, exiftool: Any, decodes: list[tuple[Any, ...]]
) -> None:
    config = config_for(tmp_path, None, whole="")
    source = make_image(
        tmp_path / "exports" / "fine.jpg", width=1200, height=900, title="Fine", exiftool=exiftool
    )
    ledger = Ledger(config.ledger_path)
    try:
        item = Pipeline(config, ledger, exiftool).accept_file(source)
        assert item is not None and item.problem is None
        job = ledger.job_for(item.sha256, "whole")
        assert job is not None and job.state == states.PENDING, job
        assert decodes == []
    finally:
        ledger.close()


@pytest.mark.parametrize("verify", [None, "decode"])
def test_explain_refuses_a_cut_off_file_with_the_same_reason(
    tmp_path: Path, exiftool: Any, verify: str | None
) -> None:
    config = config_for(tmp_path, verify, whole="")
    good = make_image(tmp_path / "good.png", width=900, height=600, exiftool=exiftool, fmt="png", seed=4)
    cut = tmp_path / "exports" / "cut.png"
    cut.write_bytes(good.read_bytes()[:-5000])
    verdicts = explain_file(cut, config, exiftool)
    assert verdicts["whole"].verdict == "reject"
    assert verdicts["whole"].reasons == (
        "cut off: the file ends inside its image data (no PNG end chunk, IEND); export it again",
    )
    damaged = whole_but_undecodable_tiff(tmp_path / "exports" / "damaged.tif")
    verdict = explain_file(damaged, config, exiftool)["whole"]
    assert verdict.verdict == ("reject" if verify == "decode" else "accept"), verdict


def test_ingest_reads_back_from_its_private_copy_what_the_kept_blocks_do_not_hold(
    tmp_path: Path, exiftool: Any
) -> None:
    # A 2 MB JPEG with 2.8 MB of a camera's trailer after its EOI: neither the first nor the last
    # block of the hash pass holds that EOI, so the check walks the scans on the copy.
    from stockbridge.assets.ingest import ingest

    photo = make_image(tmp_path / "photo.jpg", width=3000, height=2000, exiftool=exiftool, quality=95, seed=1)
    data = photo.read_bytes()
    (tmp_path / "trailer.jpg").write_bytes(data + b"junk" * 700_000)
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2] + b"junk" * 700_000)
    whole = ingest(tmp_path / "trailer.jpg", tmp_path / "state", exiftool, verify_pixels=False)
    assert whole.problem is None
    cut = ingest(tmp_path / "cut.jpg", tmp_path / "state", exiftool, verify_pixels=False)
    assert (
        cut.problem
        == "cut off: the file ends inside its image data (no end-of-image marker); export it again"
    )
