"""SFTP files of one batch overlapped on one channel (transports/sftp_pipeline.py), through the
uploader as `once` and `run` send them, to OpenSSH: each file's last bytes, close and rename go
out with the next file's OPEN and data. Every file still arrives whole under its final name and
is `uploaded` only after its check; a rename the server refuses is that file's answer alone; a
connection cut mid-batch leaves nothing marked that is not whole, and the next batch completes."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockbridge.config.loading import load_config
from stockbridge.delivery import confirming
from stockbridge.delivery.policy import RetryPolicy
from stockbridge.delivery.prepare import Pipeline
from stockbridge.delivery.uploader import PlatformUploader
from stockbridge.demo.samples import make_image
from stockbridge.ledger import states
from stockbridge.ledger.store import Job, Ledger
from stockbridge.transports import TEMP_SUFFIX, open_transport, sftp_pipeline
from stockbridge.transports.base import ArrivedShort
from stockbridge.transports.sftp import SFTPTransport
from tests.servers import LocalServer, SSHKeys, run_sshd, settings_for

#: No waiting between reconnects in a test.
FAST = RetryPolicy(base_seconds=0.01, cap_seconds=0.01, max_attempts=4, reconnect_seconds=0.01)
PHOTOS = 5


@pytest.fixture
def sshd(tmp_path: Path, ssh_keys: SSHKeys) -> Iterator[LocalServer]:
    """OpenSSH with sftp-server's own log: every open and close, with the bytes written."""
    with run_sshd(tmp_path, ssh_keys, sftp_log=True) as server:
        yield server


