"""Built-in platform presets: agency facts kept as data, merged under the user's platform tables.

Each preset is a TOML file in ``stockbridge/presets/`` holding one platform table (the keys of
``[platforms.NAME]``) plus an ``[about]`` table that is not configuration::

    [about]
    name = "..."                  # the agency's name, for people
    sources = ["https://..."]     # where the facts come from
    checked = "YYYY-MM-DD"        # when they were last checked
    needs = ["username", "password", "host_key|known_hosts"]   # keys only the user can give
    notes = "..."
    [about.hints]                 # optional: where to find each needed key
    username = "..."

A ``needs`` entry ``"a|b"`` is met by either key. ``needs`` are for the preset's own protocol: a
table that sets another one (``protocol = "folder"``, to stage files for an agency's web upload)
needs what that protocol needs instead (:data:`PROTOCOL_NEEDS`), and the preset's hints, which are
about its own server, are left out. A user's table with ``preset = "NAME"`` is the preset's table
with the user's keys laid over it (:func:`expand_presets`). This module knows no
agency by name: everything agency-specific lives in the TOML files.
"""

from __future__ import annotations

import copy
import difflib
import sys
from functools import cache
from importlib import resources
from typing import Any

from stockbridge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_PACKAGE = "stockbridge"
_FOLDER = "presets"
_SUFFIX = ".toml"

#: What each protocol needs from a table whose protocol is not its preset's (the same rules as
#: ``PlatformConfig``'s validator); a key the preset gives (its host) counts as given.
PROTOCOL_NEEDS: dict[str, tuple[str, ...]] = {
    "folder": ("path",),
    "ftp": ("host", "username", "password"),
    "ftps": ("host", "username", "password"),
    "sftp": ("host", "username", "password|key_file", "host_key|known_hosts"),
}


def preset_names() -> list[str]:
    """The names of the built-in presets, sorted."""
    folder = resources.files(_PACKAGE).joinpath(_FOLDER)
    return sorted(
        entry.name.removesuffix(_SUFFIX)
        for entry in folder.iterdir()
        if entry.name.endswith(_SUFFIX) and entry.is_file()
    )


def load_preset(name: str) -> dict[str, Any]:
    """The platform table of preset ``name`` (without ``[about]``); a fresh copy on every call."""
    table = copy.deepcopy(_read(name))
    table.pop("about", None)
    return table


def preset_about(name: str) -> dict[str, Any]:
    """The ``[about]`` table of preset ``name``: name, sources, checked, needs, notes, hints."""
    return copy.deepcopy(_read(name).get("about", {}))


def expand_presets(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Lay every ``platforms.NAME`` table that names a preset over that preset.

    Returns a new configuration dict (``data`` is left untouched) and the problems found, each
    with its key path: an unknown preset name (with a "did you mean"), and every key the preset
    needs from the user that the user's table does not give. A table whose preset is unknown is
    left as the user wrote it.
    """
    result = copy.deepcopy(data)
    problems: list[str] = []
    platforms = result.get("platforms")
    if not isinstance(platforms, dict):
        return result, problems
    known = preset_names()
    for platform_name, table in platforms.items():
        if not isinstance(table, dict) or not isinstance(table.get("preset"), str):
            continue  # no preset, or a mistyped one: validation reports the latter
        preset = table["preset"]
        where = f"platforms.{platform_name}"
        if preset not in known:
            problems.append(f"{where}.preset: {_unknown(preset, known)}")
            continue
        problems.extend(_missing_needs(where, preset, table))
        platforms[platform_name] = _merge(load_preset(preset), table)
    return result, problems


# --------------------------------------------------------------------------------------------


@cache
def _read(name: str) -> dict[str, Any]:
    known = preset_names()
    if name not in known:
        raise ConfigError(_unknown(name, known))
    resource = resources.files(_PACKAGE).joinpath(_FOLDER).joinpath(name + _SUFFIX)
    try:
        return tomllib.loads(resource.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:  # a packaging bug, not a user mistake
        raise ConfigError(f'built-in preset "{name}" is not valid TOML: {exc}') from None


def _unknown(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f'unknown preset "{name}"; did you mean "{close[0]}"?'
    return f'unknown preset "{name}"; known presets: {", ".join(known)}'


def _missing_needs(where: str, preset: str, table: dict[str, Any]) -> list[str]:
    about = _read(preset).get("about", {})
    preset_protocol = _read(preset).get("protocol")
    protocol = table.get("protocol", preset_protocol)
    if protocol == preset_protocol:
        needs: list[str] = list(about.get("needs", []))
        hints: dict[str, str] = about.get("hints", {})
        given = table
        whose = f"the {preset} preset needs this"
    elif protocol in PROTOCOL_NEEDS:
        needs, hints = list(PROTOCOL_NEEDS[protocol]), {}
        given = _merge(load_preset(preset), table)
        whose = f'protocol "{protocol}" needs this'
    else:
        return []  # a protocol that does not exist: validation names it
    problems = []
    for need in needs:
        keys = need.split("|")
        if any(given.get(key) not in (None, "") for key in keys):
            continue
        first, others = keys[0], keys[1:]
        alternative = f", or {' or '.join(others)}" if others else ""
        hint = hints.get(need) or hints.get(first)
        because = f" ({hint})" if hint else ""
        problems.append(f"{where}.{first}: {whose}{alternative}{because}")
    return problems


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``: tables merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
