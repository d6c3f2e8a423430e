"""Regressions found by the crash test (tests/e2e/test_crash.py), reproduced without killing anything."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from stockbridge.config.loading import load_config
from stockbridge.delivery.policy import ONCE_RETRY
from stockbridge.delivery.prepare import Pipeline
from stockbridge.delivery.uploader import PlatformUploader
from stockbridge.demo.samples import make_image
from stockbridge.ledger import states
from stockbridge.ledger.store import Ledger
from stockbridge.rules.plan import AssetFacts, Verdict
from tests.configs import folder_platforms_config
from tests.images import whole_but_undecodable_tiff


def test_the_private_copy_outlives_an_upload_while_another_platforms_job_is_still_being_made(
    tmp_path: Path, exiftool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found with seed 11841, 100 kills: "first" uploaded (and its batch released the private
    # copy) while ingest was still rendering "second"'s copy from it, after a restart.
    exports, state = tmp_path / "exports", tmp_path / "state"
    config = folder_platforms_config(tmp_path, first="", second="max_megapixels = 0.5")
    source = make_image(
        exports / "photo.jpg", width=1200, height=900, title="Photo", exiftool=exiftool, seed=3
    )
    ledger = Ledger(config.ledger_path)
    pipeline = Pipeline(config, ledger, exiftool)
    prepare = pipeline._prepare

    def first_finishes_while_second_renders(item: Any, facts: AssetFacts, verdict: Verdict) -> Any:
        first = ledger.job_for(item.sha256, "first")
        if verdict.platform == "second" and first is not None:  # second's job is being made
            ledger.mark_uploaded(first.id, verified=True)
            pipeline.release_objects([item.sha256])  # what first's uploader does after its batch
            assert item.object_path.exists(), "second has no job yet: its copy must stay"
            for derived in (state / "derived").rglob("*"):
                if derived.is_file():
                    derived.unlink()  # so second's copy is rendered from the private copy again
        return prepare(item, facts, verdict)

    monkeypatch.setattr(pipeline, "_prepare", first_finishes_while_second_renders)
    try:
        item = pipeline.accept_file(source)
        assert item is not None
        second = ledger.job_for(item.sha256, "second")
        assert second is not None
        assert second.state == states.PENDING, second.reason
        assert second.upload_path is not None and Path(second.upload_path).is_file()
        # Once every platform has its job and all are done, the copies go.
        ledger.mark_uploaded(second.id, verified=True)
        pipeline.release_objects([item.sha256])
        assert item.object_path is not None and not item.object_path.exists()
    finally:
        ledger.close()


def _ftp_config(tmp_path: Path, server: Any, extra: str = "") -> Any:
    exports, state = tmp_path / "exports", tmp_path / "state"
    exports.mkdir(exist_ok=True)
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f'[watch]\nfolder = "{exports}"\n\n[state]\ndir = "{state}"\n\n'
        f'[platforms.agency]\nprotocol = "ftp"\nhost = "{server.host}"\nport = {server.port}\n'
        f'username = "{server.username}"\npassword = "{server.password}"\nremote_dir = "/"\n'
        f"atomic_rename = false\ntimeout_seconds = 10\n{extra}"
    )
    config_path.chmod(0o600)
    return load_config(config_path)


def test_a_restart_removes_the_short_file_a_killed_direct_upload_left_before_anything_else(
    tmp_path: Path, exiftool: Any, ftp_server: Any
) -> None:
    # Direct upload (FTP agencies' default): a kill mid-transfer leaves a short file under the
    # final name. The restart deletes it at once, even when the platform may not send now (its
    # window is closed), and keeps the job to send again to the same name.
    config = _ftp_config(tmp_path, ftp_server, '[platforms.agency.schedule]\nwindows = ["03:00-03:01"]\n')
    exports = config.watch.folder
    short = make_image(exports / "short.jpg", width=900, height=600, title="Short", exiftool=exiftool, seed=4)
    whole = make_image(exports / "whole.jpg", width=900, height=600, title="Whole", exiftool=exiftool, seed=5)
    ledger = Ledger(config.ledger_path)
    try:
        pipeline = Pipeline(config, ledger, exiftool)
        batch = ledger.open_batch("agency", 2)
        remote = {}
        for source in (short, whole):
            item = pipeline.accept_file(source)
            assert item is not None
            job = ledger.job_for(item.sha256, "agency")
            assert job is not None and job.remote_name is not None
            ledger.begin_upload(job.id, batch)  # the crash came during these transfers
            remote[source.name] = (job.id, ftp_server.root / job.remote_name)
        ftp_server.root.mkdir(exist_ok=True)
        remote["short.jpg"][1].write_bytes(short.read_bytes()[:5000])
        remote["whole.jpg"][1].write_bytes(whole.read_bytes())
        before = ftp_server.commands()

        PlatformUploader(pipeline, "agency", config.platforms["agency"], ONCE_RETRY).recover()

        assert not remote["short.jpg"][1].exists(), "the half file is gone before the job's turn"
        short_job = ledger.job(remote["short.jpg"][0])
        assert short_job.state == states.PENDING and short_job.remote_name == remote["short.jpg"][1].name
        whole_job = ledger.job(remote["whole.jpg"][0])
        assert whole_job.state == states.UPLOADED and whole_job.verified
        assert remote["whole.jpg"][1].read_bytes() == whole.read_bytes()
        assert "STOR" not in ftp_server.commands()[len(before) :], "nothing is sent by the tidy-up"
    finally:
        ledger.close()


def test_two_files_of_the_same_name_prepared_at_once_never_get_the_same_remote_name(
    tmp_path: Path, exiftool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare workers run side by side. Looking up a free name and recording the job is one step:
    # the lookup is slowed down here so that, without that, both would take "IMG_1.jpg".
    config = folder_platforms_config(tmp_path, archive="")
    exports = config.watch.folder
    for folder in (exports / "a", exports / "b"):
        folder.mkdir()
    sources = [
        make_image(exports / folder / "IMG_1.jpg", width=300, height=200, exiftool=exiftool, seed=seed)
        for folder, seed in (("a", 1), ("b", 2))
    ]
    ledger = Ledger(config.ledger_path)
    taken = ledger.remote_name_taken

    def slow_lookup(*args: Any, **kwargs: Any) -> bool:
        answer = taken(*args, **kwargs)
        time.sleep(0.3)
        return answer

    monkeypatch.setattr(ledger, "remote_name_taken", slow_lookup)
    pipeline = Pipeline(config, ledger, exiftool)
    try:
        futures = [pipeline.submit(source) for source in sources]
        items = [future.result(timeout=60) for future in futures]
        names = [ledger.job_for(item.sha256, "archive").remote_name for item in items if item is not None]
        assert len(names) == 2 and len(set(names)) == 2, names
    finally:
        pipeline.close()
        ledger.close()


def test_a_file_that_does_not_decode_is_refused_for_every_platform_when_the_render_finds_it(
    tmp_path: Path, exiftool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One platform renders: its render is the full-decode check (decisions.md W-3) for all of them,
    # so a file whose pixels do not decode is rejected everywhere with the same reason, and nothing
    # is queued. (Its structure is whole: a cut-off file is refused before, by ingest.)
    exports = tmp_path / "exports"
    config = folder_platforms_config(
        tmp_path, whole="", small='max_long_edge = 400\nformats = ["jpeg"]\nconvert_to = "jpeg"'
    )
    cut = whole_but_undecodable_tiff(exports / "cut.tif")
    decoded = []
    from stockbridge.delivery import prepare as pipeline_module

    real_check = pipeline_module.check_decodable
    monkeypatch.setattr(
        pipeline_module, "check_decodable", lambda *a, **k: decoded.append(a) or real_check(*a, **k)
    )
    ledger = Ledger(config.ledger_path)
    try:
        item = Pipeline(config, ledger, exiftool).accept_file(cut)
        assert item is not None
        for platform in ("whole", "small"):
            job = ledger.job_for(item.sha256, platform)
            assert job is not None and job.state == states.REJECTED, job
            assert "damaged or incomplete" in (job.reason or "") and "export it again" in (job.reason or "")
        assert decoded == [], "the render was the check: no second decode"
    finally:
        ledger.close()
