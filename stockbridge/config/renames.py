"""Keys that changed name: a configuration written for an earlier release still loads.

:data:`RENAMED_KEYS` is the one table of renamed keys. At load, before presets are laid under the
user's tables, a key written under its old name is moved to its new name and a one-line warning
names the new key: the service runs, ``check`` passes, and the log says what to change. A file that
sets both names is a problem (which value was meant?), reported with the others.

A key path's parts are TOML keys; ``*`` stands for any key of a table (``platforms.*``) or any
entry of a list of tables (``routes.*``). A key may move to another table, but below the same ``*``
parts: ``new`` starts as ``old`` does up to its last ``*``, and those parts take the values they
matched in ``old``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stockbridge.config.messages import key_path


@dataclass(frozen=True, slots=True)
class RenamedKey:
    old: str  # "platforms.*.rules.max_mb"
    new: str  # "platforms.*.rules.max_file_mb"
    version: str  # the first release that reads only `new`, e.g. "0.2.0"


#: Every key renamed since 0.1.0, oldest first. When a key is renamed again, point its earlier
#: entries at the newest name (tests/unit/test_config_renames.py checks the table's shape).
RENAMED_KEYS: tuple[RenamedKey, ...] = (
    # Video rules sit with the other kinds' rules (vector, ai, categories) since issue 15.
    RenamedKey(old="platforms.*.video", new="platforms.*.rules.video", version="0.1.0"),
)


def apply_renames(data: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """``data`` with every old key moved to its new name, the warnings, and the problems.

    ``data`` is left untouched; it comes back as it was when no old name is in it.
    """
    warnings: list[str] = []
    problems: list[str] = []
    result = data
    for renamed in RENAMED_KEYS:
        old_parts, new_parts = renamed.old.split("."), renamed.new.split(".")
        found = list(_present(result, old_parts, []))
        if found and result is data:
            result = copy.deepcopy(data)
        for where in found:
            matched = iter(key for key, part in zip(where, old_parts, strict=True) if part == "*")
            target = [next(matched) if part == "*" else part for part in new_parts]
            old_name, new_name = key_path(where), key_path(target)
            value = _table_at(result, where[:-1]).pop(where[-1])
            destination = _make_table_at(result, target[:-1])
            if destination is None:
                problems.append(
                    f"{old_name}: renamed to {new_name} in stockbridge {renamed.version}; move it there"
                )
            elif target[-1] in destination:
                problems.append(
                    f"{old_name}: renamed to {new_name} in stockbridge {renamed.version}, and the file"
                    f" sets {new_name} too; remove {old_name}"
                )
            else:
                destination[target[-1]] = value
                warnings.append(
                    f"{old_name}: renamed to {new_name} in stockbridge {renamed.version};"
                    " the old name still works, but write the new one"
                )
    return result, warnings, problems


def _present(node: object, parts: list[str], where: list[Any]) -> Iterator[list[Any]]:
    """Every concrete key path that ``parts`` names and ``node`` holds."""
    if not parts:
        yield where
        return
    part, rest = parts[0], parts[1:]
    items: Any = ()
    if part == "*" and isinstance(node, dict):
        items = node.items()
    elif part == "*" and isinstance(node, list):
        items = enumerate(node)
    elif isinstance(node, dict) and part in node:
        items = [(part, node[part])]
    for key, value in items:
        yield from _present(value, rest, [*where, key])


def _table_at(data: dict[str, Any], where: list[Any]) -> dict[str, Any]:
    node: Any = data
    for key in where:
        node = node[key]
    return node


def _make_table_at(data: dict[str, Any], where: list[Any]) -> dict[str, Any] | None:
    """The table at ``where``, with any missing tables on the way made; None if a value that is
    not a table is in the way (nothing is made then)."""
    node: Any = data
    for depth, key in enumerate(where):
        if isinstance(node, dict) and key not in node:
            for missing in where[depth:]:
                node = node.setdefault(missing, {})
            return node
        if not isinstance(node, (dict, list)):
            return None
        node = node[key]  # a list index here was matched in `old`, below the same parts
    return node if isinstance(node, dict) else None
