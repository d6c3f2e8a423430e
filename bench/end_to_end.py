"""End-to-end rows: ``once`` in a process of its own (``bench.e2e_child``) on a backlog to three
platforms, then again with nothing to do; its wall time, CPU and peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bench.results import SUBPROCESS_TIMEOUT, clear, verify
from bench.servers import Server


def config_text(workspace: Path, backlog: Path, ftp: Server, ftps: Server, sftp: Server) -> str:
    return f"""
[watch]
folder = "{backlog}"
settle_seconds = 0
# The backlog is hard links to the generated data (no copy); stockbridge refuses those by default.
allow_hardlinks = true

[state]
dir = "{workspace / "state"}"

[platforms.ftp_agency]
protocol = "ftp"
host = "{ftp.host}"
port = {ftp.port}
username = "{ftp.username}"
password = "{ftp.password}"
remote_dir = "{ftp.remote_dir}"

[platforms.ftps_agency]
protocol = "ftps"
host = "{ftps.host}"
port = {ftps.port}
username = "{ftps.username}"
password = "{ftps.password}"
ca_file = "{ftps.ca_file}"
remote_dir = "{ftps.remote_dir}"

[platforms.sftp_agency]
protocol = "sftp"
host = "{sftp.host}"
port = {sftp.port}
username = "{sftp.username}"
key_file = "{sftp.key_file}"
host_key = "{sftp.host_key}"
remote_dir = "{sftp.remote_dir}"

[platforms.sftp_agency.rules]
max_long_edge = 2500
"""


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU-seconds of the whole machine since boot, all cores (/proc/stat)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def run_child(args: Sequence[str], log: Path) -> dict[str, object]:
    """One ``bench.e2e_child`` run; its JSON, plus ``elapsed``: the whole process as the parent saw
    it (interpreter start, imports, config, ExifTool start included: what a user waits for);
    ``cpu``: CPU-seconds of the child and its ExifTools; ``machine_busy``/``machine_total``:
    CPU-seconds the whole machine was busy/had over the run (servers included)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, total = _machine_cpu()
    started = time.perf_counter()
    with log.open("a") as stderr:
        done = subprocess.run(
            [sys.executable, "-m", "bench.e2e_child", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=SUBPROCESS_TIMEOUT * 2,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
    elapsed = time.perf_counter() - started
    busy_after, total_after = _machine_cpu()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"child exited {done.returncode}; see {log}")
    cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return dict(json.loads(done.stdout.strip().splitlines()[-1])) | {
        "elapsed": elapsed,
        "cpu": cpu,
        "machine_busy": busy_after - busy,
        "machine_total": total_after - total,
    }


@dataclass
class EndToEnd:
    wall: float
    restart: float
    maxrss_mb: float
    counts: dict[str, int]
    problems: list[str]
    bytes_per_platform: dict[str, int]
    elapsed: float  # the whole `once` process as the parent saw it (start-up included)
    cpu: float  # CPU-seconds of `once` and its ExifTools
    machine_busy: float  # CPU-seconds the machine was busy during `once` (servers included)
    machine_total: float  # CPU-seconds the machine had during `once` (wall × cores)


def end_to_end(
    workspace: Path, files: Sequence[Path], servers: tuple[Server, Server, Server], log: Path
) -> EndToEnd:
    """run_once on a backlog of ``files`` to three platforms, then again (restart: nothing to do)."""
    backlog = workspace / "backlog"
    backlog.mkdir(parents=True)
    for path in files:
        os.link(path, backlog / path.name)  # same bytes, no copy; the pipeline only reads sources
    for server in servers:
        clear(server.root)
    config = workspace / "stockbridge.toml"
    config.write_text(config_text(workspace, backlog, *servers))
    config.chmod(0o600)
    first = run_child(["once", str(config)], log)
    ftp, ftps, sftp = servers
    problems = []
    for server in (ftp, ftps):
        found = verify(server.root, files)
        problems += [f"{server.name}: {problem}" for problem in found]
    rendered = [entry for entry in sftp.root.iterdir() if entry.is_file()]
    if len(rendered) != len(files):
        problems.append(f"sftp: {len(rendered)} of {len(files)} downscaled copies")
    for entry in rendered[:3]:
        with Image.open(entry) as image:
            if max(image.size) != 2500:
                problems.append(f"sftp: {entry.name} is {image.size}, not 2500 px long")
    sizes = {
        "ftp": sum(entry.stat().st_size for entry in ftp.root.iterdir() if entry.is_file()),
        "ftps": sum(entry.stat().st_size for entry in ftps.root.iterdir() if entry.is_file()),
        "sftp": sum(entry.stat().st_size for entry in rendered),
    }
    # A file that needs no change goes byte-identical: compare one upload with its source.
    sample = files[0]
    if (ftp.root / sample.name).exists() and (ftp.root / sample.name).read_bytes() != sample.read_bytes():
        problems.append("ftp: an unchanged file arrived with different bytes")
    second = run_child(["once", str(config)], log)
    counts = first.get("counts", {})
    assert isinstance(counts, dict)
    return EndToEnd(
        wall=float(first["wall"]),  # type: ignore[arg-type]
        restart=float(second["wall"]),  # type: ignore[arg-type]
        maxrss_mb=max(float(first["maxrss_mb"]), float(second["maxrss_mb"])),  # type: ignore[arg-type]
        counts={str(key): int(value) for key, value in counts.items()},
        problems=problems,
        bytes_per_platform=sizes,
        elapsed=float(first["elapsed"]),  # type: ignore[arg-type]
        cpu=float(first["cpu"]),  # type: ignore[arg-type]
        machine_busy=float(first["machine_busy"]),  # type: ignore[arg-type]
        machine_total=float(first["machine_total"]),  # type: ignore[arg-type]
    )
