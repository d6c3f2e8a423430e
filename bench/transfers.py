"""Transfer rows: lftp and OpenSSH ``sftp -b`` against stockbridge's transports, interleaved, each run
verified on the server.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.results import MB, SUBPROCESS_TIMEOUT, Budget, Row, clear, verify
from bench.servers import Server
from stockbridge.transports import open_transport

SLOW_RUN = 60.0  # seconds: a transfer run slower than this is not repeated (lftp vs vsftpd retries)


def subset(files: Sequence[Path], count: int, directory: Path) -> list[Path]:
    """The first ``count`` files, alone in ``directory`` (hard links): the reference tools upload a
    whole folder by glob."""
    if not directory.exists():
        directory.mkdir(parents=True)
        for path in files[:count]:
            os.link(path, directory / path.name)
    return sorted(directory.iterdir())


def lftp_script(server: Server, source_dir: Path, pattern: str, tls12: bool = False) -> str:
    tls = server.protocol == "ftps"
    lines = [
        "set cmd:fail-exit yes",
        "set net:timeout 30",
        "set net:max-retries 3",
        # lftp waits 30 s before a reconnect by default; vsftpd's require_ssl_reuse makes it
        # reconnect often (decisions.md M-3), so the reference gets 1 s instead.
        "set net:reconnect-interval-base 1",
        "set net:reconnect-interval-max 1",
        "set ftp:passive-mode yes",
        f"set ftp:ssl-allow {'yes' if tls else 'no'}",
    ]
    if tls:
        lines += ["set ftp:ssl-force yes", "set ftp:ssl-protect-data yes", "set ssl:verify-certificate no"]
        if tls12:
            # The workaround for lftp's TLS 1.3 truncation (decisions.md M-3, lavv17/lftp#666).
            lines.append('set ssl:priority "NORMAL:-VERS-TLS1.3"')
    lines += [
        f"open -u {server.username},{server.password} -p {server.port} {server.host}",
        f"cd {server.remote_dir}",
        f"lcd {source_dir}",
        f"mput {pattern}",
        "bye",
    ]
    return "\n".join(lines) + "\n"


def reference_upload(
    server: Server,
    files: Sequence[Path],
    scratch: Path,
    tls12: bool = False,
    timeout: float = SUBPROCESS_TIMEOUT,
) -> None:
    source_dir = files[0].parent
    pattern = "*" + files[0].suffix
    if server.protocol in ("ftp", "ftps"):
        script = scratch / "lftp.script"
        script.write_text(lftp_script(server, source_dir, pattern, tls12))
        command = ["lftp", "-f", str(script)]
    else:
        batch = scratch / "sftp.batch"
        batch.write_text(f"cd {server.remote_dir}\nlcd {source_dir}\nput {pattern}\n")
        assert server.key_file is not None and server.known_hosts is not None
        command = [
            "sftp",
            "-F",
            "/dev/null",
            "-q",
            "-b",
            str(batch),
            "-P",
            str(server.port),
            "-i",
            str(server.key_file),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={server.known_hosts}",
            f"{server.username}@{server.host}",
        ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{command[0]} exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"
        )


def stockbridge_upload(server: Server, files: Sequence[Path], **overrides: object) -> None:
    transport = open_transport(server.settings(**overrides))
    transport.connect()
    try:
        transport.mkdirs()
        for path in files:
            transport.put(path, path.name)
    finally:
        transport.close()


def time_transfers(
    row: Row,
    server: Server,
    files: Sequence[Path],
    runs: int,
    scratch: Path,
    budget: Budget,
    ours: Callable[[], None] | None = None,
    tls12: bool = False,
    reuse: Row | None = None,
) -> None:
    """Median over ``runs`` of reference and stockbridge, interleaved; each run verified."""
    total = sum(path.stat().st_size for path in files)

    def rate(seconds: float) -> float:
        return total / MB / seconds if row.unit == "MB/s" else len(files) / seconds

    ours = ours or (lambda: stockbridge_upload(server, files))
    contenders: list[tuple[str, Callable[[], None], list[float]]] = [
        ("ref", lambda: reference_upload(server, files, scratch, tls12), row.reference),
        ("sb", ours, row.ours),
    ]
    if reuse is not None:
        # Same stockbridge run as the row before (only the reference differs): not repeated.
        row.ours = list(reuse.ours)
        contenders = contenders[:1]
    failures: dict[str, list[str]] = {"ref": [], "sb": []}
    too_slow: set[str] = set()  # a contender whose one run took over SLOW_RUN is not repeated
    for run in range(runs):
        if budget.exhausted():
            row.notes.append(f"time budget: stopped after {run} runs")
            break
        for label, action, results in contenders if run % 2 == 0 else contenders[::-1]:
            if label in too_slow:
                continue
            clear(server.root)
            started = time.perf_counter()
            try:
                action()
            except Exception as exc:
                failures[label].append(f"{type(exc).__name__}: {str(exc)[:160]}")
                continue
            elapsed = time.perf_counter() - started
            if elapsed > SLOW_RUN:
                too_slow.add(label)
                row.notes.append(
                    f"{row.reference_label if label == 'ref' else 'stockbridge'}: {elapsed:.0f} s per run, not repeated"
                )
            problems = verify(server.root, files)
            if problems:
                failures[label].append(", ".join(problems))
                continue  # a run that lost data has no speed
            results.append(rate(elapsed))
    clear(server.root)
    for label, problems in failures.items():
        if problems:
            who = row.reference_label if label == "ref" else "stockbridge"
            row.notes.append(f"{who} FAILED {len(problems)}/{runs} runs: {' | '.join(sorted(set(problems)))}")
