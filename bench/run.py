"""stockbridge against the reference tools, on one machine, in one run (issue 6).

    .venv/bin/python -m bench.run [--scale quick|default|full] [--runs N] [--keep DIR]

Generates the data into a temporary directory, starts pyftpdlib FTP and FTPS, vsftpd FTPS
(require_ssl_reuse=YES) and OpenSSH sshd on 127.0.0.1, times the reference tools (lftp, OpenSSH
``sftp -b``, ``exiftool -stay_open``, Pillow with ``draft()``) and stockbridge's building blocks on
the same files and servers, then ``run_once`` end to end, and prints one table. Every transfer is
verified on the server (file count and sizes): a run that loses data is reported, never timed as a
success. Every server is stopped by its PID in a ``finally``; every loop is bounded in count, every
subprocess in time, and the whole run by ``--budget`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import os
import platform
import pstats
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from loguru import logger

from bench.data import SCALES, DataSet, Scale, generate
from bench.end_to_end import end_to_end, run_child
from bench.integrity import integrity_rows, make_png_set
from bench.metadata import time_metadata
from bench.render import time_ingest, time_render
from bench.restart import restart_rows
from bench.results import MB, Budget, Row, _median, clear, print_table, write_json
from bench.servers import pyftpdlib_server, sshd_server, vsftpd_server
from bench.transfers import stockbridge_upload, subset, time_transfers
from bench.video import main as video_main
from bench.video import video_rows
from stockbridge.demo.localserver import make_self_signed_cert
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.images import RenderSpec, fit_size, render

THROTTLE_BYTES_PER_SECOND = 5_000_000  # a home upload link (issue 6)
VSFTPD_SMALL_FILES = 10


def profile(function: Callable[[], object], path: Path, limit: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        function()
    finally:
        profiler.disable()
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(limit)
    text = buffer.getvalue()
    path.write_text(text)
    return text


def machine_facts() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30

    def version(command: list[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return "missing"
        return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"

    import paramiko
    import PIL
    import pyftpdlib

    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} × {cpu}; {memory:.0f} GiB RAM; "
        f"{platform.platform()}; Python {platform.python_version()}; Pillow {PIL.__version__}; "
        f"paramiko {paramiko.__version__}; pyftpdlib {pyftpdlib.__ver__}; "
        f"{version(['lftp', '--version'])}; {version(['ssh', '-V'])}; exiftool {version(['exiftool', '-ver'])}"
    )


@contextlib.contextmanager
def workspace_dir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    path = Path(tempfile.mkdtemp(prefix="stockbridge-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _only_video(args: argparse.Namespace, _rest: list[str]) -> int:
    return video_main(["--runs", str(args.runs or 20)] + (["--keep", str(args.keep)] if args.keep else []))


def _only_vector(args: argparse.Namespace, _rest: list[str]) -> int:
    from bench import vector

    return vector.main(["--runs", str(args.runs or 3)] + (["--keep", str(args.keep)] if args.keep else []))


def _only_web(args: argparse.Namespace, _rest: list[str]) -> int:
    from bench.web import main as web_main

    return web_main()


def _only_issue14(args: argparse.Namespace, rest: list[str]) -> int:
    """Issue 14's rows (bench/issue14.py): pass-through, the emulated link, or both."""
    from bench import issue14

    forwarded = [*rest, "--only", args.only]
    for option, value in (
        ("--budget", args.budget),
        ("--keep", args.keep),
        ("--json", args.json),
        ("--runs", args.runs),
    ):
        if value is not None:
            forwarded += [option, str(value)]
    return issue14.main(forwarded)


def _only_resume(args: argparse.Namespace, rest: list[str]) -> int:
    """A cut upload resumed against restarted from zero (bench/resume.py)."""
    from bench import resume

    return resume.main([*rest, *(["--runs", str(args.runs)] if args.runs is not None else [])])


