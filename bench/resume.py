"""A long upload cut at 60 %, resumed against restarted from zero (issue 14, item 5).

    .venv/bin/python -m bench.resume [--mb 200] [--rate-mb 10] [--cut 0.6] [--runs 3]

One file of ``--mb`` MB goes over plain FTP to pyftpdlib (in a child process) whose uploads are
paced to ``--rate-mb`` MB/s on loopback: a stand-in for a slow uplink until the link emulator
(bench/link.py, h14-bench) is here. Each run: the upload is cut for real (its data socket shut
down) at ``--cut`` of the file, then sent again either with a resume (transports/resume.py: REST +
STOR from the server's size) or from zero (what stockbridge did before). The rows give the time
of the second attempt, and of the whole (cut + second attempt), as medians of ``--runs``; every
file is verified byte for byte on the server. The SHA-256 the uploader takes of a large file
before its first byte (delivery/resuming.py) is timed too. Bounded: every upload has the socket
timeout; the server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loguru import logger

import stockbridge.transports.ftp as ftp_module
from bench.servers import Server, pyftpdlib_server
from stockbridge.config.secrets import Secret
from stockbridge.demo.localserver import make_self_signed_cert
from stockbridge.transports import TransportSettings, open_transport
from stockbridge.transports.resume import ResumeOffer

MB = 1_000_000


def _settings(server: Server) -> TransportSettings:
    return TransportSettings(
        platform="bench",
        protocol=server.protocol,
        host=server.host,
        port=server.port,
        username=server.username,
        password=Secret(server.password or ""),
        remote_dir=server.remote_dir,
        atomic_rename=True,
        timeout=30.0,
    )


def _cut_upload(server: Server, source: Path, cut_at: int) -> float:
    """Send ``source`` until ``cut_at`` bytes went into the data socket, then shut it down."""
    send_all, total = ftp_module.send_all, [0]

    def send_then_cut(conn: socket.socket, block: Any) -> None:
        total[0] += len(block)
        if total[0] > cut_at:
            conn.shutdown(socket.SHUT_RDWR)
        send_all(conn, block)

    ftp_module.send_all = send_then_cut
    started = time.monotonic()
    try:
        with open_transport(_settings(server)) as transport:
            transport.put(source, source.name, resume=ResumeOffer(continue_partial=False))
    except Exception as exc:  # the cut: expected
        logger.debug("cut: {}", exc)
    else:
        raise RuntimeError("the upload was not cut")
    finally:
        ftp_module.send_all = send_all
    return time.monotonic() - started


def _second_attempt(server: Server, source: Path, resume: bool) -> tuple[float, int]:
    resumed: list[int] = []
    offer = ResumeOffer(continue_partial=resume, announce=lambda r: resumed.append(r.offset))
    started = time.monotonic()
    with open_transport(_settings(server)) as transport:
        result = transport.put(source, source.name, resume=offer)
    seconds = time.monotonic() - started
    if not result.verified:
        raise RuntimeError("the upload was not verified")
    return seconds, resumed[0] if resumed else 0


def _same(a: Path, b: Path) -> bool:
    return _sha256(a) == _sha256(b)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=200, help="file size in MB (default 200)")
    parser.add_argument("--rate-mb", type=float, default=10.0, help="upload pace in MB/s (default 10)")
    parser.add_argument("--cut", type=float, default=0.6, help="where the line drops (default 0.6)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if not 0 < args.cut < 1 or args.mb < 1 or not 1 <= args.runs <= 10:
        parser.error("--cut in (0, 1), --mb >= 1, --runs in 1..10")
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    work = Path(tempfile.mkdtemp(prefix="stockbridge-bench-resume-"))
    try:
        source = work / "master.mov"
        with source.open("wb") as handle:
            for _ in range(args.mb):
                handle.write(hashlib.shake_256(handle.tell().to_bytes(8, "big")).digest(MB))
        size = source.stat().st_size
        started = time.monotonic()
        _sha256(source)
        hashing = time.monotonic() - started
        cert = make_self_signed_cert(work / "tls")
        rate = int(args.rate_mb * MB)
        print(
            f"# {size / MB:.0f} MB over FTP to pyftpdlib paced to {args.rate_mb:g} MB/s, cut at {args.cut:.0%}"
        )
        print(f"# SHA-256 of the file before its first byte (delivery/resuming.py): {hashing:.2f} s")
        results: dict[str, list[tuple[float, float, int]]] = {"resumed": [], "from zero": []}
        with pyftpdlib_server(work / "srv", tls=False, cert=cert, upload_limit=rate) as server:
            for run in range(args.runs):
                for case in ("resumed", "from zero"):
                    shutil.rmtree(server.root)
                    server.root.mkdir()
                    cut = _cut_upload(server, source, int(size * args.cut))
                    second, offset = _second_attempt(server, source, resume=case == "resumed")
                    if not _same(server.root / source.name, source):
                        raise RuntimeError(f"run {run + 1}, {case}: the file on the server differs")
                    results[case].append((cut, second, offset))
        print("| case | cut attempt (s) | second attempt (s) | whole (s) | resumed from (MB) |")
        print("|---|---|---|---|---|")
        for case, rows in results.items():
            cut_s = statistics.median(row[0] for row in rows)
            second_s = statistics.median(row[1] for row in rows)
            whole_s = statistics.median(row[0] + row[1] for row in rows)
            offset_mb = statistics.median(row[2] for row in rows) / MB
            print(f"| {case} | {cut_s:.1f} | {second_s:.1f} | {whole_s:.1f} | {offset_mb:.0f} |")
        saved = statistics.median(r[1] for r in results["from zero"]) - statistics.median(
            r[1] for r in results["resumed"]
        )
        print(
            f"# resume saves {saved:.1f} s of the second attempt (medians of {args.runs} runs, all verified)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
