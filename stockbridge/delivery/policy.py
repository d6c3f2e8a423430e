"""The error policy: what a failed connection or upload leads to, decided in one place.

The transports classify what went wrong (``stockbridge.errors``, one class per kind, with
``retryable``); this module decides what to do about it. The uploader asks :func:`decide` and does
what it says; it never decides itself.

=========================================  =============================================  ================
error                                      action                                         the job
=========================================  =============================================  ================
while connecting or logging in:
``AuthError`` (530, SSH auth refused)      PAUSE the platform until ``retry``: one try    pending
                                           only, agencies lock accounts
``TrustError`` (host key, certificate)     PAUSE until ``retry``; nothing was sent        pending
``QuotaError`` (452/552, disk full)        PAUSE for ``QUOTA_PAUSE_SECONDS``              pending
``RemoteSetupError`` (remote folder)       PAUSE until ``retry``, with the server's words pending
other, ``retryable=False`` (no TLS, ...)   PAUSE until ``retry`` (a setup problem)        pending
other, ``retryable=True`` (refused,        WAIT_UNREACHABLE: the platform waits with      pending, no
timeout, reset)                            growing delays; costs the files no attempt     attempt lost
while sending one file:
``RemoteRejectedError`` (550/553, "File    FAIL the job with the server's words; the      failed
too large")                                batch goes on
``AuthError`` / ``TrustError`` /           PAUSE as above; the batch stops                pending
``QuotaError`` / ``RemoteSetupError`` /
other, ``retryable=False`` (every file
would get it: "522 session reuse
required", no such remote folder)
other, ``retryable=True`` (421, 426, 451,  RETRY_NOW on a new connection, at most         uploading →
reset, short file, hash mismatch)          ``LOW_LEVEL_RETRIES`` times in this batch;     pending
                                           then RETRY_LATER with backoff; after
                                           ``max_attempts`` attempts, FAIL
``OSError`` (the local copy)               as a retryable error
=========================================  =============================================  ================
"""

from __future__ import annotations

import enum
import random
import re
import time
from dataclasses import dataclass

