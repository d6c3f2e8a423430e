"""Pass-through rows (issue 14 item 2): files that already fit, the whole product against a plain
upload client.

``stockbridge once -c CONFIG`` runs as a subprocess (interpreter start, imports, config, ledger,
ExifTool start, hashing, structural check, metadata read, transfer and verification all included)
on N already-fitting 24 MP JPEGs, against ``lftp mput`` (vsftpd FTPS, ``require_ssl_reuse=YES``)
and ``sftp -b`` (OpenSSH) on the same files and servers, interleaved, each run verified on the
server. Then the breakdown of where stockbridge's time goes: ``once`` on an empty folder (start-up)
and one run sampled by py-spy (all threads, idle included) sorted into the steps of the pipeline.
"""

from __future__ import annotations

import collections
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.results import SUBPROCESS_TIMEOUT, Budget, Row, clear, verify
from bench.servers import Server
from bench.transfers import reference_upload

TARGET = 1.15  # issue 14: once ≤ 1.15 × the reference client
TIME = "/usr/bin/time"


def platform_block(name: str, server: Server) -> str:
    """One ``[platforms.NAME]`` table reaching ``server`` with the product's defaults."""
    lines = [
        f"[platforms.{name}]",
        f'protocol = "{server.protocol}"',
        f'host = "{server.host}"',
        f"port = {server.port}",
        f'username = "{server.username}"',
        f'remote_dir = "{server.remote_dir}"',
    ]
    if server.password:
        lines.append(f'password = "{server.password}"')
    if server.ca_file:
        lines.append(f'ca_file = "{server.ca_file}"')
    if server.key_file:
        lines.append(f'key_file = "{server.key_file}"')
    if server.host_key:
        lines.append(f'host_key = "{server.host_key}"')
    return "\n".join(lines) + "\n"


def once_config(path: Path, backlog: Path, state: Path, server: Server, name: str = "agency") -> Path:
    """A real config file: one platform, no rules (every file fits), settle 0."""
    path.write_text(
        f"""[watch]
folder = "{backlog}"
settle_seconds = 0
# The backlog is hard links to the generated data (no copy); stockbridge refuses those by default.
allow_hardlinks = true

[state]
dir = "{state}"

{platform_block(name, server)}"""
    )
    path.chmod(0o600)
    return path


def stockbridge_binary() -> str:
    """The venv's ``stockbridge`` next to this interpreter (what a user runs)."""
    candidate = Path(sys.executable).with_name("stockbridge")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("stockbridge")
    if found is None:
        raise RuntimeError("stockbridge is not installed in this environment (make .venv/bin/stockbridge)")
    return found


@dataclass
class OnceRun:
    wall: float  # the whole process as the parent saw it
    maxrss_mb: float | None  # peak RSS of the largest process (stockbridge; its ExifTool is smaller)


def run_once_cli(
    config: Path, log: Path, wrap: Sequence[str] = (), timeout: float = SUBPROCESS_TIMEOUT
) -> OnceRun:
    """``stockbridge once -c config -q`` in a subprocess, timed from the parent. Under
    ``/usr/bin/time`` for the peak RSS: its child's ru_maxrss is its own (a child forked straight
    from this big parent would inherit ours over exec)."""
    rss_file = log.with_suffix(".rss")
    timed = [TIME, "-f", "%M", "-o", str(rss_file)] if Path(TIME).exists() and not wrap else []
    command = [*timed, *wrap, stockbridge_binary(), "once", "-c", str(config), "-q"]
    started = time.perf_counter()
    with log.open("a") as stderr:
        done = subprocess.run(command, stdout=stderr, stderr=stderr, timeout=timeout, check=False, env=_env())
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"stockbridge once exited {done.returncode}; see {log}")
    maxrss = None
    if timed and rss_file.exists():
        text = rss_file.read_text().strip().splitlines()
        if text and text[-1].isdigit():
            maxrss = int(text[-1]) / 1024
    return OnceRun(wall, maxrss)


