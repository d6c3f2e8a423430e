"""Error messages a person can act on: pydantic's validation errors, one line per problem.

Each line starts with the key path (``platforms.adobe.rules.keywords.max``), says what was expected
and what the file holds (never a secret's value, never more than a short excerpt, never a control
character), and for an unknown key offers the closest known one ("did you mean").
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel

from stockbridge.config.base import _Model
from stockbridge.config.models import Config, PlatformConfig


def describe(error: Any, data: dict[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as ``key.path: what is wrong``."""
    loc = [part for part in error["loc"] if not _is_union_tag(part)]
    path = key_path(loc) or "(top level)"
    kind = error["type"]
    value = error.get("input")
    if any(part in _SECRET_KEYS for part in loc) and not isinstance(value, dict):
        value = _Hidden(value)
    if kind == "extra_forbidden":
        parent_path, key = loc[:-1], str(loc[-1])
        choices = _allowed_keys(parent_path)
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        hint = (
            f'; did you mean "{close[0]}"?'
            if close
            else (f"; known keys: {', '.join(choices)}" if choices else "")
        )
        return f"{path}: unknown key{hint}"
    if kind == "missing":
        return f"{path}: required key is missing"
    expected = {
        "int_parsing": "an integer",
        "int_type": "an integer",
        "int_from_float": "an integer",
        "float_parsing": "a number",
        "float_type": "a number",
        "bool_parsing": "true or false",
        "bool_type": "true or false",
        "string_type": "a string",
        "list_type": "a list",
        "dict_type": "a table",
        "model_type": "a table",
        "path_type": "a path string",
    }.get(kind)
    if expected:
        if kind in ("int_type", "float_type") and isinstance(value, str) and _is_number(value):
            return f"{path}: expected {expected}, got {_show(value)}; write the number without quotes"
        return f"{path}: expected {expected}, got {_show(value)}"
    if kind == "literal_error":
        return f"{path}: expected one of {error['ctx']['expected']}, got {_show(value)}"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than", "finite_number"):
        return f"{path}: {message[0].lower() + message[1:]}, got {_show(value)}"
    if kind == "string_too_long":
        length = f" ({len(value)})" if isinstance(value, str) else ""
        return f"{path}: longer than {error['ctx']['max_length']} characters{length}; is it the right value?"
    if kind == "string_pattern_mismatch" and loc and loc[0] == "platforms":
        return f"{path}: a platform name may hold only letters, digits, '_', '-' and '.'"
    return f"{path}: {message}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def merge_union_problems(problems: list[str]) -> list[str]:
    """pydantic reports a value that fits no member of a union once per member; say it once.

    A table that fits the table member but for its own problems (``password = { vault = ... }``)
    is reported by those problems alone, not also as "expected a string, got a table".
    """
    paths = [problem.partition(": ")[0] for problem in problems]
    problems = [
        problem
        for index, problem in enumerate(problems)
        if not (
            problem.endswith(", got a table")
            and any(
                other == paths[index] or other.startswith(f"{paths[index]}.")
                for position, other in enumerate(paths)
                if position != index
            )
        )
    ]
    result: list[str] = []
    expected_at: dict[str, int] = {}
    for problem in problems:
        path, _, message = problem.partition(": ")
        if message.startswith("expected ") and ", got " in message and path in expected_at:
            index = expected_at[path]
            wanted, got = message.removeprefix("expected ").rsplit(", got ", 1)
            before, _, _ = result[index].rpartition(", got ")
            result[index] = f"{before} or {wanted}, got {got}"
            continue
        if message.startswith("expected ") and ", got " in message:
            expected_at[path] = len(result)
        result.append(problem)
    return result


def _is_union_tag(part: object) -> bool:
    # pydantic puts the union member's name into loc ("str", "PasswordSource", "function-after[...]").
    return isinstance(part, str) and (
        part in ("str", "int", "float", "list[str]", "[key]")
        or part in _model_names()
        or part.startswith("literal[")
        or ("[" in part and "(" in part)
    )


def _model_names() -> set[str]:
    names, pending = set(), [_Model]
    while pending:
        model = pending.pop()
        names.add(model.__name__)
        pending.extend(model.__subclasses__())
    return names


#: Keys whose values are secrets: a wrongly typed password is still a password.
_SECRET_KEYS = frozenset({"password", "token", "headers"})
#: Longer values are cut in messages (a 5 MB string must not become a 5 MB error line).
_MAX_SHOWN_CHARS = 60


class _Hidden:
    def __init__(self, value: object) -> None:
        self.kind = type(value).__name__


def key_path(parts: list[Any]) -> str:
    """``platforms.agency.port``; a part with odd characters is quoted as in TOML: ``platforms."a b"``."""
    import json
    import re

    shown = []
    for part in parts:
        if isinstance(part, int):
            shown.append(f"[{part}]")
            continue
        text = str(part)
        shown.append(
            ("." if shown else "") + (text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text))
        )
    return "".join(shown)


def printable(text: str) -> str:
    """``text`` with control characters escaped: a value from the file must not move the cursor,
    clear the screen or start a new log line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _show(value: object) -> str:
    if isinstance(value, _Hidden):
        return {"int": "an integer", "float": "a number", "bool": "true or false", "list": "a list"}.get(
            value.kind, "a value"
        ) + " (not shown: it is a secret)"
    if isinstance(value, str):
        if len(value) > _MAX_SHOWN_CHARS:
            value = f"{value[:_MAX_SHOWN_CHARS]}... ({len(value)} characters)"
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _allowed_keys(parent: list[Any]) -> list[str]:
    """The keys valid at ``parent`` (a loc path), by walking the models."""
    model: type[BaseModel] | None = Config
    index = 0
    while model is not None and index < len(parent):
        part = parent[index]
        if model is Config and part == "platforms":
            index += 2  # skip the platform name
            model = PlatformConfig
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        model = _model_of(field.annotation)
        index += 1
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items() if not field.exclude]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
