"""Notifications: a message when a batch finishes, a platform pauses, or files fail for good.

``Notifier.send(event, title, text)`` only puts the message on a queue; one background thread
delivers it to every configured channel (a JSON webhook, an ntfy-style topic, SMTP e-mail), each
with a short timeout. A channel that fails is logged at WARNING and skipped: notifying is never
fatal and uploads never wait for it. ``close()`` gives queued messages a bounded time to go.

Messages carry no secret: they are built from platform names, file names and counts only (never
hosts, logins, URLs or a server's reply), and pass through :func:`stockbridge.config.secrets.redact`.
"""

from __future__ import annotations

import contextlib
import json
import queue
import smtplib
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from functools import partial

from loguru import logger

from stockbridge.config.models import EmailConfig, NotifyConfig, NtfyConfig, WebhookConfig
from stockbridge.config.secrets import redact, resolve_secret
from stockbridge.errors import ConfigError

BATCH = "batch"
PAUSED = "paused"
FAILED = "failed"
#: Messages waiting beyond this are dropped (with a warning): a dead channel must not grow memory.
QUEUE_SIZE = 100
#: ntfy tags (emoji short codes) per event.
_TAGS = {BATCH: "package", PAUSED: "pause_button", FAILED: "x"}
_USER_AGENT = "stockbridge"


@dataclass(frozen=True, slots=True)
class Message:
    event: str
    title: str
    text: str


class Notifier:
    """Delivers messages in the background. Without a ``[notify]`` table it does nothing."""

    def __init__(self, config: NotifyConfig | None) -> None:
        self.config = config
        self._queue: queue.Queue[Message | None] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        if config is not None:
            # Known secrets are scrubbed from every message: load the channels' own now, so even a
            # message queued before the first delivery cannot carry them.
            sources = (
                config.ntfy.token if config.ntfy else None,
                config.email.password if config.email else None,
            )
            for source in sources:
                with contextlib.suppress(ConfigError):
                    resolve_secret(source)

    @property
    def channels(self) -> list[str]:
        config = self.config
        if config is None:
            return []
        return [name for name in ("webhook", "ntfy", "email") if getattr(config, name) is not None]

    def send(self, event: str, title: str, text: str) -> None:
        """Queue a message for every channel, if ``event`` is one the user asked for. Never blocks."""
        if self.config is None or event not in self.config.on or not self.channels:
            return
        message = Message(event, redact(title), redact(text))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._deliver_loop, name="notify", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            logger.warning("notify: {} messages are waiting; dropped: {}", QUEUE_SIZE, message.title)

    def close(self, wait: float | None = None) -> None:
        """Let queued messages go, for at most ``wait`` seconds (default: one timeout per channel)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None or self.config is None:
            return
        if wait is None:
            wait = self.config.timeout_seconds * max(1, len(self.channels)) + 1.0
        deadline = time.monotonic() + wait
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=wait)
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            logger.warning("notify: messages still unsent after {:.0f} s; giving up on them", wait)

    def _deliver_loop(self) -> None:
        while True:
            message = self._queue.get()
            if message is None:
                return
            self._deliver(message)

    def _deliver(self, message: Message) -> None:
        config = self.config
        assert config is not None
        timeout = config.timeout_seconds
        message = Message(message.event, redact(message.title), redact(message.text))
        senders: list[tuple[str, Callable[[], None]]] = []
        if config.webhook is not None:
            senders.append(("webhook", partial(post_webhook, config.webhook, message, timeout)))
        if config.ntfy is not None:
            senders.append(("ntfy", partial(post_ntfy, config.ntfy, message, timeout)))
        if config.email is not None:
            senders.append(("email", partial(send_email, config.email, message, timeout)))
        for name, deliver in senders:
            try:
                deliver()
            except Exception as exc:  # any failure of a channel is one warning, never more
                logger.warning("notify: {} failed ({}): {}", name, type(exc).__name__, redact(str(exc)))
            else:
                logger.debug("notify: {} sent {!r}", name, message.title)


# ---------------------------------------------------------------------- channels


def post_webhook(config: WebhookConfig, message: Message, timeout: float) -> None:
    body = json.dumps(
        {"event": message.event, "title": message.title, "text": message.text}, ensure_ascii=False
    ).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": _USER_AGENT}
    headers.update(config.headers)
    _post(config.url, body, headers, timeout)


def post_ntfy(config: NtfyConfig, message: Message, timeout: float) -> None:
    headers = {
        "Title": _header(message.title),
        "Tags": _TAGS.get(message.event, "information_source"),
        "Priority": "default" if message.event == BATCH else "high",
        "Content-Type": "text/plain; charset=utf-8",
        "User-Agent": _USER_AGENT,
    }
    token = resolve_secret(config.token)
    if token is not None:
        headers["Authorization"] = f"Bearer {token.reveal()}"
    _post(config.url, message.text.encode("utf-8"), headers, timeout)


def send_email(config: EmailConfig, message: Message, timeout: float) -> None:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.to)
    mail.set_content(message.text)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if config.security == "ssl":
        smtp = smtplib.SMTP_SSL(config.host, config.effective_port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(config.host, config.effective_port, timeout=timeout)
    with smtp:
        if config.security == "starttls":
            smtp.starttls(context=context)
        if config.username:
            password = resolve_secret(config.password)
            smtp.login(config.username, password.reveal() if password is not None else "")
        smtp.send_message(mail)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # the config allows http(s) only
        response.read(1024)


def _header(text: str) -> str:
    """HTTP headers are Latin-1: anything else goes RFC 2047-encoded (ntfy decodes it)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return Header(text, "utf-8").encode()
    return text


