"""`stockbridge init`: a starter config with the chosen presets, valid once its placeholders are filled."""

from __future__ import annotations

import json
import re
import stat
import sys

import jsonschema
import pytest

from stockbridge.config.docs import config_schema
from stockbridge.config.loading import load_config
from stockbridge.config.presets import preset_about, preset_names
from stockbridge.config.starter import PLACEHOLDER, starter_config, write_starter_config
from stockbridge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FILLED = {
    "username": '"contributor-42"',
    "host": '"ftp.example.com"',
    "path": '"staging"',
    "host_key": '"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"',
}


def fill(text: str) -> str:
    """What a user does: replace every placeholder with a real value."""
    text = re.sub(rf"^port = 0  # {PLACEHOLDER}.*$", "port = 2121", text, flags=re.MULTILINE)
    for key, value in FILLED.items():
        text = re.sub(rf'^{key} = ".*{PLACEHOLDER}"$', f"{key} = {value}", text, flags=re.MULTILINE)
    assert PLACEHOLDER not in "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return text


def test_a_starter_config_with_every_preset_is_valid_once_filled_in(tmp_path):
    path = tmp_path / "config.toml"
    write_starter_config(path, preset_names())
    path.write_text(fill(path.read_text(encoding="utf-8")), encoding="utf-8")
    config = load_config(path, resolve_secrets=False)
    assert sorted(config.platforms) == preset_names()
    assert config.platforms["adobe_stock"].protocol == "sftp"  # from the preset
    assert config.platforms["adobe_stock"].username == "contributor-42"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(config_schema()).iter_errors(data)) == []


def test_each_needed_key_is_a_placeholder_with_the_hint_where_to_find_it():
    text = starter_config(["adobe_stock"])
    hints = preset_about("adobe_stock")["hints"]
    assert '[platforms.adobe_stock]\npreset = "adobe_stock"' in text
    assert f'# username: {hints["username"]}\nusername = "{PLACEHOLDER}"' in text
    assert f"# host_key: {hints['host_key|known_hosts']}" in text and "(or instead: known_hosts" in text
    assert 'password = { env = "ADOBE_STOCK_PASSWORD" }' in text


def test_an_unfilled_starter_config_is_refused_where_a_placeholder_would_break_it(tmp_path):
    path = tmp_path / "config.toml"
    write_starter_config(path, ["freepik"])
    with pytest.raises(ConfigError) as caught:
        load_config(path, resolve_secrets=False)
    assert any(problem.startswith("platforms.freepik.port") for problem in caught.value.problems)


def test_without_presets_the_starter_config_is_valid_as_written(tmp_path):
    path = tmp_path / "config.toml"
    write_starter_config(path, [])
    assert load_config(path, resolve_secrets=False).platforms == {}
    assert "stockbridge init --preset NAME" in path.read_text(encoding="utf-8")


def test_an_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("mine\n")
    with pytest.raises(ConfigError, match="already there; not overwritten"):
        write_starter_config(path, ["shutterstock"])
    assert path.read_text() == "mine\n"


def test_the_written_file_is_private_and_its_folder_is_made(tmp_path):
    path = tmp_path / "new" / "config.toml"
    write_starter_config(path, ["shutterstock"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_unknown_preset_is_named_with_a_suggestion():
    with pytest.raises(ConfigError, match='did you mean "shutterstock"'):
        starter_config(["shuterstock"])


def test_check_names_every_placeholder_left_unfilled(tmp_path):
    path = tmp_path / "config.toml"
    write_starter_config(path, ["adobe_stock"])
    with pytest.raises(ConfigError) as caught:
        load_config(path, resolve_secrets=False)
    problems = caught.value.problems
    assert any(
        p.startswith("platforms.adobe_stock.username: still the FILL-IN placeholder") for p in problems
    )
    assert any(
        p.startswith("platforms.adobe_stock.host_key: still the FILL-IN placeholder") for p in problems
    )


def test_the_starter_config_names_its_schema_for_editors_and_the_schema_is_written_next_to_it(tmp_path):
    path = tmp_path / "config.toml"
    write_starter_config(path, ["shutterstock"])
    assert path.read_text().splitlines()[0] == "#:schema ./config.schema.json"
    schema = json.loads((tmp_path / "config.schema.json").read_text())
    assert schema == config_schema()
    jsonschema.validate(tomllib.loads(fill(path.read_text())), schema)


def test_a_schema_file_already_next_to_the_config_is_left_as_it_is(tmp_path):
    (tmp_path / "config.schema.json").write_text("{}")
    write_starter_config(tmp_path / "config.toml", [])
    assert (tmp_path / "config.schema.json").read_text() == "{}"
