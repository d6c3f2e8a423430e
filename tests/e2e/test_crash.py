"""Crash safety, measured: `stockbridge run` is SIGKILLed at random moments and restarted, many times.

Three platforms on real servers on 127.0.0.1: plain FTP (pyftpdlib, throttled, direct upload to the
final name), FTPS (pyftpdlib, temporary name then RNTO) and SFTP (OpenSSH, temporary name then
rename, with a downscaled copy rendered for it). Photos are exported into the watch folder while the
service starts, settles, ingests, renders and uploads; a seeded RNG decides when each SIGKILL lands.
After the last kill one clean run sends what is left. Then, on every server:

- every file is there exactly once, under the name the ledger recorded, at full size (byte-identical
  where no copy was rendered);
- no temporary name (``*.part``) is left;
- every job is final (``status --json``);
- no file arrived in full under its final name twice, and no other name was ever used for it
  (the FTP servers record every STOR, RNTO and arrival);
- no ExifTool process outlived a killed service.

The numbers (kills and where they landed, files, lost, duplicates, re-sent cut-off transfers, time)
are printed. CI runs 20 kills over 50 files; ``bench/crash.py`` runs the long version (100 kills)
through the same test, set by the environment:

    STOCKBRIDGE_CRASH_KILLS=100 STOCKBRIDGE_CRASH_FILES=120 STOCKBRIDGE_CRASH_SEED=1234
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from stockbridge.demo.localserver import FTPServerThread, local_ftp_server
from stockbridge.demo.samples import make_image
from stockbridge.metadata.exiftool import ExifTool
from tests.e2e.conftest import Workspace, platform_table
from tests.servers import LocalServer, pyftpdlib_platform

KILLS = int(os.environ.get("STOCKBRIDGE_CRASH_KILLS", "20"))
FILES = int(os.environ.get("STOCKBRIDGE_CRASH_FILES", "50"))
SEED = int(os.environ.get("STOCKBRIDGE_CRASH_SEED") or random.SystemRandom().randrange(1_000_000))
#: Plain FTP uploads at this many bytes per second, so that kills land in the middle of transfers.
FTP_UPLOAD_LIMIT = 150_000
#: The SFTP platform gets copies downscaled below this (sources are 0.31 MP): kills land in renders.
SFTP_MAX_MEGAPIXELS = 0.2
#: Bounds of every wait: a service start, and the clean run that finishes the work.
START_TIMEOUT = 30.0
FINISH_TIMEOUT = 60.0 + FILES * 0.5
FINAL_STATES = ("uploaded", "rejected", "held", "failed")


@dataclass
class Campaign:
    """What happened, for the printout."""

    kills: int = 0
    phases: collections.Counter[str] = field(default_factory=collections.Counter)
    starts: int = 0
    leaked_exiftools: int = 0


@contextmanager
def ftp_servers(
    tmp_path: Path, tls_cert: tuple[Path, Path]
) -> Iterator[tuple[FTPServerThread, FTPServerThread]]:
    cert, key = tls_cert
    with (
        local_ftp_server(
            tmp_path / "ftp-root", tls=False, password="crash-ftp-pw", upload_limit=FTP_UPLOAD_LIMIT
        ) as ftp,
        local_ftp_server(
            tmp_path / "ftps-root", tls=True, password="crash-ftps-pw", certfile=cert, keyfile=key
        ) as ftps,
    ):
        yield ftp, ftps


def make_originals(directory: Path, count: int) -> list[Path]:
    """``count`` distinct small photos (640×480, 0.31 MP), made once, exported later."""
    directory.mkdir(parents=True, exist_ok=True)
    with ExifTool() as exiftool:
        return [
            make_image(
                directory / f"IMG_{index:04d}.jpg",
                width=640,
                height=480,
                title=f"Crash test photo {index}",
                keywords=("crash", "test", "photo"),
                exiftool=exiftool,
                seed=10_000 + index,
            )
            for index in range(count)
        ]


def export(original: Path, exports: Path) -> None:
    # Written in place, not renamed into place: the service may see it half-written.
    shutil.copyfile(original, exports / original.name)


def exiftools_in(state_dir: Path) -> list[int]:
    """PIDs of processes whose working directory is the state dir: the service's ExifTool."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == state_dir:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def phase_of(log_tail: str) -> str:
    """Where the service was when it was killed, judged from its last log lines."""
    markers = [
        ("uploaded ", "after an upload"),
        ("batch of", "uploading"),
        ("will check and resume", "recovering"),
        ("queued ", "ingest/render"),
        ("watching", "settling/idle"),
    ]
    best, where = -1, "starting"
    for marker, name in markers:
        position = log_tail.rfind(marker)
        if position > best:
            best, where = position, name
    return where


