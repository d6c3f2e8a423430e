"""Notifications go through Apprise to a local JSON webhook, ntfy topic and SMTP server, both from
`[notify] urls` and from the 0.1.0 tables (webhook, ntfy, email); a dead one costs a warning, nothing more."""

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


def test_apprise_urls_reach_a_json_webhook_an_ntfy_topic_and_an_smtp_server(monkeypatch, warnings):
    with http_receiver("/hook") as hook, http_receiver("/") as topic, smtp_receiver() as smtp:
        # The e-mail URL holds a password: from the environment, as a platform's password may be.
        monkeypatch.setenv(
            "TEST_NOTIFY_URL",
            f"mailto://robot:{SMTP_PASSWORD}@{smtp.host}:{smtp.port}?smtp={smtp.host}&mode=insecure"
            "&from=stockbridge@example.org&to=me@example.org",
        )
        sender = notifier(
            urls=[
                hook.url.replace("http://", "json://"),
                f"ntfy://{NTFY_TOKEN}@{topic.url.removeprefix('http://').rstrip('/')}/my-topic",
                {"env": "TEST_NOTIFY_URL"},
            ]
        )
        sender.send("failed", "stockbridge: 1 file(s) failed for archive", "IMG_1.jpg: refused")
        sender.close()
        (posted,) = hook.wait_for(1)
        (published,) = topic.wait_for(1)
        (mail,) = smtp.wait_for(1)
    assert json.loads(posted.body) == {
        "version": "1.0",
        "title": "stockbridge: 1 file(s) failed for archive",
        "message": "IMG_1.jpg: refused",
        "attachments": [],
        "type": "failure",
    }
    assert json.loads(published.body) == {
        "topic": "my-topic",
        "title": "stockbridge: 1 file(s) failed for archive",
        "message": "IMG_1.jpg: refused",
    }
    assert published.headers["Authorization"] == f"Bearer {NTFY_TOKEN}"
    assert mail.auth == [f"\0robot\0{SMTP_PASSWORD}"]
    assert (mail.sender, mail.recipients) == ("stockbridge@example.org", ["me@example.org"])
    assert mail.message["Subject"] == "stockbridge: 1 file(s) failed for archive"
    assert warnings == []


def test_the_0_1_0_ntfy_table_reaches_its_topic_with_title_tags_priority_and_the_token():
    with http_receiver("/") as receiver:
        sender = notifier(ntfy={"url": receiver.url + "my-topic", "token": NTFY_TOKEN})
        sender.send("paused", "stockbridge: adobe paused", "adobe paused: the login was refused.")
        sender.close()
        (request,) = receiver.wait_for(1)
    assert json.loads(request.body) == {
        "topic": "my-topic",
        "title": "stockbridge: adobe paused",
        "message": "adobe paused: the login was refused.",
    }
    assert request.headers["X-Tags"] == "pause_button"
    assert request.headers["X-Priority"] == "high"
    assert request.headers["Authorization"] == f"Bearer {NTFY_TOKEN}"


def test_events_not_asked_for_are_not_sent():
    with http_receiver() as receiver:
        sender = Notifier(NotifyConfig.model_validate({"on": ["failed"], "webhook": {"url": receiver.url}}))
        sender.send("batch", "stockbridge: archive batch done", "archive: 1 uploaded.")
        sender.send("failed", "stockbridge: 1 file(s) failed for archive", "IMG_1.jpg: refused")
        sender.close()  # returns once the queue is delivered: the receiver has every request by then
    assert [json.loads(request.body)["event"] for request in receiver.requests] == ["failed"]


def test_the_0_1_0_email_table_sends_each_recipient_the_subject_and_body_and_no_password(monkeypatch):
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
        mails = receiver.wait_for(2)
    # Apprise sends one mail per recipient (no one sees who else gets them).
    assert [(mail.sender, mail.recipients) for mail in mails] == [
        ("stockbridge@example.org", ["me@example.org"]),
        ("stockbridge@example.org", ["you@example.org"]),
    ]
    for mail in mails:
        assert mail.auth == [f"\0robot\0{SMTP_PASSWORD}"]  # it logged in ...
        assert SMTP_PASSWORD.encode() not in mail.data  # ... and the message never shows the password
        message = mail.message
        assert message["Subject"] == "stockbridge: 1 file(s) failed for archive"
        text = message.get_body(preferencelist=("plain",))
        assert text is not None and text.get_content().strip() == "IMG_1.jpg: failed ***"


def test_a_receiver_that_is_down_or_hangs_costs_a_warning_and_the_next_channel_still_gets_it(warnings):
    # Channels go in order (webhook, ntfy, e-mail): the webhook hangs until its timeout, the e-mail
    # server is down, and the ntfy topic between them still gets the message.
    with hanging_receiver() as hanging, http_receiver("/") as working:
        sender = notifier(
            webhook={"url": hanging},
            ntfy={"url": working.url + "topic"},
            email={
                "host": "127.0.0.1",
                "port": closed_port(),
                "security": "plain",
                "from": "stockbridge@example.org",
                "to": ["me@example.org"],
            },
        )
        sender.send("batch", "stockbridge: archive batch done", "archive: 1 uploaded.")
        stuck = sender._thread
        sender.close(wait=30)  # far beyond the 1 s timeout of each channel
        assert [json.loads(request.body)["message"] for request in working.wait_for(1)] == [
            "archive: 1 uploaded."
        ]
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
