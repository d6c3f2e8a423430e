"""End-to-end helpers: a workspace with a config file, and the `stockbridge` command as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import LocalServer
from tests.waiting import wait_for


def platform_table(name: str, server: LocalServer, **extra: object) -> str:
    """A [platforms.NAME] table that reaches ``server`` (password written literally: file is 0600).

    Network platforms get ``timeout_seconds = 10`` unless ``extra`` sets another."""
    lines = [f"[platforms.{name}]", f'protocol = "{server.protocol}"']
    timeout = extra.pop("timeout_seconds", 10)
    if server.protocol == "folder":
        lines.append(f'path = "{server.root}"')
    else:
        lines += [f'host = "{server.host}"', f"port = {server.port}", f'username = "{server.username}"']
        lines.append(f'remote_dir = "{server.remote_dir}"')
        if server.password:
            lines.append(f'password = "{server.password}"')
        if server.key_file:
            lines.append(f'key_file = "{server.key_file}"')
        if server.ca_file:
            lines.append(f'ca_file = "{server.ca_file}"')
        if server.host_key_fingerprint:
            lines.append(f'host_key = "{server.host_key_fingerprint}"')
        lines.append(f"timeout_seconds = {timeout}")
    tables: dict[str, dict[str, object]] = {}
    for key, value in extra.items():
        if "." in key:
            table, sub = key.split(".", 1)
            tables.setdefault(table, {})[sub] = value
        else:
            lines.append(f"{key} = {_toml(value)}")
    for table, values in tables.items():
        lines.append(f"[platforms.{name}.{table}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


@dataclass
class Workspace:
    root: Path
    exports: Path
    state: Path
    config: Path
    tables: list[str] = field(default_factory=list)
    settle_seconds: float = 0.3

    def write_config(
        self, *tables: str, settle_seconds: float | None = None, watch: dict[str, object] | None = None
    ) -> Path:
        """``watch``: more [watch] keys, e.g. ``{"max_settle_seconds": 2, "allow_hardlinks": True}``."""
        if settle_seconds is not None:
            self.settle_seconds = settle_seconds
        self.tables = list(tables)
        if not any(table.lstrip().startswith("[web]") for table in tables):
            self.tables.append('[web]\nlisten = ""\n')  # no page on a shared port; tests/web has its own
        more = "".join(f"{key} = {_toml(value)}\n" for key, value in (watch or {}).items())
        text = (
            f'[watch]\nfolder = "{self.exports}"\nsettle_seconds = {self.settle_seconds}\n{more}\n'
            f'[state]\ndir = "{self.state}"\n\n' + "\n".join(self.tables)
        )
        self.config.write_text(text)
        self.config.chmod(0o600)
        return self.config

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKBRIDGE_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "stockbridge", *args[:1], "--config", str(self.config), *args[1:]]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            stdin=subprocess.DEVNULL,
        )

    def cli_with_env(
        self, *args: str, env: dict[str, str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``cli`` with some environment variables replaced (e.g. a PATH without exiftool)."""
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env(), **env},
            stdin=subprocess.DEVNULL,
        )

    def status(self) -> dict:
        """``status --json --detail``: reasons with the servers' own words (tests check them)."""
        result = self.cli("status", "--json", "--detail")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def states(self) -> dict[tuple[str, str], str]:
        """(file name, platform) → state."""
        return {
            (Path(entry["path"]).name, platform): job["state"]
            for entry in self.status()["files"]
            for platform, job in entry["platforms"].items()
        }


_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this tier is ``slow``: ``make test-quick`` (``-m "not slow"``) leaves them out."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    exports, state = root / "exports", root / "state"
    exports.mkdir(parents=True)
    return Workspace(root=root, exports=exports, state=state, config=root / "config.toml")


@contextmanager
def service(workspace: Workspace, log: Path, ready: bytes = b"watching") -> Iterator[subprocess.Popen[bytes]]:
    """``stockbridge run`` until the log shows ``ready``; SIGTERM (then kill) when the block ends."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            workspace.command("run"),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=workspace.env(),
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for(lambda: ready in log.read_bytes() or process.poll() is not None, 30, "the service to start")
        assert process.poll() is None, log.read_text()
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