@pytest.fixture
def batch(tmp_path: Path, exiftool: Any, sshd: LocalServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Five prepared photos for an SFTP platform; 8 KiB held back per file instead of 2 MiB, so
    these small files have a body that goes in their own put and a tail that goes with the next."""
    monkeypatch.setattr(sftp_pipeline, "HOLD_BACK", 8 * 1024)
    # Checks on the way every 2 files: they take the answers already in and never wait.
    monkeypatch.setattr(confirming, "CONFIRM_EVERY_FILES", 2)
    exports, state = tmp_path / "exports", tmp_path / "state"
    exports.mkdir()
    path = tmp_path / "config.toml"
    path.write_text(
        f'[watch]\nfolder = "{exports}"\n\n[state]\ndir = "{state}"\n\n'
        f'[platforms.agency]\nprotocol = "sftp"\nhost = "{sshd.host}"\nport = {sshd.port}\n'
        f'username = "{sshd.username}"\nkey_file = "{sshd.key_file}"\n'
        f'host_key = "{sshd.host_key_fingerprint}"\nremote_dir = "{sshd.remote_dir}"\ntimeout_seconds = 10\n'
    )
    path.chmod(0o600)
    config = load_config(path)
    ledger = Ledger(config.ledger_path)
    pipeline = Pipeline(config, ledger, exiftool)
    jobs = []
    for index in range(PHOTOS):
        photo = make_image(
            exports / f"photo{index}.jpg", width=400, height=300, seed=index, exiftool=exiftool
        )
        item = pipeline.accept_file(photo)
        assert item is not None
        job = ledger.job_for(item.sha256, "agency")
        assert job is not None and job.upload_path and (job.upload_size or 0) > 16 * 1024
        jobs.append(job)
    sent = {job.id: Path(job.upload_path or "").read_bytes() for job in jobs}
    yield config, ledger, pipeline, jobs, sent
    ledger.close()


def _uploader(pipeline: Pipeline, config: Any) -> PlatformUploader:
    return PlatformUploader(pipeline, "agency", config.platforms["agency"], FAST)


def _closes(server: LocalServer) -> list[tuple[str, int]]:
    """(file, bytes written) of every file sftp-server closed after writing."""
    text = Path(server.extra["sftp_log"]).read_text(errors="replace")
    return [
        (Path(name).name, int(n))
        for name, n in re.findall(r'close "([^"]+)" bytes read \d+ written (\d+)', text)
    ]


def _assert_whole_or_not_uploaded(
    ledger: Ledger, jobs: list[Job], sent: dict[int, bytes], root: Path
) -> None:
    for job in jobs:
        now = ledger.job(job.id)
        if now.state == states.UPLOADED:
            assert now.verified and (root / (now.remote_name or "")).read_bytes() == sent[job.id], now


def test_a_batch_overlapped_on_one_channel_arrives_whole_under_final_names_each_once(
    batch: Any, sshd: LocalServer
) -> None:
    config, ledger, pipeline, jobs, sent = batch
    _uploader(pipeline, config).run_batch(jobs)
    for job in jobs:
        done = ledger.job(job.id)
        assert done.state == states.UPLOADED and done.verified, done.reason
        assert (sshd.root / (done.remote_name or "")).read_bytes() == sent[job.id]
    assert not [p.name for p in sshd.root.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    closes = _closes(sshd)
    assert sorted(closes) == sorted((job.remote_name + TEMP_SUFFIX, len(sent[job.id])) for job in jobs)
    # The overlap itself, as the server saw it: a file opened before the one before it closed.
    log = Path(sshd.extra["sftp_log"]).read_text(errors="replace")
    events = re.findall(r'(open|close) "[^"]*?([^/"]+)\.part"', log)
    opened_before_previous_closed = [
        index
        for index in range(1, len(events))
        if events[index][0] == "open" and events[index - 1][0] == "open"
    ]
    assert opened_before_previous_closed, events


def test_a_refused_rename_is_that_files_answer_and_the_others_arrive_once(
    batch: Any, sshd: LocalServer
) -> None:
    config, ledger, pipeline, jobs, sent = batch
    middle = jobs[2]
    blocker = sshd.root / (middle.remote_name or "")
    blocker.mkdir()  # a folder with a file in it under the final name: the rename is refused
    (blocker / "keep").write_bytes(b"x")
    _uploader(pipeline, config).run_batch(jobs)
    refused = ledger.job(middle.id)
    assert refused.state == states.PENDING and refused.next_attempt_at, refused
    assert "renaming" in (refused.reason or ""), refused.reason
    assert not (sshd.root / ((middle.remote_name or "") + TEMP_SUFFIX)).exists(), "its temporary file stayed"
    others = [job for job in jobs if job is not middle]
    for job in others:
        assert ledger.job(job.id).state == states.UPLOADED
    _assert_whole_or_not_uploaded(ledger, jobs, sent, sshd.root)
    written = [name for name, _n in _closes(sshd)]
    assert sorted(written) == sorted((job.remote_name or "") + TEMP_SUFFIX for job in jobs)


def test_a_connection_cut_mid_batch_marks_nothing_wrongly_and_the_next_batch_completes(
    batch: Any, sshd: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, ledger, pipeline, jobs, sent = batch
    sessions: list[SFTPTransport] = []
    connect = SFTPTransport.connect

    def remember(self: SFTPTransport) -> None:
        connect(self)
        sessions.append(self)

    monkeypatch.setattr(SFTPTransport, "connect", remember)
    uploader = _uploader(pipeline, config)
    cut: list[int] = []

    def cut_during_the_fourth(job: Job, sent_bytes: int) -> None:
        if job.id == jobs[3].id and not cut:  # files 1-3 are in flight or waiting for their check
            cut.append(sent_bytes)
            sessions[-1]._transport.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]

    uploader.on_progress = cut_during_the_fourth
    uploader.run_batch(jobs)
    assert cut and len(sessions) >= 2, "the line was never cut"
    _assert_whole_or_not_uploaded(ledger, jobs, sent, sshd.root)
    waiting = [ledger.job(job.id) for job in jobs if ledger.job(job.id).state != states.UPLOADED]
    assert waiting, "every file counted although the cut took answers with it"
    assert all(job.state == states.PENDING for job in waiting), [(j.state, j.reason) for j in waiting]
    uploader.on_progress = None
    _uploader(pipeline, config).run_batch(waiting)
    _assert_whole_or_not_uploaded(ledger, jobs, sent, sshd.root)
    assert all(ledger.job(job.id).state == states.UPLOADED for job in jobs)
    assert not [p.name for p in sshd.root.iterdir() if p.name.endswith(TEMP_SUFFIX)]


@pytest.mark.parametrize("atomic", [True, False], ids=["part-then-rename", "final-name"])
def test_a_file_the_server_holds_short_after_its_rename_is_caught_by_the_stat_and_removed(
    sshd: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, atomic: bool
) -> None:
    """The look under the final name of an overlapped file is one STAT sent after its rename (or,
    written under its final name, after its close)."""
    send_stat = sftp_pipeline.InFlight._send_stat
    asked: list[str] = []

    def cut_then_stat(flight: sftp_pipeline.InFlight) -> None:
        asked.append(Path(flight.final).name)
        if flight.final.endswith("b.jpg"):  # a disk fault, a robot that truncates
            with (sshd.root / "b.jpg").open("r+b") as handle:
                handle.truncate(1000)
        send_stat(flight)

    monkeypatch.setattr(sftp_pipeline.InFlight, "_send_stat", cut_then_stat)
    files = []
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        files.append(tmp_path / name)
        files[-1].write_bytes(bytes(range(256)) * 200)
    with open_transport(settings_for(sshd, atomic_rename=atomic)) as transport:
        sent = [transport.put(path, path.name, verify=False) for path in files]
        assert all(result.ticket is not None for result in sent), "not overlapped"
        answers = transport.confirm(sent)
    assert isinstance(answers[1], ArrivedShort) and "1000 of 51200 bytes" in str(answers[1])
    assert [answer.verified_by for answer in (answers[0], answers[2])] == ["size", "size"]  # type: ignore[union-attr]
    assert sorted(path.name for path in sshd.root.iterdir()) == ["a.jpg", "c.jpg"]
    assert sorted(asked) == ["a.jpg", "b.jpg", "c.jpg"], "one STAT per file"
