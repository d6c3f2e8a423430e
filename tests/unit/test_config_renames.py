"""A config that works today still works: a renamed key is read under its new name, with a warning
that names the new key. The tests put their own entries into the table, so they do not change as
real renames (``platforms.*.video`` → ``platforms.*.rules.video``, issue 15) come and go."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from stockbridge.cli.main import main
from stockbridge.config import renames
from stockbridge.config.docs import docs_text
from stockbridge.config.loading import load_config, validate_config
from stockbridge.config.messages import _model_of
from stockbridge.config.models import Config, PlatformConfig
from stockbridge.config.presets import load_preset, preset_about, preset_names
from stockbridge.config.renames import RenamedKey, apply_renames
from stockbridge.config.rules import RulesConfig
from stockbridge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
[watch]
folder = "exports"

[state]
dir = "state"

[platforms.archive]
protocol = "folder"
path = "sent"

[platforms.archive.rules]
{rules}

[[routes]]
keyword = "archive-only"
platforms = ["archive"]
"""

MAX_MB = RenamedKey(old="platforms.*.rules.max_mb", new="platforms.*.rules.max_file_mb", version="0.2.0")


@pytest.fixture
def renamed(monkeypatch: pytest.MonkeyPatch):
    """Put ``entries`` in the table of renamed keys for one test."""

    def put(*entries: RenamedKey) -> None:
        monkeypatch.setattr(renames, "RENAMED_KEYS", entries)

    return put


def write(tmp_path: Path, rules: str) -> Path:
    (tmp_path / "exports").mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(rules=rules))
    path.chmod(0o600)
    return path


def test_an_old_key_still_loads_and_the_warning_names_the_new_key(tmp_path: Path, renamed):
    renamed(MAX_MB)
    path = write(tmp_path, "max_mb = 40")

    config = load_config(path)

    assert config.platforms["archive"].rules.max_file_mb == 40
    assert config.warnings == (
        f"{path}: platforms.archive.rules.max_mb: renamed to platforms.archive.rules.max_file_mb in"
        " stockbridge 0.2.0; the old name still works, but write the new one",
    )


def test_check_passes_and_shows_the_warning(tmp_path: Path, renamed):
    renamed(MAX_MB)
    path = write(tmp_path, "max_mb = 40")

    result = CliRunner().invoke(main, ["check", "--config", str(path)])

    assert result.exit_code == 0, result.output
    assert "platforms.archive.rules.max_mb: renamed to platforms.archive.rules.max_file_mb" in result.output


def test_without_the_entry_the_old_key_is_an_unknown_key(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "max_mb = 40"))
    assert caught.value.problems == [
        'platforms.archive.rules.max_mb: unknown key; did you mean "max_file_mb"?'
    ]


def test_a_file_setting_both_names_is_one_problem_naming_both(tmp_path: Path, renamed):
    renamed(MAX_MB)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "max_mb = 40\nmax_file_mb = 45"))
    assert caught.value.problems == [
        "platforms.archive.rules.max_mb: renamed to platforms.archive.rules.max_file_mb in stockbridge"
        " 0.2.0, and the file sets platforms.archive.rules.max_file_mb too; remove"
        " platforms.archive.rules.max_mb"
    ]


def test_a_key_can_move_to_another_table_made_for_it(renamed):
    renamed(RenamedKey(old="platforms.*.keyword_max", new="platforms.*.rules.keywords.max", version="0.2.0"))
    data = {"platforms": {"a": {"keyword_max": 49}, "b": {"protocol": "ftp"}}}

    result, warnings, problems = apply_renames(data)

    assert result == {"platforms": {"a": {"rules": {"keywords": {"max": 49}}}, "b": {"protocol": "ftp"}}}
    assert warnings == [
        "platforms.a.keyword_max: renamed to platforms.a.rules.keywords.max in stockbridge 0.2.0;"
        " the old name still works, but write the new one"
    ]
    assert problems == []
    assert data == {"platforms": {"a": {"keyword_max": 49}, "b": {"protocol": "ftp"}}}  # untouched


def test_a_key_in_a_list_of_tables_is_renamed_in_every_entry(renamed):
    renamed(RenamedKey(old="routes.*.tag", new="routes.*.keyword", version="0.2.0"))
    data = {"routes": [{"tag": "a", "platforms": ["x"]}, {"folder": "b", "platforms": ["x"]}, {"tag": "c"}]}

    result, warnings, _ = apply_renames(data)

    assert result["routes"] == [
        {"keyword": "a", "platforms": ["x"]},
        {"folder": "b", "platforms": ["x"]},
        {"keyword": "c"},
    ]
    assert [warning.partition(":")[0] for warning in warnings] == ["routes[0].tag", "routes[2].tag"]


