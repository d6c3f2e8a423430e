"""Notification texts: counts and causes a person can act on, platform and file names only; `[notify]
urls` are Apprise URLs, checked at load, whose secrets never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockbridge.config.loading import load_config
from stockbridge.config.models import NotifyConfig, WebhookConfig
from stockbridge.config.secrets import redact
from stockbridge.errors import ConfigError
from stockbridge.service.alerts import (
    Message,
    Notifier,
    batch_message,
    failed_message,
    paused_message,
    webhook_url,
)


def test_a_batch_message_gives_the_counts():
    assert batch_message("archive", 18, 2) == (
        "stockbridge: archive batch done",
        "archive: 18 uploaded, 2 failed.",
    )
    assert batch_message("archive", 5, 0) == ("stockbridge: archive batch done", "archive: 5 uploaded.")


def test_a_pause_says_why_by_kind_without_the_servers_words():
    title, text = paused_message("adobe", "auth", None)
    assert title == "stockbridge: adobe paused"
    assert text == (
        "adobe paused: the login was refused. Fix the password, then run `stockbridge retry --platform adobe`."
    )
    _, quota = paused_message("123rf", "quota", 1_800_000_000.0)
    assert quota.startswith(
        "123rf paused: the server is full or the upload quota is used up. Trying again at "
    )
    _, unknown = paused_message("adobe", "something-new", None)
    assert unknown == "adobe paused: see `stockbridge status`."


def test_failed_files_are_listed_with_the_first_clause_of_their_reason_only():
    title, text = failed_message(
        "archive",
        [
            ("IMG_1.jpg", "the server refused this file: 553 /home/me/upload/IMG_1.jpg: denied"),
            ("IMG_2.jpg", "gave up after 4 attempts: timed out talking to ftp.example.com"),
            ("IMG_3.jpg", "the prepared copy /var/lib/stockbridge/x.jpg is missing; run `stockbridge retry`"),
        ],
    )
    assert title == "stockbridge: 3 file(s) failed for archive"
    assert text.splitlines() == [
        "IMG_1.jpg: the server refused this file",
        "IMG_2.jpg: gave up after 4 attempts",
        "IMG_3.jpg: failed",
        "Details: stockbridge status --platform archive --state failed",
    ]
    assert "example.com" not in text and "/home" not in text


def test_a_long_failure_list_is_cut_with_a_count():
    _, text = failed_message("archive", [(f"IMG_{index}.jpg", "refused") for index in range(25)], limit=20)
    assert "... and 5 more" in text
    assert text.count("IMG_") == 20


# ---------------------------------------------------------------- [notify] urls in the configuration

BOT_TOKEN = "123456789:AAbbCCddEEffGGhhIIjjKKllMM"
CONFIG = '[watch]\nfolder = "x"\n[platforms.a]\nprotocol = "folder"\npath = "sent"\n[notify]\n'


def load(tmp_path: Path, notify: str, mode: int = 0o600):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG + notify)
    path.chmod(mode)
    return load_config(path)


def problems(tmp_path: Path, notify: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, notify)
    return caught.value.problems


def test_apprise_urls_load_from_the_file_and_from_secret_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_NOTIFY_URL", f"tgram://{BOT_TOKEN}/12345")
    (tmp_path / "discord.url").write_text("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js\n")
    config = load(
        tmp_path,
        'urls = ["json://127.0.0.1:8080/hook", { env = "TEST_NOTIFY_URL" }, { file = "discord.url" }]\n',
    )
    assert config.notify is not None and len(config.notify.urls) == 3
    assert [target.name for target in Notifier(config.notify).targets] == [
        "urls[0] (json)",
        "urls[1] (env source)",
        "urls[2] (file source)",
    ]


def test_a_url_apprise_cannot_use_is_a_problem_that_never_shows_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_NOTIFY_URL", f"telegram-ish://{BOT_TOKEN}/12345")
    found = problems(
        tmp_path,
        f'urls = ["https://hooks.example.com/{BOT_TOKEN}", {{ env = "TEST_NOTIFY_URL" }}, "not a url {BOT_TOKEN}"]\n',
    )
    assert found == [
        'notify.urls: expected Apprise URLs such as "tgram://BOT_TOKEN/CHAT_ID" or'
        ' "mailtos://user:pass@example.com", a scheme then ://, without spaces'
        " (https://github.com/caronc/apprise/wiki)"
    ]
    found = problems(
        tmp_path,
        f'urls = ["foo://{BOT_TOKEN}/1", {{ env = "TEST_NOTIFY_URL" }}, {{ env = "UNSET_NOTIFY_URL" }}]\n',
    )
    assert found == [
        'notify.urls[0]: Apprise cannot send to this "foo://" URL: an unknown scheme or a part missing'
        " (see https://github.com/caronc/apprise/wiki for its shape)",
        'notify.urls[1]: Apprise cannot send to this "telegram-ish://" URL: an unknown scheme or a part missing'
        " (see https://github.com/caronc/apprise/wiki for its shape)",
        "notify.urls[2]: environment variable UNSET_NOTIFY_URL is not set; set it where stockbridge starts"
        " (Environment= or EnvironmentFile= in the service unit), or use { file = ... }",
    ]
    assert all(BOT_TOKEN not in problem for problem in found)


def test_a_url_written_in_a_file_others_can_read_is_a_warning_like_a_password(tmp_path):
    config = load(tmp_path, f'urls = ["tgram://{BOT_TOKEN}/12345"]\n', mode=0o644)
    (warning,) = config.warnings
    assert "holds a password for notify.urls" in warning and "chmod 600" in warning
    assert BOT_TOKEN not in warning


def test_the_0_1_0_tables_still_load_with_a_warning_naming_the_url_to_write(tmp_path):
    config = load(tmp_path, 'webhook = { url = "https://hooks.example.com/x" }\n')
    (warning,) = config.warnings
    assert (
        'notify.webhook: still works, but [notify] now sends through Apprise: write it as notify.urls = ["json://HOST/PATH"'
        in warning
    )
    assert [target.name for target in Notifier(config.notify).targets] == ["webhook"]


def test_the_token_and_password_in_a_url_are_scrubbed_from_messages():
    Notifier(NotifyConfig(urls=[f"tgram://{BOT_TOKEN}/12345", "mailtos://robot:Pa55-w0rd@smtp.example.com"]))
    assert redact(f"bot{BOT_TOKEN} failed; login Pa55-w0rd") == "bot*** failed; login ***"


def test_the_0_1_0_webhook_becomes_a_json_url_with_the_same_body_headers_and_query():
    url = webhook_url(
        WebhookConfig(url="https://hooks.example.com/in?key=abc", headers={"X-Hook-Key": "k1"}),
        Message("paused", "t", "x"),
    )
    assert url == (
        "jsons://hooks.example.com/in?-key=abc&%2BX-Hook-Key=k1&%3Aversion=&%3Aattachments=&%3Atype="
        "&%3Amessage=text&%3Aevent=paused"
    )
