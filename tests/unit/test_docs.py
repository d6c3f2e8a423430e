"""One source: the JSON Schema and the reference page are generated from the config models and kept in step."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from stockbridge.config.docs import (
    DOCS_COMMAND,
    DOCS_PATH,
    EXAMPLE_PATH,
    SCHEMA_COMMAND,
    SCHEMA_PATH,
    config_schema,
    config_tables,
    docs_text,
    key_description,
    nested_model,
    packaged_reference,
    schema_text,
)
from stockbridge.config.models import Config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(config_schema())


def test_the_committed_schema_is_what_the_code_generates():
    committed = (ROOT / SCHEMA_PATH).read_text(encoding="utf-8")
    assert committed == schema_text(), f"{SCHEMA_PATH} is out of date; regenerate it: {SCHEMA_COMMAND}"


def test_the_committed_reference_is_what_the_code_generates():
    committed = (ROOT / DOCS_PATH).read_text(encoding="utf-8")
    assert committed == docs_text(), f"{DOCS_PATH} is out of date; regenerate it: {DOCS_COMMAND}"


def test_the_schema_is_a_valid_json_schema_with_descriptions():
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    watch = schema["$defs"]["WatchConfig"]["properties"]["settle_seconds"]
    assert watch["description"] and watch["default"] == 10.0
    assert "source" not in schema["properties"] and "warnings" not in schema["properties"]


def test_the_example_config_carries_the_schema_line_and_passes_the_schema():
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "#:schema ./docs/config.schema.json"
    assert list(validator().iter_errors(tomllib.loads(text))) == []


def test_the_schema_flags_what_an_editor_should_flag():
    def problems(data: dict) -> list[str]:
        return [error.message for error in validator().iter_errors(data)]

    assert problems({"watch": {"folder": "x", "setle_seconds": 3}})  # a typo
    assert problems({"watch": {"folder": "x"}, "platforms": {"a": {"host": "h"}}})  # no protocol
    assert problems({"watch": {"folder": "x"}, "platforms": {"a": {"preset": "adobe"}}})  # no such preset
    # A preset gives the protocol, so a table that names one needs only what the user must give.
    assert problems({"watch": {"folder": "x"}, "platforms": {"a": {"preset": "shutterstock"}}}) == []


def every_key() -> list[tuple[str, str, object]]:
    found = []

    def walk(model: type, path: str) -> None:
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if field.exclude:
                continue
            found.append((f"{path}{field.alias or name}", name, field))
            nested, _shape = nested_model(field.annotation)
            if nested is not None:
                walk(nested, f"{path}{field.alias or name}.")

    walk(Config, "")
    return found


def test_every_value_key_has_a_description():
    missing = [
        path
        for path, _name, field in every_key()
        if nested_model(field.annotation)[0] is None and not key_description(field)  # type: ignore[arg-type]
    ]
    assert missing == [], (
        f"add description= to these fields in stockbridge/config/models.py or rules.py: {missing}"
    )


def test_every_table_key_has_a_description():
    missing = [
        path
        for path, _name, field in every_key()
        if nested_model(field.annotation)[0] is not None and not key_description(field)  # type: ignore[arg-type]
    ]
    assert missing == [], f"add description= to these fields (or a docstring to their model): {missing}"


def test_the_reference_has_a_section_for_every_table_and_a_row_for_every_key():
    text = docs_text()
    headings = [table.heading for table in config_tables()]
    for heading in ["[watch]", "[platforms.NAME]", "[platforms.NAME.rules.keywords]", "[[routes]]"]:
        assert heading in headings and f"## `{heading}`" in text
    assert "| `settle_seconds` | number | `10.0` |" in text
    assert '| `protocol` | "ftp" \\| "ftps" \\| "sftp" \\| "folder" | required |' in text
    keys_part = text.partition("\n## Renamed keys")[0]  # that section's rows are old names, not keys
    assert len([line for line in keys_part.splitlines() if line.startswith("| `")]) == len(every_key())


def test_config_schema_and_docs_commands_print_the_generated_text():
    from click.testing import CliRunner

    from stockbridge.cli.main import main

    runner = CliRunner()
    schema = runner.invoke(main, ["config", "schema"])
    assert schema.exit_code == 0 and json.loads(schema.output) == json.loads(schema_text())
    docs = runner.invoke(main, ["config", "docs"])
    assert docs.exit_code == 0 and docs.output == docs_text()


@pytest.mark.parametrize("repository_file", [EXAMPLE_PATH, SCHEMA_PATH, DOCS_PATH])
def test_the_package_ships_the_same_example_schema_and_reference_as_the_repository(repository_file):
    # A pipx user has no repository: the wheel carries these copies (stockbridge/reference/).
    assert packaged_reference(repository_file.name) == (ROOT / repository_file).read_text(encoding="utf-8"), (
        f"copy {repository_file} to stockbridge/reference/"
    )


def test_config_example_prints_the_example_with_a_schema_line_for_a_config_folder():
    from click.testing import CliRunner

    from stockbridge.cli.main import main

    result = CliRunner().invoke(main, ["config", "example"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "#:schema ./config.schema.json"
    repository = (ROOT / EXAMPLE_PATH).read_text(encoding="utf-8").splitlines()
    assert lines[2:] == repository[1:]
    assert list(validator().iter_errors(tomllib.loads(result.output))) == []