def test_a_value_in_the_way_of_the_new_table_is_a_problem_not_a_crash(renamed):
    renamed(RenamedKey(old="platforms.*.csv_columns", new="platforms.*.csv.columns", version="0.2.0"))
    data = {"platforms": {"a": {"csv_columns": ["Filename"], "csv": "yes"}}}

    result, warnings, problems = apply_renames(data)

    assert result == {"platforms": {"a": {"csv": "yes"}}}  # the old key is not reported again as unknown
    assert warnings == []
    assert problems == [
        "platforms.a.csv_columns: renamed to platforms.a.csv.columns in stockbridge 0.2.0; move it there"
    ]


def test_the_reference_page_lists_renamed_keys(renamed):
    renamed(MAX_MB)
    assert "| `platforms.*.rules.max_mb` | `platforms.*.rules.max_file_mb` | 0.2.0 |" in docs_text()


# --------------------------------------------------------------------------------------------
# What works today keeps working


def test_the_example_config_loads_unchanged():
    path = REPO / "config.example.toml"
    data = tomllib.loads(path.read_text())
    assert apply_renames(data) == (data, [], [])  # the very same data, nothing to move
    config = load_config(path, resolve_secrets=False)
    assert config.warnings == ()
    assert config.platforms["my_ftps_agency"].rules.keywords.max == 50


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_unchanged(name: str):
    preset = load_preset(name)
    assert apply_renames({"platforms": {"mine": preset}}) == ({"platforms": {"mine": preset}}, [], [])

    table: dict[str, Any] = {"preset": name}
    for need in preset_about(name)["needs"]:  # what only the user knows: test values
        key = need.split("|")[0]
        table[key] = {"password": {"env": "X"}, "port": 2121, "host_key": "SHA256:" + "A" * 43}.get(key, "x")
    config = validate_config(
        {"watch": {"folder": "exports"}, "platforms": {"mine": table}},
        source=Path("/nowhere/config.toml"),
        resolve_secrets=False,
    )
    assert config.warnings == ()
    assert config.platforms["mine"].rules == RulesConfig.model_validate(preset.get("rules", {}))
    assert config.platforms["mine"].protocol == preset["protocol"]


# --------------------------------------------------------------------------------------------
# The table itself


def current_key(path: str) -> bool:
    """Whether ``path`` (with ``*`` for a platform name or list entry) names a key of today's models."""
    model: type[BaseModel] | None = Config
    for part in path.split("."):
        if part == "*":
            continue
        if model is None or part not in model.model_fields:
            return False
        model = (
            PlatformConfig
            if (model is Config and part == "platforms")
            else _model_of(model.model_fields[part].annotation)
        )
    return True


def shape_problems(entries: tuple[RenamedKey, ...]) -> list[str]:
    problems = []
    olds = {entry.old for entry in entries}
    for entry in entries:
        old, new = entry.old.split("."), entry.new.split(".")
        last_star = max((index for index, part in enumerate(old) if part == "*"), default=-1)
        if current_key(entry.old):
            problems.append(f"{entry.old}: still a key today")
        if not current_key(entry.new):
            problems.append(f"{entry.new}: not a key today")
        if old[: last_star + 1] != new[: last_star + 1] or new.count("*") != old.count("*"):
            problems.append(f"{entry.old} → {entry.new}: must keep the same * parts in front")
        if entry.new in olds:
            problems.append(f"{entry.new}: renamed again; point this entry at the newest name")
        if not re.fullmatch(r"\d+\.\d+\.\d+", entry.version):
            problems.append(f"{entry.version}: not a release number")
    return problems


def test_the_table_of_renamed_keys_is_well_formed():
    assert shape_problems(renames.RENAMED_KEYS) == []


def test_the_shape_check_catches_bad_entries():
    assert shape_problems((MAX_MB,)) == []
    assert len(shape_problems((RenamedKey("platforms.*.rules.max_file_mb", "platforms.*.nope", "2"),))) == 3
    assert shape_problems((RenamedKey("platforms.*.max_mb", "max_file_mb", "0.2.0"),)) == [
        "max_file_mb: not a key today",
        "platforms.*.max_mb → max_file_mb: must keep the same * parts in front",
    ]
    assert shape_problems(
        (MAX_MB, RenamedKey("platforms.*.rules.size_mb", "platforms.*.rules.max_mb", "0.3.0"))
    ) == [
        "platforms.*.rules.max_mb: not a key today",
        "platforms.*.rules.max_mb: renamed again; point this entry at the newest name",
    ]
