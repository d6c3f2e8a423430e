"""Run one measured piece of stockbridge in a fresh process, so its peak RSS is its own.

``python -m bench.e2e_child once CONFIG``     -> run_once(config); JSON: wall, counts, maxrss
``python -m bench.e2e_child render SRC OUT``  -> render.render at 2500 px and at full size
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from loguru import logger


def _once(config_path: Path) -> dict[str, object]:
    from stockbridge.config import load_config
    from stockbridge.daemon import run_once

    config = load_config(config_path)
    started = time.perf_counter()
    report = run_once(config)
    wall = time.perf_counter() - started
    return {"wall": wall, "counts": report.counts, "seen": len(report.seen)}


def _render(source: Path, out_dir: Path) -> dict[str, object]:
    from PIL import Image

    from stockbridge.metadata import ExifTool
    from stockbridge.render import RenderSpec, fit_size, render

    with Image.open(source) as image:
        size = image.size
    times: dict[str, float] = {}
    with ExifTool(cwd=out_dir) as exiftool:
        for label, target_size in (("2500px", fit_size(size, None, 2500)), ("full", None)):
            spec = RenderSpec(output_format="jpeg", size=target_size, to_srgb=False, jpeg_quality=92)
            started = time.perf_counter()
            render(source, out_dir / f"{label}.jpg", spec, exiftool)
            times[label] = time.perf_counter() - started
    return {"times": times, "megapixels": size[0] * size[1] / 1e6}


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
        result = _once(Path(argv[1]))
    elif argv[0] == "render":
        result = _render(Path(argv[1]), Path(argv[2]))
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")
    result["maxrss_mb"] = _peak_rss_mb()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
