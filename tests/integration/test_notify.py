"""Notifications reach a local webhook, ntfy topic and SMTP server; a dead one costs a warning, nothing more."""

from __future__ import annotations

import json
import threading

import pytest
from loguru import logger

from stockbridge.config.models import NotifyConfig
from stockbridge.service.alerts import Notifier
from tests.receivers import closed_port, hanging_receiver, holding_receiver, http_receiver, smtp_receiver
from tests.waiting import GENEROUS

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
        sender.close()  # returns once the queue is delivered: the receiver has every request by then
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


def test_a_receiver_that_is_down_or_hangs_costs_a_warning_and_the_next_channel_still_gets_it(warnings):
    # Channels go in order (webhook, ntfy, e-mail): the webhook hangs until its timeout, the e-mail
    # server is down, and the ntfy topic between them still gets the message.
    with hanging_receiver() as hanging, http_receiver("/topic") as working:
        sender = notifier(
            webhook={"url": hanging},
            ntfy={"url": working.url},
            email={
                "host": "127.0.0.1",
                "port": closed_port(),
                "security": "plain",
                "from": "a@b.c",
                "to": ["d@e.f"],
            },
        )
        sender.send("batch", "stockbridge: archive batch done", "archive: 1 uploaded.")
        stuck = sender._thread
        sender.close(wait=30)  # far beyond the 1 s timeout of each channel
        assert [request.body for request in working.wait_for(1)] == [b"archive: 1 uploaded."]
    assert stuck is not None and not stuck.is_alive(), "gave up on the hanging one after its timeout"
    assert any(line.startswith("notify: webhook failed") for line in warnings)
    assert any(line.startswith("notify: email failed") for line in warnings)
    assert not any("still unsent" in line for line in warnings)


def test_send_never_waits_for_the_network_and_close_gives_up_on_a_receiver_that_holds_on(warnings):
    with holding_receiver() as holding, http_receiver() as working:
        # The timeout is far longer than this test: only the test's release() ends the delivery.
        sender = Notifier(
            NotifyConfig.model_validate({"timeout_seconds": 600, "webhook": {"url": holding.url}})
        )
        sends = threading.Thread(
            target=lambda: [sender.send("batch", "t", f"archive: {index} uploaded.") for index in range(3)]
        )
        sends.start()
        sends.join(GENEROUS)
        assert not sends.is_alive(), "send() waited for the network"
        assert holding.connected.wait(GENEROUS), "the message was not even tried"
        stuck = sender._thread
        assert stuck is not None
        closing = threading.Thread(target=sender.close, kwargs={"wait": 0.5})
        closing.start()
        closing.join(GENEROUS)
        assert not closing.is_alive(), "close() waited for the network beyond its wait"
        assert stuck.is_alive(), "the receiver still holds the first message"
        assert any("still unsent" in line for line in warnings)
        # The notifier gave up on the rest; a new one still works (nothing global is stuck).
        other = notifier(webhook={"url": working.url})
        other.send("batch", "t", "x")
        other.close()
        assert len(working.wait_for(1)) == 1
        holding.release()  # the held message fails, the two behind it are refused at once
        stuck.join(GENEROUS)
        assert not stuck.is_alive()
    assert [line for line in warnings if line.startswith("notify: webhook failed")] != []
