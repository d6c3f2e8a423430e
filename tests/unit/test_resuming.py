"""What the uploader allows a transport for one file (delivery/resuming.py): only a large file's
partial that the ledger says this job was writing, from this very file, is continued."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from stockbridge.delivery import resuming
from stockbridge.ledger import states
from stockbridge.ledger.store import Ledger
from stockbridge.transports.resume import RESUME_MIN_BYTES


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    book = Ledger(tmp_path / "ledger.sqlite3")
    book.record_asset(sha256="a" * 64, path="/exports/clip.mov", size=1, file_type="mov", object_path=None)
    book.create_job(sha256="a" * 64, platform="shop", state=states.PENDING, remote_name="clip.mov")
    yield book
    book.close()


def test_only_the_file_and_name_the_ledger_recorded_are_continued(ledger: Ledger, tmp_path: Path) -> None:
    local = tmp_path / "clip.mov"
    local.write_bytes(b"\1" * RESUME_MIN_BYTES)
    (job,) = ledger.jobs()
    writing, offer = resuming.plan(ledger, job, local, True, "shop", logger)
    assert writing is not None and writing.name == "clip.mov.part" and writing.size == RESUME_MIN_BYTES
    assert offer is not None and not offer.continue_partial, "nothing was being written yet"
    ledger.begin_upload(job.id, ledger.open_batch("shop", 1), writing)

    again = resuming.plan(ledger, ledger.job(job.id), local, True, "shop", logger)[1]
    assert again is not None and again.continue_partial
    # The final name (atomic_rename switched off since) is not what was being written.
    direct = resuming.plan(ledger, ledger.job(job.id), local, False, "shop", logger)[1]
    assert direct is not None and not direct.continue_partial
    # Nor is another file of the same size (the copy was made again, differently).
    local.write_bytes(b"\2" * RESUME_MIN_BYTES)
    changed = resuming.plan(ledger, ledger.job(job.id), local, True, "shop", logger)[1]
    assert changed is not None and not changed.continue_partial


def test_a_file_under_the_threshold_always_starts_from_zero(ledger: Ledger, tmp_path: Path) -> None:
    local = tmp_path / "photo.jpg"
    local.write_bytes(b"\1" * (RESUME_MIN_BYTES - 1))
    (job,) = ledger.jobs()
    assert resuming.plan(ledger, job, local, True, "shop", logger) == (None, None)


def test_a_private_copy_is_not_read_before_its_first_attempt_only_before_a_resume(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The private copy of a file sent unchanged is named by its SHA-256 (assets/ingest.py).
    data = b"\3" * RESUME_MIN_BYTES
    sha256 = hashlib.sha256(data).hexdigest()
    ledger.record_asset(
        sha256=sha256, path="/exports/big.mov", size=len(data), file_type="mov", object_path=None
    )
    ledger.create_job(sha256=sha256, platform="shop", state=states.PENDING, remote_name="big.mov")
    job = ledger.job_for(sha256, "shop")
    assert job is not None
    local = tmp_path / f"{sha256}.mov"
    local.write_bytes(data)
    read: list[Path] = []
    hash_file = resuming._sha256
    monkeypatch.setattr(resuming, "_sha256", lambda path: read.append(path) or hash_file(path))
    writing, _offer = resuming.plan(ledger, job, local, True, "shop", logger)
    assert writing is not None and writing.sha256 == sha256 and read == []
    ledger.begin_upload(job.id, ledger.open_batch("shop", 1), writing)
    offer = resuming.plan(ledger, ledger.job(job.id), local, True, "shop", logger)[1]
    assert offer is not None and offer.continue_partial and read == [local]