def ledger_rows(state_dir: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(f"file:{state_dir / 'ledger.sqlite3'}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(
            "SELECT jobs.platform, jobs.state, jobs.reason, jobs.remote_name, jobs.upload_size,"
            " jobs.verified, jobs.attempts, assets.path FROM jobs JOIN assets ON assets.sha256 = jobs.sha256"
        ).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        db.close()


def all_final(state_dir: Path, names: set[str], platforms: list[str]) -> bool:
    rows = ledger_rows(state_dir)
    done = {(Path(row["path"]).name, row["platform"]) for row in rows if row["state"] in FINAL_STATES}
    return all((name, platform) in done for name in names for platform in platforms)


def start(workspace: Workspace, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            workspace.command("run"),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=workspace.env(),
            stdin=subprocess.DEVNULL,
        )


def wait_for_text(
    log: Path, offset: int, text: bytes, process: subprocess.Popen[bytes], timeout: float
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_bytes()[offset:]:
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def kill_and_reap(process: subprocess.Popen[bytes], state_dir: Path, campaign: Campaign) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    # ExifTool asks Linux for a signal when its parent dies; give it a moment, then count leftovers.
    deadline = time.monotonic() + 5.0
    while exiftools_in(state_dir) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in exiftools_in(state_dir):
        campaign.leaked_exiftools += 1
        os.kill(pid, signal.SIGKILL)  # a child of the service we started, by its PID


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def remote_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.mark.timeout(max(150, KILLS * 8 + FILES * 2))
def test_random_sigkills_lose_nothing_and_send_nothing_twice(
    workspace: Workspace, sshd_server: LocalServer, tls_cert: tuple[Path, Path], tmp_path: Path
) -> None:
    print(
        f"\ncrash test: seed {SEED} (STOCKBRIDGE_CRASH_SEED={SEED} repeats it), {KILLS} kills, {FILES} files"
    )
    began = time.monotonic()
    rng = random.Random(SEED)
    originals = make_originals(tmp_path / "originals", FILES)
    by_name = {path.name: path for path in originals}
    state_dir = workspace.state
    log = tmp_path / "service.log"
    campaign = Campaign()

    with ftp_servers(tmp_path, tls_cert) as (ftp, ftps):
        platforms = {
            "plainftp": pyftpdlib_platform(ftp, tmp_path / "ftp-root"),
            "secureftp": pyftpdlib_platform(ftps, tmp_path / "ftps-root"),
            "sftp": sshd_server,
        }
        batch = {"batch.max_files": 5, "batch.max_wait_seconds": 0}
        workspace.write_config(
            platform_table("plainftp", platforms["plainftp"], **batch),
            platform_table("secureftp", platforms["secureftp"], atomic_rename=True, **batch),
            platform_table("sftp", sshd_server, **batch, **{"rules.max_megapixels": SFTP_MAX_MEGAPIXELS}),
            settle_seconds=0.5,
        )

        # Exports arrive during all but the last two kill cycles: before a start and while it runs.
        queue = list(originals)
        rng.shuffle(queue)
        export_cycles = max(1, KILLS - 2)
        per_cycle = [
            len(queue) // export_cycles + (1 if i < len(queue) % export_cycles else 0)
            for i in range(export_cycles)
        ]

        for cycle in range(KILLS):
            batch_now = [queue.pop() for _ in range(per_cycle[cycle] if cycle < export_cycles else 0)]
            split = rng.randint(0, len(batch_now))
            for original in batch_now[:split]:
                export(original, workspace.exports)
            offset = log.stat().st_size if log.exists() else 0
            process = start(workspace, log)
            campaign.starts += 1
            if rng.random() < 0.2:
                # Early: while it opens the ledger, starts ExifTool, recovers, scans the folder.
                time.sleep(rng.uniform(0.05, 1.2))
            else:
                assert wait_for_text(log, offset, b"watching", process, START_TIMEOUT), log.read_text()[
                    -3000:
                ]
                ready = time.monotonic()
                kill_after = rng.uniform(0.0, 2.5)
                moments = sorted(rng.uniform(0.0, kill_after) for _ in batch_now[split:])
                for moment, original in zip(moments, batch_now[split:], strict=True):
                    time.sleep(max(0.0, ready + moment - time.monotonic()))
                    export(original, workspace.exports)
                time.sleep(max(0.0, ready + kill_after - time.monotonic()))
            for original in batch_now[split:]:  # whatever the early kill did not leave time for
                if not (workspace.exports / original.name).exists():
                    export(original, workspace.exports)
            tail = log.read_bytes()[offset:].decode(errors="replace")
            assert process.poll() is None, f"the service died by itself:\n{tail[-3000:]}"
            campaign.phases[phase_of(tail)] += 1
            kill_and_reap(process, state_dir, campaign)
            campaign.kills += 1
        for original in queue:
            export(original, workspace.exports)
        killed_at = time.monotonic()

        # The clean run: everything left is finished, then a normal stop.
        offset = log.stat().st_size
        process = start(workspace, log)
        campaign.starts += 1
        try:
            assert wait_for_text(log, offset, b"watching", process, START_TIMEOUT), log.read_text()[-3000:]
            names = set(by_name)
            deadline = time.monotonic() + FINISH_TIMEOUT
            while not all_final(state_dir, names, list(platforms)) and time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()[-3000:]
                time.sleep(0.2)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, log.read_bytes()[offset:].decode(errors="replace")[-3000:]
        finished_at = time.monotonic()

        status = workspace.status()
        rows = ledger_rows(state_dir)
        stored = {"plainftp": list(ftp.stored), "secureftp": list(ftps.stored)}
        arrived = {"plainftp": list(ftp.arrived), "secureftp": list(ftps.arrived)}

    # -- the verdict -------------------------------------------------------------------------------
    jobs = {(Path(row["path"]).name, row["platform"]): row for row in rows}
    expected_pairs = {(name, platform) for name in by_name for platform in platforms}
    not_final = sorted(
        (name, platform, job["state"], job["reason"])
        for entry in status["files"]
        for platform, job in entry["platforms"].items()
        for name in [Path(entry["path"]).name]
        if job["state"] not in FINAL_STATES
    )
    not_uploaded = sorted(
        (
            pair,
            jobs[pair]["state"] if pair in jobs else "no job",
            jobs[pair]["reason"] if pair in jobs else "",
        )
        for pair in expected_pairs
        if pair not in jobs or jobs[pair]["state"] != "uploaded"
    )

    lost: list[str] = []
    duplicates: list[str] = []
    temporaries: list[str] = []
    wrong_size: list[str] = []
    for platform, server in platforms.items():
        present = remote_files(server.root)
        temporaries += [f"{platform}: {path.name}" for path in present if path.name.endswith(".part")]
        by_remote = {path.name: path for path in present if not path.name.endswith(".part")}
        wanted = {jobs[(name, platform)]["remote_name"]: name for name in by_name if (name, platform) in jobs}
        lost += [
            f"{platform}: {remote} ({name})" for remote, name in wanted.items() if remote not in by_remote
        ]
        duplicates += [
            f"{platform}: {remote} (not in the ledger)" for remote in by_remote if remote not in wanted
        ]
        hashes = collections.Counter(sha256_of(path) for path in by_remote.values())
        duplicates += [
            f"{platform}: content {sha[:12]} is there {n} times" for sha, n in hashes.items() if n > 1
        ]
        for remote, name in wanted.items():
            path = by_remote.get(remote)
            if path is None:
                continue
            job = jobs[(name, platform)]
            if path.stat().st_size != job["upload_size"]:
                wrong_size.append(
                    f"{platform}: {remote} has {path.stat().st_size} of {job['upload_size']} bytes"
                )
            elif platform == "sftp":
                with Image.open(path) as image:
                    image.load()  # a cut-off file does not decode
                    assert image.width * image.height <= SFTP_MAX_MEGAPIXELS * 1_000_000
            elif path.read_bytes() != by_name[name].read_bytes():
                wrong_size.append(f"{platform}: {remote} differs from {name}")

    # Server-side history of the FTP servers: one name per file, one full arrival under it.
    other_names: list[str] = []
    delivered_twice: list[str] = []
    resent: collections.Counter[str] = collections.Counter()
    for platform in ("plainftp", "secureftp"):
        names_for = {jobs[(name, platform)]["remote_name"]: jobs[(name, platform)] for name in by_name}
        allowed = set(names_for) | {remote + ".part" for remote in names_for}
        other_names += [f"{platform}: STOR {name}" for name in set(stored[platform]) - allowed]
        stors = collections.Counter(stored[platform])
        resent[platform] = sum(1 for count in stors.values() if count > 1)
        full = collections.Counter(
            name
            for name, size in arrived[platform]
            if name in names_for and size == names_for[name]["upload_size"]
        )
        delivered_twice += [
            f"{platform}: {name} arrived in full {n} times" for name, n in full.items() if n > 1
        ]

    elapsed = time.monotonic() - began
    summary = [
        f"seed {SEED}: {campaign.kills} SIGKILLs over {campaign.starts} starts, {FILES} files × {len(platforms)} platforms",
        "kills landed: " + ", ".join(f"{phase} {n}" for phase, n in campaign.phases.most_common()),
        f"lost files: {len(lost) + len(not_uploaded)}, duplicate remote files: {len(duplicates)}, "
        f"files delivered twice under their name: {len(delivered_twice)}, other names used: {len(other_names)}",
        f"temporary names left: {len(temporaries)}, wrong size or bytes: {len(wrong_size)}, "
        f"jobs not final: {len(not_final)}, leaked ExifTool processes: {campaign.leaked_exiftools}",
        "cut-off transfers re-sent to the same name: " + ", ".join(f"{p} {n}" for p, n in resent.items()),
        f"time: {elapsed:.1f} s (kill cycles {killed_at - began:.1f} s, clean run {finished_at - killed_at:.1f} s)",
    ]
    print("\n".join(summary))
    problems = (
        not_final
        + not_uploaded
        + lost
        + duplicates
        + temporaries
        + wrong_size
        + other_names
        + delivered_twice
    )
    assert not problems, "\n".join(summary + [str(problem) for problem in problems[:40]])
    assert campaign.leaked_exiftools == 0
    assert campaign.kills >= min(KILLS, 20)
