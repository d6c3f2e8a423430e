"""Built-in presets: each is sourced, dated and valid once the user gives what only they can give."""

from __future__ import annotations

import ast
import copy
import datetime
import re
from pathlib import Path
from typing import Any

import pytest

from stockbridge.config.loading import validate_config
from stockbridge.config.presets import expand_presets, load_preset, preset_about, preset_names
from stockbridge.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[2] / "stockbridge"

#: Test values for every key a preset may need from the user.
USER_VALUES: dict[str, Any] = {
    "username": "someone",
    "password": {"env": "SOME_PASSWORD"},
    "host": "ftp.example.com",
    "port": 2121,
    "path": "staging",
    "host_key": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "key_file": "id_ed25519",
    "known_hosts": "known_hosts",
}

EXPECTED = {
    "shutterstock",
    "adobe_stock",
    "istock",
    "freepik",
    "dreamstime",
    "123rf",
    "pond5",
    "alamy",
    "depositphotos",
    "vecteezy",
    "agefotostock",
}


def user_table(preset: str) -> dict[str, Any]:
    """A platform table naming ``preset`` and giving exactly what it needs (first alternatives)."""
    table: dict[str, Any] = {"preset": preset}
    for need in preset_about(preset)["needs"]:
        key = need.split("|")[0]
        table[key] = USER_VALUES[key]
    return table


def config_with(**platforms: dict[str, Any]) -> dict[str, Any]:
    return {"watch": {"folder": "exports"}, "platforms": platforms}


def test_every_agency_has_a_preset():
    assert set(preset_names()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_preset_cites_sources_and_the_date_they_were_checked(name):
    about = preset_about(name)
    assert about["name"]
    assert about["sources"], "a preset without sources"
    assert all(source.startswith("https://") for source in about["sources"])
    checked = datetime.date.fromisoformat(about["checked"])
    assert datetime.date(2024, 1, 1) <= checked <= datetime.date.today()
    assert about["notes"].strip()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_preset_validates_once_the_user_gives_what_it_needs(name):
    data, problems = expand_presets(config_with(mine=user_table(name)))
    assert problems == []
    config = validate_config(data, source=Path("/nowhere/config.toml"), resolve_secrets=False)
    platform = config.platforms["mine"]
    assert platform.preset == name
    assert platform.rules.formats, "every preset says which formats it takes"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_preset_leaves_no_credential_for_the_user_to_replace(name):
    table = load_preset(name)
    assert "about" not in table
    for key in ("username", "password", "key_file", "host_key", "known_hosts", "path"):
        assert key not in table, f"{name} sets {key}, which only the user can give"
    # A host is written only where the agency publishes a fixed one; otherwise it is needed.
    needs = {key for need in preset_about(name)["needs"] for key in need.split("|")}
    if table["protocol"] != "folder":
        assert ("host" in table) != ("host" in needs)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_presets_upload_directly_to_agency_servers(name):
    # No agency was confirmed to allow renames (no preset source says so): temporary names stay off.
    table = load_preset(name)
    if table["protocol"] != "folder":
        assert table["atomic_rename"] is False


def test_a_preset_missing_what_only_the_user_knows_says_which_key_and_where_to_find_it():
    _, problems = expand_presets(config_with(stock={"preset": "freepik", "username": "me"}))
    assert any(
        problem.startswith("platforms.stock.port: the freepik preset needs this (") for problem in problems
    )
    assert any(
        problem.startswith("platforms.stock.host: the freepik preset needs this") for problem in problems
    )
    assert any(problem.startswith("platforms.stock.password:") for problem in problems)
    assert not any(".username:" in problem for problem in problems)


def test_a_need_with_alternatives_is_met_by_either_key():
    table = user_table("vecteezy")
    del table["host_key"]
    _, problems = expand_presets(config_with(v=table))
    assert len(problems) == 1
    assert problems[0].startswith("platforms.v.host_key: the vecteezy preset needs this, or known_hosts (")
    table["known_hosts"] = USER_VALUES["known_hosts"]
    assert expand_presets(config_with(v=table))[1] == []


def test_an_empty_string_does_not_count_as_given():
    table = user_table("shutterstock") | {"username": ""}
    _, problems = expand_presets(config_with(s=table))
    assert [problem.split(":")[0] for problem in problems] == ["platforms.s.username"]


def test_the_users_keys_win_over_the_preset_and_tables_merge_key_by_key():
    table = user_table("adobe_stock") | {"rules": {"keywords": {"max": 25}, "min_megapixels": 6.0}}
    data, problems = expand_presets(config_with(adobe=table))
    assert problems == []
    rules = data["platforms"]["adobe"]["rules"]
    assert rules["keywords"] == {"min": 0, "max": 25, "over_max": "truncate"}
    assert rules["min_megapixels"] == 6.0
    assert rules["max_file_mb"] == load_preset("adobe_stock")["rules"]["max_file_mb"]
    config = validate_config(data, resolve_secrets=False)
    assert config.platforms["adobe"].rules.keywords.max == 25
    assert config.platforms["adobe"].host == load_preset("adobe_stock")["host"]


def test_a_users_list_replaces_the_presets_list():
    table = user_table("pond5") | {"rules": {"formats": ["jpeg"]}}
    data, _ = expand_presets(config_with(p=table))
    assert data["platforms"]["p"]["rules"]["formats"] == ["jpeg"]


def test_a_users_table_replaces_a_presets_plain_value():
    table = user_table("pond5") | {"rules": {"editorial": {"remote_dir": "Editorial"}}}
    data, _ = expand_presets(config_with(p=table))
    config = validate_config(data, resolve_secrets=False)
    assert config.platforms["p"].rules.editorial.remote_dir == "Editorial"  # type: ignore[union-attr]


def test_an_unknown_preset_suggests_the_closest_name():
    _, problems = expand_presets(config_with(s={"preset": "shuterstock"}))
    assert problems == ['platforms.s.preset: unknown preset "shuterstock"; did you mean "shutterstock"?']


def test_an_unknown_preset_far_from_any_lists_the_known_ones():
    _, problems = expand_presets(config_with(s={"preset": "zzz"}))
    assert problems[0].startswith('platforms.s.preset: unknown preset "zzz"; known presets: 123rf, ')


def test_loading_an_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match='did you mean "pond5"'):
        load_preset("pond4")


