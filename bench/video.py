"""The video rows (issue 15): what probing a clip costs, and that a 4 GB clip is never read into memory.

- **ffprobe per clip**: ``assets.video.probe`` (one ``ffprobe -show_format -show_streams`` per
  clip, JSON parsed) on a real 1080p clip made by ffmpeg, against ``ffprobe -version``: the cost
  of starting the program at all, the floor any one-process-per-file probe pays.
- **ffprobe -version alone** (a row of its own: the floor), with the loader's facts (libraries
  mapped, BIND_NOW, symbol relocations at start; bench/probecost.py).
- **ffprobe, clips side by side**: 8 clips probed by one thread per prepare worker, as ingest
  does: wall time per file (CPU per file is unchanged).
- **4 GB clip, ingest + probe**: a real short clip (index first) followed by a ``free`` box that
  brings the file to ``--clip-gb`` GB, made sparse with ``truncate`` in a moment (the boxes still
  tile the file, so the structure check and ffprobe take it as a clip). A child process ingests it
  (copy + SHA-256 + box walk in one pass, ExifTool, ffprobe) and reports its peak RSS; the same on
  the small clip alone. Flat RSS means the clip streamed through in 1 MiB blocks.

    .venv/bin/python -m bench.video [--runs 20] [--clip-gb 4] [--keep DIR]
    .venv/bin/python -m bench.run --only video      # the same rows
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.probecost import floor_row, loader_notes, parallel_row
from bench.results import Row, print_table
from stockbridge.assets.video import probe

GB = 1_000_000_000


def make_clip(path: Path, *, size: str = "1920x1080", seconds: float = 2.0) -> Path:
    """A real H.264 clip, index ('moov') first, small (~100 KB)."""
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25"]
    command += ["-t", f"{seconds:g}", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast"]
    command += ["-crf", "40", "-movflags", "+faststart", str(path)]
    subprocess.run(command, check=True, timeout=120, stdin=subprocess.DEVNULL)
    return path


def make_big_clip(source: Path, path: Path, total: int) -> Path:
    """``source`` followed by one sparse ``free`` box (ISO/IEC 14496-12 §8.1.2) up to ``total``
    bytes: a valid file of that size whose padding costs no disk until it is copied."""
    shutil.copyfile(source, path)
    start = path.stat().st_size
    length = total - start
    with path.open("r+b") as handle:
        handle.seek(start)
        if length < 2**32:
            handle.write(length.to_bytes(4, "big") + b"free")
        else:  # a 64-bit box size: size field 1, then the real size after the type
            handle.write((1).to_bytes(4, "big") + b"free" + length.to_bytes(8, "big"))
        handle.truncate(total)
    return path


def probe_row(clip: Path, runs: int) -> Row:
    row = Row(
        "video",
        "ffprobe per clip (1080p H.264)",
        "ms/file",
        False,
        target=None,
        reference_label="ffprobe -version (process start only)",
    )
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(["ffprobe", "-version"], stdout=subprocess.DEVNULL, check=True, timeout=30)
        row.reference.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        facts = probe(clip, "mp4")
        row.ours.append((time.perf_counter() - started) * 1000)
        assert not isinstance(facts, str), facts
    row.notes.append(
        f"issue's goal <= 50 ms/file; ours - start = {statistics.median(row.ours) - statistics.median(row.reference):.1f} ms"
    )
    return row


def _probe_ok(clip: Path) -> None:
    facts = probe(clip, "mp4")
    assert not isinstance(facts, str), facts


def _child_ingest(path: Path, state: Path) -> dict[str, object]:
    from stockbridge.assets.ingest import ingest
    from stockbridge.metadata.exiftool import ExifTool

    state.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with ExifTool(cwd=state) as exiftool:
        item = ingest(path, state, exiftool)
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": elapsed,
        "peak_mb": peak_kb / 1024,
        "problem": item.problem,
        "clip": item.clip.summary() if item.clip else None,
        "size": item.size,
    }


def ingest_in_child(path: Path, state: Path) -> dict[str, object]:
    """``ingest`` of ``path`` in a fresh interpreter: its peak RSS is this file's, nothing else's."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.video", "--child", str(path), "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def memory_row(small: Path, work: Path, clip_gb: float) -> Row:
    row = Row(
        "video",
        f"{clip_gb:g} GB clip: ingest + probe, peak RSS",
        "MB",
        False,
        target=1.25,
        reference_label="the same on the 0.1 MB clip alone",
    )
    big = make_big_clip(small, work / "big.mp4", int(clip_gb * GB))
    try:
        base = ingest_in_child(small, work / "state-small")
        large = ingest_in_child(big, work / "state-big")
    finally:
        big.unlink(missing_ok=True)
        shutil.rmtree(work / "state-big", ignore_errors=True)
    assert large["problem"] is None and large["clip"], large
    row.reference.append(float(base["peak_mb"]))  # type: ignore[arg-type]
    row.ours.append(float(large["peak_mb"]))  # type: ignore[arg-type]
    seconds = float(large["seconds"])  # type: ignore[arg-type]
    extra = float(large["peak_mb"]) - float(base["peak_mb"])  # type: ignore[arg-type]
    row.notes.append(
        f"+{extra:.1f} MB for {int(large['size']) / GB:.2f} GB"  # type: ignore[call-overload]
    )
    row.notes.append(
        f"{int(large['size']) / GB:.2f} GB copied + hashed + probed in {seconds:.1f} s"  # type: ignore[call-overload]
        f" ({int(large['size']) / 1e6 / seconds:.0f} MB/s); the copy is a real second file on disk"  # type: ignore[call-overload]
    )
    return row


def video_rows(work: Path, runs: int, clip_gb: float) -> list[Row]:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        print("# video rows skipped: ffmpeg/ffprobe not installed", flush=True)
        return []
    work.mkdir(parents=True, exist_ok=True)
    clip = make_clip(work / "hd.mp4")
    per_clip = probe_row(clip, runs)
    floor = floor_row(
        "video",
        "ffprobe -version: process start alone (floor)",
        lambda: subprocess.run(["ffprobe", "-version"], stdout=subprocess.DEVNULL, check=True, timeout=30),
        runs,
        loader_notes(["ffprobe", "-version"]),
    )
    clips = [clip] + [shutil.copyfile(clip, work / f"hd{index}.mp4") for index in range(1, 8)]
    side_by_side = parallel_row(
        "video",
        "ffprobe, 8 clips side by side (prepare workers)",
        _probe_ok,
        clips,
        max(1, runs // 4),
        statistics.median(per_clip.ours),
    )
    rows = [per_clip, floor, side_by_side]
    if clip_gb > 0:
        rows.append(memory_row(make_clip(work / "small.mp4", size="320x180"), work, clip_gb))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--clip-gb", type=float, default=4.0, help="size of the large clip (0: skip that row)"
    )
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child_ingest(args.child, args.state)))
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="stockbridge-bench-video-"))
    try:
        rows = video_rows(work, args.runs, args.clip_gb)
        print_table(rows)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
