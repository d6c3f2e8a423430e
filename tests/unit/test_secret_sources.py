"""Secrets: a readable config with a literal password is refused by run/once; the OS keyring source."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest

from stockbridge.config.loading import insecure_config_problem, load_config
from stockbridge.config.secrets import resolve_password
from stockbridge.errors import ConfigError

LITERAL = '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "ftps"\nhost = "h"\nusername = "u"\npassword = "hunter22"\n'
KEYRING = (
    '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "ftps"\nhost = "h"\nusername = "u"\n'
    'password = { keyring = "stockbridge/agency-a" }\n'
)


def write(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


class FakeKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self, stored: dict[tuple[str, str], str] | None = None, broken: bool = False) -> None:
        super().__init__()
        self.stored = dict(stored or {})
        self.broken = broken

    def get_password(self, service: str, username: str) -> str | None:
        if self.broken:
            raise keyring.errors.NoKeyringError("No recommended backend was available.")
        return self.stored.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.stored[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.stored.pop((service, username), None)


@pytest.fixture
def fake_keyring():
    previous = keyring.get_keyring()
    backend = FakeKeyring({("stockbridge", "agency-a"): "from-the-keyring"})
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_a_literal_password_that_others_can_read_is_a_problem_naming_the_file_and_chmod_600(tmp_path):
    path = write(tmp_path, LITERAL, 0o644)
    problem = insecure_config_problem(load_config(path))
    assert problem is not None
    assert str(path) in problem.message and "other users can read it" in problem.message
    assert f"chmod 600 {path}" in (problem.hint or "")
    assert "allow_insecure_config = true" in (problem.hint or "")
    assert "hunter22" not in problem.message + (problem.hint or "")


def test_a_group_readable_file_is_refused_too(tmp_path):
    assert insecure_config_problem(load_config(write(tmp_path, LITERAL, 0o640))) is not None


def test_a_private_file_or_allow_insecure_config_or_no_literal_password_is_fine(tmp_path):
    assert insecure_config_problem(load_config(write(tmp_path, LITERAL, 0o600))) is None
    allowed = write(tmp_path, "allow_insecure_config = true\n" + LITERAL, 0o644)
    assert insecure_config_problem(load_config(allowed)) is None
    no_literal = LITERAL.replace('password = "hunter22"', 'password = { env = "AGENCY_PASSWORD" }')
    assert (
        insecure_config_problem(load_config(write(tmp_path, no_literal, 0o644), resolve_secrets=False))
        is None
    )


def test_a_literal_notify_token_in_a_readable_file_counts_as_a_password(tmp_path):
    text = '[watch]\nfolder = "x"\n[notify.ntfy]\nurl = "https://ntfy.sh/t"\ntoken = "tk-123456"\n'
    problem = insecure_config_problem(load_config(write(tmp_path, text, 0o644)))
    assert problem is not None and "notify.ntfy" in problem.message


def test_a_password_comes_from_the_os_keyring(tmp_path, fake_keyring):
    secret = resolve_password(load_config(write(tmp_path, KEYRING, 0o600)).platforms["a"])
    assert secret is not None and secret.reveal() == "from-the-keyring"
    assert str(secret) == "***"


def test_a_keyring_entry_that_is_missing_names_service_user_and_how_to_store_it(tmp_path, fake_keyring):
    fake_keyring.stored.clear()
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, KEYRING, 0o600))
    assert caught.value.problems == [
        "platforms.a.password: keyring stockbridge/agency-a: no password stored for service"
        " 'stockbridge', user 'agency-a'"
    ]


def test_a_keyring_without_a_backend_is_a_config_problem_not_a_crash(tmp_path, fake_keyring):
    fake_keyring.broken = True
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, KEYRING, 0o600))
    assert "No recommended backend" in caught.value.problems[0]


def test_without_the_keyring_package_the_error_says_pip_install_keyring(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_keyring(name: str, *args, **kwargs):
        if name == "keyring" or name.startswith("keyring."):
            raise ImportError("No module named 'keyring'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_keyring)
    for module in [name for name in sys.modules if name == "keyring" or name.startswith("keyring.")]:
        monkeypatch.delitem(sys.modules, module)
    config = load_config(write(tmp_path, KEYRING, 0o600), resolve_secrets=False)
    with pytest.raises(ConfigError) as caught:
        resolve_password(config.platforms["a"])
    assert "the keyring package is not installed" in caught.value.message
    assert "pip install keyring" in (caught.value.hint or "")


def test_a_keyring_source_must_be_service_slash_user(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, KEYRING.replace("stockbridge/agency-a", "no-slash"), 0o600))
    assert any("keyring" in problem for problem in caught.value.problems)
