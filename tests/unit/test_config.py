"""Configuration: found where the user expects, every problem reported at once with its key path."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from stockbridge.config.loading import find_config_path, load_config, validate_config
from stockbridge.config.models import Config
from stockbridge.config.secrets import resolve_password
from stockbridge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
[watch]
folder = "exports"

[platforms.archive]
protocol = "folder"
path = "sent"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return caught.value.problems


def test_the_example_config_validates():
    config = load_config(REPO / "config.example.toml", resolve_secrets=False)
    assert "my_ftps_agency" in config.platforms
    assert config.platforms["my_ftps_agency"].rules.keywords.max == 50


def test_the_example_config_documents_every_key():
    text = (REPO / "config.example.toml").read_text()
    keys = set(re.findall(r"\b([a-z_]+)\s*=", text))  # top-level, inline-table and commented-out keys
    # A table documents its own key: [platforms.NAME.rules.video] documents `video`.
    tables = set(re.findall(r"^\[\[?(?:[a-z_]+\.)*([a-z_]+)\]", text, flags=re.MULTILINE))

    from pydantic import BaseModel

    from stockbridge.config.messages import _model_of

    wanted: set[str] = set()
    todo: list[type[BaseModel]] = [Config]
    seen: set[type[BaseModel]] = set()
    while todo:  # every model reachable from Config, so a new table cannot be forgotten
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            wanted.add(field.alias or name)  # the TOML key (EmailConfig.sender is `from`)
            nested = _model_of(field.annotation)
            if nested is not None:
                todo.append(nested)
            for arg in getattr(field.annotation, "__args__", ()):
                for inner in getattr(arg, "__args__", (arg,)):
                    found = _model_of(inner)
                    if found is not None:
                        todo.append(found)
    missing = sorted(wanted - keys - tables)
    assert not missing, f"config.example.toml does not document: {missing}"


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.watch.folder == tmp_path / "exports"
    assert config.platforms["archive"].path == tmp_path / "sent"


def test_config_is_found_by_flag_then_environment_then_user_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("STOCKBRIDGE_CONFIG", str(tmp_path / "from-env.toml"))
    assert find_config_path(tmp_path / "flag.toml") == tmp_path / "flag.toml"
    assert find_config_path(None) == tmp_path / "from-env.toml"
    monkeypatch.delenv("STOCKBRIDGE_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert find_config_path(None) == tmp_path / "xdg" / "stockbridge" / "config.toml"


def test_a_missing_file_says_where_to_put_one(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in caught.value.message
    assert "stockbridge config example" in (caught.value.hint or "")  # a pipx user has no repository file


def test_every_problem_is_reported_at_once_with_its_key_path(tmp_path):
    problems = problems_of(
        tmp_path,
        """
[watch]
folder = "x"
setle_seconds = 3

[platforms.adobe]
protocol = "sftp"
host = "sftp.example.com"
username = "me"
password = "pw"
host_key = "SHA256:abc"

[platforms.adobe.rules]
keywords = { max = "fifty" }
max_file_mb = -3
formats = ["jpeg", "gif"]

