"""Configs the tests write: folder platforms under ``tmp_path``, no servers needed."""

from __future__ import annotations

from pathlib import Path

from stockbridge.config.loading import load_config
from stockbridge.config.models import Config


def folder_platforms_config(tmp_path: Path, watch: str = "", **rules: str) -> Config:
    """A config with one ``folder`` platform per keyword (its value: that platform's rules lines),
    the watch folder ``exports`` (plus the ``watch`` lines) and the state dir ``state`` under
    ``tmp_path``."""
    (tmp_path / "exports").mkdir(exist_ok=True)
    text = f'[watch]\nfolder = "{tmp_path / "exports"}"\n{watch}\n[state]\ndir = "{tmp_path / "state"}"\n'
    text += '[web]\nlisten = ""\n'  # no page on a shared port (tests/web starts its own)
    for name, lines in rules.items():
        (tmp_path / name).mkdir()
        text += f'\n[platforms.{name}]\nprotocol = "folder"\npath = "{tmp_path / name}"\n'
        if lines:
            text += f"[platforms.{name}.rules]\n{lines}\n"
    (tmp_path / "config.toml").write_text(text)
    return load_config(tmp_path / "config.toml")