# ---------------------------------------------------------------------- messages


def batch_message(platform: str, uploaded: int, failed: int) -> tuple[str, str]:
    """A finished batch: its counts."""
    parts = [f"{uploaded} uploaded"] + ([f"{failed} failed"] if failed else [])
    title = f"stockbridge: {platform} batch done"
    return title, f"{platform}: {', '.join(parts)}."


_PAUSES = {
    "auth": "the login was refused. Fix the password, then run `stockbridge retry --platform {platform}`.",
    "trust": "the server's identity could not be verified (host key or certificate). Check it, then "
    "run `stockbridge retry --platform {platform}`.",
    "quota": "the server is full or the upload quota is used up. Trying again at {until}.",
    "unreachable": "the server cannot be reached. Trying again with growing delays.",
    "setup": "a problem on the server side, such as a remote folder that cannot be created (see `stockbridge status`). Fix it, then run "
    "`stockbridge retry --platform {platform}`.",
    "config": "a configuration problem (see the log). Fix it, then run "
    "`stockbridge retry --platform {platform}`.",
}


def paused_message(platform: str, kind: str, until: float | None) -> tuple[str, str]:
    """A platform stopped sending. Says why by kind, never with the server's words (they may name
    the host or the login)."""
    template = _PAUSES.get(kind, "see `stockbridge status`.")
    when = time.strftime("%H:%M", time.localtime(until)) if until is not None else "a later run"
    return f"stockbridge: {platform} paused", f"{platform} paused: " + template.format(
        platform=platform, until=when
    )


def failed_message(platform: str, failures: Sequence[tuple[str, str]], limit: int = 20) -> tuple[str, str]:
    """Files that failed for good: ``(file name, reason)`` each. Only the reason's first clause is
    shown (the server's words after it may carry paths); `status` has the rest."""
    lines = [f"{name}: {_cause(reason)}" for name, reason in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"... and {len(failures) - limit} more")
    lines.append(f"Details: stockbridge status --platform {platform} --state failed")
    return f"stockbridge: {len(failures)} file(s) failed for {platform}", "\n".join(lines)


def _cause(reason: str) -> str:
    cause = reason.split(":", 1)[0].split(";", 1)[0].strip()
    return cause if cause and "/" not in cause and "\\" not in cause else "failed"
