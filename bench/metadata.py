"""The metadata row: ``exiftool -stay_open`` driven by hand with stockbridge's read arguments, against
``ExifTool.read``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from bench.results import Row
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.metadata.fields import _READ_ARGS


class StayOpenExifTool:
    """The reference: ``exiftool -stay_open True -@ -``, driven by hand (no wrapper)."""

    def __init__(self, cwd: Path) -> None:
        self.process = subprocess.Popen(
            ["exiftool", "-stay_open", "True", "-@", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
        )
        self.sequence = 0

    def execute(self, args: Sequence[str]) -> bytes:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.sequence += 1
        self.process.stdin.write(("\n".join(args) + f"\n-execute{self.sequence}\n").encode())
        self.process.stdin.flush()
        marker = f"{{ready{self.sequence}}}".encode()
        chunks = []
        for _ in range(10_000_000):  # bounded: one line per tag at most
            line = self.process.stdout.readline()
            if not line or line.strip() == marker:
                break
            chunks.append(line)
        return b"".join(chunks)

    def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.write(b"-stay_open\nFalse\n")
            self.process.stdin.flush()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def time_metadata(row: Row, files: Sequence[Path], runs: int, exiftool: ExifTool, scratch: Path) -> None:
    reference = StayOpenExifTool(scratch)
    try:
        reference.execute(["-ver"])  # warm: Perl and modules loaded
        exiftool.read(files[:2])
        for _ in range(runs):
            started = time.perf_counter()
            output = reference.execute([*_READ_ARGS, *(str(path) for path in files)])
            row.reference.append((time.perf_counter() - started) * 1000 / len(files))
            if len(json.loads(output)) != len(files):
                row.notes.append("reference answered for fewer files")
            started = time.perf_counter()
            results = exiftool.read(files)
            row.ours.append((time.perf_counter() - started) * 1000 / len(files))
            bad = [path for path, value in results.items() if not hasattr(value, "keywords")]
            if bad or any(len(value.keywords) != 25 for value in results.values()):  # type: ignore[union-attr]
                row.notes.append(f"stockbridge read wrong metadata for {len(bad)} files")
    finally:
        reference.close()
