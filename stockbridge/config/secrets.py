"""Secrets: a password that cannot leak by accident, and where it comes from.

``Secret`` wraps a string so that ``str()``, ``repr()``, f-strings, logging and tracebacks show
``'***'``; only :meth:`Secret.reveal` returns the value, and only transports call it, at the moment
they send it to the server.

:func:`resolve_secret` reads a password or token from where the configuration says it is: written
literally, an environment variable, a file, a systemd credential or the OS keyring. This module
imports no configuration model at run time, so transports and log sinks that need ``Secret`` do not
load the configuration.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from stockbridge.errors import ConfigError

if TYPE_CHECKING:
    from stockbridge.config.models import PasswordSource, PlatformConfig

#: Every secret value this process has loaded, so log sinks can scrub them from any message
#: (a server that echoes our password in an error reply, a library that logs a URL...).
_known: set[str] = set()
_known_lock = threading.Lock()
#: Shorter values would scrub ordinary words out of log lines; such passwords are weak anyway.
_MIN_REDACT_LENGTH = 4


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= _MIN_REDACT_LENGTH:
            with _known_lock:
                _known.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str | tuple[object, ...]:  # never pickled into a crash dump by accident
        raise TypeError("a Secret cannot be pickled")


def redact(text: str) -> str:
    """``text`` with every known secret value replaced by ``***``."""
    with _known_lock:
        values = sorted(_known, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, "***")
    return text


def resolve_password(platform: PlatformConfig) -> Secret | None:
    return resolve_secret(platform.password)


def resolve_secret(source: str | PasswordSource | None) -> Secret | None:
    """A password or token: written literally, or from the environment, a file or a credential."""
    if source is None:
        return None
    if isinstance(source, str):
        return Secret(source)
    if source.env is not None:
        value = os.environ.get(source.env)
        if value is None:
            raise ConfigError(
                f"environment variable {source.env} is not set; set it where stockbridge starts"
                " (Environment= or EnvironmentFile= in the service unit), or use { file = ... }"
            )
        return Secret(value)
    if source.keyring is not None:
        return _from_keyring(source.keyring)
    if source.credential is not None:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ConfigError(
                f"credential {source.credential}: $CREDENTIALS_DIRECTORY is not set "
                "(only a systemd service with LoadCredential= has it)"
            )
        return Secret(_first_line(Path(directory) / source.credential, f"credential {source.credential}"))
    assert source.file is not None
    return Secret(_first_line(source.file, f"password file {source.file}"))


#: A password file is one short line; read no more than this (a /dev/zero typo must not hang).
_MAX_SECRET_FILE_BYTES = 64 * 1024


def _first_line(path: Path, what: str) -> str:
    """The first line of a secret file; the value never goes into a message."""
    try:
        with path.open("rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise ConfigError(f"{what} is not a regular file; give the file holding the password")
            head = stream.read(_MAX_SECRET_FILE_BYTES)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} ({exc.strerror}); check the path and its permissions"
        ) from None
    try:
        lines = head.decode("utf-8").removeprefix("\ufeff").splitlines()
    except UnicodeDecodeError:
        raise ConfigError(
            f"{what} is not UTF-8 text; save it as UTF-8, the password on the first line"
        ) from None
    if not lines or not lines[0]:
        raise ConfigError(f"{what} is empty; put the password on its first line")
    if "\0" in lines[0]:
        raise ConfigError(f"{what} holds a NUL byte; is it the right file?")
    return lines[0]


def _from_keyring(where: str) -> Secret:
    """``SERVICE/USER`` from the OS keyring; the ``keyring`` package is optional, imported here."""
    service, user = where.split("/", 1)
    try:
        import keyring
        import keyring.errors
    except ImportError:
        raise ConfigError(
            f"keyring {where}: the keyring package is not installed",
            hint="pip install keyring (or use { env = ... }, { file = ... } or { credential = ... })",
        ) from None
    try:
        value = keyring.get_password(service, user)
    except keyring.errors.KeyringError as exc:  # NoKeyringError: no backend on a headless Linux
        raise ConfigError(f"keyring {where}: {exc}") from None
    if not value:
        raise ConfigError(
            f"keyring {where}: no password stored for service {service!r}, user {user!r}",
            hint=f"store it with: keyring set {service} {user}",
        )
    return Secret(value)
