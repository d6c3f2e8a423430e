"""Render rows: Pillow with ``draft()`` (decisions.md M-1), the same with the product's encoder settings, and
``render()``; and the ingest time the end-to-end bound uses.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from bench.results import Budget, Row
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.images import RenderSpec, fit_size, render


def time_ingest(files: Sequence[Path], state: Path, exiftool: ExifTool) -> float:
    """Median ms of stockbridge's ingest (private copy + SHA-256, metadata read) as the end-to-end
    run does it: a platform there gets a resized copy of every file, so that render is the
    full-decode check (decisions.md W-3) and ingest skips its own."""
    from stockbridge.assets.ingest import ingest

    times = []
    for path in files:
        started = time.perf_counter()
        ingest(path, state, exiftool, allow_hardlinks=True, verify_pixels=False)
        times.append((time.perf_counter() - started) * 1000)
    shutil.rmtree(state, ignore_errors=True)
    return statistics.median(times)


def reference_render(source: Path, target: Path, size: tuple[int, int], product_encoder: bool) -> None:
    """decisions.md M-1: Pillow open, ``draft()``, LANCZOS resize, save q92 (Pillow's defaults: 4:2:0)."""
    with Image.open(source) as image:
        image.draft("RGB", size)
        resized = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        if product_encoder:
            # What render._encode does: 4:4:4 at q >= 90, optimised Huffman tables, an ICC profile.
            resized.save(
                target,
                "JPEG",
                quality=92,
                subsampling="4:4:4",
                optimize=True,
                icc_profile=image.info.get("icc_profile"),
            )
        else:
            resized.save(target, "JPEG", quality=92)


def time_render(
    rows: tuple[Row, Row], files: Sequence[Path], runs: int, exiftool: ExifTool, scratch: Path, budget: Budget
) -> None:
    """ms per image: the reference, the reference with the product's encoder settings, and render()."""
    plain, same_encoder = rows
    out = scratch / "render"
    out.mkdir(exist_ok=True)
    with Image.open(files[0]) as image:
        size = fit_size(image.size, None, 2500)
    assert size is not None
    spec = RenderSpec(output_format="jpeg", size=size, to_srgb=False, jpeg_quality=92)

    def ours(path: Path) -> None:
        render(path, out / f"sb-{path.stem}.jpg", spec, exiftool)

    cases = [
        (lambda path: reference_render(path, out / f"ref-{path.stem}.jpg", size, False), plain.reference),
        (
            lambda path: reference_render(path, out / f"ref2-{path.stem}.jpg", size, True),
            same_encoder.reference,
        ),
        (ours, plain.ours),
    ]
    for function, _ in cases:  # warm-up (page cache, lazy imports, lcms)
        function(files[0])
    for _ in range(runs):
        if budget.exhausted():
            plain.notes.append("time budget reached")
            break
        for function, results in cases:
            started = time.perf_counter()
            for path in files:
                function(path)
            results.append((time.perf_counter() - started) * 1000 / len(files))
    same_encoder.ours = list(plain.ours)
    with Image.open(out / f"sb-{files[0].stem}.jpg") as made:
        if made.size != size:
            plain.notes.append(f"render made {made.size}, wanted {size}")
    plain.notes.append(f"{len(files)} images/run → {size[0]}×{size[1]}")
    shutil.rmtree(out)