def compile_stockbridge() -> None:
    """Byte-compile stockbridge as installing its wheel does. Under PYTHONDONTWRITEBYTECODE (set
    on the development machines) an editable install would otherwise compile every one of its
    modules again at every start: 0.05-0.1 s of start-up that no user pays."""
    import stockbridge

    package = Path(stockbridge.__file__).parent
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(package)],
        stdout=subprocess.DEVNULL,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
        env={key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("STOCKBRIDGE_CONFIG", None)
    env["NO_COLOR"] = "1"
    return env


def backlog_of(files: Sequence[Path], directory: Path) -> Path:
    """``files`` as hard links in ``directory`` (the watched folder): same bytes, no copy."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for path in files:
        os.link(path, directory / path.name)
    return directory


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


@dataclass
class PassThrough:
    """One protocol's pass-through result: the row, start-up, peak RSS, and the config used."""

    row: Row
    startup: list[float]
    maxrss_mb: list[float]
    config: Path
    state: Path


def passthrough_row(
    workspace: Path,
    files: Sequence[Path],
    server: Server,
    runs: int,
    budget: Budget,
    scratch: Path,
) -> PassThrough:
    """``runs`` × (reference, ``once``), interleaved, each verified; then ``runs`` × ``once`` on an
    empty folder (start-up: interpreter, imports, config, a new ledger, ExifTool start)."""
    label = "lftp mput, TLS 1.2" if server.protocol != "sftp" else "sftp -b"
    total_mb = sum(path.stat().st_size for path in files) / 1e6
    row = Row(
        "pass-through",
        f"{server.name}: {len(files)} × 24 MP already fitting ({total_mb:.0f} MB), `stockbridge once`",
        "s",
        False,
        target=TARGET,
        reference_label=label,
    )
    compile_stockbridge()
    base = _fresh(workspace / f"passthrough-{server.name}")
    backlog = backlog_of(files, base / "backlog")
    state = base / "state"
    config = once_config(base / "stockbridge.toml", backlog, state, server)
    log = base / "once.log"
    result = PassThrough(row, [], [], config, state)
    failures: dict[str, list[str]] = {"ref": [], "sb": []}

    def reference() -> None:
        # TLS 1.2: lftp truncates FTPS uploads under TLS 1.3 (decisions.md M-3).
        reference_upload(server, files, scratch, tls12=True)

    def ours() -> None:
        _fresh(state)  # a first run: every file new, as a contributor's fresh export
        run = run_once_cli(config, log)
        if run.maxrss_mb is not None:
            result.maxrss_mb.append(run.maxrss_mb)

    contenders = [("ref", reference, row.reference), ("sb", ours, row.ours)]
    cpu: dict[str, list[tuple[float, float]]] = {"ref": [], "sb": []}  # (client, server) CPU seconds
    for run in range(runs):
        if budget.exhausted():
            row.notes.append(f"time budget: stopped after {run} runs")
            break
        for name, action, times in contenders if run % 2 == 0 else contenders[::-1]:
            clear(server.root)
            client_before, server_before = _children_cpu(), _server_cpu(server.pid)
            started = time.perf_counter()
            try:
                action()
            except Exception as exc:
                failures[name].append(f"{type(exc).__name__}: {str(exc)[:160]}")
                continue
            elapsed = time.perf_counter() - started
            server_after = _server_cpu(server.pid)
            if server_before is not None and server_after is not None:
                cpu[name].append((_children_cpu() - client_before, server_after - server_before))
            problems = verify(server.root, files)
            if problems:
                failures[name].append(", ".join(problems))
                continue
            times.append(elapsed)
    clear(server.root)
    for name, problems in failures.items():
        if problems:
            who = label if name == "ref" else "stockbridge"
            row.notes.append(f"{who} FAILED {len(problems)}/{runs} runs: {' | '.join(sorted(set(problems)))}")
    # Start-up: the same config on an empty folder.
    empty = _fresh(base / "empty")
    empty_config = once_config(base / "empty.toml", empty, state, server)
    for _ in range(max(3, runs)):
        _fresh(state)
        result.startup.append(run_once_cli(empty_config, log).wall)
    if row.ours and row.reference:
        startup = statistics.median(result.startup)
        ours_median, reference_median = statistics.median(row.ours), statistics.median(row.reference)
        row.notes.append(
            f"start-up (`once` on an empty folder) {startup:.2f} s; without it {ours_median - startup:.2f} s "
            f"= {(ours_median - startup) / reference_median:.2f}× the reference; "
            f"{100 * startup / max(ours_median - reference_median, 1e-9):.0f} % of the gap"
        )
    if cpu["ref"] and cpu["sb"]:
        row.notes.append(
            "CPU s (client + server, medians; 2 cores): reference "
            + " + ".join(f"{statistics.median(part):.2f}" for part in zip(*cpu["ref"], strict=True))
            + ", `once` (with its ExifTool) "
            + " + ".join(f"{statistics.median(part):.2f}" for part in zip(*cpu["sb"], strict=True))
        )
    if result.maxrss_mb:
        row.notes.append(f"peak RSS {max(result.maxrss_mb):.0f} MB")
    return result


def _children_cpu() -> float:
    """User + system seconds of every child process waited for so far (and of theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _server_cpu(pid: int | None) -> float | None:
    """CPU seconds of the server daemon and its finished sessions (vsftpd and sshd fork one per
    login and reap it): /proc's utime + stime + cutime + cstime, once a read 50 ms later shows no
    session still finishing (at most 1 s). None without /proc or a PID."""
    if pid is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    last = None
    for _ in range(20):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        now = sum(int(value) for value in fields[11:15]) / ticks
        if now == last:
            return now
        last = now
        time.sleep(0.05)
    return last


# -- where the time goes: one run sampled by py-spy --------------------------------------------

#: (step, substrings of a frame): a sample is in the first step any of whose substrings is in any of
#: its frames, so the order is the priority (a ledger call made while preparing is "ledger", an
#: import made while connecting is "imports"). The catch-alls come last.
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("imports", ("_find_and_load", "exec_module")),
    ("structural check", ("assets/integrity.py",)),
    ("copy + SHA-256 (+ fsync)", ("_copy_and_hash",)),
    ("ExifTool start", ("ExifTool._start", "ExifTool.start", "ExifTool.spawn", "ExifTool._handshake")),
    ("metadata read", ("stockbridge/metadata/",)),
    ("ledger (SQLite)", ("stockbridge/ledger/",)),
    ("verification (SIZE/stat)", ("_size_after_upload", "_stat_size", "_compare_hash")),
    ("rename", ("Transport._rename",)),
    ("transfer: connect/login", ("Transport.connect", "Transport.mkdirs", "_connect (stockbridge")),
    ("transfer: data", ("Transport._store", "Transport._write", "stockbridge/transports/")),
    ("prepare: other", ("stockbridge/delivery/prepare.py", "stockbridge/assets/", "stockbridge/render/")),
    ("upload loop: other", ("stockbridge/delivery/uploader.py",)),
    ("config", ("stockbridge/config/",)),
    ("intake (scan/settle)", ("stockbridge/intake/",)),
)
WAITING = "waiting for prepared files"


def classify(frames: Sequence[str]) -> str:
    """The step one sample belongs to; ``frames`` outermost first (py-spy's raw order)."""
    own = _innermost_own(frames)
    if own.startswith("drain (") or own.startswith("_prepare_all (") or own.startswith("run_once ("):
        return WAITING  # the upload loop, or the main thread, waiting for the prepare workers
    for step, needles in STEPS:
        if any(needle in frame for frame in frames for needle in needles):
            return step
    return "other (interpreter, threading, idle)"


def _innermost_own(frames: Sequence[str]) -> str:
    """The innermost stockbridge frame of a sample (``function (file:line)``): the hot lines."""
    for frame in reversed(frames):
        if "stockbridge/" in frame:
            return frame.replace("stockbridge/", "")
    return "(outside stockbridge)"


def breakdown(raw: Path, rate: int) -> list[tuple[str, dict[str, float], dict[str, float]]]:
    """py-spy ``--format raw`` (collapsed stacks, one per line, ``--threads``) → per thread, the
    seconds of wall time in each step (idle samples included: a thread waiting on a socket is in
    the step that waits) and in each of its innermost stockbridge lines."""
    per_thread: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    lines: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else "?"
        if thread.startswith("process") and len(frames) > 1 and frames[1].startswith("thread"):
            thread = frames[1]
        thread = thread.split(": ", 1)[-1] if ": " in thread else thread
        per_thread[thread][classify(frames)] += int(count)
        lines[thread][_innermost_own(frames)] += int(count)
    result = []
    for thread, counts in sorted(per_thread.items(), key=lambda item: -sum(item[1].values())):
        steps = {step: samples / rate for step, samples in counts.most_common()}
        hot = {line: samples / rate for line, samples in lines[thread].most_common(6)}
        result.append((thread, steps, hot))
    return result


def profile_once(config: Path, state: Path, server: Server, out: Path, rate: int = 200) -> str:
    """One ``once`` under ``py-spy record --idle --threads``; the breakdown as text (or why not)."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists() and shutil.which("py-spy") is None:
        return "py-spy not installed (.venv/bin/pip install py-spy): no breakdown"
    clear(server.root)
    _fresh(state)
    raw = out.with_suffix(".raw")
    wrap = [
        str(spy if spy.exists() else "py-spy"),
        "record",
        "--idle",
        "--threads",
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--output",
        str(raw),
        "--",
    ]
    run = run_once_cli(config, out.with_suffix(".log"), wrap=wrap)
    clear(server.root)
    lines = [
        f"## {server.name}: one `once` under py-spy ({run.wall:.2f} s with sampling), wall seconds per thread"
    ]
    for thread, steps, hot in breakdown(raw, rate):
        total = sum(steps.values())
        if total < 0.15 or thread.startswith("exiftool-watchdog"):
            continue
        parts = ", ".join(f"{step} {seconds:.2f}" for step, seconds in steps.items() if seconds >= 0.01)
        lines.append(f"* {thread} ({total:.2f} s): {parts}")
        lines.append("  hot lines: " + ", ".join(f"{line} {seconds:.2f}" for line, seconds in hot.items()))
    text = "\n".join(lines)
    out.write_text(text + "\n")
    return text
