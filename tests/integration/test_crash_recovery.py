"""Regressions found by the crash test (tests/e2e/test_crash.py), reproduced without killing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stockbridge import ledger as states
from stockbridge.config import load_config
from stockbridge.ledger import Ledger
from stockbridge.pipeline import Pipeline
from stockbridge.plan import AssetFacts, Verdict
from stockbridge.samples import make_image


def test_the_private_copy_outlives_an_upload_while_another_platforms_job_is_still_being_made(
    tmp_path: Path, exiftool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found with seed 11841, 100 kills: "first" uploaded (and its batch released the private
    # copy) while ingest was still rendering "second"'s copy from it, after a restart.
    exports, state = tmp_path / "exports", tmp_path / "state"
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f'[watch]\nfolder = "{exports}"\n\n[state]\ndir = "{state}"\n\n'
        f'[platforms.first]\nprotocol = "folder"\npath = "{tmp_path / "first"}"\n\n'
        f'[platforms.second]\nprotocol = "folder"\npath = "{tmp_path / "second"}"\n'
        "[platforms.second.rules]\nmax_megapixels = 0.5\n"
    )
    config = load_config(config_path)
    source = make_image(
        exports / "photo.jpg", width=1200, height=900, title="Photo", exiftool=exiftool, seed=3
    )
    ledger = Ledger(config.ledger_path)
    pipeline = Pipeline(config, ledger, exiftool)
    prepare = pipeline._prepare

    def first_finishes_while_second_renders(item: Any, facts: AssetFacts, verdict: Verdict) -> Any:
        if verdict.platform == "second":
            first = ledger.job_for(item.sha256, "first")
            assert first is not None
            ledger.mark_uploaded(first.id, verified=True)
            pipeline.release_objects([item.sha256])  # what first's uploader does after its batch
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