[platforms.other]
protocol = "ftpz"
""",
    )
    assert 'watch.setle_seconds: unknown key; did you mean "settle_seconds"?' in problems
    assert 'platforms.adobe.rules.keywords.max: expected an integer, got "fifty"' in problems
    assert any(p.startswith("platforms.adobe.rules.max_file_mb:") and "greater than 0" in p for p in problems)
    assert any(p.startswith("platforms.adobe.rules.formats:") and "'gif'" in p for p in problems)
    assert any(p.startswith("platforms.other.protocol:") and '"ftpz"' in p for p in problems)
    assert len(problems) == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[watch]\nfolder = "x"\nrecursive = "yes"\n', 'watch.recursive: expected true or false, got "yes"'),
        (
            '[watch]\nfolder = "x"\nsettle_seconds = "ten"\n',
            'watch.settle_seconds: expected a number, got "ten"',
        ),
        ("[state]\n", "watch: required key is missing"),
        (
            '[watch]\nfolder = "x"\nrescan_seconds = 5\n',
            "watch.rescan_seconds: must be 0 (off) or at least 10",
        ),
        ('[watch]\nfolder = "x"\nobserver = "inotify"\n', "watch.observer"),
        (
            '[watch]\nfolder = "x"\nsettle_seconds = 30\nmax_settle_seconds = 20\n',
            "watch: max_settle_seconds (20) is shorter than settle_seconds (30)",
        ),
        (
            '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "folder"\npth = "y"\n',
            'platforms.a.pth: unknown key; did you mean "path"?',
        ),
        (
            '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "ftp"\nhost = "h"\nusername = "u"\npassword = 3\n',
            "platforms.a.password: expected a string or a table, got an integer (not shown",
        ),
        (
            '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "ftp"\nhost = "h"\nusername = "u"\n',
            "platforms.a: ftp needs password",
        ),
        (
            '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "sftp"\nhost = "h"\nusername = "u"\npassword = "p"\n',
            "platforms.a: sftp needs host_key or known_hosts",
        ),
        (
            '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "ftp"\nhost = "h"\nusername = "u"\n'
            'password = { env = "A", file = "b" }\n',
            "platforms.a.password: give exactly one of",
        ),
        (
            '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "folder"\npath = "p"\n[platforms.a.rules]\n'
            "keywords = { min = 9, max = 3 }\n",
            "platforms.a.rules.keywords: min (9) is larger than max (3)",
        ),
    ],
)
def test_each_problem_names_its_key_and_what_is_wrong(tmp_path, text, expected):
    problems = problems_of(tmp_path, text)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_toml_syntax_errors_keep_line_and_column(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, '[watch]\nfolder = "x"\nrecursive = tru\n'))
    assert "line 3" in caught.value.message and "column" in caught.value.message


def test_password_from_environment_and_file(tmp_path, monkeypatch):
    (tmp_path / "pw.txt").write_text("from-file-secret\nignored second line\n")
    monkeypatch.setenv("SB_TEST_PW", "from-env-secret")
    config = load_config(
        write(
            tmp_path,
            '[watch]\nfolder = "x"\n'
            '[platforms.a]\nprotocol = "ftps"\nhost = "h"\nusername = "u"\npassword = { env = "SB_TEST_PW" }\n'
            '[platforms.b]\nprotocol = "ftps"\nhost = "h"\nusername = "u"\npassword = { file = "pw.txt" }\n',
        )
    )
    a, b = resolve_password(config.platforms["a"]), resolve_password(config.platforms["b"])
    assert a is not None and a.reveal() == "from-env-secret"
    assert b is not None and b.reveal() == "from-file-secret"
    assert "from-env-secret" not in repr(config) + str(a) + repr(a) + f"{a}"


def test_a_missing_password_source_is_a_problem_naming_the_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SB_SURELY_UNSET", raising=False)
    problems = problems_of(
        tmp_path,
        '[watch]\nfolder = "x"\n'
        '[platforms.a]\nprotocol = "ftps"\nhost = "h"\nusername = "u"\npassword = { env = "SB_SURELY_UNSET" }\n'
        '[platforms.b]\nprotocol = "ftps"\nhost = "h"\nusername = "u"\npassword = { file = "missing.pw" }\n',
    )
    assert "platforms.a.password: environment variable SB_SURELY_UNSET is not set" in problems[0]
    assert any(p.startswith("platforms.b.password: cannot read password file") for p in problems)


def test_a_literal_password_in_a_readable_file_is_a_warning(tmp_path):
    path = write(
        tmp_path,
        '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "ftps"\nhost = "h"\nusername = "u"\npassword = "hunter22"\n',
    )
    path.chmod(0o644)
    config = load_config(path)
    assert config.warnings and "chmod 600" in config.warnings[0]
    assert "hunter22" not in " ".join(config.warnings)
    path.chmod(0o600)
    assert load_config(path).warnings == ()


def test_defaults_fit_each_protocol(tmp_path):
    config = validate_config(
        {
            "watch": {"folder": "x"},
            "platforms": {
                "s": {
                    "protocol": "sftp",
                    "host": "h",
                    "username": "u",
                    "password": "p",
                    "host_key": "SHA256:x",
                },
                "f": {"protocol": "ftps", "host": "h", "username": "u", "password": "p"},
                "d": {"protocol": "folder", "path": "out"},
            },
        },
        source=tmp_path / "c.toml",
    )
    assert isinstance(config, Config)
    assert config.platforms["s"].effective_port == 22 and config.platforms["s"].effective_atomic_rename
    assert config.platforms["f"].effective_port == 21 and not config.platforms["f"].effective_atomic_rename
    assert config.platforms["d"].effective_atomic_rename


def test_disabled_platforms_need_no_reachable_password(tmp_path):
    os.environ.pop("SB_NOT_SET_EITHER", None)
    config = load_config(
        write(
            tmp_path,
            '[watch]\nfolder = "x"\n[platforms.a]\nenabled = false\nprotocol = "ftps"\nhost = "h"\n'
            'username = "u"\npassword = { env = "SB_NOT_SET_EITHER" }\n',
        )
    )
    assert config.enabled_platforms() == {}


def test_a_preset_fills_a_platform_and_the_users_keys_win(tmp_path):
    config = load_config(
        write(
            tmp_path,
            '[watch]\nfolder = "x"\n[platforms.ss]\npreset = "shutterstock"\nusername = "me"\npassword = "pw"\n'
            "[platforms.ss.rules]\nkeywords = { max = 30 }\n",
        )
    )
    platform = config.platforms["ss"]
    assert platform.protocol == "ftps" and platform.host == "ftps.shutterstock.com"
    assert platform.rules.keywords.max == 30
    assert platform.rules.keywords.min == 7  # from the preset: a nested table is merged key by key


def test_a_preset_with_missing_required_keys_fails_check_once_with_where_to_find_them(tmp_path):
    problems = problems_of(
        tmp_path,
        '[watch]\nfolder = "x"\n[platforms.fp]\npreset = "freepik"\nusername = "me"\npassword = "pw"\n',
    )
    assert any(p.startswith("platforms.fp.host: the freepik preset needs this") for p in problems)
    assert any(p.startswith("platforms.fp.port: the freepik preset needs this") for p in problems)
    assert not any("protocol 'ftp' needs" in p for p in problems), problems


def test_an_unknown_preset_says_which_it_may_have_meant(tmp_path):
    problems = problems_of(tmp_path, '[watch]\nfolder = "x"\n[platforms.s]\npreset = "shuterstock"\n')
    assert problems == ['platforms.s.preset: unknown preset "shuterstock"; did you mean "shutterstock"?']


def test_password_from_a_systemd_credential(tmp_path, monkeypatch):
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "agency").write_text("from-credential\n")
    path = write(
        tmp_path,
        '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "ftps"\nhost = "h"\nusername = "u"\n'
        'password = { credential = "agency" }\n',
    )
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "CREDENTIALS_DIRECTORY is not set" in caught.value.problems[0]
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    secret = resolve_password(load_config(path).platforms["a"])
    assert secret is not None and secret.reveal() == "from-credential"


def test_host_key_takes_a_list_of_pins_and_names_the_one_that_is_not_a_fingerprint(tmp_path: Path):
    base = """
[watch]
folder = "x"

[platforms.agency]
protocol = "sftp"
host = "sftp.example.com"
username = "me"
password = { env = "AGENCY_PW" }
"""
    good = 'host_key = ["3072 SHA256:abc sftp.example.com (RSA)", "SHA256:def"]\n'
    config = load_config(write(tmp_path, base + good), resolve_secrets=False)
    assert config.platforms["agency"].host_key == ["3072 SHA256:abc sftp.example.com (RSA)", "SHA256:def"]
    problems = problems_of(tmp_path, base + 'host_key = ["SHA256:abc", "MD5:12:34"]\n')
    assert any(
        problem.startswith("platforms.agency.host_key") and "MD5:12:34" in problem for problem in problems
    )