#: ``--only NAME``: rows that run on their own, with what they measure.
ONLY: dict[str, tuple[str, Callable[[argparse.Namespace, list[str]], int]]] = {
    "video": ("ffprobe per clip, a 4 GB clip's peak RSS; bench/video.py", _only_video),
    "vector": ("one gs per EPS, batched, SVG; bench/vector.py", _only_vector),
    "passthrough": ("issue 14: fitting 24 MP files, once vs lftp mput and sftp -b", _only_issue14),
    "link": ("issue 14: the emulated uplink, once vs lftp and sftp -b vs the link bound", _only_issue14),
    "issue14": ("issue 14: passthrough and link", _only_issue14),
    "resume": ("issue 14: a long upload cut at 60 % resumed vs restarted; bench/resume.py", _only_resume),
    "web": ("the page's first paint at 10,000 files, thumbnails vs uploads; bench/web.py", _only_web),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="default")
    parser.add_argument(
        "--quick", action="store_const", const="quick", dest="scale", help="same as --scale quick"
    )
    parser.add_argument("--runs", type=int, default=None, help="timed runs per case (default: per scale)")
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds for the whole run (default: per scale)"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="work in DIR and keep it (data, logs, profiles)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument(
        "--restart-files",
        type=int,
        default=None,
        help="files in the restart case (uploaded once, then `once` with nothing to do; 0: skip;"
        " default per scale: quick 500, default 2000, full 10000)",
    )
    parser.add_argument(
        "--only",
        choices=sorted(ONLY),
        default=None,
        help="only these rows: "
        + "; ".join(f"{name} ({what})" for name, (what, _run) in sorted(ONLY.items()))
        + ". Options after `--` go to issue 14's rows, e.g. `--only link -- --link-files 20`",
    )
    args, rest = parser.parse_known_args(argv)
    if args.only is not None:
        return ONLY[args.only][1](args, [option for option in rest if option != "--"])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    scale: Scale = SCALES[args.scale]
    runs = args.runs or scale.runs
    budget = Budget(args.budget or {"quick": 240, "default": 540, "full": 2400}[scale.name])
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every server we started.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    print(
        f"# stockbridge benchmark, scale {scale.name}, {runs} runs per case\n# {machine_facts()}", flush=True
    )

    rows: list[Row] = []
    with workspace_dir(args.keep) as workspace, contextlib.ExitStack() as stack:
        # Server roots on tmpfs when there is one: the servers' disk write-back is not what we measure.
        shm = Path("/dev/shm")
        served = Path(tempfile.mkdtemp(prefix="stockbridge-bench-srv-", dir=shm if shm.is_dir() else None))
        stack.callback(shutil.rmtree, served, True)
        exiftool = stack.enter_context(ExifTool(cwd=workspace))
        print(f"# generating data in {workspace} ...", flush=True)
        data: DataSet = generate(workspace / "data", scale, exiftool)
        total_big = sum(path.stat().st_size for path in data.big24) / MB
        print(
            f"# data: {len(data.big24)} × 24 MP JPEG ({total_big / len(data.big24):.1f} MB each), "
            f"{len(data.big45)} × 45 MP, {len(data.tiff16)} × 16-bit TIFF, {len(data.small)} × "
            f"{sum(p.stat().st_size for p in data.small) / len(data.small) / 1000:.0f} KB JPEG "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )
        cert = make_self_signed_cert(workspace / "tls")
        ftp = stack.enter_context(pyftpdlib_server(served, tls=False, cert=cert))
        ftps = stack.enter_context(pyftpdlib_server(served, tls=True, cert=cert))
        vsftpd = stack.enter_context(vsftpd_server(served / "vsftpd", cert))
        sshd = stack.enter_context(sshd_server(served / "sshd"))
        print(
            f"# servers: ftp :{ftp.port}, ftps :{ftps.port}, vsftpd :{vsftpd.port} (pid {vsftpd.pid}), sshd :{sshd.port} (pid {sshd.pid})",
            flush=True,
        )
        scratch = workspace / "scratch"
        scratch.mkdir()

        # -- transfers
        cases = [
            (ftp, "lftp mput", False),
            (ftps, "lftp mput (TLS 1.3)", False),
            (ftps, "lftp mput, TLS 1.2", True),
            (vsftpd, "lftp mput (TLS 1.3)", False),
            (vsftpd, "lftp mput, TLS 1.2", True),
            (sshd, "sftp -b", False),
        ]
        previous: dict[tuple[str, str], Row] = {}
        for server, label, tls12 in cases:
            for all_files, kind, unit, target in (
                (data.big24, "big", "MB/s", 0.95),
                (data.small, "small", "files/s", 0.9),
            ):
                files = all_files
                if server is vsftpd and kind == "small":
                    # lftp retries every data connection against require_ssl_reuse (~0.4 s/file,
                    # decisions.md M-3): a rate is what we want, so a subset does.
                    files = subset(all_files, VSFTPD_SMALL_FILES, workspace / "data" / "small-subset")
                row = Row(
                    "transfer",
                    f"{server.name} {kind} ×{len(files)}",
                    unit,
                    True,
                    target=target,
                    reference_label=label,
                )
                rows.append(row)
                time_transfers(
                    row,
                    server,
                    files,
                    runs,
                    scratch,
                    budget,
                    tls12=tls12,
                    reuse=previous.get((server.name, kind)) if tls12 else None,
                )
                previous[(server.name, kind)] = row
                print(
                    f"  {row.case}: ref {_median(row.reference)} sb {_median(row.ours)} {unit} {'; '.join(row.notes)}",
                    flush=True,
                )
            if server is sshd:
                # The default asks the server (OpenSSH: 261120); this row pins the 32 KiB every
                # server takes, for agencies that refuse more.
                for files, kind, unit in ((data.big24, "big", "MB/s"), (data.small, "small", "files/s")):
                    row = Row(
                        "transfer",
                        f"sftp {kind}, sftp_request_size=32768",
                        unit,
                        True,
                        target=0.95 if kind == "big" else 0.9,
                        reference_label=label,
                    )
                    rows.append(row)
                    time_transfers(
                        row,
                        server,
                        files,
                        runs,
                        scratch,
                        budget,
                        ours=functools.partial(stockbridge_upload, sshd, files, sftp_request_size=32768),
                    )
                    print(
                        f"  {row.case}: ref {_median(row.reference)} sb {_median(row.ours)} {unit} {'; '.join(row.notes)}",
                        flush=True,
                    )

        # -- pass-through (issue 14): the whole `stockbridge once` on files that already fit
        if not budget.exhausted():
            from bench.issue14 import passthrough_rows

            more_rows, _ = passthrough_rows(
                workspace, data.big24[: scale.passthrough], (vsftpd, sshd), runs, budget
            )
            rows += more_rows

        # -- metadata
        row = Row(
            "metadata",
            f"read ×{len(data.big24)} (24 MP)",
            "ms/file",
            False,
            target=1.2,
            reference_label="exiftool -stay_open, same tags, one batch",
        )
        rows.append(row)
        time_metadata(row, data.big24, runs, exiftool, scratch)
        print(f"  metadata: ref {_median(row.reference)} sb {_median(row.ours)} ms/file", flush=True)

        # -- integrity (issue 14): the structural check against the full decode it replaces
        if not budget.exhausted():
            pngs = make_png_set(workspace / "data" / "png24", 2, exiftool)
            rows += integrity_rows(data.big24[: scale.render_images], pngs, data.tiff16[:2], runs)

        # -- video (issue 15): ffprobe per clip; a large clip streams through in constant memory
        if not budget.exhausted():
            clip_gb = {"quick": 0.5, "default": 1.0, "full": 4.0}[scale.name]
            rows += video_rows(workspace / "video", runs * 4, clip_gb)

        # -- vectors (issue 15): one gs per EPS, and what one batched run would cost
        if not budget.exhausted() and shutil.which("gs"):
            from bench.vector import vector_rows

            rows += vector_rows(workspace / "vector", files=8, runs=runs)

        # -- render
        for label, files in (
            ("24 MP JPEG", data.big24),
            ("45 MP JPEG", data.big45),
            ("16-bit TIFF", data.tiff16),
        ):
            render_files = files[: scale.render_images]
            if not render_files or budget.exhausted():
                continue
            plain = Row(
                "render",
                f"{label} → 2500 px",
                "ms/image",
                False,
                target=1.1,
                reference_label="Pillow draft+LANCZOS, q92 4:2:0",
            )
            same = Row(
                "render",
                f"{label} → 2500 px",
                "ms/image",
                False,
                target=None,
                reference_label="same + product encoder (4:4:4, optimize, ICC)",
            )
            rows += [plain, same]
            time_render((plain, same), render_files, runs, exiftool, scratch, budget)
            print(
                f"  render {label}: ref {_median(plain.reference)} ref2 {_median(same.reference)} sb {_median(plain.ours)} ms",
                flush=True,
            )

        # -- profiles of the building blocks that miss (cProfile, one run each)
        profiles = workspace / "profiles"
        profiles.mkdir(exist_ok=True)
        big_subset = data.big24[: max(4, len(data.big24) // 4)]
        profile(lambda: stockbridge_upload(sshd, big_subset), profiles / "sftp_big_32k.txt")
        clear(sshd.root)
        profile(lambda: stockbridge_upload(sshd, data.small[:100]), profiles / "sftp_small.txt")
        clear(sshd.root)
        profile(lambda: stockbridge_upload(ftps, big_subset), profiles / "ftps_big.txt")
        clear(ftps.root)
        size = fit_size((6000, 4000), None, 2500)
        assert size is not None
        spec = RenderSpec(output_format="jpeg", size=size, to_srgb=False, jpeg_quality=92)
        profile(
            lambda: [render(path, scratch / "p.jpg", spec, exiftool) for path in data.big24[:3]],
            profiles / "render_24mp.txt",
        )

        # -- end to end
        e2e_rows: list[Row] = []
        reference_rate = {
            name: max(
                statistics.median(r.reference) if r.reference else 0,
                statistics.median(r.ours) if r.ours else 0,
            )
            for name, r in (
                (row.case.split()[0], row)
                for row in rows
                if row.group == "transfer" and " big " in row.case + " " and "request_size" not in row.case
            )
        }
        render_ms = next(
            (
                statistics.median(r.reference)
                for r in rows
                if r.case.startswith("24 MP") and "4:2:0" in r.reference_label and r.reference
            ),
            None,
        )
        cores = os.cpu_count() or 1
        ours_render_ms = next(
            (
                statistics.median(r.ours)
                for r in rows
                if r.case.startswith("24 MP") and "4:2:0" in r.reference_label and r.ours
            ),
            None,
        )
        if not budget.exhausted() and render_ms is not None:
            ingest_ms = time_ingest(data.big24[:5], workspace / "ingest-probe", exiftool)
            log = workspace / "e2e.log"
            result = end_to_end(workspace / "e2e", data.big24, (ftp, vsftpd, sshd), log)
            render_bound = len(data.big24) * render_ms / 1000 / cores
            transfer_bounds = {
                "ftp": result.bytes_per_platform["ftp"] / MB / reference_rate.get("ftp", 1),
                "ftps": result.bytes_per_platform["ftps"] / MB / reference_rate.get("ftps-vsftpd", 1),
                "sftp": result.bytes_per_platform["sftp"] / MB / reference_rate.get("sftp", 1),
            }
            bound = max(render_bound, *transfer_bounds.values())
            row = Row(
                "end to end",
                f"run_once {len(data.big24)} × 24 MP → ftp + ftps(vsftpd) + sftp(2500 px)",
                "s",
                False,
                target=1.1,
                reference_label="max(render bound, transfer bound)",
            )
            row.reference, row.ours = [bound], [result.wall]
            row.notes.append(
                f"render bound {render_bound:.1f} s ({len(data.big24)} × {render_ms:.0f} ms / {cores} cores); transfer bounds "
                + ", ".join(f"{name} {value:.1f} s" for name, value in transfer_bounds.items())
                + f" (sum {sum(transfer_bounds.values()):.1f} s); states {result.counts}"
            )
            if ours_render_ms is not None:
                # What the machine must do per file besides the resize: copy + SHA-256 and the
                # metadata read (the render is the full-decode check of decisions.md W-3 here, as one
                # platform gets a resized copy of every file), and the metadata copy in ours.
                cpu_bound = len(data.big24) * (ingest_ms + ours_render_ms) / 1000 / cores
                row.notes.append(
                    f"prepare alone: ingest {ingest_ms:.0f} ms/file + our render {ours_render_ms:.0f} ms/file "
                    f"= {cpu_bound:.1f} s on {cores} cores (ratio to it {result.wall / cpu_bound:.2f})"
                )
            n = len(data.big24)
            row.notes.append(
                f"CPU during the run: machine busy {result.machine_busy:.1f} of {result.machine_total:.1f} "
                f"CPU-s ({100 * result.machine_busy / max(result.machine_total, 1e-9):.0f} %); "
                f"stockbridge + its ExifTools {result.cpu:.1f} CPU-s ({1000 * result.cpu / n:.0f} ms/file), "
                f"servers and the rest {result.machine_busy - result.cpu:.1f}; "
                f"whole-machine CPU bound {result.machine_busy / cores:.1f} s (the whole process, "
                f"{result.elapsed:.1f} s with start-up, is {result.elapsed / (result.machine_busy / cores):.2f}× it)"
            )
            row.notes += result.problems
            e2e_rows.append(row)
            memory = Row(
                "memory",
                f"peak RSS, run_once of {len(data.big24)} files",
                "MB",
                False,
                target=None,
                reference_label="300 MB limit",
            )
            memory.reference, memory.ours = [300.0], [result.maxrss_mb]
            memory.target = 1.0
            e2e_rows.append(memory)
            print(
                f"  e2e: {result.wall:.1f} s vs bound {bound:.1f} s; restart {result.restart:.2f} s",
                flush=True,
            )

        if not budget.exhausted() and render_ms is not None:
            # Throttled: the plain-FTP agency behind a 5 MB/s link; the others on loopback.
            slow_root = served / "slow"
            with pyftpdlib_server(
                slow_root, tls=False, cert=cert, upload_limit=THROTTLE_BYTES_PER_SECOND
            ) as slow:
                files = data.big24[: scale.throttled]
                result = end_to_end(
                    workspace / "e2e-slow", files, (slow, vsftpd, sshd), workspace / "e2e-slow.log"
                )
            link = result.bytes_per_platform["ftp"] / THROTTLE_BYTES_PER_SECOND
            render_bound = len(files) * render_ms / 1000 / cores
            row = Row(
                "end to end",
                f"run_once {len(files)} × 24 MP, ftp throttled to 5 MB/s",
                "s",
                False,
                target=1.1,
                reference_label="max(render bound, link time)",
            )
            row.reference, row.ours = [max(link, render_bound)], [result.wall]
            row.notes.append(f"link {link:.1f} s, render bound {render_bound:.1f} s; states {result.counts}")
            row.notes += result.problems
            e2e_rows.append(row)
            print(f"  e2e throttled: {result.wall:.1f} s vs link {link:.1f} s", flush=True)

        for source, case, label in (
            (data.hundred_mp, "45mp", "100 MP JPEG → 45 MP cap (8216×5477)"),
            (data.hundred_mp, "4mp", "100 MP JPEG → 4 MP cap"),
            (data.hundred_mp, "full", "100 MP JPEG → full size (re-encode)"),
            (data.hundred_mp_tiff, "srgb", "100 MP 16-bit TIFF → 8-bit sRGB JPEG, full size"),
        ):
            if source is None or budget.exhausted():
                continue
            out = workspace / f"render100-{case}"
            out.mkdir()
            child = run_child(["render", str(source), str(out), case], workspace / "render100.log")
            memory = Row("memory", f"render {label}, own process", "MB", False, reference_label="1 GB limit")
            memory.reference, memory.ours, memory.target = [1000.0], [float(child["maxrss_mb"])], 1.0  # type: ignore[arg-type]
            memory.notes.append(f"{float(child['seconds']):.1f} s, {float(child['output_mb']):.1f} MB out")  # type: ignore[arg-type]
            e2e_rows.append(memory)
            shutil.rmtree(out)

        restart_files = args.restart_files if args.restart_files is not None else scale.restart_files
        if restart_files > 0 and not budget.exhausted():
            e2e_rows += restart_rows(workspace / f"restart-{restart_files}", restart_files)
        rows += e2e_rows
        if not budget.exhausted():
            from bench.web import web_rows

            rows += web_rows(workspace / "web")

        for server in (ftp, ftps, vsftpd, sshd):
            clear(server.root)
        print(
            f"\n# results ({time.monotonic() - started:.0f} s; parent peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, servers and references included)\n"
        )
        print_table(rows)
        print(f"\n# profiles (cProfile, tottime) in {profiles}:")
        for path in sorted(profiles.iterdir()):
            print(f"\n## {path.name}\n" + "\n".join(path.read_text().splitlines()[:30]))
        if args.json is not None:
            write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
