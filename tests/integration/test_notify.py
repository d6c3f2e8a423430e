"""Notifications reach a local webhook, ntfy topic and SMTP server; a dead one costs a warning, nothing more."""

from __future__ import annotations

import json
import time

import pytest
from loguru import logger

from stockbridge.config import NotifyConfig
from stockbridge.notify import Notifier
from tests.receivers import closed_port, hanging_receiver, http_receiver, smtp_receiver

SMTP_PASSWORD = "smtp-Pa55word-never-shown"
NTFY_TOKEN = "tk_ntfy-token-never-shown"


@pytest.fixture
def warnings():
    lines: list[str] = []
    handler = logger.add(lambda message: lines.append(str(message)), level="WARNING", format="{message}")
    yield lines
    logger.remove(handler)


def notifier(**channels: object) -> Notifier:
    return Notifier(NotifyConfig.model_validate({"timeout_seconds": 1.0, **channels}))


def test_a_webhook_gets_a_json_post_with_event_title_and_text():
    with http_receiver() as receiver:
        sender = notifier(webhook={"url": receiver.url, "headers": {"X-Hook-Key": "abc"}})
        sender.send("batch", "stockbridge: archive batch done", "archive: 3 uploaded, 1 failed.")
        sender.close()
        (request,) = receiver.wait_for(1)
    assert request.path == "/hook"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.headers["X-Hook-Key"] == "abc"
    assert json.loads(request.body) == {
        "event": "batch",
        "title": "stockbridge: archive batch done",
        "text": "archive: 3 uploaded, 1 failed.",
    }


def test_an_ntfy_topic_gets_the_text_with_title_tags_and_the_token():
    with http_receiver("/my-topic") as receiver:
        sender = notifier(ntfy={"url": receiver.url, "token": NTFY_TOKEN})
        sender.send("paused", "stockbridge: adobe paused", "adobe paused: the login was refused.")
        sender.close()
        (request,) = receiver.wait_for(1)
    assert request.path == "/my-topic"
    assert request.body.decode() == "adobe paused: the login was refused."
    assert request.headers["Title"] == "stockbridge: adobe paused"
    assert request.headers["Tags"] == "pause_button"
    assert request.headers["Priority"] == "high"
    assert request.headers["Authorization"] == f"Bearer {NTFY_TOKEN}"


def test_events_not_asked_for_are_not_sent():
    with http_receiver() as receiver:
        sender = Notifier(NotifyConfig.model_validate({"on": ["failed"], "webhook": {"url": receiver.url}}))
        sender.send("batch", "stockbridge: archive batch done", "archive: 1 uploaded.")
        sender.send("failed", "stockbridge: 1 file(s) failed for archive", "IMG_1.jpg: refused")
        sender.close()
        time.sleep(0.2)
    assert [json.loads(request.body)["event"] for request in receiver.requests] == ["failed"]


def test_an_email_arrives_with_subject_and_body_and_no_password(monkeypatch):
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    with smtp_receiver() as receiver:
        sender = notifier(
            email={
                "host": receiver.host,
                "port": receiver.port,
                "security": "plain",
                "username": "robot",
                "password": {"env": "TEST_SMTP_PASSWORD"},
                "from": "stockbridge@example.org",
                "to": ["me@example.org", "you@example.org"],
            }
        )
        # A message that (by some slip) carried the password is scrubbed before it leaves.
        sender.send(
            "failed", "stockbridge: 1 file(s) failed for archive", f"IMG_1.jpg: failed {SMTP_PASSWORD}"
        )
        sender.close()
        (mail,) = receiver.wait_for(1)
    assert mail.auth == [f"\0robot\0{SMTP_PASSWORD}"]  # it logged in ...
    assert SMTP_PASSWORD.encode() not in mail.data  # ... and the message never shows the password
    assert mail.sender == "stockbridge@example.org"
    assert mail.recipients == ["me@example.org", "you@example.org"]
    message = mail.message
    assert message["Subject"] == "stockbridge: 1 file(s) failed for archive"
    assert message["To"] == "me@example.org, you@example.org"
    assert message.get_content().strip() == "IMG_1.jpg: failed ***"


def test_a_receiver_that_is_down_or_hangs_costs_a_warning_and_bounded_time(warnings):
    with hanging_receiver() as hanging, http_receiver() as working:
        sender = notifier(
            webhook={"url": hanging},
            ntfy={"url": f"http://127.0.0.1:{closed_port()}/topic"},
            email={
                "host": "127.0.0.1",
                "port": closed_port(),
                "security": "plain",
                "from": "a@b.c",
                "to": ["d@e.f"],
            },
        )
        started = time.monotonic()
        for index in range(3):
            sender.send("batch", "stockbridge: archive batch done", f"archive: {index} uploaded.")
        assert time.monotonic() - started < 0.1, "send() waited for the network"
        stuck = sender._thread
        sender.close(wait=2.0)
        assert time.monotonic() - started < 3.0
        # The notifier gave up on the rest; a new one still works (nothing global is stuck).
        other = notifier(webhook={"url": working.url})
        other.send("batch", "t", "x")
        other.close()
        assert len(working.wait_for(1)) == 1
    assert any(line.startswith("notify: webhook failed") for line in warnings)
    assert any(line.startswith("notify: ntfy failed") for line in warnings)
    assert any(line.startswith("notify: email failed") for line in warnings)
    assert any("still unsent" in line for line in warnings)
    assert stuck is not None
    stuck.join(10)  # each message gives up after its timeout: the thread ends by itself
    assert not stuck.is_alive()
