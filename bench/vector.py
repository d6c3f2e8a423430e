"""The vector rows (issue 15): what measuring and checking one vector costs (``assets/vector.py``).

"ours" is :func:`stockbridge.assets.vector.probe` on an EPS made by Ghostscript's ``eps2write``
(DSC header, hostile-word scan, one ``gs -dSAFER -sDEVICE=bbox -dUseFastColor`` run in a private TMPDIR) and on
an SVG (defusedxml parse, size). The reference is the floor under any per-file Ghostscript call:
``gs`` starting and quitting with nothing to do. The notes give one ``bbox`` run over all the files
at once, what batching would save. The floor is also a row of its own, with the loader's facts
(bench/probecost.py), and a row gives the wall time per file when prepare's workers probe 8 EPS
side by side, as ingest does. The issue's target is ≤ 50 ms per file.

    .venv/bin/python -m bench.run --only vector      # or: python -m bench.vector [--files 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.probecost import floor_row, loader_notes, parallel_row
from bench.results import Row, print_table
from stockbridge.assets.vector import GHOSTSCRIPT, probe
from stockbridge.demo.vectors import make_eps, make_svg

#: The issue's budget for probing one vector.
TARGET_MS = 50.0


def _ms(function: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    function(*args)
    return (time.perf_counter() - started) * 1000


def _gs_floor() -> None:
    subprocess.run(
        [GHOSTSCRIPT, "-q", "-dSAFER", "-dNODISPLAY", "-dNOPAUSE", "-dBATCH", "-c", "quit"],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )


def _bbox(paths: Sequence[Path]) -> None:
    """Ghostscript's bbox device over ``paths`` in one process (sandbox flags as the probe's)."""
    subprocess.run(
        [
            GHOSTSCRIPT,
            "-q",
            "-dSAFER",
            "-dNOPAUSE",
            "-dBATCH",
            "-sDEVICE=bbox",
            "-dUseFastColor",
            *map(str, paths),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )


def _probe_ok(path: Path, file_type: str) -> None:
    found = probe(path, file_type)
    if found.problem is not None or found.megapixels is None:
        raise AssertionError(f"{path.name}: a good vector was refused: {found.problem}")


def vector_rows(directory: Path, files: int = 8, runs: int = 3) -> list[Row]:
    directory.mkdir(parents=True, exist_ok=True)
    eps = [
        make_eps(directory / f"v{index}.eps", width_pt=2000 + 100 * index, height_pt=1500 + 50 * index)
        for index in range(files)
    ]
    svg = [
        make_svg(
            directory / f"v{index}.svg",
            width=f"{2000 + index}",
            height="1500",
            extra="<path d='M0 0L9 9'/>" * 200,
        )
        for index in range(files)
    ]
    eps_row = Row(
        "vector",
        "EPS probe: header, scan, one gs bbox run",
        "ms/file",
        False,
        reference_label="gs start + quit, nothing drawn",
    )
    svg_row = Row("vector", "SVG probe: defusedxml parse + size", "ms/file", False, reference_label="-")
    _probe_ok(eps[0], "eps")  # warm-up: page cache, gs's own files, lazy imports
    _gs_floor()
    for _ in range(runs):
        for path in eps:
            eps_row.reference.append(_ms(_gs_floor))
            eps_row.ours.append(_ms(_probe_ok, path, "eps"))
        for path in svg:
            svg_row.ours.append(_ms(_probe_ok, path, "svg"))
    batch_row = Row(
        "vector",
        f"EPS bbox, batched: one gs run over {files} files",
        "ms/file",
        False,
        reference_label="one gs bbox run per file",
    )
    for _ in range(runs):
        batch_row.reference.append(statistics.mean(_ms(_bbox, [path]) for path in eps))
        batch_row.ours.append(_ms(_bbox, eps) / len(eps))
    ours = statistics.median(eps_row.ours)
    size = statistics.median(path.stat().st_size for path in eps) / 1000
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    eps_row.notes += [
        f"{files} EPS of {size:.0f} KB × {runs} runs; {load}",
        f"≤ {TARGET_MS:g} ms target: {'met' if ours <= TARGET_MS else 'MISSED'} ({ours:.0f} ms)",
    ]
    batched = statistics.median(batch_row.ours)
    batch_row.notes += [
        f"≤ {TARGET_MS:g} ms target: {'met' if batched <= TARGET_MS else 'MISSED'} ({batched:.0f} ms)",
        "not what ingest does: one hostile or broken file fails the whole run, and its PostScript"
        " shares the interpreter with the others (decisions.md D-2)",
    ]
    svg_row.notes.append(
        f"{files} SVG of {statistics.median(p.stat().st_size for p in svg) / 1000:.0f} KB × {runs} runs"
    )
    floor = floor_row(
        "vector",
        "gs start + quit alone (floor)",
        _gs_floor,
        runs * files,
        loader_notes([GHOSTSCRIPT, "-q", "-dSAFER", "-dNODISPLAY", "-dNOPAUSE", "-dBATCH", "-c", "quit"]),
    )
    side_by_side = parallel_row(
        "vector",
        f"EPS probe, {files} side by side (prepare workers)",
        lambda path: _probe_ok(path, "eps"),
        eps,
        runs,
        ours,
    )
    return [eps_row, floor, side_by_side, batch_row, svg_row]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args(argv)
    if shutil.which(GHOSTSCRIPT) is None:
        print("vector rows need Ghostscript (gs)", file=sys.stderr)
        return 2
    directory = args.keep or Path(tempfile.mkdtemp(prefix="stockbridge-bench-vector-"))
    try:
        print_table(vector_rows(directory, max(1, min(args.files, 100)), max(1, min(args.runs, 20))))
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
