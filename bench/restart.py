"""Restart rows (issue 6): ``once`` with N files already uploaded must find nothing to do, fast, and a
backlog of N files stays within its peak-RSS limit.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.data import make_tiny_jpegs
from bench.end_to_end import run_child
from bench.results import Row, verify

RESTART_LIMIT_SECONDS = 5.0  # issue 6: `once` with 10,000 files already uploaded finds nothing in ≤ 5 s
BACKLOG_RSS_LIMIT_MB = 300.0  # issue 6: peak RSS of a backlog run, whatever its size


def restart_rows(workspace: Path, count: int) -> list[Row]:
    """``count`` small JPEGs uploaded by one ``once`` to a folder platform, then ``once`` twice more.

    The second and third runs must find nothing to do: every file is unchanged (size, mtime,
    inode), so nothing may be hashed, copied, read by ExifTool or sent. Each run is its own
    process (fresh interpreter, peak RSS its own) with a cProfile of run_once in ``profiles/``.
    """
    backlog, sent, profiles = workspace / "backlog", workspace / "sent", workspace / "profiles"
    sent.mkdir(parents=True)
    profiles.mkdir(exist_ok=True)
    started = time.perf_counter()
    files = make_tiny_jpegs(backlog, count)
    made = time.perf_counter() - started
    config = workspace / "stockbridge.toml"
    config.write_text(
        f'[watch]\nfolder = "{backlog}"\nsettle_seconds = 0\n\n[state]\ndir = "{workspace / "state"}"\n\n'
        f'[platforms.archive]\nprotocol = "folder"\npath = "{sent}"\n'
    )
    log = workspace / "once.log"
    print(f"  restart: {count} files made in {made:.0f} s; first once (uploads all) ...", flush=True)
    runs = []
    for label in ("first", "second", "third"):
        runs.append(run_child(["once", str(config), str(profiles / f"once_{count}_{label}.txt")], log))
        print(f"  restart: {label} once {float(runs[-1]['elapsed']):.2f} s", flush=True)  # type: ignore[arg-type]
    first, second, third = runs
    problems = [f"archive: {problem}" for problem in verify(sent, files)]
    rehashed = [
        f"{label} run hashed {run['hashed']} files"
        for label, run in zip(("second", "third"), (second, third), strict=True)
        if run["hashed"]
    ]
    counts = {label: run["counts"] for label, run in zip(("first", "second", "third"), runs, strict=True)}

    backlog_row = Row(
        "end to end",
        f"once, {count} small files → folder (all uploaded)",
        "files/s",
        True,
        reference_label="-",
    )
    backlog_row.ours = [count / float(first["elapsed"])]  # type: ignore[arg-type]
    backlog_row.notes.append(f"{float(first['elapsed']):.1f} s incl. start-up; states {counts['first']}")  # type: ignore[arg-type]
    backlog_row.notes += problems
    memory = Row(
        "memory",
        f"peak RSS, once over a backlog of {count} files",
        "MB",
        False,
        target=1.0,
        reference_label=f"{BACKLOG_RSS_LIMIT_MB:.0f} MB limit",
    )
    memory.reference, memory.ours = [BACKLOG_RSS_LIMIT_MB], [float(first["maxrss_mb"])]  # type: ignore[arg-type]
    restart = Row(
        "restart",
        f"once again, {count} files already uploaded",
        "s",
        False,
        target=1.0,
        reference_label=f"{RESTART_LIMIT_SECONDS:g} s for 10,000 files",
    )
    # Measured at this N: the whole process (interpreter, imports, ExifTool start, scan, ledger).
    # With fewer than 10,000 files, run_once's part is scaled linearly to 10,000 and the start-up
    # added once (run_once's own fixed costs are scaled too: an upper bound).
    extra = max(0.0, 10_000 / count - 1)
    restart.reference = [RESTART_LIMIT_SECONDS]
    restart.ours = [float(run["elapsed"]) + float(run["wall"]) * extra for run in (second, third)]  # type: ignore[arg-type]
    restart.notes.append(
        f"second {float(second['elapsed']):.2f} s, third {float(third['elapsed']):.2f} s "  # type: ignore[arg-type]
        f"(run_once alone {float(second['wall']):.2f} / {float(third['wall']):.2f} s; "  # type: ignore[arg-type]
        f"peak RSS {float(second['maxrss_mb']):.0f} MB)"  # type: ignore[arg-type]
        + (", run_once scaled to 10,000 files" if extra else "")
    )
    restart.notes += rehashed or ["nothing hashed"]
    if counts["second"] != counts["first"] or counts["third"] != counts["first"]:
        restart.notes.append(f"states changed: {counts}")
    return [backlog_row, memory, restart]
