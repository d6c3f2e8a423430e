"""Issue 14's table alone: the pass-through rows and the emulated-link rows, in one run.

    .venv/bin/python -m bench.issue14 [--only passthrough|link] [--files 40] [--runs 3]
                                      [--link-files 20|60|300] [--profiles 20/200,100/30]
                                      [--budget S] [--keep DIR] [--json FILE]

(``python -m bench.run --only passthrough|link|issue14`` runs the same.) Servers on 127.0.0.1 for the
pass-through rows, inside a network namespace this run creates for the link rows; every server,
relay and namespace is stopped or deleted in a ``finally``.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from loguru import logger

from bench.data import make_jpeg_set
from bench.link import PROFILES, LinkEmulator, parse_profile
from bench.link_rows import link_rows, make_workload
from bench.passthrough import passthrough_row, profile_once
from bench.results import Budget, Row, print_table, write_json
from bench.servers import Server, sshd_server, vsftpd_server
from stockbridge.demo.localserver import make_self_signed_cert
from stockbridge.metadata.exiftool import ExifTool


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def passthrough_rows(
    workspace: Path, files: Sequence[Path], servers: Sequence[Server], runs: int, budget: Budget
) -> tuple[list[Row], list[str]]:
    """The pass-through rows (one per server: vsftpd FTPS, OpenSSH SFTP) and their py-spy
    breakdowns."""
    rows: list[Row] = []
    texts: list[str] = []
    scratch = workspace / "scratch"
    scratch.mkdir(exist_ok=True)
    profiles = workspace / "profiles"
    profiles.mkdir(exist_ok=True)
    for server in servers:
        if budget.exhausted():
            break
        result = passthrough_row(workspace, files, server, runs, budget, scratch)
        rows.append(result.row)
        print(f"  {result.row.case}: ref {result.row.reference} sb {result.row.ours}", flush=True)
        texts.append(profile_once(result.config, result.state, server, profiles / f"once_{server.name}.txt"))
        print(texts[-1], flush=True)
    return rows, texts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("passthrough", "link", "issue14"), default="issue14")
    parser.add_argument("--files", type=int, default=40, help="24 MP JPEGs in the pass-through rows")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per contender (median)")
    parser.add_argument("--budget", type=float, default=2400.0, help="seconds for the whole run")
    parser.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument(
        "--link-files",
        type=int,
        default=20,
        help="files in the link workload (the first N of issue 14's 300; 300 ≈ 1.5 GB: a 10 min bound at 20 Mbit/s, 15-22 min a pass)",
    )
    parser.add_argument(
        "--link-profiles",
        default="100-30ms,20up-200ms",
        help="comma-separated: " + ", ".join(PROFILES) + ", or UP[/DOWN]@RTT_MS (Mbit/s, ms)",
    )
    parser.add_argument(
        "--link-runs", type=int, default=None, help="timed runs per contender on a link (default --runs)"
    )
    parser.add_argument(
        "--link-protocols",
        default="ftps,sftp",
        help="comma-separated: which of ftps, sftp get link rows (default both)",
    )
    parser.add_argument(
        "--link-connections",
        type=int,
        default=1,
        help="the platform's `connections` for `once` in the link rows (default 1, the product's)",
    )
    parser.add_argument(
        "--link-breakdown",
        action="store_true",
        help="also one `once` per link row under py-spy (where its time goes on that link)",
    )
    args = parser.parse_args(argv)
    profiles = [parse_profile(text) for text in args.link_profiles.split(",") if text.strip()]
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    signal.signal(signal.SIGTERM, _interrupt)
    budget = Budget(args.budget)
    started = time.monotonic()
    rows: list[Row] = []
    texts: list[str] = []
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            workspace = args.keep
            workspace.mkdir(parents=True, exist_ok=True)
        else:
            workspace = Path(tempfile.mkdtemp(prefix="stockbridge-bench14-"))
            stack.callback(shutil.rmtree, workspace, True)
        shm = Path("/dev/shm")
        served = Path(tempfile.mkdtemp(prefix="stockbridge-bench14-srv-", dir=shm if shm.is_dir() else None))
        stack.callback(shutil.rmtree, served, True)
        exiftool = stack.enter_context(ExifTool(cwd=workspace))
        cert = make_self_signed_cert(workspace / "tls")
        if args.only in ("passthrough", "issue14"):
            files = make_jpeg_set(workspace / "data" / "big24", "photo24", args.files, (6000, 4000), exiftool)
            print(f"# pass-through: {len(files)} × 24 MP ({time.monotonic() - started:.0f} s)", flush=True)
            vsftpd = stack.enter_context(vsftpd_server(served / "vsftpd", cert))
            sshd = stack.enter_context(sshd_server(served / "sshd"))
            more_rows, more_texts = passthrough_rows(workspace, files, (vsftpd, sshd), args.runs, budget)
            rows += more_rows
            texts += more_texts
        if args.only in ("link", "issue14"):
            why = LinkEmulator.available()
            if why:
                texts.append(f"link rows skipped: the emulator {why}")
            else:
                files = make_workload(workspace / "data" / "link", args.link_files, exiftool)
                total = sum(path.stat().st_size for path in files)
                print(
                    f"# link workload: {len(files)} files, {total / 1e6:.0f} MB ({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
                for profile in profiles:
                    if budget.exhausted():
                        texts.append(f"{profile.name}: time budget exhausted, not run")
                        continue
                    more_rows, line = link_rows(
                        profile,
                        files,
                        args.link_runs or args.runs,
                        budget,
                        workspace,
                        cert,
                        args.link_breakdown,
                        protocols=tuple(p.strip() for p in args.link_protocols.split(",") if p.strip()),
                        connections=args.link_connections,
                    )
                    rows += more_rows
                    texts.append(line)
        print(f"\n# results ({time.monotonic() - started:.0f} s)\n")
        print_table(rows)
        for text in texts:
            print("\n" + text)
        if args.json is not None:
            write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