from stockbridge.errors import (
    AuthError,
    QuotaError,
    RemoteRejectedError,
    RemoteSetupError,
    StockbridgeError,
    TransportError,
    TrustError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Job-level retries of transient transfer errors: exponential backoff with full jitter."""

    base_seconds: float
    cap_seconds: float
    max_attempts: int
    #: The pause before a reconnect within a batch (RETRY_NOW): this, doubled for each reconnect.
    reconnect_seconds: float = 1.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0.5, 1.0) * min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1))

    def reconnect_delay(self, tries: int) -> float:
        """``tries``: reconnects for this file so far, this one included."""
        return random.uniform(0.5, 1.0) * self.reconnect_seconds * 2 ** max(0, tries - 1)


#: ``once`` should finish in minutes; the service can wait hours for a server to come back.
ONCE_RETRY = RetryPolicy(base_seconds=1.0, cap_seconds=8.0, max_attempts=4)
SERVICE_RETRY = RetryPolicy(base_seconds=30.0, cap_seconds=3600.0, max_attempts=8)

#: How long a full server / used-up quota pauses a platform before we look again.
QUOTA_PAUSE_SECONDS = 1800.0

#: Reconnects to send the same file again within a batch after a transient error
#: (decisions.md F-6), before the file waits its backoff (``RetryPolicy``) outside the batch.
LOW_LEVEL_RETRIES = 2


class Action(enum.Enum):
    RETRY_NOW = "retry now on a new connection"
    RETRY_LATER = "retry later, with backoff"
    FAIL_JOB = "fail the job"
    PAUSE_PLATFORM = "pause the platform"
    WAIT_UNREACHABLE = "wait for the server, with growing delays"


class PauseKind(str, enum.Enum):
    """Why a platform is paused (stored in the ledger; notifications word each kind)."""

    AUTH = "auth"
    TRUST = "trust"
    QUOTA = "quota"
    SETUP = "setup"
    CONFIG = "config"
    UNREACHABLE = "unreachable"
    MANUAL = "manual"  # `stockbridge pause` or the page: only a resume (or retry) lifts it

    def __str__(self) -> str:
        return self.value


#: Pauses lifted when the configuration is reloaded (the user may have fixed them).
FIXABLE_BY_USER = (PauseKind.AUTH, PauseKind.TRUST, PauseKind.CONFIG, PauseKind.SETUP)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    #: The reason recorded for the job or the pause: our words, then the server's.
    reason: str
    #: PAUSE_PLATFORM / WAIT_UNREACHABLE: the kind, and until when (None: until `retry`).
    pause: PauseKind | None = None
    until: float | None = None
    #: RETRY_LATER: when the job may go again.
    next_attempt_at: float | None = None


def message_of(error: BaseException) -> str:
    return error.message if isinstance(error, StockbridgeError) else str(error)


def describe_unexpected(exc: BaseException) -> str:
    """An unforeseen error in one line: its message, else its type's name."""
    message = exc.message if isinstance(exc, StockbridgeError) else str(exc).strip()
    return (message.splitlines() or [""])[0] or type(exc).__name__


def decide_connect(error: TransportError, *, failures: int, retry: RetryPolicy) -> Decision:
    """What a failed connect / login / remote-folder setup leads to. ``failures``: consecutive
    failed connects of this platform, this one included."""
    pause = _pause_for(error)
    if pause is not None:
        return pause
    delay = retry.delay(failures)
    return Decision(
        Action.WAIT_UNREACHABLE,
        f"cannot reach the server ({message_of(error)})",
        pause=PauseKind.UNREACHABLE,
        until=time.time() + delay,
    )


def decide_upload(error: BaseException, *, attempts: int, tries: int, retry: RetryPolicy) -> Decision:
    """What a failed upload of one file leads to. ``attempts``: the job's attempts so far (this
    one included); ``tries``: reconnects already spent on it in this batch."""
    if isinstance(error, RemoteRejectedError):
        return Decision(Action.FAIL_JOB, f"the server refused this file: {message_of(error)}")
    if isinstance(error, TransportError):
        pause = _pause_for(error)
        if pause is not None:
            return pause
    message = message_of(error)
    if attempts >= retry.max_attempts:
        return Decision(Action.FAIL_JOB, f"gave up after {attempts} attempts: {message}")
    if tries < LOW_LEVEL_RETRIES:
        return Decision(Action.RETRY_NOW, message)
    delay = retry.delay(attempts)
    return Decision(
        Action.RETRY_LATER,
        f"attempt {attempts} failed ({message}); retrying in {delay:.0f} s",
        next_attempt_at=time.time() + delay,
    )


def _pause_for(error: TransportError) -> Decision | None:
    """A pause for problems no retry of one file can solve; None for the others."""
    message = message_of(error)
    if isinstance(error, AuthError):
        return Decision(Action.PAUSE_PLATFORM, f"login refused: {message}", pause=PauseKind.AUTH)
    if isinstance(error, TrustError):
        return Decision(Action.PAUSE_PLATFORM, f"server identity not trusted: {error}", pause=PauseKind.TRUST)
    if isinstance(error, QuotaError):
        return Decision(
            Action.PAUSE_PLATFORM,
            f"server full or quota used up: {message}",
            pause=PauseKind.QUOTA,
            until=time.time() + QUOTA_PAUSE_SECONDS,
        )
    if isinstance(error, RemoteSetupError) or not error.retryable:
        # The remote folder cannot be made, the server lacks TLS, ...: waiting will not fix it.
        # Once, with the server's words, not four retries that look like an outage.
        return Decision(
            Action.PAUSE_PLATFORM, f"setup problem on the server: {message}", pause=PauseKind.SETUP
        )
    return None


#: Our words before a server's (or a library's) own in a reason: ``"login refused: 530 ..."``.
_OURS_THEN_THEIRS = (
    "the server refused this file",
    "login refused",
    "server identity not trusted",
    "server full or quota used up",
    "setup problem on the server",
    "configuration problem",
)
_GAVE_UP = re.compile(r"gave up after \d+ attempts(?=: )")
_ATTEMPT = re.compile(r"(attempt \d+ failed) \(.*\)(; retrying in \d+ s)$", re.DOTALL)
_UNREACHABLE = "cannot reach the server ("
#: What an FTP refusal's code means, in words a photographer can act on (RFC 959, RFC 3659).
_REPLY_CODE = re.compile(r"\b(55[0-3])\b")
_REFUSALS = {
    "550": "not allowed there",
    "551": "not allowed there",
    "552": "too large, or the account's space is used up",
    "553": "the server does not accept this file name",
}


def plain_reason(reason: str | None) -> str | None:
    """``reason`` in our own words only: the server's reply and anything a library said after them
    is left out (it may name the host, the login or a path on the server). ``status`` shows this;
    ``status --detail`` and the log keep the whole reason."""
    if reason is None:
        return None
    closing = ")" if reason.endswith(")") else ""
    for words in _OURS_THEN_THEIRS:
        at = reason.find(words + ": ")
        if at >= 0:
            code = _REPLY_CODE.search(reason, at)
            meaning = f" ({_REFUSALS[code.group(1)]})" if code and words == _OURS_THEN_THEIRS[0] else ""
            return reason[: at + len(words)] + meaning + (closing if "(" in reason[:at] else "")
    if (gave_up := _GAVE_UP.search(reason)) is not None:
        return reason[: gave_up.end()]
    if (attempt := _ATTEMPT.search(reason)) is not None:
        return reason[: attempt.start()] + attempt.group(1) + attempt.group(2)
    at = reason.find(_UNREACHABLE)
    if at >= 0:
        return reason[: at + len(_UNREACHABLE) - 2]
    return reason
