"""A benchmark row (reference and stockbridge, their ratio and verdict), the table, the time budget,
and the check that makes a transfer count: every file arrived, under its name, at full size.
"""

from __future__ import annotations

import io
import json
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUBPROCESS_TIMEOUT = 900.0  # one reference-tool run; a hang fails the case, not the benchmark
MB = 1_000_000


@dataclass
class Row:
    group: str
    case: str
    unit: str  # what the two numbers are ("MB/s", "files/s", "ms/file", "s")
    higher_is_better: bool
    reference: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)
    target: float | None = None  # on the ratio ours/reference
    notes: list[str] = field(default_factory=list)
    reference_label: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.reference or not self.ours:
            return None
        reference, ours = statistics.median(self.reference), statistics.median(self.ours)
        return ours / reference if reference else None

    def verdict(self) -> str:
        ratio = self.ratio
        if ratio is None or self.target is None:
            return "-"
        met = ratio >= self.target if self.higher_is_better else ratio <= self.target
        return "met" if met else "MISSED"


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.3g}" if values else "-"


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.2f}" if ratio >= 0.01 else f"{ratio:.4f}"  # the integrity rows are ~0.001


def print_table(rows: list[Row], out: io.TextIOBase | None = None) -> str:
    lines = [
        "| group | case | reference | unit | ref (median) | stockbridge (median) | N ref/ours | ratio sb/ref | target | verdict | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row.ratio
        target = "-"
        if row.target is not None:
            target = f"{'≥' if row.higher_is_better else '≤'} {row.target:g}"
        lines.append(
            f"| {row.group} | {row.case} | {row.reference_label} | {row.unit} | {_median(row.reference)} | "
            f"{_median(row.ours)} | {len(row.reference)}/{len(row.ours)} | "
            f"{_ratio(ratio)} | {target} | {row.verdict()} | {'; '.join(row.notes)} |"
        )
    text = "\n".join(lines)
    print(text, file=out or sys.stdout, flush=True)
    return text


class Budget:
    """The whole run's time budget: cases that would start after it are skipped, and say so."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def exhausted(self) -> bool:
        return self.left() <= 0


def clear(root: Path) -> None:
    for entry in root.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def verify(root: Path, files: Sequence[Path]) -> list[str]:
    """Problems with what arrived in ``root``: every file there, under its name, at full size."""
    expected = {path.name: path.stat().st_size for path in files}
    arrived = {entry.name: entry.stat().st_size for entry in root.iterdir() if entry.is_file()}
    problems = []
    missing = [name for name in expected if name not in arrived]
    short = [name for name, size in expected.items() if name in arrived and arrived[name] != size]
    extra = [name for name in arrived if name not in expected]
    if missing:
        problems.append(f"{len(missing)} missing")
    if short:
        sizes = sorted({arrived[name] for name in short})[:3]
        problems.append(f"{len(short)} of {len(expected)} truncated (e.g. {sizes} B)")
    if extra:
        problems.append(f"{len(extra)} unexpected ({extra[:2]})")
    return problems


def write_json(path: Path, rows: Sequence[Row]) -> None:
    """Every row with its ratio and verdict, for `--json`."""
    path.write_text(
        json.dumps([row.__dict__ | {"ratio": row.ratio, "verdict": row.verdict()} for row in rows], indent=1)
    )
