"""The uploader carries out the error policy: every row of its table, in milliseconds.

A scripted fake transport stands in for the server (the real servers' faults are in
tests/contract and tests/e2e); the ledger, the batch and the uploader are the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stockbridge.config.loading import load_config
from stockbridge.delivery import uploader as uploader_module
from stockbridge.delivery.policy import LOW_LEVEL_RETRIES, QUOTA_PAUSE_SECONDS, RetryPolicy
from stockbridge.delivery.prepare import Pipeline
from stockbridge.delivery.uploader import PlatformUploader
from stockbridge.errors import (
    AuthError,
    QuotaError,
    RemoteRejectedError,
    RemoteSetupError,
    TransportError,
    TrustError,
)
from stockbridge.ledger import states
from stockbridge.ledger.store import Ledger
from stockbridge.transports import PutResult, Transport, TransportSettings

FAST = RetryPolicy(base_seconds=0.001, cap_seconds=0.001, max_attempts=4, reconnect_seconds=0.001)


@dataclass
class Script:
    """What the fake server does: ``connect`` errors in order (then success), and per file name
    the errors its puts raise in order (then success)."""

    connect: list[BaseException] = field(default_factory=list)
    puts: dict[str, list[BaseException]] = field(default_factory=dict)
    connects: int = 0
    put_calls: list[str] = field(default_factory=list)
    on_put: Callable[[], object] | None = None


class FakeTransport(Transport):
    script: Script

    def connect(self) -> None:
        self.script.connects += 1
        if self.script.connect:
            raise self.script.connect.pop(0)

    def close(self) -> None:
        pass

    def put(self, local: Path, remote_name: str, progress: Any = None) -> PutResult:
        self.script.put_calls.append(remote_name)
        if self.script.on_put is not None:
            self.script.on_put()
        errors = self.script.puts.get(remote_name, [])
        if errors:
            raise errors.pop(0)
        return PutResult(remote_name, local.stat().st_size, verified=True, verified_by="sha256")

    def size(self, remote_name: str) -> int | None:
        return None

    def delete(self, remote_name: str) -> None:
        pass


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[PlatformUploader, Script]]:
    (tmp_path / "exports").mkdir()
    (tmp_path / "target").mkdir()
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f'[watch]\nfolder = "{tmp_path / "exports"}"\n[state]\ndir = "{tmp_path / "state"}"\n'
        f'[platforms.agency]\nprotocol = "folder"\npath = "{tmp_path / "target"}"\n'
    )
    config = load_config(config_path)
    config.state.dir.mkdir(parents=True)
    script = Script()

    def fake_open(settings: TransportSettings) -> Transport:
        transport = FakeTransport(settings)
        transport.script = script
        return transport

    monkeypatch.setattr(uploader_module, "open_transport", fake_open)
    ledger = Ledger(config.ledger_path)
    pipeline = Pipeline(config, ledger, exiftool=None)  # type: ignore[arg-type]  # sending needs none
    try:
        yield PlatformUploader(pipeline, "agency", config.platforms["agency"], FAST), script
    finally:
        pipeline.notifier.close()
        ledger.close()


def queue(uploader: PlatformUploader, tmp_path: Path, *names: str) -> list[int]:
    ids = []
    for index, name in enumerate(names):
        local = tmp_path / f"copy-{name}"
        local.write_bytes(b"x" * (100 + index))
        sha = f"{index:064d}"
        uploader.ledger.record_asset(
            sha256=sha, path=str(tmp_path / name), size=100, file_type="jpeg", object_path=None
        )
        uploader.ledger.create_job(
            sha256=sha,
            platform="agency",
            state=states.PENDING,
            remote_name=name,
            upload_path=str(local),
            upload_size=local.stat().st_size,
        )
        job = uploader.ledger.job_for(sha, "agency")
        assert job is not None
        ids.append(job.id)
    return ids


def send(uploader: PlatformUploader) -> None:
    uploader.run_batch(uploader.claim(uploader.due(50)))


def states_of(uploader: PlatformUploader, ids: list[int]) -> list[str]:
    return [str(uploader.ledger.job(job_id).state) for job_id in ids]


def test_a_refused_file_fails_with_the_servers_words_and_the_batch_goes_on(setup, tmp_path):
    uploader, script = setup
    ids = queue(uploader, tmp_path, "a.jpg", "b.jpg", "c.jpg")
    script.puts["a.jpg"] = [RemoteRejectedError("STOR refused: 552 File too large")]
    send(uploader)
    assert states_of(uploader, ids) == ["failed", "uploaded", "uploaded"]
    assert (
        uploader.ledger.job(ids[0]).reason == "the server refused this file: STOR refused: 552 File too large"
    )
    assert script.put_calls == ["a.jpg", "b.jpg", "c.jpg"], "refused once, never sent again"
    assert uploader.ledger.pause_of("agency") is None
    batch = uploader.ledger.batches(platform="agency")[0]
    assert (batch.files, batch.uploaded, batch.failed) == (3, 2, 1)


@pytest.mark.parametrize(
    ("error", "kind", "words", "timed"),
    [
        (AuthError("login refused: 530 Login incorrect."), "auth", "login refused", False),
        (TrustError("host key does not match"), "trust", "server identity not trusted", False),
        (QuotaError("STOR refused: 552 Quota exceeded"), "quota", "server full or quota used up", True),
        (RemoteSetupError("cannot create the remote folder /up: 550"), "setup", "setup problem", False),
        (TransportError("the server does not offer TLS", retryable=False), "setup", "setup problem", False),
    ],
    ids=["auth", "trust", "quota", "folder", "not-retryable"],
)
def test_a_connect_refusal_pauses_the_platform_once_and_costs_the_files_nothing(
    setup, tmp_path, error, kind, words, timed
):
    uploader, script = setup
    ids = queue(uploader, tmp_path, "a.jpg", "b.jpg")
    script.connect = [error]
    send(uploader)
    pause = uploader.ledger.pause_of("agency")
    assert pause is not None and pause.kind == kind and words in pause.reason
    assert (pause.until is not None) is timed
    if timed:
        assert pause.until == pytest.approx(time.time() + QUOTA_PAUSE_SECONDS, abs=60)
    assert script.connects == 1 and script.put_calls == []
    assert states_of(uploader, ids) == ["pending", "pending"]
    assert all(uploader.ledger.job(job_id).attempts == 0 for job_id in ids)


def test_an_unreachable_server_makes_the_platform_wait_with_growing_delays(setup, tmp_path):
    uploader, script = setup
    ids = queue(uploader, tmp_path, "a.jpg")
    uploader.retry = RetryPolicy(base_seconds=30, cap_seconds=60, max_attempts=4)
    script.connect = [TransportError("connect refused", retryable=True)]
    send(uploader)
    pause = uploader.ledger.pause_of("agency")
    assert pause is not None and pause.kind == "unreachable" and pause.until is not None
    assert "cannot reach the server (connect refused)" in pause.reason
    assert uploader.connect_failures == 1
    assert uploader.ledger.job(ids[0]).attempts == 0, "an unreachable server costs the file no attempt"


@pytest.mark.parametrize(
    "error",
    [QuotaError("STOR refused: 451 Error during write"), TransportError("522 reuse", retryable=False)],
    ids=["storage", "not-retryable"],
)
def test_a_platform_wide_refusal_while_sending_pauses_and_stops_the_batch(setup, tmp_path, error):
    uploader, script = setup
    ids = queue(uploader, tmp_path, "a.jpg", "b.jpg")
    script.puts["a.jpg"] = [error]
    send(uploader)
    assert uploader.ledger.pause_of("agency") is not None
    assert script.put_calls == ["a.jpg"], "the rest of the batch is not tried against it"
    assert states_of(uploader, ids) == ["pending", "pending"]
    assert "is paused" in (uploader.ledger.job(ids[0]).reason or "")


@pytest.mark.parametrize(
    "error", [TransportError("STOR refused: 426 aborted", retryable=True), ConnectionResetError(104, "reset")]
)
def test_a_transient_error_reconnects_and_sends_the_same_file_again_at_once(setup, tmp_path, error):
    uploader, script = setup
    ids = queue(uploader, tmp_path, "a.jpg", "b.jpg")
    script.puts["a.jpg"] = [error]
    send(uploader)
    assert states_of(uploader, ids) == ["uploaded", "uploaded"]
    assert script.put_calls == ["a.jpg", "a.jpg", "b.jpg"]
    assert script.connects == 2
    assert uploader.ledger.job(ids[0]).verified_by == "sha256"


def test_a_file_that_keeps_failing_waits_its_backoff_then_fails_after_its_last_attempt(setup, tmp_path):
    uploader, script = setup
    ids = queue(uploader, tmp_path, "a.jpg", "b.jpg")
    script.puts["a.jpg"] = [TransportError("451 local error", retryable=True) for _ in range(10)]
    send(uploader)
    tries = 1 + LOW_LEVEL_RETRIES
    assert script.put_calls == ["a.jpg"] * tries, "reconnects within the batch, then it waits"
    job = uploader.ledger.job(ids[0])
    assert job.state == states.PENDING and job.attempts == tries
    assert f"attempt {tries} failed (451 local error); retrying in" in (job.reason or "")
    assert job.next_attempt_at is not None
    uploader.ledger.set_state(job.id, states.PENDING, job.reason, next_attempt_at=0)
    send(uploader)  # the next batch: attempt 4 of FAST.max_attempts
    job = uploader.ledger.job(ids[0])
    assert job.state == states.FAILED and job.reason == "gave up after 4 attempts: 451 local error"
    send(uploader)  # the connection that failed it was suspect: the rest goes in the next batch
    assert uploader.ledger.job(ids[1]).state == states.UPLOADED
    failed = sum(batch.failed for batch in uploader.ledger.batches(platform="agency"))
    assert failed == 1, "history counts the file that failed after its last retry"


def test_a_shutdown_mid_file_leaves_it_pending_for_the_next_start(setup, tmp_path):
    uploader, script = setup
    ids = queue(uploader, tmp_path, "a.jpg", "b.jpg")
    script.on_put = uploader.stop.set  # SIGTERM arrives while the file is going
    script.puts["a.jpg"] = [ConnectionResetError(104, "reset")]
    send(uploader)
    assert states_of(uploader, ids) == ["pending", "pending"]
    assert uploader.ledger.job(ids[0]).reason == "interrupted by shutdown"
    assert uploader.ledger.job(ids[0]).next_attempt_at == 0, "it goes first at the next start"
    assert script.put_calls == ["a.jpg"]


def test_a_job_with_nothing_prepared_fails_with_a_reason_and_the_batch_goes_on(setup, tmp_path):
    # A job whose copy could not be made has no file to send; the uploader used to assert on it.
    uploader, script = setup
    ids = queue(uploader, tmp_path, "a.jpg", "b.jpg")
    uploader.ledger._db.execute("UPDATE jobs SET upload_path = NULL WHERE id = ?", (ids[0],))
    send(uploader)
    assert states_of(uploader, ids) == ["failed", "uploaded"]
    assert uploader.ledger.job(ids[0]).reason == "no prepared copy to send; run `stockbridge retry`"
    assert script.put_calls == ["b.jpg"]
