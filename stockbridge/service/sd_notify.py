"""Tell systemd how the service is doing: the ``sd_notify`` protocol, without a dependency.

The protocol is one datagram of ``KEY=value`` lines to the ``AF_UNIX`` socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace); see sd_notify(3). Outside
systemd (no ``$NOTIFY_SOCKET``; macOS; Windows) every call is a cheap no-op that returns False.
Nothing here raises: a service must never stop because its supervisor could not be told.

``WATCHDOG=1`` is sent every half of ``$WATCHDOG_USEC`` (sd_watchdog_enabled(3) recommends it), and
only while the caller's health check passes, so a stuck service is killed and restarted by systemd.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

from loguru import logger


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` to ``$NOTIFY_SOCKET``. True if it was sent; never raises."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    elif not address.startswith("/"):
        return False  # unset, or a kind we do not speak (vsock:)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8", "replace"))
    except (OSError, AttributeError, ValueError):  # AttributeError: no AF_UNIX on this platform
        return False
    return True


class SystemdNotifier:
    """The service's messages to systemd, read from the environment it was started with."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._stopping_sent = False

    @property
    def enabled(self) -> bool:
        return bool(self._environ.get("NOTIFY_SOCKET"))

    def send(self, message: str) -> bool:
        return notify(message, self._environ) if self.enabled else False

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def reloading(self) -> bool:
        """RELOADING=1 with the monotonic time (systemd 253+ Type=notify-reload wants both)."""
        return self.send(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> bool:
        """``STOPPING=1``, once (a second SIGTERM says nothing new)."""
        if self._stopping_sent:
            return False
        self._stopping_sent = True
        return self.send("STOPPING=1")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """Seconds within which systemd expects ``WATCHDOG=1``; None when it expects none of us."""
        usec = self._environ.get("WATCHDOG_USEC", "")
        pid = self._environ.get("WATCHDOG_PID", "")
        if pid and pid != str(os.getpid()):
            return None  # meant for another process (inherited environment)
        try:
            seconds = int(usec) / 1_000_000
        except ValueError:
            return None
        return seconds if seconds > 0 else None

    def start_watchdog(
        self, stop_event: threading.Event, is_healthy: Callable[[], bool]
    ) -> threading.Thread | None:
        """Ping every half interval while ``is_healthy()``; stop at ``stop_event``. None if not asked."""
        interval = self.watchdog_interval()
        if interval is None or not self.enabled:
            return None
        thread = threading.Thread(
            target=self._watchdog_loop,
            args=(interval / 2, stop_event, is_healthy),
            name="stockbridge-watchdog",
            daemon=True,
        )
        thread.start()
        return thread

    def _watchdog_loop(
        self, every: float, stop_event: threading.Event, is_healthy: Callable[[], bool]
    ) -> None:
        complained = False
        while not stop_event.is_set():
            try:
                healthy = is_healthy()
            except Exception:
                logger.opt(exception=True).error("the health check failed")
                healthy = False
            if healthy:
                self.watchdog()
                complained = False
            elif not complained:
                # Said once, so the journal shows why systemd is about to restart us.
                logger.error("the service looks stuck; no longer answering the systemd watchdog")
                complained = True
            stop_event.wait(every)


def _one_line(text: str) -> str:
    return " ".join(text.split())