def test_expanding_leaves_the_input_untouched():
    data = config_with(
        a=user_table("alamy") | {"rules": {"keywords": {"max": 10}}}, plain={"protocol": "folder"}
    )
    before = copy.deepcopy(data)
    expanded, _ = expand_presets(data)
    assert data == before
    expanded["platforms"]["a"]["rules"]["keywords"]["max"] = 3
    assert data == before
    assert expanded["platforms"]["plain"] == {"protocol": "folder"}


def test_loaded_presets_are_fresh_copies():
    first = load_preset("shutterstock")
    first["rules"]["keywords"]["max"] = 1
    assert load_preset("shutterstock")["rules"]["keywords"]["max"] == 50


def test_a_config_without_presets_comes_back_equal():
    data = config_with(archive={"protocol": "folder", "path": "sent"})
    assert expand_presets(data) == (data, [])


def agency_names_in_code(source: str) -> list[tuple[int, str]]:
    """(line, text) of every identifier or string in ``source`` naming an agency; docstrings and
    comments are prose, where an example may name one."""
    pattern = re.compile("|".join(re.escape(name) for name in sorted(EXPECTED)), re.IGNORECASE)
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
        and isinstance(node.body[0].value.value, str)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            text = node.name
        elif isinstance(node, ast.arg):
            text = node.arg
        else:
            continue
        if pattern.search(text):
            found.append((getattr(node, "lineno", 0), text))
    return found


def test_the_agency_name_check_sees_strings_and_names_but_not_prose():
    source = '''"""Module docs may say Shutterstock."""
# so may comments: pond5
def f(dreamstime_mode):
    """Docstring: alamy."""
    return {"host": "upload.ALAMY.com"}, f"{dreamstime_mode}"
'''
    assert sorted(text for _, text in agency_names_in_code(source)) == [
        "dreamstime_mode",
        "dreamstime_mode",
        "upload.ALAMY.com",
    ]


def test_no_python_code_names_an_agency():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "presets" in path.relative_to(PACKAGE).parts[:-1]:
            continue  # preset data lives there
        for line, text in agency_names_in_code(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert offenders == [], "agency names belong in stockbridge/presets/*.toml:\n" + "\n".join(offenders)


@pytest.mark.parametrize("name", ["adobe_stock", "freepik"])
def test_a_preset_used_as_a_staging_folder_needs_only_the_folder(name, tmp_path):
    # Most contributors may not use the agency's SFTP/FTP ("qualified" accounts, 500+ files):
    # they stage files for the web upload. No login, host key or port is asked for then.
    (tmp_path / "exports").mkdir()
    data = {
        "watch": {"folder": str(tmp_path / "exports")},
        "platforms": {"stock": {"preset": name, "protocol": "folder", "path": str(tmp_path / "staging")}},
    }
    config = validate_config(data, resolve_secrets=False)
    assert config.platforms["stock"].protocol == "folder"
    assert (
        config.platforms["stock"].rules
        == validate_config(
            {"watch": data["watch"], "platforms": {"stock": user_table(name)}}, resolve_secrets=False
        )
        .platforms["stock"]
        .rules
    )


def test_a_staging_folder_without_its_path_says_the_folder_protocol_needs_it():
    _, problems = expand_presets(config_with(stock={"preset": "adobe_stock", "protocol": "folder"}))
    assert problems == ['platforms.stock.path: protocol "folder" needs this']


def test_a_preset_switched_to_another_server_protocol_needs_that_protocols_keys():
    # The preset's host is kept; ftps needs a login and a password, not a host key.
    _, problems = expand_presets(
        config_with(stock={"preset": "adobe_stock", "protocol": "ftps", "username": "me"})
    )
    assert problems == ['platforms.stock.password: protocol "ftps" needs this']
