"""What a one-process-per-file probe pays before it reads a byte, and what prepare's workers
running probes side by side give per file (issue 15's ≤ 50 ms per probe; used by bench/video.py
and bench/vector.py).

- :func:`loader_notes`: how many shared libraries the program maps, whether it is linked
  ``BIND_NOW`` (every symbol resolved at start, none lazily) and how many symbol relocations the
  dynamic loader does at start (glibc's ``LD_DEBUG=statistics``): the loader's share of the floor.
- :func:`floor_row`: the program starting and quitting with no file, as a row of its own.
- :func:`parallel_row`: N files probed by as many threads as prepare has workers (one per core
  by default, ``[prepare] workers``), as ingest does: **wall** time per file, not CPU time; each
  probe still costs its whole process on some core.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.results import Row

_RELOCATIONS = re.compile(r"final number of relocations:\s*(\d+)")


def timed_ms(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def loader_notes(command: Sequence[str]) -> list[str]:
    """``ldd``, ``readelf`` and ``LD_DEBUG=statistics`` facts about ``command[0]`` (empty when the
    tools are missing): why its start costs what it does."""
    binary = shutil.which(command[0])
    if binary is None:
        return []
    notes = []
    try:
        libraries = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
        count = sum("=>" in line for line in libraries.splitlines())
        flags = ""
        if shutil.which("readelf"):
            dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, timeout=30)
            flags = "linked BIND_NOW" if re.search(r"FLAGS.*\bNOW\b", dynamic.stdout) else "lazy binding"
        debug = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "LD_DEBUG": "statistics"},
        )
        found = _RELOCATIONS.findall(debug.stdout + debug.stderr)
        relocations = f", {int(found[-1]):,} symbol relocations at start" if found else ""
        notes.append(f"{Path(binary).name}: {count} shared libraries, {flags}{relocations}")
    except (OSError, subprocess.SubprocessError):
        return []
    return notes


def floor_row(group: str, case: str, run: Callable[[], object], runs: int, notes: Sequence[str]) -> Row:
    """The program's start and quit alone, ``runs`` times: the floor under one process per file."""
    row = Row(group, case, "ms/file", False, reference_label="-")
    run()  # warm: page cache
    row.ours += [timed_ms(run) for _ in range(runs)]
    row.notes += list(notes)
    return row


def parallel_row(
    group: str, case: str, probe: Callable[[Path], object], files: Sequence[Path], runs: int, one_ms: float
) -> Row:
    """``files`` probed by one thread per prepare worker, as ingest does: wall ms per file, against
    ``one_ms`` (the median of one probe at a time)."""
    workers = max(1, os.cpu_count() or 1)
    row = Row(group, case, "ms/file", False, reference_label="one at a time (per-file row)")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in range(runs):
            wall = timed_ms(lambda: list(pool.map(probe, files)))
            row.ours.append(wall / len(files))
            row.reference.append(one_ms)
    row.notes.append(
        f"{len(files)} files, {workers} workers (one per core, as [prepare] workers = 0): WALL time per file;"
        " CPU per file is unchanged, the cores share it"
    )
    return row
