"""The one exception tree of stockbridge.

    StockbridgeError(message, hint)
    ├── ConfigError            bad or missing configuration (exit code 2)
    ├── MetadataError          ExifTool could not read or write a file
    ├── InputError             a file we cannot take (not an image, truncated, ...)
    └── TransportError         anything that went wrong talking to a platform
        │                      (.retryable: try again later with backoff)
        ├── AuthError          login refused: pause the platform, never hammer (accounts lock)
        ├── TrustError         host key or certificate not trusted: nothing was sent
        ├── QuotaError         server full / quota exceeded (452, 552): pause the platform
        ├── RemoteSetupError   the remote folder cannot be made or written to: pause the platform
        └── RemoteRejectedError the server refused this file for good (550, 553, too large)

Only ``cli`` turns these into exit codes and text. Every message is one line that says what
happened and, in ``hint``, what to do about it. No message may contain a secret.
"""

from __future__ import annotations


class StockbridgeError(Exception):
    """Base of every error stockbridge raises on purpose."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ConfigError(StockbridgeError):
    """The configuration is invalid. ``problems`` lists every problem, each with its key path."""

    def __init__(self, message: str, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint)
        self.problems = list(problems or [])


class MetadataError(StockbridgeError):
    """ExifTool failed on a file (timeout, unreadable, refused value)."""


class InputError(StockbridgeError):
    """A source file that cannot be taken as it is (wrong type, unreadable, truncated)."""


class TransportError(StockbridgeError):
    """A transfer problem. ``retryable`` says whether trying again later may succeed."""

    retryable: bool = True

    def __init__(self, message: str, hint: str | None = None, retryable: bool | None = None):
        super().__init__(message, hint)
        if retryable is not None:
            self.retryable = retryable


class AuthError(TransportError):
    """The server refused our credentials. Pause the platform after one attempt."""

    retryable = False


class TrustError(TransportError):
    """The server's identity could not be verified (SFTP host key, FTPS certificate)."""

    retryable = False


class QuotaError(TransportError):
    """The server is full or our quota is used up (FTP 452/552)."""

    retryable = False


class RemoteSetupError(TransportError):
    """The platform's remote folder cannot be created or written to: a setup problem on the
    server side that no retry fixes. Pause the platform with the server's words."""

    retryable = False


class RemoteRejectedError(TransportError):
    """The server refused this one file for good (FTP 550/553, SFTP permission denied)."""

    retryable = False
