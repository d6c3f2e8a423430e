"""A password that cannot leak by accident.

``Secret`` wraps a string so that ``str()``, ``repr()``, f-strings, logging and tracebacks show
``'***'``; only :meth:`Secret.reveal` returns the value, and only transports call it, at the moment
they send it to the server.
"""

from __future__ import annotations


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

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

    def __reduce__(self) -> object:  # never pickled into a crash dump by accident
        raise TypeError("a Secret cannot be pickled")
