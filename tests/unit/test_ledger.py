"""The ledger: one job per (content, platform), durable intent, survives a reopen, and a job only
moves the ways the transition table allows."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable

import pytest

from stockbridge.delivery import reexport
from stockbridge.ledger import states, store
from stockbridge.ledger.states import ALLOWED, ForbiddenTransition, JobState
from stockbridge.ledger.store import Ledger

SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture
def ledger(tmp_path):
    book = Ledger(tmp_path / "ledger.sqlite3")
    for sha in (SHA_A, SHA_B):
        book.record_asset(
            sha256=sha, path=f"/exports/{sha[0]}.jpg", size=10, file_type="jpeg", object_path=None
        )
    yield book
    book.close()


def test_the_same_content_and_platform_get_only_one_job(ledger):
    assert ledger.create_job(sha256=SHA_A, platform="shop", state=states.PENDING, remote_name="a.jpg")
    assert not ledger.create_job(sha256=SHA_A, platform="shop", state=states.PENDING, remote_name="a2.jpg")
    assert ledger.create_job(sha256=SHA_A, platform="other", state=states.PENDING, remote_name="a.jpg")
    assert [job.remote_name for job in ledger.jobs(platform="shop")] == ["a.jpg"]


def test_two_different_files_can_never_share_a_remote_name_on_one_platform(ledger):
    ledger.create_job(sha256=SHA_A, platform="shop", state=states.PENDING, remote_name="x.jpg")
    assert ledger.remote_name_taken("shop", "x.jpg", SHA_B)
    assert not ledger.remote_name_taken("shop", "x.jpg", SHA_A)
    with pytest.raises(sqlite3.IntegrityError):
        ledger.create_job(sha256=SHA_B, platform="shop", state=states.PENDING, remote_name="x.jpg")


def test_upload_intent_and_result_survive_a_reopen(tmp_path, ledger):
    ledger.create_job(sha256=SHA_A, platform="shop", state=states.PENDING, remote_name="a.jpg")
    job = ledger.jobs(platform="shop")[0]
    batch = ledger.open_batch("shop", 1)
    ledger.begin_upload(job.id, batch)
    ledger.close()
    reopened = Ledger(tmp_path / "ledger.sqlite3")
    interrupted = reopened.interrupted_uploads("shop")
    assert [(j.remote_name, j.attempts, j.state) for j in interrupted] == [("a.jpg", 1, states.UPLOADING)]
    reopened.mark_uploaded(job.id, verified=False)
    done = reopened.job(job.id)
    assert (
        done.state == states.UPLOADED and done.verified is False and "not verifiable" in (done.reason or "")
    )
    reopened.close()


def test_due_jobs_wait_for_their_backoff(ledger):
    ledger.create_job(sha256=SHA_A, platform="shop", state=states.PENDING, remote_name="a.jpg")
    ledger.create_job(sha256=SHA_B, platform="shop", state=states.PENDING, remote_name="b.jpg")
    first, second = ledger.jobs(platform="shop")
    ledger.set_state(first.id, states.PENDING, "retry later", next_attempt_at=2_000.0)
    assert [job.id for job in ledger.due_jobs("shop", now=1_000.0, limit=10)] == [second.id]
    assert len(ledger.due_jobs("shop", now=3_000.0, limit=10)) == 2


def test_a_pause_holds_until_lifted_and_a_timed_pause_expires(ledger):
    ledger.pause("shop", "login refused", until=None)
    ledger.pause("full", "quota", until=100.0)
    assert ledger.pause_of("shop", now=1e12) is not None
    assert ledger.pause_of("full", now=50.0) is not None
    assert ledger.pause_of("full", now=150.0) is None
    assert ledger.resume("shop") == ["shop"]
    assert ledger.pause_of("shop") is None


def test_retry_requeues_failed_jobs_only(ledger):
    ledger.create_job(
        sha256=SHA_A, platform="shop", state=states.FAILED, reason="550 no", remote_name="a.jpg"
    )
    ledger.create_job(sha256=SHA_B, platform="shop", state=states.REJECTED, reason="too small")
    assert ledger.requeue_failed("shop") == 1
    states_now = {job.sha256: job.state for job in ledger.jobs(platform="shop")}
    assert states_now == {SHA_A: states.PENDING, SHA_B: states.REJECTED}


def test_a_damaged_ledger_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    with pytest.raises(Exception) as caught:
        Ledger(path)
    assert "ledger" in str(caught.value)


def test_a_file_not_taken_is_noted_once_keeps_its_first_sighting_and_is_cleared_when_taken(
    ledger, monkeypatch
):
    clock = iter([100.0, 200.0, 300.0])
    monkeypatch.setattr(store.time, "time", lambda: next(clock))
    ledger.note("/exports/x.jpg", "unstable", "still changing after 600 s")
    ledger.note("/exports/x.jpg", "refused", "has 2 hard links; not taken")
    ledger.note("/exports/y.jpg", "link", "a symbolic link, never followed; copy the photo in")
    (x, y) = ledger.notices()
    assert (x.path, x.kind, x.reason, x.first_seen, x.last_seen) == (
        "/exports/x.jpg",
        "refused",
        "has 2 hard links; not taken",
        100.0,
        200.0,
    )
    assert y.path == "/exports/y.jpg"
    monkeypatch.undo()
    ledger.record_asset(sha256="c" * 64, path="/exports/x.jpg", size=1, file_type="jpeg", object_path=None)
    assert [notice.path for notice in ledger.notices()] == ["/exports/y.jpg"], "taken now: no longer listed"
    ledger.forget_notices(["/exports/y.jpg"])
    assert ledger.notices() == []


def test_a_ledger_from_before_notices_gets_the_table_when_opened(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    with sqlite3.connect(path) as db:  # as the builds before notices left it: no table, no version
        db.execute("DROP TABLE notices")
        db.execute("ALTER TABLE jobs DROP COLUMN verified_by")
        db.execute("DROP INDEX assets_by_photo")
        db.execute("DROP INDEX assets_by_path")
        db.execute("ALTER TABLE assets DROP COLUMN photo_id")
        for column in ("writing_name", "writing_size", "writing_sha256", "resumed_at", "resumed_by"):
            db.execute(f"ALTER TABLE jobs DROP COLUMN {column}")  # migration 4
        db.execute("PRAGMA user_version=0")
        db.execute("INSERT INTO assets VALUES ('d', '/exports/d.jpg', 1, 'jpeg', NULL, 1, 1)")
    reopened = Ledger(path)
    try:
        reopened.note("/exports/z.jpg", "link", "a symbolic link")
        assert [notice.path for notice in reopened.notices()] == ["/exports/z.jpg"]
        assert [asset.path for asset in reopened.assets()] == ["/exports/d.jpg"], "older rows kept"
    finally:
        reopened.close()


# ---------------------------------------------------------------- job states and their transitions


def job_in(ledger: Ledger, state: JobState) -> int:
    """A job of SHA_A on "shop" in ``state``, got there the way the pipeline gets it there."""
    start = states.PENDING if state is states.UPLOADING else state
    ledger.create_job(sha256=SHA_A, platform="shop", state=start, remote_name="a.jpg", reason="why")
    job = ledger.job_for(SHA_A, "shop")
    assert job is not None
    if state is states.UPLOADING:
        ledger.begin_upload(job.id, ledger.open_batch("shop", 1))
    assert ledger.job(job.id).state is state
    return job.id


def wait(book: Ledger, job_id: int) -> None:
    book.set_state(job_id, states.PENDING, "waiting: shop is paused")


def send(book: Ledger, job_id: int) -> None:
    book.begin_upload(job_id, book.open_batch("shop", 1))


def found_on_server(book: Ledger, job_id: int) -> None:
    book.mark_uploaded(job_id, verified=True)


def moved_away(book: Ledger, job_id: int) -> None:
    book.mark_uploaded(job_id, verified=False)


def copy_missing(book: Ledger, job_id: int) -> None:
    book.set_state(job_id, states.FAILED, "the prepared copy is missing")


def interrupted(book: Ledger, job_id: int) -> None:
    book.set_state(job_id, states.PENDING, "interrupted; will check the server first", next_attempt_at=0)


def refused(book: Ledger, job_id: int) -> None:
    book.set_state(job_id, states.FAILED, "the server refused this file: 553")


def release_arrived(book: Ledger, job_id: int) -> None:
    book.activate(
        job_id,
        remote_name="a.jpg",
        upload_path="/state/a.jpg",
        upload_size=10,
        changes=(),
        remote_dir=None,
        meta=None,
    )


def retry(book: Ledger, _job_id: int) -> None:
    assert book.requeue_failed("shop") == 1


def superseded(book: Ledger, job_id: int) -> None:
    reexport.supersede(book, book.job(job_id), "/exports/a-v2.jpg")


def held_as_reexport(book: Ledger, job_id: int) -> None:
    book.set_state(job_id, states.HELD, "a re-export of a photo already uploaded to shop: ...")


#: (from, how, to): every move the pipeline and the CLI make, each made the way they make it.
MOVES: list[tuple[JobState, Callable[[Ledger, int], None], JobState]] = [
    (states.PENDING, wait, states.PENDING),
    (states.PENDING, send, states.UPLOADING),
    (states.PENDING, found_on_server, states.UPLOADED),
    (states.PENDING, copy_missing, states.FAILED),
    (states.UPLOADING, send, states.UPLOADING),  # again, on a new connection after a transient error
    (states.UPLOADING, moved_away, states.UPLOADED),
    (states.UPLOADING, interrupted, states.PENDING),
    (states.UPLOADING, refused, states.FAILED),
    (states.HELD, release_arrived, states.PENDING),
    (states.FAILED, retry, states.PENDING),
    (states.HELD, held_as_reexport, states.HELD),
    (states.PENDING, superseded, states.REJECTED),
    (states.HELD, superseded, states.REJECTED),
    (states.FAILED, superseded, states.REJECTED),
]


@pytest.mark.parametrize(("old", "move", "new"), MOVES, ids=[f"{old}->{new}" for old, _, new in MOVES])
def test_every_move_the_service_makes_is_allowed(ledger, old, move, new):
    job_id = job_in(ledger, old)
    move(ledger, job_id)
    assert ledger.job(job_id).state is new


def test_the_transition_table_has_exactly_the_moves_the_service_makes():
    assert {(old, new) for old, _, new in MOVES} == ALLOWED


FORBIDDEN = sorted(set(itertools.product(JobState, JobState)) - ALLOWED)


@pytest.mark.parametrize(("old", "new"), FORBIDDEN, ids=[f"{old}->{new}" for old, new in FORBIDDEN])
def test_a_forbidden_move_raises_naming_the_job_and_both_states_and_changes_nothing(ledger, old, new):
    job_id = job_in(ledger, old)
    before = ledger.job(job_id)
    with pytest.raises(ForbiddenTransition) as caught:
        ledger.set_state(job_id, new, "should not happen")
    assert f"job {job_id}: {old.value} → {new.value} is not an allowed transition" in str(caught.value)
    assert ledger.job(job_id) == before


def test_an_uploaded_or_rejected_file_can_never_be_sent(ledger):
    """Never twice: nothing moves a final job back into the queue or onto the wire."""
    ledger.create_job(sha256=SHA_A, platform="shop", state=states.UPLOADED, remote_name="a.jpg")
    ledger.create_job(sha256=SHA_B, platform="shop", state=states.REJECTED, reason="1.0 MP, needs 4.0 MP")
    for job in ledger.jobs(platform="shop"):
        with pytest.raises(ForbiddenTransition, match=f"job {job.id}: {job.state.value} → uploading"):
            ledger.begin_upload(job.id, ledger.open_batch("shop", 1))
        with pytest.raises(ForbiddenTransition, match=f"job {job.id}: {job.state.value} → pending"):
            ledger.set_state(job.id, states.PENDING, "again?")
    assert [job.state for job in ledger.jobs(platform="shop")] == [states.UPLOADED, states.REJECTED]
    assert ledger.due_jobs("shop", now=1e12, limit=10) == []


def test_a_job_is_never_created_mid_upload(ledger):
    with pytest.raises(ValueError, match="only begin_upload"):
        ledger.create_job(sha256=SHA_A, platform="shop", state=states.UPLOADING, remote_name="a.jpg")
    assert ledger.jobs() == []


def test_states_read_and_print_as_the_plain_words_status_shows(ledger):
    ledger.create_job(sha256=SHA_A, platform="shop", state=states.HELD, reason="needs a title")
    (job,) = ledger.jobs()
    assert job.state == "held" and f"{job.state}" == "held" and str(job.state) == "held"
    assert states.STATES == ("pending", "uploading", "uploaded", "held", "rejected", "failed")


def test_retry_forgets_a_job_that_failed_before_its_copy_was_made_so_the_file_is_prepared_again(
    ledger, tmp_path
):
    # Such a job has nothing to send: requeued as pending it crashed the uploader (issue 13).
    source = tmp_path / "IMG_1.tif"
    source.write_bytes(b"x")
    ledger.record_asset(sha256="c" * 64, path=str(source), size=1, file_type="tiff", object_path=None)
    ledger.record_asset(
        sha256="d" * 64, path=str(tmp_path / "gone.tif"), size=1, file_type="tiff", object_path=None
    )
    reason = "could not prepare this platform's copy: point operation not supported for this mode"
    for sha in ("c" * 64, "d" * 64):
        ledger.create_job(sha256=sha, platform="shop", state=states.FAILED, reason=reason)
    assert ledger.requeue_failed() == 1
    assert ledger.job_for("c" * 64, "shop") is None, "its file is still there: it will be prepared again"
    left = ledger.job_for("d" * 64, "shop")
    assert left is not None and left.state == states.FAILED, "its file is gone: the answer stays"


def test_a_batch_checked_together_is_marked_uploaded_in_one_step(ledger):
    # delivery/confirming.py: the files one listing proved are recorded together, each with how it
    # was proved; one of them the agency took at once (not verifiable, no proof named).
    batch = ledger.open_batch("shop", 3)
    ids = []
    for platform in ("shop", "other", "third"):
        ledger.create_job(sha256=SHA_A, platform=platform, state=states.PENDING, remote_name="a.jpg")
        job = ledger.jobs(platform=platform)[0]
        ledger.begin_upload(job.id, batch)
        ids.append(job.id)
    with pytest.raises(ValueError):
        ledger.mark_uploaded_many([(ids[0], True, "listing"), (ids[1], False, "listing")])
    assert {ledger.job(job_id).state for job_id in ids} == {states.UPLOADING}, "all or nothing"
    ledger.mark_uploaded_many([(ids[0], True, "listing"), (ids[1], True, "sha256"), (ids[2], False, None)])
    assert [(ledger.job(job_id).state, ledger.job(job_id).verified_by) for job_id in ids] == [
        (states.UPLOADED, "listing"),
        (states.UPLOADED, "sha256"),
        (states.UPLOADED, None),
    ]
