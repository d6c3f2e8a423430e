"""Progress bars for `once`: per stage and per platform on a terminal, nothing otherwise."""

from __future__ import annotations

import io

from rich.console import Console

from stockbridge.cli.progress import OnceProgress, once_progress
from stockbridge.ledger import states
from stockbridge.ledger.store import Job


def job(platform: str, state: str, size: int) -> Job:
    return Job(
        id=1, sha256="a" * 64, platform=platform, state=state, reason=None, attempts=1, remote_name="a.jpg",
        upload_path=None, upload_size=size, verified=True, next_attempt_at=0, created_at=0, updated_at=0,
        uploaded_at=None, path="/exports/a.jpg",
    )  # fmt: skip


def test_bars_show_each_stage_and_each_platform_with_counts_and_throughput():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with OnceProgress(console) as progress:
        progress.settling()
        progress.settled(3, 1)
        for _ in range(3):
            progress.ingested()
        progress.uploading("shop", 2)
        progress.uploading("archive", 1)
        progress.outcome(job("shop", states.UPLOADED, 8_000_000))
        progress.outcome(job("shop", states.FAILED, 8_000_000))
        progress.outcome(job("archive", states.UPLOADED, 2_000_000))
    text = out.getvalue()
    assert "settling" in text and "1 still being written" in text
    assert "ingesting" in text and "3/3" in text
    assert "→ shop" in text and "2/2" in text and "8.0 MB" in text and "MB/s" in text
    assert "→ archive" in text and "1/1" in text and "2.0 MB" in text


def test_no_bars_when_stderr_is_not_a_terminal():
    assert once_progress(Console(file=io.StringIO(), force_terminal=False)) is None
    assert isinstance(once_progress(Console(file=io.StringIO(), force_terminal=True)), OnceProgress)
