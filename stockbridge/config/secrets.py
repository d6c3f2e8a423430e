"""A password that cannot leak by accident.

``Secret`` wraps a string so that ``str()``, ``repr()``, f-strings, logging and tracebacks show
``'***'``; only :meth:`Secret.reveal` returns the value, and only transports call it, at the moment
they send it to the server.
"""

from __future__ import annotations

import threading

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
