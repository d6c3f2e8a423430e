"""A large file's cut upload resumes through the uploader, as `once` and `run` send it (issue 14,
item 5): within the batch after a cut line, and at the next start after a crash. The ledger
records what was being written; the log and `status` say the upload resumed."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

import stockbridge.transports.ftp as ftp_module
from stockbridge.cli.report import status_payload
from stockbridge.config.loading import load_config
from stockbridge.delivery import resuming
from stockbridge.delivery.policy import RetryPolicy
from stockbridge.delivery.prepare import Pipeline
from stockbridge.delivery.uploader import PlatformUploader
from stockbridge.demo.samples import make_image
from stockbridge.ledger import states
from stockbridge.ledger.records import Writing
from stockbridge.ledger.store import Ledger
from tests.waiting import wait_for

#: No waiting between reconnects in a test.
FAST = RetryPolicy(base_seconds=0.01, cap_seconds=0.01, max_attempts=4, reconnect_seconds=0.01)


def _config(tmp_path: Path, server: Any) -> Any:
    exports, state = tmp_path / "exports", tmp_path / "state"
    exports.mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[watch]\nfolder = "{exports}"\n\n[state]\ndir = "{state}"\n\n'
        f'[platforms.agency]\nprotocol = "ftp"\nhost = "{server.host}"\nport = {server.port}\n'
        f'username = "{server.username}"\npassword = "{server.password}"\nremote_dir = "/"\n'
        "timeout_seconds = 10\n"  # FTP: atomic_rename off, the final name is written directly
    )
    path.chmod(0o600)
    return load_config(path)


@pytest.fixture
def setup(tmp_path: Path, exiftool: Any, ftp_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    # The threshold is 8 MB; a 3 MB master stands in for a several-GB one here.
    monkeypatch.setattr(resuming, "RESUME_MIN_BYTES", 1024 * 1024)
    config = _config(tmp_path, ftp_server)
    source = make_image(
        config.watch.folder / "master.tif",
        width=1200,
        height=900,
        fmt="tiff",
        title="Master",
        exiftool=exiftool,
    )
    ledger = Ledger(config.ledger_path)
    pipeline = Pipeline(config, ledger, exiftool)
    item = pipeline.accept_file(source)
    assert item is not None
    job = ledger.job_for(item.sha256, "agency")
    assert job is not None and job.upload_path is not None and job.remote_name is not None
    assert job.upload_size is not None and job.upload_size > 2 * 1024 * 1024, job.upload_size
    yield config, ledger, pipeline, job
    ledger.close()


def cut_once_after(monkeypatch: pytest.MonkeyPatch, limit: int, remote: Path) -> list[int]:
    """Shut the first upload's data socket down once ``limit`` bytes went into it (and the server
    has written some of them: on a busy machine they may all still be in buffers)."""
    send_all, total, cut = ftp_module.send_all, [0], []

    def send_then_cut(conn: socket.socket, block: Any) -> None:
        total[0] += len(block)
        if total[0] > limit and not cut:
            cut.append(total[0])
            wait_for(lambda: remote.exists() and remote.stat().st_size > 0, 10, "the partial to grow")
            conn.shutdown(socket.SHUT_RDWR)
        send_all(conn, block)

    monkeypatch.setattr(ftp_module, "send_all", send_then_cut)
    return cut


def test_a_cut_line_costs_only_the_missing_bytes_and_the_log_and_status_say_so(
    setup: Any, ftp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, ledger, pipeline, job = setup
    data = Path(job.upload_path).read_bytes()  # the private copy goes once the batch is done
    cut = cut_once_after(monkeypatch, 1024 * 1024, ftp_server.root / job.remote_name)
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="INFO", format="{message}")
    try:
        PlatformUploader(pipeline, "agency", config.platforms["agency"], FAST).run_batch([job])
    finally:
        logger.remove(sink)
    assert cut, "the upload was never cut"
    done = ledger.job(job.id)
    assert done.state == states.UPLOADED and done.verified, done.reason
    remote = ftp_server.root / job.remote_name
    assert remote.read_bytes() == data
    first, second = ftp_server.extra["ftpd"].received
    assert second[1] == job.upload_size - first[1], "the retry sent more than the missing bytes"
    assert done.resumed_at == first[1] and done.resumed_by == "size"
    said = [line for line in lines if "resumed" in line]
    assert said == [
        f"master.tif → agency: resumed {job.remote_name} at {first[1] / 1e6:.1f} MB of"
        f" {job.upload_size / 1e6:.1f} MB (prefix checked by size)\n"
    ]
    (entry,) = status_payload(config)["files"]
    assert entry["platforms"]["agency"]["resumed"] == {"at_bytes": first[1], "checked_by": "size"}


def test_a_crash_leaves_a_partial_that_the_next_start_keeps_and_resumes(setup: Any, ftp_server: Any) -> None:
    config, ledger, pipeline, job = setup
    data = Path(job.upload_path).read_bytes()
    # What a crash mid-transfer leaves: the intent with what was being written, and a partial.
    ledger.begin_upload(
        job.id, ledger.open_batch("agency", 1), Writing(job.remote_name, len(data), _sha256(data))
    )
    ftp_server.root.mkdir(exist_ok=True)
    (ftp_server.root / job.remote_name).write_bytes(data[: len(data) // 2])
    uploader = PlatformUploader(pipeline, "agency", config.platforms["agency"], FAST)
    uploader.recover()
    assert (ftp_server.root / job.remote_name).stat().st_size == len(data) // 2, "the partial was deleted"
    uploader.run_batch([ledger.job(job.id)])
    done = ledger.job(job.id)
    assert done.state == states.UPLOADED and done.resumed_at == len(data) // 2
    assert (ftp_server.root / job.remote_name).read_bytes() == data
    assert ftp_server.extra["ftpd"].received == [(job.remote_name, len(data) - len(data) // 2)]


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
