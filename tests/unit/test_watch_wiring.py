"""The [watch] keys reach the Watcher of ``run`` and the settle wait of ``once``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stockbridge.config.loading import load_config
from stockbridge.service import daemon, once

CONFIG = """\
[watch]
folder = "exports"
settle_seconds = 2
observer = "polling"
poll_interval_seconds = 7
rescan_seconds = {rescan}
max_settle_seconds = 30

[platforms.a]
protocol = "folder"
path = "out"

[web]
listen = ""
"""


def config_with(tmp_path: Path, rescan: int) -> Any:
    (tmp_path / "exports").mkdir()
    (tmp_path / "out").mkdir()
    path = tmp_path / "stockbridge.toml"
    path.write_text(CONFIG.format(rescan=rescan))
    return load_config(path)


@pytest.mark.parametrize(("rescan", "expected"), [(900, 900.0), (0, None)])
def test_service_run_builds_its_watcher_from_the_watch_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rescan: int, expected: float | None
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)  # not under systemd: no status reports
    config = config_with(tmp_path, rescan)
    service = daemon.Service(config)
    seen: dict[str, Any] = {}

    class FakeWatcher:
        def __init__(self, root: Path, **options: Any) -> None:
            seen.update(options, root=root)

        def start(self) -> None:
            service.stop_event.set()  # the ingest loop ends at once

        def stop(self) -> None:
            pass

    @contextmanager
    def fake_pipeline(config: Any, *ahead: Any) -> Iterator[Any]:
        yield SimpleNamespace(platforms={}, ledger=SimpleNamespace(), worker_count=1)

    monkeypatch.setattr(daemon, "Watcher", FakeWatcher)
    monkeypatch.setattr(daemon, "open_pipeline", fake_pipeline)
    service.run()
    assert seen["root"] == config.watch.folder
    assert seen["observer"] == "polling"
    assert seen["poll_interval"] == 7.0
    assert seen["rescan_seconds"] == expected
    assert seen["max_settle_seconds"] == 30.0
    assert seen["settle_seconds"] == 2.0
    # Links, pipes and unstable files end up in the ledger, for the "Not taken" part of `status`.
    assert seen["on_skipped"].__self__.__class__.__name__ == "NoticeBoard"
    assert seen["on_unstable"].__self__.__class__.__name__ == "NoticeBoard"


def test_once_waits_no_longer_than_max_settle_seconds_for_a_changing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_with(tmp_path, 600)
    seen: dict[str, Any] = {}

    def fake_collect(root: Path, **options: Any) -> tuple[list[Path], list[Path]]:
        seen.update(options)
        raise RuntimeError("enough")  # only the arguments matter here

    @contextmanager
    def fake_pipeline(config: Any, *ahead: Any) -> Iterator[Any]:
        yield SimpleNamespace(ledger=SimpleNamespace(jobs=lambda states: []), reconsider_held=lambda: None)

    monkeypatch.setattr(once, "collect_settled", fake_collect)
    monkeypatch.setattr(once, "open_pipeline", fake_pipeline)
    with pytest.raises(RuntimeError, match="enough"):
        once.run_once(config)
    assert seen["max_wait"] == 30.0
    assert seen["settle_seconds"] == 2.0
