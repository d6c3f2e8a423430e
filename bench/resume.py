"""A long upload cut at 60 %, resumed against restarted from zero (issue 14, item 5).

    .venv/bin/python -m bench.resume [--link 20up-200ms|100-30ms|UP@RTT] [--protocols ftps,sftp]
                                     [--mb 200] [--cut 0.6] [--runs 3]
    .venv/bin/python -m bench.resume --loopback [--rate-mb 10] ...
    (``python -m bench.run --only resume -- ...`` runs the same.)

One file of ``--mb`` MB goes to vsftpd (FTPS) and OpenSSH (SFTP) through the link emulator
(bench/link.py: a network namespace behind ``tbf`` and a relay that adds the round trip), or with
``--loopback`` over plain FTP to pyftpdlib paced to ``--rate-mb`` MB/s. Each run: the upload is
cut for real (the emulator resets every connection through the link; on loopback the data socket
is shut down) once ``--cut`` of the file has gone, then it is sent again either with a resume
(transports/resume.py: REST + STOR, or SFTP writes, from the server's size) or from zero (what
stockbridge did before). The rows give the cut attempt, the second attempt and the whole, as
medians of ``--runs``; every file is verified byte for byte on the server. The SHA-256 the uploader
takes of a large file before its first byte (delivery/resuming.py) is timed too. Bounded: every
upload has the socket timeout; the servers, relay and namespace are stopped or deleted in a
``finally``.
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
        password=Secret(server.password) if server.password else None,
        key_file=server.key_file,
        ca_file=server.ca_file,
        host_key=server.host_key,
        known_hosts=server.known_hosts,
        remote_dir=server.remote_dir,
        atomic_rename=True,
        timeout=60.0,
    )


def _cut_upload(server: Server, source: Path, cut_at: int, link: Any) -> float:
    """Send ``source`` and cut the line once ``cut_at`` bytes went: the emulator's ``cut()``, or
    (loopback) the data socket shut down."""
    send_all, total, done = ftp_module.send_all, [0], list[int]()

    def send_then_cut(conn: socket.socket, block: Any) -> None:
        total[0] += len(block)
        if total[0] > cut_at and not done:
            done.append(total[0])
            conn.shutdown(socket.SHUT_RDWR)
        send_all(conn, block)

    def progress(sent: int) -> None:
        if link is not None and sent > cut_at and not done:
            done.append(sent)
            link.cut()

    if link is None:
        ftp_module.send_all = send_then_cut
    started = time.monotonic()
    try:
        with open_transport(_settings(server)) as transport:
            transport.put(source, source.name, progress=progress, resume=ResumeOffer(continue_partial=False))
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


def _runs(
    server: Server, source: Path, cut: float, runs: int, link: Any
) -> dict[str, list[tuple[float, float, int]]]:
    size = source.stat().st_size
    results: dict[str, list[tuple[float, float, int]]] = {"resumed": [], "from zero": []}
    for run in range(runs):
        for case in ("resumed", "from zero"):
            for entry in server.root.iterdir():
                entry.unlink()
            cut_s = _cut_upload(server, source, int(size * cut), link)
            second, offset = _second_attempt(server, source, resume=case == "resumed")
            if not _same(server.root / source.name, source):
                raise RuntimeError(f"run {run + 1}, {case}: the file on the server differs")
            results[case].append((cut_s, second, offset))
            print(f"  {server.name} run {run + 1} {case}: cut {cut_s:.1f} s, then {second:.1f} s", flush=True)
    return results


def _print(name: str, results: dict[str, list[tuple[float, float, int]]]) -> None:
    print(f"| {name} | cut attempt (s) | second attempt (s) | whole (s) | resumed from (MB) |")
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
        f"# {name}: resume saves {saved:.1f} s of the second attempt (medians of {len(results['resumed'])})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=200, help="file size in MB (default 200)")
    parser.add_argument("--link", default="20up-200ms", help="emulated link profile (bench/link.py)")
    parser.add_argument("--protocols", default="ftps,sftp", help="through the link: ftps, sftp or both")
    parser.add_argument("--loopback", action="store_true", help="plain FTP on loopback, paced, no emulator")
    parser.add_argument("--rate-mb", type=float, default=10.0, help="loopback pace in MB/s (default 10)")
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
        started = time.monotonic()
        _sha256(source)
        hashing = time.monotonic() - started
        print(
            f"# SHA-256 of the {args.mb} MB file before its first byte (delivery/resuming.py): {hashing:.2f} s"
        )
        cert = make_self_signed_cert(work / "tls")
        if args.loopback:
            rate = int(args.rate_mb * MB)
            print(
                f"# {args.mb} MB over FTP to pyftpdlib paced to {args.rate_mb:g} MB/s, cut at {args.cut:.0%}"
            )
            with pyftpdlib_server(work / "srv", tls=False, cert=cert, upload_limit=rate) as server:
                _print("ftp (loopback)", _runs(server, source, args.cut, args.runs, None))
            return 0
        from bench.link import LinkEmulator, parse_profile

        why = LinkEmulator.available()
        if why:
            print(f"# link emulator unavailable: {why}; use --loopback")
            return 2
        profile = parse_profile(args.link)
        print(f"# {args.mb} MB through the link {profile.describe()}, cut at {args.cut:.0%}", flush=True)
        with LinkEmulator(profile, work / "link", cert) as link:
            for name in args.protocols.split(","):
                server = {"ftps": link.ftps, "sftp": link.sftp}[name.strip()]
                _print(f"{server.name} via {profile.name}", _runs(server, source, args.cut, args.runs, link))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
