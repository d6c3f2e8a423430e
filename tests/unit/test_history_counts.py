"""`history` counts every file a batch sent, those that joined it while it was open included
(issue 13: a batch of 6 was shown as "files 1, uploaded 6")."""

from __future__ import annotations

from pathlib import Path

from stockbridge.cli.report import history_payload
from stockbridge.delivery.uploader import PlatformUploader
from stockbridge.ledger.store import Job
from tests.unit import test_uploader_policy as policy
from tests.unit.test_uploader_policy import Script, queue

#: The real uploader and ledger over a scripted fake transport, as the policy tests have them.
uploader_setup = policy.setup


def test_a_batch_of_six_that_five_joined_while_it_was_open_shows_files_6_uploaded_6(
    uploader_setup: tuple[PlatformUploader, Script], tmp_path: Path
):
    uploader, _script = uploader_setup
    first, *later = queue(uploader, tmp_path, *(f"IMG_{index}.jpg" for index in range(6)))
    joined: list[list[Job]] = []

    def more(remote_dir: str | None, room: int) -> list[Job]:
        # The files prepared while the first one was being sent, one at a time as `once` sees them.
        if len(joined) == len(later):
            return []
        jobs = uploader.claim([uploader.ledger.job(later[len(joined)])], share=False)
        joined.append(jobs)
        return jobs

    batch = uploader.run_batch(uploader.claim([uploader.ledger.job(first)]), more=more)
    assert batch is not None and len(batch.uploaded) == 6 and len(joined) == 5, "five joined the open batch"
    assert uploader.ledger.batches()[0].files == 6, "the ledger records them, not only the display"

    [shown] = history_payload(uploader.pipeline.config)["batches"]
    assert {key: shown[key] for key in ("files", "uploaded", "failed")} == {
        "files": 6,
        "uploaded": 6,
        "failed": 0,
    }


def test_a_batch_recorded_before_the_fix_never_shows_fewer_files_than_answers(
    uploader_setup: tuple[PlatformUploader, Script],
):
    uploader, _script = uploader_setup
    ledger = uploader.ledger
    old = ledger.open_batch("agency", 1)
    ledger.close_batch(old, 6, 0)  # how 0.2 closed it: files stayed at the 1 it opened with
    [shown] = history_payload(uploader.pipeline.config)["batches"]
    assert (shown["files"], shown["uploaded"]) == (6, 6)
