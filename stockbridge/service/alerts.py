"""Notifications: a message when a batch finishes, a platform pauses, or files fail for good.

Delivery is Apprise's (https://github.com/caronc/apprise, as borgmatic uses it): one URL per target
in ``[notify] urls`` (Telegram, Discord, Slack, Pushover, ntfy, e-mail, a JSON webhook, ...). The
``webhook``, ``ntfy`` and ``email`` tables of 0.1.0 still work: each becomes the Apprise URL that
sends the same thing (:func:`legacy_targets`; the webhook keeps its ``{event, title, text}`` body).

``Notifier.send(event, title, text)`` only puts the message on a queue; one background thread
delivers it to every target in turn, each with the ``timeout_seconds`` for connecting and for
reading. A target that fails is logged at WARNING, named by its key and scheme only (its URL may
hold a token), and skipped: notifying is never fatal and uploads never wait for it. ``close()``
gives queued messages a bounded time to go.

Messages carry no secret: they are built from platform names, file names and counts only (never
hosts, logins, URLs or a server's reply), and pass through :func:`stockbridge.config.secrets.redact`.
Every URL, and its user, password and long path parts, are known secrets: no log line shows them.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from loguru import logger

from stockbridge.config.models import EmailConfig, NotifyConfig, NtfyConfig, PasswordSource, WebhookConfig
from stockbridge.config.secrets import Secret, redact, resolve_secret
from stockbridge.errors import ConfigError

BATCH = "batch"
PAUSED = "paused"
FAILED = "failed"
#: Messages waiting beyond this are dropped (with a warning): a dead target must not grow memory.
QUEUE_SIZE = 100
#: ntfy tags (emoji short codes) per event, for the 0.1.0 ``ntfy`` table.
_TAGS = {BATCH: "package", PAUSED: "pause_button", FAILED: "x"}
#: URL parts at least this long are taken for tokens and scrubbed from logs (hosts are shorter, mostly).
_TOKEN_CHARS = 16


@dataclass(frozen=True, slots=True)
class Message:
    event: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Target:
    """Where a message goes: a name for the log (never the URL), and the Apprise URL for a message."""

    name: str
    url: Callable[[Message], str]


class NotifyError(Exception):
    """A target did not take the message (Apprise's own log line says why)."""


class Notifier:
    """Delivers messages in the background. Without a ``[notify]`` table it does nothing."""

    def __init__(self, config: NotifyConfig | None) -> None:
        self.config = config
        self._queue: queue.Queue[Message | None] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        if config is not None:
            # Known secrets are scrubbed from every message and log line: load the targets' own
            # now, so even a message queued before the first delivery cannot carry them.
            sources = [
                config.ntfy.token if config.ntfy else None,
                config.email.password if config.email else None,
            ]
            for source in sources:
                with contextlib.suppress(ConfigError):
                    resolve_secret(source)
            for url_source in config.urls:
                with contextlib.suppress(ConfigError):
                    _url_secret(url_source)

    @property
    def targets(self) -> list[Target]:
        config = self.config
        if config is None:
            return []
        own = [
            Target(f"urls[{index}] ({_scheme(source)})", _resolved(source))
            for index, source in enumerate(config.urls)
        ]
        return own + legacy_targets(config)

    def send(self, event: str, title: str, text: str) -> None:
        """Queue a message for every target, if ``event`` is one the user asked for. Never blocks."""
        if self.config is None or event not in self.config.on or not self.targets:
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
        """Let queued messages go, for at most ``wait`` seconds (default: one timeout per target)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None or self.config is None:
            return
        if wait is None:
            # Connecting and reading each get the timeout.
            wait = 2 * self.config.timeout_seconds * max(1, len(self.targets)) + 1.0
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
        message = Message(message.event, redact(message.title), redact(message.text))
        for target in self.targets:
            try:
                notify(target.url(message), message, config.timeout_seconds)
            except Exception as exc:  # any failure of a target is one warning, never more
                logger.warning(
                    "notify: {} failed ({}): {}", target.name, type(exc).__name__, redact(str(exc))
                )
            else:
                logger.debug("notify: {} sent {!r}", target.name, message.title)


def notify(url: str, message: Message, timeout: float) -> None:
    """Send ``message`` to one Apprise URL, ``timeout`` seconds to connect and to read."""
    import apprise  # the first message pays for the import, not every command

    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        raise NotifyError("Apprise cannot send to this URL (unknown scheme, or a part missing)")
    plugin.socket_connect_timeout = timeout
    plugin.socket_read_timeout = timeout
    kind = {BATCH: apprise.NotifyType.INFO, PAUSED: apprise.NotifyType.WARNING}.get(
        message.event, apprise.NotifyType.FAILURE
    )
    if not plugin.notify(body=message.text, title=message.title, notify_type=kind):
        raise NotifyError("not delivered")


def _url_secret(source: str | PasswordSource) -> Secret:
    """The URL, every part of it that may be a credential now a known secret (scrubbed from logs)."""
    secret = resolve_secret(source)
    assert secret is not None
    url = secret.reveal()
    parts = urlsplit(url)
    with contextlib.suppress(ValueError):
        for part in (parts.username, parts.password):
            if part:
                Secret(part)
    for segment in (parts.netloc + parts.path).replace("@", "/").split("/"):
        for part in {segment, *segment.split(":")}:
            if len(part) >= _TOKEN_CHARS:
                Secret(part)  # tgram://BOT_ID:TOKEN/..., discord://WEBHOOK_ID/WEBHOOK_TOKEN, ...
    return secret


def _resolved(source: str | PasswordSource) -> Callable[[Message], str]:
    """The URL, read from its source at each message (a file or keyring may change)."""
    return lambda _message: _url_secret(source).reveal()


def _scheme(source: str | PasswordSource) -> str:
    if isinstance(source, str):
        return source.split("://", 1)[0]
    return next(
        f"{kind} source" for kind in ("env", "file", "credential", "keyring") if getattr(source, kind)
    )


# ---------------------------------------------------------------------- the 0.1.0 tables


def legacy_targets(config: NotifyConfig) -> list[Target]:
    """The 0.1.0 ``webhook``, ``ntfy`` and ``email`` tables as Apprise targets."""
    targets = []
    if config.webhook is not None:
        targets.append(Target("webhook", partial(webhook_url, config.webhook)))
    if config.ntfy is not None:
        targets.append(Target("ntfy", partial(ntfy_url, config.ntfy)))
    if config.email is not None:
        targets.append(Target("email", partial(email_url, config.email)))
    return targets


def webhook_url(config: WebhookConfig, message: Message) -> str:
    """A JSON POST of ``{event, title, text}``, as 0.1.0 sent it: Apprise's JSON payload with
    ``message`` renamed ``text``, its ``version``, ``attachments`` and ``type`` left out."""
    parts = urlsplit(config.url)
    query = [
        (f"-{key}", value) for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]  # "-": passed on as they were
    query += [(f"+{name}", value) for name, value in config.headers.items()]
    query += [
        (":version", ""),
        (":attachments", ""),
        (":type", ""),
        (":message", "text"),
        (":event", message.event),
    ]
    scheme = "jsons" if parts.scheme == "https" else "json"
    return f"{scheme}://{parts.netloc}{parts.path or '/'}?{urlencode(query)}"


def ntfy_url(config: NtfyConfig, message: Message) -> str:
    parts = urlsplit(config.url)
    query = [
        ("priority", "default" if message.event == BATCH else "high"),
        ("tags", _TAGS.get(message.event, "")),
    ]
    token = resolve_secret(config.token)
    if token is not None:
        query.append(("token", token.reveal()))
    scheme = "ntfys" if parts.scheme == "https" else "ntfy"
    return f"{scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def email_url(config: EmailConfig, _message: Message) -> str:
    login = ""
    if config.username:
        password = resolve_secret(config.password)
        secret = f":{quote(password.reveal(), safe='')}" if password is not None else ""
        login = f"{quote(config.username, safe='')}{secret}@"
    mode = {"starttls": "starttls", "ssl": "ssl", "plain": "insecure"}[config.security]
    query = [("smtp", config.host), ("from", config.sender), ("to", ",".join(config.to)), ("mode", mode)]
    scheme = "mailto" if config.security == "plain" else "mailtos"
    return f"{scheme}://{login}{config.host}:{config.effective_port}?{urlencode(query)}"


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
