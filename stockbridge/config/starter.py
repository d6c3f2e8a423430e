"""The starter configuration that ``stockbridge init`` writes: commented, with one table per preset.

Each preset's table holds ``preset = "NAME"`` and the keys the preset ``needs`` from the user, as
placeholders with the preset's hint on where to find the value. Everything else comes from the
preset; the file validates once the placeholders are filled in.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from stockbridge.config.docs import SCHEMA_FILE_NAME, SCHEMA_LINE, schema_text
from stockbridge.config.loading import PLACEHOLDER
from stockbridge.config.presets import preset_about, preset_names
from stockbridge.errors import ConfigError

_HEADER = f"""\
{SCHEMA_LINE}
# stockbridge configuration, written by `stockbridge init`.
#
# Replace every FILL-IN below, then run `stockbridge check --connect`.
# Every key is described by `stockbridge config docs`; `stockbridge config example` shows them all
# with comments. Relative paths are relative to this file. Editors with Taplo (VS Code's Even
# Better TOML, Helix, Neovim) complete and check keys from {SCHEMA_FILE_NAME} next to this file
# (after an upgrade: stockbridge config schema > {SCHEMA_FILE_NAME}).

[watch]
# The folder your photo editor exports into. A file is taken once it has not changed for
# settle_seconds.
folder = "~/Pictures/stock-exports"
recursive = true
settle_seconds = 10

# [state]
# Where stockbridge keeps its ledger and the copies it sends (default: your user state folder,
# ~/.local/state/stockbridge on Linux). Local disk only.
# dir = "~/.local/state/stockbridge"
"""

_NO_PRESET = """
# ---------------------------------------------------------------------------------------------
# One [platforms.NAME] table per agency. Start from a preset: `stockbridge init --preset NAME`
# (built in: {names}), or write the table yourself:
#
# [platforms.my_agency]
# protocol = "ftps"                            # ftp | ftps | sftp | folder
# host = "ftps.example.com"
# username = "your-contributor-id"
# password = {{ env = "MY_AGENCY_PASSWORD" }}
"""


def starter_config(presets: Sequence[str]) -> str:
    """The text of a starter config with one ``[platforms.NAME]`` table per preset."""
    known = preset_names()
    unknown = [name for name in presets if name not in known]
    if unknown:
        preset_about(unknown[0])  # raises ConfigError with a "did you mean"
    parts = [_HEADER]
    if not presets:
        parts.append(_NO_PRESET.format(names=", ".join(known)))
    for name in dict.fromkeys(presets):  # once each, in the order given
        parts.append(_platform_table(name))
    return "".join(parts)


def write_starter_config(path: Path, presets: Sequence[str]) -> None:
    """Write the starter config to ``path``; never over an existing file (ConfigError).

    Its ``#:schema`` line names the JSON Schema next to it, written too unless a file is there."""
    text = starter_config(presets)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: an existing file (even one created a moment ago) is never overwritten.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path}: a file is already there; not overwritten",
            hint="edit it, remove it first, or name another path: stockbridge init PATH",
        ) from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    schema = path.with_name(SCHEMA_FILE_NAME)
    try:
        with schema.open("x", encoding="utf-8") as handle:
            handle.write(schema_text())
    except FileExistsError:
        pass  # the user's (or an earlier init's): never overwritten


def _platform_table(name: str) -> str:
    about = preset_about(name)
    hints: dict[str, str] = about.get("hints", {})
    lines = [
        "",
        "# " + "-" * 93,
        f"# {about.get('name', name)}: rules and server from the built-in preset (checked "
        f"{about.get('checked', 'unknown')});",
        "# any key you add here overrides the preset's.",
    ]
    for note in str(about.get("notes", "")).splitlines():
        lines.append(f"# {note}".rstrip())
    lines += [f"[platforms.{name}]", f'preset = "{name}"']
    for need in about.get("needs", []):
        first, *others = need.split("|")
        hint = hints.get(need) or hints.get(first)
        if hint:
            lines.append(f"# {first}: {hint}")
        if others:
            lines.append(f"# (or instead: {', '.join(others)}; see docs/configuration.md)")
        lines.append(_placeholder(name, first))
    return "\n".join(lines) + "\n"


def _placeholder(platform: str, key: str) -> str:
    if key == "password":
        variable = "".join(char if char.isalnum() else "_" for char in platform.upper()) + "_PASSWORD"
        return (
            f"# Kept out of this file: set ${variable}, or use {{ file = ... }} / {{ credential = ... }}\n"
            f'password = {{ env = "{variable}" }}'
        )
    if key == "port":
        return f"port = 0  # {PLACEHOLDER}: the port number"
    if key == "host_key":
        return f'host_key = "SHA256:{PLACEHOLDER}"'
    return f'{key} = "{PLACEHOLDER}"'
