"""Waiting for an event, never for a fixed time.

A test that needs something to have happened (a log line, a file, a ledger row, a request) polls for
that thing with :func:`wait_for` and a generous timeout: on a fast machine it returns at once, on a
cold and busy one it waits longer, and only a real failure reaches the timeout. A fixed
``time.sleep`` that hopes the thing has happened by then is exactly what this replaces.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Timeout for things that take milliseconds when all is well: never reached unless something is wrong.
GENEROUS = 10.0


def wait_for(condition: Callable[[], T], timeout: float = GENEROUS, what: str = "the condition") -> T:
    """Poll ``condition()`` until it returns something true and return that; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)
