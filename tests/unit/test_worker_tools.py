"""Prepare workers share ExifTool processes, up to four to one (issue 14: delivery/exiftools.py)."""

from __future__ import annotations

import threading
from pathlib import Path

from stockbridge.delivery.exiftools import WorkerTools, exiftools_for
from stockbridge.metadata.exiftool import ExifTool


def test_up_to_four_workers_share_one_exiftool() -> None:
    assert [exiftools_for(workers) for workers in (1, 2, 4, 5, 8, 16)] == [1, 1, 1, 2, 2, 4]


def test_workers_take_the_processes_in_turn_and_others_use_the_runs_own(tmp_path: Path) -> None:
    main = ExifTool(cwd=tmp_path)
    tools = WorkerTools(main, workers=8, cwd=tmp_path, niceness=5)  # none is started here
    seen: list[ExifTool] = []

    def worker() -> None:
        tools.assign()
        seen.append(tools.current())

    for _ in range(4):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert len(tools) == 2
    assert seen[0] is main and seen[2] is main
    assert seen[1] is seen[3] and seen[1] is not main
    assert tools.current() is main  # this thread is no prepare worker
    tools.close()
    assert main.pid is None and seen[1].pid is None
