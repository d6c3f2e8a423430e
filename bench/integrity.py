"""The integrity rows (issue 14): the structural check (``assets/integrity.py``) against the full
decode it replaces for files that go unchanged (``render.pixels.check_decodable``: Pillow, JPEG at
1/8 scale), on the same files.

"ours" is what the check adds to ingest: the file's blocks are in memory already (the hash pass reads
them), so it is ``StreamCheck.feed`` over them plus ``finish`` reading what it needs from the copy
(page cache). The notes give the same check with its own read of the file (``check_file``, what
``explain`` does), and SHA-256 over the same blocks, the hash pass it rides on.

    .venv/bin/python -m bench.integrity [--files 4] [--runs 3] [--keep DIR]   # only these rows
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from loguru import logger

from bench.data import make_jpeg_set, write_tiff16
from bench.results import Row, print_table
from stockbridge.assets.integrity import StreamCheck, check_file
from stockbridge.demo.samples import make_image
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.pixels import check_decodable

_BLOCK = 1024 * 1024  # ingest._CHUNK


def integrity_row(label: str) -> Row:
    return Row(
        "integrity",
        f"{label}: structure check vs full decode",
        "ms/file",
        False,
        target=None,
        reference_label="check_decodable (Pillow; JPEG at 1/8 scale)",
    )


def _in_pass_ms(path: Path) -> float:
    """ms the structural check adds to a hash pass that already holds the file's blocks."""
    with path.open("rb") as handle:
        blocks = list(iter(lambda: handle.read(_BLOCK), b""))
    fd = os.open(path, os.O_RDONLY)
    try:
        started = time.perf_counter()
        check = StreamCheck()
        for block in blocks:
            check.feed(block)
        problem = check.finish(lambda offset, length: os.pread(fd, length, offset))
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        os.close(fd)
    if problem is not None:
        raise AssertionError(f"{path.name}: a good file was refused: {problem}")
    return elapsed


def _sha256_ms(path: Path) -> float:
    with path.open("rb") as handle:
        blocks = list(iter(lambda: handle.read(_BLOCK), b""))
    started = time.perf_counter()
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(block)
    return (time.perf_counter() - started) * 1000


def time_integrity(row: Row, files: Sequence[Path], file_type: str, runs: int) -> None:
    """Per run: each file's full decode (reference) and structural check (ours), interleaved."""
    own_read: list[float] = []
    hashing: list[float] = []
    for path in files[:1]:  # warm-up: page cache, Pillow's plug-ins, lazy imports
        check_decodable(path, file_type)
        _in_pass_ms(path)
    for _ in range(runs):
        for path in files:
            started = time.perf_counter()
            problem = check_decodable(path, file_type)
            row.reference.append((time.perf_counter() - started) * 1000)
            if problem is not None:
                raise AssertionError(f"{path.name}: the decode refused a good file: {problem}")
            row.ours.append(_in_pass_ms(path))
            started = time.perf_counter()
            check_file(path)
            own_read.append((time.perf_counter() - started) * 1000)
            hashing.append(_sha256_ms(path))
    size = statistics.median(path.stat().st_size for path in files) / 1e6
    ours, reference = statistics.median(row.ours), statistics.median(row.reference)
    row.notes += [
        f"{len(files)} files of {size:.1f} MB × {runs} runs",
        f"{reference / ours:.0f}× faster" if ours else "ours took no measurable time",
        f"≈ 1 ms target: {'met' if ours <= 1.5 else 'MISSED'} ({ours:.2f} ms in the hash pass)",
        f"with its own read of the file {statistics.median(own_read):.2f} ms",
        f"SHA-256 of the same blocks {statistics.median(hashing):.1f} ms",
    ]


def make_png_set(directory: Path, count: int, exiftool: ExifTool) -> list[Path]:
    """24 MP RGB PNGs as the demo draws them (noise: ~50 MB each), with XMP written by ExifTool."""
    return [
        make_image(
            directory / f"png24_{index:02d}.png",
            width=6000,
            height=4000,
            title="Harbour at dawn",
            exiftool=exiftool,
            fmt="png",
            seed=50 + index,
        )
        for index in range(count)
    ]


def integrity_rows(
    jpegs: Sequence[Path], pngs: Sequence[Path], tiffs: Sequence[Path], runs: int
) -> list[Row]:
    rows = []
    for label, files, file_type in (
        ("24 MP JPEG", jpegs, "jpeg"),
        ("24 MP PNG", pngs, "png"),
        ("24 MP 16-bit TIFF", tiffs, "tiff"),
    ):
        if not files:
            continue
        row = integrity_row(label)
        time_integrity(row, files, file_type, runs)
        rows.append(row)
        print(
            f"  integrity {label}: decode {statistics.median(row.reference):.1f} ms,"
            f" structure {statistics.median(row.ours):.3f} ms",
            flush=True,
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=4, help="24 MP JPEGs (half as many PNGs and TIFFs)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="make the files in DIR and keep them")
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    root = args.keep or Path(tempfile.mkdtemp(prefix="stockbridge-bench-integrity-"))
    try:
        with ExifTool(cwd=root) as exiftool:
            print(f"# integrity rows: generating data in {root} ...", flush=True)
            jpegs = make_jpeg_set(root / "jpeg", "photo24", args.files, (6000, 4000), exiftool)
            others = max(1, args.files // 2)
            pngs = make_png_set(root / "png", others, exiftool)
        (root / "tiff").mkdir(exist_ok=True)
        tiffs = [
            write_tiff16(root / "tiff" / f"scan16_{i}.tif", 6000, 4000, seed=100 + i) for i in range(others)
        ]
        print_table(integrity_rows(jpegs, pngs, tiffs, args.runs))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
