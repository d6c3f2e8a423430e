"""Which ExifTool process each prepare worker uses (issue 14).

Starting an ExifTool costs ~70 ms of CPU, and a metadata read ~4 ms of a pass-through file's ~40 ms
of preparing (copy, hash, ledger): on a 2-core machine a process per worker only cost start-up.
Where renders run, a file also gets ExifTool writes (~65 ms against a resize of a few hundred), so
on a machine with many workers one process would make them queue. So up to
:data:`WORKERS_PER_EXIFTOOL` workers share a process: the run's own (started first, by the main
thread), then more, each started by the first call of a worker that uses it. Calls to one process
take turns (decisions.md E-7).
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

from stockbridge.metadata.exiftool import ExifTool

#: Prepare workers per ExifTool process.
WORKERS_PER_EXIFTOOL = 4


def exiftools_for(workers: int) -> int:
    """How many ExifTool processes serve ``workers`` prepare workers."""
    return max(1, -(-workers // WORKERS_PER_EXIFTOOL))


class WorkerTools:
    """The run's ExifTool processes: ``main`` for the main thread and the first workers, more
    for more workers (made here, started by their first call)."""

    def __init__(self, main: ExifTool, workers: int, cwd: Path, niceness: int) -> None:
        self._tools = [main]
        for _ in range(exiftools_for(workers) - 1):
            extra = ExifTool(cwd=cwd)
            extra.set_niceness(niceness)
            self._tools.append(extra)
        self._turn = itertools.count()
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self._tools)

    def assign(self) -> None:
        """In a new prepare worker: take the next process in turn."""
        self._local.tool = self._tools[next(self._turn) % len(self._tools)]

    def current(self) -> ExifTool:
        """This thread's process (the run's own outside the prepare workers)."""
        tool: ExifTool | None = getattr(self._local, "tool", None)
        return tool if tool is not None else self._tools[0]

    def close(self) -> None:
        """Stop the extra processes; the run's own is closed by whoever opened it."""
        for tool in self._tools[1:]:
            tool.close()
