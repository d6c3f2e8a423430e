"""Run one measured piece of stockbridge in a fresh process, so its peak RSS is its own.

``python -m bench.e2e_child once CONFIG [PROFILE]`` -> run_once(config); JSON: wall, counts, maxrss;
                                                  with PROFILE, cProfile of run_once (tottime) there
``python -m bench.e2e_child render SRC OUT CASE`` -> one render.render (CASE: see RENDER_CASES)
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from loguru import logger


def _once(config_path: Path, profile_path: Path | None = None) -> dict[str, object]:
    """run_once; ``wall`` is run_once alone (the parent times the whole process)."""
    from stockbridge.config.loading import load_config
    from stockbridge.service.once import run_once

    config = load_config(config_path)
    profiler = None
    hashed = 0
    if profile_path is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    report = run_once(config)
    wall = time.perf_counter() - started
    if profiler is not None and profile_path is not None:
        import io
        import pstats

        profiler.disable()
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats("tottime").print_stats(25)
        profile_path.write_text(buffer.getvalue())
        # Files read in full and hashed (ingest's copy-and-hash): 0 on a restart with nothing new.
        hashed = sum(
            entry[1]
            for (filename, _, name), entry in stats.stats.items()  # type: ignore[attr-defined]
            if name == "_copy_and_hash" and filename.endswith("ingest.py")
        )
    return {
        "wall": wall,
        "hashed": hashed if profiler is not None else None,
        "counts": report.counts,
        "seen": len(report.seen),
    }


#: name -> (max megapixels, max long edge, convert to sRGB); one render per process, so each peak
#: RSS is that case's own.
RENDER_CASES: dict[str, tuple[float | None, int | None, bool]] = {
    "45mp": (45, None, False),  # Shutterstock-like pixel cap: decoded in full, resized
    "4mp": (4, None, False),  # a small platform: draft() decodes at 1/4
    "2500px": (None, 2500, False),
    "full": (None, None, False),  # same pixels, re-encoded (e.g. a file-size cap)
    "srgb": (None, None, True),  # 16-bit TIFF with a profile -> 8-bit sRGB JPEG
}


def _render(source: Path, out_dir: Path, case: str) -> dict[str, object]:
    from PIL import Image

    from stockbridge.metadata.exiftool import ExifTool
    from stockbridge.render.images import RenderSpec, fit_size, render

    megapixels, long_edge, to_srgb = RENDER_CASES[case]
    with Image.open(source) as image:
        size = image.size
    max_pixels = None if megapixels is None else round(megapixels * 1_000_000)
    target_size = fit_size(size, max_pixels, long_edge)
    spec = RenderSpec(output_format="jpeg", size=target_size, to_srgb=to_srgb, jpeg_quality=92)
    with ExifTool(cwd=out_dir) as exiftool:
        started = time.perf_counter()
        result = render(source, out_dir / f"{case}.jpg", spec, exiftool)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "megapixels": size[0] * size[1] / 1e6,
        "output": [result.width, result.height],
        "output_mb": result.size_bytes / 1e6,
    }


def _peak_rss_mb() -> float:
    """This process's own peak RSS. Not ru_maxrss: Linux carries that over fork + exec, so a child of
    a 500 MB parent would report 500 MB. VmHWM belongs to the address space exec made."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    if argv[0] == "once":
        result = _once(Path(argv[1]), Path(argv[2]) if len(argv) > 2 else None)
    elif argv[0] == "render":
        result = _render(Path(argv[1]), Path(argv[2]), argv[3])
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")
    result["maxrss_mb"] = _peak_rss_mb()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
